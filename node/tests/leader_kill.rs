//! kill -9 of the leader under concurrent load: a new leader takes writes, every
//! acknowledged transfer is still there with the acknowledged outcome, the total holds, and
//! the killed node rejoins with an identical state.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{decimal, Cluster, WAIT_MS_MAX};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio::sync::RwLock;

const WORKERS: usize = 12;
const TRANSFERS_PER_WORKER: usize = 60;
const ACCOUNTS: usize = 8;
/// Acknowledged transfers before the leader is killed.
const KILL_AFTER: usize = 150;
/// Attempts per transfer; each retry resends the same transactionId (idempotent).
const ATTEMPTS_MAX: usize = 200;
const RETRY_PAUSE_MS: u64 = 50;

struct Ack {
    id: String,
    status: String,
    served_by: Option<u64>,
}

async fn send_until_answered(cluster: &RwLock<Cluster>, worker: usize, body: &Value) -> Ack {
    for attempt in 0..ATTEMPTS_MAX {
        let node = (worker + attempt) % 3;
        let answer = cluster
            .read()
            .await
            .post(node, "/api/v1/transactions/process", body)
            .await;
        if let Some((200 | 422, served_by, answer)) = answer {
            return Ack {
                id: body["transactionId"].as_str().unwrap().to_owned(),
                status: answer["status"].as_str().unwrap().to_owned(),
                served_by,
            };
        }
        // Unreachable node, no leader yet, or unknown outcome: resend the same id.
        tokio::time::sleep(Duration::from_millis(RETRY_PAUSE_MS)).await;
    }
    panic!("no answer for {body} after {ATTEMPTS_MAX} attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_transfers_survive_a_leader_kill() {
    let cluster = Cluster::start(&[]).await;
    let old_leader = cluster.leader().await;
    let ids: Vec<String> = (0..ACCOUNTS).map(|n| format!("acct-{n}")).collect();
    for id in &ids {
        cluster.create_account(old_leader, id, "10000").await;
    }
    let cluster = Arc::new(RwLock::new(cluster));
    let acknowledged = Arc::new(AtomicUsize::new(0));

    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let (cluster, acknowledged) = (cluster.clone(), acknowledged.clone());
            tokio::spawn(async move {
                let mut acks = Vec::new();
                for n in 0..TRANSFERS_PER_WORKER {
                    let source = (worker + n) % ACCOUNTS;
                    let destination = (source + 1 + n % (ACCOUNTS - 1)) % ACCOUNTS;
                    let body = json!({"transactionId": format!("k-{worker}-{n}"), "sourceAccountId": format!("acct-{source}"),
                                      "destinationAccountId": format!("acct-{destination}"), "amount": format!("{}.25", n % 50 + 1)});
                    acks.push(send_until_answered(&cluster, worker, &body).await);
                    acknowledged.fetch_add(1, Ordering::Relaxed);
                }
                acks
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
    while acknowledged.load(Ordering::Relaxed) < KILL_AFTER {
        assert!(
            Instant::now() < deadline,
            "load never reached {KILL_AFTER} acknowledgements"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cluster.write().await.kill(old_leader);
    let killed_at = acknowledged.load(Ordering::Relaxed);

    let mut acks = Vec::new();
    for worker in workers {
        acks.extend(worker.await.unwrap());
    }
    assert_eq!(acks.len(), WORKERS * TRANSFERS_PER_WORKER);
    assert!(killed_at < acks.len(), "the kill happened under load");

    let mut cluster = Arc::try_unwrap(cluster).ok().unwrap().into_inner();
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, old_leader);
    assert!(
        acks.iter()
            .any(|ack| ack.served_by == Some(new_leader as u64)),
        "the new leader took writes"
    );

    // Every acknowledged transfer is there, with the outcome the client was told.
    for ack in &acks {
        let path = format!("/api/v1/transactions/{}/status", ack.id);
        let (status, body) = cluster.get(new_leader, &path).await.unwrap();
        assert_eq!(status, 200, "{} lost: {body}", ack.id);
        assert_eq!(
            body["status"],
            json!(ack.status),
            "{} changed outcome",
            ack.id
        );
    }
    let balances = cluster.balances(new_leader, &ids).await;
    assert_eq!(
        balances.iter().copied().sum::<Decimal>(),
        Decimal::from(10000 * ACCOUNTS as i64)
    );
    assert!(balances.iter().all(|b| *b >= Decimal::ZERO));

    // The killed node comes back, catches up and agrees.
    cluster.spawn(old_leader);
    cluster.wait_ready(old_leader).await;
    cluster.assert_replicas_identical().await;
    let (_, account) = cluster
        .get(old_leader, "/api/v1/accounts/acct-0?consistency=local")
        .await
        .unwrap();
    assert_eq!(decimal(&account["balance"]), balances[0]);
}
