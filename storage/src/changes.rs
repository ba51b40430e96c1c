//! The hand-off of changed accounts from the state machine to the read cache's publisher.
//!
//! Why a hand-off and not a call: the apply path is the ledger's write path, and it must
//! never wait on, do I/O for, or log on behalf of a cache. After a write batch is written,
//! the state machine offers each changed account (with the log index of its last change)
//! to a bounded channel with `try_send`. A full channel does not block: the account id is
//! remembered in a bounded dirty set, which the publisher republishes from local state; a
//! full dirty set raises an overflow flag, on which the publisher refreshes every cached key.
//! Either way the cache is repaired off the write path, and only its freshness suffers.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::domain::{Account, AccountId};

/// One account's state after an applied write batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountChange {
    pub account_id: AccountId,
    /// `None`: the account was deleted.
    pub account: Option<Account>,
    /// The applied log index of the last change to this account in the batch.
    pub index: u64,
}

/// Counters of the hand-off, read by the cache's stats.
#[derive(Debug, Default)]
pub struct FeedStats {
    pub sent: AtomicU64,
    pub queue_full: AtomicU64,
    pub dirty_overflows: AtomicU64,
}

/// Account ids whose change did not fit the channel, bounded; beyond the bound, a flag.
#[derive(Debug)]
pub struct DirtySet {
    ids: Mutex<HashSet<AccountId>>,
    count_max: usize,
    overflowed: AtomicBool,
    pub stats: FeedStats,
}

impl DirtySet {
    pub fn new(count_max: usize) -> DirtySet {
        DirtySet {
            ids: Mutex::new(HashSet::new()),
            count_max,
            overflowed: AtomicBool::new(false),
            stats: FeedStats::default(),
        }
    }

    /// Remembers `id`, or raises the overflow flag when the set is full. Never blocks for
    /// long: the lock is only ever held for a bounded insert or drain.
    pub fn mark(&self, id: AccountId) {
        let inserted = match self.ids.lock() {
            Ok(mut ids) if ids.len() < self.count_max || ids.contains(&id) => {
                ids.insert(id);
                true
            }
            _ => false,
        };
        if !inserted {
            self.overflowed.store(true, Ordering::Relaxed);
            self.stats.dirty_overflows.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Takes up to `count_max` dirty ids.
    pub fn take(&self, count_max: usize) -> Vec<AccountId> {
        let Ok(mut ids) = self.ids.lock() else {
            self.overflowed.store(true, Ordering::Relaxed);
            return Vec::new();
        };
        let taken: Vec<AccountId> = ids.iter().take(count_max).cloned().collect();
        for id in &taken {
            ids.remove(id);
        }
        taken
    }

    pub fn len(&self) -> usize {
        self.ids.lock().map_or(0, |ids| ids.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the set overflowed since the last call (and clears the flag).
    pub fn take_overflow(&self) -> bool {
        self.overflowed.swap(false, Ordering::Relaxed)
    }
}

/// The state machine's end of the hand-off.
#[derive(Debug, Clone)]
pub struct ChangeSink {
    sender: mpsc::Sender<AccountChange>,
    dirty: Arc<DirtySet>,
}

impl ChangeSink {
    /// A sink, and the publisher's end: a channel of `queue_count_max` changes.
    pub fn channel(
        queue_count_max: usize,
        dirty: Arc<DirtySet>,
    ) -> (ChangeSink, mpsc::Receiver<AccountChange>) {
        let (sender, receiver) = mpsc::channel(queue_count_max.max(1));
        (ChangeSink { sender, dirty }, receiver)
    }

    /// Everything may have changed (a snapshot replaced the state wholesale): the publisher
    /// refreshes every cached key, as after a dirty-set overflow.
    pub fn invalidate_all(&self) {
        self.dirty.overflowed.store(true, Ordering::Relaxed);
    }

    /// Offers every change without waiting: `try_send`, or mark dirty. A closed channel (no
    /// publisher any more) drops the change: nobody would read it.
    pub fn offer(&self, changes: Vec<AccountChange>) {
        for change in changes {
            match self.sender.try_send(change) {
                Ok(()) => {
                    self.dirty.stats.sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(mpsc::error::TrySendError::Full(change)) => {
                    self.dirty.stats.queue_full.fetch_add(1, Ordering::Relaxed);
                    self.dirty.mark(change.account_id);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> AccountId {
        AccountId::parse(text).unwrap()
    }

    fn deleted(text: &str, index: u64) -> AccountChange {
        AccountChange {
            account_id: id(text),
            account: None,
            index,
        }
    }

    #[test]
    fn a_full_queue_marks_dirty_and_a_full_dirty_set_overflows() {
        let dirty = Arc::new(DirtySet::new(2));
        let (sink, mut receiver) = ChangeSink::channel(1, dirty.clone());
        sink.offer(vec![
            deleted("a", 1),
            deleted("b", 2),
            deleted("c", 3),
            deleted("b", 4),
        ]);
        assert_eq!(receiver.try_recv().unwrap(), deleted("a", 1));
        assert!(receiver.try_recv().is_err());
        assert_eq!(dirty.len(), 2);
        assert!(!dirty.take_overflow(), "b twice is one dirty id");
        sink.offer(vec![deleted("d", 5), deleted("e", 6)]);
        assert!(dirty.take_overflow());
        assert!(!dirty.take_overflow(), "the flag clears once taken");
        let mut taken = dirty.take(10);
        taken.sort();
        assert_eq!(taken, vec![id("b"), id("c")]);
        assert!(dirty.is_empty());
        assert_eq!(dirty.stats.queue_full.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn a_closed_channel_drops_changes_silently() {
        let dirty = Arc::new(DirtySet::new(2));
        let (sink, receiver) = ChangeSink::channel(1, dirty.clone());
        drop(receiver);
        sink.offer(vec![deleted("a", 1)]);
        assert!(dirty.is_empty());
    }
}
