//! Nodes started exactly as the Helm chart's StatefulSet starts them: the id from the
//! hostname's ordinal, peers by stable DNS names (mapped to loopback here). They form one
//! cluster; a restarted pod rejoins without re-initialising; a rolling restart (SIGTERM,
//! as Kubernetes stops a pod; the leader hands over first) under load keeps writes going:
//! every transfer is acknowledged, none lost, the total conserved.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Cluster;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio::sync::RwLock;

const ACCOUNTS: usize = 4;
const CLIENTS: usize = 4;
/// Longest a client may go without any acknowledged write during the rolling restart:
/// a liveness bound (writes keep flowing), not a performance figure.
const WRITE_GAP_MS_MAX: u64 = 10_000;

fn origin_ms(origin: Instant) -> u64 {
    origin.elapsed().as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_form_one_cluster_and_survive_a_rolling_restart() {
    let cluster = Cluster::start_statefulset().await;
    let leader = cluster.leader().await;
    let info = cluster.cluster_info(leader).await.unwrap();
    let cluster_id = info["clusterId"].clone();
    assert!(cluster_id.is_string());
    // Ids came from the hostnames: node i answers as node i.
    for index in 0..3 {
        let info = cluster.cluster_info(index).await.unwrap();
        assert_eq!(info["nodeId"], json!(index), "{info}");
        assert_eq!(info["clusterId"], cluster_id);
    }
    for n in 0..ACCOUNTS {
        cluster
            .create_account(leader, &format!("s{n}"), "100000")
            .await;
    }

    let cluster = Arc::new(RwLock::new(cluster));
    let stop = Arc::new(AtomicBool::new(false));
    let origin = Instant::now();
    let last_ack_ms = Arc::new(AtomicU64::new(0));
    let max_gap_ms = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (cluster, stop) = (cluster.clone(), stop.clone());
            let (last_ack_ms, max_gap_ms) = (last_ack_ms.clone(), max_gap_ms.clone());
            tokio::spawn(async move {
                let mut acks: Vec<(String, String)> = Vec::new();
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) && n < 20_000 {
                    let id = format!("r-{client}-{n}");
                    let body = json!({"transactionId": id, "sourceAccountId": format!("s{}", n % ACCOUNTS),
                        "destinationAccountId": format!("s{}", (n + 1) % ACCOUNTS), "amount": "1"});
                    // Behind a Service: any pod; on failure, the next one, same id.
                    let mut attempt = 0;
                    let status = loop {
                        let node = (client + n + attempt) % 3;
                        let answer = {
                            let cluster = cluster.read().await;
                            if cluster.nodes[node].process.is_none() {
                                None
                            } else {
                                cluster.post(node, "/api/v1/transactions/process", &body).await
                            }
                        };
                        if let Some((200 | 422, _, answer)) = answer {
                            break answer["status"].as_str().unwrap().to_owned();
                        }
                        attempt += 1;
                        assert!(attempt < 2_000, "{id} never answered");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    };
                    let now = origin_ms(origin);
                    let previous = last_ack_ms.swap(now, Ordering::Relaxed);
                    max_gap_ms.fetch_max(now.saturating_sub(previous), Ordering::Relaxed);
                    acks.push((id, status));
                    n += 1;
                }
                acks
            })
        })
        .collect();

    // Rolling restart, highest ordinal first, as a StatefulSet rolls.
    for index in (0..3).rev() {
        let status = cluster.write().await.terminate(index).await;
        assert!(
            status.success(),
            "node {index} exited {status:?} on SIGTERM"
        );
        cluster.write().await.spawn(index);
        cluster.read().await.wait_ready(index).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut acks = Vec::new();
    for client in clients {
        acks.extend(client.await.unwrap());
    }
    let gap = max_gap_ms.load(Ordering::Relaxed);
    eprintln!(
        "rolling restart: {} transfers, longest write gap {gap} ms",
        acks.len()
    );
    assert!(gap < WRITE_GAP_MS_MAX, "writes stopped for {gap} ms");

    let cluster = cluster.read().await;
    let leader = cluster.leader().await;
    // Restarted pods rejoined the same cluster: nobody re-initialised.
    for index in 0..3 {
        let info = cluster.cluster_info(index).await.unwrap();
        assert_eq!(info["clusterId"], cluster_id, "{info}");
    }
    for (id, status) in &acks {
        let (code, body): (u16, Value) = cluster
            .get(leader, &format!("/api/v1/transactions/{id}/status"))
            .await
            .unwrap();
        assert_eq!(code, 200, "{id} lost");
        assert_eq!(body["status"], json!(status));
    }
    let ids: Vec<String> = (0..ACCOUNTS).map(|n| format!("s{n}")).collect();
    let total: Decimal = cluster.balances(leader, &ids).await.iter().copied().sum();
    assert_eq!(total, Decimal::from(100_000 * ACCOUNTS as i64));
    cluster.assert_replicas_identical().await;
}
