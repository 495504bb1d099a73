#!/usr/bin/env bash
# Installs what callgate needs from Debian (bookworm) and nothing that is already there.
#   scripts/deps.sh          build and run
#   scripts/deps.sh test     also what the test suite needs
#   scripts/deps.sh bench    also what the benchmarks need
# Boost is 1.74 on purpose: libphonenumber-dev depends on it, and Debian's 1.81 conflicts.
set -euo pipefail

packages=(g++ cmake make libboost-dev libphonenumber-dev libsimdjson-dev libcli11-dev libssl-dev
  libsqlite3-dev libabsl-dev prometheus-cpp-dev libhiredis-dev)
case "${1:-}" in
  test) packages+=(libgtest-dev clang-format curl dpkg-dev file openssl redis-server) ;;
  bench) packages+=(wrk nginx gnuplot-nox curl openssl redis-server) ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ "${1:-}" == test || "${1:-}" == bench ]] && ! command -v node >/dev/null; then
  missing+=(nodejs npm)
fi
if ((${#missing[@]})); then
  sudo=""
  [[ "$(id -u)" == 0 ]] || sudo=sudo
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
