//! Redis I/O, and nothing else: one auto-reconnecting `ConnectionManager` (TLS and AUTH come
//! from the URL), every call pipelined and bounded by `timeout_ms` (on top of the client's own
//! response timeout), every write the compare-and-set script by EVALSHA.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Pipeline, Script};
use storage::domain::{Account, AccountId};

use crate::config::CacheSettings;
use crate::entry::{self, Entry, CAS_SCRIPT};
use crate::error::{Error, Result};

/// Reconnection attempts per failed connection before the manager gives up until the next
/// call (each bounded by `connect_timeout_ms`).
const RECONNECT_TRIES_MAX: usize = 2;
const RECONNECT_DELAY_MS_MAX: u64 = 500;

/// One write: `account` (or a tombstone) as of log index `version`.
#[derive(Debug, Clone)]
pub struct Write {
    pub id: AccountId,
    pub version: u64,
    pub account: Option<Account>,
}

pub struct Store {
    connection: ConnectionManager,
    script: Script,
    prefix: String,
    ttl_ms: u64,
    tombstone_ttl_ms: u64,
    timeout_ms: u64,
}

impl Store {
    /// Connects lazily: a Redis that is down at boot delays nothing.
    pub fn connect(settings: &CacheSettings, url: &str) -> Result<Store> {
        // rustls needs a process-wide crypto provider for rediss://; ring, chosen once.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_millis(settings.timeout_ms)))
            .set_connection_timeout(Some(Duration::from_millis(settings.connect_timeout_ms)))
            .set_number_of_retries(RECONNECT_TRIES_MAX)
            .set_max_delay(Duration::from_millis(RECONNECT_DELAY_MS_MAX));
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Store {
            connection,
            script: Script::new(CAS_SCRIPT),
            prefix: settings.key_prefix.clone(),
            ttl_ms: settings.ttl_ms,
            tombstone_ttl_ms: settings.tombstone_ttl_ms,
            timeout_ms: settings.timeout_ms,
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Runs `pipeline` within the timeout.
    async fn query<T: redis::FromRedisValue>(&self, pipeline: &Pipeline) -> Result<T> {
        let mut connection = self.connection.clone();
        let call = pipeline.query_async::<T>(&mut connection);
        match tokio::time::timeout(Duration::from_millis(self.timeout_ms), call).await {
            Ok(answer) => answer.map_err(Error::from),
            Err(_) => Err(Error::Timeout(self.timeout_ms)),
        }
    }

    /// The entries of `ids` (`None`: absent or unreadable) and Redis's clock, in one trip.
    pub async fn get(&self, ids: &[AccountId]) -> Result<(Vec<Option<Entry>>, u64)> {
        let keys: Vec<String> = ids.iter().map(|id| entry::key(&self.prefix, id)).collect();
        let mut pipeline = redis::pipe();
        pipeline.cmd("MGET").arg(&keys).cmd("TIME");
        let (values, (seconds, micros)): (Vec<Option<String>>, (u64, u64)) =
            self.query(&pipeline).await?;
        let entries = values
            .iter()
            .map(|value| value.as_deref().and_then(Entry::decode))
            .collect();
        Ok((entries, seconds * 1_000 + micros / 1_000))
    }

    /// Compare-and-sets every write in one pipeline; how many were newer than what was
    /// stored. Reloads the script once if Redis lost it (a restart).
    pub async fn put(&self, writes: &[Write]) -> Result<usize> {
        if writes.is_empty() {
            return Ok(0);
        }
        let pipeline = self.cas_pipeline(writes);
        let written: Vec<u8> = match self.query(&pipeline).await {
            Err(Error::NoScript) => {
                let mut load = redis::pipe();
                load.cmd("SCRIPT").arg("LOAD").arg(CAS_SCRIPT);
                let _: Vec<String> = self.query(&load).await?;
                self.query(&pipeline).await?
            }
            other => other?,
        };
        Ok(written.iter().filter(|w| **w == 1).count())
    }

    fn cas_pipeline(&self, writes: &[Write]) -> Pipeline {
        let mut pipeline = redis::pipe();
        for write in writes {
            let ttl_ms = match write.account {
                Some(_) => self.ttl_ms,
                None => self.tombstone_ttl_ms,
            };
            pipeline
                .cmd("EVALSHA")
                .arg(self.script.get_hash())
                .arg(1)
                .arg(entry::key(&self.prefix, &write.id))
                .arg(write.version)
                .arg(entry::payload(write.account.as_ref()))
                .arg(ttl_ms);
        }
        pipeline
    }

    /// One page of a SCAN over this ledger's account keys: the next cursor (0 at the end)
    /// and the ids found.
    pub async fn scan(&self, cursor: u64, count: usize) -> Result<(u64, Vec<AccountId>)> {
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(entry::key_pattern(&self.prefix))
            .arg("COUNT")
            .arg(count);
        let ((next, keys),): ((u64, Vec<String>),) = self.query(&pipeline).await?;
        let ids = keys
            .iter()
            .filter_map(|key| entry::id_of_key(&self.prefix, key))
            .collect();
        Ok((next, ids))
    }
}
