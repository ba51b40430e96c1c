#!/usr/bin/env bash
# The run command: a three-node cluster on 127.0.0.1 (REST on 8080-8082), data in
# ./ledger-dev-data. Ctrl-C stops it; running it again resumes the same cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
. scripts/env.sh
cargo build --workspace --all-targets
exec "$CARGO_TARGET_DIR/debug/ledger" dev "$@"
