#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECONDS each (default 60), from its corpus in the repository:
# the RESP request decoder (crates/resp/fuzz), a node fed arbitrary peer frames
# (simulations/fuzz) and a node's HTTP API fed arbitrary requests (crates/doors/fuzz). Each
# corpus is also replayed by an ordinary test on every build (`fuzz_corpus` tests). Installs a nightly toolchain and cargo-fuzz if they are missing. Exits
# non-zero if a target crashes; the crashing input is left in <target dir>/fuzz/artifacts.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked -q
run() { # crate-dir target
  mkdir -p "$1/fuzz/corpus/$2"
  (cd "$1" && cargo +nightly fuzz run "$2" "fuzz/corpus/$2" -- \
    -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 2>&1 | tail -3)
  echo "fuzz target $2: ${seconds}s without a crash"
}
run crates/resp resp_decode
run simulations peer_msg
run crates/doors http_api
