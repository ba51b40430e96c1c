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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

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
}

impl Identity {
    pub fn load(db: Arc<DB>, fresh_storage: bool) -> Result<Identity> {
        let cluster_id: Option<String> = get(&db, CF_RAFT, keys::RAFT_CLUSTER_ID)?;
        Ok(Identity {
            db,
            cluster_id: RwLock::new(cluster_id),
            rejoining: AtomicBool::new(fresh_storage),
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

    pub(crate) fn caught_up(&self) {
        if self.rejoining.swap(false, Ordering::Relaxed) {
            tracing::info!("caught up with the leader: voting and campaigning again");
        }
    }
}
