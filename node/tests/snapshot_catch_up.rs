//! A node that was down while the leader purged its log catches up through a snapshot sent
//! over the network, and ends with the same state as the others.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, WAIT_MS_MAX};
use serde_json::json;

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
