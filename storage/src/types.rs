//! The openraft type configuration. It lives beside the state machine because the state
//! machine implements openraft's traits for it; the `raft` crate re-exports it.
//!
//! Snapshot data is a file ([`crate::snapshot::SnapshotData`]), never a buffer: a snapshot
//! is as large as the ledger, and is built, sent, received and installed as a stream.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::{Batch, BatchResponse};

pub type NodeId = u64;

/// How peers reach a node: its Raft gRPC address and its REST address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerNode {
    pub rpc_addr: String,
    pub api_addr: String,
}

impl fmt::Display for LedgerNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rpc={} api={}", self.rpc_addr, self.api_addr)
    }
}

openraft::declare_raft_types!(
    /// Ledger's Raft types: entries carry command batches, responses carry their outcomes.
    pub TypeConfig:
        D = Batch,
        R = BatchResponse,
        NodeId = NodeId,
        Node = LedgerNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = crate::snapshot::SnapshotData,
);

pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, LedgerNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, LedgerNode>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type RaftStorageError = openraft::StorageError<NodeId>;
