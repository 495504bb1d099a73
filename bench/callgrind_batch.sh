#!/usr/bin/env bash
# Instructions the server executes per user looked up: by status GET, and by batch POST of 1000
# distinct destinations (POST …/callPermissions/batch), under callgrind — the deterministic
# companion of `bench/run.sh batch`, whose throughput ratio the shared machines make noisy.
#
#   bench/callgrind_batch.sh BINARY [env: GETS=20000 BATCHES=200 WARMUP=2000 KEEP=DIR]
#
# One server (fresh data directory, one tenant, one server thread) under valgrind
# --tool=callgrind; on one keep-alive connection each: WARMUP GETs then GETS counted, then one
# warmup batch and BATCHES counted (counters zeroed before and dumped after each counted part):
# every thread of the server counts, the client (python3) does not. The 1000 destinations and the
# GET's are never-written pairs, read through the pair cache alike. Prints instructions per GET,
# per batch user, and their ratio. KEEP=DIR keeps the two dumps there (callgrind_annotate).
# Needs valgrind.
#
# The ratio understates the throughput ratio: callgrind counts user-space instructions only, and
# a GET's share of kernel work (its own read, write and epoll wake-ups) is much of its CPU time,
# which a batch pays once for 1000 users; and it counts each byte of a large `rep movsb` copy
# (the transport copying the ~330 KB answer into its write buffer, ~375 a user) as an
# instruction, a few nanoseconds a user in fact.
set -euo pipefail
GETS=${GETS:-20000}
BATCHES=${BATCHES:-200}
WARMUP=${WARMUP:-2000}
WORK=$(mktemp -d)
PID=
cleanup() {
  [[ -n "$PID" ]] && kill "$PID" 2>/dev/null || true
  if [[ -n "${KEEP:-}" ]]; then cp "$WORK"/out.* "$KEEP"/ 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

API=/api/v1/whatsapp/subaccounts/cg-sub/channels/cg-ch/callPermissions

# send PORT KEY MODE N: N status GETs (MODE get) or batch POSTs (MODE batch) on one connection,
# each asserted 200 (a batch: 1000 statuses).
send() {
  python3 - "$@" "$API" <<'EOF'
import http.client, json, sys
port, key, mode, n, api = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
conn = http.client.HTTPConnection("127.0.0.1", port)
auth = {"Authorization": "Bearer " + key}
body = json.dumps({"destinations": ["+659%07d" % (1000000 + i) for i in range(1000)]})
for _ in range(n):
    if mode == "get":
        conn.request("GET", api + "?destination=%2B6591234567", headers=auth)
    else:
        conn.request("POST", api + "/batch", body=body, headers={**auth, "Content-Type": "application/json"})
    res = conn.getresponse()
    data = res.read()
    assert res.status == 200, (res.status, data[:200])
    if mode == "batch":
        results = json.loads(data)["results"]
        assert len(results) == 1000 and all("status" in r for r in results), data[:200]
EOF
}

# counted: the instructions of the dump `callgrind_control -d` just made (out.1, out.2).
counted() {
  local dump
  dump=$(ls -v "$WORK"/out.* | tail -1)
  awk '/^(summary|totals):/ {print $2; exit}' "$dump"
}

bin=$(realpath "$1")
port=18290
dir=$WORK/data
"$bin" admin --data-dir "$dir" account create cg >/dev/null
"$bin" admin --data-dir "$dir" subaccount create cg-sub --account cg >/dev/null
"$bin" admin --data-dir "$dir" channel create cg-ch --subaccount cg-sub \
  --phone-number-id 100000000000009 >/dev/null
key=$("$bin" admin --data-dir "$dir" key create --account cg)
CALLGATE_ACCESS_LOG=off valgrind --tool=callgrind --callgrind-out-file="$WORK/out" \
  "$bin" serve --data-dir "$dir" --listen "127.0.0.1:$port" --threads 1 >"$WORK/log" 2>&1 &
PID=$!
for _ in $(seq 300); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.2
done
send "$port" "$key" get "$WARMUP"
callgrind_control -z "$PID" >/dev/null 2>&1
send "$port" "$key" get "$GETS"
callgrind_control -d "$PID" >/dev/null 2>&1
get_ir=$(counted)
send "$port" "$key" batch 1
callgrind_control -z "$PID" >/dev/null 2>&1
send "$port" "$key" batch "$BATCHES"
callgrind_control -d "$PID" >/dev/null 2>&1
batch_ir=$(counted)
kill "$PID"
wait "$PID" || true
PID=
awk -v g="$get_ir" -v b="$batch_ir" -v gets="$GETS" -v batches="$BATCHES" -v bin="$bin" 'BEGIN {
  per_get = g / gets; per_user = b / (batches * 1000)
  printf "%s: %d instructions per status GET (%d GETs), %d per user in batches of 1000 (%d batches): %.1fx\n",
    bin, per_get, gets, per_user, batches, per_get / per_user }'
