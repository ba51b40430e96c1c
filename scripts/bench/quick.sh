#!/usr/bin/env bash
# Quick throughput check against a running `ledger dev` cluster (until the bench tool
# lands): creates ACCOUNTS accounts, then runs wrk for DURATION seconds per variant
# through the leader. Needs wrk (apt-get install wrk). Loopback only; bounded in time.
set -euo pipefail
base="${BASE_URL:-http://127.0.0.1:8080}"
accounts="${ACCOUNTS:-1000}"
duration="${DURATION:-10}"
here="$(cd "$(dirname "$0")" && pwd)"
command -v wrk >/dev/null || { echo "quick.sh: install wrk first (apt-get install wrk)" >&2; exit 1; }
leader_url=$(curl -sf "$base/api/v1/cluster" | python3 -c '
import json, sys
info = json.load(sys.stdin)
print(next("http://" + m["apiAddr"] for m in info["members"] if m["nodeId"] == info["leaderId"]))')
for i in $(seq 1 "$accounts"); do
  curl -s -o /dev/null -XPOST "$leader_url/api/v1/accounts" -H "content-type: application/json" -d "{\"accountId\":\"acc$i\",\"balance\":1000000}"
done
run() { echo "== $1 clients=$2"; wrk -t"$3" -c"$2" -d"${duration}s" --latency -s "$here/transfers.lua" "$leader_url" -- "$accounts" "$1" | grep -E "Requests/sec|50%|99%|Non-2xx"; }
run uniform 1 1
run uniform 64 2
run hot 64 2
curl -s "$leader_url/api/v1/admin/audit"; echo
