//! The RocksDB ledger state machine: openraft's `RaftStateMachine` over the `state` column
//! family.
//!
//! `apply` runs every entry of a call through the pure logic in [`crate::apply`] against an
//! in-memory overlay, then writes all results and `last_applied` in one `WriteBatch`. The
//! batch is not synced on its own: the Raft log is already durable, the WAL is shared, and
//! the next synced log write orders it; after a crash openraft re-applies from the log.
//!
//! Snapshots (see `snapshot`) are streamed from a RocksDB snapshot into a file (no pause of
//! apply, no copy in memory); installing one verifies it as a stream, then replaces the
//! `state` family by one atomic SST ingestion. Opening the store first finishes an install a
//! crash cut short, so openraft never sees a state behind its purged log.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, StorageIOError};
use rocksdb::{WriteBatch, WriteOptions, DB};
use rust_decimal::Decimal;

use crate::apply::{apply_batch, LedgerState};
use crate::changes::{AccountChange, ChangeSink};
use crate::db::{cf, encode, get};
use crate::domain::{
    Account, AccountId, BatchResponse, IdempotencyKey, IdempotencyRecord, TransactionId, Transfer,
};
use crate::error::{Error, Result};
use crate::keys::{self, CF_STATE};
use crate::snapshot::{SnapshotData, SnapshotStore};
use crate::types::{
    Entry, LogId, RaftStorageError, Snapshot, SnapshotMeta, StoredMembership, TypeConfig,
};

/// Counters the node exposes about its state machine.
#[derive(Debug, Default)]
pub struct StateMachineStats {
    pub snapshots_built: AtomicU64,
    pub snapshots_installed: AtomicU64,
}

pub struct StateMachineStore {
    db: Arc<DB>,
    snapshots: Arc<SnapshotStore>,
    applied: Option<LogId>,
    membership: StoredMembership,
    stats: Arc<StateMachineStats>,
    /// Where changed accounts go after each applied batch (the read cache), if anywhere.
    changes: Option<ChangeSink>,
}

impl StateMachineStore {
    pub fn open(db: Arc<DB>, snapshot_dir: std::path::PathBuf) -> Result<StateMachineStore> {
        let snapshots = Arc::new(SnapshotStore::open(snapshot_dir)?);
        // Before anything reads the state: an install cut short by a crash is finished.
        snapshots.recover(&db)?;
        let applied = get(&db, CF_STATE, keys::META_APPLIED)?;
        let membership = get(&db, CF_STATE, keys::META_MEMBERSHIP)?.unwrap_or_default();
        Ok(StateMachineStore {
            db,
            snapshots,
            applied,
            membership,
            stats: Arc::default(),
            changes: None,
        })
    }

    /// Hands every changed account to `sink` after its batch is written (never blocking:
    /// see `changes`).
    pub fn set_change_sink(&mut self, sink: ChangeSink) {
        self.changes = Some(sink);
    }

    pub fn stats(&self) -> Arc<StateMachineStats> {
        self.stats.clone()
    }

    fn apply_entries(&mut self, entries: Vec<Entry>) -> Result<Vec<BatchResponse>> {
        let mut overlay = Overlay::new(&self.db, self.changes.is_some());
        let mut responses = Vec::with_capacity(entries.len());
        for entry in entries {
            // Monotonic apply: every entry once, in log order, never going back.
            if let Some(previous) = self.applied {
                assert!(
                    entry.log_id.index > previous.index,
                    "apply out of order: {} after {previous}",
                    entry.log_id
                );
            }
            let outcomes = match &entry.payload {
                EntryPayload::Blank => Vec::new(),
                EntryPayload::Normal(batch) => {
                    overlay.index = entry.log_id.index;
                    apply_batch(&mut overlay, batch, entry.log_id.index)?
                }
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), membership.clone());
                    Vec::new()
                }
            };
            self.applied = Some(entry.log_id);
            responses.push(BatchResponse { outcomes });
        }
        let changes = self.changes.as_ref().map(|_| overlay.take_changes());
        let mut batch = overlay.into_batch();
        let state = cf(&self.db, CF_STATE);
        batch.put_cf(state, keys::META_APPLIED, encode(&self.applied));
        batch.put_cf(state, keys::META_MEMBERSHIP, encode(&self.membership));
        self.db.write(batch)?;
        if let (Some(sink), Some(changes)) = (&self.changes, changes) {
            sink.offer(changes);
        }
        Ok(responses)
    }
}

pub fn synced() -> WriteOptions {
    let mut options = WriteOptions::default();
    options.set_sync(true);
    options
}

/// What one `apply` call has read and written so far, over the database.
struct Overlay<'a> {
    db: &'a DB,
    batch: WriteBatch,
    accounts: HashMap<AccountId, Option<Account>>,
    retired: HashSet<AccountId>,
    transfers: HashMap<TransactionId, Transfer>,
    idempotency: HashMap<IdempotencyKey, IdempotencyRecord>,
    next_sequence: Option<u64>,
    total: Option<Decimal>,
    /// The log index being applied, and the index of each account's last change: kept
    /// only when someone reads them (a change sink), so the write path pays nothing else.
    index: u64,
    changed: Option<HashMap<AccountId, u64>>,
}

impl<'a> Overlay<'a> {
    fn new(db: &'a DB, track_changes: bool) -> Overlay<'a> {
        Overlay {
            db,
            batch: WriteBatch::default(),
            accounts: HashMap::new(),
            retired: HashSet::new(),
            transfers: HashMap::new(),
            idempotency: HashMap::new(),
            next_sequence: None,
            total: None,
            index: 0,
            changed: track_changes.then(HashMap::new),
        }
    }

    fn note_change(&mut self, id: &AccountId) {
        if let Some(changed) = &mut self.changed {
            changed.insert(id.clone(), self.index);
        }
    }

    /// Each changed account's final state in this call, at the index of its last change.
    fn take_changes(&mut self) -> Vec<AccountChange> {
        self.changed
            .take()
            .unwrap_or_default()
            .into_iter()
            .map(|(account_id, index)| AccountChange {
                account: self.accounts.get(&account_id).cloned().flatten(),
                account_id,
                index,
            })
            .collect()
    }

    fn into_batch(mut self) -> WriteBatch {
        let state = cf(self.db, CF_STATE);
        if let Some(next) = self.next_sequence {
            self.batch
                .put_cf(state, keys::META_NEXT_SEQUENCE, encode(&next));
        }
        if let Some(total) = self.total {
            self.batch
                .put_cf(state, keys::META_TOTAL_BALANCE, encode(&total));
        }
        self.batch
    }
}

impl LedgerState for Overlay<'_> {
    type Error = Error;

    fn account(&mut self, id: &AccountId) -> Result<Option<Account>> {
        if let Some(account) = self.accounts.get(id) {
            return Ok(account.clone());
        }
        let account: Option<Account> = get(self.db, CF_STATE, &keys::account(id))?;
        if let Some(account) = &account {
            assert_eq!(&account.account_id, id);
        }
        self.accounts.insert(id.clone(), account.clone());
        Ok(account)
    }

    fn account_retired(&mut self, id: &AccountId) -> Result<bool> {
        if self.retired.contains(id) {
            return Ok(true);
        }
        Ok(self
            .db
            .get_pinned_cf(cf(self.db, CF_STATE), keys::retired_account(id))?
            .is_some())
    }

    fn transfer(&mut self, id: &TransactionId) -> Result<Option<Transfer>> {
        if let Some(transfer) = self.transfers.get(id) {
            return Ok(Some(transfer.clone()));
        }
        get(self.db, CF_STATE, &keys::transfer(id))
    }

    fn put_account(&mut self, account: &Account) {
        let state = cf(self.db, CF_STATE);
        self.batch
            .put_cf(state, keys::account(&account.account_id), encode(account));
        self.accounts
            .insert(account.account_id.clone(), Some(account.clone()));
        self.note_change(&account.account_id);
    }

    fn retire_account(&mut self, account: &Account) {
        assert!(account.balance.is_zero(), "only empty accounts are retired");
        let state = cf(self.db, CF_STATE);
        self.batch
            .delete_cf(state, keys::account(&account.account_id));
        self.batch.put_cf(
            state,
            keys::retired_account(&account.account_id),
            encode(account),
        );
        self.accounts.insert(account.account_id.clone(), None);
        self.retired.insert(account.account_id.clone());
        self.note_change(&account.account_id);
    }

    fn idempotency(&mut self, key: &IdempotencyKey) -> Result<Option<IdempotencyRecord>> {
        if let Some(record) = self.idempotency.get(key) {
            return Ok(Some(record.clone()));
        }
        get(self.db, CF_STATE, &keys::idempotency(key))
    }

    fn put_transfer(&mut self, transfer: &Transfer, history_of: &[&AccountId]) {
        let state = cf(self.db, CF_STATE);
        let request = &transfer.request;
        let id = request.transaction_id().as_str().as_bytes();
        self.batch.put_cf(
            state,
            keys::transfer(request.transaction_id()),
            encode(transfer),
        );
        for account in history_of {
            self.batch
                .put_cf(state, keys::history(account, transfer.sequence), id);
        }
        self.batch
            .put_cf(state, keys::journal(transfer.sequence), id);
        self.transfers
            .insert(request.transaction_id().clone(), transfer.clone());
    }

    fn put_idempotency(&mut self, key: &IdempotencyKey, record: &IdempotencyRecord) {
        let state = cf(self.db, CF_STATE);
        self.batch
            .put_cf(state, keys::idempotency(key), encode(record));
        self.idempotency.insert(key.clone(), record.clone());
    }

    fn next_sequence(&mut self) -> Result<u64> {
        let next = match self.next_sequence {
            Some(next) => next,
            None => get(self.db, CF_STATE, keys::META_NEXT_SEQUENCE)?.unwrap_or(1),
        };
        assert!(next >= 1, "sequences start at 1");
        self.next_sequence = Some(next + 1);
        Ok(next)
    }

    fn total_balance(&mut self) -> Result<Decimal> {
        match self.total {
            Some(total) => Ok(total),
            None => Ok(get(self.db, CF_STATE, keys::META_TOTAL_BALANCE)?.unwrap_or_default()),
        }
    }

    fn set_total_balance(&mut self, total: Decimal) {
        assert!(!total.is_sign_negative() || total.is_zero());
        self.total = Some(total);
    }
}

fn read_error(error: Error) -> RaftStorageError {
    StorageIOError::read_state_machine(&error).into()
}

fn write_error(error: Error) -> RaftStorageError {
    StorageIOError::write_state_machine(&error).into()
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership), RaftStorageError> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<BatchResponse>, RaftStorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.apply_entries(entries.into_iter().collect())
            .map_err(write_error)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
            snapshots: self.snapshots.clone(),
            stats: self.stats.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotData>, RaftStorageError> {
        self.snapshots
            .begin_receiving()
            .map(Box::new)
            .map_err(|error| StorageIOError::write_snapshot(None, &error).into())
    }

    /// Installs a received snapshot (sealed by the gRPC handler, or verified here) off the
    /// async workers: a stream over the whole state and an SST ingestion.
    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<SnapshotData>,
    ) -> Result<(), RaftStorageError> {
        let failed = |error: Error| -> RaftStorageError {
            StorageIOError::write_snapshot(Some(meta.signature()), &error).into()
        };
        let parts = snapshot.into_parts().await.map_err(failed)?;
        let (db, snapshots, installing) = (self.db.clone(), self.snapshots.clone(), meta.clone());
        let installed =
            tokio::task::spawn_blocking(move || snapshots.install(&db, &installing, parts))
                .await
                .map_err(|error| failed(Error::Io(std::io::Error::other(error))))?;
        let report = installed.map_err(failed)?;
        tracing::info!(snapshot = ?meta.last_log_id, ?report, "snapshot installed");
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.stats
            .snapshots_installed
            .fetch_add(1, Ordering::Relaxed);
        if let Some(sink) = &self.changes {
            sink.invalidate_all();
        }
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, RaftStorageError> {
        let current = self.snapshots.open_current().map_err(read_error)?;
        Ok(current.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(data),
        }))
    }
}

pub struct SnapshotBuilder {
    db: Arc<DB>,
    snapshots: Arc<SnapshotStore>,
    stats: Arc<StateMachineStats>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, RaftStorageError> {
        // A full scan and a synced file: off the async workers, so apply and the network
        // keep running while it is built.
        let (db, snapshots) = (self.db.clone(), self.snapshots.clone());
        let built = self.stats.snapshots_built.fetch_add(1, Ordering::Relaxed) + 1;
        let result = tokio::task::spawn_blocking(move || snapshots.build(&db, built))
            .await
            .map_err(|error| StorageIOError::write_snapshot(None, &error))?;
        let (meta, data) = result.map_err(|error| StorageIOError::write_snapshot(None, &error))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(data),
        })
    }
}
