#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang, ASan and UBSan in build-fuzz/ and runs each for
# the given seconds, one after another, on a scratch copy of its committed seed corpus.
#   scripts/fuzz.sh [seconds]              every target (default 60 s each)
#   scripts/fuzz.sh [seconds] TARGET...    only those (e.g. codec_fuzz)
# Prints per target its executions, final coverage and features, and any crash files; exits
# non-zero if a target found something. Installs clang from Debian if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
((${#targets[@]})) || targets=(http_request_fuzz webhook_fuzz destination_fuzz history_cursor_fuzz
  codec_fuzz)

scripts/deps.sh
if ! command -v clang++ >/dev/null; then
  sudo=""
  [[ "$(id -u)" == 0 ]] || sudo=sudo
  echo "installing: clang" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends clang >&2
fi

build=build-fuzz
CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCALLGATE_FUZZ=ON \
  -DCALLGATE_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" >/dev/null

found=0
for target in "${targets[@]}"; do
  work="$build/fuzz-run/$target"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/crashes"
  cp fuzz/corpus/"$target"/* "$work/corpus/"
  options=(-max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1
    -artifact_prefix="$work/crashes/")
  [[ -f fuzz/"$target".dict ]] && options+=(-dict=fuzz/"$target".dict)
  if [[ "$target" == http_request_fuzz ]]; then
    # Inputs past the 8 KiB header limit. The server frees a connection on its own thread after
    # the input is done, which libFuzzer's per-input leak check takes for a leak and answers with
    # a heap scan per input (~15 ms); leaks are still reported when the run ends.
    options+=(-max_len=20000 -detect_leaks=0)
  else
    options+=(-max_len=4096)
  fi
  status=0
  "$build/$target" "${options[@]}" "$work/corpus" >"$work/log" 2>&1 || status=$?
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
  coverage=$(grep -E '^#[0-9]+' "$work/log" | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
  crashes=$(find "$work/crashes" -type f)
  echo "$target: ${seconds}s, ${executions:-?} executions, ${coverage:-no coverage line}"
  if ((status != 0)) || [[ -n "$crashes" ]]; then
    found=1
    echo "  FOUND (exit $status), log: $work/log"
    for crash in $crashes; do echo "  $crash"; done
  fi
done
exit "$found"
