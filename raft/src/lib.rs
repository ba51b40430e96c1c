//! `raft` turns one node's storage into a replica of the cluster: openraft's type config
//! (re-exported from `storage`), the synced RocksDB log store, the tonic transport, the
//! leader's batcher and the [`Replica`] facade that forwards to the leader.
//!
//! Consensus knows nothing about accounts: it moves opaque `Batch`es into the state
//! machine and their outcomes back to whoever proposed them.

pub mod bootstrap;
pub mod elector;
pub mod error;
pub mod identity;
pub mod log_store;
pub mod membership;
pub mod metrics;
pub mod network;
pub mod proposer;
pub mod protocol;
pub mod replica;
pub mod service;

pub mod pb {
    tonic::include_proto!("ledger.raft");
}

pub use error::{Error, Result};
pub use replica::{Consistency, Replica, Served};
pub use storage::{LedgerNode, NodeId, TypeConfig};

pub type Raft = openraft::Raft<TypeConfig>;
