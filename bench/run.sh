#!/usr/bin/env bash
# The benchmark harness (issue 4), one command from a clean clone:
#
#   bench/run.sh        every section; writes docs/benchmarks.md and docs/bench-latency.png
#   bench/run.sh tls    only the HTTPS comparison (section 6); writes docs/benchmarks-tls.md
#   bench/run.sh batch  only the batch status lookup (section 7): users looked up per second in
#                       batches of 1000 vs status GETs per second; writes docs/benchmarks-batch.md
#   bench/run.sh cluster  callgate on a Redis Cluster vs redis-benchmark on the same cluster,
#                       bytes per pair, failover unavailability (bench/cluster.sh); writes
#                       docs/benchmarks-cluster.md
#
# Installs what is missing (Debian: wrk, nginx, gnuplot, jq, openssl, the build deps; npm: Prism
# into bench/node_modules), builds callgate and the bench tools in Release (build-bench/), seeds
# the stores, measures, and writes the report. About 15 minutes on 2 cores for every section (up
# to 21 when other work on the machine forces waits and redos), 3 for `tls`. The contenders of
# each comparison are measured alternately, A B A B …, for BENCH_ROUNDS rounds; the report gives
# median (min–max), and how much other work ran on the machine during each measurement.
#
# Load generators run on CPU 0, servers on CPU 1 (taskset), so each server gets one core.
# Everything listens on 127.0.0.1; every server started here is stopped on exit.
#
# Knobs (environment): BENCH_ROUNDS (3; section 1 takes at least 5), BENCH_DURATION (10 s each),
# BENCH_TLS_ROUNDS (15) and BENCH_TLS_DURATION (3 s) for section 6,
# BENCH_BATCH_ROUNDS (10) and BENCH_BATCH_DURATION (3 s) for section 7,
# BENCH_WARMUP (2 s before each), BENCH_PAIRS (1000000), BENCH_OUT (docs), BENCH_QUIET_WAIT
# (120 s: how long to wait for other work on the machine to finish before measuring),
# BENCH_RETRIES (6: measurements that may be redone because other work disturbed them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# nginx runs with access_log off (bench/nginx.conf.in), so every callgate started here does too:
# the comparisons measure the same work. The access log's own cost is bench/ab.sh's (README, Logs).
export CALLGATE_ACCESS_LOG=${CALLGATE_ACCESS_LOG:-off}

MODE=${1:-all}
[[ $MODE == all || $MODE == tls || $MODE == batch || $MODE == cluster ]] || {
  echo "usage: bench/run.sh [tls|batch|cluster]" >&2
  exit 2
}
ROUNDS=${BENCH_ROUNDS:-3}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
PAIRS=${BENCH_PAIRS:-1000000}
OUT=${BENCH_OUT:-docs}
CONNECTIONS=64
BUILD=$ROOT/build-bench
WORK=$BUILD/run
RES=$WORK/results
CONTRACT=$ROOT/docs/openapi.json  # the API description Prism mocks (the status GET)
SECRET=bench-meta-app-secret
SUB=bench-sub
CHANNEL=bench-ch
PHONE_NUMBER_ID=100000000000009
API=/api/v1/whatsapp/subaccounts/$SUB/channels/$CHANNEL
STATUS_NUMBER=6591234567  # a Singapore mobile number, the pair whose status section 1 reads
STATUS_PATH="$API/callPermissions?destination=%2B$STATUS_NUMBER"
STARTED=$(date +%s)

log() { printf '[bench %3ds] %s\n' $(($(date +%s) - STARTED)) "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# --- install -------------------------------------------------------------------------------
log "installing what is missing"
scripts/deps.sh bench
extra=()
# libgtest-dev: the root CMakeLists needs GTest to configure; jq reads the results.
for p in libgtest-dev jq; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || extra+=("$p")
done
if ((${#extra[@]})); then
  sudo=""
  [[ "$(id -u)" == 0 ]] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${extra[@]}" >&2
fi
if [[ $MODE == all && ! bench/node_modules/.package-lock.json -nt bench/package-lock.json ]]; then
  npm ci --prefix bench --no-audit --no-fund --loglevel=error >&2
fi
[[ -f $CONTRACT ]] || die "the API description is not at $CONTRACT"

log "building callgate and the bench tools (Release, $BUILD)"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCALLGATE_BENCH=ON >/dev/null
if [[ $MODE == cluster ]]; then
  # The failover figure is the kill test's own measurement (tests/e2e/cluster_failover_test.cc).
  cmake --build "$BUILD" -j"$(nproc)" --target callgate cluster_failover_tests >/dev/null
else
  cmake --build "$BUILD" -j"$(nproc)" --target callgate callgate_bench_seed callgate_bench_load \
    callgate_bench_fsync >/dev/null
fi
CALLGATE=$BUILD/callgate
SEED=$BUILD/bench/callgate_bench_seed
LOAD=$BUILD/bench/callgate_bench_load
FSYNC=$BUILD/bench/callgate_bench_fsync

# --- processes -----------------------------------------------------------------------------
if (($(nproc) >= 2)); then
  LOAD_CPU=(taskset -c 0)
  SERVER_CPU=(taskset -c 1)
else
  LOAD_CPU=()
  SERVER_CPU=()
fi
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop() {  # stop PID [SIGNAL]
  kill -"${2:-TERM}" "$1" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}

free_port() {  # the first port from $1 up that nothing listens on
  local p=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}

# start_callgate NAME DATA_DIR|- [serve flags...]: sets CG_PID and CG_PORT. With "-", no
# --data-dir (the flags name the store: --redis-cluster).
start_callgate() {
  local name=$1 dir=$2
  shift 2
  [[ $dir == - ]] || set -- --data-dir "$dir" "$@"
  : >"$WORK/$name.out"  # before the background job opens it: the loop below reads it at once
  "${SERVER_CPU[@]}" "$CALLGATE" serve --listen 127.0.0.1:0 --threads 1 "$@" \
    >"$WORK/$name.out" 2>"$WORK/$name.err" &
  CG_PID=$!
  disown "$CG_PID"
  PIDS+=("$CG_PID")
  for _ in $(seq 100); do
    CG_PORT=$(sed -n 's|^callgate listening on https\{0,1\}://127.0.0.1:\([0-9]*\).*|\1|p' "$WORK/$name.out")
    [[ -n $CG_PORT ]] && return 0
    kill -0 "$CG_PID" 2>/dev/null || die "callgate $name did not start: $(cat "$WORK/$name.err")"
    sleep 0.1
  done
  die "callgate $name did not print its port"
}

wait_http() {  # wait_http URL [seconds]: until it answers at all
  for _ in $(seq $((${2:-30} * 10))); do
    curl -s -o /dev/null --max-time 1 "$1" && return 0
    sleep 0.1
  done
  die "nothing answers at $1"
}

# Noise accounting. CPU time is read in jiffies (1/100 s): what the whole machine spent in user
# and system time, what the measured server's process tree spent, and what this script's
# finished children (the load generators) spent; the rest is other work on the machine.
machine_cpu() { awk '/^cpu / {print $2 + $3 + $4}' /proc/stat; }
# Time the hypervisor gave the servers' CPU to other guests (steal): the server could not run.
server_steal() { awk -v cpu="cpu${SERVER_CPU[2]:-}" '$1 == cpu {print $9}' /proc/stat; }
tree_cpu() {  # tree_cpu PID: the process and its descendants
  local total child
  total=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}')
  total=${total:-0}
  for child in $(pgrep -P "$1"); do total=$((total + $(tree_cpu "$child"))); done
  echo "$total"
}
servers_cpu() {  # servers_cpu PID[,PID...]: tree_cpu summed (callgate and the Redis nodes)
  local total=0 pid
  for pid in ${1//,/ }; do total=$((total + $(tree_cpu "$pid"))); done
  echo "$total"
}
children_cpu() {  # sets CHILDREN_CPU; no $(…): `times` reports the shell it runs in
  times >"$WORK/times"
  CHILDREN_CPU=$(awk 'NR == 2 {n = 0; for (i = 1; i <= 2; i++) {split($i, a, /[ms]/); n += a[1] * 60 + a[2]}
                              printf "%d\n", n * 100}' "$WORK/times")
}
NOISE_START=()
SPIN_PIDS=()
spin_cpu() {  # the CPU time of the spinners of section 2 (they only use idle time)
  local total=0 pid
  for pid in "${SPIN_PIDS[@]}"; do total=$((total + $(tree_cpu "$pid"))); done
  echo "$total"
}
noise_start() {  # noise_start SERVER_PID[,PID...]
  children_cpu
  NOISE_START=("$(machine_cpu)" "$(($(servers_cpu "$1") + $(spin_cpu)))" "$CHILDREN_CPU" "$(date +%s%N)"
    "$(servers_cpu "$1")" "$(server_steal)" "$(servers_cpu "${REDIS_PIDS:-}")")
}
noise_end() {  # noise_end SERVER_PID[,PID...] RESULT: adds other_cpu_pct, server_cpu_pct, stolen_pct
  local machine server children ns other own stolen nodes
  machine=$(($(machine_cpu) - NOISE_START[0]))
  server=$(($(servers_cpu "$1") + $(spin_cpu) - NOISE_START[1]))
  children_cpu
  children=$((CHILDREN_CPU - NOISE_START[2]))
  ns=$(($(date +%s%N) - NOISE_START[3]))
  other=$(jq -n "[0, ($machine - $server - $children) * 1e9 / $ns] | max | . * 10 | round / 10")
  # The server's own CPU use (spinners excluded), warmup included.
  own=$(jq -n "($(servers_cpu "$1") - ${NOISE_START[4]}) * 1e9 / $ns | . * 10 | round / 10")
  stolen=$(jq -n "($(server_steal) - ${NOISE_START[5]}) * 1e9 / $ns | . * 10 | round / 10")
  # The Redis nodes' share of it (cluster mode: bench/cluster.sh sets REDIS_PIDS).
  nodes=$(jq -n "($(servers_cpu "${REDIS_PIDS:-}") - ${NOISE_START[6]}) * 1e9 / $ns | . * 10 | round / 10")
  jq --argjson other "$other" --argjson own "$own" --argjson stolen "$stolen" \
    --argjson nodes "$nodes" --arg cluster "${REDIS_PIDS:-}" \
    '. + {other_cpu_pct: $other, server_cpu_pct: $own, stolen_pct: $stolen}
       + (if $cluster == "" then {} else {nodes_cpu_pct: $nodes} end)' \
    "$RES/$2.json" >"$RES/$2.tmp"
  mv "$RES/$2.tmp" "$RES/$2.json"
}

# wait_quiet SECONDS: until other work leaves the CPUs (< 10 % busy), at most that long.
wait_quiet() {
  local busy
  for _ in $(seq $(($1 / 5))); do
    busy=$(busy_pct)
    ((busy < 10)) && return 0
    log "  the CPUs are $busy % busy with other work; waiting"
    sleep 4
  done
}

# retrying FUNCTION RESULT ...: runs one measurement; if other work took more than 20 % of a
# core meanwhile, or the hypervisor more than 5 % of the server's CPU (steal), waits for quiet and
# measures again (BENCH_RETRIES such redos in the whole run).
RETRIES_LEFT=${BENCH_RETRIES:-6}
retrying() {
  local fn=$1 result=$2
  while :; do
    "$fn" "${@:2}"
    jq -e '(.other_cpu_pct // 0) > 20 or (.stolen_pct // 0) > 5' "$RES/$result.json" >/dev/null || return 0
    ((RETRIES_LEFT > 0)) || return 0
    RETRIES_LEFT=$((RETRIES_LEFT - 1))
    log "  $result was measured under other load; measuring again ($RETRIES_LEFT redos left)"
    wait_quiet 30
  done
}
run_wrk() { retrying wrk_once "$@"; }
run_load() { retrying load_once "$@"; }

# wrk_once RESULT SERVER_PID URL KEY [TARGETS_FILE] [BODY_FILE]: a warmup, then the measured run
# into $RES/RESULT.json. With BODY_FILE, every request POSTs it (JSON) to URL.
wrk_once() {
  local result=$1 pid=$2 url=$3 key=$4 targets=${5:-} body=${6:-}
  local args=(-t1 -c"$CONNECTIONS" --latency -s "$ROOT/bench/wrk/bench.lua" -H "Authorization: Bearer $key")
  noise_start "$pid"
  WRK_TARGETS=$targets WRK_BODY=$body timeout $((WARMUP + 30)) "${LOAD_CPU[@]}" wrk "${args[@]}" \
    -d"${WARMUP}s" "$url" >/dev/null
  WRK_TARGETS=$targets WRK_BODY=$body WRK_JSON=$RES/$result.json timeout $((DURATION + 30)) "${LOAD_CPU[@]}" \
    wrk "${args[@]}" -d"${DURATION}s" "$url" >"$RES/$result.txt"
  noise_end "$pid" "$result"
  log "  $result: $(jq -r '"\(.rps|floor) req/s, p50 \(.latency_ms.p50) ms, p99 \(.latency_ms.p99) ms, non-2xx \(.non_2xx), other CPU \(.other_cpu_pct) %, stolen \(.stolen_pct) %"' "$RES/$result.json")"
}

# load_once RESULT SERVER_PID PORT [loadgen flags...]: our generator into $RES/RESULT.json.
load_once() {
  local result=$1 pid=$2 port=$3
  shift 3
  noise_start "$pid"
  timeout $((WARMUP + DURATION + 30)) "${LOAD_CPU[@]}" "$LOAD" --url "http://127.0.0.1:$port" \
    --connections "$CONNECTIONS" --duration "$DURATION" --warmup "$WARMUP" \
    --json "$RES/$result.json" --curve "$RES/$result.curve" "$@" >/dev/null || true
  [[ -s $RES/$result.json ]] || echo '{"completed":0,"ok":0,"status":{},"acked_total":0}' >"$RES/$result.json"
  noise_end "$pid" "$result"
  log "  $result: $(jq -r '"\(.ok_per_s // 0|floor) ok/s of \(.rps // 0|floor) req/s, p50 \(.latency_ms.p50 // "-") ms, p99 \(.latency_ms.p99 // "-") ms, status \(.status|tostring), other CPU \(.other_cpu_pct) %, stolen \(.stolen_pct) %"' "$RES/$result.json")"
}

median() {  # median FIELD FILES...: the median of a numeric jq field over result files
  local field=$1
  shift
  jq -s "map($field) | sort | .[(length - 1) / 2 | floor]" "$@"
}

# create_tenants DATA_DIR: the bench account, subaccount, channel; prints a fresh API key.
create_tenants() {
  local dir=$1
  "$CALLGATE" admin --data-dir "$dir" account create bench >/dev/null
  "$CALLGATE" admin --data-dir "$dir" subaccount create "$SUB" --account bench >/dev/null
  "$CALLGATE" admin --data-dir "$dir" channel create "$CHANNEL" --subaccount "$SUB" \
    --phone-number-id "$PHONE_NUMBER_ID" >/dev/null
  "$CALLGATE" admin --data-dir "$dir" key create --account bench
}

# How busy the CPUs are with other work while the harness is idle (1 s sample): the noise.
busy_pct() {
  local a b
  read -ra a < <(head -1 /proc/stat)
  sleep 1
  read -ra b < <(head -1 /proc/stat)
  local total=0 idle=$((b[4] + b[5] - a[4] - a[5])) i
  for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
  echo $((100 * (total - idle) / (total > 0 ? total : 1)))
}

rm -rf "$WORK"
mkdir -p "$RES" "$WORK/nginx/tmp"

# Shared machines: give other work up to BENCH_QUIET_WAIT seconds to finish first. Whatever still
# runs is measured during each run (other_cpu_pct) and reported; see also `retrying`.
wait_quiet "${BENCH_QUIET_WAIT:-120}"

# --- machine -------------------------------------------------------------------------------
jq -n --arg nproc "$(nproc)" \
  --arg cpu "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" \
  --arg kernel "$(uname -srm)" \
  --arg memory "$(free -g | awk '/^Mem:/ {print $2 " GiB"}')" \
  --arg fs "$(df -T "$WORK" | awk 'NR == 2 {print $2 " on " $1}')" \
  --arg os "$(. /etc/os-release && echo "$PRETTY_NAME")" \
  --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  --arg busy_at_start "$(busy_pct)" \
  --arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src CMakeLists.txt 2>/dev/null || echo '+uncommitted src')" \
  --arg nginx "$(nginx -v 2>&1 | sed 's/.*nginx\///')" \
  --arg wrk "$(wrk -v 2>&1 | head -1 | awk '{print $2}')" \
  --arg prism "$(node -p "require('./bench/node_modules/@stoplight/prism-cli/package.json').version" 2>/dev/null || echo -)" \
  --arg node "$(node --version)" \
  --arg cxx "$(c++ --version | head -1)" \
  --arg command "$(env | grep -E '^BENCH_' | sort | tr '\n' ' ')bench/run.sh${1:+ $1}" \
  --argjson rounds "$ROUNDS" --argjson duration "$DURATION" --argjson warmup "$WARMUP" \
  --argjson connections "$CONNECTIONS" \
  '$ARGS.named' >"$RES/machine.json"

if [[ $MODE == cluster ]]; then
  # shellcheck source=bench/cluster.sh
  source bench/cluster.sh
  exit 0
fi

# --- stores --------------------------------------------------------------------------------
# `tls` and `batch` need only the small store (the status pair, and 1000 others for a batch).
if [[ $MODE == all ]]; then log "seeding 1 thousand and $PAIRS pairs"; else log "seeding 1 thousand pairs"; fi
KEY_SMALL=$(create_tenants "$WORK/data-1k")
"$SEED" seed --db "$WORK/data-1k/callgate.db" --channel "$CHANNEL" --pairs 1000 \
  --targets-out "$WORK/targets-1k.txt" --targets-max "$PAIRS" --path-prefix "$API/callPermissions?destination=" \
  --fixed "+$STATUS_NUMBER" --rng-seed 1 >"$RES/seed-1k.json"
if [[ $MODE == all ]]; then
  KEY_LARGE=$(create_tenants "$WORK/data-1m")
  "$SEED" seed --db "$WORK/data-1m/callgate.db" --channel "$CHANNEL" --pairs "$PAIRS" \
    --targets-out "$WORK/targets-1m.txt" --targets-max "$PAIRS" --path-prefix "$API/callPermissions?destination=" \
    --fixed "+$STATUS_NUMBER" --rng-seed 2 >"$RES/seed-1m.json"
  log "  $(cat "$RES/seed-1m.json")"
fi

# Webhooks need the app secret; a build without the flag still runs the read benchmarks.
WEBHOOK_FLAGS=()
"$CALLGATE" serve --help 2>&1 | grep -q -- --meta-app-secret && WEBHOOK_FLAGS=(--meta-app-secret "$SECRET")

start_callgate callgate-1k "$WORK/data-1k" "${WEBHOOK_FLAGS[@]}"
SMALL_PID=$CG_PID SMALL_PORT=$CG_PORT
if [[ $MODE == all ]]; then
  start_callgate callgate-1m "$WORK/data-1m" "${WEBHOOK_FLAGS[@]}"
  LARGE_PID=$CG_PID LARGE_PORT=$CG_PORT
fi

# The one certificate both HTTPS servers present: ECDSA P-256, for 127.0.0.1.
mkdir -p "$WORK/tls"
TLS_CERT=$WORK/tls/cert.pem TLS_KEY=$WORK/tls/key.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 -subj /CN=callgate-bench \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$TLS_KEY" -out "$TLS_CERT" 2>/dev/null

# nginx serves, as a constant, exactly the body callgate answers for the status pair, over HTTP
# on one port and HTTPS on another.
BODY=$(curl -sS --fail -H "Authorization: Bearer $KEY_SMALL" "http://127.0.0.1:$SMALL_PORT$STATUS_PATH")
plain_json='^[][{}":,.A-Za-z0-9_+-]+$'  # nothing nginx or sed would read specially
[[ $BODY =~ $plain_json ]] || die "the body cannot be quoted for nginx: $BODY"
NGINX_PORT=$(free_port 18081)
NGINX_TLS_PORT=$(free_port $((NGINX_PORT + 1)))
sed -e "s|@WORK@|$WORK/nginx|g" -e "s|@PORT@|$NGINX_PORT|g" -e "s|@TLS_PORT@|$NGINX_TLS_PORT|g" \
  -e "s|@TLS_CERT@|$TLS_CERT|g" -e "s|@TLS_KEY@|$TLS_KEY|g" -e "s|@LOCATION@|$API/callPermissions|g" \
  -e "s|@BODY@|$BODY|" bench/nginx.conf.in >"$WORK/nginx/nginx.conf"
"${SERVER_CPU[@]}" nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" >"$WORK/nginx/out" 2>&1 &
NGINX_PID=$!
disown "$NGINX_PID"
PIDS+=("$NGINX_PID")
wait_http "http://127.0.0.1:$NGINX_PORT/"
NGINX_BODY=$(curl -sS --fail "http://127.0.0.1:$NGINX_PORT$STATUS_PATH")
[[ $NGINX_BODY == "$BODY" ]] || die "nginx does not serve callgate's body"
jq -n --arg body "$BODY" --arg path "$STATUS_PATH" '{bytes: ($body | length), body: $body, path: $path}' \
  >"$RES/body.json"

# --- 6. HTTPS status GET: callgate vs nginx, same certificate ----------------------------------
# Measured last in a full run, alone with `bench/run.sh tls`. Same wrk settings as section 1,
# keep-alive: each connection's handshake happens once, in the warmup, so what is compared is
# the request path through TLS records. Both servers must negotiate the same protocol and
# cipher suite (nginx.conf.in gives nginx callgate's lists), or the comparison is void.
# More and shorter runs than elsewhere (BENCH_TLS_ROUNDS, 15, of BENCH_TLS_DURATION, 3 s): on
# these shared VMs the host's speed drifts over tens of seconds (either server's rate moved
# 35k-65k req/s between 10 s runs with no other work on the guest), so a pair of 10 s runs often
# straddles a change; pairs closer in time give a steadier median ratio.
TLS_ROUNDS=${BENCH_TLS_ROUNDS:-15}
TLS_DURATION=${BENCH_TLS_DURATION:-3}
https_section() {
  start_callgate callgate-tls "$WORK/data-1k" --tls-cert "$TLS_CERT" --tls-key "$TLS_KEY"
  local pid=$CG_PID port=$CG_PORT cipher nginx_cipher r
  local DURATION=$TLS_DURATION  # what wrk_once reads
  local body nginx_body
  body=$(curl -sS --fail --cacert "$TLS_CERT" -H "Authorization: Bearer $KEY_SMALL" "https://127.0.0.1:$port$STATUS_PATH")
  nginx_body=$(curl -sS --fail --cacert "$TLS_CERT" "https://127.0.0.1:$NGINX_TLS_PORT$STATUS_PATH")
  [[ $body == "$BODY" && $nginx_body == "$BODY" ]] || die "the HTTPS bodies differ: $body / $nginx_body"
  negotiated() { openssl s_client -connect "127.0.0.1:$1" </dev/null 2>/dev/null | sed -n 's/^New, \(.*\), Cipher is \(.*\)$/\1 \2/p'; }
  cipher=$(negotiated "$port")
  nginx_cipher=$(negotiated "$NGINX_TLS_PORT")
  [[ -n $cipher && $cipher == "$nginx_cipher" ]] || die "callgate negotiates '$cipher', nginx '$nginx_cipher'"
  jq -n --arg negotiated "$cipher" --arg certificate "ECDSA P-256, self-signed" \
    --arg openssl "$(openssl version)" --argjson rounds "$TLS_ROUNDS" --argjson duration "$DURATION" \
    '$ARGS.named' >"$RES/tls.json"
  log "6. HTTPS status GET, callgate vs nginx ($cipher), $TLS_ROUNDS rounds of $DURATION s"
  for r in $(seq "$TLS_ROUNDS"); do
    run_wrk "s6-callgate-r$r" "$pid" "https://127.0.0.1:$port$STATUS_PATH" "$KEY_SMALL"
    run_wrk "s6-nginx-r$r" "$NGINX_PID" "https://127.0.0.1:$NGINX_TLS_PORT$STATUS_PATH" "$KEY_SMALL"
  done
  stop "$pid"
}

# report MODE: the markdown (and, for a full run, the latency chart) into $OUT.
report() {
  jq -n --argjson seconds $(($(date +%s) - STARTED)) --arg busy_at_end "$(busy_pct)" \
    --argjson redone $((${BENCH_RETRIES:-6} - RETRIES_LEFT)) \
    '$ARGS.named' >"$RES/elapsed.json"
  mkdir -p "$OUT"
  if [[ $1 == batch ]]; then
    log "$(node bench/report.mjs "$RES" "$OUT/benchmarks-batch.md" "$WORK/plot" batch)"
    log "wrote $OUT/benchmarks-batch.md"
    return
  fi
  if [[ $1 == tls ]]; then
    # report.mjs prints the ratio's line too.
    log "$(node bench/report.mjs "$RES" "$OUT/benchmarks-tls.md" "$WORK/plot" tls)"
    log "wrote $OUT/benchmarks-tls.md"
    return
  fi
  node bench/report.mjs "$RES" "$OUT/benchmarks.md" "$WORK/plot"
  gnuplot -e "dir='$WORK/plot'; out='$OUT/bench-latency.png'" bench/latency.gp
  log "wrote $OUT/benchmarks.md and $OUT/bench-latency.png"
}

# --- 7. batch status lookup: users per second in batches of 1000 vs status GETs per second ------
# The GET is section 1's (one URL, the status pair); the batch POSTs one fixed body naming 1000
# distinct stored destinations of the same store, so both read pairs the cache holds. Same wrk
# settings; short alternating rounds, as in section 6, so each pair of runs sees the same host.
BATCH_ROUNDS=${BENCH_BATCH_ROUNDS:-10}
BATCH_DURATION=${BENCH_BATCH_DURATION:-3}
batch_section() {
  local DURATION=$BATCH_DURATION  # what wrk_once reads
  local batch_body=$WORK/batch-body.json batch_url="http://127.0.0.1:$SMALL_PORT$API/callPermissions/batch"
  local answer r
  sed -n 's|.*?destination=%2B|+|p' "$WORK/targets-1k.txt" | sort -u | head -1000 | jq -R . |
    jq -cs '{destinations: .}' >"$batch_body"
  [[ $(jq '.destinations | length' "$batch_body") == 1000 ]] || die "fewer than 1000 stored destinations"
  answer=$(curl -sS --fail -H "Authorization: Bearer $KEY_SMALL" -H 'Content-Type: application/json' \
    --data-binary "@$batch_body" "$batch_url")
  jq -e '(.results | length) == 1000 and all(.results[]; has("status"))' <<<"$answer" >/dev/null ||
    die "the batch is not answered with 1000 statuses"
  jq -n --argjson items 1000 --argjson request_bytes "$(wc -c <"$batch_body")" \
    --argjson response_bytes "${#answer}" --argjson rounds "$BATCH_ROUNDS" \
    --argjson duration "$DURATION" '$ARGS.named' >"$RES/batch.json"
  log "7. batch status lookup (1000 users a POST) vs status GET, $BATCH_ROUNDS rounds of $DURATION s"
  for r in $(seq "$BATCH_ROUNDS"); do
    run_wrk "s7-get-r$r" "$SMALL_PID" "http://127.0.0.1:$SMALL_PORT$STATUS_PATH" "$KEY_SMALL"
    run_wrk "s7-batch-r$r" "$SMALL_PID" "$batch_url" "$KEY_SMALL" "" "$batch_body"
  done
}

GET_ROUNDS=$((ROUNDS > 5 ? ROUNDS : 5))
if [[ $MODE == batch ]]; then
  batch_section
  report batch
  exit 0
fi
if [[ $MODE == tls ]]; then
  https_section
  report tls
  exit 0
fi

# --- 1. status GET: callgate vs nginx --------------------------------------------------------
# The headline ratio gets more rounds than the rest (GET_ROUNDS, 5 or more): a single disturbed
# round moves a median of three.
log "1. status GET, callgate vs nginx, $GET_ROUNDS rounds"
for r in $(seq "$GET_ROUNDS"); do
  run_wrk "s1-callgate-r$r" "$SMALL_PID" "http://127.0.0.1:$SMALL_PORT$STATUS_PATH" "$KEY_SMALL"
  run_wrk "s1-nginx-r$r" "$NGINX_PID" "http://127.0.0.1:$NGINX_PORT$STATUS_PATH" "$KEY_SMALL"
done

# --- 2. latency at 50 % of callgate's maximum, open loop ---------------------------------------
# Twice: with the CPUs kept awake and as they are. On this VM an idle vCPU takes up to
# milliseconds to wake, and at half load the CPUs idle between requests, so plain runs measure
# that as much as the server. A SCHED_IDLE spinner per core (what disabling C-states does on
# bare metal) runs only when nothing else wants the core: the servers are not slowed.
MAX=$(median .rps "$RES"/s1-callgate-r*.json)
RATE=$(jq -n "$MAX / 2 | floor")
QUARTER=$(jq -n "$MAX / 4 | floor")
log "2. open-loop latency at $RATE req/s (50 % of $MAX) and $QUARTER (25 %), callgate vs nginx"
spin_start() {
  local cpu
  for cpu in 0 1; do
    chrt -i 0 taskset -c "$cpu" bash -c 'while :; do :; done' &
    SPIN_PIDS+=($!)
    PIDS+=($!)
    disown $!
  done
}
spin_stop() {
  local pid
  for pid in "${SPIN_PIDS[@]}"; do stop "$pid"; done
  SPIN_PIDS=()
}
for r in $(seq "$ROUNDS"); do
  spin_start
  run_load "s2-callgate-r$r" "$SMALL_PID" "$SMALL_PORT" --rate "$RATE" --get "$STATUS_PATH" \
    --header "Authorization: Bearer $KEY_SMALL"
  run_load "s2-nginx-r$r" "$NGINX_PID" "$NGINX_PORT" --rate "$RATE" --get "$STATUS_PATH" \
    --header "Authorization: Bearer $KEY_SMALL"
  spin_stop
  run_load "s2-callgate-idle-r$r" "$SMALL_PID" "$SMALL_PORT" --rate "$RATE" --get "$STATUS_PATH" \
    --header "Authorization: Bearer $KEY_SMALL"
  run_load "s2-nginx-idle-r$r" "$NGINX_PID" "$NGINX_PORT" --rate "$RATE" --get "$STATUS_PATH" \
    --header "Authorization: Bearer $KEY_SMALL"
  run_load "s2q-callgate-r$r" "$SMALL_PID" "$SMALL_PORT" --rate "$QUARTER" --get "$STATUS_PATH" \
    --header "Authorization: Bearer $KEY_SMALL"
  run_load "s2q-nginx-r$r" "$NGINX_PID" "$NGINX_PORT" --rate "$QUARTER" --get "$STATUS_PATH" \
    --header "Authorization: Bearer $KEY_SMALL"
done

# --- 3. scale: 1 thousand vs 1 million pairs, random keys ---------------------------------------
log "3. GET with random keys, 1k vs $PAIRS pairs"
# Throughput once warm: first every stored pair is read once, in list order (each read a miss of
# the pair cache, which then holds them all with the default --cache-mb). The cache's miss path is
# measured on its own by a second process on the 1M store with the cache off.
warm_store() {  # warm_store PORT TARGETS KEY SECONDS
  "${LOAD_CPU[@]}" "$LOAD" --url "http://127.0.0.1:$1" --connections "$CONNECTIONS" \
    --duration "$4" --warmup 0 --rate 0 --targets "$2" --targets-order file \
    --header "Authorization: Bearer $3" >/dev/null
}
warm_store "$SMALL_PORT" "$WORK/targets-1k.txt" "$KEY_SMALL" 2
# Long enough to read every pair at 50k reads/s.
warm_store "$LARGE_PORT" "$WORK/targets-1m.txt" "$KEY_LARGE" $(((PAIRS + 49999) / 50000))
start_callgate callgate-1m-nocache "$WORK/data-1m" --cache-mb 0
NOCACHE_PID=$CG_PID NOCACHE_PORT=$CG_PORT
for r in $(seq "$ROUNDS"); do
  run_wrk "s3-1k-r$r" "$SMALL_PID" "http://127.0.0.1:$SMALL_PORT/" "$KEY_SMALL" "$WORK/targets-1k.txt"
  run_wrk "s3-1m-r$r" "$LARGE_PID" "http://127.0.0.1:$LARGE_PORT/" "$KEY_LARGE" "$WORK/targets-1m.txt"
  run_wrk "s3-1m-nocache-r$r" "$NOCACHE_PID" "http://127.0.0.1:$NOCACHE_PORT/" "$KEY_LARGE" \
    "$WORK/targets-1m.txt"
done
stop "$NOCACHE_PID"
rss() { awk -v f="$2:" '$1 == f {print $2 * 1024}' "/proc/$1/status"; }
jq -n --argjson large "$(rss "$LARGE_PID" VmRSS)" --argjson large_hwm "$(rss "$LARGE_PID" VmHWM)" \
  --argjson small "$(rss "$SMALL_PID" VmRSS)" \
  '{rss_1m_bytes: $large, hwm_1m_bytes: $large_hwm, rss_1k_bytes: $small}' >"$RES/memory.json"

# --- 4. durable writes vs the fsync rate --------------------------------------------------------
log "4. durable writes (reservations, webhooks) vs fsync, $PAIRS-pair store"
# Not `retrying`: a redo would reserve the same destinations again (429).
for r in $(seq "$ROUNDS"); do
  noise_start "$LARGE_PID"
  "${LOAD_CPU[@]}" "$FSYNC" --dir "$WORK/data-1m" --seconds 4 >"$RES/s4-fsync-r$r.json"
  noise_end "$LARGE_PID" "s4-fsync-r$r"
  log "  s4-fsync-r$r: $(jq -c . "$RES/s4-fsync-r$r.json")"
  load_once "s4-reserve-r$r" "$LARGE_PID" "$LARGE_PORT" --rate 0 --reserve "$API/callPermissionRequests" \
    --dest-base $((r * 10000000)) --header "Authorization: Bearer $KEY_LARGE"
  load_once "s4-webhook-r$r" "$LARGE_PID" "$LARGE_PORT" --rate 0 --webhook /webhooks/whatsapp --secret "$SECRET" \
    --phone-number-id "$PHONE_NUMBER_ID" --dest-base $((r * 10000000)) --tag "$r"
  # One connection: every write waits for its own commit, what group commit is measured against.
  load_once "s4-reserve1-r$r" "$LARGE_PID" "$LARGE_PORT" --rate 0 --connections 1 --reserve "$API/callPermissionRequests" \
    --dest-base $(((r + 50) * 10000000)) --header "Authorization: Bearer $KEY_LARGE"
done
# Nothing acknowledged may be lost: kill -9, then count what the store holds.
stop "$LARGE_PID" KILL
acked_reservations=$(jq -s 'map(.acked_total) | add' "$RES"/s4-reserve-r*.json "$RES"/s4-reserve1-r*.json)
acked_webhooks=$(jq -s 'map(.acked_total) | add' "$RES"/s4-webhook-r*.json)
jq -n --argjson acked_reservations "$acked_reservations" --argjson acked_webhooks "$acked_webhooks" \
  --argjson stored_reservations "$("$SEED" count --db "$WORK/data-1m/callgate.db" --prefix +19)" \
  --argjson stored_webhooks "$("$SEED" count --db "$WORK/data-1m/callgate.db" --prefix +447)" \
  '$ARGS.named' >"$RES/durability.json"
log "  after kill -9: $(jq -c . "$RES/durability.json")"

# --- 5. the peer: Prism mocking the contract ----------------------------------------------------
PRISM_PORT=$(free_port 18090)
log "5. callgate vs Prism $(jq -r .prism "$RES/machine.json")"
"${SERVER_CPU[@]}" bench/node_modules/.bin/prism mock -h 127.0.0.1 -p "$PRISM_PORT" "$CONTRACT" \
  >"$WORK/prism.out" 2>&1 &
PRISM_PID=$!
disown "$PRISM_PID"
PIDS+=("$PRISM_PID")
wait_http "http://127.0.0.1:$PRISM_PORT/" 60
for r in $(seq "$ROUNDS"); do
  run_wrk "s5-callgate-r$r" "$SMALL_PID" "http://127.0.0.1:$SMALL_PORT$STATUS_PATH" "$KEY_SMALL"
  run_wrk "s5-prism-r$r" "$PRISM_PID" "http://127.0.0.1:$PRISM_PORT$STATUS_PATH" "$KEY_SMALL"
done
stop "$PRISM_PID"
stop "$SMALL_PID"

https_section
stop "$NGINX_PID"

report all
