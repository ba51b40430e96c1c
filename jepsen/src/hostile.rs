//! The `hostile-frames` nemesis: during its fault window it sends malformed, invalid and
//! oversized frames straight to every node's peer (Raft gRPC) port, bypassing the harness's
//! proxy, and records each frame and the answer it got (process `hostile-N`, function
//! `hostile-frame`). The `hostile-frames` check then verifies that no frame that must be
//! refused got an OK answer.
//!
//! Frames are built from the real types' serde (`storage::domain`, `raft::protocol`,
//! openraft's requests): a valid value is serialized to JSON and then corrupted, so the
//! frames follow the types as they evolve. A corruption finds its target by value (the
//! amount, an id), not by field name. The harness never sends structurally valid Raft
//! traffic a real peer could send (a peer is trusted to be a peer): every Raft message here
//! is broken so that it cannot be decoded.
//!
//! Bounds: at most [`FRAMES_PER_WINDOW`] frames per window, [`FRAMES_PER_SECOND`] per
//! second, each with a [`FRAME_TIMEOUT`]; one oversized frame (above 64 MiB) per window.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, SnapshotMeta, Vote};
use raft::pb::raft_service_client::RaftServiceClient;
use raft::pb::Frame;
use raft::protocol::{ForwardRequest, ReadRequest};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{json, Value};
use storage::domain::{AccountId, Amount, Batch, Command, TransactionId, TransferRequest};
use storage::{NodeId, TypeConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::history::{Function, OpType, Recorder};

/// Most frames per fault window, across all nodes.
pub const FRAMES_PER_WINDOW: usize = 200;
/// Most frames started per second.
pub const FRAMES_PER_SECOND: u64 = 40;
/// Every frame's deadline: connect, send and answer (a stalled connection is closed then).
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(2);
/// Frames in flight at once.
const LANES: usize = 6;
/// The oversized frame: just above 64 MiB.
pub const OVERSIZED_BYTES: usize = 64 * 1024 * 1024 + 4096;
/// Nesting depth of the deeply nested frame.
pub const NESTING_DEPTH: usize = 10_000;
/// Digits of the huge numbers.
pub const HUGE_DIGITS: usize = 400;
/// Metadata entries of the many-headers frame (the servers' default header list limit is
/// 16 KiB; these are about 120 KiB).
pub const MANY_HEADERS: usize = 2_000;
/// Longest answer or message text kept in the history.
const ANSWER_CHARS_MAX: usize = 300;
/// The HTTP/2 client connection preface.
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The peer service's methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    AppendEntries,
    Vote,
    InstallSnapshot,
    Forward,
    Status,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::AppendEntries => "AppendEntries",
            Method::Vote => "Vote",
            Method::InstallSnapshot => "InstallSnapshot",
            Method::Forward => "Forward",
            Method::Status => "Status",
        }
    }
}

/// Methods whose request is decoded (Status ignores its body).
pub const DECODING_METHODS: [Method; 4] = [
    Method::AppendEntries,
    Method::Vote,
    Method::InstallSnapshot,
    Method::Forward,
];

/// How a valid transfer command is made invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    ZeroAmount,
    NegativeAmount,
    FiveDecimals,
    /// A JSON number in exponent form with a 30-digit mantissa.
    ExponentAmount,
    /// A JSON number of [`HUGE_DIGITS`] digits.
    HugeAmount,
    SelfTransfer,
    /// The transaction id with spaces.
    IdWithSpaces,
    /// The source account id, 51 characters.
    IdTooLong,
    /// The destination account id, empty.
    EmptyId,
    UnknownCommandType,
}

pub const CORRUPTIONS: [Corruption; 10] = [
    Corruption::ZeroAmount,
    Corruption::NegativeAmount,
    Corruption::FiveDecimals,
    Corruption::ExponentAmount,
    Corruption::HugeAmount,
    Corruption::SelfTransfer,
    Corruption::IdWithSpaces,
    Corruption::IdTooLong,
    Corruption::EmptyId,
    Corruption::UnknownCommandType,
];

impl Corruption {
    pub fn name(self) -> &'static str {
        match self {
            Corruption::ZeroAmount => "zero-amount",
            Corruption::NegativeAmount => "negative-amount",
            Corruption::FiveDecimals => "five-decimals",
            Corruption::ExponentAmount => "exponent-amount",
            Corruption::HugeAmount => "huge-amount",
            Corruption::SelfTransfer => "self-transfer",
            Corruption::IdWithSpaces => "id-with-spaces",
            Corruption::IdTooLong => "id-51-chars",
            Corruption::EmptyId => "empty-id",
            Corruption::UnknownCommandType => "unknown-command-type",
        }
    }
}

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An empty body.
    Empty,
    /// Random bytes (never UTF-8, so never JSON).
    RandomBytes,
    /// The first half of a request's JSON.
    TruncatedJson,
    /// A request's JSON with every scalar replaced by one of another type.
    WrongTypes,
    /// [`NESTING_DEPTH`] nested arrays.
    DeepNesting,
    /// A request's JSON with every number replaced by a [`HUGE_DIGITS`]-digit one.
    HugeNumber,
    /// A forwarded write of an invalid transfer.
    Forward(Corruption),
    /// An AppendEntries whose batch holds an invalid transfer.
    AppendEntries(Corruption),
    /// A Vote request with its numbers, objects or booleans garbled.
    VoteGarbage,
    /// An InstallSnapshot request with its numbers garbled.
    InstallSnapshotGarbage,
    /// Random bytes to Status, which reads no body: any answer is fine, the node must live.
    StatusGarbage,
    /// A forwarded read padded with whitespace above 64 MiB: refused by size or not at all.
    Oversized,
    /// An undecodable Forward carrying [`MANY_HEADERS`] metadata entries.
    ManyHeaders,
    /// Random bytes on the raw TCP port: not HTTP/2 at all.
    TcpGarbage,
    /// An HTTP/1.1 request on the HTTP/2-only port.
    TcpHttp1,
    /// A partial HTTP/2 preface, then silence until the frame timeout.
    PartialPreface,
}

impl Kind {
    pub fn name(self) -> String {
        match self {
            Kind::Empty => "empty".into(),
            Kind::RandomBytes => "random-bytes".into(),
            Kind::TruncatedJson => "truncated-json".into(),
            Kind::WrongTypes => "wrong-types".into(),
            Kind::DeepNesting => "deep-nesting".into(),
            Kind::HugeNumber => "huge-number".into(),
            Kind::Forward(c) => format!("forward-{}", c.name()),
            Kind::AppendEntries(c) => format!("append-entries-{}", c.name()),
            Kind::VoteGarbage => "vote-garbage".into(),
            Kind::InstallSnapshotGarbage => "install-snapshot-garbage".into(),
            Kind::StatusGarbage => "status-garbage".into(),
            Kind::Oversized => "oversized".into(),
            Kind::ManyHeaders => "many-headers".into(),
            Kind::TcpGarbage => "tcp-garbage".into(),
            Kind::TcpHttp1 => "tcp-http1".into(),
            Kind::PartialPreface => "partial-preface".into(),
        }
    }

    /// Whether an OK answer means the frame was accepted (an anomaly).
    pub fn must_refuse(self) -> bool {
        !matches!(
            self,
            Kind::StatusGarbage | Kind::TcpGarbage | Kind::TcpHttp1 | Kind::PartialPreface
        )
    }
}

/// Every kind but the oversized one (sent once per window), in sending order.
pub fn catalogue() -> Vec<Kind> {
    let mut kinds = vec![
        Kind::Empty,
        Kind::RandomBytes,
        Kind::TruncatedJson,
        Kind::WrongTypes,
        Kind::DeepNesting,
        Kind::HugeNumber,
    ];
    kinds.extend(CORRUPTIONS.iter().map(|c| Kind::Forward(*c)));
    kinds.extend(CORRUPTIONS.iter().map(|c| Kind::AppendEntries(*c)));
    kinds.extend([
        Kind::VoteGarbage,
        Kind::InstallSnapshotGarbage,
        Kind::StatusGarbage,
        Kind::ManyHeaders,
        Kind::TcpGarbage,
        Kind::TcpHttp1,
        Kind::PartialPreface,
    ]);
    kinds
}

/// One planned frame: its kind, target node and position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub kind: Kind,
    pub node: usize,
    /// Position in the window, unique.
    pub seq: usize,
    /// Which pass over the catalogue; rotates the methods and variants.
    pub round: usize,
}

/// The frames of window number `window`: the oversized one first (to one node, rotating
/// with the window), then the catalogue for every node, again and again, up to `max`.
pub fn plan(window: usize, nodes: usize, max: usize) -> Vec<Spec> {
    let mut specs = Vec::new();
    if nodes == 0 || max == 0 {
        return specs;
    }
    specs.push(Spec {
        kind: Kind::Oversized,
        node: window % nodes,
        seq: 0,
        round: 0,
    });
    let kinds = catalogue();
    let mut round = 0;
    while specs.len() < max {
        for kind in &kinds {
            for node in 0..nodes {
                if specs.len() >= max {
                    return specs;
                }
                let seq = specs.len();
                specs.push(Spec {
                    kind: *kind,
                    node,
                    seq,
                    round,
                });
            }
        }
        round += 1;
    }
    specs
}

/// What goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// One unary call with this body (the `Frame.json` bytes) and extra metadata entries.
    Grpc {
        method: Method,
        body: Vec<u8>,
        headers: Vec<(String, String)>,
    },
    /// Raw bytes on a TCP connection, then wait for the server until the frame timeout.
    Tcp { bytes: Vec<u8> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hostile {
    pub kind: Kind,
    /// Which form of the kind (the corrupted method or field, the garbling).
    pub variant: String,
    pub payload: Payload,
}

impl Hostile {
    pub fn method(&self) -> Option<Method> {
        match &self.payload {
            Payload::Grpc { method, .. } => Some(*method),
            Payload::Tcp { .. } => None,
        }
    }
    pub fn bytes(&self) -> usize {
        match &self.payload {
            Payload::Grpc { body, .. } => body.len(),
            Payload::Tcp { bytes } => bytes.len(),
        }
    }
}

/// What the frames are built from: the test's accounts and the window number.
#[derive(Debug, Clone)]
pub struct Context {
    pub accounts: Vec<String>,
    pub window: usize,
    pub nodes: usize,
}

fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("the protocol types serialize")
}

fn number(text: &str) -> Value {
    // With serde_json's arbitrary_precision the text is kept as written.
    serde_json::from_str(text).expect("a JSON number")
}

fn huge_number() -> Value {
    number(&"9".repeat(HUGE_DIGITS))
}

/// A valid transfer between two of the test's accounts, with values distinct enough to be
/// found again by value in its JSON.
pub fn valid_transfer(context: &Context, seq: usize) -> TransferRequest {
    let account = |i: usize| {
        context
            .accounts
            .get(i)
            .and_then(|a| AccountId::parse(a).ok())
            .unwrap_or_else(|| AccountId::parse(&format!("hostile-account-{i}")).unwrap())
    };
    TransferRequest::new(
        TransactionId::parse(&format!("hostile-{}-{seq}", context.window)).expect("a valid id"),
        account(0),
        account(1),
        Amount::parse(Decimal::new(12_345, 4)).expect("a valid amount"),
        None,
    )
    .expect("a valid transfer")
}

/// The command that carries `request`, as the leader would propose it.
pub fn transfer_command(request: &TransferRequest) -> Command {
    Command::Transfer {
        request: request.clone(),
        idempotency_key: None,
    }
}

/// Replaces every subtree equal to `target` by `with`; returns how many.
pub fn replace_equal(value: &mut Value, target: &Value, with: &Value) -> usize {
    if value == target {
        *value = with.clone();
        return 1;
    }
    match value {
        Value::Array(items) => items
            .iter_mut()
            .map(|v| replace_equal(v, target, with))
            .sum(),
        Value::Object(map) => map
            .values_mut()
            .map(|v| replace_equal(v, target, with))
            .sum(),
        _ => 0,
    }
}

/// The JSON of `request`'s command with `corruption` applied.
pub fn corrupt_command(request: &TransferRequest, corruption: Corruption) -> Value {
    let mut command = to_json(&transfer_command(request));
    let amount = to_json(&request.amount());
    let replace = |command: &mut Value, target: Value, with: Value| {
        replace_equal(command, &target, &with);
    };
    match corruption {
        Corruption::ZeroAmount => replace(&mut command, amount, to_json(&Amount::ZERO)),
        Corruption::NegativeAmount => replace(&mut command, amount, json!("-1")),
        Corruption::FiveDecimals => replace(&mut command, amount, json!("1.00001")),
        Corruption::ExponentAmount => replace(
            &mut command,
            amount,
            number("123456789012345678901234567890e-26"),
        ),
        Corruption::HugeAmount => replace(&mut command, amount, huge_number()),
        Corruption::SelfTransfer => replace(
            &mut command,
            to_json(request.destination_account_id()),
            to_json(request.source_account_id()),
        ),
        Corruption::IdWithSpaces => replace(
            &mut command,
            to_json(request.transaction_id()),
            json!("hostile id with spaces"),
        ),
        Corruption::IdTooLong => replace(
            &mut command,
            to_json(request.source_account_id()),
            json!("x".repeat(storage::domain::ID_LENGTH_MAX + 1)),
        ),
        Corruption::EmptyId => replace(
            &mut command,
            to_json(request.destination_account_id()),
            json!(""),
        ),
        Corruption::UnknownCommandType => {
            // The tag: a string at the command's top level that is not one of the request's
            // fields (internally tagged); else the single key (externally tagged).
            let fields = to_json(request);
            let fields = fields.as_object().cloned().unwrap_or_default();
            if let Some(map) = command.as_object_mut() {
                let tags: Vec<String> = map
                    .iter()
                    .filter(|(k, v)| v.is_string() && !fields.contains_key(*k))
                    .map(|(k, _)| k.clone())
                    .collect();
                if !tags.is_empty() {
                    for tag in tags {
                        map.insert(tag, json!("mintMoney"));
                    }
                } else if map.len() == 1 {
                    let key = map.keys().next().cloned().expect("one key");
                    let inner = map.remove(&key).expect("one key");
                    map.insert("mintMoney".into(), inner);
                }
            }
        }
    }
    command
}

fn leader_of(context: &Context, node: usize) -> NodeId {
    ((node + 1) % context.nodes.max(1)) as NodeId
}

/// An AppendEntries from a plausible leader carrying one batch with `command`.
pub fn append_entries(context: &Context, node: usize, command: Command) -> Value {
    let leader = leader_of(context, node);
    let request = AppendEntriesRequest::<TypeConfig> {
        vote: Vote::new_committed(1, leader),
        prev_log_id: None,
        entries: vec![Entry::<TypeConfig> {
            log_id: LogId::new(CommittedLeaderId::new(1, leader), 1),
            payload: EntryPayload::Normal(Batch {
                proposed_at_ms: 1,
                commands: vec![command],
            }),
        }],
        leader_commit: None,
    };
    to_json(&request)
}

/// An AppendEntries whose batch holds the transfer corrupted by `corruption`.
pub fn append_entries_with(
    context: &Context,
    node: usize,
    request: &TransferRequest,
    corruption: Corruption,
) -> Value {
    let command = transfer_command(request);
    let mut frame = append_entries(context, node, command.clone());
    replace_equal(
        &mut frame,
        &to_json(&command),
        &corrupt_command(request, corruption),
    );
    frame
}

pub fn vote_request(context: &Context, node: usize) -> Value {
    let leader = leader_of(context, node);
    to_json(&VoteRequest::<NodeId> {
        vote: Vote::new(1, leader),
        last_log_id: Some(LogId::new(CommittedLeaderId::new(1, leader), 1)),
    })
}

pub fn install_snapshot_request(context: &Context, node: usize) -> Value {
    let leader = leader_of(context, node);
    to_json(&InstallSnapshotRequest::<TypeConfig> {
        vote: Vote::new_committed(1, leader),
        meta: SnapshotMeta {
            last_log_id: Some(LogId::new(CommittedLeaderId::new(1, leader), 1)),
            snapshot_id: "hostile".into(),
            ..Default::default()
        },
        offset: 0,
        data: b"hostile".to_vec(),
        done: false,
    })
}

pub fn forward_write(request: &TransferRequest) -> Value {
    to_json(&ForwardRequest::Write(transfer_command(request)))
}

/// The JSON a method's request would carry (never sent as is).
pub fn base_request(context: &Context, node: usize, method: Method, seq: usize) -> Value {
    match method {
        Method::AppendEntries => append_entries(
            context,
            node,
            transfer_command(&valid_transfer(context, seq)),
        ),
        Method::Vote => vote_request(context, node),
        Method::InstallSnapshot => install_snapshot_request(context, node),
        Method::Forward | Method::Status => forward_write(&valid_transfer(context, seq)),
    }
}

/// Every scalar replaced by one of another type: numbers and booleans by strings, strings by
/// numbers, null by an empty array.
pub fn wrong_types(value: &Value) -> Value {
    match value {
        Value::Null => json!([]),
        Value::Bool(b) => json!(b.to_string()),
        Value::Number(n) => json!(n.to_string()),
        Value::String(_) => json!(7),
        Value::Array(items) => Value::Array(items.iter().map(wrong_types).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), wrong_types(v)))
                .collect(),
        ),
    }
}

/// Every number replaced by `with`.
pub fn replace_numbers(value: &Value, with: &Value) -> Value {
    match value {
        Value::Number(_) => with.clone(),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| replace_numbers(v, with)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), replace_numbers(v, with)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Every object replaced by the array of its values.
pub fn objects_to_arrays(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Array(map.values().map(objects_to_arrays).collect()),
        Value::Array(items) => Value::Array(items.iter().map(objects_to_arrays).collect()),
        other => other.clone(),
    }
}

/// Every boolean replaced by a string.
pub fn garble_bools(value: &Value) -> Value {
    match value {
        Value::Bool(_) => json!("maybe"),
        Value::Array(items) => Value::Array(items.iter().map(garble_bools).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), garble_bools(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn bytes_of(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON serializes")
}

/// Random bytes that are never valid UTF-8, hence never JSON.
pub fn random_bytes(rng: &mut fastrand::Rng, len: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = std::iter::repeat_with(|| rng.u8(..))
        .take(len.max(1))
        .collect();
    bytes[0] = 0xFF;
    bytes
}

fn grpc(kind: Kind, variant: &str, method: Method, body: Vec<u8>) -> Hostile {
    Hostile {
        kind,
        variant: variant.to_owned(),
        payload: Payload::Grpc {
            method,
            body,
            headers: Vec::new(),
        },
    }
}

/// The oversized frame's body: a forwarded read of one account padded with whitespace to
/// [`OVERSIZED_BYTES`]. Harmless if decoded; only its size makes it hostile, so an OK answer
/// means no size bound is enforced.
pub fn oversized_body(context: &Context) -> Vec<u8> {
    let account = valid_transfer(context, 0).source_account_id().clone();
    let mut body = bytes_of(&to_json(&ForwardRequest::Read(ReadRequest::Accounts(
        vec![account],
    ))));
    body.resize(OVERSIZED_BYTES, b' ');
    body
}

/// Builds the frame of `spec`.
pub fn build(spec: &Spec, context: &Context, rng: &mut fastrand::Rng) -> Hostile {
    let rotate = |methods: &[Method]| methods[(spec.round + spec.node) % methods.len()];
    let base = |method: Method| base_request(context, spec.node, method, spec.seq);
    let kind = spec.kind;
    match kind {
        Kind::Empty => {
            let method = rotate(&DECODING_METHODS);
            grpc(kind, method.name(), method, Vec::new())
        }
        Kind::RandomBytes => {
            let method = rotate(&DECODING_METHODS);
            let len = rng.usize(1..=4096);
            grpc(kind, method.name(), method, random_bytes(rng, len))
        }
        Kind::TruncatedJson => {
            let method = rotate(&DECODING_METHODS);
            let mut body = bytes_of(&base(method));
            body.truncate(body.len() / 2);
            grpc(kind, method.name(), method, body)
        }
        Kind::WrongTypes => {
            let method = rotate(&DECODING_METHODS);
            grpc(
                kind,
                method.name(),
                method,
                bytes_of(&wrong_types(&base(method))),
            )
        }
        Kind::DeepNesting => {
            let method = rotate(&DECODING_METHODS);
            let body = [
                "[".repeat(NESTING_DEPTH).into_bytes(),
                "]".repeat(NESTING_DEPTH).into_bytes(),
            ]
            .concat();
            grpc(kind, method.name(), method, body)
        }
        Kind::HugeNumber => {
            // Forward's request has no numbers: its huge amount is `forward-huge-amount`.
            let method = rotate(&[Method::AppendEntries, Method::Vote, Method::InstallSnapshot]);
            let body = bytes_of(&replace_numbers(&base(method), &huge_number()));
            grpc(kind, method.name(), method, body)
        }
        Kind::Forward(corruption) => {
            let request = valid_transfer(context, spec.seq);
            let mut frame = forward_write(&request);
            replace_equal(
                &mut frame,
                &to_json(&transfer_command(&request)),
                &corrupt_command(&request, corruption),
            );
            grpc(kind, corruption.name(), Method::Forward, bytes_of(&frame))
        }
        Kind::AppendEntries(corruption) => {
            let request = valid_transfer(context, spec.seq);
            let frame = append_entries_with(context, spec.node, &request, corruption);
            grpc(
                kind,
                corruption.name(),
                Method::AppendEntries,
                bytes_of(&frame),
            )
        }
        Kind::VoteGarbage => {
            let vote = vote_request(context, spec.node);
            let (variant, garbled) = match spec.round % 3 {
                0 => ("negative-numbers", replace_numbers(&vote, &json!(-1))),
                1 => ("objects-as-arrays", objects_to_arrays(&vote)),
                _ => ("bools-as-strings", garble_bools(&vote)),
            };
            grpc(kind, variant, Method::Vote, bytes_of(&garbled))
        }
        Kind::InstallSnapshotGarbage => {
            let request = install_snapshot_request(context, spec.node);
            let (variant, garbled) = match spec.round % 2 {
                0 => ("negative-numbers", replace_numbers(&request, &json!(-1))),
                _ => ("objects-as-arrays", objects_to_arrays(&request)),
            };
            grpc(kind, variant, Method::InstallSnapshot, bytes_of(&garbled))
        }
        Kind::StatusGarbage => {
            let len = rng.usize(1..=512);
            grpc(kind, "random-bytes", Method::Status, random_bytes(rng, len))
        }
        Kind::Oversized => grpc(
            kind,
            "whitespace-padded-read",
            Method::Forward,
            oversized_body(context),
        ),
        Kind::ManyHeaders => Hostile {
            kind,
            variant: format!("{MANY_HEADERS}-entries"),
            payload: Payload::Grpc {
                method: Method::Forward,
                body: Vec::new(),
                headers: (0..MANY_HEADERS)
                    .map(|i| (format!("x-hostile-{i}"), "h".repeat(48)))
                    .collect(),
            },
        },
        Kind::TcpGarbage => {
            let len = rng.usize(1..=8192);
            Hostile {
                kind,
                variant: "random-bytes".into(),
                payload: Payload::Tcp {
                    bytes: random_bytes(rng, len),
                },
            }
        }
        Kind::TcpHttp1 => Hostile {
            kind,
            variant: "http/1.1-post".into(),
            payload: Payload::Tcp {
                bytes: b"POST /ledger.raft.RaftService/Forward HTTP/1.1\r\nHost: ledger\r\n\
                         Content-Type: application/grpc\r\nContent-Length: 5\r\n\r\nhello"
                    .to_vec(),
            },
        },
        Kind::PartialPreface => {
            let cut = 1 + spec.round % (H2_PREFACE.len() - 1);
            Hostile {
                kind,
                variant: format!("{cut}-of-{}-bytes", H2_PREFACE.len()),
                payload: Payload::Tcp {
                    bytes: H2_PREFACE[..cut].to_vec(),
                },
            }
        }
    }
}

/// gRPC's canonical code names.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// How a frame was answered. `code` is a gRPC code name, or for what never got one:
/// `TIMEOUT`, `CONNECT_FAILED`, `CLIENT_ERROR`, and for raw TCP `CLOSED` (the server closed),
/// `RESET`, `OPEN` (still open at the timeout; we closed it).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub code: String,
    pub message: Option<String>,
    /// The answer's JSON (OK answers), shortened.
    pub answer: Option<String>,
    /// Bytes the server wrote back (raw TCP).
    pub received: Option<usize>,
}

impl Answer {
    fn code(code: &str, message: Option<String>) -> Answer {
        Answer {
            code: code.to_owned(),
            message: message.map(|m| shorten(&m)),
            answer: None,
            received: None,
        }
    }
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= ANSWER_CHARS_MAX {
        text.to_owned()
    } else {
        text.chars().take(ANSWER_CHARS_MAX).collect::<String>() + "..."
    }
}

async fn send_grpc(
    address: SocketAddr,
    method: Method,
    body: Vec<u8>,
    headers: &[(String, String)],
) -> Answer {
    use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
    let endpoint = match tonic::transport::Endpoint::from_shared(format!("http://{address}")) {
        Ok(endpoint) => endpoint
            .connect_timeout(FRAME_TIMEOUT)
            .timeout(FRAME_TIMEOUT)
            .tcp_nodelay(true),
        Err(error) => return Answer::code("CLIENT_ERROR", Some(error.to_string())),
    };
    // A fresh connection per frame: a reset or GOAWAY is then this frame's answer only.
    let channel = match endpoint.connect().await {
        Ok(channel) => channel,
        Err(error) => return Answer::code("CONNECT_FAILED", Some(format!("{error:?}"))),
    };
    let mut client = RaftServiceClient::new(channel)
        .max_encoding_message_size(usize::MAX)
        .max_decoding_message_size(4 * 1024 * 1024);
    let mut request = tonic::Request::new(Frame { json: body });
    request.set_timeout(FRAME_TIMEOUT);
    for (key, value) in headers {
        if let (Ok(key), Ok(value)) = (
            AsciiMetadataKey::from_bytes(key.as_bytes()),
            AsciiMetadataValue::try_from(value.as_str()),
        ) {
            request.metadata_mut().insert(key, value);
        }
    }
    let result = match method {
        Method::AppendEntries => client.append_entries(request).await,
        Method::Vote => client.vote(request).await,
        Method::InstallSnapshot => client.install_snapshot(request).await,
        Method::Forward => client.forward(request).await,
        Method::Status => client.status(request).await,
    };
    match result {
        Ok(response) => Answer {
            code: "OK".into(),
            message: None,
            answer: Some(shorten(&String::from_utf8_lossy(
                &response.into_inner().json,
            ))),
            received: None,
        },
        Err(status) => {
            let mut message = status.message().to_owned();
            if let Some(source) = std::error::Error::source(&status) {
                message = format!("{message} ({source})");
            }
            Answer::code(code_name(status.code()), Some(message))
        }
    }
}

/// Writes the bytes, then reads until the server closes or the frame's time is up.
async fn send_tcp(address: SocketAddr, bytes: &[u8]) -> Answer {
    let mut stream = match TcpStream::connect(address).await {
        Ok(stream) => stream,
        Err(error) => return Answer::code("CONNECT_FAILED", Some(error.to_string())),
    };
    let mut received = 0;
    let outcome = async {
        stream.write_all(bytes).await?;
        let mut buffer = [0u8; 4096];
        loop {
            let read = stream.read(&mut buffer).await?;
            if read == 0 {
                return Ok::<_, std::io::Error>(());
            }
            received += read;
        }
    };
    let outcome = tokio::time::timeout(FRAME_TIMEOUT, outcome).await;
    let mut answer = match outcome {
        Ok(Ok(())) => Answer::code("CLOSED", None),
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionReset => {
            Answer::code("RESET", Some(error.to_string()))
        }
        Ok(Err(error)) => Answer::code("CLOSED", Some(error.to_string())),
        Err(_) => Answer::code(
            "OPEN",
            Some("still open at the timeout; closed by us".into()),
        ),
    };
    answer.received = Some(received);
    answer
}

/// Sends one frame within [`FRAME_TIMEOUT`].
pub async fn send(address: SocketAddr, frame: Hostile) -> Answer {
    match frame.payload {
        // The raw TCP kinds bound themselves (they report a stall as `OPEN`).
        Payload::Tcp { bytes } => send_tcp(address, &bytes).await,
        Payload::Grpc {
            method,
            body,
            headers,
        } => tokio::time::timeout(FRAME_TIMEOUT, send_grpc(address, method, body, &headers))
            .await
            .unwrap_or_else(|_| Answer::code("TIMEOUT", None)),
    }
}

/// The completion's type: `fail` for a refusal, `ok` for an OK answer, `info` otherwise.
fn op_type(answer: &Answer) -> OpType {
    match answer.code.as_str() {
        "OK" => OpType::Ok,
        "TIMEOUT" | "CONNECT_FAILED" | "CLIENT_ERROR" | "OPEN" | "CLOSED" | "RESET" => OpType::Info,
        _ => OpType::Fail,
    }
}

/// A running window: stop it with [`Running::finish`], which waits for frames in flight.
pub struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<usize>,
}

impl Running {
    /// Stops sending and returns how many frames were sent.
    pub async fn finish(self) -> usize {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or(0)
    }
}

/// Starts sending window `context.window`'s frames to `targets` (each node's own Raft
/// address, not the proxy's).
pub fn start(targets: Vec<SocketAddr>, context: Context, recorder: Recorder) -> Running {
    let (stop, stopped) = watch::channel(false);
    let specs = Arc::new(plan(context.window, targets.len(), FRAMES_PER_WINDOW));
    let next = Arc::new(AtomicUsize::new(0));
    let pace = Arc::new(tokio::sync::Mutex::new({
        let mut interval =
            tokio::time::interval(Duration::from_millis(1000 / FRAMES_PER_SECOND.max(1)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval
    }));
    let targets = Arc::new(targets);
    let context = Arc::new(context);
    let task = tokio::spawn(async move {
        let lanes: Vec<_> = (0..LANES)
            .map(|lane| {
                let (specs, next, pace, targets, context, recorder, stopped) = (
                    specs.clone(),
                    next.clone(),
                    pace.clone(),
                    targets.clone(),
                    context.clone(),
                    recorder.clone(),
                    stopped.clone(),
                );
                tokio::spawn(async move {
                    let mut rng = fastrand::Rng::new();
                    let process = format!("hostile-{lane}");
                    let mut sent = 0;
                    loop {
                        pace.lock().await.tick().await;
                        // A dropped sender (the nemesis failed) also stops the window.
                        if *stopped.borrow() || stopped.has_changed().is_err() {
                            break;
                        }
                        let index = next.fetch_add(1, Ordering::SeqCst);
                        let Some(spec) = specs.get(index) else {
                            break;
                        };
                        let frame = build(spec, &context, &mut rng);
                        let invoke = json!({
                            "kind": spec.kind.name(),
                            "variant": frame.variant,
                            "method": frame.method().map(Method::name),
                            "transport": if frame.method().is_some() { "grpc" } else { "tcp" },
                            "bytes": frame.bytes(),
                            "mustRefuse": spec.kind.must_refuse(),
                        });
                        let node = spec.node;
                        recorder.record(
                            &process,
                            OpType::Invoke,
                            Function::HostileFrame,
                            invoke.clone(),
                            Some(node),
                            None,
                        );
                        let answer = send(targets[node], frame).await;
                        let mut value = invoke;
                        value["code"] = json!(answer.code);
                        if let Some(text) = &answer.answer {
                            value["answer"] = json!(text);
                        }
                        if let Some(received) = answer.received {
                            value["received"] = json!(received);
                        }
                        recorder.record(
                            &process,
                            op_type(&answer),
                            Function::HostileFrame,
                            value,
                            Some(node),
                            answer.message.clone(),
                        );
                        sent += 1;
                    }
                    sent
                })
            })
            .collect();
        let mut sent = 0;
        for lane in lanes {
            sent += lane.await.unwrap_or(0);
        }
        sent
    });
    Running { stop, task }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::hostile_frames;
    use crate::nemesis::{Fault, ALL};
    use raft::pb::raft_service_server::{RaftService, RaftServiceServer};
    use serde::de::DeserializeOwned;
    use std::collections::BTreeMap;

    fn context() -> Context {
        Context {
            accounts: vec!["acct-0".into(), "acct-1".into(), "acct-2".into()],
            window: 3,
            nodes: 3,
        }
    }

    fn spec(kind: Kind, node: usize, round: usize) -> Spec {
        Spec {
            kind,
            node,
            seq: 10 * round + node + 1,
            round,
        }
    }

    fn rng() -> fastrand::Rng {
        fastrand::Rng::with_seed(7)
    }

    fn decodes_as<T: DeserializeOwned>(body: &[u8]) -> bool {
        serde_json::from_slice::<T>(body).is_ok()
    }

    /// Whether the server's decoder for `method` would accept `body`.
    fn decodes(method: Method, body: &[u8]) -> bool {
        match method {
            Method::AppendEntries => decodes_as::<AppendEntriesRequest<TypeConfig>>(body),
            Method::Vote => decodes_as::<VoteRequest<NodeId>>(body),
            Method::InstallSnapshot => decodes_as::<InstallSnapshotRequest<TypeConfig>>(body),
            Method::Forward => decodes_as::<ForwardRequest>(body),
            Method::Status => true,
        }
    }

    fn grpc_parts(frame: &Hostile) -> (Method, &[u8], usize) {
        match &frame.payload {
            Payload::Grpc {
                method,
                body,
                headers,
            } => (*method, body.as_slice(), headers.len()),
            Payload::Tcp { .. } => panic!("{:?} is not a gRPC frame", frame.kind),
        }
    }

    /// Zero amounts and self-transfers are refused only once the domain types refuse them.
    const STRICT_DECODING: [Corruption; 2] = [Corruption::ZeroAmount, Corruption::SelfTransfer];

    #[test]
    fn hostile_frames_is_a_nemesis_run_by_default() {
        assert_eq!("hostile-frames".parse::<Fault>(), Ok(Fault::HostileFrames));
        assert_eq!(Fault::HostileFrames.name(), "hostile-frames");
        assert!(ALL.contains(&Fault::HostileFrames));
    }

    #[test]
    fn plan_is_bounded_and_covers_every_kind_on_every_node() {
        let specs = plan(4, 3, FRAMES_PER_WINDOW);
        assert_eq!(specs.len(), FRAMES_PER_WINDOW);
        let oversized: Vec<&Spec> = specs.iter().filter(|s| s.kind == Kind::Oversized).collect();
        assert_eq!(oversized.len(), 1, "one oversized frame per window");
        assert_eq!((oversized[0].seq, oversized[0].node), (0, 4 % 3));
        for kind in catalogue() {
            for node in 0..3 {
                assert!(
                    specs.iter().any(|s| s.kind == kind && s.node == node),
                    "{} never sent to node {node}",
                    kind.name()
                );
            }
        }
        let seqs: std::collections::HashSet<usize> = specs.iter().map(|s| s.seq).collect();
        assert_eq!(seqs.len(), specs.len(), "sequence numbers are unique");
        assert_eq!(plan(0, 3, 5).len(), 5);
        let names: std::collections::HashSet<String> =
            catalogue().iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), catalogue().len(), "kind names are unique");
    }

    #[test]
    fn malformed_frames_are_what_they_claim() {
        let context = context();
        let mut rng = rng();
        for round in 0..4 {
            for node in 0..3 {
                let build =
                    |kind, rng: &mut fastrand::Rng| build(&spec(kind, node, round), &context, rng);

                let empty = build(Kind::Empty, &mut rng);
                let (method, body, _) = grpc_parts(&empty);
                assert!(body.is_empty() && DECODING_METHODS.contains(&method));

                let random = build(Kind::RandomBytes, &mut rng);
                let (_, body, _) = grpc_parts(&random);
                assert!(!body.is_empty() && std::str::from_utf8(body).is_err());
                assert!(serde_json::from_slice::<Value>(body).is_err());

                let truncated = build(Kind::TruncatedJson, &mut rng);
                let (method, body, _) = grpc_parts(&truncated);
                let whole = bytes_of(&base_request(
                    &context,
                    node,
                    method,
                    spec(Kind::TruncatedJson, node, round).seq,
                ));
                assert!(
                    decodes(method, &whole),
                    "the base {method:?} request is well formed"
                );
                assert!(whole.starts_with(body) && body.len() < whole.len() && !body.is_empty());
                assert!(
                    serde_json::from_slice::<Value>(body).is_err(),
                    "truncated JSON is not JSON"
                );

                let wrong = build(Kind::WrongTypes, &mut rng);
                let (method, body, _) = grpc_parts(&wrong);
                let parsed: Value =
                    serde_json::from_slice(body).expect("wrong types are still JSON");
                let base = base_request(&context, node, method, 0);
                assert_eq!(
                    objects_to_arrays(&parsed).as_array().map(Vec::len),
                    objects_to_arrays(&base).as_array().map(Vec::len),
                    "same shape, other types"
                );
                assert!(
                    !decodes(method, body),
                    "{method:?} with wrong types decoded"
                );

                let deep = build(Kind::DeepNesting, &mut rng);
                let (_, body, _) = grpc_parts(&deep);
                assert_eq!(body.len(), 2 * NESTING_DEPTH);
                assert!(body[..NESTING_DEPTH].iter().all(|b| *b == b'['));
                assert!(body[NESTING_DEPTH..].iter().all(|b| *b == b']'));

                let huge = build(Kind::HugeNumber, &mut rng);
                let (method, body, _) = grpc_parts(&huge);
                let text = std::str::from_utf8(body).unwrap();
                assert!(text.contains(&"9".repeat(HUGE_DIGITS)), "{text}");
                assert!(
                    !decodes(method, body),
                    "{method:?} with huge numbers decoded"
                );
            }
        }
    }

    /// Every scalar of a JSON value by its path.
    fn leaves(value: &Value, path: String, out: &mut BTreeMap<String, Value>) {
        match value {
            Value::Object(map) => map
                .iter()
                .for_each(|(k, v)| leaves(v, format!("{path}/{k}"), out)),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .for_each(|(i, v)| leaves(v, format!("{path}/{i}"), out)),
            scalar => {
                out.insert(path, scalar.clone());
            }
        }
    }

    fn leaves_of(value: &Value) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        leaves(value, String::new(), &mut out);
        out
    }

    #[test]
    fn every_corruption_changes_only_its_target() {
        let request = valid_transfer(&context(), 1);
        let valid = to_json(&transfer_command(&request));
        assert_eq!(
            serde_json::from_value::<Command>(valid.clone()).unwrap(),
            transfer_command(&request)
        );
        let valid = leaves_of(&valid);
        let path_of = |target: Value| {
            valid
                .iter()
                .find(|(_, v)| **v == target)
                .map(|(k, _)| k.clone())
                .expect("found by value")
        };
        let amount = path_of(to_json(&request.amount()));
        let source = path_of(to_json(request.source_account_id()));
        let destination = path_of(to_json(request.destination_account_id()));
        let id = path_of(to_json(request.transaction_id()));
        for corruption in CORRUPTIONS {
            let corrupted = leaves_of(&corrupt_command(&request, corruption));
            let changed: Vec<&String> = valid
                .keys()
                .chain(corrupted.keys())
                .filter(|k| valid.get(*k) != corrupted.get(*k))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            assert_eq!(changed.len(), 1, "{}: {changed:?}", corruption.name());
            let (path, now) = (changed[0], &corrupted[changed[0]]);
            let expected = match corruption {
                Corruption::ZeroAmount => (&amount, to_json(&Amount::ZERO)),
                Corruption::NegativeAmount => (&amount, json!("-1")),
                Corruption::FiveDecimals => (&amount, json!("1.00001")),
                Corruption::ExponentAmount => {
                    (&amount, number("123456789012345678901234567890e-26"))
                }
                Corruption::HugeAmount => (&amount, huge_number()),
                Corruption::SelfTransfer => (&destination, valid[&source].clone()),
                Corruption::IdWithSpaces => (&id, json!("hostile id with spaces")),
                Corruption::IdTooLong => (&source, json!("x".repeat(51))),
                Corruption::EmptyId => (&destination, json!("")),
                Corruption::UnknownCommandType => (path, json!("mintMoney")),
            };
            assert_eq!(
                (path, now),
                (expected.0, &expected.1),
                "{}",
                corruption.name()
            );
        }
    }

    #[test]
    fn corrupted_commands_fail_to_decode() {
        let request = valid_transfer(&context(), 1);
        for corruption in CORRUPTIONS.iter().filter(|c| !STRICT_DECODING.contains(c)) {
            let corrupted = corrupt_command(&request, *corruption);
            assert!(
                serde_json::from_value::<Command>(corrupted.clone()).is_err(),
                "{} decoded: {corrupted}",
                corruption.name()
            );
        }
    }

    /// Fails until the domain types refuse zero amounts and self-transfers while decoding
    /// (the "strict boundaries" change); then the cluster refuses these frames too.
    #[test]
    fn zero_amount_and_self_transfer_commands_fail_to_decode() {
        let context = context();
        let request = valid_transfer(&context, 1);
        for corruption in STRICT_DECODING {
            let corrupted = corrupt_command(&request, corruption);
            assert!(
                serde_json::from_value::<Command>(corrupted.clone()).is_err(),
                "{} decoded as a Command: {corrupted}",
                corruption.name()
            );
            let frame = build(
                &spec(Kind::AppendEntries(corruption), 0, 0),
                &context,
                &mut rng(),
            );
            let (method, body, _) = grpc_parts(&frame);
            assert!(
                !decodes(method, body),
                "AppendEntries with {} decoded",
                corruption.name()
            );
            let frame = build(&spec(Kind::Forward(corruption), 0, 0), &context, &mut rng());
            let (method, body, _) = grpc_parts(&frame);
            assert!(
                !decodes(method, body),
                "Forward with {} decoded",
                corruption.name()
            );
        }
    }

    #[test]
    fn forward_and_append_entries_frames_carry_the_corrupted_command() {
        let context = context();
        for corruption in CORRUPTIONS {
            for (kind, method) in [
                (Kind::Forward(corruption), Method::Forward),
                (Kind::AppendEntries(corruption), Method::AppendEntries),
            ] {
                let spec = spec(kind, 1, 0);
                let frame = build(&spec, &context, &mut rng());
                let (sent_to, body, _) = grpc_parts(&frame);
                assert_eq!(sent_to, method);
                let request = valid_transfer(&context, spec.seq);
                let valid = to_json(&transfer_command(&request));
                let corrupted = corrupt_command(&request, corruption);
                let mut frame: Value = serde_json::from_slice(body).unwrap();
                // Putting the valid command back gives a well-formed request: only the
                // command is wrong.
                assert_eq!(
                    replace_equal(&mut frame, &corrupted, &valid),
                    1,
                    "{}",
                    kind.name()
                );
                assert!(decodes(method, &bytes_of(&frame)), "{}", kind.name());
            }
        }
    }

    #[test]
    fn no_frame_is_structurally_valid_raft_traffic() {
        let context = context();
        let mut rng = rng();
        for spec in plan(0, 3, 2_000) {
            let frame = build(&spec, &context, &mut rng);
            let Payload::Grpc { method, body, .. } = &frame.payload else {
                continue;
            };
            let strict = matches!(spec.kind, Kind::Forward(c) | Kind::AppendEntries(c) if STRICT_DECODING.contains(&c));
            if strict || matches!(spec.kind, Kind::Oversized | Kind::StatusGarbage) {
                continue; // checked in their own tests
            }
            assert!(
                !decodes(*method, body),
                "{} ({}) decodes as a {method:?} request",
                spec.kind.name(),
                frame.variant
            );
        }
    }

    #[test]
    fn oversized_frame_is_above_64_mib_and_only_its_size_is_wrong() {
        let frame = build(&spec(Kind::Oversized, 0, 0), &context(), &mut rng());
        let (method, body, _) = grpc_parts(&frame);
        assert_eq!(method, Method::Forward);
        assert!(body.len() > 64 * 1024 * 1024);
        let end = body.iter().rposition(|b| *b != b' ').unwrap() + 1;
        assert!(end < 1024, "whitespace padding");
        assert!(matches!(
            serde_json::from_slice::<ForwardRequest>(&body[..end]),
            Ok(ForwardRequest::Read(_))
        ));
    }

    #[test]
    fn many_headers_exceed_the_header_list_limit_and_tcp_frames_are_not_http2() {
        let context = context();
        let mut rng = rng();
        let frame = build(&spec(Kind::ManyHeaders, 0, 0), &context, &mut rng);
        let Payload::Grpc { headers, body, .. } = &frame.payload else {
            panic!("gRPC");
        };
        assert!(body.is_empty());
        let size: usize = headers.iter().map(|(k, v)| k.len() + v.len() + 32).sum();
        assert!(headers.len() == MANY_HEADERS && size > 16 * 1024, "{size}");

        for round in 0..30 {
            let tcp =
                |kind, rng: &mut fastrand::Rng| match build(&spec(kind, 0, round), &context, rng)
                    .payload
                {
                    Payload::Tcp { bytes } => bytes,
                    other => panic!("{other:?}"),
                };
            let garbage = tcp(Kind::TcpGarbage, &mut rng);
            assert!(!garbage.is_empty() && garbage[0] != H2_PREFACE[0]);
            let partial = tcp(Kind::PartialPreface, &mut rng);
            assert!(!partial.is_empty() && partial.len() < H2_PREFACE.len());
            assert!(H2_PREFACE.starts_with(&partial));
            assert!(tcp(Kind::TcpHttp1, &mut rng).starts_with(b"POST "));
        }
    }

    #[test]
    fn vote_and_install_snapshot_garbage_fail_to_decode() {
        let context = context();
        assert!(decodes(Method::Vote, &bytes_of(&vote_request(&context, 0))));
        assert!(decodes(
            Method::InstallSnapshot,
            &bytes_of(&install_snapshot_request(&context, 0))
        ));
        let mut variants = std::collections::HashSet::new();
        for round in 0..6 {
            for kind in [Kind::VoteGarbage, Kind::InstallSnapshotGarbage] {
                let frame = build(&spec(kind, round % 3, round), &context, &mut rng());
                let (method, body, _) = grpc_parts(&frame);
                assert!(!decodes(method, body), "{} {}", kind.name(), frame.variant);
                variants.insert(frame.variant.clone());
            }
        }
        assert!(variants.len() >= 3, "{variants:?}");
    }

    /// A stand-in for a node's peer service: it decodes like the real one (serde), and the
    /// strict one refuses frames above 64 MiB; the lax one answers OK to anything.
    struct Mock {
        strict: bool,
    }

    fn answer<T: DeserializeOwned>(
        strict: bool,
        request: tonic::Request<Frame>,
    ) -> Result<tonic::Response<Frame>, tonic::Status> {
        if strict {
            serde_json::from_slice::<T>(&request.into_inner().json)
                .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
        }
        Ok(tonic::Response::new(Frame {
            json: b"{}".to_vec(),
        }))
    }

    #[tonic::async_trait]
    impl RaftService for Mock {
        async fn append_entries(
            &self,
            request: tonic::Request<Frame>,
        ) -> Result<tonic::Response<Frame>, tonic::Status> {
            answer::<AppendEntriesRequest<TypeConfig>>(self.strict, request)
        }
        async fn vote(
            &self,
            request: tonic::Request<Frame>,
        ) -> Result<tonic::Response<Frame>, tonic::Status> {
            answer::<VoteRequest<NodeId>>(self.strict, request)
        }
        async fn install_snapshot(
            &self,
            request: tonic::Request<Frame>,
        ) -> Result<tonic::Response<Frame>, tonic::Status> {
            answer::<InstallSnapshotRequest<TypeConfig>>(self.strict, request)
        }
        async fn forward(
            &self,
            request: tonic::Request<Frame>,
        ) -> Result<tonic::Response<Frame>, tonic::Status> {
            answer::<ForwardRequest>(self.strict, request)
        }
        async fn status(
            &self,
            _request: tonic::Request<Frame>,
        ) -> Result<tonic::Response<Frame>, tonic::Status> {
            answer::<Value>(false, _request)
        }
        async fn pre_vote(
            &self,
            request: tonic::Request<Frame>,
        ) -> Result<tonic::Response<Frame>, tonic::Status> {
            answer::<raft::elector::PreVoteRequest>(self.strict, request)
        }
    }

    async fn mock_server(strict: bool) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let limit = if strict { 64 * 1024 * 1024 } else { usize::MAX };
        let service = RaftServiceServer::new(Mock { strict }).max_decoding_message_size(limit);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        address
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn send_records_grpc_codes_and_raw_tcp_outcomes() {
        let address = mock_server(true).await;
        let context = context();
        let mut rng = rng();
        let mut sent = |kind| send(address, build(&spec(kind, 0, 0), &context, &mut rng));
        assert_eq!(sent(Kind::Empty).await.code, "INVALID_ARGUMENT");
        assert_eq!(
            sent(Kind::Forward(Corruption::NegativeAmount)).await.code,
            "INVALID_ARGUMENT"
        );
        assert_eq!(sent(Kind::StatusGarbage).await.code, "OK");
        // tonic refuses a request above the server's limit with OUT_OF_RANGE.
        let oversized = sent(Kind::Oversized).await;
        assert_eq!(oversized.code, "OUT_OF_RANGE", "{oversized:?}");
        let headers = sent(Kind::ManyHeaders).await;
        assert!(headers.code != "OK", "{headers:?}");
        let garbage = sent(Kind::TcpGarbage).await;
        assert!(
            ["CLOSED", "RESET"].contains(&garbage.code.as_str()),
            "{garbage:?}"
        );
        let started = std::time::Instant::now();
        let stalled = sent(Kind::PartialPreface).await;
        assert!(
            ["OPEN", "CLOSED", "RESET"].contains(&stalled.code.as_str()),
            "{stalled:?}"
        );
        assert!(started.elapsed() < FRAME_TIMEOUT + Duration::from_millis(500));
        let nobody = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed = nobody.local_addr().unwrap();
        drop(nobody);
        let refused = send(
            closed,
            build(
                &spec(Kind::Empty, 0, 0),
                &context,
                &mut fastrand::Rng::new(),
            ),
        )
        .await;
        assert_eq!(refused.code, "CONNECT_FAILED");
    }

    async fn window(strict: bool) -> (usize, Vec<crate::history::Op>) {
        let address = mock_server(strict).await;
        let recorder = Recorder::new();
        let running = start(vec![address; 3], context(), recorder.clone());
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let sent = running.finish().await;
        (sent, recorder.ops())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_window_against_a_strict_peer_is_recorded_and_passes() {
        let (sent, history) = window(true).await;
        assert!(sent > 10 && sent <= FRAMES_PER_WINDOW, "{sent}");
        let invokes = history
            .iter()
            .filter(|op| op.kind == OpType::Invoke)
            .count();
        assert_eq!(invokes, sent, "every frame sent is recorded, and answered");
        assert_eq!(history.len(), 2 * sent);
        let check = hostile_frames(&history);
        assert!(check.valid, "{check:?}");
        assert_eq!(check.checked, sent);
        let codes = &check.details.as_ref().unwrap()["codesByKind"];
        assert_eq!(codes["oversized"], json!({"OUT_OF_RANGE": 1}), "{codes}");
        assert!(
            codes["empty"]["INVALID_ARGUMENT"].as_u64() >= Some(1),
            "{codes}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_window_against_a_lax_peer_is_flagged() {
        let (sent, history) = window(false).await;
        assert!(sent > 10);
        let check = hostile_frames(&history);
        assert!(!check.valid, "{check:?}");
        assert!(check
            .anomalies
            .iter()
            .any(|a| a["kind"] == json!("oversized")
                && a["problem"] == json!("hostile frame accepted")));
        assert!(check
            .anomalies
            .iter()
            .all(|a| a["kind"] != json!("status-garbage")));
    }
}
