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
#
# AB_CLUSTER=HOST:PORT[,…] (a running cluster, e.g. scripts/redis-cluster.sh start DIR 7600): each
# server keeps its data under a key prefix of its own there, AB_PAIRS pairs (default 2000) stored
# through its signed webhook, and the load is GETs of random stored pairs — or, with AB_WRITES=1,
# durable call authorisations to random stored users. The nodes' CPU is not counted: pin them to
# CPU 1 too (`taskset -a -p -c 1 PID`) so that they share the servers' core as in bench/run.sh.
#
# AB_TOGETHER=1: A and B run at once, both on CPU 1, each loaded by its own wrk, so other work on
# a busy machine disturbs both alike: read the CPU-per-request ratio (the requests/s ratio then
# mostly says how the two shared the core).
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

API=/api/v1/whatsapp/subaccounts/ab-sub/channels/ab-ch
STATUS_PATH="$API/callPermissions?destination=%2B6591234567"
SECRET=ab-meta-app-secret
PHONE_NUMBER_ID=100000000000009
# shellcheck source=bench/seed_pairs.sh
source "$(dirname "$0")/seed_pairs.sh"
TICKS=$(getconf CLK_TCK)

# start NAME BINARY ARGS: a data directory with one tenant, the server on CPU 1 on a free port;
# leaves $WORK/NAME.{key,pid,port}.
start() {
  local name=$1 bin=$2 args=$3 store=(--data-dir "$WORK/$1") seeding=()
  if [[ -n ${AB_CLUSTER:-} ]]; then
    store=(--redis-cluster "$AB_CLUSTER" --redis-key-prefix "ab-$$-$name:")
    seeding=(--meta-app-secret "$SECRET")
  fi
  "$bin" admin "${store[@]}" account create ab >/dev/null
  "$bin" admin "${store[@]}" subaccount create ab-sub --account ab >/dev/null
  "$bin" admin "${store[@]}" channel create ab-ch --subaccount ab-sub \
    --phone-number-id "$PHONE_NUMBER_ID" >/dev/null
  "$bin" admin "${store[@]}" key create --account ab >"$WORK/$name.key"
  : >"$WORK/$name.out"  # before the background job opens it: the loop below reads it at once
  # shellcheck disable=SC2086
  taskset -c 1 "$bin" serve "${store[@]}" "${seeding[@]}" --listen 127.0.0.1:0 --threads 1 $args \
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
  if [[ -n ${AB_CLUSTER:-} ]]; then
    seed_pairs "$port" "$SECRET" "$PHONE_NUMBER_ID" "ab$$$name" "${AB_PAIRS:-2000}" \
      "$WORK/$name.users" "$WORK/$name.targets" "$API" || exit 1
  fi
}

start a "$A" "${AB_ARGS_A:-}"
start b "$B" "${AB_ARGS_B:-}"

url() { echo "http://127.0.0.1:$(cat "$WORK/$1.port")$STATUS_PATH"; }
# load NAME SECONDS: wrk on server NAME, its report in $WORK/NAME.wrk.
load() {
  local auth="Authorization: Bearer $(cat "$WORK/$1.key")" base
  base="http://127.0.0.1:$(cat "$WORK/$1.port")"
  if [[ -z ${AB_CLUSTER:-} ]]; then
    taskset -c 0 wrk -t1 -c64 -d"$2s" -H "$auth" "$(url "$1")" >"$WORK/$1.wrk"
  elif [[ ${AB_WRITES:-0} == 1 ]]; then
    WRK_CALLS=$WORK/$1.users WRK_CALL_PATH=$API/calls taskset -c 0 wrk -t1 -c64 -d"$2s" \
      -s "$(dirname "$0")/wrk/bench.lua" -H "$auth" "$base$API/calls" >"$WORK/$1.wrk"
  else
    WRK_TARGETS=$WORK/$1.targets taskset -c 0 wrk -t1 -c64 -d"$2s" \
      -s "$(dirname "$0")/wrk/bench.lua" -H "$auth" "$base/" >"$WORK/$1.wrk"
  fi
}
cpu() { awk '{print $14 + $15}' "/proc/$(cat "$WORK/$1.pid")/stat"; }  # user + system ticks
# measure NAME...: loads the servers named at once (1 s of warm-up, then SECONDS_EACH); prints
# "requests/s CPU-µs/request non-2xx-answers" of each, a line each.
measure() {
  local name jobs=() before=() i=0
  for name in "$@"; do load "$name" 1 & jobs+=($!); done
  wait "${jobs[@]}"
  jobs=()
  for name in "$@"; do before+=("$(cpu "$name")"); done
  for name in "$@"; do load "$name" "$SECONDS_EACH" & jobs+=($!); done
  wait "${jobs[@]}"
  for name in "$@"; do
    awk -v cpu=$(($(cpu "$name") - before[i++])) -v ticks="$TICKS" '
      /requests in/ {n = $1} /Requests\/sec/ {rps = $2} /Non-2xx/ {bad = $NF}
      END {printf "%s %.2f %d\n", rps, cpu / ticks * 1e6 / n, bad}' "$WORK/$name.wrk"
  done
}

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

ratios=()
cpu_ratios=()
for r in $(seq "$ROUNDS"); do
  if [[ ${AB_TOGETHER:-0} == 1 ]]; then
    { read -r a a_cpu a_bad && read -r b b_cpu b_bad; } < <(measure a b)
  else
    read -r a a_cpu a_bad < <(measure a)
    read -r b b_cpu b_bad < <(measure b)
  fi
  # Errors are cheap answers: a run with them measures something else (429s from AB_WRITES=1 are
  # the limit at work: a user's 100 calls a day).
  if ((a_bad + b_bad > 0)); then echo "round $r: non-2xx answers: A $a_bad, B $b_bad" >&2; fi
  ratio=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", b / a}')
  cpu_ratio=$(awk -v a="$a_cpu" -v b="$b_cpu" 'BEGIN {printf "%.3f", b / a}')
  ratios+=("$ratio")
  cpu_ratios+=("$cpu_ratio")
  echo "round $r: A $a req/s ($a_cpu µs CPU/req), B $b req/s ($b_cpu µs CPU/req)," \
    "B/A $ratio (CPU/req $cpu_ratio)"
done
echo "median B/A: $(printf '%s\n' "${ratios[@]}" | median)" \
  "(A: $A ${AB_ARGS_A:-}; B: $B ${AB_ARGS_B:-}${AB_TOGETHER:+; together})"
echo "median B/A of CPU per request: $(printf '%s\n' "${cpu_ratios[@]}" | median)"
