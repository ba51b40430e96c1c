//! Changing who is in the cluster, on the leader: add a node as a learner, wait for it to
//! catch up, promote it to voter; remove a node; step down before a planned stop.
//!
//! A replaced pod with an empty disk comes back through this path or through replication
//! (see `identity`), never by voting with a vote it lost. Every change goes through Raft
//! (openraft's joint consensus), so it is as durable as a transfer; every wait on it is
//! bounded by `MEMBERSHIP_TIMEOUT_MS`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::ChangeMembers;
use serde::{Deserialize, Serialize};
use storage::{LedgerNode, NodeId};

use crate::error::{Error, Result};
use crate::replica::Replica;

/// Longest wait for a learner to catch up and a membership change to commit.
pub const MEMBERSHIP_TIMEOUT_MS: u64 = 120_000;
/// Longest wait for another node to take over after this leader steps down.
pub const STEP_DOWN_TIMEOUT_MS: u64 = 10_000;

/// A membership change a client asks for; forwarded to the leader like a write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MembershipChange {
    /// Add as a learner, wait until it has caught up, then (if `voter`) promote it.
    Add {
        node_id: NodeId,
        node: LedgerNode,
        voter: bool,
    },
    /// Remove a voter or learner.
    Remove { node_id: NodeId },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub node_id: NodeId,
    pub rpc_addr: String,
    pub api_addr: String,
    pub voter: bool,
    /// The last log index the leader knows this node holds (leader's view only).
    pub matched_index: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MembershipView {
    pub leader_id: Option<NodeId>,
    pub log_index: Option<u64>,
    pub members: Vec<Member>,
}

impl Replica {
    /// The membership as this node knows it.
    pub fn membership(&self) -> MembershipView {
        let metrics = self.raft.metrics().borrow().clone();
        let stored = &metrics.membership_config;
        let membership = stored.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let matched: BTreeMap<NodeId, Option<u64>> = metrics
            .replication
            .as_ref()
            .map(|replication| {
                replication
                    .iter()
                    .map(|(id, log_id)| (*id, log_id.map(|l| l.index)))
                    .collect()
            })
            .unwrap_or_default();
        MembershipView {
            leader_id: self.current_leader(),
            log_index: stored.log_id().map(|id| id.index),
            members: membership
                .nodes()
                .map(|(id, node)| Member {
                    node_id: *id,
                    rpc_addr: node.rpc_addr.clone(),
                    api_addr: node.api_addr.clone(),
                    voter: voters.contains(id),
                    matched_index: matched.get(id).copied().flatten(),
                })
                .collect(),
        }
    }

    /// Applies a membership change on this node, which must be the leader.
    pub async fn change_membership_local(
        &self,
        change: MembershipChange,
    ) -> Result<MembershipView> {
        let wait = Duration::from_millis(MEMBERSHIP_TIMEOUT_MS);
        let work = async {
            match change {
                MembershipChange::Add {
                    node_id,
                    node,
                    voter,
                } => {
                    let view = self.membership();
                    if let Some(existing) = view.members.iter().find(|m| m.node_id == node_id) {
                        if existing.rpc_addr != node.rpc_addr || existing.api_addr != node.api_addr
                        {
                            return Err(Error::Refused(format!(
                                "node {node_id} is a member with other addresses; remove it first"
                            )));
                        }
                    }
                    // Blocking: returns once the learner has caught up with the log.
                    self.raft
                        .add_learner(node_id, node, true)
                        .await
                        .map_err(write_error)?;
                    if voter {
                        self.raft
                            .change_membership(
                                ChangeMembers::AddVoterIds(BTreeSet::from([node_id])),
                                false,
                            )
                            .await
                            .map_err(write_error)?;
                    }
                    Ok(())
                }
                MembershipChange::Remove { node_id } => {
                    let view = self.membership();
                    let Some(member) = view.members.iter().find(|m| m.node_id == node_id) else {
                        return Err(Error::Refused(format!("node {node_id} is not a member")));
                    };
                    let voters = view.members.iter().filter(|m| m.voter).count();
                    if member.voter && voters <= 1 {
                        return Err(Error::Refused("the last voter cannot be removed".into()));
                    }
                    let change = if member.voter {
                        ChangeMembers::RemoveVoters(BTreeSet::from([node_id]))
                    } else {
                        ChangeMembers::RemoveNodes(BTreeSet::from([node_id]))
                    };
                    // `retain = false`: a removed voter leaves the cluster, not a learner.
                    self.raft
                        .change_membership(change, false)
                        .await
                        .map_err(write_error)?;
                    Ok(())
                }
            }
        };
        match tokio::time::timeout(wait, work).await {
            Ok(result) => result.map(|()| self.membership()),
            Err(_) => Err(Error::OutcomeUnknown(
                "membership change not finished within its timeout".into(),
            )),
        }
    }

    /// Hands leadership over before a planned stop: refuses new proposals, stops
    /// heartbeats and grants pre-votes, so a follower takes over after one lease; waits
    /// (bounded) until one has. A no-op on a follower.
    pub async fn step_down(&self) -> Result<Option<NodeId>> {
        if self.current_leader() != Some(self.id) {
            return Ok(self.current_leader());
        }
        let voters = self.membership().members.iter().filter(|m| m.voter).count();
        if voters <= 1 {
            return Err(Error::Refused(
                "a single voter has nobody to hand over to".into(),
            ));
        }
        self.stepping_down.store(true, Ordering::Relaxed);
        self.raft.runtime_config().heartbeat(false);
        let mut metrics = self.raft.metrics();
        let lease_ms = self.election_timers.stale_ms();
        let handed_over =
            tokio::time::timeout(Duration::from_millis(STEP_DOWN_TIMEOUT_MS), async {
                loop {
                    let (leader, quorum_silence_ms) = {
                        let m = metrics.borrow_and_update();
                        (m.current_leader, m.millis_since_quorum_ack)
                    };
                    if leader.is_some_and(|leader| leader != self.id) {
                        return leader;
                    }
                    // Nobody is left to take over (the whole cluster is stopping): stop waiting.
                    if quorum_silence_ms.is_some_and(|ms| ms > 3 * lease_ms) {
                        return None;
                    }
                    tokio::select! {
                        changed = metrics.changed() => if changed.is_err() { return None },
                        () = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                }
            })
            .await;
        self.raft.runtime_config().heartbeat(true);
        self.stepping_down.store(false, Ordering::Relaxed);
        match handed_over {
            Ok(Some(leader)) => Ok(Some(leader)),
            _ => Err(Error::OutcomeUnknown(
                "no other node took over in time".into(),
            )),
        }
    }
}

fn write_error(error: RaftError<NodeId, ClientWriteError<NodeId, LedgerNode>>) -> Error {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => Error::NotLeader {
            leader: forward.leader_id,
        },
        RaftError::APIError(ClientWriteError::ChangeMembershipError(
            ChangeMembershipError::InProgress(progress),
        )) => Error::Refused(format!(
            "another membership change is in progress: {progress}"
        )),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(other)) => {
            Error::Refused(other.to_string())
        }
        RaftError::Fatal(fatal) => Error::Fatal(fatal.to_string()),
    }
}
