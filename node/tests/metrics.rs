//! `GET /metrics` on every node of a real cluster: the Prometheus text format, the names the
//! Helm chart's alerts use, and values that agree with what the test did.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{Cluster, WAIT_MS_MAX};
use serde_json::json;

const TRANSFER_ROUTE: &str = "/api/v1/transactions/process";

/// One sample: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A scrape: the declared metric names (`# TYPE`) and every sample.
#[derive(Debug)]
struct Scrape {
    types: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut types = BTreeMap::new();
        let mut samples = Vec::new();
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
                types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            samples.push(parse_sample(line));
        }
        Scrape { types, samples }
    }

    /// The sum of the samples named `name` whose labels include every pair of `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum()
    }

    /// The one sample named `name` without labels.
    fn value(&self, name: &str) -> f64 {
        let found: Vec<_> = self.samples.iter().filter(|s| s.name == name).collect();
        assert_eq!(found.len(), 1, "one sample of {name}: {found:?}");
        found[0].value
    }
}

/// `name{label="value",...} number` (label values quoted, with `\\`, `\"`, `\n` escapes).
fn parse_sample(line: &str) -> Sample {
    let name_end = line.find(['{', ' ']).expect("a sample has a value");
    let name = line[..name_end].to_owned();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut key = String::new();
        loop {
            let (i, c) = chars.next().expect("labels close");
            match c {
                '}' => {
                    rest = &inner[i + 1..];
                    break;
                }
                ',' => {}
                '=' => {
                    assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                    let mut value = String::new();
                    loop {
                        match chars.next().expect("value closes").1 {
                            '"' => break,
                            '\\' => match chars.next().expect("escape").1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            other => value.push(other),
                        }
                    }
                    labels.insert(std::mem::take(&mut key), value);
                }
                other => key.push(other),
            }
        }
    }
    let value = rest.split_whitespace().next().expect("a value");
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other
            .parse()
            .unwrap_or_else(|_| panic!("a number in {line}")),
    };
    Sample {
        name,
        labels,
        value,
    }
}

async fn scrape(cluster: &Cluster, index: usize) -> Scrape {
    let response = cluster
        .http
        .get(cluster.url(index, "/metrics"))
        .send()
        .await
        .expect("reachable");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    Scrape::parse(&response.text().await.unwrap())
}

const REQUIRED: &[(&str, &str)] = &[
    ("ledger_http_request_duration_seconds", "histogram"),
    ("ledger_raft_leader_id", "gauge"),
    ("ledger_raft_applied_index", "gauge"),
    ("ledger_raft_committed_index", "gauge"),
    ("ledger_raft_term", "gauge"),
    ("ledger_raft_last_log_index", "gauge"),
    ("ledger_raft_is_leader", "gauge"),
    ("ledger_batch_commands", "histogram"),
    ("ledger_batch_wait_seconds", "histogram"),
    ("ledger_log_sync_duration_seconds", "histogram"),
    ("ledger_forwarded_requests_total", "counter"),
    ("ledger_snapshots_built_total", "counter"),
    ("ledger_snapshots_installed_total", "counter"),
    ("ledger_elections_started_total", "counter"),
    ("process_resident_memory_bytes", "gauge"),
    ("process_cpu_seconds_total", "counter"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_serves_prometheus_metrics() {
    let cluster = Cluster::start(&[]).await;
    let leader = cluster.leader().await;
    let nodes = cluster.nodes.len();

    let before: Vec<f64> = {
        let mut counts = Vec::new();
        for index in 0..nodes {
            let scraped = scrape(&cluster, index).await;
            counts.push(scraped.sum(
                "ledger_http_request_duration_seconds_count",
                &[("route", TRANSFER_ROUTE)],
            ));
        }
        counts
    };

    // Writes: two accounts, then node i is sent i + 1 transfers (followers forward theirs).
    cluster.create_account(leader, "alice", "100").await;
    cluster.create_account(leader, "bob", "0").await;
    let mut writes = 2u64;
    let mut sent = vec![0f64; nodes];
    for (index, count) in sent.iter_mut().enumerate() {
        for n in 0..=index {
            let body = json!({"transactionId": format!("tx-{index}-{n}"), "sourceAccountId": "alice",
                              "destinationAccountId": "bob", "amount": "1"});
            let (status, _, answer) = cluster
                .post(index, TRANSFER_ROUTE, &body)
                .await
                .expect("reachable");
            assert_eq!(status, 200, "{answer}");
            *count += 1.0;
            writes += 1;
        }
    }
    // Reads, linearizable and local, on every node.
    for index in 0..nodes {
        let (status, _) = cluster.get(index, "/api/v1/accounts/bob").await.unwrap();
        assert_eq!(status, 200);
        let (status, _) = cluster
            .get(index, "/api/v1/accounts/alice?consistency=local")
            .await
            .unwrap();
        assert_eq!(status, 200);
    }

    // Followers apply a moment after the leader answered: poll, bounded.
    let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
    let scrapes = loop {
        let mut scrapes = Vec::new();
        for index in 0..nodes {
            scrapes.push(scrape(&cluster, index).await);
        }
        let caught_up = scrapes
            .iter()
            .all(|s| s.value("ledger_raft_applied_index") >= writes as f64);
        if caught_up {
            break scrapes;
        }
        assert!(
            Instant::now() < deadline,
            "applied index never reached {writes}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let leader_ids: BTreeSet<i64> = scrapes
        .iter()
        .map(|s| s.value("ledger_raft_leader_id") as i64)
        .collect();
    assert_eq!(
        leader_ids,
        BTreeSet::from([leader as i64]),
        "one leader, agreed on"
    );
    for (index, scraped) in scrapes.iter().enumerate() {
        for (name, kind) in REQUIRED {
            assert_eq!(
                scraped.types.get(*name).map(String::as_str),
                Some(*kind),
                "node {index} declares {name} as a {kind}"
            );
        }
        let is_leader = scraped.value("ledger_raft_is_leader");
        assert_eq!(
            is_leader,
            if index == leader { 1.0 } else { 0.0 },
            "node {index}"
        );
        assert!(scraped.value("ledger_raft_committed_index") >= writes as f64);
        assert!(scraped.value("ledger_raft_last_log_index") >= writes as f64);
        assert!(scraped.value("ledger_raft_term") >= 1.0);
        assert!(scraped.value("process_resident_memory_bytes") > 0.0);
        assert!(scraped.value("ledger_log_sync_duration_seconds_count") > 0.0);

        // Exactly the transfers sent to this node, all answered 200, by route template.
        let transfers = scraped.sum(
            "ledger_http_request_duration_seconds_count",
            &[("route", TRANSFER_ROUTE)],
        );
        assert_eq!(transfers - before[index], sent[index], "node {index}");
        let ok = scraped.sum(
            "ledger_http_request_duration_seconds_count",
            &[
                ("route", TRANSFER_ROUTE),
                ("method", "POST"),
                ("status", "200"),
            ],
        );
        assert_eq!(ok, transfers, "node {index}");
        let account_reads = scraped.sum(
            "ledger_http_request_duration_seconds_count",
            &[
                ("route", "/api/v1/accounts/{account_id}"),
                ("method", "GET"),
            ],
        );
        assert_eq!(account_reads, 2.0, "node {index}");
        // Bounded cardinality: never a raw path.
        for sample in &scraped.samples {
            if let Some(route) = sample.labels.get("route") {
                assert!(
                    !route.contains("alice") && !route.contains("bob"),
                    "{route}"
                );
            }
        }
        if index != leader {
            let forwarded = scraped.sum(
                "ledger_forwarded_requests_total",
                &[("kind", "write"), ("outcome", "ok")],
            );
            assert_eq!(
                forwarded, sent[index],
                "node {index} forwarded its transfers"
            );
        }
    }
    let on_leader = &scrapes[leader];
    assert!(on_leader.value("ledger_batch_commands_count") > 0.0);
    assert!(on_leader.value("ledger_batch_commands_sum") >= writes as f64);
    assert!(on_leader.value("ledger_batch_wait_seconds_count") >= writes as f64);
}
