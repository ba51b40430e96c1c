//! The publisher: one task per node that drains the state machine's changed accounts into
//! Redis, pipelined, off the write path.
//!
//! Only the leader publishes (every replica applies the same changes; one writer is
//! enough, and the compare-and-set makes a second one harmless). A follower keeps the most
//! recent changes it applied in a bounded hand-over window and publishes them when it
//! becomes leader, covering changes a crashed leader applied but had not published yet.
//!
//! Repairs, also leader only: accounts marked dirty (their change did not fit the queue, or
//! a publish failed) are republished from local state at its applied index; after the dirty
//! set overflowed, every key under the prefix is refreshed that way, one SCAN page at a
//! time. A publish never waits for Redis longer than `timeout_ms`, and with the breaker
//! open it marks the changes dirty instead of calling.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;
use raft::Replica;
use storage::changes::AccountChange;
use storage::domain::AccountId;
use tokio::sync::mpsc;

use crate::store::Write;
use crate::Cache;

/// How often an idle publisher looks at leadership, dirty ids and a refresh in progress.
const IDLE_TICK_MS: u64 = 100;

pub struct Publisher {
    cache: Arc<Cache>,
    changes: mpsc::Receiver<AccountChange>,
    replica: Arc<Replica>,
    handover: VecDeque<AccountChange>,
    was_leader: bool,
    /// The SCAN cursor of a full refresh in progress.
    refresh_cursor: Option<u64>,
}

/// Starts the publisher of `cache` for `replica`; it ends when the state machine (the
/// sending side) is gone.
pub fn spawn(cache: Arc<Cache>, changes: mpsc::Receiver<AccountChange>, replica: Arc<Replica>) {
    let publisher = Publisher {
        cache,
        changes,
        replica,
        handover: VecDeque::new(),
        was_leader: false,
        refresh_cursor: None,
    };
    tokio::spawn(publisher.run());
}

impl Publisher {
    async fn run(mut self) {
        while let Some(batch) = self.next_batch().await {
            if !self.is_leader() {
                self.was_leader = false;
                self.remember(batch);
                continue;
            }
            let mut batch = batch;
            if !self.was_leader {
                self.was_leader = true;
                batch.splice(0..0, self.handover.drain(..));
            }
            self.publish(batch).await;
            self.repair().await;
        }
    }

    fn batch_max(&self) -> usize {
        self.cache.settings.publish_batch_max
    }

    fn is_leader(&self) -> bool {
        self.replica.raft.metrics().borrow().state == ServerState::Leader
    }

    /// Up to `publish_batch_max` changes, waiting at most one tick for the first (an empty
    /// batch then); `None` once the sending side is gone.
    async fn next_batch(&mut self) -> Option<Vec<AccountChange>> {
        let tick = Duration::from_millis(IDLE_TICK_MS);
        let mut batch = Vec::new();
        match tokio::time::timeout(tick, self.changes.recv()).await {
            Ok(Some(change)) => batch.push(change),
            Ok(None) => return None,
            Err(_) => return Some(batch),
        }
        while batch.len() < self.batch_max() {
            match self.changes.try_recv() {
                Ok(change) => batch.push(change),
                Err(_) => break,
            }
        }
        Some(batch)
    }

    /// A follower's bounded window of recent changes.
    fn remember(&mut self, batch: Vec<AccountChange>) {
        let window_max = self.cache.settings.queue_count_max;
        for change in batch {
            if self.handover.len() >= window_max {
                self.handover.pop_front();
            }
            self.handover.push_back(change);
        }
    }

    /// One write per account: its latest change.
    fn coalesce(batch: Vec<AccountChange>) -> Vec<Write> {
        let mut latest: HashMap<AccountId, AccountChange> = HashMap::new();
        for change in batch {
            match latest.get(&change.account_id) {
                Some(seen) if seen.index >= change.index => {}
                _ => {
                    latest.insert(change.account_id.clone(), change);
                }
            }
        }
        latest
            .into_values()
            .map(|change| Write {
                id: change.account_id,
                version: change.index,
                account: change.account,
            })
            .collect()
    }

    async fn publish(&self, batch: Vec<AccountChange>) {
        for chunk in Self::coalesce(batch).chunks(self.batch_max()) {
            self.write_or_mark_dirty(chunk, false).await;
        }
    }

    /// Writes `writes`; on failure (or an open breaker) remembers their ids as dirty.
    async fn write_or_mark_dirty(&self, writes: &[Write], refresh: bool) -> bool {
        let cache = &self.cache;
        match cache.guarded(cache.store.put(writes)).await {
            Ok(written) => {
                let counter = match refresh {
                    true => &cache.stats.refreshed,
                    false => &cache.stats.published,
                };
                counter.fetch_add(written as u64, Ordering::Relaxed);
                true
            }
            Err(_) => {
                cache
                    .stats
                    .publish_failures
                    .fetch_add(writes.len() as u64, Ordering::Relaxed);
                for write in writes {
                    cache.dirty.mark(write.id.clone());
                }
                false
            }
        }
    }

    /// Republishes dirty ids, and pages through a full refresh after an overflow.
    async fn repair(&mut self) {
        if self.cache.breaker.is_open() {
            return;
        }
        if self.cache.dirty.take_overflow() {
            self.refresh_cursor = Some(0);
        }
        if let Some(cursor) = self.refresh_cursor {
            self.refresh_page(cursor).await;
        }
        let ids = self.cache.dirty.take(self.batch_max());
        if !ids.is_empty() {
            self.refresh(&ids).await;
        }
    }

    async fn refresh_page(&mut self, cursor: u64) {
        let cache = self.cache.clone();
        let page = cache.store.scan(cursor, self.batch_max());
        let Ok((next, ids)) = cache.guarded(page).await else {
            return;
        };
        if self.refresh(&ids).await {
            self.refresh_cursor = (next != 0).then_some(next);
        }
    }

    /// Writes the local state of `ids` at its applied index (tombstones for deleted ones).
    async fn refresh(&self, ids: &[AccountId]) -> bool {
        let read = match self.replica.reader.accounts(ids) {
            Ok(read) => read,
            Err(error) => {
                tracing::warn!(%error, "cache refresh: reading local state failed");
                for id in ids {
                    self.cache.dirty.mark(id.clone());
                }
                return false;
            }
        };
        let writes: Vec<Write> = ids
            .iter()
            .zip(read.value)
            .map(|(id, account)| Write {
                id: id.clone(),
                version: read.applied_index,
                account,
            })
            .collect();
        self.write_or_mark_dirty(&writes, true).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(id: &str, index: u64) -> AccountChange {
        AccountChange {
            account_id: AccountId::parse(id).unwrap(),
            account: None,
            index,
        }
    }

    #[test]
    fn coalescing_keeps_each_accounts_latest_change() {
        let mut writes = Publisher::coalesce(vec![
            change("a", 3),
            change("b", 4),
            change("a", 9),
            change("a", 5),
        ]);
        writes.sort_by_key(|w| w.version);
        let got: Vec<(&str, u64)> = writes.iter().map(|w| (w.id.as_str(), w.version)).collect();
        assert_eq!(got, vec![("b", 4), ("a", 9)]);
    }
}
