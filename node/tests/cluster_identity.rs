//! Cluster identity: every node of a cluster holds the id drawn at bootstrap and refuses
//! peer calls from another cluster; a node that lost its disk rejoins through the leader's
//! replication and never votes with a vote it forgot.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, WAIT_MS_MAX};
use openraft::{CommittedLeaderId, LogId, Vote};
use raft::identity::CLUSTER_ID_HEADER;
use raft::pb::raft_service_client::RaftServiceClient;
use raft::pb::Frame;
use serde_json::{json, Value};
use tonic::metadata::MetadataValue;
use tonic::Code;

async fn cluster_ids(cluster: &Cluster) -> Vec<Value> {
    let mut ids = Vec::new();
    for index in 0..3 {
        if cluster.nodes[index].process.is_some() {
            ids.push(cluster.cluster_info(index).await.unwrap()["clusterId"].clone());
        }
    }
    ids
}

/// A vote request from a candidate whose log is past bootstrap, as a peer would send it.
fn vote_frame(cluster_id: Option<&str>, last_index: u64) -> tonic::Request<Frame> {
    let request = openraft::raft::VoteRequest::<u64> {
        vote: Vote::new(1_000, 2),
        last_log_id: Some(LogId::new(CommittedLeaderId::new(999, 2), last_index)),
    };
    let mut frame = tonic::Request::new(Frame {
        json: serde_json::to_vec(&request).unwrap(),
    });
    frame.set_timeout(Duration::from_secs(5));
    if let Some(id) = cluster_id {
        frame
            .metadata_mut()
            .insert(CLUSTER_ID_HEADER, MetadataValue::try_from(id).unwrap());
    }
    frame
}

async fn peer(cluster: &Cluster, index: usize) -> RaftServiceClient<tonic::transport::Channel> {
    RaftServiceClient::connect(format!(
        "http://127.0.0.1:{}",
        cluster.nodes[index].rpc_port
    ))
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_one_cluster_id_and_refuse_another() {
    let cluster = Cluster::start(&[]).await;
    let leader = cluster.leader().await;
    cluster.create_account(leader, "a", "1").await;
    let ids = cluster_ids(&cluster).await;
    assert!(ids[0].is_string(), "{ids:?}");
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let ours = ids[0].as_str().unwrap().to_owned();

    for index in 0..3 {
        let mut client = peer(&cluster, index).await;
        // Another cluster's node: refused before anything is decoded or counted.
        let status = client
            .vote(vote_frame(Some("another-cluster"), 5))
            .await
            .expect_err("foreign vote");
        assert_eq!(status.code(), Code::FailedPrecondition, "{status}");
        let status = client
            .append_entries(tonic::Request::new(Frame {
                json: b"{}".to_vec(),
            }))
            .await;
        assert!(status.is_err());
        // Its own cluster id passes the check (the vote itself is then openraft's call).
        let answer = client.vote(vote_frame(Some(&ours), 0)).await;
        assert!(answer.is_ok(), "{answer:?}");
    }
    // A stale term in a vote changes nothing: the cluster still commits.
    let (status, _, _) = cluster
        .post(
            leader,
            "/api/v1/accounts",
            &json!({"accountId": "b", "balance": "0"}),
        )
        .await
        .unwrap();
    assert_eq!(status, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_lost_its_disk_rejoins_without_voting() {
    let mut cluster = Cluster::start(&[]).await;
    let leader = cluster.leader().await;
    cluster.create_account(leader, "a", "100").await;
    cluster.create_account(leader, "b", "0").await;
    let ours = cluster_ids(&cluster).await[0].as_str().unwrap().to_owned();
    let wiped = cluster.follower_of(leader);
    let other = (0..3).find(|i| *i != leader && *i != wiped).unwrap();

    // The follower loses its disk; the leader goes down too: one healthy node is left.
    cluster.kill(wiped);
    std::fs::remove_dir_all(cluster.data_dir(wiped)).unwrap();
    cluster.kill(leader);
    cluster.spawn(wiped);

    // The wiped node refuses to vote for a candidate past bootstrap, so the healthy node
    // cannot become leader with a vote the wiped node may have given someone else before.
    let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
    let refusal = loop {
        if let Ok(mut client) = RaftServiceClient::connect(format!(
            "http://127.0.0.1:{}",
            cluster.nodes[wiped].rpc_port
        ))
        .await
        {
            break client.vote(vote_frame(Some(&ours), 5)).await;
        }
        assert!(Instant::now() < deadline, "wiped node never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let status = refusal.expect_err("a wiped node must not vote");
    assert_eq!(status.code(), Code::Unavailable, "{status}");
    let info = cluster.cluster_info(wiped).await.unwrap();
    assert_eq!(info["rejoining"], json!(true), "{info}");
    assert_eq!(info["leaderId"], Value::Null, "{info}");
    let info = cluster.cluster_info(other).await.unwrap();
    assert_ne!(info["state"], json!("Leader"), "{info}");

    // The old leader returns: the healthy pair elect, the wiped node catches up through
    // replication, takes the cluster's id and votes again.
    cluster.spawn(leader);
    cluster.wait_all_ready().await;
    let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
    loop {
        let info = cluster.cluster_info(wiped).await.unwrap();
        if info["rejoining"] == json!(false) {
            assert_eq!(info["clusterId"], json!(ours));
            break;
        }
        assert!(Instant::now() < deadline, "never caught up: {info}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let leader = cluster.leader().await;
    let body = json!({"transactionId": "t1", "sourceAccountId": "a",
        "destinationAccountId": "b", "amount": "5"});
    let (status, _, answer) = cluster
        .post(wiped, "/api/v1/transactions/process", &body)
        .await
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    let balances = cluster
        .balances(leader, &["a".to_owned(), "b".to_owned()])
        .await;
    assert_eq!(balances, vec![95.into(), 5.into()]);
    cluster.assert_replicas_identical().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_bootstrap_while_a_peer_is_unreachable() {
    let mut cluster = Cluster::configure(&[]);
    cluster.spawn(0);
    cluster.spawn(1);
    // Node 0 (the lowest id) has surveyed its peers and found node 2 unreachable...
    let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
    while !cluster
        .log(0)
        .contains("waiting for every peer before bootstrapping")
    {
        assert!(Instant::now() < deadline, "node 0 never surveyed its peers");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ...so it has not bootstrapped: no cluster id anywhere, no leader.
    for index in [0, 1] {
        let info = cluster.cluster_info(index).await.unwrap();
        assert_eq!(info["clusterId"], Value::Null, "{info}");
        assert_eq!(info["leaderId"], Value::Null, "{info}");
    }
    // The last peer comes: every peer answers fresh, the cluster forms once.
    cluster.spawn(2);
    cluster.wait_all_ready().await;
    let ids = cluster_ids(&cluster).await;
    assert!(
        ids[0].is_string() && ids.iter().all(|id| *id == ids[0]),
        "{ids:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_force_forms_a_cluster_without_the_missing_peer() {
    let mut cluster = Cluster::configure(&[("LEDGER_BOOTSTRAP_FORCE", "true")]);
    cluster.spawn(0);
    cluster.spawn(1);
    cluster.wait_ready(0).await;
    cluster.wait_ready(1).await;
    cluster.create_account(0, "forced", "1").await;
    // The missing peer joins later as the member it was configured to be.
    cluster.spawn(2);
    cluster.wait_ready(2).await;
    cluster.assert_replicas_identical().await;
}
