//! The nemesis: injects one fault at a time, holds it, heals it, then lets the cluster
//! settle, cycling through the chosen faults until the test's time is up. Every start and
//! stop is recorded in the history (process "nemesis"), so checkers and the timeline know
//! the fault windows.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::db::{Db, NODES};
use crate::history::{Function, OpType, Recorder};
use crate::hostile;
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
    /// Send malformed, invalid and oversized frames to every node's peer port (see `hostile`).
    HostileFrames,
}

/// Early in the list so that the 60 s CI run (about eight 5 s windows) executes it.
pub const ALL: [Fault; 10] = [
    Fault::Kill,
    Fault::HostileFrames,
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
            "hostile-frames" => Fault::HostileFrames,
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
            Fault::HostileFrames => "hostile-frames",
        }
    }
}

pub struct Schedule {
    pub faults: Vec<Fault>,
    pub quiet: Duration,
    pub hold: Duration,
    pub deadline: Instant,
    /// The test's accounts, which the hostile frames' invalid transfers name.
    pub accounts: Vec<String>,
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

/// What `start` began that runs until the fault is healed.
struct Started {
    detail: Value,
    hostile: Option<hostile::Running>,
}

impl From<Value> for Started {
    fn from(detail: Value) -> Started {
        Started {
            detail,
            hostile: None,
        }
    }
}

/// Where node `node` itself serves Raft: its own address, never the proxy peers go through.
pub fn rpc_address(db: &Db, node: usize) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(db.topology.node_ips[node]),
        db.nodes[node].rpc_port,
    )
}

/// Starts a fault; returns what was done, for the history.
async fn start(
    fault: Fault,
    http: &reqwest::Client,
    db: &Mutex<Db>,
    net: &Net,
    hostile: (&Recorder, &[String], usize),
) -> anyhow::Result<Started> {
    let mut db = db.lock().await;
    let random = fastrand::usize(..NODES);
    let leader = find_leader(http, &db).await.unwrap_or(random);
    Ok(match fault {
        Fault::HostileFrames => {
            let (recorder, accounts, window) = hostile;
            let targets: Vec<SocketAddr> = (0..NODES).map(|n| rpc_address(&db, n)).collect();
            let context = hostile::Context {
                accounts: accounts.to_vec(),
                window,
                nodes: NODES,
            };
            let detail = json!({
                "targets": targets.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
                "framesMax": hostile::FRAMES_PER_WINDOW,
                "framesPerSecond": hostile::FRAMES_PER_SECOND,
                "frameTimeoutMs": hostile::FRAME_TIMEOUT.as_millis() as u64,
                "oversizedTo": window % NODES,
            });
            Started {
                detail,
                hostile: Some(hostile::start(targets, context, recorder.clone())),
            }
        }
        Fault::Kill | Fault::KillLeader => {
            let node = if fault == Fault::Kill { random } else { leader };
            db.kill(node);
            net.node_down(node);
            json!({"node": node}).into()
        }
        Fault::Pause => {
            db.pause(random);
            json!({"node": random}).into()
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
            json!({"isolated": isolated, "mechanism": net.mechanism()}).into()
        }
        Fault::PartitionRing => {
            let other = others(random)[fastrand::usize(..NODES - 1)];
            net.partition(&[(random, other)])?;
            json!({"cut": [random, other], "mechanism": net.mechanism()}).into()
        }
        Fault::Loss => {
            let applied = net.lose(0.2)?;
            json!({"probability": 0.2, "applied": applied}).into()
        }
        Fault::Delay => {
            net.delay(40);
            json!({"delayMs": 40}).into()
        }
        Fault::ClockSkew => {
            let offsets: Vec<i64> = (0..NODES).map(|_| fastrand::i64(-300..=300)).collect();
            for (node, offset) in offsets.iter().enumerate() {
                db.set_clock_offset(node, *offset)?;
            }
            json!({"offsetsSeconds": offsets, "applied": db.faketime}).into()
        }
    })
}

/// Heals every fault: network, processes and clocks.
pub async fn heal_all(db: &Mutex<Db>, net: &Net) -> anyhow::Result<()> {
    net.heal()?;
    for node in 0..NODES {
        net.node_up(node);
    }
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
        let window = executed.len();
        let started = start(
            *fault,
            &http,
            &db,
            &net,
            (&recorder, &schedule.accounts, window),
        )
        .await?;
        recorder.record(
            "nemesis",
            OpType::Info,
            Function::Start,
            json!({"fault": fault.name(), "detail": started.detail}),
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
        let mut healed = what;
        if let Some(hostile) = started.hostile {
            // Frames in flight finish (each within its timeout) before the window closes.
            healed["framesSent"] = json!(hostile.finish().await);
        }
        heal_all(&db, &net).await?;
        recorder.record("nemesis", OpType::Info, Function::Stop, healed, None, None);
    }
    Ok(executed)
}
