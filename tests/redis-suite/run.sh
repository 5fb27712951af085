#!/usr/bin/env bash
# Runs Redis 7.0.15's own Tcl test suite against a fresh release node and prints how many of its
# tests pass, per unit and in total (not part of tests/run-all.sh: the suite is not in this
# repository and CI machines cannot fetch it).
#
# Usage: tests/redis-suite/run.sh /path/to/redis-7.0.15 [path/to/sessiongrid]
#   where the first path holds `tests/` of Redis' source at tag 7.0.15, e.g. from
#   git clone --branch 7.0.15 --depth 1 https://github.com/redis/redis
# Needs tclsh (Debian: tcl). Units: UNITS="unit/type/string ..." to choose.
# Tests tagged needs:repl (they read Redis' replication stream) and needs:config-maxmemory
# (writes refused past maxmemory; a node's memory is a cache in front of its disk) are left
# out: the grid replicates its own way and never refuses a write for memory.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/bench/lib.sh
SUITE="${1:?path to Redis 7.0.15 source (with tests/)}"
BIN="${2:-$(release_bin sessiongrid)}"
UNITS="${UNITS:-unit/type/string unit/type/incr unit/type/hash unit/type/set unit/type/zset
  unit/type/list unit/expire unit/keyspace unit/scan unit/multi unit/pubsub unit/scripting
  unit/protocol}"
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Each unit runs against a fresh node, so one that stops at a timeout (a client left blocked)
# neither ends the run nor disturbs the next unit.
: >"$work/suite.log"
for u in $UNITS; do
  port=$(free_port)
  hport=$(free_port)
  rm -rf "$work/data"
  "$BIN" node --data-dir "$work/data" --resp-listen "127.0.0.1:$port" \
    --http-listen "127.0.0.1:$hport" 2>"$work/node.log" &
  pid=$!
  for _ in $(seq 100); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.1; done
  # Its own test-server ports, so two runs on one machine do not collide.
  baseport=$((21111 + (RANDOM % 200) * 64))
  (cd "$SUITE" && tclsh tests/test_helper.tcl --host 127.0.0.1 --port "$port" --singledb \
    --ignore-encoding --ignore-digest --durable --timeout 60 --baseport "$baseport" \
    --tags "-needs:repl -needs:config-maxmemory" --single "$u") 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >>"$work/suite.log" || true
  kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  pid=""
done
awk '
  /^Testing / { unit = $2 }
  /^\[ok\]/   { ok[unit]++; total_ok++ }
  /^\[err\]/  { err[unit]++; total_err++ }
  /^\[TIMEOUT\]/ { err[unit]++; total_err++ }
  END {
    for (u in ok) printf "%-22s %4d ok %4d failed\n", u, ok[u], err[u]
    for (u in err) if (!(u in ok)) printf "%-22s %4d ok %4d failed\n", u, 0, err[u]
    printf "%d passed, %d failed\n", total_ok, total_err
  }' "$work/suite.log" | sort
cp "$work/suite.log" "${SUITE_LOG:-/tmp/redis-suite.log}"
