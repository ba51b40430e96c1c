//! Hostile frames sent straight to the nodes' peer ports. Before the rules of a transfer
//! were checked where the type is decoded, one forwarded zero-amount or self transfer was
//! committed and then stopped every replica, again after each restart. Now every such frame
//! is refused with INVALID_ARGUMENT before it reaches Raft, and the cluster keeps committing.

mod common;

use std::time::Duration;

use common::Cluster;
use openraft::{CommittedLeaderId, EntryPayload, LogId, Vote};
use raft::pb::raft_service_client::RaftServiceClient;
use raft::pb::Frame;
use raft::protocol::ForwardRequest;
use serde_json::{json, Value};
use storage::domain::{AccountId, Amount, Batch, Command, TransactionId, TransferRequest};
use storage::TypeConfig;
use tonic::Code;

async fn client(cluster: &Cluster, index: usize) -> RaftServiceClient<tonic::transport::Channel> {
    let address = format!("http://127.0.0.1:{}", cluster.nodes[index].rpc_port);
    RaftServiceClient::connect(address)
        .await
        .expect("peer port reachable")
        .max_encoding_message_size(usize::MAX)
        .max_decoding_message_size(usize::MAX)
}

fn frame(json: Vec<u8>) -> tonic::Request<Frame> {
    let mut request = tonic::Request::new(Frame { json });
    request.set_timeout(Duration::from_secs(10));
    request
}

fn transfer(id: &str, amount: &str) -> Command {
    Command::Transfer {
        request: TransferRequest::new(
            TransactionId::parse(id).unwrap(),
            AccountId::parse("A").unwrap(),
            AccountId::parse("B").unwrap(),
            Amount::parse_text(amount).unwrap(),
            None,
        )
        .unwrap(),
        idempotency_key: None,
    }
}

/// Replaces the value of every `key` in a JSON document, at any depth.
fn set_all(value: &mut Value, key: &str, new: &Value) {
    match value {
        Value::Object(map) => {
            for (name, inner) in map.iter_mut() {
                if name == key {
                    *inner = new.clone();
                } else {
                    set_all(inner, key, new);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| set_all(item, key, new)),
        _ => {}
    }
}

/// Valid JSON of a forwarded write or an AppendEntries, each with one field corrupted.
fn corruptions() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("zero amount", "amount", json!("0.0000")),
        ("zero amount as a number", "amount", json!(0)),
        ("negative amount", "amount", json!("-1.0000")),
        ("five decimals", "amount", json!("0.00001")),
        (
            "rounding exponent",
            "amount",
            json!("0.99999999999999999999999999999e0"),
        ),
        ("self transfer", "destinationAccountId", json!("A")),
        ("id with a space", "sourceAccountId", json!("a b")),
        ("id too long", "transactionId", json!("x".repeat(51))),
        ("unknown command", "type", json!("mint")),
    ]
}

fn append_entries(command: Command) -> Value {
    let leader = CommittedLeaderId::new(1, 0);
    let entry = openraft::Entry::<TypeConfig> {
        log_id: LogId::new(leader, 1_000_000),
        payload: EntryPayload::Normal(Batch {
            proposed_at_ms: 1,
            commands: vec![command],
        }),
    };
    let request = openraft::raft::AppendEntriesRequest::<TypeConfig> {
        vote: Vote::new_committed(1, 0),
        prev_log_id: Some(LogId::new(leader, 999_999)),
        entries: vec![entry],
        leader_commit: None,
    };
    serde_json::to_value(request).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peer_frames_are_refused_and_the_cluster_keeps_committing() {
    let cluster = Cluster::start(&[]).await;
    let leader = cluster.leader().await;
    cluster.create_account(leader, "A", "100").await;
    cluster.create_account(leader, "B", "0").await;

    // The template is valid: the leader accepts it unchanged (one real transfer of 1).
    let valid = transfer("template", "1");
    let template = serde_json::to_value(ForwardRequest::Write(valid.clone())).unwrap();
    let mut peer = client(&cluster, leader).await;
    let accepted = peer
        .forward(frame(serde_json::to_vec(&template).unwrap()))
        .await;
    assert!(accepted.is_ok(), "valid template refused: {accepted:?}");

    for index in 0..3 {
        let mut peer = client(&cluster, index).await;
        for (what, key, value) in corruptions() {
            let mut forward = template.clone();
            set_all(&mut forward, key, &value);
            let answer = peer
                .forward(frame(serde_json::to_vec(&forward).unwrap()))
                .await;
            let status = answer.expect_err(what);
            assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status}");

            let mut append = append_entries(valid.clone());
            set_all(&mut append, key, &value);
            let answer = peer
                .append_entries(frame(serde_json::to_vec(&append).unwrap()))
                .await;
            let status = answer.expect_err(what);
            assert_eq!(
                status.code(),
                Code::InvalidArgument,
                "append, {what}: {status}"
            );
        }
        // Not JSON at all, or not the right JSON.
        for junk in [
            &b""[..],
            b"{",
            b"\xff\xfe",
            b"[]",
            b"{\"write\":1}",
            b"null",
        ] {
            let status = peer.forward(frame(junk.to_vec())).await.expect_err("junk");
            assert_eq!(status.code(), Code::InvalidArgument, "{junk:?}: {status}");
            let status = peer.vote(frame(junk.to_vec())).await.expect_err("junk");
            assert_eq!(status.code(), Code::InvalidArgument, "{junk:?}: {status}");
        }
        // Nesting deeper than the decoder's recursion limit.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let status = peer
            .forward(frame(deep.into_bytes()))
            .await
            .expect_err("deep");
        assert_eq!(status.code(), Code::InvalidArgument);
        // A read asking for more than a peer may.
        let ids: Vec<String> = (0..20_000).map(|n| format!("a{n}")).collect();
        let read = json!({"read": {"accounts": ids}});
        let status = peer
            .forward(frame(serde_json::to_vec(&read).unwrap()))
            .await
            .expect_err("huge read");
        assert_eq!(status.code(), Code::InvalidArgument);
    }

    // A frame above the message bound is refused before it is decoded.
    let oversized = vec![b' '; raft::network::FRAME_BYTES_MAX + 1];
    let status = peer.forward(frame(oversized)).await.expect_err("oversized");
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{status}"
    );

    // Every node is still up, commits, and the ledger is intact.
    for index in 0..3 {
        let body = json!({"transactionId": format!("after-{index}"), "sourceAccountId": "A",
            "destinationAccountId": "B", "amount": "1"});
        let (status, _, answer) = cluster
            .post(index, "/api/v1/transactions/process", &body)
            .await
            .expect("node reachable");
        assert_eq!(status, 200, "{answer}");
    }
    let balances = cluster
        .balances(leader, &["A".to_owned(), "B".to_owned()])
        .await;
    assert_eq!(balances[0], 96.into());
    assert_eq!(balances[1], 4.into());
    cluster.assert_replicas_identical().await;
}
