#!/usr/bin/env bash
# Installs what is missing, builds everything and runs the whole test suite (unit, property,
# store contract on SQLite and memory, kill -9 durability, end-to-end over HTTP, OpenAPI
# contract validation with ajv, the demo smoke test, clang-format).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
npm ci --prefix tests --no-audit --no-fund --loglevel=error
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCALLGATE_TESTS=ON >/dev/null
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)"
