//! Which cluster a node belongs to, and whether it may vote yet.
//!
//! **Cluster id.** The node that bootstraps a cluster draws a random id and stores it; every
//! peer call carries the sender's id in the `x-ledger-cluster` metadata and every receiver
//! with an id refuses a different one (`FAILED_PRECONDITION`), so nodes of two clusters
//! never mix their logs. A node without an id (fresh storage) adopts the id of the first
//! leader whose entries or snapshot it accepts, and keeps it.
//!
//! **A node that lost its disk.** Raft's safety rests on a node never voting twice in one
//! term; a node whose storage was wiped has forgotten its votes. So a node that starts on
//! fresh storage does not campaign, and grants no vote to a candidate whose log holds more
//! than the bootstrap membership (index 0), until it has followed a leader and applied
//! everything that leader had committed. A brand-new cluster still forms (its first
//! candidates hold only index 0); a wiped member of a running cluster rejoins through the
//! leader's replication, never through a vote it cannot remember. The one window left is a
//! disk lost during the very first election, before anything but the membership existed.
//!
//! **A node receiving a snapshot.** A node that needs a snapshot is far behind: it cannot
//! win an election (its log is shorter than a majority's), and a campaign would only raise
//! the term, and with it unseat the healthy leader that is catching it up. So while a
//! snapshot chunk is being handled, or was within the last `quiet_ms`,
//! [`Identity::receiving_snapshot`] says so, and a campaign decision must wait. The gate is
//! sound: Raft's safety never depends on a node campaigning; the node still answers votes,
//! so the others elect a leader without it; and it closes by itself `quiet_ms` after the
//! last chunk, so a leader that dies mid-stream frees it to campaign one quiet period later.
//! It deliberately does not touch openraft's own election timer
//! (`runtime_config().elect`): elections are started by `elector` after a pre-vote, with
//! that timer off for good, and switching it back on after a snapshot would bypass the
//! pre-vote.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use rocksdb::DB;
use storage::db::{cf, encode, get};
use storage::keys::{self, CF_RAFT};
use storage::state_machine::synced;
use tonic::metadata::MetadataValue;
use tonic::Status;

use crate::error::{Error, Result};

/// The metadata key that carries the sender's cluster id on every peer call.
pub const CLUSTER_ID_HEADER: &str = "x-ledger-cluster";
/// Length of a generated cluster id (hex digits); an id from a peer may be no longer.
const CLUSTER_ID_LENGTH_MAX: usize = 64;

pub struct Identity {
    db: Arc<DB>,
    cluster_id: RwLock<Option<String>>,
    /// Started on fresh storage and not yet caught up with a leader: no votes for
    /// candidates past the bootstrap entry, no campaigning.
    rejoining: AtomicBool,
    /// Snapshot chunks being handled now, and when the last one ended (ms since `origin`).
    snapshot_chunks_in_flight: AtomicU64,
    snapshot_chunk_ended_ms: AtomicU64,
    origin: Instant,
}

/// Marks one snapshot chunk as being handled, until dropped (see
/// [`Identity::receiving_snapshot`]).
pub struct SnapshotChunk<'a> {
    identity: &'a Identity,
}

impl Drop for SnapshotChunk<'_> {
    fn drop(&mut self) {
        let identity = self.identity;
        identity
            .snapshot_chunk_ended_ms
            .fetch_max(identity.elapsed_ms(), Ordering::Relaxed);
        let before = identity
            .snapshot_chunks_in_flight
            .fetch_sub(1, Ordering::Relaxed);
        assert!(before > 0, "a chunk ends once");
    }
}

impl Identity {
    pub fn load(db: Arc<DB>, fresh_storage: bool) -> Result<Identity> {
        let cluster_id: Option<String> = get(&db, CF_RAFT, keys::RAFT_CLUSTER_ID)?;
        Ok(Identity {
            db,
            cluster_id: RwLock::new(cluster_id),
            rejoining: AtomicBool::new(fresh_storage),
            snapshot_chunks_in_flight: AtomicU64::new(0),
            snapshot_chunk_ended_ms: AtomicU64::new(0),
            origin: Instant::now(),
        })
    }

    pub fn cluster_id(&self) -> Option<String> {
        self.cluster_id.read().expect("not poisoned").clone()
    }

    /// A new random id for a cluster being bootstrapped.
    pub fn generate() -> String {
        format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
    }

    /// Stores `id` as this node's cluster id (synced) if it has none; refuses another.
    pub fn adopt(&self, id: &str) -> Result<()> {
        let mut current = self.cluster_id.write().expect("not poisoned");
        match current.as_deref() {
            Some(existing) if existing == id => Ok(()),
            Some(existing) => Err(Error::Fatal(format!(
                "this node belongs to cluster {existing}, not {id}"
            ))),
            None => {
                self.db
                    .put_cf_opt(
                        cf(&self.db, CF_RAFT),
                        keys::RAFT_CLUSTER_ID,
                        encode(&id),
                        &synced(),
                    )
                    .map_err(|e| Error::Storage(e.to_string()))?;
                tracing::info!(cluster_id = id, "joined cluster");
                *current = Some(id.to_owned());
                Ok(())
            }
        }
    }

    /// Checks the cluster id a peer sent. Returns it when this node has none yet, so
    /// the caller may adopt it once it accepts the peer's entries.
    #[allow(clippy::result_large_err)]
    pub fn check<T>(&self, request: &tonic::Request<T>) -> Result<Option<String>, Status> {
        let theirs = match request.metadata().get(CLUSTER_ID_HEADER) {
            None => None,
            Some(value) => {
                let text = value
                    .to_str()
                    .ok()
                    .filter(|t| !t.is_empty() && t.len() <= CLUSTER_ID_LENGTH_MAX)
                    .ok_or_else(|| Status::invalid_argument("malformed cluster id"))?;
                Some(text.to_owned())
            }
        };
        match (self.cluster_id(), theirs) {
            (Some(ours), Some(theirs)) if ours != theirs => Err(Status::failed_precondition(
                format!("this node belongs to cluster {ours}, the caller to {theirs}"),
            )),
            (None, theirs) => Ok(theirs),
            _ => Ok(None),
        }
    }

    /// Adds this node's cluster id to an outgoing call.
    pub fn stamp<T>(&self, request: &mut tonic::Request<T>) {
        if let Some(id) = self.cluster_id() {
            if let Ok(value) = MetadataValue::try_from(id.as_str()) {
                request.metadata_mut().insert(CLUSTER_ID_HEADER, value);
            }
        }
    }

    pub fn rejoining(&self) -> bool {
        self.rejoining.load(Ordering::Relaxed)
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Marks a snapshot chunk as being handled until the returned guard is dropped: the
    /// last chunk's guard covers verifying and installing the whole snapshot.
    pub(crate) fn snapshot_chunk(&self) -> SnapshotChunk<'_> {
        self.snapshot_chunks_in_flight
            .fetch_add(1, Ordering::Relaxed);
        SnapshotChunk { identity: self }
    }

    /// Whether this node is receiving a snapshot: a chunk is being handled, or one ended
    /// less than `quiet_ms` ago. A leader streams chunks back to back, so a longer silence
    /// means the stream stopped. While this holds, the node must not campaign.
    pub fn receiving_snapshot(&self, quiet_ms: u64) -> bool {
        if self.snapshot_chunks_in_flight.load(Ordering::Relaxed) > 0 {
            return true;
        }
        let ended_ms = self.snapshot_chunk_ended_ms.load(Ordering::Relaxed);
        ended_ms > 0 && self.elapsed_ms().saturating_sub(ended_ms) < quiet_ms
    }

    pub(crate) fn caught_up(&self) {
        if self.rejoining.swap(false, Ordering::Relaxed) {
            tracing::info!("caught up with the leader: voting and campaigning again");
        }
    }
}
