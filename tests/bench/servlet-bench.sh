#!/usr/bin/env bash
# Benchmark (not a test): the sample shop on one Tomcat 10, with its sessions in a 3-node grid
# through the SessionGridFilter, against the same application with Tomcat's default in-memory
# sessions, in the same run. `wrk` runs one connection per thread, and each thread keeps the
# session cookie it was given (so CONNECTIONS users, each one request at a time), on
#   /counter  read and write the session on every request
#   /whoami   read the session only
# and the script prints requests/s, p99 latency and the grid/in-memory ratio of requests/s.
#
# Usage: tests/bench/servlet-bench.sh [path/to/sessiongrid]   (default: release build)
# Needs: tests/setup.sh --tests, and Debian's wrk.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/bench/lib.sh
BIN="${1:-$(release_bin sessiongrid)}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-16}"
WARMUP="${WARMUP:-10s}"
connectors/servlet/build.sh >/dev/null
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
start_grid "$BIN"

port=$(free_port)
base="$work/tomcat"
mkdir -p "$base"/{conf,logs,temp,work,webapps}
for f in web.xml logging.properties catalina.properties context.xml; do cp "/etc/tomcat10/$f" "$base/conf/"; done
cat > "$base/conf/server.xml" <<XML
<Server port="-1" shutdown="SHUTDOWN"><Service name="Catalina">
  <Connector port="$port" address="127.0.0.1" protocol="HTTP/1.1" maxThreads="64"/>
  <Engine name="Catalina" defaultHost="localhost"><Host name="localhost" appBase="webapps" autoDeploy="false"/></Engine>
</Service></Server>
XML
cp -r connectors/servlet/build/sample "$base/webapps/grid"
cp -r connectors/servlet/build/sample "$base/webapps/memory"
# The same application with the filter's near cache.
cp -r connectors/servlet/build/sample "$base/webapps/cached"
sed -i 's/${sessiongrid.nearCacheSize:0}/10000/' "$base/webapps/cached/WEB-INF/web.xml"
# The same application without the filter: Tomcat's own sessions.
python3 - "$base/webapps/memory/WEB-INF/web.xml" <<'PY'
import re, sys
p = sys.argv[1]; s = open(p).read()
s = re.sub(r"<filter>.*?</filter-mapping>", "", s, flags=re.S)
open(p, "w").write(s)
PY
rm "$base/webapps/memory/WEB-INF/lib/sessiongrid-servlet.jar"
grid=$(printf '127.0.0.1:%s,' "${grid_resp[@]}"); grid=${grid%,}
CATALINA_HOME=/usr/share/tomcat10 CATALINA_BASE="$base" JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 \
  CATALINA_OPTS="-Dsessiongrid.grid=$grid -Xmx512m" /usr/share/tomcat10/bin/catalina.sh run >"$work/tomcat.log" 2>&1 &
pids+=($!)
for _ in $(seq 600); do
  curl -sf "http://127.0.0.1:$port/grid/id" >/dev/null && curl -sf "http://127.0.0.1:$port/memory/id" >/dev/null \
    && curl -sf "http://127.0.0.1:$port/cached/id" >/dev/null && break
  sleep 0.1
done

run() { # app path -> "req/s p99_ms"
  wrk_users "http://127.0.0.1:$port/$1$2" "/$1/counter" "$CONNECTIONS" "$DURATION"
}
# Warm each up, then measure: with 3 s, Tomcat's JIT compiler still took a third of its CPU
# while the filter's apps were measured.
for app in grid cached memory; do DURATION=$WARMUP run $app /counter >/dev/null; done
echo "wrk -t$CONNECTIONS -c$CONNECTIONS -d$DURATION ($CONNECTIONS users), one Tomcat 10, grid of 3 nodes (replicas 2)"
printf '%-9s %12s %8s %12s %8s %6s %12s %8s %6s\n' path memory_req/s p99_ms grid_req/s p99_ms ratio cached_req/s p99_ms ratio
for path in /counter /whoami; do
  read -r mr mp < <(run memory "$path")
  read -r gr gp < <(run grid "$path")
  read -r cr cp < <(run cached "$path")
  printf '%-9s %12.0f %8.2f %12.0f %8.2f %6.2f %12.0f %8.2f %6.2f\n' "$path" "$mr" "$mp" "$gr" "$gp" \
    "$(awk "BEGIN {print $gr / $mr}")" "$cr" "$cp" "$(awk "BEGIN {print $cr / $mr}")"
done
