# Sourced by the bench scripts that drive one release node over HTTP (statements.sh, erase.sh):
#   node_start DATA_DIR ADDR   starts `unmogrowp serve`, waits for /ready (the node is stopped
#                              and its log removed when the script exits); sets $pid, $log
#   node_token                 prints an admin access token
# Env: UNMOGROWP_BIN (default $CARGO_TARGET_DIR/release/unmogrowp), UNMOGROWP_ADMIN_PASSWORD
# (default sql-bench-admin-password: the password the generated datasets were opened with).
bin=${UNMOGROWP_BIN:-${CARGO_TARGET_DIR:-target}/release/unmogrowp}
password=${UNMOGROWP_ADMIN_PASSWORD:-sql-bench-admin-password}

node_start() {
  node_addr=$2
  log=$(mktemp)
  UNMOGROWP_ADMIN_PASSWORD=$password "$bin" serve --data-dir "$1" --http-addr "$node_addr" >"$log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$log"' EXIT
  until curl -sf "http://$node_addr/ready" >/dev/null; do
    kill -0 $pid 2>/dev/null || { echo "the node exited:"; tail -20 "$log"; exit 1; }
    sleep 0.2
  done
}

node_token() {
  curl -s -X POST "http://$node_addr/api/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"admin@localhost\",\"password\":\"$password\"}" |
    python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])'
}
