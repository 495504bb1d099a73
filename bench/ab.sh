#!/usr/bin/env bash
# A/B of two callgate binaries (or one binary with two sets of serve flags) on the status GET:
# the before/after ratio a change on the request path quotes.
#
#   bench/ab.sh OLD_BINARY NEW_BINARY [ROUNDS] [SECONDS]
#   AB_ARGS_A="..." AB_ARGS_B="--access-log on" bench/ab.sh BIN BIN     # flags, same binary
#
# Each binary serves its own fresh data directory on CPU 1 with one server thread, on a port of
# its own (port 0: runs of several people on one machine never measure each other's servers);
# wrk -t1 -c64 (keep-alive) loads it from CPU 0. The two alternate, A B A B …, ROUNDS times
# (default 7) for SECONDS each (default 5, after 1 s of warm-up); prints each round and the
# median B/A ratio of requests per second, and of the CPU time the server spent per request
# (user + system, all its threads: less disturbed than throughput by other work on the machine,
# which takes turns on the server's core). Needs wrk (scripts/deps.sh bench). Nothing may
# compile meanwhile.
set -euo pipefail
A=$(realpath "$1")
B=$(realpath "$2")
ROUNDS=${3:-7}
SECONDS_EACH=${4:-5}
WORK=$(mktemp -d)
cleanup() {
  for f in "$WORK"/*.pid; do [[ -e $f ]] && kill "$(cat "$f")" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

STATUS_PATH="/api/v1/whatsapp/subaccounts/ab-sub/channels/ab-ch/callPermissions?destination=%2B6591234567"
TICKS=$(getconf CLK_TCK)

# start NAME BINARY ARGS: a data directory with one tenant, the server on CPU 1 on a free port;
# leaves $WORK/NAME.{key,pid,port}.
start() {
  local name=$1 bin=$2 args=$3 dir=$WORK/$1
  "$bin" admin --data-dir "$dir" account create ab >/dev/null
  "$bin" admin --data-dir "$dir" subaccount create ab-sub --account ab >/dev/null
  "$bin" admin --data-dir "$dir" channel create ab-ch --subaccount ab-sub \
    --phone-number-id 100000000000009 >/dev/null
  "$bin" admin --data-dir "$dir" key create --account ab >"$WORK/$name.key"
  # shellcheck disable=SC2086
  taskset -c 1 "$bin" serve --data-dir "$dir" --listen 127.0.0.1:0 --threads 1 $args \
    >"$WORK/$name.out" 2>"$WORK/$name.log" &
  echo $! >"$WORK/$name.pid"
  local port=
  for _ in $(seq 100); do
    port=$(sed -n 's|^callgate listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$WORK/$name.out")
    [[ -n $port ]] && break
    kill -0 "$(cat "$WORK/$name.pid")" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z $port ]]; then
    echo "server $name did not start: $(cat "$WORK/$name.log")" >&2
    exit 1
  fi
  echo "$port" >"$WORK/$name.port"
}

start a "$A" "${AB_ARGS_A:-}"
start b "$B" "${AB_ARGS_B:-}"

# measure NAME: "requests/s CPU-µs/request" of one measurement of server NAME.
measure() {
  local url key pid before after
  url="http://127.0.0.1:$(cat "$WORK/$1.port")$STATUS_PATH"
  key=$(cat "$WORK/$1.key")
  pid=$(cat "$WORK/$1.pid")
  cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }  # user + system ticks, all threads
  taskset -c 0 wrk -t1 -c64 -d1s -H "Authorization: Bearer $key" "$url" >/dev/null
  before=$(cpu)
  taskset -c 0 wrk -t1 -c64 -d"${SECONDS_EACH}s" -H "Authorization: Bearer $key" "$url" \
    >"$WORK/wrk.txt"
  after=$(cpu)
  awk -v cpu=$((after - before)) -v ticks="$TICKS" '
    /requests in/ {n = $1} /Requests\/sec/ {rps = $2}
    END {printf "%s %.2f\n", rps, cpu / ticks * 1e6 / n}' "$WORK/wrk.txt"
}

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

ratios=()
cpu_ratios=()
for r in $(seq "$ROUNDS"); do
  read -r a a_cpu < <(measure a)
  read -r b b_cpu < <(measure b)
  ratio=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", b / a}')
  cpu_ratio=$(awk -v a="$a_cpu" -v b="$b_cpu" 'BEGIN {printf "%.3f", b / a}')
  ratios+=("$ratio")
  cpu_ratios+=("$cpu_ratio")
  echo "round $r: A $a req/s ($a_cpu µs CPU/req), B $b req/s ($b_cpu µs CPU/req)," \
    "B/A $ratio (CPU/req $cpu_ratio)"
done
echo "median B/A: $(printf '%s\n' "${ratios[@]}" | median)" \
  "(A: $A ${AB_ARGS_A:-}; B: $B ${AB_ARGS_B:-})"
echo "median B/A of CPU per request: $(printf '%s\n' "${cpu_ratios[@]}" | median)"
