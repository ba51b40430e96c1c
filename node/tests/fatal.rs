//! A node whose state machine cannot go on ends its process instead of lingering as a
//! zombie (ports open, probes green, every request failing). Two ways in, both from a
//! corrupted disk under a follower: a record that breaks an invariant (apply's assertion
//! panics: the panic hook aborts) and a record that cannot be decoded (a storage error
//! stops openraft for good: the node exits with status 70). The rest of the cluster carries
//! on.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use common::{Cluster, WAIT_MS_MAX};
use serde_json::json;
use storage::db::{cf, open};
use storage::domain::AccountId;
use storage::keys::{self, CF_STATE};

/// Overwrites account `id`'s record in a stopped node's database.
fn corrupt_account(cluster: &Cluster, index: usize, id: &str, bytes: &[u8]) {
    let db = open(&cluster.data_dir(index).join("rocksdb")).expect("open the stopped node's db");
    let key = keys::account(&AccountId::parse(id).unwrap());
    assert!(db.get_cf(cf(&db, CF_STATE), &key).unwrap().is_some());
    db.put_cf(cf(&db, CF_STATE), &key, bytes).unwrap();
    db.flush_wal(true).unwrap();
}

/// Waits (bounded) for node `index`'s process to end and returns how it ended.
async fn exit_of(cluster: &mut Cluster, index: usize) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
    loop {
        let child = cluster.nodes[index].process.as_mut().expect("running");
        if let Some(status) = child.try_wait().unwrap() {
            cluster.nodes[index].process = None;
            return status;
        }
        assert!(Instant::now() < deadline, "node {index} never exited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn transfer(cluster: &Cluster, index: usize, id: &str) {
    let body = json!({"transactionId": id, "sourceAccountId": "A",
        "destinationAccountId": "B", "amount": "1"});
    let (status, _, answer) = cluster
        .post(index, "/api/v1/transactions/process", &body)
        .await
        .expect("reachable");
    assert_eq!(status, 200, "{answer}");
}

async fn corrupted_follower_ends(bytes: Vec<u8>) -> ExitStatus {
    let mut cluster = Cluster::start(&[]).await;
    let leader = cluster.leader().await;
    cluster.create_account(leader, "A", "100").await;
    cluster.create_account(leader, "B", "0").await;
    transfer(&cluster, leader, "t1").await;
    cluster.assert_replicas_identical().await;

    let follower = cluster.follower_of(leader);
    cluster.kill(follower);
    corrupt_account(&cluster, follower, "A", &bytes);
    cluster.spawn(follower);
    cluster.wait_ready(follower).await;

    // The follower applies the next transfer, meets the corrupt record, and ends.
    transfer(&cluster, leader, "t2").await;
    let status = exit_of(&mut cluster, follower).await;

    // The others carry on, and the ledger is intact there.
    transfer(&cluster, leader, "t3").await;
    let balances = cluster
        .balances(leader, &["A".to_owned(), "B".to_owned()])
        .await;
    assert_eq!(balances, vec![97.into(), 3.into()]);
    cluster.assert_replicas_identical().await;
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_invariant_on_disk_aborts_the_node() {
    // Account A's key holding account B's record: apply asserts they match.
    let record = json!({"accountId": "B", "balance": "99.0000", "accountType": "SAVINGS",
        "currency": "USD", "createdAtMs": 1, "updatedAtMs": 1, "version": 2});
    let status = corrupted_follower_ends(serde_json::to_vec(&record).unwrap()).await;
    assert_eq!(status.signal(), Some(6), "expected SIGABRT, got {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_record_stops_the_node() {
    let status = corrupted_follower_ends(b"{\"accountId\": \"A\", \"balance\": ".to_vec()).await;
    assert_eq!(status.code(), Some(70), "expected exit 70, got {status:?}");
}
