//! Read access to a node's applied ledger state, for the API. Every read that returns more
//! than one value reads them from one RocksDB snapshot, together with the applied log index
//! they reflect, so a multi-account read is never torn.

use std::sync::Arc;

use rocksdb::{Direction, IteratorMode, SnapshotWithThreadMode, DB};
use rust_decimal::Decimal;

use crate::db::{cf, decode};
use crate::domain::{Account, AccountId, TransactionId, Transfer};
use crate::error::{Error, Result};
use crate::keys::{self, CF_STATE};
use crate::types::LogId;

/// Most transfers one history page returns.
pub const HISTORY_PAGE_MAX: usize = 1000;

#[derive(Clone)]
pub struct LedgerReader {
    db: Arc<DB>,
}

/// Values read at one applied log index.
#[derive(Debug, Clone, PartialEq)]
pub struct AtIndex<T> {
    pub value: T,
    pub applied_index: u64,
}

pub struct HistoryPage {
    pub transfers: Vec<Transfer>,
    /// Pass as `before` to read the next (older) page; `None` at the end.
    pub next_before: Option<u64>,
}

/// What the invariant check found.
#[derive(Debug, Clone, PartialEq)]
pub struct Audit {
    pub applied_index: u64,
    pub accounts: u64,
    pub sum_of_balances: Decimal,
    pub recorded_total: Decimal,
    /// FNV-1a over every key and value of the state: equal on replicas at equal indexes.
    pub digest: u64,
}

type View<'a> = SnapshotWithThreadMode<'a, DB>;

impl LedgerReader {
    pub fn new(db: Arc<DB>) -> LedgerReader {
        LedgerReader { db }
    }

    fn get<T: serde::de::DeserializeOwned>(
        &self,
        view: &View<'_>,
        key: &[u8],
    ) -> Result<Option<T>> {
        match view.get_cf(cf(&self.db, CF_STATE), key)? {
            Some(bytes) => decode(key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    fn applied(&self, view: &View<'_>) -> Result<u64> {
        let applied: Option<LogId> = self.get(view, keys::META_APPLIED)?;
        Ok(applied.map_or(0, |log_id| log_id.index))
    }

    pub fn applied_index(&self) -> Result<u64> {
        self.applied(&self.db.snapshot())
    }

    pub fn accounts(&self, ids: &[AccountId]) -> Result<AtIndex<Vec<Option<Account>>>> {
        let view = self.db.snapshot();
        let value = ids
            .iter()
            .map(|id| self.get(&view, &keys::account(id)))
            .collect::<Result<Vec<_>>>()?;
        Ok(AtIndex {
            value,
            applied_index: self.applied(&view)?,
        })
    }

    pub fn account(&self, id: &AccountId) -> Result<AtIndex<Option<Account>>> {
        let AtIndex {
            mut value,
            applied_index,
        } = self.accounts(std::slice::from_ref(id))?;
        Ok(AtIndex {
            value: value.pop().flatten(),
            applied_index,
        })
    }

    pub fn transfer(&self, id: &TransactionId) -> Result<AtIndex<Option<Transfer>>> {
        let view = self.db.snapshot();
        Ok(AtIndex {
            value: self.get(&view, &keys::transfer(id))?,
            applied_index: self.applied(&view)?,
        })
    }

    /// One account's transfers, newest first, strictly older than `before` when given;
    /// `None` when the id never belonged to an account (open or deleted), read at the same
    /// index as the page.
    pub fn history(
        &self,
        id: &AccountId,
        before: Option<u64>,
        limit: usize,
    ) -> Result<AtIndex<Option<HistoryPage>>> {
        let limit = limit.clamp(1, HISTORY_PAGE_MAX);
        let view = self.db.snapshot();
        let state = cf(&self.db, CF_STATE);
        let known = view.get_cf(state, keys::account(id))?.is_some()
            || view.get_cf(state, keys::retired_account(id))?.is_some();
        if !known {
            return Ok(AtIndex {
                value: None,
                applied_index: self.applied(&view)?,
            });
        }
        let prefix = keys::history_prefix(id);
        let start = keys::history(id, before.unwrap_or(u64::MAX));
        let mode = IteratorMode::From(&start, Direction::Reverse);
        let mut transfers = Vec::new();
        let mut next_before = None;
        for item in view.iterator_cf(cf(&self.db, CF_STATE), mode) {
            let (key, transaction_id) = item?;
            if !key.starts_with(&prefix) {
                break;
            }
            let sequence = keys::history_sequence(&key);
            if before.is_some_and(|before| sequence >= before) {
                continue;
            }
            if transfers.len() == limit {
                next_before = transfers.last().map(|t: &Transfer| t.sequence);
                break;
            }
            let transaction_id = TransactionId::parse(&String::from_utf8_lossy(&transaction_id))
                .map_err(|e| Error::CorruptSnapshot(e.to_string()))?;
            let transfer: Transfer = self
                .get(&view, &keys::transfer(&transaction_id))?
                .ok_or_else(|| {
                    Error::CorruptSnapshot(format!("history names unknown {transaction_id}"))
                })?;
            assert_eq!(transfer.sequence, sequence);
            transfers.push(transfer);
        }
        Ok(AtIndex {
            value: Some(HistoryPage {
                transfers,
                next_before,
            }),
            applied_index: self.applied(&view)?,
        })
    }

    /// Scans the whole state once: conservation, no negative balance, and a digest.
    pub fn audit(&self) -> Result<Audit> {
        let view = self.db.snapshot();
        let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
        let mut accounts = 0;
        let mut sum_of_balances = Decimal::ZERO;
        for item in view.iterator_cf(cf(&self.db, CF_STATE), IteratorMode::Start) {
            let (key, value) = item?;
            for byte in key.iter().chain([0xffu8].iter()).chain(value.iter()) {
                digest = (digest ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
            }
            if key.first() == Some(&keys::account_prefix()[0]) {
                let account: Account = decode(&key, &value)?;
                assert!(account.balance.value() >= Decimal::ZERO);
                sum_of_balances += account.balance.value();
                accounts += 1;
            }
        }
        let recorded_total: Option<Decimal> = self.get(&view, keys::META_TOTAL_BALANCE)?;
        Ok(Audit {
            applied_index: self.applied(&view)?,
            accounts,
            sum_of_balances,
            recorded_total: recorded_total.unwrap_or_default(),
            digest,
        })
    }
}
