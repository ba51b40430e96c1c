//! The cluster as the nodes themselves report it: every [`POLL_MS`] the harness asks each
//! node for `/api/v1/cluster` and keeps a sample whenever a node's term, leader or role
//! changed, or it stopped or started answering. Written to `cluster.jsonl`; the
//! availability report counts elections (term changes) per fault window from it, and the
//! `failover` command counts elections during calm.
//!
//! It is an observer only: its samples are not operations and never enter the history.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::history::Recorder;

/// How often every node is asked.
pub const POLL_MS: u64 = 200;
/// Longest wait for one node's answer (a paused node does not answer).
const ANSWER_MS: u64 = 300;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// On the history's clock (ns since the test began).
    pub time_ns: u64,
    pub node: usize,
    /// None: the node did not answer.
    pub term: Option<u64>,
    pub leader: Option<u64>,
    pub state: Option<String>,
}

impl Sample {
    fn same_as(&self, other: &Sample) -> bool {
        self.term == other.term && self.leader == other.leader && self.state == other.state
    }
}

#[derive(Clone, Default)]
pub struct Monitor {
    samples: Arc<Mutex<Vec<Sample>>>,
}

impl Monitor {
    /// Polls until `stop` turns true.
    pub fn start(
        http: reqwest::Client,
        urls: Vec<String>,
        recorder: Recorder,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Monitor {
        let monitor = Monitor::default();
        let samples = monitor.samples.clone();
        tokio::spawn(async move {
            let mut last: Vec<Option<Sample>> = vec![None; urls.len()];
            loop {
                let asks = urls.iter().map(|url| ask(&http, url));
                let answers = futures::future::join_all(asks).await;
                let time_ns = recorder.now_ns();
                for (node, answer) in answers.into_iter().enumerate() {
                    let sample = Sample {
                        time_ns,
                        node,
                        term: answer.as_ref().and_then(|a| a["term"].as_u64()),
                        leader: answer.as_ref().and_then(|a| a["leaderId"].as_u64()),
                        state: answer
                            .as_ref()
                            .and_then(|a| a["state"].as_str().map(str::to_owned)),
                    };
                    if last[node].as_ref().is_none_or(|l| !l.same_as(&sample)) {
                        samples.lock().unwrap().push(sample.clone());
                        last[node] = Some(sample);
                    }
                }
                let wait =
                    tokio::time::timeout(Duration::from_millis(POLL_MS), stop.wait_for(|s| *s));
                // Stopped, or the sender is gone.
                if wait.await.is_ok() {
                    return;
                }
            }
        });
        monitor
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().unwrap().clone()
    }
}

async fn ask(http: &reqwest::Client, url: &str) -> Option<Value> {
    let response = http
        .get(format!("{url}/api/v1/cluster"))
        .timeout(Duration::from_millis(ANSWER_MS))
        .send()
        .await
        .ok()?;
    response.json().await.ok()
}

/// A rise of the highest term any node reported: an election began (won or not).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TermChange {
    pub time_ns: u64,
    pub node: usize,
    pub from: u64,
    pub to: u64,
}

/// The first moment a node reported a leader other than the one before.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaderChange {
    pub time_ns: u64,
    pub leader: u64,
    pub term: Option<u64>,
}

pub fn term_changes(samples: &[Sample]) -> Vec<TermChange> {
    let mut changes = Vec::new();
    let mut highest: Option<u64> = None;
    for sample in samples {
        let Some(term) = sample.term else { continue };
        match highest {
            Some(h) if term > h => changes.push(TermChange {
                time_ns: sample.time_ns,
                node: sample.node,
                from: h,
                to: term,
            }),
            _ => {}
        }
        highest = Some(highest.map_or(term, |h| h.max(term)));
    }
    changes
}

pub fn leader_changes(samples: &[Sample]) -> Vec<LeaderChange> {
    let mut changes = Vec::new();
    let mut current: Option<u64> = None;
    let mut term: Option<u64> = None;
    for sample in samples {
        let Some(leader) = sample.leader else {
            continue;
        };
        // A node still naming an older leader at a lower term is not a change.
        if sample.term < term {
            continue;
        }
        if current != Some(leader) {
            if current.is_some() {
                changes.push(LeaderChange {
                    time_ns: sample.time_ns,
                    leader,
                    term: sample.term,
                });
            }
            current = Some(leader);
        }
        term = term.max(sample.term);
    }
    changes
}

pub fn to_jsonl(samples: &[Sample]) -> String {
    samples
        .iter()
        .map(|s| serde_json::to_string(s).expect("serializable") + "\n")
        .collect()
}

pub fn from_jsonl(text: &str) -> anyhow::Result<Vec<Sample>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}
