#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build and test ledger. Idempotent.
# - libclang: bindgen generates RocksDB's bindings at build time (protoc is vendored).
# - iptables, faketime: the Jepsen harness's partition/loss and clock-skew nemeses.
# - redis-server, openssl: the account-read cache's tests start their own Redis, one with
#   TLS (node/tests/cache.rs).
set -euo pipefail

need=()
# bindgen dlopens libclang.so (or libclang-N.so / libclang.so.N), never libclang-cpp.so, which
# clang's own packages install too: look for exactly what it loads.
have_libclang() {
  ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/llvm-*/lib/libclang-[0-9]*.so* >/dev/null 2>&1 \
    || ldconfig -p 2>/dev/null | grep -Eq '\blibclang(-[0-9][0-9.]*)?\.so'
}
if ! have_libclang; then
  need+=(libclang-dev clang)
fi
command -v c++ >/dev/null 2>&1 || need+=(g++)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || need+=(faketime)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# scripts/validate-deploy.sh makes a venv: `python3 -m venv` needs ensurepip (python3-venv).
python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3 python3-venv)
command -v cargo >/dev/null 2>&1 || { echo "setup: cargo is missing; install Rust first (rustup)" >&2; exit 1; }

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi
