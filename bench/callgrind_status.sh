#!/usr/bin/env bash
# Instructions the server executes per status GET, under callgrind: a deterministic figure to put
# beside bench/ab.sh's throughput ratio, which the shared machines make noisy.
#
#   bench/callgrind_status.sh BINARY... [env: REQUESTS=20000 WARMUP=2000]
#
# Each binary serves a fresh data directory (one tenant, one server thread) under
# valgrind --tool=callgrind; after WARMUP status GETs on one keep-alive connection its counters are
# zeroed, REQUESTS more are sent, and the counters are dumped: every thread of the server
# (transport, API, store, observers) counts, the client (python3) does not. Prints the
# instructions (Ir) per request of each binary. Needs valgrind.
set -euo pipefail
REQUESTS=${REQUESTS:-20000}
WARMUP=${WARMUP:-2000}
WORK=$(mktemp -d)
PID=
cleanup() {
  [[ -n "$PID" ]] && kill "$PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

STATUS_PATH="/api/v1/whatsapp/subaccounts/cg-sub/channels/cg-ch/callPermissions?destination=%2B6591234567"

# send PORT KEY N: N status GETs on one connection, each asserted 200.
send() {
  python3 - "$1" "$2" "$3" "$STATUS_PATH" <<'EOF'
import http.client, sys
port, key, n, path = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
conn = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    conn.request("GET", path, headers={"Authorization": "Bearer " + key})
    res = conn.getresponse()
    res.read()
    assert res.status == 200, res.status
EOF
}

port=18190
for bin in "$@"; do
  bin=$(realpath "$bin")
  dir=$WORK/$port
  "$bin" admin --data-dir "$dir" account create cg >/dev/null
  "$bin" admin --data-dir "$dir" subaccount create cg-sub --account cg >/dev/null
  "$bin" admin --data-dir "$dir" channel create cg-ch --subaccount cg-sub \
    --phone-number-id 100000000000009 >/dev/null
  key=$("$bin" admin --data-dir "$dir" key create --account cg)
  valgrind --tool=callgrind --callgrind-out-file="$WORK/out.$port" \
    "$bin" serve --data-dir "$dir" --listen "127.0.0.1:$port" --threads 1 \
    >"$WORK/log.$port" 2>&1 &
  PID=$!
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
    sleep 0.2
  done
  send "$port" "$key" "$WARMUP"
  callgrind_control -z "$PID" >/dev/null 2>&1
  send "$port" "$key" "$REQUESTS"
  callgrind_control -d "$PID" >/dev/null 2>&1
  kill "$PID"
  wait "$PID" || true
  PID=
  # The dump made by -d is the out file with a counter suffix; its totals are the requests'.
  dump=$(ls "$WORK"/out."$port".* | head -1)
  ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
  awk -v ir="$ir" -v n="$REQUESTS" -v bin="$bin" \
    'BEGIN {printf "%s: %d instructions per status GET (%d requests)\n", bin, ir / n, n}'
  port=$((port + 1))
done
