//! `storage` owns the ledger's domain and everything that makes it durable on one node:
//! the types (`domain`), the pure deterministic apply logic (`apply`), the on-disk key
//! layout (`keys`), the RocksDB state machine openraft drives (`state_machine`), snapshot
//! framing (`snapshot`) and consistent reads for the API (`reader`).
//!
//! It knows nothing about networking or consensus beyond openraft's storage traits: the
//! state machine applies committed entries; whoever proposed them is not its concern.

pub mod apply;
pub mod changes;
pub mod db;
pub mod domain;
pub mod error;
pub mod keys;
pub mod money;
pub mod reader;
pub mod snapshot;
pub mod state_machine;
pub mod types;

pub use error::{Error, Result};
pub use types::{LedgerNode, NodeId, TypeConfig};
