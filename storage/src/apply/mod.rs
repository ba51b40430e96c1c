//! The deterministic heart of the ledger: `(state, command) -> (state', outcome)`.
//!
//! Nothing here touches a clock, a random number, a hash map's iteration order or any I/O:
//! state is read and written through the narrow [`LedgerState`] trait, which the RocksDB
//! state machine implements over a write batch and the unit tests implement in memory.
//! Every replica applying the same entries therefore reaches the same state.
//!
//! Business rejections (insufficient funds, unknown account, ...) are [`Outcome`] values.
//! Broken invariants are bugs and stop the process: better down than wrong.

use rust_decimal::Decimal;

use crate::domain::{
    Account, AccountId, AccountType, Amount, Batch, Command, Currency, FailureReason,
    IdempotencyKey, IdempotencyRecord, Outcome, Transfer, TransferRequest, TransferStatus,
};

/// The state the apply logic reads and writes. Reads see earlier writes of the same batch.
pub trait LedgerState {
    type Error;

    fn account(&mut self, id: &AccountId) -> Result<Option<Account>, Self::Error>;
    /// True when the id belonged to an account that was deleted: ids are never reused, so
    /// history stays unambiguous.
    fn account_retired(&mut self, id: &AccountId) -> Result<bool, Self::Error>;
    fn transfer(
        &mut self,
        id: &crate::domain::TransactionId,
    ) -> Result<Option<Transfer>, Self::Error>;

    /// What a command sent with this `Idempotency-Key` did, if one was.
    fn idempotency(
        &mut self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, Self::Error>;

    fn put_account(&mut self, account: &Account);
    fn retire_account(&mut self, account: &Account);
    /// Records the transfer, its place in the journal and in the histories of
    /// `history_of` (the accounts of the transfer that exist: an id that never existed
    /// gets no history, so none appears if it is created later).
    fn put_transfer(&mut self, transfer: &Transfer, history_of: &[&AccountId]);
    fn put_idempotency(&mut self, key: &IdempotencyKey, record: &IdempotencyRecord);

    /// The next gapless journal sequence number (1, 2, 3, ...).
    fn next_sequence(&mut self) -> Result<u64, Self::Error>;
    /// Sum of all open balances: changes only by account creation and deletion.
    /// Kept as a raw decimal: many accounts may together exceed one account's bound.
    fn total_balance(&mut self) -> Result<Decimal, Self::Error>;
    fn set_total_balance(&mut self, total: Decimal);
}

/// Where an entry sits, stamped by the leader into the entry, never read from a clock here.
#[derive(Debug, Clone, Copy)]
pub struct EntryContext {
    pub log_index: u64,
    pub proposed_at_ms: u64,
}

/// Applies every command of a batch in order.
pub fn apply_batch<S: LedgerState>(
    state: &mut S,
    batch: &Batch,
    log_index: u64,
) -> Result<Vec<Outcome>, S::Error> {
    let context = EntryContext {
        log_index,
        proposed_at_ms: batch.proposed_at_ms,
    };
    let mut outcomes = Vec::with_capacity(batch.commands.len());
    for command in &batch.commands {
        outcomes.push(apply_command(state, command, context)?);
    }
    assert_eq!(outcomes.len(), batch.commands.len());
    Ok(outcomes)
}

/// Applies one command, honouring its `Idempotency-Key`: a key seen before with the same
/// command replays the original outcome; with another command it is a conflict. Neither
/// applies anything.
pub fn apply_command<S: LedgerState>(
    state: &mut S,
    command: &Command,
    context: EntryContext,
) -> Result<Outcome, S::Error> {
    let Some(key) = command.idempotency_key() else {
        return apply_unkeyed(state, command, context);
    };
    if let Some(record) = state.idempotency(key)? {
        return Ok(if record.command == *command {
            Outcome::Replay {
                original: Box::new(record.outcome),
            }
        } else {
            Outcome::IdempotencyConflict { key: key.clone() }
        });
    }
    let outcome = apply_unkeyed(state, command, context)?;
    let record = IdempotencyRecord {
        command: command.clone(),
        outcome: outcome.clone(),
    };
    state.put_idempotency(key, &record);
    Ok(outcome)
}

fn apply_unkeyed<S: LedgerState>(
    state: &mut S,
    command: &Command,
    context: EntryContext,
) -> Result<Outcome, S::Error> {
    match command {
        Command::CreateAccount {
            account_id,
            balance,
            account_type,
            currency,
            ..
        } => create_account(state, account_id, *balance, account_type, currency, context),
        Command::DeleteAccount { account_id, .. } => delete_account(state, account_id),
        Command::Transfer { request, .. } => transfer(state, request, context),
    }
}

fn create_account<S: LedgerState>(
    state: &mut S,
    account_id: &AccountId,
    balance: Amount,
    account_type: &AccountType,
    currency: &Currency,
    context: EntryContext,
) -> Result<Outcome, S::Error> {
    if state.account(account_id)?.is_some() || state.account_retired(account_id)? {
        return Ok(Outcome::AccountExists {
            account_id: account_id.clone(),
        });
    }
    // 10^13 accounts at the bound would be needed to leave Decimal's 28 digits.
    let total_after = state
        .total_balance()?
        .checked_add(balance.value())
        .expect("sum of all balances left the decimal range");
    let account = Account {
        account_id: account_id.clone(),
        balance,
        account_type: account_type.clone(),
        currency: currency.clone(),
        created_at_ms: context.proposed_at_ms,
        updated_at_ms: context.proposed_at_ms,
        version: 1,
    };
    state.put_account(&account);
    state.set_total_balance(total_after);
    Ok(Outcome::AccountCreated { account })
}

fn delete_account<S: LedgerState>(
    state: &mut S,
    account_id: &AccountId,
) -> Result<Outcome, S::Error> {
    let Some(account) = state.account(account_id)? else {
        return Ok(Outcome::AccountNotFound {
            account_id: account_id.clone(),
        });
    };
    if !account.balance.is_zero() {
        // A non-zero balance must never vanish: money leaves by transfer first.
        return Ok(Outcome::AccountNotEmpty { account });
    }
    state.retire_account(&account);
    Ok(Outcome::AccountDeleted {
        account_id: account_id.clone(),
    })
}

fn transfer<S: LedgerState>(
    state: &mut S,
    request: &TransferRequest,
    context: EntryContext,
) -> Result<Outcome, S::Error> {
    // Guaranteed by `TransferRequest`'s constructor: no boundary can build one that breaks
    // them, so a failure here is our own bug.
    assert!(!request.amount().is_zero());
    assert_ne!(
        request.source_account_id(),
        request.destination_account_id()
    );

    if let Some(existing) = state.transfer(request.transaction_id())? {
        if existing.request == *request {
            return Ok(Outcome::Transfer {
                transfer: existing,
                duplicate: true,
            });
        }
        return Ok(Outcome::TransferConflict { existing });
    }

    let source = state.account(request.source_account_id())?;
    let destination = state.account(request.destination_account_id())?;
    let mut history_of = Vec::with_capacity(2);
    if source.is_some() {
        history_of.push(request.source_account_id());
    }
    if destination.is_some() {
        history_of.push(request.destination_account_id());
    }
    let decision = decide(source, destination, request.amount());
    let sequence = state.next_sequence()?;
    let (status, reason) = match decision {
        Ok((source, destination)) => {
            let total_before = state.total_balance()?;
            commit_balances(state, source, destination, context);
            // Conservation: a transfer moves money, it never makes or destroys it.
            assert_eq!(state.total_balance()?, total_before);
            (TransferStatus::Completed, None)
        }
        Err(reason) => (TransferStatus::Failed, Some(reason)),
    };
    let transfer = Transfer {
        request: request.clone(),
        status,
        reason,
        sequence,
        log_index: context.log_index,
        committed_at_ms: context.proposed_at_ms,
    };
    state.put_transfer(&transfer, &history_of);
    Ok(Outcome::Transfer {
        transfer,
        duplicate: false,
    })
}

/// The business rules of a transfer, as a pure decision: the two updated accounts, or why not.
fn decide(
    source: Option<Account>,
    destination: Option<Account>,
    amount: Amount,
) -> Result<(Account, Account), FailureReason> {
    let mut source = source.ok_or(FailureReason::SourceAccountNotFound)?;
    let mut destination = destination.ok_or(FailureReason::DestinationAccountNotFound)?;
    if source.currency != destination.currency {
        return Err(FailureReason::CurrencyMismatch);
    }
    let source_balance = source
        .balance
        .checked_sub(amount)
        .ok_or(FailureReason::InsufficientFunds)?;
    let destination_balance = destination
        .balance
        .checked_add(amount)
        .ok_or(FailureReason::BalanceOverflow)?;
    source.balance = source_balance;
    destination.balance = destination_balance;
    Ok((source, destination))
}

fn commit_balances<S: LedgerState>(
    state: &mut S,
    mut source: Account,
    mut destination: Account,
    context: EntryContext,
) {
    for account in [&mut source, &mut destination] {
        account.version += 1;
        account.updated_at_ms = context.proposed_at_ms;
        assert!(account.balance >= Amount::ZERO);
        assert!(account.balance <= Amount::max());
    }
    state.put_account(&source);
    state.put_account(&destination);
}

#[cfg(test)]
mod tests;
