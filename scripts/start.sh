#!/usr/bin/env bash
# The one command that starts the appliance: ./scripts/start.sh [serve flags…]
# Single node, embedded defaults: data in ./data, API on http://127.0.0.1:8080.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/unmogrowp-target}"
exec cargo run --release --locked -p unmogrowp-server --bin unmogrowp -- serve "$@"
