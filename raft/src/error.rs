//! The raft crate's one error type. It crosses the wire (a leader's answer to a forwarded
//! request), so it is serde; the API maps each variant to one HTTP status in one place.

use serde::{Deserialize, Serialize};
use storage::NodeId;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Error {
    /// No leader is known or reachable; nothing was proposed, a resend is safe.
    #[error("no leader is available")]
    NoLeader,
    /// The node asked is not the leader; nothing was proposed.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    /// The request may or may not have been committed; resend with the same id to learn.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// Refused as asked (a membership change that cannot be made); nothing changed.
    #[error("refused: {0}")]
    Refused(String),
    /// The proposal queue is full; nothing was proposed.
    #[error("too many requests in flight")]
    Overloaded,
    #[error("storage: {0}")]
    Storage(String),
    #[error("raft stopped: {0}")]
    Fatal(String),
}

impl From<storage::Error> for Error {
    fn from(error: storage::Error) -> Error {
        Error::Storage(error.to_string())
    }
}
