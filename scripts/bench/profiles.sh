#!/usr/bin/env bash
# Same-run comparison of two `ledger` binaries (e.g. the optimised one users run and a
# build with the old debug-ish profile): for each, a fresh `ledger dev` cluster on its own
# ports and data dir, 1,000 accounts, then wrk through the leader with 1 and 64 clients
# (uniform transfers) for DURATION seconds each. Needs wrk. Loopback only; bounded in time;
# stops the clusters it started (by PID).
#   scripts/bench/profiles.sh NAME=BINARY [NAME=BINARY ...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
duration="${DURATION:-10}"
accounts="${ACCOUNTS:-1000}"
command -v wrk >/dev/null || { echo "profiles.sh: install wrk first (apt-get install wrk)" >&2; exit 1; }
[ $# -ge 1 ] || { echo "usage: $0 NAME=BINARY ..." >&2; exit 2; }
port=9500
printf '%-12s %-8s %12s %10s %10s\n' binary clients "transfers/s" p50 p99
for spec in "$@"; do
  name="${spec%%=*}"; binary="${spec#*=}"
  data="$(mktemp -d)"
  "$binary" dev --data-dir "$data" --base-port "$port" > "$data/dev.log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  leader=""
  for _ in $(seq 1 200); do
    leader=$(curl -sf "http://127.0.0.1:$port/api/v1/cluster" 2>/dev/null | python3 -c '
import json, sys
info = json.load(sys.stdin)
print(next(("http://" + m["apiAddr"] for m in info["members"] if m["nodeId"] == info["leaderId"]), ""))' 2>/dev/null || true)
    [ -n "$leader" ] && break
    sleep 0.1
  done
  [ -n "$leader" ] || { echo "$name: no leader" >&2; exit 1; }
  for i in $(seq 1 "$accounts"); do
    curl -s -o /dev/null -XPOST "$leader/api/v1/accounts" -H 'content-type: application/json' \
      -d "{\"accountId\":\"acc$i\",\"balance\":1000000}"
  done
  for clients in 1 64; do
    threads=$([ "$clients" -eq 1 ] && echo 1 || echo 2)
    out=$(wrk -t"$threads" -c"$clients" -d"${duration}s" --latency -s "$here/transfers.lua" "$leader" -- "$accounts" uniform)
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    printf '%-12s %-8s %12s %10s %10s\n' "$name" "$clients" "$rps" "$p50" "$p99"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  trap - EXIT
  rm -rf "$data"
  port=$((port + 20))
done
