#!/usr/bin/env bash
# The test command: installs what is missing, runs every test of the workspace (unit
# tests, openraft's storage conformance suite, the multi-process cluster tests, the
# checker tests), then a short Jepsen run of the real cluster under every nemesis.
# JEPSEN_SECS=0 skips the Jepsen run; extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# The chart, the Dockerfile and Terraform, checked offline (cached venv; ~20 s warm).
./scripts/validate-deploy.sh
. scripts/env.sh
# Always the whole workspace: building a subset unifies features differently and would
# rebuild RocksDB.
cargo build --workspace --all-targets
cargo test --workspace --all-targets "$@"

jepsen_secs="${JEPSEN_SECS:-80}"
if [ "$jepsen_secs" -gt 0 ]; then
  out="$CARGO_TARGET_DIR/jepsen-ci"
  rm -rf "$out"
  "$CARGO_TARGET_DIR/debug/ledger-jepsen" run --duration-secs "$jepsen_secs" --out "$out"
fi
