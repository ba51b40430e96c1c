//! Serving `consistency=cached` account reads.
//!
//! 1. Every id is looked up in Redis in one round trip (bounded by `timeout_ms`, behind the
//!    breaker). All present and young enough → served from the cache; the applied index is
//!    the lowest version among them (each value is the account's state at an index at
//!    least that).
//! 2. Otherwise the node's local state is read, at one applied index. When that index is at
//!    least every version the cache returned, it is served (`local`), after the missing or
//!    too old entries are populated (compare-and-set: never over a newer one; before the
//!    answer, so a reader's next cached read is never older than this one).
//! 3. When this node lags behind what the cache already holds, local state would take a
//!    reader back in time: the read goes through the leader (`leader`, linearizable).
//! 4. Redis failing, slow or behind an open breaker → local state, counted. A Redis
//!    problem never fails a read; only the cluster can (as for any read).

use std::sync::Arc;

use raft::protocol::{ReadRequest, ReadValue};
use raft::{Consistency, Replica};
use storage::domain::{Account, AccountId};
use storage::reader::AtIndex;
use storage::NodeId;

use crate::entry::Entry;
use crate::store::Write;
use crate::{count, Cache};

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cache,
    Local,
    Leader,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cache => "cache",
            Source::Local => "local",
            Source::Leader => "leader",
        }
    }
}

/// What the cache lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Hit,
    /// Some id had no entry.
    Miss,
    /// Every id had an entry, some older than `maxStalenessMs`.
    Stale,
    /// The Redis call failed or timed out.
    Error,
    /// The breaker is open: Redis was not called.
    BreakerOpen,
    /// This node has no cache configured.
    Disabled,
}

impl Lookup {
    pub fn as_str(self) -> &'static str {
        match self {
            Lookup::Hit => "hit",
            Lookup::Miss => "miss",
            Lookup::Stale => "stale",
            Lookup::Error => "error",
            Lookup::BreakerOpen => "breaker-open",
            Lookup::Disabled => "disabled",
        }
    }
}

/// Accounts in the order asked (`None`: not found), and where they came from.
#[derive(Debug, Clone)]
pub struct AccountsRead {
    pub accounts: Vec<Option<Account>>,
    /// For a cache hit, the lowest version served; otherwise the applied index read at.
    pub applied_index: u64,
    pub served_by: NodeId,
    pub source: Source,
    pub lookup: Lookup,
    /// For a cache hit, the age of the oldest value served (by Redis's clock).
    pub age_ms: Option<u64>,
}

/// How old a cached value may be, by Redis's clock.
#[derive(Debug, Clone, Copy)]
struct Freshness {
    max_staleness_ms: Option<u64>,
    now_ms: u64,
}

impl Freshness {
    fn accepts(self, entry: &Entry) -> bool {
        self.max_staleness_ms
            .map_or(true, |max| entry.age_ms(self.now_ms) <= max)
    }
}

/// Reads `ids` as a staleness-tolerant reader: see the module documentation.
pub async fn read_accounts(
    cache: Option<&Arc<Cache>>,
    replica: &Replica,
    ids: &[AccountId],
    max_staleness_ms: Option<u64>,
) -> raft::Result<AccountsRead> {
    let Some(cache) = cache else {
        return local(replica, ids, Lookup::Disabled);
    };
    let (entries, now_ms) = match cache.guarded(cache.store.get(ids)).await {
        Ok(found) => found,
        Err(lookup) => {
            count(match lookup {
                Lookup::BreakerOpen => &cache.stats.breaker_rejections,
                _ => &cache.stats.errors,
            });
            count(&cache.stats.served_local);
            return local(replica, ids, lookup);
        }
    };
    let freshness = Freshness {
        max_staleness_ms,
        now_ms,
    };
    let fresh = |entry: &Option<Entry>| entry.as_ref().is_some_and(|e| freshness.accepts(e));
    if entries.iter().all(fresh) {
        count(&cache.stats.hits);
        return Ok(from_cache(replica.id, entries, now_ms));
    }
    let lookup = if entries.iter().all(Option::is_some) {
        count(&cache.stats.stale);
        Lookup::Stale
    } else {
        count(&cache.stats.misses);
        Lookup::Miss
    };
    fall_back(cache, replica, ids, &entries, lookup, freshness).await
}

fn local(replica: &Replica, ids: &[AccountId], lookup: Lookup) -> raft::Result<AccountsRead> {
    let read = replica.reader.accounts(ids)?;
    Ok(AccountsRead {
        accounts: read.value,
        applied_index: read.applied_index,
        served_by: replica.id,
        source: Source::Local,
        lookup,
        age_ms: None,
    })
}

fn from_cache(node: NodeId, entries: Vec<Option<Entry>>, now_ms: u64) -> AccountsRead {
    let entries: Vec<Entry> = entries.into_iter().flatten().collect();
    AccountsRead {
        applied_index: entries.iter().map(|e| e.version).min().unwrap_or(0),
        age_ms: entries.iter().map(|e| e.age_ms(now_ms)).max(),
        accounts: entries.into_iter().map(|e| e.account).collect(),
        served_by: node,
        source: Source::Cache,
        lookup: Lookup::Hit,
    }
}

/// Local state when it is at least as new as the cache's entries, else the leader; either
/// way the missing and too-old entries are populated.
async fn fall_back(
    cache: &Arc<Cache>,
    replica: &Replica,
    ids: &[AccountId],
    entries: &[Option<Entry>],
    lookup: Lookup,
    freshness: Freshness,
) -> raft::Result<AccountsRead> {
    let floor = entries
        .iter()
        .flatten()
        .map(|e| e.version)
        .max()
        .unwrap_or(0);
    let mut read = local(replica, ids, lookup)?;
    if read.applied_index >= floor {
        count(&cache.stats.served_local);
    } else {
        let served = replica
            .read(
                ReadRequest::Accounts(ids.to_vec()),
                Consistency::Linearizable,
            )
            .await?;
        let ReadValue::Accounts(accounts) = served.value.value else {
            return Err(raft::Error::Storage("unexpected read answer".into()));
        };
        count(&cache.stats.served_leader);
        read = AccountsRead {
            accounts,
            applied_index: served.value.applied_index,
            served_by: served.served_by,
            source: Source::Leader,
            lookup,
            age_ms: None,
        };
    }
    let at = AtIndex {
        value: read.accounts.clone(),
        applied_index: read.applied_index,
    };
    cache
        .populate(populations(ids, entries, &at, freshness))
        .await;
    Ok(read)
}

/// The writes that bring missing, too old or older entries up to what was read. Accounts
/// read as absent are not written: a reader asking for ids that never existed must not fill
/// Redis (deletions reach it as tombstones from the publisher).
fn populations(
    ids: &[AccountId],
    entries: &[Option<Entry>],
    read: &AtIndex<Vec<Option<Account>>>,
    freshness: Freshness,
) -> Vec<Write> {
    ids.iter()
        .zip(entries)
        .zip(&read.value)
        .filter_map(|((id, entry), account)| {
            let account = account.as_ref()?;
            // Older, or the same version written too long ago; never over a newer one.
            let behind = entry.as_ref().map_or(true, |e| {
                e.version < read.applied_index
                    || (e.version == read.applied_index && !freshness.accepts(e))
            });
            behind.then(|| Write {
                id: id.clone(),
                version: read.applied_index,
                account: Some(account.clone()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> AccountId {
        AccountId::parse(text).unwrap()
    }

    fn account(text: &str) -> Account {
        serde_json::from_value(serde_json::json!({
            "accountId": text, "balance": "1.0000", "accountType": "SAVINGS",
            "currency": "USD", "createdAtMs": 1, "updatedAtMs": 1, "version": 1
        }))
        .unwrap()
    }

    fn entry(version: u64, stored_ms: u64) -> Option<Entry> {
        Some(Entry {
            version,
            stored_ms,
            account: Some(account("x")),
        })
    }

    #[test]
    fn populates_only_missing_older_or_stale_entries_of_existing_accounts() {
        let ids = [id("a"), id("b"), id("c"), id("d"), id("e")];
        let entries = [None, entry(10, 0), entry(3, 9), None, entry(7, 5)];
        let read = AtIndex {
            value: vec![
                Some(account("a")),
                Some(account("b")),
                Some(account("c")),
                None,
                Some(account("e")),
            ],
            applied_index: 7,
        };
        // Entries stored before 5 are too old at 10 with a 5 ms bound.
        let freshness = Freshness {
            max_staleness_ms: Some(5),
            now_ms: 10,
        };
        let writes = populations(&ids, &entries, &read, freshness);
        let written: Vec<&str> = writes.iter().map(|w| w.id.as_str()).collect();
        // a: missing; b: newer than the read (though too old), kept; c: older; d: absent,
        // never written; e: same version and young, kept.
        assert_eq!(written, vec!["a", "c"]);
        assert!(writes.iter().all(|w| w.version == 7));
    }

    #[test]
    fn a_hit_reports_the_lowest_version_and_the_oldest_age() {
        let read = from_cache(2, vec![entry(9, 100), entry(4, 150)], 200);
        assert_eq!(read.applied_index, 4);
        assert_eq!(read.age_ms, Some(100));
        assert_eq!(read.source, Source::Cache);
        assert_eq!(read.served_by, 2);
    }
}
