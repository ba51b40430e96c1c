//! The Raft log in the node's RocksDB (`log` and `raft` column families).
//!
//! Durable means synced: an append, a vote, a truncation or a purge is written with
//! `sync = true` before openraft is told it happened. Followers sync too, so an entry a
//! majority acknowledged survives a power loss of that majority.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader, StorageIOError};
use rocksdb::{IteratorMode, WriteBatch, DB};
use storage::db::{cf, decode, encode, get};
use storage::keys::{self, CF_LOG, CF_RAFT};
use storage::state_machine::synced;
use storage::types::{Entry, LogId, RaftStorageError, Vote};
use storage::TypeConfig;

#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
    /// Highest log index this node knows to be committed (for readiness).
    committed_index: Arc<AtomicU64>,
    /// Duration of the synced write of an append, when measured.
    sync_seconds: Option<prometheus::Histogram>,
}

fn read_error(error: impl std::error::Error + 'static) -> RaftStorageError {
    StorageIOError::read_logs(&error).into()
}

fn write_error(error: impl std::error::Error + 'static) -> RaftStorageError {
    StorageIOError::write_logs(&error).into()
}

impl LogStore {
    pub fn new(db: Arc<DB>) -> LogStore {
        LogStore {
            db,
            committed_index: Arc::default(),
            sync_seconds: None,
        }
    }

    /// Observes the duration of every synced append write in `histogram`.
    pub fn with_sync_histogram(mut self, histogram: prometheus::Histogram) -> LogStore {
        self.sync_seconds = Some(histogram);
        self
    }

    pub fn committed_index(&self) -> Arc<AtomicU64> {
        self.committed_index.clone()
    }

    fn meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, RaftStorageError> {
        get(&self.db, CF_RAFT, key).map_err(read_error)
    }

    fn put_meta_synced<T: serde::Serialize>(
        &self,
        key: &[u8],
        value: &T,
    ) -> Result<(), rocksdb::Error> {
        self.db
            .put_cf_opt(cf(&self.db, CF_RAFT), key, encode(value), &synced())
    }

    /// The id of the last entry this node holds (or purged): what a vote compares.
    pub fn last_log_id(&self) -> Result<Option<LogId>, RaftStorageError> {
        let last_purged_log_id: Option<LogId> = self.meta(keys::RAFT_PURGED)?;
        Ok(self.last_entry_log_id()?.or(last_purged_log_id))
    }

    fn last_entry_log_id(&self) -> Result<Option<LogId>, RaftStorageError> {
        let mut last = self.db.iterator_cf(cf(&self.db, CF_LOG), IteratorMode::End);
        match last.next() {
            Some(item) => {
                let (key, value) = item.map_err(read_error)?;
                let entry: Entry = decode(&key, &value).map_err(read_error)?;
                assert_eq!(entry.log_id.index, keys::log_index(&key));
                Ok(Some(entry.log_id))
            }
            None => Ok(None),
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, RaftStorageError> {
        let start = match range.start_bound() {
            Bound::Included(index) => *index,
            Bound::Excluded(index) => index + 1,
            Bound::Unbounded => 0,
        };
        let from = keys::log_key(start);
        let mode = IteratorMode::From(&from, rocksdb::Direction::Forward);
        let mut entries = Vec::new();
        for item in self.db.iterator_cf(cf(&self.db, CF_LOG), mode) {
            let (key, value) = item.map_err(read_error)?;
            let index = keys::log_index(&key);
            if !range.contains(&index) {
                break;
            }
            let entry: Entry = decode(&key, &value).map_err(read_error)?;
            assert_eq!(entry.log_id.index, index);
            entries.push(entry);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, RaftStorageError> {
        let last_purged_log_id: Option<LogId> = self.meta(keys::RAFT_PURGED)?;
        Ok(LogState {
            last_purged_log_id,
            last_log_id: self.last_log_id()?,
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), RaftStorageError> {
        self.put_meta_synced(keys::RAFT_VOTE, vote)
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, RaftStorageError> {
        self.meta(keys::RAFT_VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), RaftStorageError> {
        if let Some(log_id) = committed {
            self.committed_index
                .fetch_max(log_id.index, Ordering::Relaxed);
        }
        // Not synced: a lost committed index is re-learned from the leader.
        self.db
            .put_cf(
                cf(&self.db, CF_RAFT),
                keys::RAFT_COMMITTED,
                encode(&committed),
            )
            .map_err(write_error)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, RaftStorageError> {
        let committed: Option<Option<LogId>> = self.meta(keys::RAFT_COMMITTED)?;
        let committed = committed.flatten();
        if let Some(log_id) = committed {
            self.committed_index
                .fetch_max(log_id.index, Ordering::Relaxed);
        }
        Ok(committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), RaftStorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::default();
        let log = cf(&self.db, CF_LOG);
        for entry in entries {
            batch.put_cf(log, keys::log_key(entry.log_id.index), encode(&entry));
        }
        // Synced before the callback: openraft counts this node's acknowledgement only now.
        let started = std::time::Instant::now();
        let result = self.db.write_opt(batch, &synced());
        if let Some(histogram) = &self.sync_seconds {
            histogram.observe(started.elapsed().as_secs_f64());
        }
        let io_result = result
            .as_ref()
            .map(|_| ())
            .map_err(|e| std::io::Error::other(e.to_string()));
        callback.log_io_completed(io_result);
        result.map_err(write_error)
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), RaftStorageError> {
        let mut batch = WriteBatch::default();
        let log = cf(&self.db, CF_LOG);
        batch.delete_range_cf(log, keys::log_key(log_id.index), keys::log_key(u64::MAX));
        batch.delete_cf(log, keys::log_key(u64::MAX));
        self.db.write_opt(batch, &synced()).map_err(write_error)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), RaftStorageError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            cf(&self.db, CF_RAFT),
            keys::RAFT_PURGED,
            encode(&Some(log_id)),
        );
        batch.delete_range_cf(
            cf(&self.db, CF_LOG),
            keys::log_key(0),
            keys::log_key(log_id.index + 1),
        );
        self.db.write_opt(batch, &synced()).map_err(write_error)
    }
}
