#!/usr/bin/env bash
# Starts a release node on an existing data directory, runs each SQL statement N times over
# HTTP, prints the seconds of each run, the node's CPU seconds so far and the answer's start,
# then stops the node. For profiling single statements (docs/benchmarks.md, issue 28):
#   bench/scripts/statements.sh /tmp/g100/node 3 "SELECT count() FROM events" "…"
# SETTLE: seconds to wait after /ready (default 8; the dedupe window loads meanwhile).
set -euo pipefail
dir=$1; runs=$2; shift 2
addr=${ADDR:-127.0.0.1:18095}
bin=${UNMOGROWP_BIN:-${CARGO_TARGET_DIR:-target}/release/unmogrowp}
password=${UNMOGROWP_ADMIN_PASSWORD:-sql-bench-admin-password}
log=$(mktemp); out=$(mktemp)
UNMOGROWP_ADMIN_PASSWORD=$password "$bin" serve --data-dir "$dir" --http-addr "$addr" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$log" "$out"' EXIT
until curl -sf "http://$addr/ready" >/dev/null; do
  kill -0 $pid 2>/dev/null || { echo "the node exited:"; tail -20 "$log"; exit 1; }
  sleep 0.2
done
sleep "${SETTLE:-8}"
token=$(curl -s -X POST "http://$addr/api/auth/login" -H 'content-type: application/json' \
  -d "{\"email\":\"admin@localhost\",\"password\":\"$password\"}" |
  python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')
for sql in "$@"; do
  body=$(python3 -c 'import json,sys; print(json.dumps({"sql": sys.argv[1]}))' "$sql")
  times=""
  for _ in $(seq "$runs"); do
    times="$times $(curl -s -o "$out" -w '%{time_total}' -X POST "http://$addr/api/analytics/query" \
      -H "authorization: Bearer $token" -H 'content-type: application/json' -d "$body")"
  done
  cpu=$(awk '{print ($14 + $15) / 100}' /proc/$pid/stat)
  echo "s:$times  cpu_total=${cpu}s  $(head -c 200 "$out" | tr '\n' ' ')"
done
echo "peak $(grep VmHWM /proc/$pid/status)"
