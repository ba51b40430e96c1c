//! `cache` is the Redis account-read cache: staleness-tolerant readers
//! (`consistency=cached`) are served from Redis by any node, every value says which log
//! index it reflects and how old it is, a cached balance never goes back in time, and Redis
//! is never a point of failure.
//!
//! - Writes: after apply, the state machine hands changed accounts to a bounded channel
//!   (`storage::changes`, never blocking the write path). The [`publisher`] task drains it
//!   into Redis, pipelined, only while this node is the Raft leader.
//! - Every Redis write is a compare-and-set on the version (a log index, see [`entry`]), so
//!   late publishes, a former leader, and readers populating a miss can never overwrite a
//!   newer value. Deleted accounts become tombstones that expire.
//! - Reads ([`read`]): hit → served from Redis; miss or too old → local state (populating
//!   Redis); Redis failing or slow (bounded by `timeout_ms`, behind a [`breaker`]) → local
//!   state, counted. Redis restarted empty refills itself from misses and new publishes.
//!
//! No distributed lock is involved: Raft already orders every change by log index, and the
//! index is the version the compare-and-set compares.

pub mod breaker;
pub mod config;
pub mod entry;
pub mod error;
pub mod publisher;
pub mod read;
pub mod store;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use storage::changes::{AccountChange, ChangeSink, DirtySet};
use tokio::sync::mpsc;

pub use config::CacheSettings;
pub use error::{Error, Result};
pub use read::{read_accounts, AccountsRead, Lookup, Source};

use breaker::{Breaker, Permit};
use store::{Store, Write};

/// Counters of the cache, shown by `GET /api/v1/admin/cache`.
#[derive(Debug, Default)]
pub struct CacheStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub stale: AtomicU64,
    /// Reads served from local state because a Redis call failed or timed out.
    pub errors: AtomicU64,
    /// Reads served from local state because the breaker was open.
    pub breaker_rejections: AtomicU64,
    pub served_local: AtomicU64,
    pub served_leader: AtomicU64,
    pub populated: AtomicU64,
    pub published: AtomicU64,
    pub publish_failures: AtomicU64,
    pub refreshed: AtomicU64,
}

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub struct Cache {
    store: Store,
    breaker: Breaker,
    stats: CacheStats,
    dirty: Arc<DirtySet>,
    settings: CacheSettings,
}

/// A cache ready to serve reads, the sink the state machine offers changes to, and the
/// receiving end for [`publisher::spawn`].
pub struct Opened {
    pub cache: Arc<Cache>,
    pub sink: ChangeSink,
    pub changes: mpsc::Receiver<AccountChange>,
}

impl Cache {
    /// `None` when `settings` configures no cache. Connects lazily: never fails on a Redis
    /// that is down.
    pub fn open(settings: &CacheSettings) -> Result<Option<Opened>> {
        let Some(url) = &settings.url else {
            return Ok(None);
        };
        settings.validate()?;
        let dirty = Arc::new(DirtySet::new(settings.dirty_count_max));
        let (sink, changes) = ChangeSink::channel(settings.queue_count_max, dirty.clone());
        let cache = Arc::new(Cache {
            store: Store::connect(settings, url)?,
            breaker: Breaker::new(settings.breaker_failures_max, settings.breaker_cooldown_ms),
            stats: CacheStats::default(),
            dirty,
            settings: settings.clone(),
        });
        Ok(Some(Opened {
            cache,
            sink,
            changes,
        }))
    }

    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Runs one Redis call behind the breaker: `None` (counted) when the breaker refuses or
    /// the call fails, so the caller falls back.
    async fn guarded<T, F>(&self, call: F) -> std::result::Result<T, Lookup>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        if self.breaker.permit() == Permit::Denied {
            return Err(Lookup::BreakerOpen);
        }
        match call.await {
            Ok(value) => {
                self.succeeded();
                Ok(value)
            }
            Err(error) => {
                self.failed(&error);
                Err(Lookup::Error)
            }
        }
    }

    fn succeeded(&self) {
        let was = self.breaker.state();
        self.breaker.success();
        if was != "closed" {
            tracing::info!("redis cache reachable again");
        }
    }

    fn failed(&self, error: &Error) {
        let opened = self.breaker.opened();
        self.breaker.failure();
        if self.breaker.opened() != opened {
            tracing::warn!(%error, "redis cache failing: breaker open, reads served from local state");
        } else {
            tracing::debug!(%error, "redis cache call failed");
        }
    }

    /// Writes `writes` (compare-and-set) before the read is answered, so a reader's next
    /// read finds the cache at least as new as this one (unless Redis failed meanwhile).
    /// Bounded like every Redis call; skipped with the breaker open.
    async fn populate(&self, writes: Vec<Write>) {
        if writes.is_empty() {
            return;
        }
        if let Ok(written) = self.guarded(self.store.put(&writes)).await {
            self.stats
                .populated
                .fetch_add(written as u64, Ordering::Relaxed);
        }
    }

    pub fn stats_json(&self) -> Value {
        let s = &self.stats;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let feed = &self.dirty.stats;
        json!({
            "enabled": true,
            "keyPrefix": self.settings.key_prefix,
            "breaker": self.breaker.state(),
            "breakerOpened": self.breaker.opened(),
            "hits": get(&s.hits),
            "misses": get(&s.misses),
            "stale": get(&s.stale),
            "errors": get(&s.errors),
            "breakerRejections": get(&s.breaker_rejections),
            "servedLocal": get(&s.served_local),
            "servedLeader": get(&s.served_leader),
            "populated": get(&s.populated),
            "published": get(&s.published),
            "publishFailures": get(&s.publish_failures),
            "refreshed": get(&s.refreshed),
            "changesQueued": get(&feed.sent),
            "changesQueueFull": get(&feed.queue_full),
            "dirty": self.dirty.len(),
            "dirtyOverflows": get(&feed.dirty_overflows),
        })
    }
}

/// The stats of a node without a cache.
pub fn disabled_stats_json() -> Value {
    json!({"enabled": false})
}
