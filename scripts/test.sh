#!/usr/bin/env bash
# The test command: installs what is missing, then runs every test of the workspace
# (unit tests, openraft's storage conformance suite, and the multi-process cluster tests).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
. scripts/env.sh
# Always the whole workspace: building a subset unifies features differently and would
# rebuild RocksDB.
cargo build --workspace --all-targets
cargo test --workspace --all-targets "$@"
