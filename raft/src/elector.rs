//! Elections, started by this node only when a majority would take part: a pre-vote.
//!
//! openraft 0.9 has no pre-vote. Its own timer makes a node that stops hearing the leader
//! (paused, behind a cut link, busy installing a snapshot) campaign again and again, each
//! time with a higher term; when it is heard again, that term unseats a healthy leader.
//! Measured: a follower far behind moved the cluster's term every ~10 s.
//!
//! So openraft's election timer is switched off (`runtime_config().elect(false)`; its
//! `initialize` still campaigns at once) and this task decides. A node campaigns when it
//! has heard no leader for the leader lease plus a random jitter, and only after a
//! majority answered a pre-vote: "would you vote for me now?". A node says yes only if it
//! has not heard a leader within the lease itself (a leader: has not heard a quorum), the
//! candidate's log is at least as long as its own, and it is not rejoining on fresh
//! storage (see `identity`). These are the very checks openraft applies to the real vote,
//! so a pre-vote majority predicts an election that can succeed, and a node that cannot
//! reach a majority never raises the term.
//!
//! Timing: the lease is openraft's (`election_timeout_max_ms`: a follower refuses real
//! votes that long after its last heartbeat); a candidate waits the lease plus one
//! heartbeat (its peers may have heard the leader that much later) plus a jitter over
//! `election_timeout_max_ms - election_timeout_min_ms` that keeps candidates apart. A dead
//! leader is replaced after about that wait plus one round trip.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::ServerState;
use serde::{Deserialize, Serialize};
use storage::types::LogId;
use storage::NodeId;

use crate::network::{call, Method};
use crate::replica::Replica;

/// How often the elector looks at the clock.
const TICK_MS: u64 = 25;

/// When this node last heard from a leader (or was one), in ms since `origin`.
pub struct ContactClock {
    origin: Instant,
    last_ms: AtomicU64,
    /// Set when a peer's candidacy was refused because this node's log is longer.
    prompt: AtomicBool,
}

impl Default for ContactClock {
    fn default() -> ContactClock {
        ContactClock {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
            prompt: AtomicBool::new(false),
        }
    }
}

impl ContactClock {
    pub fn touch(&self) {
        let now = self.origin.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(now, Ordering::Relaxed);
    }

    pub fn silent_ms(&self) -> u64 {
        self.now_ms()
            .saturating_sub(self.last_ms.load(Ordering::Relaxed))
    }

    pub fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    /// Asks the elector for an attempt as soon as the lease allows.
    pub fn prompt(&self) {
        self.prompt.store(true, Ordering::Relaxed);
    }

    fn take_prompt(&self) -> bool {
        self.prompt.swap(false, Ordering::Relaxed)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ElectionTimers {
    /// openraft's leader lease: `election_timeout_max_ms`.
    pub lease_ms: u64,
    /// One heartbeat: peers lost the leader up to this much later than this node did.
    pub heartbeat_ms: u64,
    /// Random extra silence before campaigning: 0..=jitter_ms.
    pub jitter_ms: u64,
}

impl ElectionTimers {
    /// Silence after which a follower stops believing in its leader: the lease and one
    /// heartbeat, the same silence after which it would ask for a pre-vote at the earliest.
    pub fn stale_ms(&self) -> u64 {
        self.lease_ms + self.heartbeat_ms
    }

    /// Silence after which this node asks for a pre-vote: the lease, one heartbeat (so
    /// that peers' leases have run out too), and a random share of the jitter.
    fn next_wait_ms(&self) -> u64 {
        self.lease_ms + self.heartbeat_ms + fastrand::u64(0..=self.jitter_ms)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreVoteRequest {
    pub candidate: NodeId,
    pub last_log_id: Option<LogId>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreVoteReply {
    pub granted: bool,
    pub reason: String,
}

/// Runs until the Raft core stops.
///
/// Only hearing a leader (or being one) moves the `ContactClock`; this loop's own retry
/// deadline is private. (Touching the shared clock after a failed round made two survivors
/// deny each other's pre-votes for "a leader heard within the lease", which was only their
/// own retry: a livelock measured at up to 16 s without a leader.)
pub async fn run(replica: Arc<Replica>, timers: ElectionTimers) {
    let mut wait_ms = timers.next_wait_ms();
    // The earliest moment (on the contact clock) of this node's next attempt.
    let mut retry_at_ms = 0u64;
    let mut metrics = replica.raft.metrics();
    loop {
        tokio::time::sleep(Duration::from_millis(TICK_MS)).await;
        if metrics.has_changed().is_err() {
            return;
        }
        let (state, voter) = {
            let m = metrics.borrow_and_update();
            let voter = m
                .membership_config
                .membership()
                .voter_ids()
                .any(|id| id == replica.id);
            (m.state, voter)
        };
        if state == ServerState::Leader || !voter || replica.peers().identity().rejoining() {
            replica.contact.touch();
            continue;
        }
        // A snapshot in flight is a leader at work: not a reason to campaign.
        if replica
            .peers()
            .identity()
            .receiving_snapshot(timers.stale_ms())
        {
            continue;
        }
        let silent_ms = replica.contact.silent_ms();
        // A peer refused our candidate because this node's log is longer: this node should
        // try at once (it is the one that can win), once the lease has run out here too.
        let prompt = replica.contact.take_prompt() && silent_ms >= timers.stale_ms();
        let due = silent_ms >= wait_ms && replica.contact.now_ms() >= retry_at_ms;
        if !prompt && !due {
            continue;
        }
        if pre_vote(&replica, timers).await && still_leaderless(&replica, timers) {
            tracing::info!(
                silent_ms = replica.contact.silent_ms(),
                "pre-vote won: campaigning"
            );
            replica.metrics.elections_started_total.inc();
            if replica.raft.trigger().elect().await.is_err() {
                return;
            }
        }
        // Not a whole timeout again: the silence has lasted long enough; only spread
        // the next attempts of several nodes apart.
        retry_at_ms =
            replica.contact.now_ms() + timers.heartbeat_ms + fastrand::u64(0..=timers.jitter_ms);
        wait_ms = timers.next_wait_ms();
    }
}

/// Re-checked after a pre-vote round, which may take a round trip or a timeout: nobody
/// was heard leading meanwhile, and this node has not become leader.
fn still_leaderless(replica: &Replica, timers: ElectionTimers) -> bool {
    let state = replica.raft.metrics().borrow().state;
    state != ServerState::Leader && replica.contact.silent_ms() >= timers.stale_ms()
}

/// Asks the other voters; true as soon as a majority (this node included) would vote for
/// it, false when the answers can no longer make one.
async fn pre_vote(replica: &Replica, timers: ElectionTimers) -> bool {
    use futures::stream::{FuturesUnordered, StreamExt};

    let Ok(last_log_id) = replica.log_store.last_log_id() else {
        return false;
    };
    let request = PreVoteRequest {
        candidate: replica.id,
        last_log_id,
    };
    let voters: Vec<(NodeId, String)> = {
        let metrics = replica.raft.metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        membership
            .voter_ids()
            .filter_map(|id| membership.get_node(&id).map(|n| (id, n.rpc_addr.clone())))
            .collect()
    };
    let majority = voters.len() / 2 + 1;
    let timeout = Duration::from_millis((timers.lease_ms / 2).max(100));
    let mut asks: FuturesUnordered<_> = voters
        .iter()
        .filter(|(id, _)| *id != replica.id)
        .map(|(id, addr)| {
            let request = request.clone();
            async move {
                let Ok(channel) = replica.peers().channel(*id, addr) else {
                    return false;
                };
                let reply: Result<PreVoteReply, _> = call(
                    channel,
                    replica.peers().identity(),
                    Method::PreVote,
                    &request,
                    timeout,
                )
                .await;
                match reply {
                    Ok(reply) if reply.granted => true,
                    Ok(reply) => {
                        tracing::debug!(peer = id, reason = %reply.reason, "pre-vote denied");
                        false
                    }
                    Err(error) => {
                        tracing::debug!(peer = id, %error, "pre-vote unanswered");
                        false
                    }
                }
            }
        })
        .collect();
    let mut granted = 1;
    let mut pending = asks.len();
    if granted >= majority {
        return true;
    }
    while let Some(grant) = asks.next().await {
        pending -= 1;
        granted += usize::from(grant);
        if granted >= majority {
            return true;
        }
        if granted + pending < majority {
            return false;
        }
    }
    false
}

/// This node's answer to a pre-vote.
pub fn answer(replica: &Replica, timers: ElectionTimers, request: &PreVoteRequest) -> PreVoteReply {
    let deny = |reason: &str| PreVoteReply {
        granted: false,
        reason: reason.to_owned(),
    };
    let past_bootstrap = request.last_log_id.is_some_and(|id| id.index > 0);
    if replica.peers().identity().rejoining() && past_bootstrap {
        return deny("rejoining on fresh storage");
    }
    let (state, quorum_silence_ms) = {
        let metrics = replica.raft.metrics();
        let m = metrics.borrow();
        (m.state, m.millis_since_quorum_ack)
    };
    if state == ServerState::Leader {
        let handing_over = replica.stepping_down.load(Ordering::Relaxed);
        if !handing_over && quorum_silence_ms.is_some_and(|ms| ms < timers.lease_ms) {
            return deny("I lead, and a quorum heard me within the lease");
        }
    } else if replica.contact.silent_ms() < timers.lease_ms {
        return deny("I heard a leader within the lease");
    }
    match replica.log_store.last_log_id() {
        Ok(mine) if request.last_log_id >= mine => PreVoteReply {
            granted: true,
            reason: String::new(),
        },
        Ok(_) => {
            // This node is the better candidate: let it try without waiting its turn.
            replica.contact.prompt();
            deny("my log is longer")
        }
        Err(_) => deny("cannot read my log"),
    }
}
