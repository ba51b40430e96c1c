//! Elections only when a majority would take part (`raft::elector`): a follower that was
//! paused long past its election timeout resumes without raising the term, so it never
//! unseats a healthy leader; and a dead leader is still replaced.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, WAIT_MS_MAX};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;

fn signal(cluster: &Cluster, index: usize, signal: Signal) {
    let pid = cluster.nodes[index].process.as_ref().unwrap().id();
    kill(Pid::from_raw(pid as i32), signal).unwrap();
}

async fn term(cluster: &Cluster, index: usize) -> u64 {
    cluster.cluster_info(index).await.unwrap()["term"]
        .as_u64()
        .unwrap()
}

async fn transfer(cluster: &Cluster, index: usize, id: &str) {
    let body = json!({"transactionId": id, "sourceAccountId": "a",
        "destinationAccountId": "b", "amount": "1"});
    let (status, _, answer) = cluster
        .post(index, "/api/v1/transactions/process", &body)
        .await
        .expect("reachable");
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_follower_does_not_unseat_the_leader() {
    let cluster = Cluster::start(&[]).await;
    let leader = cluster.leader().await;
    cluster.create_account(leader, "a", "1000000").await;
    cluster.create_account(leader, "b", "0").await;
    let follower = cluster.follower_of(leader);
    let before = term(&cluster, leader).await;

    // Paused for several election timeouts (800 ms max by default) while writes go on.
    signal(&cluster, follower, Signal::SIGSTOP);
    let paused_at = Instant::now();
    let mut n = 0;
    while paused_at.elapsed() < Duration::from_millis(4_000) {
        transfer(&cluster, leader, &format!("p{n}")).await;
        n += 1;
    }
    signal(&cluster, follower, Signal::SIGCONT);

    // It catches up as a follower of the same leader, in the same term.
    let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
    loop {
        let info = cluster.cluster_info(follower).await.unwrap();
        let leader_info = cluster.cluster_info(leader).await.unwrap();
        if info["appliedIndex"] == leader_info["appliedIndex"] && info["leaderId"] == json!(leader)
        {
            break;
        }
        assert!(Instant::now() < deadline, "never caught up: {info}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // More writes after it is back, then the term is checked everywhere.
    for m in 0..20 {
        transfer(&cluster, leader, &format!("q{m}")).await;
    }
    for index in 0..3 {
        assert_eq!(
            term(&cluster, index).await,
            before,
            "node {index} moved the term"
        );
    }
    assert_eq!(cluster.leader().await, leader);
    cluster.assert_replicas_identical().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_leader_is_replaced() {
    let mut cluster = Cluster::start(&[]).await;
    let leader = cluster.leader().await;
    cluster.create_account(leader, "a", "1000000").await;
    cluster.create_account(leader, "b", "0").await;
    let before = term(&cluster, cluster.follower_of(leader)).await;
    cluster.kill(leader);
    let survivor = cluster.follower_of(leader);
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, leader);
    assert!(term(&cluster, survivor).await > before);
    transfer(&cluster, survivor, "after").await;
    cluster.assert_replicas_identical().await;
}
