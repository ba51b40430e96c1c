#!/usr/bin/env bash
# Read throughput and latency by consistency: cached (Redis), local and linearizable, on a
# private three-node `ledger dev` cluster with its own redis-server, both on loopback and
# removed on exit. Needs wrk and redis-server (apt-get install wrk redis-server) and a built
# `ledger` (cargo build --workspace --all-targets). Bounded: DURATION seconds per variant.
#   ACCOUNTS=1000 DURATION=10 CONNECTIONS=64 scripts/bench/reads.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/env.sh
accounts="${ACCOUNTS:-1000}"
duration="${DURATION:-10}"
connections="${CONNECTIONS:-64}"
base_port="${BASE_PORT:-28080}"
redis_port="${REDIS_PORT:-26390}"
ledger="$CARGO_TARGET_DIR/debug/ledger"
for tool in wrk redis-server curl python3; do
  command -v "$tool" >/dev/null || { echo "reads.sh: install $tool first" >&2; exit 1; }
done
[ -x "$ledger" ] || { echo "reads.sh: build first (cargo build --workspace --all-targets)" >&2; exit 1; }

# Never drive someone else's cluster: every port must be free before we start.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$redis_port" $(seq "$base_port" $((base_port + 2))) $(seq $((base_port + 100)) $((base_port + 102))); do
  if port_in_use "$port"; then
    echo "reads.sh: port $port is in use; choose others with BASE_PORT= and REDIS_PORT=" >&2
    exit 1
  fi
done

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
  --daemonize no > "$work/redis.log" 2>&1 &
pids+=($!)
LEDGER_REDIS_URL="redis://127.0.0.1:$redis_port" "$ledger" dev --data-dir "$work/ledger" \
  --base-port "$base_port" > "$work/dev.log" 2>&1 &
dev_pid=$!
pids+=("$dev_pid")

node_url() { echo "http://127.0.0.1:$((base_port + $1))"; }
for _ in $(seq 1 600); do
  ready=0
  for i in 0 1 2; do curl -sf "$(node_url $i)/health/ready" >/dev/null && ready=$((ready + 1)); done
  [ "$ready" -eq 3 ] && break
  sleep 0.1
done
[ "$ready" -eq 3 ] && kill -0 "$dev_pid" 2>/dev/null \
  || { echo "reads.sh: cluster not ready; see $work/dev.log" >&2; cat "$work/dev.log" >&2; exit 1; }
leader=$(curl -sf "$(node_url 0)/api/v1/cluster" | python3 -c 'import json,sys; print(json.load(sys.stdin)["leaderId"])')
follower=$(( (leader + 1) % 3 ))
echo "leader: node $leader; reads go to follower node $follower unless said otherwise"
for i in $(seq 1 "$accounts"); do
  curl -s -o /dev/null -XPOST "$(node_url "$leader")/api/v1/accounts" \
    -H 'content-type: application/json' -d "{\"accountId\":\"acc$i\",\"balance\":1000}"
done

here="scripts/bench"
run() { # label node consistency
  echo "== $1 (node $2, consistency=$3, $connections connections, ${duration}s)"
  wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$here/reads.lua" "$(node_url "$2")" \
    -- "$accounts" "$3" | grep -E "Requests/sec|  50%|  99%|Non-2xx|Socket errors"
}
run "cached, follower" "$follower" cached
run "local, follower" "$follower" local
run "linearizable, follower (forwarded to the leader)" "$follower" linearizable
run "linearizable, leader" "$leader" linearizable
echo "== cache counters on node $follower"
curl -s "$(node_url "$follower")/api/v1/admin/cache"; echo
