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
    /// `None`: the id never belonged to an account.
    History(Option<HistoryValue>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryValue {
    pub transfers: Vec<Transfer>,
    pub next_before: Option<u64>,
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
    Membership(crate::membership::MembershipChange),
}

/// Most accounts one forwarded read may name (the REST limit is lower).
pub const READ_ACCOUNTS_MAX: usize = 10_000;

impl ForwardRequest {
    /// What decoding cannot check: bounds on a read's size.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            ForwardRequest::Read(ReadRequest::Accounts(ids))
                if ids.is_empty() || ids.len() > READ_ACCOUNTS_MAX =>
            {
                Err(format!(
                    "a read names 1 to {READ_ACCOUNTS_MAX} accounts, not {}",
                    ids.len()
                ))
            }
            ForwardRequest::Read(ReadRequest::History { limit, .. })
                if *limit == 0 || *limit > storage::reader::HISTORY_PAGE_MAX =>
            {
                Err(format!(
                    "a history page holds 1 to {} transfers",
                    storage::reader::HISTORY_PAGE_MAX
                ))
            }
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ForwardReply {
    Write(Outcome),
    Read(ReadReply),
    Membership(crate::membership::MembershipView),
}

pub type ForwardResult = Result<ForwardReply, Error>;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReply {
    pub node_id: NodeId,
    pub initialized: bool,
    pub leader: Option<NodeId>,
    #[serde(default)]
    pub cluster_id: Option<String>,
}
