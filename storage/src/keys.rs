//! The whole on-disk layout of a node, in one place (as TiKV's `keys` crate does). Nobody
//! else builds a key by hand.
//!
//! One RocksDB per node holds both the Raft log and the ledger state, in column families
//! that share one write-ahead log: a synced log append therefore also makes every earlier
//! state write durable, in order.
//!
//! | column family | key | value (JSON) |
//! |---|---|---|
//! | `log` | log index, u64 big-endian | openraft `Entry` |
//! | `raft` | `vote`, `committed`, `purged` | openraft `Vote` / `LogId` |
//! | `raft` | `cluster_id` | the cluster's id (string) |
//! | `state` | `a` + account id | [`Account`](crate::domain::Account) |
//! | `state` | `r` + account id | retired (deleted) [`Account`](crate::domain::Account) |
//! | `state` | `x` + transaction id | [`Transfer`](crate::domain::Transfer) |
//! | `state` | `h` + account id + `0x00` + sequence (u64 BE) | transaction id |
//! | `state` | `j` + sequence (u64 BE) | transaction id |
//! | `state` | `k` + idempotency key | [`IdempotencyRecord`](crate::domain::IdempotencyRecord) |
//! | `state` | `m` + name | metadata: applied log id, membership, next sequence, total |
//!
//! Snapshots are files beside the database (see `snapshot::SnapshotStore`).
//!
//! Values are JSON: maintained, self-describing and evolvable (new optional fields are read
//! by old code as absent, and by new code from old data through serde defaults). Ids may not
//! contain `0x00` (see `domain`), so the history key's separator is unambiguous, and
//! big-endian numbers sort in numeric order.

use crate::domain::{AccountId, IdempotencyKey, TransactionId};

pub const CF_LOG: &str = "log";
pub const CF_RAFT: &str = "raft";
pub const CF_STATE: &str = "state";
pub const COLUMN_FAMILIES: [&str; 3] = [CF_LOG, CF_RAFT, CF_STATE];

pub const RAFT_VOTE: &[u8] = b"vote";
pub const RAFT_COMMITTED: &[u8] = b"committed";
pub const RAFT_PURGED: &[u8] = b"purged";
/// The id of the cluster this node belongs to, written once (at bootstrap, or when a
/// fresh node first accepts entries from a leader) and checked on every peer call.
pub const RAFT_CLUSTER_ID: &[u8] = b"cluster_id";

pub const META_APPLIED: &[u8] = b"mapplied";
pub const META_MEMBERSHIP: &[u8] = b"mmembership";
pub const META_NEXT_SEQUENCE: &[u8] = b"mnext_sequence";
pub const META_TOTAL_BALANCE: &[u8] = b"mtotal_balance";

const PREFIX_ACCOUNT: u8 = b'a';
const PREFIX_RETIRED: u8 = b'r';
const PREFIX_TRANSFER: u8 = b'x';
const PREFIX_HISTORY: u8 = b'h';
const PREFIX_JOURNAL: u8 = b'j';
const PREFIX_IDEMPOTENCY: u8 = b'k';
const HISTORY_SEPARATOR: u8 = 0x00;

pub fn log_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

pub fn log_index(key: &[u8]) -> u64 {
    let bytes: [u8; 8] = key.try_into().expect("log keys are 8 bytes");
    u64::from_be_bytes(bytes)
}

fn prefixed(prefix: u8, body: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + body.len());
    key.push(prefix);
    key.extend_from_slice(body);
    key
}

pub fn account(id: &AccountId) -> Vec<u8> {
    prefixed(PREFIX_ACCOUNT, id.as_str().as_bytes())
}

pub fn retired_account(id: &AccountId) -> Vec<u8> {
    prefixed(PREFIX_RETIRED, id.as_str().as_bytes())
}

pub fn transfer(id: &TransactionId) -> Vec<u8> {
    prefixed(PREFIX_TRANSFER, id.as_str().as_bytes())
}

/// All history keys of one account share this prefix.
pub fn history_prefix(id: &AccountId) -> Vec<u8> {
    let mut key = prefixed(PREFIX_HISTORY, id.as_str().as_bytes());
    key.push(HISTORY_SEPARATOR);
    key
}

pub fn history(id: &AccountId, sequence: u64) -> Vec<u8> {
    let mut key = history_prefix(id);
    key.extend_from_slice(&sequence.to_be_bytes());
    key
}

/// The sequence number at the end of a history key.
pub fn history_sequence(key: &[u8]) -> u64 {
    let tail: [u8; 8] = key[key.len() - 8..].try_into().expect("8-byte suffix");
    u64::from_be_bytes(tail)
}

pub fn journal(sequence: u64) -> Vec<u8> {
    prefixed(PREFIX_JOURNAL, &sequence.to_be_bytes())
}

pub fn idempotency(key: &IdempotencyKey) -> Vec<u8> {
    prefixed(PREFIX_IDEMPOTENCY, key.as_str().as_bytes())
}

pub fn account_prefix() -> [u8; 1] {
    [PREFIX_ACCOUNT]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keys_sort_by_sequence_within_an_account() {
        let a = AccountId::parse("A").unwrap();
        let ab = AccountId::parse("AB").unwrap();
        assert!(history(&a, 1) < history(&a, 2));
        assert!(history(&a, 255) < history(&a, 256));
        // "A" + separator sorts before "AB": one account's range never holds another's.
        assert!(history(&a, u64::MAX) < history(&ab, 0));
        assert_eq!(history_sequence(&history(&a, 777)), 777);
    }

    #[test]
    fn log_keys_round_trip_and_sort() {
        assert_eq!(log_index(&log_key(42)), 42);
        assert!(log_key(255) < log_key(256));
    }
}
