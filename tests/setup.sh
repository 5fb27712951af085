#!/usr/bin/env bash
# Installs what building and testing Sessiongrid needs on a fresh Debian machine:
# libclang (rust-rocksdb's bindgen), Redis server and CLI (baseline and real client), pytest and
# redis-py. With `--tests` also what only the tests need: Chromium (the dashboard test drives it
# headless) and websocket-client (to speak its DevTools protocol); a JDK, Tomcat 10 and the
# javax Servlet API (the servlet connector is built and run on real Tomcats); iproute2 (the split
# test puts nodes in network namespaces); PHP with phpredis (its session handler runs against a
# cluster); Node.js with ioredis and node-redis (tests/e2e/clients); openssl (the TLS tests make
# their own CAs). Safe to run again.
set -euo pipefail
packages=(libclang-dev redis-server redis-tools)
python_check='import pytest, redis'
if [ "${1:-}" = "--tests" ]; then
  packages+=(chromium openjdk-17-jdk-headless tomcat10 libservlet-api-java iproute2 php-cli php-redis openssl)
  # Node.js from Debian only where there is none (a NodeSource build bundles npm and conflicts).
  command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
  python_check='import pytest, redis, websocket'
fi
need=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
req="$(dirname "$0")/e2e/requirements.txt"
python3 -c "$python_check" 2>/dev/null \
  || python3 -m pip install -q -r "$req" \
  || python3 -m pip install -q --break-system-packages -r "$req"
if [ "${1:-}" = "--tests" ]; then
  clients="$(dirname "$0")/e2e/clients"
  [ -d "$clients/node_modules/ioredis" ] && [ -d "$clients/node_modules/redis" ] \
    || (cd "$clients" && npm install --silent --no-audit --no-fund) \
    || echo "npm install failed: the Node.js client tests will be skipped" >&2
fi
