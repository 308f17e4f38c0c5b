#!/bin/bash
# One benchmark point for A/B comparisons: starts the appliance (release build) on a fresh data
# directory, runs `unmogrowp-bench load` against it, and prints events/s, latency, the load
# generator's CPU, the server's CPU per accepted event and its peak memory. The server's
# /metrics at the end are saved to $OUT/metrics.txt.
#
#   bench/scripts/point.sh BATCH SECONDS
#   CONNS=256 bench/scripts/point.sh 1 15        # connections (default 64)
#   SERVER_BIN=/path/to/other/unmogrowp SERVER_ENV="UNMOGROWP_WAL__SEGMENT_BYTES=4194304" \
#     bench/scripts/point.sh 1 20
#
#   PRIVACY='{"ip":"truncate","user_id":"hash","device_id":"encrypt"}' \
#     bench/scripts/point.sh 100 15                # the app's privacy transforms on (issue 29)
#
#   WAIT_MIRRORS=300 SERVER_ENV='UNMOGROWP_MIRROR=[{name="pg",kind="postgres",url="…"}]' \
#     bench/scripts/point.sh 100 20                # then waits for the mirrors to catch up
#
# Alternate the variants being compared (A B A B ...): on this VM the run-to-run spread is
# ±10–15%, larger than most effects. The full three-target run is `unmogrowp-bench ingest`.
set -euo pipefail
T=${CARGO_TARGET_DIR:-$HOME/.cache/unmogrowp-target}/release
BATCH=${1:-100}
SECS=${2:-15}
OUT=${OUT:-/tmp/unmogrowp-point}
PORT=${PORT:-18080}
PASSWORD=bench-admin-password
mkdir -p "$OUT"
rm -rf "$OUT/data"
# shellcheck disable=SC2086
env ${SERVER_ENV:-} UNMOGROWP_AUTH__INGEST_EVENTS_PER_SEC_PER_KEY=100000000 \
  UNMOGROWP_ADMIN_PASSWORD=$PASSWORD "${SERVER_BIN:-$T/unmogrowp}" serve \
  --data-dir "$OUT/data" --http-addr 127.0.0.1:$PORT 2>"$OUT/server.log" &
SP=$!
trap 'kill $SP 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf localhost:$PORT/ready >/dev/null && break; sleep 0.2; done
TOKEN=$(curl -sf localhost:$PORT/api/auth/login -H 'content-type: application/json' \
  -d "{\"email\":\"admin@localhost\",\"password\":\"$PASSWORD\"}" |
  python3 -c 'import json,sys;print(json.load(sys.stdin)["access_token"])')
KEY=$(curl -sf localhost:$PORT/api/apps -H "authorization: Bearer $TOKEN" \
  -H 'content-type: application/json' -d '{"name":"bench_app","id":"bench_app"}' |
  python3 -c 'import json,sys;print(json.load(sys.stdin)["api_key"])')
if [ -n "${PRIVACY:-}" ]; then
  curl -sf -X PATCH localhost:$PORT/api/apps/bench_app -H "authorization: Bearer $TOKEN" \
    -H 'content-type: application/json' -d "{\"privacy\":$PRIVACY}" >/dev/null
fi
/usr/bin/time -f "generator cpu %U+%S s, wall %e s" "$T/unmogrowp-bench" load \
  --addr 127.0.0.1:$PORT --batch "$BATCH" --duration "$SECS" --connections "${CONNS:-64}" --api-key "$KEY"
curl -sf localhost:$PORT/metrics >"$OUT/metrics.txt"
if [ -n "${WAIT_MIRRORS:-}" ]; then
  # Mirrors (UNMOGROWP_MIRROR in SERVER_ENV): the lag when the load stopped, and how long the
  # mirrors take to catch up from there (bounded by WAIT_MIRRORS seconds).
  TOKEN=$(curl -sf localhost:$PORT/api/auth/login -H 'content-type: application/json' \
    -d "{\"email\":\"admin@localhost\",\"password\":\"$PASSWORD\"}" |
    python3 -c 'import json,sys;print(json.load(sys.stdin)["access_token"])')
  python3 - "$PORT" "$TOKEN" "$WAIT_MIRRORS" "$SECS" <<'PY'
import json, sys, time, urllib.request
port, token, limit, secs = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
def get():
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/admin/mirrors", headers={"authorization": f"Bearer {token}"})
    return json.load(urllib.request.urlopen(req))
t0 = time.time(); first = get()
while time.time() - t0 < limit and any(m["lag_events"] > 0 for m in get()):
    time.sleep(0.2)
drain = time.time() - t0
for m, f in zip(get(), first):
    rate = m["sent_events"] / (secs + drain)
    print(f"mirror {m['name']} ({m['kind']}): lag at end of load {f['lag_events']} events / {f['lag_seconds']:.1f} s, caught up {drain:.1f} s later, state {m['state']}, sent {m['sent_events']}, {rate:.0f} events/s over load+catch-up, last_error {m['last_error']}")
PY
fi
EVENTS=$(grep 'ingest_events_total{outcome="accepted"}' "$OUT/metrics.txt" | awk '{print $2}')
TICKS=$(awk '{print $14+$15}' /proc/$SP/stat)
HZ=$(getconf CLK_TCK)
python3 -c "print('server cpu µs/event %.2f' % ($TICKS / $HZ * 1e6 / $EVENTS))"
awk -v ev="$EVENTS" '{printf "server minor faults/event %.3f\n", $10/ev}' /proc/$SP/stat
grep VmHWM /proc/$SP/status
