#!/usr/bin/env bash
# SQL benchmark: starts a release appliance in a temporary directory, ingests the dataset
# through HTTP (EVENTS, default 10M), waits until it is all in Parquet and compacted, then
# runs bench/sql/run.py (appliance vs DuckDB vs chDB over the same segment files).
#   EVENTS=10000000 bench/sql/run.sh
# and then bench/sql/attribution.py (the attribution endpoint vs DuckDB's last-click SQL) and
# bench/sql/dashboard.py (dashboard endpoints, p50/p99, vs DuckDB). SUITES picks some of
# "sql attribution dashboard ui" (default the first three; ui: bench/sql/ui.py, the web
# dashboard's paint and data times in Debian chromium).
# DATA=DIR keeps the node's data directory: the first run ingests into it, later runs reuse
# it and go straight to the queries (arguments are passed to run.py, e.g. --only dash_stats).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/unmogrowp-target}"
EVENTS="${EVENTS:-10000000}"
PORT="${PORT:-18080}"
python3 -c 'import duckdb, chdb, pytz' 2>/dev/null || pip install --quiet duckdb chdb pytz
cargo build --release -p unmogrowp-server -p unmogrowp-bench
BIN="$CARGO_TARGET_DIR/release/unmogrowp"
export UNMOGROWP_ADMIN_PASSWORD="sql-bench-admin-password"
if [ -n "${DATA:-}" ]; then
  DIR="$DATA"; mkdir -p "$DIR"
  trap 'kill $(cat "$DIR/pid") 2>/dev/null || true' EXIT
else
  DIR="$(mktemp -d /tmp/unmogrowp-sqlbench.XXXXXX)"
  trap 'kill $(cat "$DIR/pid") 2>/dev/null || true; rm -rf "$DIR"' EXIT
fi
FRESH=1; [ -d "$DIR/data/table" ] && FRESH=0
UNMOGROWP_ENGINE__FLUSH_INTERVAL_SECS=5 UNMOGROWP_QUERY__MAX_RESULT_ROWS=1000000 \
  "$BIN" serve --data-dir "$DIR/data" --http-addr "127.0.0.1:$PORT" > "$DIR/server.log" 2>&1 &
echo $! > "$DIR/pid"
until curl -sf "http://127.0.0.1:$PORT/ready" > /dev/null; do sleep 0.2; done
if [ "$FRESH" = 1 ]; then
  "$CARGO_TARGET_DIR/release/unmogrowp-bench" dataset --addr "127.0.0.1:$PORT" --events "$EVENTS"
fi
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
echo "waiting for the memtable to flush and compaction to settle"
prev=""
while true; do
  sleep 10
  cur="$(metric unmogrowp_engine_memtable_rows) $(metric unmogrowp_engine_segments)"
  [ "${cur%% *}" = "0" ] && [ "$cur" = "$prev" ] && break
  prev="$cur"
done
echo "segments: $(metric unmogrowp_engine_segments), bytes: $(metric unmogrowp_engine_segment_bytes)"
SEG="$(ls -d "$DIR"/data/table/gen-*/segments)"
SUITES="${SUITES:-sql attribution dashboard}"
echo "open: $(grep -o 'open_ms=[0-9]*' "$DIR/server.log" | tail -1), rollups: $(metric unmogrowp_rollup_hours) hours, $(metric unmogrowp_rollup_users) users, $(metric unmogrowp_rollup_bitmap_bytes) bitmap bytes; RSS $(ps -o rss= -p "$(cat "$DIR/pid")") KiB"
ARGS=(--url "http://127.0.0.1:$PORT" --password "$UNMOGROWP_ADMIN_PASSWORD" --segments "$SEG")
for s in $SUITES; do
  case "$s" in
    sql) python3 bench/sql/run.py "${ARGS[@]}" "$@" ;;
    attribution) python3 bench/sql/attribution.py "${ARGS[@]}" ;;
    dashboard) python3 bench/sql/dashboard.py "${ARGS[@]}" ;;
    ui) python3 bench/sql/ui.py "${ARGS[@]}" ;;
    *) echo "unknown suite $s" >&2; exit 2 ;;
  esac
done
