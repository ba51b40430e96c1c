//! The checkers can fail: handcrafted histories with one anomaly each must be flagged by
//! the check responsible, and a clean history must pass every check.

use std::collections::BTreeMap;

use jepsen::checker::{check_all, CheckResult, Committed, FinalState};
use jepsen::client::Setup;
use jepsen::history::{Function, Op, OpType};
use rust_decimal::Decimal;
use serde_json::{json, Value};

struct Builder {
    ops: Vec<Op>,
    time: u64,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            ops: Vec::new(),
            time: 0,
        }
    }
    fn push(&mut self, process: &str, kind: OpType, f: Function, value: Value) -> &mut Builder {
        self.time += 1_000;
        let index = self.ops.len() as u64;
        self.ops.push(Op {
            index,
            time_ns: self.time,
            process: process.into(),
            kind,
            f,
            value,
            node: Some(0),
            error: None,
        });
        self
    }
    fn transfer(
        &mut self,
        process: &str,
        id: &str,
        from: &str,
        to: &str,
        amount: u32,
        end: OpType,
        log_index: u64,
    ) -> &mut Builder {
        let body = json!({"transactionId": id, "sourceAccountId": from, "destinationAccountId": to, "amount": amount.to_string()});
        self.push(process, OpType::Invoke, Function::Transfer, body.clone());
        let mut done = body;
        if end == OpType::Ok {
            done["status"] = json!("COMPLETED");
            done["logIndex"] = json!(log_index);
        }
        self.push(process, end, Function::Transfer, done)
    }
    /// A hostile frame and its answer, as the `hostile-frames` nemesis records them.
    fn hostile(
        &mut self,
        process: &str,
        kind: &str,
        must_refuse: bool,
        code: &str,
    ) -> &mut Builder {
        let sent = json!({"kind": kind, "variant": "v", "method": "Forward", "transport": "grpc",
                          "bytes": 10, "mustRefuse": must_refuse});
        self.push(
            process,
            OpType::Invoke,
            Function::HostileFrame,
            sent.clone(),
        );
        let mut answered = sent;
        answered["code"] = json!(code);
        let end = match code {
            "OK" => {
                answered["answer"] = json!("{\"Ok\":{}}");
                OpType::Ok
            }
            "TIMEOUT" | "CLOSED" | "RESET" | "OPEN" => OpType::Info,
            _ => OpType::Fail,
        };
        self.push(process, end, Function::HostileFrame, answered)
    }
    fn read(&mut self, process: &str, index: u64, balances: &[(&str, u32)]) -> &mut Builder {
        self.push(process, OpType::Invoke, Function::Read, Value::Null);
        let map: serde_json::Map<String, Value> = balances
            .iter()
            .map(|(a, b)| (a.to_string(), json!(b.to_string())))
            .collect();
        self.push(
            process,
            OpType::Ok,
            Function::Read,
            json!({"appliedIndex": index, "balances": map, "missing": []}),
        )
    }
}

fn setup() -> Setup {
    Setup {
        accounts: vec!["a".into(), "b".into(), "c".into()],
        history_accounts: vec!["b".into()],
        initial_balance: Decimal::from(100),
    }
}

fn committed(from: &str, to: &str, amount: u32, log_index: u64, sequence: u64) -> Committed {
    Committed {
        from: from.into(),
        to: to.into(),
        amount: amount.into(),
        status: "COMPLETED".into(),
        log_index,
        sequence,
    }
}

fn balances(values: &[(&str, u32)]) -> BTreeMap<String, Decimal> {
    values
        .iter()
        .map(|(a, b)| (a.to_string(), Decimal::from(*b)))
        .collect()
}

/// t1: a -> b 10 at index 5; t2: b -> c 10 at index 6; reads after each.
fn clean() -> (Builder, FinalState) {
    let mut history = Builder::new();
    history
        .transfer("0", "t1", "a", "b", 10, OpType::Ok, 5)
        .read("1", 5, &[("a", 90), ("b", 110), ("c", 100)])
        .transfer("0", "t2", "b", "c", 10, OpType::Ok, 6)
        .read("1", 6, &[("a", 90), ("b", 100), ("c", 110)])
        .push(
            "2",
            OpType::Invoke,
            Function::History,
            json!({"account": "b"}),
        )
        .push(
            "2",
            OpType::Ok,
            Function::History,
            json!({"account": "b", "appliedIndex": 6, "ids": ["t2", "t1"], "complete": true}),
        )
        .hostile("hostile-0", "forward-zero-amount", true, "INVALID_ARGUMENT")
        .hostile("hostile-1", "oversized", true, "RESOURCE_EXHAUSTED");
    let end = balances(&[("a", 90), ("b", 100), ("c", 110)]);
    let audit = json!({"appliedIndex": 6, "digest": "abc", "conserved": true});
    let last = FinalState {
        balances: end.clone(),
        balances_by_node: vec![end.clone(), end.clone(), end],
        committed: BTreeMap::from([
            ("t1".into(), committed("a", "b", 10, 5, 1)),
            ("t2".into(), committed("b", "c", 10, 6, 2)),
        ]),
        duplicate_history_entries: Vec::new(),
        audits: vec![audit.clone(), audit.clone(), audit],
    };
    (history, last)
}

fn invalid(results: &[CheckResult]) -> Vec<&str> {
    results
        .iter()
        .filter(|r| !r.valid)
        .map(|r| r.name.as_str())
        .collect()
}

#[test]
fn a_clean_history_passes_every_check() {
    let (history, last) = clean();
    let results = check_all(&history.ops, &setup(), &last);
    assert_eq!(invalid(&results), Vec::<&str>::new(), "{results:?}");
    assert!(
        results.iter().all(|r| r.checked > 0),
        "every check looked at something: {results:?}"
    );
}

#[test]
fn lost_write_is_flagged() {
    let (history, mut last) = clean();
    last.committed.remove("t2");
    let end = balances(&[("a", 90), ("b", 110), ("c", 100)]);
    last.balances = end.clone();
    last.balances_by_node = vec![end.clone(), end.clone(), end];
    let results = check_all(&history.ops, &setup(), &last);
    assert!(
        invalid(&results).contains(&"transfers-final"),
        "{results:?}"
    );
    assert!(
        invalid(&results).contains(&"linearizable"),
        "the read at 6 saw a write that is gone"
    );
}

#[test]
fn double_apply_is_flagged() {
    let (history, mut last) = clean();
    let end = balances(&[("a", 80), ("b", 110), ("c", 110)]);
    last.balances = end.clone();
    last.balances_by_node = vec![end.clone(), end.clone(), end];
    last.duplicate_history_entries
        .push(("a".into(), "t1".into()));
    let results = check_all(&history.ops, &setup(), &last);
    assert!(invalid(&results).contains(&"idempotency"), "{results:?}");
}

#[test]
fn stale_read_is_flagged() {
    let (mut history, last) = clean();
    // Begins after t2 completed, yet reflects index 5 (before t2): correct values, stale.
    history.read("2", 5, &[("a", 90), ("b", 110), ("c", 100)]);
    let results = check_all(&history.ops, &setup(), &last);
    assert_eq!(invalid(&results), vec!["linearizable"], "{results:?}");
}

#[test]
fn wrong_total_is_flagged() {
    let (mut history, last) = clean();
    history.read("2", 6, &[("a", 90), ("b", 100), ("c", 100)]);
    let results = check_all(&history.ops, &setup(), &last);
    assert!(invalid(&results).contains(&"bank-total"), "{results:?}");
}

#[test]
fn torn_multi_account_read_is_flagged() {
    let (mut history, last) = clean();
    // Half of t2 visible: b already debited, c not yet credited, labelled index 6.
    history.read("2", 6, &[("a", 90), ("b", 100), ("c", 100)]);
    // And a total-preserving tear: index 6 claimed, index 5 values.
    history.read("3", 6, &[("a", 90), ("b", 110), ("c", 100)]);
    let results = check_all(&history.ops, &setup(), &last);
    let flagged = invalid(&results);
    assert!(flagged.contains(&"linearizable"), "{results:?}");
    let linearizable = results.iter().find(|r| r.name == "linearizable").unwrap();
    assert!(
        linearizable.anomalies.len() >= 2,
        "both torn reads reported: {linearizable:?}"
    );
}

#[test]
fn negative_balance_and_diverging_replicas_and_applied_failures_are_flagged() {
    let (mut history, mut last) = clean();
    history.read("2", 6, &[("a", 300), ("b", 0), ("c", 0)]);
    // serde can't hold a negative u32: write the balance the server would have sent.
    history.ops.last_mut().unwrap().value["balances"]["b"] = json!("-100");
    history.transfer("4", "t3", "a", "c", 1, OpType::Fail, 0);
    last.committed
        .insert("t3".into(), committed("a", "c", 1, 7, 3));
    last.audits[2]["digest"] = json!("def");
    let results = check_all(&history.ops, &setup(), &last);
    let flagged = invalid(&results);
    for name in ["balances-valid", "replicas-identical", "transfers-final"] {
        assert!(flagged.contains(&name), "{name} not flagged: {results:?}");
    }
}

#[test]
fn altered_resend_accepted_and_history_gaps_are_flagged() {
    let (mut history, last) = clean();
    let request = json!({"transactionId": "t1", "sourceAccountId": "a", "destinationAccountId": "b", "amount": "11"});
    history.push(
        "5",
        OpType::Invoke,
        Function::Resend,
        json!({"request": request, "altered": true, "originalStatus": "COMPLETED"}),
    );
    history.push(
        "5",
        OpType::Ok,
        Function::Resend,
        json!({"request": request, "altered": true, "conflict": false, "status": "COMPLETED"}),
    );
    history.push(
        "6",
        OpType::Invoke,
        Function::History,
        json!({"account": "b"}),
    );
    history.push(
        "6",
        OpType::Ok,
        Function::History,
        json!({"account": "b", "appliedIndex": 6, "ids": ["t1"]}),
    );
    let results = check_all(&history.ops, &setup(), &last);
    let flagged = invalid(&results);
    assert!(flagged.contains(&"idempotency"), "{results:?}");
    assert!(
        flagged.contains(&"account-history"),
        "t2 missing from b's list: {results:?}"
    );
}

#[test]
fn list_append_check_runs_adya_and_flags_incompatible_orders() {
    let (history, last) = clean();
    let results = check_all(&history.ops, &setup(), &last);
    let list_append = results
        .iter()
        .find(|r| r.name.starts_with("list-append"))
        .unwrap();
    assert!(
        list_append.valid && list_append.checked == 1,
        "{list_append:?}"
    );

    // Two complete reads of b that disagree on the order of its appends.
    let (mut history, last) = clean();
    history.push(
        "7",
        OpType::Invoke,
        Function::History,
        json!({"account": "b"}),
    );
    history.push(
        "7",
        OpType::Ok,
        Function::History,
        json!({"account": "b", "appliedIndex": 6, "ids": ["t1", "t2"], "complete": true}),
    );
    let results = check_all(&history.ops, &setup(), &last);
    let flagged = invalid(&results);
    assert!(
        flagged.iter().any(|n| n.starts_with("list-append")),
        "{results:?}"
    );
}

#[test]
fn a_read_concurrent_with_a_write_may_miss_it() {
    let (mut history, mut last) = clean();
    // The read begins, a transfer into b begins and completes, then the read returns
    // without it: legal, the read is linearized first.
    history.push(
        "8",
        OpType::Invoke,
        Function::History,
        json!({"account": "b"}),
    );
    history.transfer("9", "t3", "a", "b", 5, OpType::Ok, 7);
    history.push(
        "8",
        OpType::Ok,
        Function::History,
        json!({"account": "b", "appliedIndex": 6, "ids": ["t2", "t1"], "complete": true}),
    );
    last.committed
        .insert("t3".into(), committed("a", "b", 5, 7, 3));
    let end = balances(&[("a", 85), ("b", 105), ("c", 110)]);
    last.balances = end.clone();
    last.balances_by_node = vec![end.clone(), end.clone(), end];
    let results = check_all(&history.ops, &setup(), &last);
    assert_eq!(invalid(&results), Vec::<&str>::new(), "{results:?}");

    // The same read beginning after the transfer completed is stale.
    let (mut history, _) = clean();
    history.transfer("9", "t3", "a", "b", 5, OpType::Ok, 7);
    history.push(
        "8",
        OpType::Invoke,
        Function::History,
        json!({"account": "b"}),
    );
    history.push(
        "8",
        OpType::Ok,
        Function::History,
        json!({"account": "b", "appliedIndex": 6, "ids": ["t2", "t1"], "complete": true}),
    );
    let results = check_all(&history.ops, &setup(), &last);
    let flagged = invalid(&results);
    assert!(flagged.contains(&"linearizable"), "{results:?}");
    assert!(
        flagged.iter().any(|n| n.starts_with("list-append")),
        "{results:?}"
    );
}

#[test]
fn list_append_history_exports_as_elle_edn() {
    let (history, _) = clean();
    let (ops, reads) = jepsen::checker::list_append_history(&history.ops);
    assert_eq!(reads, 1);
    let edn = jepsen::history::to_elle_edn(&ops);
    assert!(
        edn.contains(r#":type :ok, :f :txn, :value [[:append "a" "t1"] [:append "b" "t1"]]}"#),
        "{edn}"
    );
    assert!(
        edn.contains(r#":type :ok, :f :txn, :value [[:r "b" ["t1" "t2"]]]}"#),
        "{edn}"
    );
    assert!(
        edn.contains(r#":type :invoke, :f :txn, :value [[:r "b" nil]]}"#),
        "{edn}"
    );
}

#[test]
fn an_accepted_hostile_frame_is_flagged() {
    for (kind, code) in [
        ("forward-zero-amount", "OK"),
        ("append-entries-self-transfer", "OK"),
        ("oversized", "OK"),
    ] {
        let (mut history, last) = clean();
        history.hostile("hostile-2", kind, true, code);
        let results = check_all(&history.ops, &setup(), &last);
        assert_eq!(invalid(&results), vec!["hostile-frames"], "{results:?}");
        let check = results.iter().find(|r| r.name == "hostile-frames").unwrap();
        assert_eq!(check.anomalies.len(), 1, "{check:?}");
        assert_eq!(check.anomalies[0]["kind"], json!(kind));
        assert_eq!(
            check.anomalies[0]["problem"],
            json!("hostile frame accepted")
        );
    }
}

#[test]
fn refused_hostile_frames_pass_and_their_codes_are_summarised() {
    let (mut history, last) = clean();
    history
        .hostile("hostile-2", "forward-zero-amount", true, "INVALID_ARGUMENT")
        .hostile("hostile-3", "many-headers", true, "INTERNAL")
        .hostile("hostile-4", "append-entries-huge-amount", true, "TIMEOUT")
        // Status reads no body and raw TCP has no gRPC answer: an OK there is no anomaly.
        .hostile("hostile-5", "status-garbage", false, "OK")
        .hostile("hostile-0", "partial-preface", false, "OPEN");
    let results = check_all(&history.ops, &setup(), &last);
    assert_eq!(invalid(&results), Vec::<&str>::new(), "{results:?}");
    let check = results.iter().find(|r| r.name == "hostile-frames").unwrap();
    assert_eq!(check.checked, 7);
    let codes = &check.details.as_ref().unwrap()["codesByKind"];
    assert_eq!(codes["forward-zero-amount"], json!({"INVALID_ARGUMENT": 2}));
    assert_eq!(codes["status-garbage"], json!({"OK": 1}));
    assert_eq!(codes["oversized"], json!({"RESOURCE_EXHAUSTED": 1}));
    let summary = jepsen::report::summary(&history.ops, &results, &["hostile-frames"], 1.0, None);
    assert!(
        summary.contains("hostile frames, answers by kind:"),
        "{summary}"
    );
    assert!(
        summary
            .lines()
            .any(|l| l.contains("forward-zero-amount") && l.contains("INVALID_ARGUMENT 2")),
        "{summary}"
    );
    let json = serde_json::to_value(&results).unwrap();
    assert!(
        json.as_array()
            .unwrap()
            .iter()
            .any(|r| r["details"]["codesByKind"]["many-headers"]["INTERNAL"] == json!(1)),
        "codes reach results.json: {json}"
    );
}

/// One client op, by explicit times in ms.
fn timed(ops: &mut Vec<Op>, process: &str, f: Function, at_ms: u64, took_ms: u64, end: OpType) {
    let value = json!({"transactionId": format!("t{at_ms}"), "sourceAccountId": "a",
                       "destinationAccountId": "c", "amount": "1"});
    for (time_ms, kind) in [(at_ms, OpType::Invoke), (at_ms + took_ms, end)] {
        ops.push(Op {
            index: 0,
            time_ns: time_ms * 1_000_000,
            process: process.into(),
            kind,
            f,
            value: value.clone(),
            node: Some(0),
            error: (kind == OpType::Info).then(|| "timeout: operation timed out".to_owned()),
        });
    }
}

fn nemesis(ops: &mut Vec<Op>, f: Function, kind: OpType, at_ms: u64, fault: &str) {
    ops.push(Op {
        index: 0,
        time_ns: at_ms * 1_000_000,
        process: "nemesis".into(),
        kind,
        f,
        value: json!({"fault": fault}),
        node: None,
        error: None,
    });
}

/// 100 ok transfers a second in calm; from 8 s to 12 s a pause window where answers take
/// 40 ms and nothing answers for 500 ms from 10 s.
#[test]
fn availability_compares_fault_windows_with_calm() {
    let mut ops = Vec::new();
    let mut at = 0;
    while at < 20_000 {
        let in_window = (8_000..12_000).contains(&at);
        if in_window && (10_000..10_500).contains(&at) {
            timed(&mut ops, "0", Function::Transfer, at, 500, OpType::Info);
            at = 10_500;
            continue;
        }
        let took = if in_window { 40 } else { 2 };
        timed(&mut ops, "0", Function::Transfer, at, took, OpType::Ok);
        at += if in_window { 40 } else { 10 };
    }
    nemesis(&mut ops, Function::Start, OpType::Invoke, 8_000, "pause");
    nemesis(&mut ops, Function::Start, OpType::Info, 8_001, "pause");
    nemesis(&mut ops, Function::Stop, OpType::Invoke, 11_999, "pause");
    nemesis(&mut ops, Function::Stop, OpType::Info, 12_000, "pause");
    ops.sort_by_key(|op| op.time_ns);
    for (index, op) in ops.iter_mut().enumerate() {
        op.index = index as u64;
    }
    let report = jepsen::availability::analyse(&ops, &[], 3);
    assert_eq!(report.calm.ok_per_second, 100.0, "{:?}", report.calm);
    assert_eq!(report.calm.latency.p50_ms, 2.0);
    let window = &report.windows[0];
    assert_eq!(window.fault, "pause");
    // 3.5 s answering one op per 40 ms: 87 or 88 ok in 4 s, about 22 a second.
    let ratio = window.ratio.unwrap();
    assert!((0.2..0.23).contains(&ratio), "{window:?}");
    // The last ok before 10 s completed at 10.0 s, the next at 10.54 s.
    assert_eq!(window.longest_write_gap_ms, 540.0, "{window:?}");
    assert_eq!(window.errors.get("timeout"), Some(&1));
    assert_eq!(window.latency.p50_ms, 40.0);
    assert!(window.latency_bound.unwrap() < 0.06, "{window:?}");
    assert_eq!(report.by_fault["pause"].windows, 1);
    assert!(!jepsen::availability::check(&report, 0.5).valid);
    assert!(jepsen::availability::check(&report, 0.2).valid);
    let text = jepsen::availability::text(&report);
    assert!(text.contains("pause"), "{text}");
}

/// Many short windows close together: no two fault labels of the timeline overlap.
#[test]
fn timeline_fault_labels_do_not_overlap() {
    let mut ops = Vec::new();
    let faults = [
        "partition-random",
        "kill-leader",
        "partition-leader",
        "hostile-frames",
    ];
    for n in 0..60u64 {
        let fault = faults[n as usize % faults.len()];
        nemesis(&mut ops, Function::Start, OpType::Info, n * 3_000, fault);
        nemesis(
            &mut ops,
            Function::Stop,
            OpType::Info,
            n * 3_000 + 2_000,
            fault,
        );
    }
    timed(&mut ops, "0", Function::Read, 180_000, 1, OpType::Ok);
    let svg = jepsen::report::timeline_svg(&ops);
    // Labels are the <text> right after each window's marker line.
    let mut labels: Vec<(f64, f64, String)> = Vec::new();
    for part in svg.split("stroke-opacity=\"0.6\"/><text x=\"").skip(1) {
        let x: f64 = part.split('"').next().unwrap().parse().unwrap();
        let y: f64 = part
            .split("y=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let text = part
            .split('>')
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_owned();
        labels.push((x, y, text));
    }
    assert_eq!(labels.len(), 60, "{svg}");
    for (i, a) in labels.iter().enumerate() {
        for b in &labels[i + 1..] {
            let width = |t: &str| t.chars().count() as f64 * 6.5 + 4.0;
            let apart = a.1 != b.1 || a.0 + width(&a.2) <= b.0 || b.0 + width(&b.2) <= a.0;
            assert!(apart, "labels overlap: {a:?} {b:?}");
        }
    }
}
