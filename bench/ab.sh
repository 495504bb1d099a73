#!/usr/bin/env bash
# A/B of two callgate binaries (or one binary with two sets of serve flags) on the status GET:
# the before/after ratio a change on the request path quotes.
#
#   bench/ab.sh OLD_BINARY NEW_BINARY [ROUNDS] [SECONDS]
#   AB_ARGS_A="..." AB_ARGS_B="--access-log on" bench/ab.sh BIN BIN     # flags, same binary
#
# Each binary serves its own fresh data directory on CPU 1 with one server thread; wrk -t1 -c64
# (keep-alive) loads it from CPU 0. The two alternate, A B A B …, ROUNDS times (default 7) for
# SECONDS each (default 5, after 1 s of warm-up); prints each round and the median B/A ratios of
# requests per second and of the server's CPU time per request (user + system, from /proc: less
# disturbed than throughput by other work on a shared machine). Needs wrk (scripts/deps.sh
# bench). Nothing may compile meanwhile.
set -euo pipefail
A=$(realpath "$1")
B=$(realpath "$2")
ROUNDS=${3:-7}
SECONDS_EACH=${4:-5}
PORT_A=${AB_PORT:-18181}  # B listens on the next port; set AB_PORT when another A/B runs
PORT_B=$((PORT_A + 1))
WORK=$(mktemp -d)
cleanup() {
  for p in $(cat "$WORK"/*.pid 2>/dev/null); do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

STATUS_PATH="/api/v1/whatsapp/subaccounts/ab-sub/channels/ab-ch/callPermissions?destination=%2B6591234567"

# start NAME BINARY ARGS PORT: a data directory with one tenant, the server on CPU 1; prints KEY.
# Run in a command substitution (a subshell), so the server's pid goes to $WORK/NAME.pid.
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
  echo $! >"$WORK/$name.pid"
  for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
    sleep 0.1
  done
  # A server that could not listen exits, and the port may be another's (a leftover server
  # answers /healthz just as well): measure only our own.
  if ! kill -0 "$(cat "$WORK/$name.pid")" 2>/dev/null; then
    echo "ab.sh: $name did not start: $(cat "$WORK/$name.log")" >&2
    exit 1
  fi
  echo "$key"
}

KEY_A=$(start a "$A" "${AB_ARGS_A:-}" "$PORT_A")
KEY_B=$(start b "$B" "${AB_ARGS_B:-}" "$PORT_B")

# cpu_ticks NAME: the server's user + system CPU time so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$(cat "$WORK/$1.pid")/stat"; }

# measure NAME PORT KEY: "requests/s CPU-µs/request" of one measurement.
measure() {
  local url="http://127.0.0.1:$2$STATUS_PATH" before after out
  taskset -c 0 wrk -t1 -c64 -d1s -H "Authorization: Bearer $3" "$url" >/dev/null
  before=$(cpu_ticks "$1")
  out=$(taskset -c 0 wrk -t1 -c64 -d"${SECONDS_EACH}s" -H "Authorization: Bearer $3" "$url")
  after=$(cpu_ticks "$1")
  if grep -q "Non-2xx" <<<"$out"; then
    echo "ab.sh: $1 answered other than 200: $out" >&2
    exit 1
  fi
  awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" '
    /requests in/ {n = $1}
    /Requests\/sec/ {rps = $2}
    END {printf "%s %.2f\n", rps, ticks / hz / n * 1e6}' <<<"$out"
}

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

ratios=()
cpu_ratios=()
for r in $(seq "$ROUNDS"); do
  read -r a a_cpu <<<"$(measure a "$PORT_A" "$KEY_A")"
  read -r b b_cpu <<<"$(measure b "$PORT_B" "$KEY_B")"
  ratio=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", b / a}')
  cpu_ratio=$(awk -v a="$a_cpu" -v b="$b_cpu" 'BEGIN {printf "%.3f", b / a}')
  ratios+=("$ratio")
  cpu_ratios+=("$cpu_ratio")
  echo "round $r: A $a req/s ($a_cpu CPU-µs/req), B $b req/s ($b_cpu CPU-µs/req)," \
    "B/A $ratio, CPU per request B/A $cpu_ratio"
done
echo "median B/A: $(printf '%s\n' "${ratios[@]}" | median);" \
  "CPU per request B/A: $(printf '%s\n' "${cpu_ratios[@]}" | median)" \
  "(A: $A ${AB_ARGS_A:-}; B: $B ${AB_ARGS_B:-})"
