#!/usr/bin/env bash
# A/B of two callgate binaries (or one binary with two sets of serve flags) on the status GET:
# the before/after ratio a change on the request path quotes.
#
#   bench/ab.sh OLD_BINARY NEW_BINARY [ROUNDS] [SECONDS]
#   AB_ARGS_A="..." AB_ARGS_B="--access-log on" bench/ab.sh BIN BIN     # flags, same binary
#
# Each binary serves its own fresh data directory on CPU 1 with one server thread; wrk -t1 -c64
# (keep-alive) loads it from CPU 0. The two alternate, A B A B …, ROUNDS times (default 7) for
# SECONDS each (default 5, after 1 s of warm-up); prints each round and the median B/A ratio of
# requests per second. Needs wrk (scripts/deps.sh bench). Nothing may compile meanwhile.
set -euo pipefail
A=$(realpath "$1")
B=$(realpath "$2")
ROUNDS=${3:-7}
SECONDS_EACH=${4:-5}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

STATUS_PATH="/api/v1/whatsapp/subaccounts/ab-sub/channels/ab-ch/callPermissions?destination=%2B6591234567"

# start NAME BINARY ARGS PORT: a data directory with one tenant, the server on CPU 1; prints KEY.
start() {
  local name=$1 bin=$2 args=$3 port=$4 dir=$WORK/$1
  "$bin" admin --data-dir "$dir" account create ab >/dev/null
  "$bin" admin --data-dir "$dir" subaccount create ab-sub --account ab >/dev/null
  "$bin" admin --data-dir "$dir" channel create ab-ch --subaccount ab-sub \
    --phone-number-id 100000000000009 >/dev/null
  local key
  key=$("$bin" admin --data-dir "$dir" key create --account ab)
  # shellcheck disable=SC2086
  taskset -c 1 "$bin" serve --data-dir "$dir" --listen "127.0.0.1:$port" --threads 1 $args \
    >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
    sleep 0.1
  done
  echo "$key"
}

KEY_A=$(start a "$A" "${AB_ARGS_A:-}" 18181)
KEY_B=$(start b "$B" "${AB_ARGS_B:-}" 18182)

# rps PORT KEY: requests per second of one measurement.
rps() {
  local url="http://127.0.0.1:$1$STATUS_PATH"
  taskset -c 0 wrk -t1 -c64 -d1s -H "Authorization: Bearer $2" "$url" >/dev/null
  taskset -c 0 wrk -t1 -c64 -d"${SECONDS_EACH}s" -H "Authorization: Bearer $2" "$url" |
    awk '/Requests\/sec/ {print $2}'
}

ratios=()
for r in $(seq "$ROUNDS"); do
  a=$(rps 18181 "$KEY_A")
  b=$(rps 18182 "$KEY_B")
  ratio=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", b / a}')
  ratios+=("$ratio")
  echo "round $r: A $a req/s, B $b req/s, B/A $ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
echo "median B/A: $median (A: $A ${AB_ARGS_A:-}; B: $B ${AB_ARGS_B:-})"
