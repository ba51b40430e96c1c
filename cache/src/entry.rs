//! What one cached account looks like in Redis, and the compare-and-set that writes it.
//!
//! Key: `{key_prefix}acct:{account id}`. Value: `{version} {stored_ms} {payload}`, where
//! `version` is a log index at which the payload was the account's state (the index of its
//! last change when the leader publishes it, the applied index of the read when a miss
//! populates it), `stored_ms` is Redis's own clock when it was written (one clock for every
//! writer and reader, so ages need no synchronised node clocks), and `payload` is the
//! account's JSON or `-` for a deleted account (a tombstone).
//!
//! Every write goes through [`CAS_SCRIPT`]: it writes only when the stored version is not
//! newer, so across concurrent writers, late publishes, a leader change and populating
//! readers, a key's version never goes backwards while the key lives.

use storage::domain::{Account, AccountId};

/// Compare-and-set on the version. KEYS[1]: the key; ARGV: version, payload, ttl in ms.
/// Returns 1 when written, 0 when a newer version is stored. Equal versions are rewritten:
/// same index, same state, and the write refreshes the time and the TTL.
pub const CAS_SCRIPT: &str = r#"
local current = redis.call('GET', KEYS[1])
if current then
  local stored = tonumber(string.match(current, '^(%d+) '))
  if stored and stored > tonumber(ARGV[1]) then
    return 0
  end
end
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. string.format('%d', ms) .. ' ' .. ARGV[2], 'PX', ARGV[3])
return 1
"#;

const TOMBSTONE: &str = "-";
const ACCOUNT_KEY_INFIX: &str = "acct:";

/// A decoded cache value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub version: u64,
    /// Redis's clock when it was written, in ms since the Unix epoch.
    pub stored_ms: u64,
    /// `None`: a tombstone (the account was deleted).
    pub account: Option<Account>,
}

impl Entry {
    /// Parses a stored value; `None` when it is not one this crate wrote (treated as a miss).
    pub fn decode(text: &str) -> Option<Entry> {
        let mut parts = text.splitn(3, ' ');
        let version = parts.next()?.parse().ok()?;
        let stored_ms = parts.next()?.parse().ok()?;
        let payload = parts.next()?;
        let account = if payload == TOMBSTONE {
            None
        } else {
            Some(serde_json::from_str(payload).ok()?)
        };
        Some(Entry {
            version,
            stored_ms,
            account,
        })
    }

    /// Milliseconds since it was written, by Redis's clock `now_ms`.
    pub fn age_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.stored_ms)
    }
}

/// The payload argument of [`CAS_SCRIPT`] for an account's state.
pub fn payload(account: Option<&Account>) -> String {
    match account {
        Some(account) => serde_json::to_string(account).expect("accounts always serialize"),
        None => TOMBSTONE.to_owned(),
    }
}

pub fn key(prefix: &str, id: &AccountId) -> String {
    format!("{prefix}{ACCOUNT_KEY_INFIX}{}", id.as_str())
}

/// The SCAN pattern of every account key under `prefix` (which holds no glob characters:
/// the configuration refuses them).
pub fn key_pattern(prefix: &str) -> String {
    format!("{prefix}{ACCOUNT_KEY_INFIX}*")
}

/// The account id of a key under `prefix`, if it is one.
pub fn id_of_key(prefix: &str, key: &str) -> Option<AccountId> {
    let id = key.strip_prefix(prefix)?.strip_prefix(ACCOUNT_KEY_INFIX)?;
    AccountId::parse(id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::domain::{AccountType, Amount, Currency};

    fn account() -> Account {
        Account {
            account_id: AccountId::parse("alice").unwrap(),
            balance: Amount::parse_text("12.3400").unwrap(),
            account_type: AccountType::parse("SAVINGS").unwrap(),
            currency: Currency::parse("USD").unwrap(),
            created_at_ms: 1,
            updated_at_ms: 2,
            version: 3,
        }
    }

    #[test]
    fn values_round_trip() {
        let text = format!("17 1700000000123 {}", payload(Some(&account())));
        let entry = Entry::decode(&text).unwrap();
        assert_eq!(entry.version, 17);
        assert_eq!(entry.stored_ms, 1_700_000_000_123);
        assert_eq!(entry.account, Some(account()));
        assert_eq!(entry.age_ms(1_700_000_000_200), 77);
        let tombstone = Entry::decode(&format!("18 5 {}", payload(None))).unwrap();
        assert_eq!(tombstone.account, None);
    }

    #[test]
    fn foreign_values_are_misses() {
        for text in ["", "x", "1", "1 2", "a 2 -", "1 b -", "1 2 {not json"] {
            assert_eq!(Entry::decode(text), None, "{text}");
        }
    }

    #[test]
    fn keys_map_back_to_ids() {
        let id = AccountId::parse("a:b-1").unwrap();
        let key = key("ledger:", &id);
        assert_eq!(key, "ledger:acct:a:b-1");
        assert_eq!(id_of_key("ledger:", &key), Some(id));
        assert_eq!(id_of_key("other:", &key), None);
        assert_eq!(key_pattern("ledger:"), "ledger:acct:*");
    }
}
