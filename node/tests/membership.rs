//! Membership changes under load, against real processes: grow 3 -> 5 (learners that
//! catch up, then voters), shrink 5 -> 3 (the old leader among the removed), replace a
//! voter's disk, hand leadership over; the total is conserved and no acknowledged transfer
//! is lost. Also through `ledger cluster`.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Cluster, WAIT_MS_MAX};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio::sync::RwLock;

const ACCOUNTS: usize = 6;
const CLIENTS: usize = 4;
const ATTEMPTS_MAX: usize = 400;

/// Sends one transfer to `nodes` in turn until it is answered (resending the same id).
async fn send(cluster: &RwLock<Cluster>, nodes: &[usize], body: &Value) -> String {
    for attempt in 0..ATTEMPTS_MAX {
        let node = nodes[attempt % nodes.len()];
        let answer = {
            let cluster = cluster.read().await;
            if cluster.nodes[node].process.is_none() {
                None
            } else {
                cluster
                    .post(node, "/api/v1/transactions/process", body)
                    .await
            }
        };
        if let Some((200 | 422, _, answer)) = answer {
            return answer["status"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no answer for {body}");
}

/// Clients sending transfers until `stop`; returns (transaction id, acknowledged status).
fn load(
    cluster: Arc<RwLock<Cluster>>,
    stop: Arc<AtomicBool>,
    nodes: Vec<usize>,
) -> Vec<tokio::task::JoinHandle<Vec<(String, String)>>> {
    (0..CLIENTS)
        .map(|client| {
            let (cluster, stop, nodes) = (cluster.clone(), stop.clone(), nodes.clone());
            tokio::spawn(async move {
                let mut acks = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) && n < 5_000 {
                    let source = (client + n) % ACCOUNTS;
                    let destination = (source + 1) % ACCOUNTS;
                    let id = format!("m-{client}-{n}");
                    let body = json!({"transactionId": id, "sourceAccountId": format!("a{source}"),
                        "destinationAccountId": format!("a{destination}"), "amount": "1"});
                    let rotated: Vec<usize> = nodes
                        .iter()
                        .cycle()
                        .skip(client)
                        .take(nodes.len())
                        .copied()
                        .collect();
                    acks.push((id, send(&cluster, &rotated, &body).await));
                    n += 1;
                }
                acks
            })
        })
        .collect()
}

async fn members(cluster: &Cluster, via: usize) -> (BTreeSet<u64>, BTreeSet<u64>) {
    let (status, body) = cluster.get(via, "/api/v1/cluster/members").await.unwrap();
    assert_eq!(status, 200, "{body}");
    let mut voters = BTreeSet::new();
    let mut learners = BTreeSet::new();
    for member in body["members"].as_array().unwrap() {
        let id = member["nodeId"].as_u64().unwrap();
        if member["voter"] == json!(true) {
            voters.insert(id);
        } else {
            learners.insert(id);
        }
    }
    (voters, learners)
}

/// A membership change, resent while there is no leader (after the leader removed
/// itself, an election follows); any other refusal fails the test.
async fn change(
    cluster: &Cluster,
    via: usize,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
    loop {
        let mut request = cluster
            .http
            .request(method.clone(), cluster.url(via, path))
            .timeout(Duration::from_secs(130));
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status == 503 && answer["code"] == json!("NO_LEADER") && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        assert_eq!(status, 200, "{path}: {answer}");
        return answer;
    }
}

async fn check_acks(cluster: &Cluster, via: usize, acks: &[(String, String)]) {
    for (id, status) in acks {
        let (code, body) = cluster
            .get(via, &format!("/api/v1/transactions/{id}/status"))
            .await
            .unwrap();
        assert_eq!(code, 200, "{id} lost: {body}");
        assert_eq!(body["status"], json!(status), "{id} changed outcome");
    }
}

async fn total(cluster: &Cluster, via: usize) -> Decimal {
    let ids: Vec<String> = (0..ACCOUNTS).map(|n| format!("a{n}")).collect();
    cluster.balances(via, &ids).await.iter().copied().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grow_to_five_and_shrink_to_three_under_load() {
    let mut cluster = Cluster::start(&[]).await;
    let leader = cluster.leader().await;
    for n in 0..ACCOUNTS {
        cluster
            .create_account(leader, &format!("a{n}"), "100000")
            .await;
    }
    let expected = total(&cluster, leader).await;
    let three = cluster.add_node();
    let four = cluster.add_node();
    let cluster = Arc::new(RwLock::new(cluster));
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(cluster.clone(), stop.clone(), vec![0, 1, 2]);

    // Grow: each new node joins as a learner, catches up, becomes a voter.
    for (via, new) in [(leader, three), ((leader + 1) % 3, four)] {
        let body = {
            let cluster = cluster.read().await;
            json!({"nodeId": new, "rpcAddr": cluster.rpc_addr(new), "apiAddr": cluster.api_addr(new)})
        };
        let view = change(
            &*cluster.read().await,
            via,
            reqwest::Method::POST,
            "/api/v1/cluster/members",
            Some(body),
        )
        .await;
        assert!(
            view["members"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["nodeId"] == json!(new) && m["voter"] == json!(true)),
            "{view}"
        );
    }
    {
        let cluster = cluster.read().await;
        let (voters, learners) = members(&cluster, 0).await;
        assert_eq!(voters, BTreeSet::from([0, 1, 2, 3, 4]));
        assert!(learners.is_empty());
        cluster.wait_ready(three).await;
        cluster.wait_ready(four).await;
    }

    // Shrink: remove the leader and one follower, through a node that stays.
    let (old_leader, other) = {
        let cluster = cluster.read().await;
        let leader = cluster.leader().await;
        (leader, if leader == 0 { 1 } else { 0 })
    };
    for removed in [old_leader, other] {
        let via = [three, four].into_iter().find(|n| *n != removed).unwrap();
        let cluster = cluster.read().await;
        change(
            &cluster,
            via,
            reqwest::Method::DELETE,
            &format!("/api/v1/cluster/members/{removed}"),
            None,
        )
        .await;
    }
    let remaining: Vec<usize> = (0..5).filter(|n| *n != old_leader && *n != other).collect();
    {
        let cluster = cluster.read().await;
        let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
        loop {
            let (voters, _) = members(&cluster, three).await;
            if voters == remaining.iter().map(|n| *n as u64).collect() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "membership never shrank: {voters:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Stop the removed nodes; the remaining three keep taking writes.
    {
        let mut cluster = cluster.write().await;
        cluster.kill(old_leader);
        cluster.kill(other);
    }
    let more = load(
        cluster.clone(),
        Arc::new(AtomicBool::new(false)),
        remaining.clone(),
    );
    stop.store(true, Ordering::Relaxed);
    let mut acks = Vec::new();
    for client in clients {
        acks.extend(client.await.unwrap());
    }
    // The second wave is bounded: stop it after the first has drained.
    for client in more {
        client.abort();
    }
    let cluster = cluster.read().await;
    let leader = cluster.leader().await;
    assert!(remaining.contains(&leader));
    assert!(!acks.is_empty());
    check_acks(&cluster, leader, &acks).await;
    assert_eq!(total(&cluster, leader).await, expected);
    cluster.assert_replicas_identical().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_disk_rejoins_and_leadership_is_handed_over() {
    let cluster = Cluster::start(&[]).await;
    let leader = cluster.leader().await;
    for n in 0..ACCOUNTS {
        cluster
            .create_account(leader, &format!("a{n}"), "100000")
            .await;
    }
    let expected = total(&cluster, leader).await;
    let cluster = Arc::new(RwLock::new(cluster));
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(cluster.clone(), stop.clone(), vec![0, 1, 2]);

    // A follower's disk is replaced: it comes back empty. The leader will not take its
    // answers as the same member's (it lost entries it had acknowledged), and it does not
    // vote; the operator removes it and adds it again, and it catches up as a learner
    // before it becomes a voter again.
    let wiped = {
        let mut cluster = cluster.write().await;
        let wiped = cluster.follower_of(leader);
        cluster.kill(wiped);
        std::fs::remove_dir_all(cluster.data_dir(wiped)).unwrap();
        cluster.spawn(wiped);
        wiped
    };
    {
        let cluster = cluster.read().await;
        let via = (0..3).find(|n| *n != wiped).unwrap();
        change(
            &cluster,
            via,
            reqwest::Method::DELETE,
            &format!("/api/v1/cluster/members/{wiped}"),
            None,
        )
        .await;
        let body = json!({"nodeId": wiped, "rpcAddr": cluster.rpc_addr(wiped), "apiAddr": cluster.api_addr(wiped)});
        change(
            &cluster,
            via,
            reqwest::Method::POST,
            "/api/v1/cluster/members",
            Some(body),
        )
        .await;
        cluster.wait_ready(wiped).await;
        let (voters, _) = members(&cluster, via).await;
        assert_eq!(voters, BTreeSet::from([0, 1, 2]));
    }

    // A planned stop of the leader: it hands over first (`ledger cluster step-down`).
    let url = cluster.read().await.url(leader, "");
    let output = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(["cluster", "--node", &url, "step-down"])
        .output()
        .unwrap();
    if !output.status.success() {
        let log = cluster
            .read()
            .await
            .dir
            .path()
            .join(format!("node-{leader}.log"));
        let log = std::fs::read_to_string(log).unwrap_or_default();
        let tail: String = log.lines().rev().take(30).collect::<Vec<_>>().join("\n");
        panic!("{}\n{tail}", String::from_utf8_lossy(&output.stderr));
    }
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    let new_leader = answer["leaderId"].as_u64().unwrap() as usize;
    assert_ne!(new_leader, leader, "{answer}");
    // `ledger cluster status` shows all three voters.
    let output = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(["cluster", "--node", &url, "status"])
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(status["members"].as_array().unwrap().len(), 3, "{status}");

    stop.store(true, Ordering::Relaxed);
    let mut acks = Vec::new();
    for client in clients {
        acks.extend(client.await.unwrap());
    }
    let cluster = cluster.read().await;
    let leader = cluster.leader().await;
    check_acks(&cluster, leader, &acks).await;
    assert_eq!(total(&cluster, leader).await, expected);
    cluster.assert_replicas_identical().await;
}
