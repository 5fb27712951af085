#!/usr/bin/env bash
# Benchmark (not a test): a 3-node cluster (replicas 2) against one grid node and one
# redis-server (AOF, fsync every second), all on this machine in one run. Each target gets the
# same load: three redis-benchmark processes at once (-c 17 -d 256 each), for the cluster one per
# node. Each row also gives the server CPU (user + sys, summed over a target's processes) per
# operation, and for the cluster the busiest thread's share of its node's CPU; the cluster's
# rows again with Redis Cluster clients (redis-benchmark --cluster: each key sent to its
# primary's node, none forwarded). Then one client's
# SET latency through each node (two of the three forward it to the key's primary), the
# failover time over TRIALS kill -9 trials (kill to every sampled key readable again), and the
# time a fourth node takes to own its share of JOIN_MB of data.
#
# Usage: tests/bench/cluster-compare.sh [path/to/sessiongrid]   (default: release build)
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/bench/lib.sh
BIN="${1:-$(release_bin sessiongrid)}"
REQUESTS="${REQUESTS:-100000}"
TRIALS="${TRIALS:-20}"
JOIN_MB="${JOIN_MB:-1024}"
work=$(mktemp -d)
declare -A pid_of
cleanup() { for p in "${pid_of[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

wait_port() { for _ in $(seq 300); do redis-cli -p "$1" PING >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
now_ms() { date +%s%3N; }

(umask 077; echo "bench-secret-$RANDOM$RANDOM" > "$work/secret")
rport=$(free_port); sport=$(free_port)
redis-server --port "$rport" --save '' --appendonly yes --appendfsync everysec --dir "$work" >/dev/null &
pid_of[redis]=$!
"$BIN" node --data-dir "$work/single" --resp-listen "127.0.0.1:$sport" --http-listen "127.0.0.1:$(free_port)" 2>"$work/single.log" &
pid_of[single]=$!

declare -a cport pport
start_node() { # index
  local i=$1 join=()
  [ "$i" -gt 0 ] && join=(--join "127.0.0.1:${pport[0]}")
  "$BIN" node --data-dir "$work/node$i" --resp-listen "127.0.0.1:${cport[$i]}" \
    --http-listen "127.0.0.1:$(free_port)" --p2p-listen "127.0.0.1:${pport[$i]}" \
    --cluster-secret-file "$work/secret" "${join[@]}" 2>>"$work/node$i.log" &
  pid_of[node$i]=$!
  wait_port "${cport[$i]}"
}
settled() { # nodes...
  local n=$# epoch=""
  for i in "$@"; do
    [ "$(info "${cport[$i]}" grid_members)" = "$n" ] || return 1
    [ "$(info "${cport[$i]}" grid_moving_partitions)" = 0 ] || return 1
    [ "$(info "${cport[$i]}" grid_serving)" = 1 ] || return 1
    local e; e=$(info "${cport[$i]}" grid_epoch)
    [ -z "$epoch" ] || [ "$e" = "$epoch" ] || return 1
    epoch=$e
  done
}
wait_settled() { for _ in $(seq 1200); do settled "$@" && return 0; sleep 0.1; done; echo "cluster did not settle" >&2; return 1; }

for i in 0 1 2 3; do cport[$i]=$(free_port); pport[$i]=$(free_port); done
for i in 0 1 2; do start_node "$i"; done
wait_port "$rport"; wait_port "$sport"; wait_settled 0 1 2

load() { # test port... -> total ops/s of one redis-benchmark per port (3 in all)
  # CLUSTER_CLIENT=1: each redis-benchmark is a Redis Cluster client (--cluster): it asks the
  # node for the slots' primaries and sends each key to its primary's node.
  local t=$1; shift
  local ports=("$@"); while [ ${#ports[@]} -lt 3 ]; do ports+=("${ports[0]}"); done
  local out=() mode=()
  [ -n "${CLUSTER_CLIENT:-}" ] && mode=(--cluster)
  for p in "${ports[@]}"; do
    redis-benchmark -h 127.0.0.1 -p "$p" "${mode[@]}" -c 17 -d 256 -n "$REQUESTS" -r 100000 \
      -t "$t" --csv -q 2>/dev/null \
      | awk -F'","' '/^"[A-Z]/ {print $2+0}' > "$work/bench.$p.$RANDOM" &
    out+=($!)
  done
  wait "${out[@]}"
  cat "$work"/bench.* | awk '{s+=$1} END {print s}'; rm -f "$work"/bench.*
}

cpu_us() { # ticks ops -> CPU microseconds per operation
  awk -v t="$1" -v hz="$(ticks_per_s)" -v n="$2" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}'
}
ops=$((3 * REQUESTS))
echo "throughput (3 x redis-benchmark -c 17 -d 256, ops/s; CPU us per op of the servers)"
printf '%-6s %10s %10s %10s %8s %8s %8s %8s %8s %s\n' test redis single cluster c/single c/redis \
  redis_us single_us cluster_us "busiest thread per node (share of its CPU)"
# The cluster rows twice: plain clients through every node (two keys in three forwarded to
# their primary), then Redis Cluster clients (each key sent to its primary's node).
for t in set get set-cc get-cc; do
  test=${t%-cc}
  if [ "$t" = "$test" ]; then
    c0=$(cpu_ticks "${pid_of[redis]}"); r=$(load "$test" "$rport"); rc=$(( $(cpu_ticks "${pid_of[redis]}") - c0 ))
    c0=$(cpu_ticks "${pid_of[single]}"); s=$(load "$test" "$sport"); sc=$(( $(cpu_ticks "${pid_of[single]}") - c0 ))
    eval "r_$test=$r rc_$test=$rc s_$test=$s sc_$test=$sc"
  else
    eval "r=\$r_$test rc=\$rc_$test s=\$s_$test sc=\$sc_$test"
  fi
  nodes=("${pid_of[node0]}" "${pid_of[node1]}" "${pid_of[node2]}")
  for i in 0 1 2; do rm -f "$work/threads.$i"; busiest_thread "${nodes[$i]}" "$work/threads.$i"; done
  c0=$(cpu_ticks "${nodes[@]}")
  if [ "$t" = "$test" ]; then
    c=$(load "$test" "${cport[0]}" "${cport[1]}" "${cport[2]}")
  else
    c=$(CLUSTER_CLIENT=1 load "$test" "${cport[0]}" "${cport[1]}" "${cport[2]}")
  fi
  cc=$(( $(cpu_ticks "${nodes[@]}") - c0 ))
  busy=$(for i in 0 1 2; do busiest_thread "${nodes[$i]}" "$work/threads.$i"; done | tr '\n' ' ')
  printf '%-6s %10.0f %10.0f %10.0f %8.2f %8.2f %8s %8s %8s %s\n' "$t" "$r" "$s" "$c" \
    "$(awk "BEGIN {print $c / $s}")" "$(awk "BEGIN {print $c / $r}")" \
    "$(cpu_us "$rc" "$ops")" "$(cpu_us "$sc" "$ops")" "$(cpu_us "$cc" "$ops")" "$busy"
done
echo "(set-cc, get-cc: the cluster's clients are Redis Cluster clients; redis and single from the row above)"

echo; echo "one client's SET (redis-benchmark -c 1, one key), latency ms through each node"
for i in 0 1 2; do
  redis-benchmark -p "${cport[$i]}" -c 1 -n 20000 -d 256 -t set --csv -q 2>/dev/null \
    | awk -F'","' -v n="$i" 'NR==2 {printf "node %d: p50 %s p99 %s\n", n, $5, $7}'
done
echo "(the key's primary answers itself; the other two forward to it)"

echo; echo "failover: kill -9 one node, time until each of 200 sampled keys reads again ($TRIALS trials)"
for k in $(seq 200); do redis-cli -p "${cport[0]}" SET "fo:$k" "$k" >/dev/null; done
times=()
for trial in $(seq "$TRIALS"); do
  victim=$(( (trial - 1) % 3 )); reader=$(( (victim + 1) % 3 ))
  kill -9 "${pid_of[node$victim]}"
  times+=($(python3 - "${cport[$reader]}" <<'PY'
import sys, time, redis
r = redis.Redis(port=int(sys.argv[1]), socket_timeout=5)
start = time.monotonic()
pending = set(range(1, 201))
while pending:
    for k in list(pending):
        try:
            if r.get(f"fo:{k}") == str(k).encode():
                pending.discard(k)
        except redis.RedisError:
            pass
print(int((time.monotonic() - start) * 1000))
PY
))
  start_node "$victim"; wait_settled 0 1 2
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "failover ms: median %d, max %d over %d trials\n", a[int((NR+1)/2)], a[NR], NR}'

echo; echo "join: load ${JOIN_MB} MB (1 KiB values), then start a fourth node"
keys=$(( JOIN_MB * 1024 ))
loaders=()
for i in 0 1 2; do
  redis-benchmark -p "${cport[$i]}" -c 16 -d 1024 -n $((keys / 3)) -r 1000000000 -t set -P 8 -q >/dev/null 2>&1 &
  loaders+=($!)
done
wait "${loaders[@]}"
loaded=$(redis-cli -p "${cport[0]}" DBSIZE)
start=$(now_ms); start_node 3; wait_settled 0 1 2 3
echo "join: node 4 owns its share ($(info "${cport[3]}" grid_copies) partition copies) after $(( $(now_ms) - start )) ms, with $loaded keys in the cluster"
