#!/usr/bin/env bash
# Starts a release node on an existing data directory (e.g. one `unmogrowp-bench generate`
# wrote), asks for each erasure given as a JSON body, and prints the seconds from the request
# to `state: done` with the events erased and segments rewritten (issue 29; docs/benchmarks.md).
# The erasures CHANGE the directory: run it on a copy.
#   bench/scripts/erase.sh /tmp/g10/node '{"app_id":"app_00","user_id":"u17"}' …
# A body "top" erases the user with the most events of app_00.
set -euo pipefail
dir=$1; shift
addr=${ADDR:-127.0.0.1:18096}
. "$(dirname "$0")/node.sh"
out=$(mktemp)
node_start "$dir" "$addr"
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$log" "$out"' EXIT
sleep "${SETTLE:-5}"
token=$(node_token)
api() { curl -s -H "authorization: Bearer $token" -H 'content-type: application/json' "$@"; }
for body in "$@"; do
  if [ "$body" = top ]; then
    user=$(api -X POST "http://$addr/api/analytics/query" -d '{"sql":"SELECT user_id, count() AS n FROM events WHERE app_id = '"'app_00'"' GROUP BY user_id ORDER BY n DESC LIMIT 1"}' |
      python3 -c 'import sys,json; r=json.load(sys.stdin)["rows"][0]; print(r[0]); print(r[1], file=sys.stderr)')
    body="{\"app_id\":\"app_00\",\"user_id\":\"$user\"}"
  fi
  t0=$(date +%s.%N)
  id=$(api -X POST "http://$addr/api/admin/erasure" -d "$body" |
    python3 -c 'import sys,json; print(json.load(sys.stdin)["request_id"])')
  while :; do
    api "http://$addr/api/admin/erasure/$id" >"$out"
    grep -q '"state":"done"' "$out" && break
    kill -0 $pid 2>/dev/null || { echo "the node exited:"; tail -20 "$log"; exit 1; }
    sleep 0.05
  done
  t1=$(date +%s.%N)
  printf '%s: %.2f s  %s\n' "$body" "$(echo "$t1 - $t0" | bc)" \
    "$(python3 -c 'import sys,json; s=json.load(open(sys.argv[1])); print("events_erased=%d segments_rewritten=%d" % (s["events_erased"], s["segments_rewritten"]))' "$out")"
done
grep -o 'erasure recorded[^}]*apply_ms=[0-9]*' "$log" | sed 's/\x1b\[[0-9;]*m//g' | head -5 || true
