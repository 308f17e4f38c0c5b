#!/usr/bin/env bash
# Issue 28's measurements at one dataset size, end to end and unattended (docs/benchmarks.md):
# generates the dataset unless DATA_DIR exists, then disk usage, three starts to /ready with a
# cold page cache, memory after the budget's ticks, the first dashboard requests over 30 days
# of app_00, and the dashboard suite against DuckDB on the same files, with RSS after it.
#   bench/scripts/scale.sh /tmp/g1b/node 1000000000 2>&1 | tee /tmp/g1b.log
# Needs the release build (cargo build --release --locked -p unmogrowp-server -p unmogrowp-bench)
# and root (to drop the page cache). Generation runs at ~190k events/s on this 2-core VM
# (1B: ~1.5 h, ~32 GB on disk); keep the machine otherwise idle for comparable numbers.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=$1; events=${2:-}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/unmogrowp-target}"
export UNMOGROWP_ADMIN_PASSWORD="${UNMOGROWP_ADMIN_PASSWORD:-sql-bench-admin-password}"
gen="$CARGO_TARGET_DIR/release/unmogrowp-bench"
# node_start, node_token; its $bin is the release server
. bench/scripts/node.sh
step() { echo; echo "== $* ($(date -u +%H:%M:%S))"; }

if [ ! -d "$dir" ]; then
  [ -n "$events" ] || { echo "$dir does not exist: give the number of events to generate" >&2; exit 2; }
  mkdir -p "$(dirname "$dir")"
  free_gb=$(df -BG --output=avail "$(dirname "$dir")" | tail -1 | tr -dc 0-9)
  need_gb=$(( events / 1000000000 * 32 + 8 ))
  [ "$free_gb" -ge "$need_gb" ] || { echo "$free_gb GB free, ~$need_gb GB needed" >&2; exit 2; }
  step "generate $events events into $dir"
  /usr/bin/time -f "generate: %e s wall, %P CPU, peak RSS %M kB" \
    "$gen" generate --data-dir "$dir" --events "$events"
fi

step "disk"
du -sh "$dir"
find "$dir"/table/gen-*/segments -name '*.parquet' -printf '%s\n' |
  awk '{n++; b+=$1} END {printf "%d segment files, %.1f GB of Parquet\n", n, b/1e9}'

step "start to /ready, page cache dropped first, compaction off (3 times)"
for i in 1 2 3; do
  sync; echo 3 > /proc/sys/vm/drop_caches
  UNMOGROWP_ENGINE__COMPACTION_MIN_SEGMENTS=0 bench/scripts/open.sh "$dir"
done

step "memory: at /ready, window loaded, after the budget's ticks"
WAIT=65 bench/scripts/memory.sh "$dir"

step "first dashboard requests over 30 days of app_00 after a start"
bench/scripts/first_request.sh "$dir" app_00

step "dashboard suite (p50/p99, DuckDB on the same files), RSS after"
UNMOGROWP_ENGINE__COMPACTION_MIN_SEGMENTS=0 node_start "$dir" 127.0.0.1:18096
until grep -q "dedupe window loaded" "$log"; do sleep 1; done
python3 bench/sql/dashboard.py --url "http://$node_addr" --password "$UNMOGROWP_ADMIN_PASSWORD" \
  --segments "$(ls -d "$dir"/table/gen-*/segments | head -1)" --runs "${RUNS:-5}" --duckdb-runs 1
echo "RSS after the suite: $(awk '/VmRSS/ {printf "%.2f GB", $2 * 1024 / 1e9}' /proc/$pid/status), peak $(awk '/VmHWM/ {printf "%.2f GB", $2 * 1024 / 1e9}' /proc/$pid/status)"
curl -s "http://$node_addr/metrics" |
  grep -E '^unmogrowp_engine_memory|^unmogrowp_rollup_days_out |^unmogrowp_query_metadata_cache_(bytes|evictions)'
