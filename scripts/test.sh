#!/usr/bin/env bash
# Installs what is missing, builds everything and runs the whole test suite (unit, property,
# store contract on SQLite and memory, kill -9 durability, end-to-end over HTTP, every recorded
# response validated against docs/openapi.json with ajv, the OpenAPI linter (Redocly CLI) on that
# document, the demo smoke test, clang-format). tests/node_modules (npm ci) holds ajv and Redocly.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
npm ci --prefix tests --no-audit --no-fund --loglevel=error
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCALLGATE_TESTS=ON >/dev/null
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)"
