#!/usr/bin/env bash
# Starts a release node on an existing data directory and times the first dashboard requests
# over 30 days of one app (issue 28): days older than engine.hot_days are read back from the
# segments' summaries by the first request, later ones find them in memory. Prints the
# rollups' days out of memory before and after; then stops the node.
#   bench/scripts/first_request.sh /tmp/g500/node app_00
set -euo pipefail
dir=$1; app=${2:-app_00}
addr=${ADDR:-127.0.0.1:18097}
password=${UNMOGROWP_ADMIN_PASSWORD:-sql-bench-admin-password}
bin=${UNMOGROWP_BIN:-${CARGO_TARGET_DIR:-target}/release/unmogrowp}
log=$(mktemp)
start=$(date +%s.%N)
UNMOGROWP_ADMIN_PASSWORD=$password "$bin" serve --data-dir "$dir" --http-addr "$addr" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$log"' EXIT
until curl -sf "http://$addr/ready" >/dev/null; do
  kill -0 $pid 2>/dev/null || { echo "the node exited:"; tail -20 "$log"; exit 1; }
  sleep 0.1
done
echo "ready after $(echo "$(date +%s.%N) - $start" | bc) s"
days_out() { curl -s "http://$addr/metrics" | grep -E '^unmogrowp_rollup_days_out ' || true; }
days_out
token=$(curl -sf -X POST "http://$addr/api/auth/login" -H 'content-type: application/json' \
  -d "{\"email\":\"admin@localhost\",\"password\":\"$password\"}" |
  python3 -c 'import sys, json; print(json.load(sys.stdin)["access_token"])')
# The app must exist for the dashboard API (a generated directory has data, not apps).
curl -s -o /dev/null -X POST "http://$addr/api/apps" -H "authorization: Bearer $token" \
  -H 'content-type: application/json' -d "{\"id\":\"$app\",\"name\":\"$app\"}"
to=$(( ($(date +%s) * 1000 / 3600000 + 1) * 3600000 )); from=$(( to - 30 * 86400000 ))
for i in 1 2 3; do
  curl -sf -o /dev/null -w "stats of $app over 30 days, request $i: %{time_total} s\n" \
    -H "authorization: Bearer $token" \
    "http://$addr/api/dashboard/stats?app_id=$app&from=$from&to=$to"
done
days_out
