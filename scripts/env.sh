# Sourced by the scripts: one persistent target directory for every build and test, so the
# RocksDB C++ build (15-30 min cold on 2 cores) happens once per machine, not per clone.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/ledger-target}"
mkdir -p "$CARGO_TARGET_DIR" 2>/dev/null || export CARGO_TARGET_DIR="$HOME/.cache/ledger-target"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
