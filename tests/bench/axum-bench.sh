#!/usr/bin/env bash
# Benchmark (not a test): the axum example with tower-sessions' in-memory store, with a plain
# Redis-backed store on `redis-server` (AOF, fsync every second), with the grid embedded (two
# app processes forming the grid, wrk hitting one), and with remote grid nodes (three
# `sessiongrid node` processes, over their Redis door), in the same run. wrk plays
# CONNECTIONS users (a thread and a connection each, each with its own session) on /counter
# (read and write the session) and /cart (read it); printed: requests/s, p99 and the ratio to
# the in-memory store.
#
# Usage: tests/bench/axum-bench.sh   (release builds)
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/bench/lib.sh
SHOP=$(release_bin axum-shop); BIN=$(release_bin sessiongrid)
DURATION="${DURATION:-8s}"; CONNECTIONS="${CONNECTIONS:-16}"
work=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
up() { for _ in $(seq 300); do curl -sf "http://$1/health" >/dev/null && return 0; sleep 0.1; done; return 1; }

mem=127.0.0.1:$(free_port); "$SHOP" --listen "$mem" --memory 2>"$work/mem.log" & pids+=($!)
rport=$(free_port)
redis-server --port "$rport" --save '' --appendonly yes --appendfsync everysec --dir "$work" >/dev/null & pids+=($!)
sleep 0.5
red=127.0.0.1:$(free_port); "$SHOP" --listen "$red" --redis "127.0.0.1:$rport" 2>"$work/red.log" & pids+=($!)
emb=127.0.0.1:$(free_port); seed=$(free_port)
"$SHOP" --listen "$emb" --data-dir "$work/emb-a" --p2p-listen "127.0.0.1:$seed" 2>"$work/emb-a.log" & pids+=($!)
"$SHOP" --listen "127.0.0.1:$(free_port)" --data-dir "$work/emb-b" --p2p-listen "127.0.0.1:$(free_port)" --join "127.0.0.1:$seed" 2>"$work/emb-b.log" & pids+=($!)
start_grid "$BIN"
rem=127.0.0.1:$(free_port)
"$SHOP" --listen "$rem" --grid "$(printf '127.0.0.1:%s,' "${grid_resp[@]}" | sed 's/,$//')" 2>"$work/rem.log" & pids+=($!)
for a in "$mem" "$red" "$emb" "$rem"; do up "$a"; done
sleep 3  # the embedded pair and the grid settle

run() { # address path -> "req/s p99_ms"
  wrk_users "http://$1$2" /counter "$CONNECTIONS" "$DURATION"
}
echo "wrk -t$CONNECTIONS -c$CONNECTIONS -d$DURATION ($CONNECTIONS users), axum-shop with tower-sessions"
printf '%-9s %-22s %12s %9s %8s\n' path store req/s p99_ms ratio
for path in /counter /cart; do
  read -r mr mp < <(run "$mem" "$path")
  printf '%-9s %-22s %12.0f %9.2f %8.2f\n' "$path" "in-memory" "$mr" "$mp" 1
  read -r xr xp < <(run "$red" "$path")
  printf '%-9s %-22s %12.0f %9.2f %8.2f\n' "$path" "redis-server" "$xr" "$xp" "$(awk "BEGIN {print $xr / $mr}")"
  read -r er ep < <(run "$emb" "$path")
  printf '%-9s %-22s %12.0f %9.2f %8.2f\n' "$path" "grid, embedded (2)" "$er" "$ep" "$(awk "BEGIN {print $er / $mr}")"
  read -r rr rp < <(run "$rem" "$path")
  printf '%-9s %-22s %12.0f %9.2f %8.2f\n' "$path" "grid, remote (3)" "$rr" "$rp" "$(awk "BEGIN {print $rr / $mr}")"
done
