#!/usr/bin/env bash
# Installs what building and testing Sessiongrid needs on a fresh Debian machine:
# libclang (rust-rocksdb's bindgen), Redis server and CLI (baseline and real client), pytest and
# redis-py. Safe to run again.
set -euo pipefail
need=()
for pkg in libclang-dev redis-server redis-tools; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
req="$(dirname "$0")/e2e/requirements.txt"
python3 -c 'import pytest, redis' 2>/dev/null \
  || python3 -m pip install -q -r "$req" \
  || python3 -m pip install -q --break-system-packages -r "$req"
