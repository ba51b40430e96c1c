//! The nemesis: injects one fault at a time, holds it, heals it, then lets the cluster
//! settle, cycling through the chosen faults until the test's time is up. Every start and
//! stop is recorded in the history (process "nemesis"), so checkers and the timeline know
//! the fault windows.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::db::{Db, NODES};
use crate::history::{Function, OpType, Recorder};
use crate::net::Net;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// kill -9 a random node, then restart it.
    Kill,
    /// kill -9 the leader, then restart it.
    KillLeader,
    /// SIGSTOP a random node, then SIGCONT.
    Pause,
    /// Cut the leader off from both followers.
    PartitionLeader,
    /// Cut a random node off (with three nodes: a random majority and minority).
    PartitionRandom,
    /// Cut one link only: the non-transitive "ring"/bridge, each node still sees a majority.
    PartitionRing,
    /// Drop a fraction of packets between nodes.
    Loss,
    /// Delay traffic between nodes through the proxy.
    Delay,
    /// Skew nodes' wall clocks (never the monotonic clock).
    ClockSkew,
}

pub const ALL: [Fault; 9] = [
    Fault::Kill,
    Fault::PartitionLeader,
    Fault::Pause,
    Fault::Loss,
    Fault::KillLeader,
    Fault::PartitionRing,
    Fault::Delay,
    Fault::ClockSkew,
    Fault::PartitionRandom,
];

impl FromStr for Fault {
    type Err = String;
    fn from_str(text: &str) -> Result<Fault, String> {
        Ok(match text {
            "kill" => Fault::Kill,
            "kill-leader" => Fault::KillLeader,
            "pause" => Fault::Pause,
            "partition-leader" => Fault::PartitionLeader,
            "partition-random" => Fault::PartitionRandom,
            "partition-ring" => Fault::PartitionRing,
            "loss" => Fault::Loss,
            "delay" => Fault::Delay,
            "clock-skew" => Fault::ClockSkew,
            other => return Err(format!("unknown nemesis {other}")),
        })
    }
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::KillLeader => "kill-leader",
            Fault::Pause => "pause",
            Fault::PartitionLeader => "partition-leader",
            Fault::PartitionRandom => "partition-random",
            Fault::PartitionRing => "partition-ring",
            Fault::Loss => "loss",
            Fault::Delay => "delay",
            Fault::ClockSkew => "clock-skew",
        }
    }
}

pub struct Schedule {
    pub faults: Vec<Fault>,
    pub quiet: Duration,
    pub hold: Duration,
    pub deadline: Instant,
}

/// The leader most running nodes name, if any.
pub async fn find_leader(http: &reqwest::Client, db: &Db) -> Option<usize> {
    let mut votes = [0usize; NODES];
    for node in (0..NODES).filter(|n| db.is_running(*n) && !db.nodes[*n].paused) {
        let url = format!("{}/api/v1/cluster", db.api_url(node));
        let Ok(response) = http
            .get(url)
            .timeout(Duration::from_millis(500))
            .send()
            .await
        else {
            continue;
        };
        let Ok(info) = response.json::<Value>().await else {
            continue;
        };
        if let Some(leader) = info["leaderId"].as_u64().filter(|l| (*l as usize) < NODES) {
            votes[leader as usize] += 1;
        }
    }
    (0..NODES)
        .max_by_key(|n| votes[*n])
        .filter(|n| votes[*n] > 0)
}

fn others(node: usize) -> Vec<usize> {
    (0..NODES).filter(|n| *n != node).collect()
}

/// Starts a fault; returns what was done, for the history.
async fn start(
    fault: Fault,
    http: &reqwest::Client,
    db: &Mutex<Db>,
    net: &Net,
) -> anyhow::Result<Value> {
    let mut db = db.lock().await;
    let random = fastrand::usize(..NODES);
    let leader = find_leader(http, &db).await.unwrap_or(random);
    Ok(match fault {
        Fault::Kill | Fault::KillLeader => {
            let node = if fault == Fault::Kill { random } else { leader };
            db.kill(node);
            json!({"node": node})
        }
        Fault::Pause => {
            db.pause(random);
            json!({"node": random})
        }
        Fault::PartitionLeader | Fault::PartitionRandom => {
            let isolated = if fault == Fault::PartitionLeader {
                leader
            } else {
                random
            };
            let cuts: Vec<(usize, usize)> = others(isolated)
                .into_iter()
                .map(|o| (isolated, o))
                .collect();
            net.partition(&cuts)?;
            json!({"isolated": isolated, "mechanism": net.mechanism()})
        }
        Fault::PartitionRing => {
            let other = others(random)[fastrand::usize(..NODES - 1)];
            net.partition(&[(random, other)])?;
            json!({"cut": [random, other], "mechanism": net.mechanism()})
        }
        Fault::Loss => {
            let applied = net.lose(0.2)?;
            json!({"probability": 0.2, "applied": applied})
        }
        Fault::Delay => {
            net.delay(40);
            json!({"delayMs": 40})
        }
        Fault::ClockSkew => {
            let offsets: Vec<i64> = (0..NODES).map(|_| fastrand::i64(-300..=300)).collect();
            for (node, offset) in offsets.iter().enumerate() {
                db.set_clock_offset(node, *offset)?;
            }
            json!({"offsetsSeconds": offsets, "applied": db.faketime})
        }
    })
}

/// Heals every fault: network, processes and clocks.
pub async fn heal_all(db: &Mutex<Db>, net: &Net) -> anyhow::Result<()> {
    net.heal()?;
    db.lock().await.heal()?;
    Ok(())
}

pub async fn run(
    schedule: Schedule,
    http: reqwest::Client,
    db: Arc<Mutex<Db>>,
    net: Arc<Net>,
    recorder: Recorder,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Vec<&'static str>> {
    let mut executed = Vec::new();
    for fault in schedule.faults.iter().cycle() {
        let stopped = tokio::time::timeout(schedule.quiet, stop.wait_for(|s| *s))
            .await
            .is_ok();
        if stopped || Instant::now() + schedule.hold >= schedule.deadline {
            break;
        }
        let what = json!({"fault": fault.name()});
        recorder.record(
            "nemesis",
            OpType::Invoke,
            Function::Start,
            what.clone(),
            None,
            None,
        );
        let detail = start(*fault, &http, &db, &net).await?;
        recorder.record(
            "nemesis",
            OpType::Info,
            Function::Start,
            json!({"fault": fault.name(), "detail": detail}),
            None,
            None,
        );
        executed.push(fault.name());
        let _ = tokio::time::timeout(schedule.hold, stop.wait_for(|s| *s)).await;
        recorder.record(
            "nemesis",
            OpType::Invoke,
            Function::Stop,
            what.clone(),
            None,
            None,
        );
        heal_all(&db, &net).await?;
        recorder.record("nemesis", OpType::Info, Function::Stop, what, None, None);
    }
    Ok(executed)
}
