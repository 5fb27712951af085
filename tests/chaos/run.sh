#!/usr/bin/env bash
# A chaos run against real nodes (see chaos.py): faults from a seed on a loaded 5-node grid in
# network namespaces, then a check of everything the clients were told.
#
# Usage (as root): tests/chaos/run.sh [--minutes 10] [--seed S] [--nodes 5] [--split deny|serve]
#                                     [--plant ack-before-backups] [--keep]
# SESSIONGRID_BIN picks the binary (default: the release build, built here).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v nft >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables >/dev/null
fi
python3 -c 'import redis' 2>/dev/null || python3 -m pip install -q -r tests/e2e/requirements.txt
if [ -z "${SESSIONGRID_BIN:-}" ]; then
  source tests/bench/lib.sh
  SESSIONGRID_BIN=$(release_bin sessiongrid)
fi
exec python3 tests/chaos/chaos.py --bin "$SESSIONGRID_BIN" "$@"
