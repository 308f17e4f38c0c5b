#!/usr/bin/env bash
# Starts a release node on an existing data directory and prints its resident set at /ready,
# once the dedupe window has loaded, and after the memory budget's ticks (WAIT seconds,
# default 65), with the engine's memory parts from /metrics; then stops it (issue 28):
#   bench/scripts/memory.sh /tmp/g500/node
set -euo pipefail
dir=$1
addr=${ADDR:-127.0.0.1:18098}
bin=${UNMOGROWP_BIN:-${CARGO_TARGET_DIR:-target}/release/unmogrowp}
log=$(mktemp)
start=$(date +%s.%N)
UNMOGROWP_ADMIN_PASSWORD=${UNMOGROWP_ADMIN_PASSWORD:-sql-bench-admin-password} \
  "$bin" serve --data-dir "$dir" --http-addr "$addr" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$log"' EXIT
rss() { awk '/VmRSS/ {printf "%.2f GB", $2 / 1048576}' /proc/$pid/status; }
since() { echo "$(date +%s.%N) - $start" | bc; }
until curl -sf "http://$addr/ready" >/dev/null; do
  kill -0 $pid 2>/dev/null || { echo "the node exited:"; tail -20 "$log"; exit 1; }
  sleep 0.1
done
echo "ready after $(since) s, RSS $(rss)"
until grep -q "dedupe window loaded" "$log"; do sleep 1; done
echo "dedupe window loaded after $(since) s, RSS $(rss)"
sleep "${WAIT:-65}"
echo "after the budget's ticks: RSS $(rss), peak $(awk '/VmHWM/ {printf "%.2f GB", $2 / 1048576}' /proc/$pid/status)"
curl -s "http://$addr/metrics" | grep -E '^unmogrowp_engine_memory|^unmogrowp_engine_dedupe_filters_in_summaries'
