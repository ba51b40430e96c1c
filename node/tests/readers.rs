//! Read replicas (`role = learner`), the tier the chart lets a HorizontalPodAutoscaler
//! scale: a reader joins the cluster by itself as a learner (never a voter), catches up,
//! serves local reads and forwards writes and linearizable reads to the leader; stopped
//! (SIGTERM, as a scale-down stops it), it leaves the membership. The voters' quorum is
//! never touched.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, WAIT_MS_MAX};
use serde_json::json;

async fn member_ids(cluster: &Cluster, via: usize) -> Vec<(u64, bool)> {
    let (status, body) = cluster.get(via, "/api/v1/cluster/members").await.unwrap();
    assert_eq!(status, 200);
    body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["nodeId"].as_u64().unwrap(), m["voter"].as_bool().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_join_as_learners_serve_reads_and_leave_when_stopped() {
    let mut cluster = Cluster::start(&[]).await;
    let leader = cluster.leader().await;
    cluster.create_account(leader, "a", "100").await;
    cluster.create_account(leader, "b", "0").await;

    let reader = cluster.add_learner();
    cluster.wait_ready(reader).await;
    let id = cluster.nodes[reader].id;
    let members = member_ids(&cluster, leader).await;
    assert!(members.contains(&(id, false)), "{members:?}");
    assert_eq!(members.iter().filter(|(_, voter)| *voter).count(), 3);

    // Writes through the reader are forwarded to the leader.
    let body = json!({"transactionId": "r1", "sourceAccountId": "a",
        "destinationAccountId": "b", "amount": "7"});
    let (status, served_by, answer) = cluster
        .post(reader, "/api/v1/transactions/process", &body)
        .await
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(served_by, Some(leader as u64));
    // Local reads are its own, and catch up with the write.
    let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
    loop {
        let (status, account) = cluster
            .get(reader, "/api/v1/accounts/b?consistency=local")
            .await
            .unwrap();
        assert_eq!(status, 200);
        if account["balance"].to_string() == "7.0000" {
            break;
        }
        assert!(Instant::now() < deadline, "reader never applied the write");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.assert_replicas_identical().await;

    // Scale-down: SIGTERM, and the reader leaves the membership.
    let status = cluster.terminate(reader).await;
    assert!(status.success(), "{status:?}");
    let members = member_ids(&cluster, leader).await;
    assert!(
        !members.iter().any(|(member, _)| *member == id),
        "{members:?}"
    );
    // The voters carry on.
    let body = json!({"transactionId": "r2", "sourceAccountId": "a",
        "destinationAccountId": "b", "amount": "1"});
    let (status, _, _) = cluster
        .post(leader, "/api/v1/transactions/process", &body)
        .await
        .unwrap();
    assert_eq!(status, 200);
}
