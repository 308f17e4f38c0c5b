#!/usr/bin/env bash
# The one command that runs the tests: ./scripts/test.sh  (CI runs exactly this via .ci/run).
# Builds into a target directory outside the clone so repeated runs are incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/unmogrowp-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
t0=$(date +%s)
step() { echo "=== $* ($(( $(date +%s) - t0 ))s)"; }

step "format"
cargo fmt --all -- --check
step "layering (docs/architecture.md)"
python3 .ci/check_layering.py
python3 .ci/test_check_layering.py
step "build"
cargo build --workspace --all-targets --locked
export TEST_SERVER_BIN="$CARGO_TARGET_DIR/debug/unmogrowp"
step "tests"
# Process-level fault suites start real servers; two at a time keeps a 2-core box responsive.
cargo nextest run --workspace --locked --no-fail-fast --test-threads 2 \
  --final-status-level slow --status-level fail
step "done"
