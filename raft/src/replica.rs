//! One node of the cluster as the API sees it: propose a command or read the ledger, and
//! learn who served it. "Try locally; on not-leader, forward transparently" (rqlite): a
//! follower hands writes and linearizable reads to the leader in exactly one hop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{CheckIsLeaderError, RaftError};
use storage::domain::{Command, Outcome};
use storage::reader::LedgerReader;
use storage::state_machine::StateMachineStats;
use storage::NodeId;

use crate::error::{Error, Result};
use crate::network::{call, CallError, Method, Peers};
use crate::proposer::Proposer;
use crate::protocol::{
    ForwardReply, ForwardRequest, ForwardResult, HistoryValue, ReadReply, ReadRequest, ReadValue,
    StatusReply,
};
use crate::Raft;

/// How often a wait for a leader re-checks its belief (heartbeats change no metrics).
const BELIEF_POLL_MS: u64 = 25;

/// How a read may be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// Through the leader after it confirms its leadership (ReadIndex): never stale.
    Linearizable,
    /// This node's applied state: may lag the leader.
    Local,
}

/// A value and the node that produced it.
#[derive(Debug, Clone)]
pub struct Served<T> {
    pub value: T,
    pub served_by: NodeId,
}

#[derive(Debug, Clone, Copy)]
pub struct ReplicaTimeouts {
    /// Longest wait for a proposal to be committed and applied.
    pub write_timeout_ms: u64,
    /// Longest a request waits for a leader to be known before 503.
    pub leader_wait_ms: u64,
    /// A leader that has not heard from a quorum for this long refuses new proposals at
    /// once (nothing proposed: a safe 503) instead of letting them wait for a commit that
    /// a partition may never allow.
    pub quorum_silence_ms_max: u64,
}

pub struct Replica {
    pub id: NodeId,
    pub raft: Raft,
    pub reader: LedgerReader,
    pub(crate) proposer: Proposer,
    pub(crate) peers: Peers,
    pub(crate) committed_index: Arc<AtomicU64>,
    pub(crate) stats: Arc<StateMachineStats>,
    pub(crate) timeouts: ReplicaTimeouts,
    pub(crate) leaderless: LeaderlessClock,
    /// When a leader was last heard from: the elector's clock.
    pub(crate) contact: crate::elector::ContactClock,
    pub(crate) election_timers: crate::elector::ElectionTimers,
    pub(crate) log_store: crate::log_store::LogStore,
    /// Set while this leader hands over (see `membership`): no new proposals.
    pub(crate) stepping_down: std::sync::atomic::AtomicBool,
    pub(crate) metrics: Arc<crate::metrics::RaftMetrics>,
}

/// How long this node has gone without knowing a leader, kept up to date by a task that
/// follows openraft's metrics, so requests need not wait for an election that keeps failing.
#[derive(Clone)]
pub(crate) struct LeaderlessClock {
    origin: Instant,
    /// Milliseconds since `origin` when the leader was lost; `u64::MAX` while one is known.
    lost_at_ms: Arc<AtomicU64>,
}

impl LeaderlessClock {
    pub(crate) fn start(raft: &Raft) -> LeaderlessClock {
        let clock = LeaderlessClock {
            origin: Instant::now(),
            lost_at_ms: Arc::new(AtomicU64::new(0)),
        };
        let mut metrics = raft.metrics();
        let watcher = clock.clone();
        tokio::spawn(async move {
            loop {
                let known = metrics.borrow_and_update().current_leader.is_some();
                let now_ms = watcher.origin.elapsed().as_millis() as u64;
                if known {
                    watcher.lost_at_ms.store(u64::MAX, Ordering::Relaxed);
                } else {
                    // Keep the first moment of this leaderless spell.
                    let _ = watcher.lost_at_ms.compare_exchange(
                        u64::MAX,
                        now_ms,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        });
        clock
    }

    /// Milliseconds without a known leader (0 while one is known).
    fn leaderless_ms(&self) -> u64 {
        let lost_at = self.lost_at_ms.load(Ordering::Relaxed);
        (self.origin.elapsed().as_millis() as u64).saturating_sub(lost_at)
    }
}

impl Replica {
    pub fn committed_index(&self) -> u64 {
        self.committed_index.load(Ordering::Relaxed)
    }

    pub fn peers(&self) -> &Peers {
        &self.peers
    }

    pub fn stats(&self) -> &StateMachineStats {
        &self.stats
    }

    pub fn metrics(&self) -> &crate::metrics::RaftMetrics {
        &self.metrics
    }

    /// This node's Raft metrics, the gauges read from openraft and the state machine now.
    pub fn gather_metrics(&self) -> Vec<prometheus::proto::MetricFamily> {
        let scraped = &self.metrics.scraped;
        let _one_at_a_time = scraped.lock.lock().unwrap_or_else(|e| e.into_inner());
        let index = |log_id: Option<storage::types::LogId>| log_id.map_or(-1, |id| id.index as i64);
        {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            scraped.term.set(m.current_term as i64);
            scraped
                .last_log_index
                .set(m.last_log_index.map_or(-1, |i| i as i64));
            scraped.applied_index.set(index(m.last_applied));
            scraped
                .is_leader
                .set(i64::from(m.state == openraft::ServerState::Leader));
        }
        scraped.committed_index.set(self.committed_index() as i64);
        scraped
            .leader_id
            .set(self.current_leader().map_or(-1, |id| id as i64));
        crate::metrics::advance(
            &scraped.snapshots_built_total,
            self.stats.snapshots_built.load(Ordering::Relaxed),
        );
        crate::metrics::advance(
            &scraped.snapshots_installed_total,
            self.stats.snapshots_installed.load(Ordering::Relaxed),
        );
        self.metrics.gather()
    }

    /// The leader as this node believes in it now. openraft keeps naming a follower's last
    /// leader until an election changes the term, and with pre-voting a node that cannot
    /// reach a majority never starts one; so a leader not heard from for longer than the
    /// lease plus a heartbeat is no longer believed in (see `elector`).
    pub fn current_leader(&self) -> Option<NodeId> {
        let leader = self.raft.metrics().borrow().current_leader?;
        if leader == self.id || self.contact.silent_ms() <= self.election_timers.stale_ms() {
            Some(leader)
        } else {
            None
        }
    }

    /// How long this node has gone without a leader it believes in.
    fn leaderless_ms(&self) -> u64 {
        if self.raft.metrics().borrow().current_leader.is_none() {
            return self.leaderless.leaderless_ms();
        }
        let silent = self.contact.silent_ms();
        let stale = self.election_timers.stale_ms();
        if self.current_leader().is_some() {
            0
        } else {
            silent.saturating_sub(stale)
        }
    }

    /// The leader as this node knows it, waiting up to `leader_wait_ms` for an election,
    /// unless this node has been without a leader for longer than that already (it is cut
    /// off, or elections keep failing): then it answers at once.
    async fn leader(&self) -> Result<NodeId> {
        if self.current_leader().is_none() && self.leaderless_ms() > self.timeouts.leader_wait_ms {
            return Err(Error::NoLeader);
        }
        let mut metrics = self.raft.metrics();
        let wait = Duration::from_millis(self.timeouts.leader_wait_ms);
        let known = tokio::time::timeout(wait, async {
            loop {
                metrics.borrow_and_update();
                if let Some(leader) = self.current_leader() {
                    return Some(leader);
                }
                // Belief also returns with a heartbeat, which need not change the metrics.
                tokio::select! {
                    changed = metrics.changed() => if changed.is_err() { return None },
                    () = tokio::time::sleep(Duration::from_millis(BELIEF_POLL_MS)) => {}
                }
            }
        })
        .await;
        known.ok().flatten().ok_or(Error::NoLeader)
    }

    /// Proposes a command through the leader, wherever it is.
    pub async fn write(&self, command: Command) -> Result<Served<Outcome>> {
        let leader = self.leader().await?;
        if leader == self.id {
            match self.write_local(command.clone()).await {
                Err(Error::NotLeader {
                    leader: Some(other),
                }) if other != self.id => self.forward_write(other, command).await,
                other => other.map(|value| Served {
                    value,
                    served_by: self.id,
                }),
            }
        } else {
            self.forward_write(leader, command).await
        }
    }

    /// Proposes on this node, which must be the leader. Used by the forward handler too.
    pub async fn write_local(&self, command: Command) -> Result<Outcome> {
        if self.stepping_down.load(Ordering::Relaxed) {
            return Err(Error::NoLeader);
        }
        let silence_ms = self.raft.metrics().borrow().millis_since_quorum_ack;
        if silence_ms.is_some_and(|ms| ms > self.timeouts.quorum_silence_ms_max) {
            return Err(Error::NoLeader);
        }
        let wait = Duration::from_millis(self.timeouts.write_timeout_ms);
        match tokio::time::timeout(wait, self.proposer.propose(command)).await {
            Ok(result) => result,
            Err(_) => Err(Error::OutcomeUnknown(
                "not committed within the write timeout".into(),
            )),
        }
    }

    async fn forward_write(&self, leader: NodeId, command: Command) -> Result<Served<Outcome>> {
        match self
            .forward(leader, ForwardRequest::Write(command), true)
            .await?
        {
            ForwardReply::Write(value) => Ok(Served {
                value,
                served_by: leader,
            }),
            ForwardReply::Read(_) | ForwardReply::Membership(_) => Err(Error::OutcomeUnknown(
                "leader answered a write with a read".into(),
            )),
        }
    }

    /// Reads the ledger at the requested consistency.
    pub async fn read(
        &self,
        request: ReadRequest,
        consistency: Consistency,
    ) -> Result<Served<ReadReply>> {
        if consistency == Consistency::Local {
            return Ok(Served {
                value: self.read_state(&request)?,
                served_by: self.id,
            });
        }
        let leader = self.leader().await?;
        if leader == self.id {
            return Ok(Served {
                value: self.read_linearizable(&request).await?,
                served_by: self.id,
            });
        }
        match self
            .forward(leader, ForwardRequest::Read(request), false)
            .await?
        {
            ForwardReply::Read(value) => Ok(Served {
                value,
                served_by: leader,
            }),
            ForwardReply::Write(_) | ForwardReply::Membership(_) => Err(Error::NoLeader),
        }
    }

    /// ReadIndex on this node: confirm leadership with a quorum, wait until applied, read.
    pub async fn read_linearizable(&self, request: &ReadRequest) -> Result<ReadReply> {
        // The ReadIndex round waits on a quorum of peers: bounded like every such wait.
        let wait = Duration::from_millis(self.timeouts.write_timeout_ms);
        tokio::time::timeout(wait, self.raft.ensure_linearizable())
            .await
            .map_err(|_| Error::NoLeader)?
            .map_err(|error| match error {
                RaftError::APIError(CheckIsLeaderError::ForwardToLeader(forward)) => {
                    Error::NotLeader {
                        leader: forward.leader_id,
                    }
                }
                RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_)) => Error::NoLeader,
                RaftError::Fatal(fatal) => Error::Fatal(fatal.to_string()),
            })?;
        self.read_state(request)
    }

    fn read_state(&self, request: &ReadRequest) -> Result<ReadReply> {
        let reader = &self.reader;
        Ok(match request {
            ReadRequest::Accounts(ids) => {
                let read = reader.accounts(ids)?;
                ReadReply {
                    value: ReadValue::Accounts(read.value),
                    applied_index: read.applied_index,
                }
            }
            ReadRequest::Transfer(id) => {
                let read = reader.transfer(id)?;
                ReadReply {
                    value: ReadValue::Transfer(read.value),
                    applied_index: read.applied_index,
                }
            }
            ReadRequest::History {
                account_id,
                before,
                limit,
            } => {
                let read = reader.history(account_id, *before, *limit)?;
                ReadReply {
                    value: ReadValue::History(read.value.map(|page| HistoryValue {
                        transfers: page.transfers,
                        next_before: page.next_before,
                    })),
                    applied_index: read.applied_index,
                }
            }
        })
    }

    /// Makes a membership change through the leader, wherever it is.
    pub async fn change_membership(
        &self,
        change: crate::membership::MembershipChange,
    ) -> Result<Served<crate::membership::MembershipView>> {
        let leader = self.leader().await?;
        if leader == self.id {
            let view = self.change_membership_local(change).await?;
            return Ok(Served {
                value: view,
                served_by: self.id,
            });
        }
        match self
            .forward(leader, ForwardRequest::Membership(change), true)
            .await?
        {
            ForwardReply::Membership(view) => Ok(Served {
                value: view,
                served_by: leader,
            }),
            _ => Err(Error::OutcomeUnknown(
                "leader answered a membership change with something else".into(),
            )),
        }
    }

    /// Serves a request another node forwarded here. Never forwards again: one hop only.
    pub async fn serve_forwarded(&self, request: ForwardRequest) -> ForwardResult {
        match request {
            ForwardRequest::Membership(change) => self
                .change_membership_local(change)
                .await
                .map(ForwardReply::Membership),
            ForwardRequest::Write(command) => {
                self.write_local(command).await.map(ForwardReply::Write)
            }
            ForwardRequest::Read(read) => {
                self.read_linearizable(&read).await.map(ForwardReply::Read)
            }
        }
    }

    /// Forwards to `leader`, counted by kind and outcome.
    async fn forward(
        &self,
        leader: NodeId,
        request: ForwardRequest,
        is_write: bool,
    ) -> Result<ForwardReply> {
        let kind = match &request {
            ForwardRequest::Write(_) => "write",
            ForwardRequest::Read(_) => "read",
            ForwardRequest::Membership(_) => "membership",
        };
        let result = self.forward_once(leader, request, is_write).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(Error::NoLeader) => "no_leader",
            Err(Error::NotLeader { .. }) => "not_leader",
            Err(Error::OutcomeUnknown(_)) => "outcome_unknown",
            Err(Error::Refused(_)) => "refused",
            Err(Error::Overloaded) => "overloaded",
            Err(Error::Storage(_)) => "storage_error",
            Err(Error::Fatal(_)) => "fatal",
        };
        self.metrics
            .forwarded_requests_total
            .with_label_values(&[kind, outcome])
            .inc();
        result
    }

    async fn forward_once(
        &self,
        leader: NodeId,
        request: ForwardRequest,
        is_write: bool,
    ) -> Result<ForwardReply> {
        let node = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&leader)
            .cloned();
        let node = node.ok_or(Error::NoLeader)?;
        let channel = self
            .peers
            .channel(leader, &node.rpc_addr)
            .map_err(|_| Error::NoLeader)?;
        // The leader bounds its own wait by the write timeout; allow the hop on top.
        let timeout = Duration::from_millis(self.timeouts.write_timeout_ms + 1_000);
        let forwarded = call(
            channel,
            self.peers.identity(),
            Method::Forward,
            &request,
            timeout,
        );
        // Stop waiting as soon as this node stops believing in that leader (it heard of a
        // newer term, or its election timer fired): a cut-off leader would hold the request
        // for the whole timeout.
        let answer: ForwardResult = tokio::select! {
            answer = forwarded => answer.map_err(|error| match error {
                CallError::Unreachable(_) => Error::NoLeader,
                CallError::Failed(text) if is_write => Error::OutcomeUnknown(text),
                CallError::Failed(_) => Error::NoLeader,
            })?,
            () = self.leader_lost(leader) => {
                return Err(if is_write {
                    Error::OutcomeUnknown(format!("leader {leader} was lost while the request was in flight"))
                } else {
                    Error::NoLeader
                });
            }
        };
        answer.map_err(|error| match error {
            // The leader moved on; one hop only, the client resends (idempotently).
            Error::NotLeader { .. } => Error::NoLeader,
            other => other,
        })
    }

    /// Completes once this node no longer believes in `leader`.
    async fn leader_lost(&self, leader: NodeId) {
        let mut metrics = self.raft.metrics();
        loop {
            metrics.borrow_and_update();
            if self.current_leader() != Some(leader) {
                return;
            }
            tokio::select! {
                changed = metrics.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(Duration::from_millis(BELIEF_POLL_MS)) => {}
            }
        }
    }

    /// Why this node cannot serve any more, if it cannot: openraft's core or its state
    /// machine task stopped (a storage error or a panic). Liveness reports it.
    pub fn fatal(&self) -> Option<String> {
        match &self.raft.metrics().borrow().running_state {
            Ok(()) => None,
            Err(fatal) => Some(fatal.to_string()),
        }
    }

    pub async fn status(&self) -> StatusReply {
        let initialized = self.raft.is_initialized().await.unwrap_or(false);
        StatusReply {
            node_id: self.id,
            initialized,
            leader: self.current_leader(),
            cluster_id: self.peers.identity().cluster_id(),
        }
    }
}
