//! The history: every operation a client or the nemesis began (`invoke`) and how it ended
//! (`ok`, `fail`, `info`), in Jepsen's vocabulary. `fail` means the server guarantees that
//! nothing was applied; `info` means the outcome is unknown (a timeout is always `info`).

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Function {
    /// A new transfer.
    Transfer,
    /// All balances at once, through the consistent multi-account read.
    Read,
    /// One account's transaction list.
    History,
    /// A resend of an earlier transfer's id, with the same or an altered body.
    Resend,
    /// Nemesis: a fault begins / is healed.
    Start,
    Stop,
    /// A malformed, invalid or oversized frame sent to a node's peer port by the
    /// `hostile-frames` nemesis, and the answer it got.
    HostileFrame,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    pub index: u64,
    /// Nanoseconds since the test began.
    pub time_ns: u64,
    /// A client number, or "nemesis".
    pub process: String,
    #[serde(rename = "type")]
    pub kind: OpType,
    pub f: Function,
    pub value: Value,
    /// The node the request was sent to.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub node: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// Appends operations from many tasks; the lock is the harness's, never the ledger's.
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    ops: Arc<Mutex<Vec<Op>>>,
    ok: Arc<std::sync::atomic::AtomicU64>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            ops: Arc::default(),
            ok: Arc::default(),
        }
    }

    pub fn record(
        &self,
        process: &str,
        kind: OpType,
        f: Function,
        value: Value,
        node: Option<usize>,
        error: Option<String>,
    ) {
        let time_ns = self.start.elapsed().as_nanos() as u64;
        if kind == OpType::Ok {
            self.ok.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let mut ops = self.ops.lock().expect("not poisoned");
        let index = ops.len() as u64;
        ops.push(Op {
            index,
            time_ns,
            process: process.to_owned(),
            kind,
            f,
            value,
            node,
            error,
        });
    }

    /// Nanoseconds since the test began, on the history's clock.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Operations that ended ok so far, across all clients.
    pub fn ok_count(&self) -> u64 {
        self.ok.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn ops(&self) -> Vec<Op> {
        self.ops.lock().expect("not poisoned").clone()
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

/// Pairs every invocation with its completion: (invoke, completion), by process order.
pub fn pairs(history: &[Op]) -> Vec<(&Op, &Op)> {
    let mut open: std::collections::HashMap<&str, &Op> = std::collections::HashMap::new();
    let mut pairs = Vec::new();
    for op in history {
        if op.kind == OpType::Invoke {
            open.insert(&op.process, op);
        } else if let Some(invoke) = open.remove(op.process.as_str()) {
            pairs.push((invoke, op));
        }
    }
    pairs
}

pub fn to_jsonl(history: &[Op]) -> String {
    history
        .iter()
        .map(|op| serde_json::to_string(op).expect("serializable") + "\n")
        .collect()
}

pub fn from_jsonl(text: &str) -> anyhow::Result<Vec<Op>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

/// Jepsen's EDN form, one map per line, so Elle or Knossos users can re-check it.
pub fn to_edn(history: &[Op]) -> String {
    let mut out = String::new();
    for op in history {
        let process = match op.process.parse::<u64>() {
            Ok(n) => n.to_string(),
            Err(_) => format!(":{}", op.process),
        };
        let kind = serde_json::to_value(op.kind).unwrap();
        let f = serde_json::to_value(op.f).unwrap();
        let _ = write!(
            out,
            "{{:index {}, :time {}, :process {}, :type :{}, :f :{}, :value {}",
            op.index,
            op.time_ns,
            process,
            kind.as_str().unwrap(),
            f.as_str().unwrap(),
            edn_value(&op.value)
        );
        if let Some(node) = op.node {
            let _ = write!(out, ", :node {node}");
        }
        if let Some(error) = &op.error {
            let _ = write!(out, ", :error {}", edn_string(error));
        }
        out.push_str("}\n");
    }
    out
}

/// Elle's list-append form (`{:type :ok, :f :txn, :value [[:append k v] [:r k [..]]]}`),
/// from `checker::list_append_history`, for `elle-cli --model list-append`.
pub fn to_elle_edn(ops: &[Value]) -> String {
    let mut out = String::new();
    for (index, op) in ops.iter().enumerate() {
        let micro_ops: Vec<String> = op["value"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|mop| {
                let parts = mop.as_array().cloned().unwrap_or_default();
                let function = parts.first().and_then(Value::as_str).unwrap_or("?");
                let rest: Vec<String> = parts.iter().skip(1).map(edn_value).collect();
                format!("[:{function} {}]", rest.join(" "))
            })
            .collect();
        let _ = writeln!(
            out,
            "{{:index {index}, :time {}, :process {}, :type :{}, :f :txn, :value [{}]}}",
            op["time"],
            op["process"],
            op["type"].as_str().unwrap_or("info"),
            micro_ops.join(" ")
        );
    }
    out
}

fn edn_string(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

fn edn_value(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            let text = n.to_string();
            // Exact decimals become EDN bigdecimals.
            if text.contains('.') {
                format!("{text}M")
            } else {
                text
            }
        }
        Value::String(s) => edn_string(s),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(edn_value).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!(":{} {}", k, edn_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn edn_and_jsonl_round_trip() {
        let recorder = Recorder::new();
        recorder.record(
            "0",
            OpType::Invoke,
            Function::Transfer,
            json!({"id": "t1", "amount": 1.5}),
            Some(2),
            None,
        );
        recorder.record(
            "nemesis",
            OpType::Info,
            Function::Start,
            json!({"fault": "kill"}),
            None,
            Some("x".into()),
        );
        let ops = recorder.ops();
        assert_eq!(from_jsonl(&to_jsonl(&ops)).unwrap(), ops);
        let edn = to_edn(&ops);
        assert!(
            edn.contains(":type :invoke, :f :transfer, :value {:amount 1.5M, :id \"t1\"}, :node 2"),
            "{edn}"
        );
        assert!(edn.contains(":process :nemesis"));
    }
}
