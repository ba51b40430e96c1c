#!/usr/bin/env bash
# Catch-up benchmark (not run by CI; minutes long): three `ledger node` processes on
# loopback, one follower paused (SIGSTOP) while the state grows past ACCOUNTS accounts
# through the leader's REST API (wrk, CONNECTIONS requests in flight), so that the leader
# snapshots and purges its log; then the follower is resumed (SIGCONT) and must catch up
# through a snapshot. Prints how long that took, whether any node's term moved, and every
# node's peak RSS (VmHWM) before and after.
#
#   ACCOUNTS=1000000 ./scripts/bench/catch_up.sh
#
# Every bound is explicit: GROW_SECS_MAX for the growth, CATCH_UP_SECS_MAX for the catch-up.
# LEDGER_* variables pass through to the nodes (e.g. LEDGER_RAFT__SNAPSHOT_CHUNK_BYTES).
# Only the processes this script started are signalled. Needs curl, python3, wrk.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/env.sh

accounts="${ACCOUNTS:-1000000}"
connections="${CONNECTIONS:-64}"
threads="${THREADS:-2}"
base_port="${BASE_PORT:-18080}"
grow_secs_max="${GROW_SECS_MAX:-1200}"
catch_up_secs_max="${CATCH_UP_SECS_MAX:-900}"
ready_secs_max=60
ledger="$CARGO_TARGET_DIR/debug/ledger"
for tool in curl python3 wrk; do
  command -v "$tool" >/dev/null || { echo "catch_up.sh: needs $tool" >&2; exit 1; }
done
if [ "${BUILD:-1}" = 1 ]; then
  cargo build --workspace --all-targets
fi
[ -x "$ledger" ] || { echo "catch_up.sh: no $ledger (build the workspace)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/ledger-catch-up.XXXXXX")"
peers=""
for i in 0 1 2; do
  peers="${peers:+$peers,}$i=127.0.0.1:$((base_port + 100 + i))/127.0.0.1:$((base_port + i))"
done
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill -CONT "$pid" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "data and logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

for i in 0 1 2; do
  LEDGER_NODE_ID=$i LEDGER_DATA_DIR="$work/node-$i" \
    LEDGER_API_LISTEN="127.0.0.1:$((base_port + i))" \
    LEDGER_RPC_LISTEN="127.0.0.1:$((base_port + 100 + i))" LEDGER_PEERS="$peers" \
    "$ledger" node >"$work/node-$i.log" 2>&1 &
  pids+=("$!")
done

url() { echo "http://127.0.0.1:$((base_port + $1))$2"; }
json_field() { python3 -c 'import json,sys; v=json.load(sys.stdin).get(sys.argv[1]); print("" if v is None else v)' "$1"; }
info() { curl -sf --max-time 5 "$(url "$1" /api/v1/cluster)" | json_field "$2"; }
peak_rss() { awk '/VmHWM/ {print $2 " " $3}' "/proc/$1/status"; }
now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$2"; }

deadline=$((SECONDS + ready_secs_max))
for i in 0 1 2; do
  until curl -sf --max-time 2 -o /dev/null "$(url "$i" /health/ready)"; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "node $i never ready; logs in $work" >&2; KEEP=1; exit 1; }
    sleep 0.2
  done
done
leader="$(info 0 leaderId)"
follower=$(( (leader + 1) % 3 ))
echo "cluster ready: leader $leader, pausing follower $follower (pid ${pids[$follower]})"
paused_at="$(info "$follower" lastLogIndex)"
kill -STOP "${pids[$follower]}"

cat >"$work/create.lua" <<'LUA'
-- Each thread creates its share of accounts with unique ids, then stops and leaves a
-- marker file (wrk itself runs for its whole duration unless interrupted).
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  quota = tonumber(args[1])
  markers = args[2]
  created, sent, failed = 0, 0, 0
end
function request()
  sent = sent + 1
  local body = string.format('{"accountId":"bench-%d-%d","balance":"10"}', id, sent)
  return wrk.format("POST", "/api/v1/accounts", {["Content-Type"] = "application/json"}, body)
end
function response(status, headers, body)
  if status == 201 then created = created + 1 else failed = failed + 1 end
  if created == quota then
    io.open(markers .. "/done-" .. id, "w"):close()
  end
  if created >= quota then wrk.thread:stop() end
end
function done(summary, latency, requests)
  local total, failures = 0, 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("created")
    failures = failures + thread:get("failed")
  end
  io.write(string.format("created %d accounts (%d refused)\n", total, failures))
end
LUA
quota=$(( (accounts + threads - 1) / threads ))
mkdir "$work/markers"
echo "growing the state by $accounts accounts through node $leader ($connections connections)..."
grow_start="$(now)"
wrk -t"$threads" -c"$connections" -d"${grow_secs_max}s" --timeout 30s -s "$work/create.lua" \
  "$(url "$leader" "")" -- "$quota" "$work/markers" >"$work/wrk.out" 2>&1 &
wrk_pid=$!
while kill -0 "$wrk_pid" 2>/dev/null \
  && [ "$(find "$work/markers" -name 'done-*' | wc -l)" -lt "$threads" ]; do
  sleep 0.5
done
kill -INT "$wrk_pid" 2>/dev/null || true
wait "$wrk_pid" || true
grow_end="$(now)"
grep -E "created" "$work/wrk.out" || { cat "$work/wrk.out"; exit 1; }
grow_secs="$(elapsed "$grow_start" "$grow_end")"
echo "grown in $grow_secs s ($(python3 -c "import sys; print(int($accounts / max(float(sys.argv[1]), 0.1)))" "$grow_secs") accounts/s)"

# Requests still in the leader's pipeline when wrk stopped: wait until its log is still.
deadline=$((SECONDS + 60))
previous=""
while true; do
  current="$(info "$leader" appliedIndex)"
  [ "$current" = "$previous" ] && break
  [ "$SECONDS" -lt "$deadline" ] || { echo "the leader's log kept growing: $previous -> $current" >&2; break; }
  previous="$current"
  sleep 2
done
deadline=$((SECONDS + 120))
until [ "$(info "$leader" purgedIndex)" != "" ] && [ "$(info "$leader" purgedIndex)" -gt "$paused_at" ]; do
  [ "$SECONDS" -lt "$deadline" ] || { echo "the leader never purged past $paused_at: no snapshot needed" >&2; KEEP=1; exit 1; }
  sleep 1
done
target="$(info "$leader" committedIndex)"
snapshot_bytes="$(find "$work/node-$leader/snapshots" -name '*.data' -printf '%s\n' | sort -n | tail -1)"
echo "leader: committed $target, purged $(info "$leader" purgedIndex), snapshot $snapshot_bytes bytes; follower paused at $paused_at"
declare -A term_before
for i in 0 1 2; do
  [ "$i" = "$follower" ] && continue
  term_before[$i]="$(info "$i" term)"
done
echo "peak RSS before resuming (KiB):"
for i in 0 1 2; do echo "  node $i: $(peak_rss "${pids[$i]}")"; done

kill -CONT "${pids[$follower]}"
resume="$(now)"
term_changes=0
deadline=$((SECONDS + catch_up_secs_max))
while true; do
  applied="$(info "$follower" appliedIndex || true)"
  if [ -n "$applied" ] && [ "$applied" -ge "$target" ] \
    && curl -sf --max-time 2 -o /dev/null "$(url "$follower" /health/ready)"; then
    break
  fi
  for i in "${!term_before[@]}"; do
    term="$(info "$i" term || true)"
    if [ -n "$term" ] && [ "$term" != "${term_before[$i]}" ]; then
      echo "node $i: term ${term_before[$i]} -> $term"
      term_before[$i]="$term"
      term_changes=$((term_changes + 1))
    fi
  done
  [ "$SECONDS" -lt "$deadline" ] || { echo "follower $follower did not catch up in ${catch_up_secs_max}s (applied ${applied:-?} of $target)" >&2; KEEP=1; exit 1; }
  sleep 0.2
done
caught_up="$(now)"
echo
echo "== follower $follower caught up in $(elapsed "$resume" "$caught_up") s (applied >= $target, ready)"
echo "   snapshots installed: $(info "$follower" snapshotsInstalled); term changes during catch-up: $term_changes"
grep -h "snapshot installed" "$work/node-$follower.log" | tail -1 || true
echo "peak RSS (VmHWM, KiB) after catch-up:"
for i in 0 1 2; do
  role="follower"; [ "$i" = "$leader" ] && role="leader"; [ "$i" = "$follower" ] && role="caught-up follower"
  echo "  node $i ($role): $(peak_rss "${pids[$i]}")"
done
deadline=$((SECONDS + 60))
until [ "$(info 0 appliedIndex)" = "$(info 1 appliedIndex)" ] && [ "$(info 1 appliedIndex)" = "$(info 2 appliedIndex)" ]; do
  [ "$SECONDS" -lt "$deadline" ] || { echo "nodes are at different indexes" >&2; break; }
  sleep 0.5
done
for i in 0 1 2; do
  curl -sf --max-time 60 "$(url "$i" /api/v1/admin/audit)" | python3 -c 'import json,sys; a=json.load(sys.stdin); print("  audit node %s: index %s, %s accounts, conserved %s, digest %s" % (a["nodeId"], a["appliedIndex"], a["accounts"], a["conserved"], a["digest"]))' || true
done
