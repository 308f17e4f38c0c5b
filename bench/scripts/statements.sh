#!/usr/bin/env bash
# Starts a release node on an existing data directory, runs each SQL statement N times over
# HTTP, prints the seconds of each run, the node's CPU seconds so far and the answer's start,
# then stops the node. For profiling single statements (docs/benchmarks.md, issue 28):
#   bench/scripts/statements.sh /tmp/g100/node 3 "SELECT count() FROM events" "…"
# SETTLE: seconds to wait after /ready (default 8; the dedupe window loads meanwhile).
set -euo pipefail
dir=$1; runs=$2; shift 2
addr=${ADDR:-127.0.0.1:18095}
. "$(dirname "$0")/node.sh"
out=$(mktemp)
node_start "$dir" "$addr"
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$log" "$out"' EXIT
sleep "${SETTLE:-8}"
token=$(node_token)
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
