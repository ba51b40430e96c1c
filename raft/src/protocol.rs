//! What nodes say to each other beyond Raft itself: forwarded client requests and status.

use serde::{Deserialize, Serialize};
use storage::domain::{Account, AccountId, Command, Outcome, TransactionId, Transfer};
use storage::NodeId;

use crate::error::Error;

/// A read a client can ask of the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ReadRequest {
    Accounts(Vec<AccountId>),
    Transfer(TransactionId),
    History {
        account_id: AccountId,
        before: Option<u64>,
        limit: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ReadValue {
    Accounts(Vec<Option<Account>>),
    Transfer(Option<Transfer>),
    History {
        transfers: Vec<Transfer>,
        next_before: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadReply {
    pub value: ReadValue,
    /// The applied log index the value reflects.
    pub applied_index: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ForwardRequest {
    Write(Command),
    Read(ReadRequest),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ForwardReply {
    Write(Outcome),
    Read(ReadReply),
}

pub type ForwardResult = Result<ForwardReply, Error>;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReply {
    pub node_id: NodeId,
    pub initialized: bool,
    pub leader: Option<NodeId>,
}
