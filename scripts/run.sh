#!/usr/bin/env bash
# Installs what is missing, builds, and serves callgate on its embedded store with the demo
# tenant. Extra arguments go to `callgate serve` (e.g. --listen 127.0.0.1:9090).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCALLGATE_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target callgate
exec build/callgate serve --demo "$@"
