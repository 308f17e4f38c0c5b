#!/usr/bin/env bash
# Starts a node on an existing data directory (e.g. one `unmogrowp-bench generate` wrote),
# prints the seconds from process start to /ready and the resident set then, and stops it.
#   bench/scripts/open.sh DATA_DIR [HTTP_ADDR] [extra serve args…]
# Used for issue 28's open-time measurements (docs/benchmarks.md).
set -euo pipefail
dir=$1; addr=${2:-127.0.0.1:18559}; shift $(( $# < 2 ? $# : 2 ))
bin=${UNMOGROWP_BIN:-${CARGO_TARGET_DIR:-target}/release/unmogrowp}
log=$(mktemp)
start=$(date +%s.%N)
UNMOGROWP_ADMIN_PASSWORD=${UNMOGROWP_ADMIN_PASSWORD:-open-bench-password-1} \
  "$bin" serve --data-dir "$dir" --http-addr "$addr" "$@" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$log"' EXIT
until curl -sf "http://$addr/ready" >/dev/null; do
  if ! kill -0 $pid 2>/dev/null; then echo "the node exited:"; grep -v '^ *at \|^ *[0-9]*: ' "$log" | tail -20; exit 1; fi
  sleep 0.1
done
end=$(date +%s.%N)
rss_kb=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
printf 'ready_s=%.1f rss_mb=%d\n' "$(echo "$end - $start" | bc)" $((rss_kb / 1024))
grep -o '"summaries_rebuilt[^,]*\|summaries_rebuilt=[0-9]*\|open_ms=[0-9]*' "$log" | head -3 || true
