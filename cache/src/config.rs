//! The `[cache]` section of a node's configuration. No `url` means no cache: every read is
//! served as before and `consistency=cached` reads local state (and says so). Every value is
//! bounded and checked at boot.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// `redis://[user:password@]host:port[/db]` or `rediss://...` (TLS, as ElastiCache in
    /// transit encryption needs). Unset: no cache. Also `LEDGER_REDIS_URL`.
    pub url: Option<String>,
    /// Prefix of every key this ledger writes, so one Redis can hold other data too.
    pub key_prefix: String,
    /// How long a cached account lives without being written again.
    pub ttl_ms: u64,
    /// How long a deleted account's tombstone lives (at most `ttl_ms`): long enough that a
    /// late, older write cannot bring the account back.
    pub tombstone_ttl_ms: u64,
    /// The longest one Redis call may take before the read falls back to local state.
    pub timeout_ms: u64,
    /// The longest a (re)connection attempt may take.
    pub connect_timeout_ms: u64,
    /// Changed accounts waiting to be published; beyond it, changes are marked dirty.
    pub queue_count_max: usize,
    /// Dirty accounts remembered; beyond it, every cached key is refreshed.
    pub dirty_count_max: usize,
    /// Most keys in one pipelined publish, read or refresh.
    pub publish_batch_max: usize,
    /// Failures in a row that open the circuit breaker.
    pub breaker_failures_max: u32,
    /// How long the breaker stays open before one call probes Redis again.
    pub breaker_cooldown_ms: u64,
}

impl Default for CacheSettings {
    fn default() -> CacheSettings {
        CacheSettings {
            url: None,
            key_prefix: "ledger:".into(),
            ttl_ms: 300_000,
            tombstone_ttl_ms: 60_000,
            timeout_ms: 50,
            connect_timeout_ms: 500,
            queue_count_max: 16_384,
            dirty_count_max: 65_536,
            publish_batch_max: 256,
            breaker_failures_max: 5,
            breaker_cooldown_ms: 1_000,
        }
    }
}

const MS_MAX: u64 = 86_400_000;
const TIMEOUT_MS_MAX: u64 = 10_000;
const COUNT_MAX: usize = 1_048_576;
const BATCH_MAX: usize = 10_000;
const KEY_PREFIX_BYTES_MAX: usize = 64;

fn within<T: PartialOrd + std::fmt::Display>(name: &str, value: T, min: T, max: T) -> Result<()> {
    if value < min || value > max {
        return Err(Error::Config(format!(
            "cache.{name} = {value} is out of range: it must be {min} to {max}"
        )));
    }
    Ok(())
}

impl CacheSettings {
    pub fn enabled(&self) -> bool {
        self.url.is_some()
    }

    pub fn validate(&self) -> Result<()> {
        if let Some(url) = &self.url {
            check_url(url)?;
        }
        check_key_prefix(&self.key_prefix)?;
        within("ttl_ms", self.ttl_ms, 1_000, MS_MAX)?;
        within("tombstone_ttl_ms", self.tombstone_ttl_ms, 100, self.ttl_ms)?;
        within("timeout_ms", self.timeout_ms, 1, TIMEOUT_MS_MAX)?;
        within(
            "connect_timeout_ms",
            self.connect_timeout_ms,
            1,
            TIMEOUT_MS_MAX,
        )?;
        within("queue_count_max", self.queue_count_max, 1, COUNT_MAX)?;
        within("dirty_count_max", self.dirty_count_max, 1, COUNT_MAX)?;
        within("publish_batch_max", self.publish_batch_max, 1, BATCH_MAX)?;
        within("breaker_failures_max", self.breaker_failures_max, 1, 1_000)?;
        within("breaker_cooldown_ms", self.breaker_cooldown_ms, 1, MS_MAX)
    }
}

/// Only `redis://` and `rediss://`, and one the client can parse (the password is never
/// echoed back).
fn check_url(url: &str) -> Result<()> {
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err(Error::Config(
            "cache.url must start with redis:// or rediss:// (TLS)".into(),
        ));
    }
    redis::Client::open(url).map(|_| ()).map_err(|e| {
        Error::Config(format!(
            "cache.url is not a valid Redis URL ({:?})",
            e.kind()
        ))
    })
}

/// Printable, no spaces, no glob characters (the prefix is part of a SCAN pattern).
fn check_key_prefix(prefix: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_graphic() && !matches!(c, '*' | '?' | '[' | ']' | '\\');
    if prefix.is_empty() || prefix.len() > KEY_PREFIX_BYTES_MAX || !prefix.chars().all(allowed) {
        return Err(Error::Config(format!(
            "cache.key_prefix must be 1 to {KEY_PREFIX_BYTES_MAX} printable characters without \
             spaces or * ? [ ] \\"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(settings: &CacheSettings, mentions: &str) {
        match settings.validate() {
            Err(Error::Config(message)) => {
                assert!(message.contains(mentions), "'{message}' lacks '{mentions}'")
            }
            other => panic!("expected a refusal mentioning {mentions}, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid_and_disabled() {
        let settings = CacheSettings::default();
        settings.validate().unwrap();
        assert!(!settings.enabled());
    }

    #[test]
    fn urls_must_be_redis_or_rediss() {
        let mut settings = CacheSettings::default();
        for url in [
            "redis://127.0.0.1:6379",
            "rediss://user:secret@cache.example.com:6380/0",
        ] {
            settings.url = Some(url.into());
            settings.validate().unwrap();
        }
        settings.url = Some("http://127.0.0.1:6379".into());
        refused(&settings, "redis:// or rediss://");
        settings.url = Some("redis://user:secret@[::1".into());
        refused(&settings, "not a valid Redis URL");
        match settings.validate() {
            Err(error) => assert!(!error.to_string().contains("secret")),
            Ok(()) => panic!("accepted"),
        }
    }

    #[test]
    fn every_value_is_bounded() {
        let cases: [(&str, fn(&mut CacheSettings)); 10] = [
            ("ttl_ms", |s| s.ttl_ms = 0),
            ("tombstone_ttl_ms", |s| s.tombstone_ttl_ms = s.ttl_ms + 1),
            ("timeout_ms", |s| s.timeout_ms = 0),
            ("connect_timeout_ms", |s| s.connect_timeout_ms = u64::MAX),
            ("queue_count_max", |s| s.queue_count_max = 0),
            ("dirty_count_max", |s| s.dirty_count_max = usize::MAX),
            ("publish_batch_max", |s| s.publish_batch_max = 0),
            ("breaker_failures_max", |s| s.breaker_failures_max = 0),
            ("breaker_cooldown_ms", |s| s.breaker_cooldown_ms = 0),
            ("key_prefix", |s| s.key_prefix = "a*".into()),
        ];
        for (key, set) in cases {
            let mut settings = CacheSettings::default();
            set(&mut settings);
            refused(&settings, key);
        }
    }
}
