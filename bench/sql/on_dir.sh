#!/usr/bin/env bash
# The SQL suite (bench/sql/run.py) against an existing node data directory, e.g. one written by
# `unmogrowp-bench generate`:
#   bench/sql/on_dir.sh /tmp/g10m/node [--only wide,top --runs 3]
# Starts the release server on it (BIN to use another build, PORT, SETTLE seconds to wait
# after /ready for the background dedupe load), runs the suite, stops the server.
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR="$1"; shift
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/unmogrowp-target}"
BIN="${BIN:-$CARGO_TARGET_DIR/release/unmogrowp}"
PORT="${PORT:-18090}"
python3 -c 'import duckdb, chdb, pytz' 2>/dev/null || pip install --quiet duckdb chdb pytz
export UNMOGROWP_ADMIN_PASSWORD="${UNMOGROWP_ADMIN_PASSWORD:-sql-bench-admin-password}"
UNMOGROWP_QUERY__MAX_RESULT_ROWS=1000000 "$BIN" serve --data-dir "$DIR" \
  --http-addr "127.0.0.1:$PORT" > "$DIR/../on_dir-server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$PORT/ready" > /dev/null; do
  kill -0 "$PID" 2>/dev/null || { echo "server exited: $DIR/../on_dir-server.log" >&2; exit 1; }
  sleep 0.2
done
sleep "${SETTLE:-10}"
python3 bench/sql/run.py --url "http://127.0.0.1:$PORT" --password "$UNMOGROWP_ADMIN_PASSWORD" \
  --segments "$(ls -d "$DIR"/table/gen-*/segments)" "$@"
