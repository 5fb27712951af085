# Shared by the benchmark scripts (its functions use the caller's `work` and `pids`):
#   release_bin NAME               builds the workspace's release binaries (quietly when nothing
#                                  changed) and prints the path of binary NAME
#   free_port                      a free TCP port on 127.0.0.1
#   info PORT FIELD                a field of a node's INFO
#   start_grid BIN                 three `sessiongrid node` processes joined into one grid, with a
#                                  cluster secret; their Redis doors in grid_resp[0..2]; waits until
#                                  every member sees three and nothing moves
#   cpu_ticks PID...               user+sys clock ticks the processes have used so far
#   ticks_per_s                    clock ticks per second (for cpu_ticks)
#   busiest_thread PID SINCE       per-thread ticks of PID into file SINCE (first call), or the
#                                  busiest thread's share of the process's ticks since then
#   wrk_users URL START CONNS DUR  wrk with one connection per thread, each thread one user that
#                                  starts its session on path START and keeps its cookie; prints
#                                  "requests/s p99_ms"
release_bin() {
  cargo build --release --workspace --bins >/dev/null 2>&1 || cargo build --release --workspace --bins >&2
  local target
  target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  echo "$target/release/$1"
}
cpu_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
ticks_per_s() { getconf CLK_TCK; }
busiest_thread() { # pid file: first call records, second prints "share name"
  local pid=$1 file=$2 now
  now=$(for t in /proc/"$pid"/task/*; do
    echo "$(basename "$t") $(awk '{print $14 + $15}' "$t/stat") $(tr ' ' _ < "$t/comm")"; done)
  if [ ! -s "$file" ]; then echo "$now" > "$file"; return; fi
  python3 - "$file" <<PY
import sys
before = {l.split()[0]: int(l.split()[1]) for l in open(sys.argv[1]) if l.strip()}
rows = [l.split() for l in '''$now'''.splitlines() if l.strip()]
deltas = [(int(t) - before.get(tid, 0), name) for tid, t, name in rows]
total = sum(d for d, _ in deltas) or 1
d, name = max(deltas)
print(f"{d / total:.2f} {name}")
PY
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
info() { redis-cli -p "$1" INFO 2>/dev/null | tr -d '\r' | awk -F: -v k="$2" '$1==k {print $2}'; }

start_grid() {
  local bin=$1 i p2p=()
  (umask 077; echo "bench-$RANDOM$RANDOM" > "$work/secret")
  grid_resp=()
  for i in 0 1 2; do grid_resp[$i]=$(free_port); p2p[$i]=$(free_port); done
  for i in 0 1 2; do
    local join=(); [ "$i" -gt 0 ] && join=(--join "127.0.0.1:${p2p[0]}")
    "$bin" node --data-dir "$work/node$i" --resp-listen "127.0.0.1:${grid_resp[$i]}" \
      --http-listen "127.0.0.1:$(free_port)" --p2p-listen "127.0.0.1:${p2p[$i]}" \
      --cluster-secret-file "$work/secret" "${join[@]}" 2>"$work/node$i.log" &
    pids+=($!)
  done
  local ok
  for _ in $(seq 600); do
    ok=1
    for i in 0 1 2; do
      [ "$(info "${grid_resp[$i]}" grid_members)" = 3 ] && [ "$(info "${grid_resp[$i]}" grid_moving_partitions)" = 0 ] || ok=0
    done
    [ $ok = 1 ] && return 0
    sleep 0.1
  done
  echo "the grid did not settle" >&2; return 1
}

wrk_users() {
  local url=$1 start=$2 conns=$3 duration=$4
  cat > "$work/session.lua" <<'LUA'
-- Each wrk thread is one user: its first request starts a session, then it sends back every
-- cookie it was given, by name (wrk shows a script the last Set-Cookie header of a response).
local cookies, header = {}, nil
local start = os.getenv("START_PATH")
function request()
  if not header then return wrk.format("GET", start) end
  return wrk.format("GET", wrk.path, { ["Cookie"] = header })
end
function response(status, headers, body)
  local set = headers["Set-Cookie"] or headers["set-cookie"]
  if not set then return end
  local name, value = set:match("^([^=;]+)=([^;]*)")
  if not name then return end
  cookies[name] = value
  local parts = {}
  for k, v in pairs(cookies) do parts[#parts + 1] = k .. "=" .. v end
  header = table.concat(parts, "; ")
end
LUA
  START_PATH=$start wrk -t"$conns" -c"$conns" -d"$duration" --latency -s "$work/session.lua" "$url" 2>/dev/null \
    | awk '/Requests\/sec/ {rps=$2} /^ *99%/ {v=$2; if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /us$/) {sub("us","",v); v=v/1000} else if (v ~ /s$/) {sub("s","",v); v=v*1000}; p99=v} END {print rps, p99}'
}
