#!/usr/bin/env bash
# The long cluster fault campaign: ./scripts/campaign.sh [LEADER_KILLS] [REPEAT]
# Runs the 3-process fault suites (TESTPLAN RAFT-01/02/03/05/07/08/09/10, PQ-04 after each)
# with LEADER_KILLS leader kill -9 rounds (default 100) in RAFT-01, LEADER_KILLS/10 cycles of
# the three RAFT-10 kills, the backup/restore suite, and every suite REPEAT times (default 3). Prints one summary line per RAFT-01 run; figures go to docs/reliability.md.
#
# The fuzzing campaigns (TESTPLAN FZ-01/03, docs/reliability.md):
#   ./scripts/campaign.sh sql [STATEMENTS=1000000] [SEED=1]   random SQL as an analyst, release build
#   ./scripts/campaign.sh ingest-fuzz [SECONDS=3600]          libFuzzer on the ingest decoder
#
# The mixed fault campaign (kill -9, SIGSTOP, partitions, power cuts, failed fsyncs; issue 25):
#   ./scripts/campaign.sh faults [FAULTS=1000] [SEED=1]        then the power-loss suite (WAL-01)
#                                                             with POWER_ROUNDS=50
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/unmogrowp-target}"
case "${1:-}" in
  sql)
    cargo build --release --locked -p unmogrowp-server
    cargo build --workspace --all-targets --locked
    export TEST_SERVER_BIN="$CARGO_TARGET_DIR/release/unmogrowp"
    export SQL_FUZZ_STATEMENTS="${2:-1000000}" SQL_FUZZ_SEED="${3:-1}"
    exec cargo nextest run -p unmogrowp-tests --locked --test query_hardening \
      -E 'test(sql_fuzz_as_an_analyst)' --no-capture --profile campaign
    ;;
  faults)
    cargo build --workspace --all-targets --locked
    # A copy: rebuilding during a long run must not change the binary restarted nodes run.
    bin_dir="$(mktemp -d)"
    cp "$CARGO_TARGET_DIR/debug/unmogrowp" "$bin_dir/"
    export TEST_SERVER_BIN="$bin_dir/unmogrowp"
    export CAMPAIGN_FAULTS="${2:-1000}" CAMPAIGN_SEED="${3:-1}" POWER_ROUNDS="${POWER_ROUNDS:-50}"
    exec cargo nextest run -p unmogrowp-tests --locked --test fault_campaign --test disk_wal_01_power_loss \
      --test-threads 1 --no-capture --profile campaign
    ;;
  ingest-fuzz)
    command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
    secs="${2:-3600}"
    # Stable toolchain: RUSTC_BOOTSTRAP lets cargo-fuzz pass its -Z flags; no sanitizer
    # (panics and OOMs are what FZ-01 looks for). Seeds: the corpus of the CI slice.
    cd fuzz
    RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none json_ingest_fuzz corpus/json_ingest_fuzz -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -timeout=1 -max_len=1048576 -print_final_stats=1
    exit $?
    ;;
esac
cargo build --workspace --all-targets --locked
export TEST_SERVER_BIN="$CARGO_TARGET_DIR/debug/unmogrowp"
export CLUSTER_ROUNDS="${1:-100}"
export SNAPSHOT_CYCLES="$(( (CLUSTER_ROUNDS + 9) / 10 ))"
repeat="${2:-3}"
log="${CAMPAIGN_LOG:-campaign.log}"
: > "$log"
for i in $(seq 1 "$repeat"); do
  echo "=== campaign run $i of $repeat (leader kills per RAFT-01 run: $CLUSTER_ROUNDS)"
  cargo nextest run -p unmogrowp-tests --locked --test cluster_faults --test cluster_membership \
    --test cluster_snapshot_crash --test backup_restore \
    --test-threads 1 --no-fail-fast --success-output final --failure-output final 2>&1 \
    | tee -a "$log" | grep -E "RAFT-01:|RAFT-10:|PASS|FAIL" || true
done
echo "=== summary"
grep -c "PASS \[" "$log" | sed 's/^/suites passed: /'
grep -c "FAIL \[" "$log" | sed 's/^/suites failed: /' || true
grep -E "RAFT-01:|RAFT-10:" "$log" || true
