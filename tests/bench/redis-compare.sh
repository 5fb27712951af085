#!/usr/bin/env bash
# Benchmark (not a test): Debian's redis-benchmark against a Sessiongrid node and against
# redis-server (AOF, fsync every second) on this machine, in one run. Prints ops/s and the ratio
# grid/redis for SET, GET and HSET with -c 50 -d 256, without pipelining and with -P 16 (and HSET
# growing one hash to 100k fields, unpipelined), the
# server CPU (user + sys) per operation of each and its ratio, then the node's RSS per 1 KiB key
# after loading 1M keys. Also, unpipelined, SADD and ZADD (one key growing to 100k members, as
# redis-benchmark does with -r) and LPUSH then LPOP on one list of up to 5k elements (a list
# costing over a quarter of memory_max_bytes, 128 MiB by default, is read from disk whole by
# every write: BENCH_LONG_LISTS=1 runs the full count).
#
# Usage: tests/bench/redis-compare.sh [path/to/sessiongrid]   (default: release build)
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/bench/lib.sh
BIN="${1:-$(release_bin sessiongrid)}"
REQUESTS="${REQUESTS:-200000}"
LIST_REQUESTS=5000
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do redis-cli -p "$1" PING >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }

rport=$(free_port); gport=$(free_port); hport=$(free_port)
redis-server --port "$rport" --save '' --appendonly yes --appendfsync everysec --dir "$work" \
  --daemonize no >/dev/null &
rpid=$!; pids+=($rpid)
"$BIN" node --data-dir "$work/grid" --resp-listen "127.0.0.1:$gport" \
  --http-listen "127.0.0.1:$hport" 2>"$work/grid.log" &
gpid=$!; pids+=($gpid)
wait_port "$rport"; wait_port "$gport"

bench() { # port pipeline test -> ops/s
  # SET/GET spread over 100k keys. HSET writes one field of one hash; HSET-big (-r) grows one
  # hash to 100k fields (about 30 MB).
  local spread=(-r 100000) test="$3" n="$REQUESTS"; [ "$3" = hset ] && spread=()
  [ "$3" = hset-big ] && test=hset
  case "$3" in lpush|lpop) spread=(); [ -n "${BENCH_LONG_LISTS:-}" ] || n=$LIST_REQUESTS ;; esac
  redis-benchmark -p "$1" -c 50 -d 256 -n "$n" -P "$2" "${spread[@]}" -t "$test" --csv -q \
    2>/dev/null | awk -F'","' 'NR==2 {print $2+0}'
}
cpu_us() { # before after requests -> server CPU microseconds per request
  awk -v b="$1" -v a="$2" -v hz="$(ticks_per_s)" -v n="$3" 'BEGIN {printf "%.1f", (a - b) / hz * 1e6 / n}'
}

printf '%-6s %-4s %12s %12s %7s %13s %13s %7s\n' test P redis_ops/s grid_ops/s ratio \
  redis_cpu_us grid_cpu_us ratio
for p in 1 16; do
  tests="set get hset"; [ "$p" = 1 ] && tests="$tests hset-big sadd zadd lpush lpop"
  for t in $tests; do
    c0=$(cpu_ticks "$rpid"); r=$(bench "$rport" "$p" "$t"); c1=$(cpu_ticks "$rpid")
    g0=$(cpu_ticks "$gpid"); g=$(bench "$gport" "$p" "$t"); g1=$(cpu_ticks "$gpid")
    n=$REQUESTS; case "$t" in lpush|lpop) [ -n "${BENCH_LONG_LISTS:-}" ] || n=$LIST_REQUESTS ;; esac
    rc=$(cpu_us "$c0" "$c1" "$n"); gc=$(cpu_us "$g0" "$g1" "$n")
    printf '%-6s %-4s %12.0f %12.0f %7.2f %13s %13s %7.2f\n' "$t" "$p" "$r" "$g" \
      "$(awk "BEGIN {print $g / $r}")" "$rc" "$gc" "$(awk "BEGIN {print ($rc > 0) ? $gc / $rc : 0}")"
  done
done

rss() { awk '/VmRSS/ {print $2*1024}' "/proc/$1/status"; }
before=$(rss "$gpid")
redis-cli -p "$gport" FLUSHALL >/dev/null
redis-benchmark -p "$gport" -c 50 -d 1024 -n 1000000 -r 1000000000 -t set -P 16 -q >/dev/null 2>&1 || true
keys=$(redis-cli -p "$gport" DBSIZE)
after=$(rss "$gpid")
echo "grid RSS: $((before >> 20)) MiB after the throughput runs, $((after >> 20)) MiB with $keys keys of 1 KiB" \
     "($(( (after - before) / (keys > 0 ? keys : 1) )) bytes of RSS per key; default memory_max_bytes 512 MiB)"
