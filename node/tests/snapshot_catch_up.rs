//! A node that was down (or paused) while the leader purged its log catches up through a
//! snapshot sent over the network in chunks, ends with the same state as the others, and
//! does not disturb them while it catches up.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, WAIT_MS_MAX};
use futures::StreamExt;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

const TRANSFERS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_catches_up_through_a_snapshot() {
    let mut cluster = Cluster::start(&[
        ("LEDGER_RAFT__SNAPSHOT_LOGS_SINCE_LAST", "50"),
        ("LEDGER_RAFT__LOGS_KEPT_AFTER_SNAPSHOT", "0"),
        // One command per entry, so the log grows quickly past the snapshot threshold.
        ("LEDGER_BATCH__COUNT_MAX", "1"),
    ])
    .await;
    let leader = cluster.leader().await;
    let lagging = cluster.follower_of(leader);
    cluster.create_account(leader, "src", "1000000").await;
    cluster.create_account(leader, "dst", "0").await;

    cluster.kill(lagging);
    let lagging_log_index = 3;
    for n in 0..TRANSFERS {
        let body = json!({"transactionId": format!("s-{n}"), "sourceAccountId": "src", "destinationAccountId": "dst", "amount": 1});
        let (status, _, answer) = cluster
            .post(leader, "/api/v1/transactions/process", &body)
            .await
            .unwrap();
        assert_eq!(status, 200, "{answer}");
    }
    // The leader has purged the entries the lagging node lacks.
    let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
    loop {
        let info = cluster.cluster_info(leader).await.unwrap();
        if info["purgedIndex"]
            .as_u64()
            .is_some_and(|purged| purged > lagging_log_index)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "leader never purged its log: {info}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    cluster.spawn(lagging);
    cluster.wait_ready(lagging).await;
    cluster.assert_replicas_identical().await;
    let info = cluster.cluster_info(lagging).await.unwrap();
    assert!(
        info["snapshotsInstalled"].as_u64().unwrap() >= 1,
        "caught up through a snapshot: {info}"
    );
    let (status, account) = cluster
        .get(lagging, "/api/v1/accounts/dst?consistency=local")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        common::decimal(&account["balance"]),
        (TRANSFERS as i64).into()
    );
    let (status, transfer) = cluster
        .get(lagging, "/api/v1/transactions/s-0/status?consistency=local")
        .await
        .unwrap();
    assert_eq!(
        (status, transfer["status"].as_str()),
        (200, Some("COMPLETED"))
    );
}

/// Accounts created while the follower is paused: with the chunk size below, a snapshot of
/// some hundred chunks.
const PAUSED_ACCOUNTS: usize = 2_000;
const CHUNK_BYTES: u64 = 1_024;
/// Requests in flight at once while the state grows.
const CONCURRENCY: usize = 16;

/// Waits for `condition` on the answer of `GET /api/v1/cluster` from `index`.
async fn wait_for_info(
    cluster: &Cluster,
    index: usize,
    what: &str,
    condition: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
    loop {
        if let Some(info) = cluster.cluster_info(index).await {
            if condition(&info) {
                return info;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {info}"
            );
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The scenario at CI size: a follower is paused (SIGSTOP) while the state grows
/// and the leader snapshots and purges its log; resumed, it receives the snapshot in many
/// small chunks, installs it and catches up, and the cluster's term never moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_follower_installs_a_chunked_snapshot_without_moving_the_term() {
    let chunk_bytes = CHUNK_BYTES.to_string();
    let cluster = Cluster::start(&[
        ("LEDGER_RAFT__SNAPSHOT_LOGS_SINCE_LAST", "100"),
        ("LEDGER_RAFT__LOGS_KEPT_AFTER_SNAPSHOT", "0"),
        ("LEDGER_RAFT__SNAPSHOT_CHUNK_BYTES", chunk_bytes.as_str()),
        // One command per entry, so the log grows quickly past the snapshot threshold.
        ("LEDGER_BATCH__COUNT_MAX", "1"),
    ])
    .await;
    let leader = cluster.leader().await;
    let lagging = cluster.follower_of(leader);
    cluster.create_account(leader, "src", "1000000").await;
    let leader_applied = cluster.cluster_info(leader).await.unwrap()["appliedIndex"]
        .as_u64()
        .unwrap();
    let paused_at = wait_for_info(&cluster, lagging, "the follower to apply src", |info| {
        info["appliedIndex"].as_u64() >= Some(leader_applied)
    })
    .await["lastLogIndex"]
        .as_u64()
        .unwrap();
    let pid = Pid::from_raw(cluster.nodes[lagging].process.as_ref().unwrap().id() as i32);
    kill(pid, Signal::SIGSTOP).unwrap();

    let created = futures::stream::iter(0..PAUSED_ACCOUNTS)
        .map(|n| {
            let cluster = &cluster;
            async move {
                let body = json!({"accountId": format!("p-{n:05}"), "balance": "12.5"});
                cluster.post(leader, "/api/v1/accounts", &body).await
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    for answer in created {
        let (status, _, body) = answer.expect("leader reachable");
        assert_eq!(status, 201, "{body}");
    }
    for n in 0..20 {
        let body = json!({"transactionId": format!("p-t{n}"), "sourceAccountId": "src", "destinationAccountId": format!("p-{n:05}"), "amount": 1});
        let (status, _, answer) = cluster
            .post(leader, "/api/v1/transactions/process", &body)
            .await
            .unwrap();
        assert_eq!(status, 200, "{answer}");
    }
    let before = wait_for_info(&cluster, leader, "the leader to purge its log", |info| {
        info["purgedIndex"]
            .as_u64()
            .is_some_and(|purged| purged > paused_at)
    })
    .await;
    let term = before["term"].clone();
    let snapshot_bytes = std::fs::read_dir(cluster.data_dir(leader).join("snapshots"))
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".data"))
        .map(|entry| entry.metadata().unwrap().len())
        .max()
        .expect("the leader has a snapshot");
    assert!(
        snapshot_bytes / CHUNK_BYTES >= 200,
        "the snapshot ({snapshot_bytes} B) spans many chunks"
    );

    kill(pid, Signal::SIGCONT).unwrap();
    let resumed = Instant::now();
    wait_for_info(&cluster, lagging, "the snapshot to be installed", |info| {
        info["snapshotsInstalled"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    cluster.wait_ready(lagging).await;
    eprintln!(
        "snapshot of {snapshot_bytes} B ({} chunks) installed and caught up {:?} after resuming",
        snapshot_bytes.div_ceil(CHUNK_BYTES),
        resumed.elapsed()
    );
    cluster.assert_replicas_identical().await;
    for index in 0..cluster.nodes.len() {
        let info = cluster.cluster_info(index).await.unwrap();
        assert_eq!(info["term"], term, "node {index}'s term moved: {info}");
        assert_eq!(info["leaderId"].as_u64(), Some(leader as u64), "{info}");
    }
    let (status, account) = cluster
        .get(lagging, "/api/v1/accounts/p-00007?consistency=local")
        .await
        .unwrap();
    assert_eq!(status, 200, "{account}");
    assert_eq!(
        common::decimal(&account["balance"]),
        "13.5".parse().unwrap()
    );
    let (status, account) = cluster
        .get(
            lagging,
            &format!(
                "/api/v1/accounts/p-{:05}?consistency=local",
                PAUSED_ACCOUNTS - 1
            ),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{account}");
}
