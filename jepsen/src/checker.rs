//! Checkers: each takes the history, the test's setup and the final quiescent state, and
//! reports whether its property held, with the offending operations.
//!
//! The linearizability check is witness-based. Every acknowledged transfer carries the log
//! index it was committed at, and every read the applied index it reflects. The final state
//! gives every committed transfer with its index, so the ledger's state at any index can be
//! replayed. The history is linearizable if (1) every read equals the replayed state at its
//! index and (2) the indexes respect real time: an operation that completed before another
//! began has a smaller index (reads: not larger). Ordering all operations by index then is a
//! valid linearization; any violation is a concrete stale, torn or wrong read, or a lost or
//! reordered write. This is linear in the history, unlike a general search.

use std::collections::{BTreeMap, HashMap, HashSet};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::client::Setup;
use crate::history::{pairs, Function, Op, OpType};

/// Anomalies kept per check in the report.
const ANOMALIES_MAX: usize = 50;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Committed {
    pub from: String,
    pub to: String,
    pub amount: Decimal,
    pub status: String,
    pub log_index: u64,
    pub sequence: u64,
}

/// What the cluster held after every fault was healed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalState {
    /// Balances read through the leader.
    pub balances: BTreeMap<String, Decimal>,
    /// Each node's own (local) read once all nodes reached one applied index.
    pub balances_by_node: Vec<BTreeMap<String, Decimal>>,
    /// Every transfer found in the account histories.
    pub committed: BTreeMap<String, Committed>,
    /// (account, transaction id) pairs listed more than once in one account's history.
    pub duplicate_history_entries: Vec<(String, String)>,
    /// Each node's audit (applied index, digest, conservation).
    pub audits: Vec<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    pub valid: bool,
    pub checked: usize,
    pub anomalies: Vec<Value>,
    /// What the check saw beyond its anomalies (`hostile-frames`: answer codes per kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

struct Check {
    name: &'static str,
    checked: usize,
    anomalies: Vec<Value>,
    anomaly_count: usize,
}

impl Check {
    fn new(name: &'static str) -> Check {
        Check {
            name,
            checked: 0,
            anomalies: Vec::new(),
            anomaly_count: 0,
        }
    }
    fn anomaly(&mut self, value: Value) {
        self.anomaly_count += 1;
        if self.anomalies.len() < ANOMALIES_MAX {
            self.anomalies.push(value);
        }
    }
    fn finish(self) -> CheckResult {
        CheckResult {
            name: self.name.to_owned(),
            valid: self.anomaly_count == 0,
            checked: self.checked,
            anomalies: self.anomalies,
            details: None,
        }
    }
}

fn decimal(value: &Value) -> Option<Decimal> {
    match value {
        Value::String(text) => text.parse().ok(),
        Value::Number(number) => number.to_string().parse().ok(),
        _ => None,
    }
}

fn read_balances(op: &Op) -> BTreeMap<String, Decimal> {
    op.value["balances"]
        .as_object()
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), decimal(v)?)))
                .collect()
        })
        .unwrap_or_default()
}

fn ok_reads(history: &[Op]) -> Vec<&Op> {
    history
        .iter()
        .filter(|op| op.f == Function::Read && op.kind == OpType::Ok)
        .collect()
}

pub fn check_all(history: &[Op], setup: &Setup, last: &FinalState) -> Vec<CheckResult> {
    vec![
        bank_total(history, setup),
        balances_valid(history, setup),
        transfers_final(history, last),
        replicas_identical(last),
        idempotency(history, setup, last),
        linearizable(history, setup, last),
        account_history(history, last),
        list_append(history),
        hostile_frames(history),
    ]
}

/// The answer codes each kind of hostile frame got: kind -> code -> count.
pub fn hostile_frame_codes(history: &[Op]) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut codes: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (invoke, completion) in pairs(history)
        .into_iter()
        .filter(|(i, _)| i.f == Function::HostileFrame)
    {
        let kind = invoke.value["kind"].as_str().unwrap_or("?").to_owned();
        let code = completion.value["code"]
            .as_str()
            .unwrap_or("NO_ANSWER")
            .to_owned();
        *codes.entry(kind).or_default().entry(code).or_default() += 1;
    }
    codes
}

/// No hostile frame that must be refused got an OK answer. An OK means the frame got past
/// decoding: a forwarded invalid write reached the leader, an AppendEntries with invalid
/// commands reached Raft (whatever Raft then answered), an oversized frame was read whole.
/// Frames a node may answer (Status ignores its body) and raw TCP connections only need the
/// node to live on, which the other checks see. The codes seen per kind are the details.
pub fn hostile_frames(history: &[Op]) -> CheckResult {
    let mut check = Check::new("hostile-frames");
    for (invoke, completion) in pairs(history)
        .into_iter()
        .filter(|(i, _)| i.f == Function::HostileFrame)
    {
        check.checked += 1;
        let accepted = completion.value["code"] == json!("OK");
        if accepted && invoke.value["mustRefuse"] != json!(false) {
            check.anomaly(json!({
                "op": completion.index,
                "node": completion.node,
                "kind": invoke.value["kind"],
                "variant": invoke.value["variant"],
                "method": invoke.value["method"],
                "problem": "hostile frame accepted",
                "answer": completion.value["answer"],
            }));
        }
    }
    let codes = hostile_frame_codes(history);
    let mut result = check.finish();
    result.details = Some(json!({ "codesByKind": codes }));
    result
}

/// The history as Elle's list-append workload: one `{type, process, time, f: "txn", value}`
/// map per operation, in history order (real-time order is position order), and the number
/// of list reads it holds.
pub fn list_append_history(history: &[Op]) -> (Vec<Value>, usize) {
    let mut values: HashMap<u64, Value> = HashMap::new();
    let mut reads = 0;
    for (invoke, completion) in pairs(history) {
        match invoke.f {
            Function::Transfer => {
                let id = &invoke.value["transactionId"];
                let appends = json!([
                    ["append", invoke.value["sourceAccountId"], id],
                    ["append", invoke.value["destinationAccountId"], id]
                ]);
                values.insert(invoke.index, appends.clone());
                values.insert(completion.index, appends);
            }
            Function::History
                if completion.kind == OpType::Ok && completion.value["complete"] == json!(true) =>
            {
                let account = &completion.value["account"];
                let mut oldest_first: Vec<Value> = completion.value["ids"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                oldest_first.reverse();
                reads += 1;
                values.insert(invoke.index, json!([["r", account, null]]));
                values.insert(completion.index, json!([["r", account, oldest_first]]));
            }
            _ => {}
        }
    }
    let ops = history
        .iter()
        .filter_map(|op| {
            let value = values.get(&op.index)?;
            let process = op.process.parse::<i64>().ok()?;
            let kind = serde_json::to_value(op.kind).unwrap();
            Some(json!({"type": kind, "process": process, "time": op.time_ns, "f": "txn", "value": value}))
        })
        .collect();
    (ops, reads)
}

/// The per-account lists as Elle's list-append workload, checked for strict
/// serializability by `adya` (a Rust take on Elle): a transfer appends its id to both
/// accounts' lists, a complete history read reads one list. Reads of lists too long to
/// read whole are left out, as are bank reads and resends (checked above).
pub fn list_append(history: &[Op]) -> CheckResult {
    let mut check = Check::new("list-append (adya, strict-serializable)");
    let (ops, reads) = list_append_history(history);
    check.checked = reads;
    let lines: String = ops.iter().map(|op| op.to_string() + "\n").collect();
    let parsed = match adya::History::from_json(&lines) {
        Ok(parsed) => parsed,
        Err(error) => {
            check.anomaly(
                json!({"problem": "history not readable by adya", "error": error.to_string()}),
            );
            return check.finish();
        }
    };
    let report = adya::check(&parsed, adya::Workload::ListAppend, &adya::Opts::default());
    if report.valid == adya::Valid::False {
        for (kind, anomalies) in &report.anomalies {
            for anomaly in anomalies {
                check.anomaly(json!({"type": kind, "explanation": anomaly.explanation}));
            }
        }
    }
    check.finish()
}

/// Every ok read sums to the bank's total.
pub fn bank_total(history: &[Op], setup: &Setup) -> CheckResult {
    let mut check = Check::new("bank-total");
    for read in ok_reads(history) {
        check.checked += 1;
        let sum: Decimal = read_balances(read).values().copied().sum();
        if sum != setup.total() {
            check.anomaly(json!({"op": read.index, "sum": sum.to_string(), "expected": setup.total().to_string()}));
        }
    }
    check.finish()
}

/// No negative balance, and exactly the bank's accounts, in every ok read.
pub fn balances_valid(history: &[Op], setup: &Setup) -> CheckResult {
    let mut check = Check::new("balances-valid");
    let expected: HashSet<&String> = setup.accounts.iter().collect();
    for read in ok_reads(history) {
        check.checked += 1;
        let balances = read_balances(read);
        let seen: HashSet<&String> = balances.keys().collect();
        if seen != expected {
            check.anomaly(json!({"op": read.index, "problem": "unexpected or missing account", "accounts": balances.keys().collect::<Vec<_>>()}));
        }
        for (account, balance) in &balances {
            if balance.is_sign_negative() && !balance.is_zero() {
                check.anomaly(json!({"op": read.index, "problem": "negative balance", "account": account, "balance": balance.to_string()}));
            }
        }
    }
    check.finish()
}

/// ok transfers are in the final state with their acknowledged outcome, fail transfers are
/// absent, info transfers are either; nothing appears that nobody sent.
pub fn transfers_final(history: &[Op], last: &FinalState) -> CheckResult {
    let mut check = Check::new("transfers-final");
    let mut attempted = HashSet::new();
    for (invoke, completion) in pairs(history)
        .into_iter()
        .filter(|(i, _)| i.f == Function::Transfer)
    {
        check.checked += 1;
        let id = invoke.value["transactionId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let committed = last.committed.get(&id);
        match (completion.kind, committed) {
            (OpType::Ok, None) => check.anomaly(json!({"op": completion.index, "id": id, "problem": "acknowledged transfer lost"})),
            (OpType::Ok, Some(found)) if completion.value["status"].as_str() != Some(found.status.as_str()) => check.anomaly(
                json!({"op": completion.index, "id": id, "problem": "outcome changed", "acknowledged": completion.value["status"], "final": found.status}),
            ),
            (OpType::Ok, Some(found)) if decimal(&invoke.value["amount"]) != Some(found.amount) => {
                check.anomaly(json!({"op": completion.index, "id": id, "problem": "amount changed"}))
            }
            (OpType::Fail, Some(_)) => check.anomaly(json!({"op": completion.index, "id": id, "problem": "failed transfer was applied"})),
            _ => {}
        }
        attempted.insert(id);
    }
    for id in last.committed.keys().filter(|id| !attempted.contains(*id)) {
        check.anomaly(json!({"id": id, "problem": "applied transfer nobody sent"}));
    }
    check.finish()
}

/// All replicas ended at one applied index with identical state and balances.
pub fn replicas_identical(last: &FinalState) -> CheckResult {
    let mut check = Check::new("replicas-identical");
    for audit in &last.audits {
        check.checked += 1;
        let first = &last.audits[0];
        if audit["appliedIndex"] != first["appliedIndex"] || audit["digest"] != first["digest"] {
            check.anomaly(json!({"problem": "replica state differs", "audits": last.audits}));
        }
        if audit["conserved"] != json!(true) {
            check
                .anomaly(json!({"problem": "replica does not conserve its total", "audit": audit}));
        }
    }
    for (node, balances) in last.balances_by_node.iter().enumerate() {
        check.checked += 1;
        if *balances != last.balances {
            check.anomaly(json!({"node": node, "problem": "final read differs from the leader's"}));
        }
    }
    check.finish()
}

/// The committed transfers replayed in log order, from the initial balances.
fn replay_all(setup: &Setup, committed: &BTreeMap<String, Committed>) -> BTreeMap<String, Decimal> {
    let mut balances: BTreeMap<String, Decimal> = setup
        .accounts
        .iter()
        .map(|a| (a.clone(), setup.initial_balance))
        .collect();
    for transfer in committed.values().filter(|t| t.status == "COMPLETED") {
        *balances.entry(transfer.from.clone()).or_default() -= transfer.amount;
        *balances.entry(transfer.to.clone()).or_default() += transfer.amount;
    }
    balances
}

/// Resends never apply twice: a same-body resend returns the original outcome, an altered
/// one is refused, no id is listed twice, and the final balances equal one application of
/// every committed transfer.
pub fn idempotency(history: &[Op], setup: &Setup, last: &FinalState) -> CheckResult {
    let mut check = Check::new("idempotency");
    for (invoke, completion) in pairs(history)
        .into_iter()
        .filter(|(i, c)| i.f == Function::Resend && c.kind == OpType::Ok)
    {
        check.checked += 1;
        let altered = invoke.value["altered"] == json!(true);
        let conflict = completion.value["conflict"] == json!(true);
        if altered && !conflict {
            check.anomaly(
                json!({"op": completion.index, "problem": "altered resend was not refused"}),
            );
        }
        if !altered && (conflict || completion.value["status"] != invoke.value["originalStatus"]) {
            check.anomaly(json!({"op": completion.index, "problem": "resend changed the outcome", "original": invoke.value["originalStatus"], "now": completion.value["status"]}));
        }
    }
    for (account, id) in &last.duplicate_history_entries {
        check.anomaly(json!({"problem": "transfer listed twice", "account": account, "id": id}));
    }
    check.checked += 1;
    let replayed = replay_all(setup, &last.committed);
    if replayed != last.balances {
        check.anomaly(json!({"problem": "final balances differ from one application of each committed transfer",
                             "replayed": replayed, "final": last.balances}));
    }
    check.finish()
}

/// Witness-based linearizability (see the module docs).
pub fn linearizable(history: &[Op], setup: &Setup, last: &FinalState) -> CheckResult {
    let mut check = Check::new("linearizable");
    let mut order: Vec<&Committed> = last.committed.values().collect();
    order.sort_by_key(|t| (t.log_index, t.sequence));

    // (1) Every ok read equals the replayed state at its applied index.
    let mut reads = ok_reads(history);
    reads.sort_by_key(|r| r.value["appliedIndex"].as_u64().unwrap_or(0));
    let mut balances: BTreeMap<String, Decimal> = setup
        .accounts
        .iter()
        .map(|a| (a.clone(), setup.initial_balance))
        .collect();
    let mut next = 0;
    for read in reads {
        check.checked += 1;
        let index = read.value["appliedIndex"].as_u64().unwrap_or(0);
        while next < order.len() && order[next].log_index <= index {
            let transfer = order[next];
            if transfer.status == "COMPLETED" {
                *balances.entry(transfer.from.clone()).or_default() -= transfer.amount;
                *balances.entry(transfer.to.clone()).or_default() += transfer.amount;
            }
            next += 1;
        }
        if read_balances(read) != balances {
            check.anomaly(json!({"op": read.index, "problem": "read differs from the state at its index", "appliedIndex": index,
                                 "read": read.value["balances"], "expected": balances}));
        }
    }

    // (2) Indexes respect real time.
    struct Event {
        invoked: u64,
        completed: u64,
        index: u64,
        write: bool,
        op: u64,
    }
    let mut events = Vec::new();
    for (invoke, completion) in pairs(history) {
        if completion.kind != OpType::Ok {
            continue;
        }
        let (index, write) = match invoke.f {
            Function::Transfer => (completion.value["logIndex"].as_u64(), true),
            Function::Read | Function::History => {
                (completion.value["appliedIndex"].as_u64(), false)
            }
            _ => (None, false),
        };
        if let Some(index) = index {
            events.push(Event {
                invoked: invoke.time_ns,
                completed: completion.time_ns,
                index,
                write,
                op: completion.index,
            });
        }
    }
    let mut by_completion: Vec<&Event> = events.iter().collect();
    by_completion.sort_by_key(|e| e.completed);
    let mut by_invocation: Vec<&Event> = events.iter().collect();
    by_invocation.sort_by_key(|e| e.invoked);
    let mut done = 0;
    let mut highest: Option<&Event> = None;
    for event in by_invocation {
        while done < by_completion.len() && by_completion[done].completed < event.invoked {
            let candidate = by_completion[done];
            if highest.is_none_or(|h| candidate.index > h.index) {
                highest = Some(candidate);
            }
            done += 1;
        }
        check.checked += 1;
        if let Some(before) = highest {
            let violated = if event.write {
                event.index <= before.index
            } else {
                event.index < before.index
            };
            if violated {
                check.anomaly(json!({"op": event.op, "index": event.index, "after_op": before.op, "after_index": before.index,
                                     "problem": if event.write { "write ordered before an operation that completed before it began" }
                                                else { "stale read: misses an operation that completed before it began" }}));
            }
        }
    }
    check.finish()
}

/// Per-account (Elle-style) check: every ok history read lists exactly the committed
/// transfers touching that account up to its applied index, newest first.
pub fn account_history(history: &[Op], last: &FinalState) -> CheckResult {
    let mut check = Check::new("account-history");
    let mut by_account: HashMap<&str, Vec<(&String, &Committed)>> = HashMap::new();
    for (id, transfer) in &last.committed {
        by_account
            .entry(transfer.from.as_str())
            .or_default()
            .push((id, transfer));
        by_account
            .entry(transfer.to.as_str())
            .or_default()
            .push((id, transfer));
    }
    for list in by_account.values_mut() {
        list.sort_by_key(|(_, t)| std::cmp::Reverse(t.sequence));
    }
    for read in history
        .iter()
        .filter(|op| op.f == Function::History && op.kind == OpType::Ok)
    {
        check.checked += 1;
        let account = read.value["account"].as_str().unwrap_or_default();
        let index = read.value["appliedIndex"].as_u64().unwrap_or(0);
        let seen: Vec<&str> = read.value["ids"]
            .as_array()
            .map(|ids| ids.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        // An incomplete read (too many pages) is the newest part of the list.
        let shown = if read.value["complete"] == json!(false) {
            seen.len()
        } else {
            usize::MAX
        };
        let expected: Vec<&str> = by_account
            .get(account)
            .map(|list| {
                list.iter()
                    .filter(|(_, t)| t.log_index <= index)
                    .map(|(id, _)| id.as_str())
                    .take(shown)
                    .collect()
            })
            .unwrap_or_default();
        if seen != expected {
            check.anomaly(json!({"op": read.index, "account": account, "appliedIndex": index, "read": seen, "expected": expected}));
        }
    }
    check.finish()
}
