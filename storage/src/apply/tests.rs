//! Unit tests of the pure apply logic over an in-memory state.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::str::FromStr;

use rust_decimal::Decimal;

use super::*;
use crate::domain::{TransactionId, TransferStatus};
use serde_json::json;

#[derive(Default)]
struct Memory {
    accounts: BTreeMap<AccountId, Account>,
    retired: BTreeMap<AccountId, Account>,
    transfers: BTreeMap<TransactionId, Transfer>,
    histories: BTreeMap<AccountId, Vec<u64>>,
    idempotency: BTreeMap<IdempotencyKey, IdempotencyRecord>,
    next_sequence: u64,
    total: Decimal,
}

impl LedgerState for Memory {
    type Error = Infallible;
    fn account(&mut self, id: &AccountId) -> Result<Option<Account>, Infallible> {
        Ok(self.accounts.get(id).cloned())
    }
    fn account_retired(&mut self, id: &AccountId) -> Result<bool, Infallible> {
        Ok(self.retired.contains_key(id))
    }
    fn transfer(&mut self, id: &TransactionId) -> Result<Option<Transfer>, Infallible> {
        Ok(self.transfers.get(id).cloned())
    }
    fn put_account(&mut self, account: &Account) {
        self.accounts
            .insert(account.account_id.clone(), account.clone());
    }
    fn retire_account(&mut self, account: &Account) {
        self.accounts.remove(&account.account_id);
        self.retired
            .insert(account.account_id.clone(), account.clone());
    }
    fn idempotency(
        &mut self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, Infallible> {
        Ok(self.idempotency.get(key).cloned())
    }
    fn put_transfer(&mut self, transfer: &Transfer, history_of: &[&AccountId]) {
        self.transfers
            .insert(transfer.request.transaction_id().clone(), transfer.clone());
        for account in history_of {
            self.histories
                .entry((*account).clone())
                .or_default()
                .push(transfer.sequence);
        }
    }
    fn put_idempotency(&mut self, key: &IdempotencyKey, record: &IdempotencyRecord) {
        self.idempotency.insert(key.clone(), record.clone());
    }
    fn next_sequence(&mut self) -> Result<u64, Infallible> {
        self.next_sequence += 1;
        Ok(self.next_sequence)
    }
    fn total_balance(&mut self) -> Result<Decimal, Infallible> {
        Ok(self.total)
    }
    fn set_total_balance(&mut self, total: Decimal) {
        self.total = total;
    }
}

impl Memory {
    fn sum(&self) -> Decimal {
        self.accounts.values().map(|a| a.balance.value()).sum()
    }
    fn balance(&self, id: &str) -> Decimal {
        self.accounts[&AccountId::parse(id).unwrap()]
            .balance
            .value()
    }
}

fn amount(text: &str) -> Amount {
    Amount::parse(Decimal::from_str(text).unwrap()).unwrap()
}

fn context(index: u64) -> EntryContext {
    EntryContext {
        log_index: index,
        proposed_at_ms: 1_700_000_000_000 + index,
    }
}

fn create(state: &mut Memory, id: &str, balance: &str, currency: &str) -> Outcome {
    let command = Command::CreateAccount {
        account_id: AccountId::parse(id).unwrap(),
        balance: amount(balance),
        account_type: AccountType::savings(),
        currency: Currency::parse(currency).unwrap(),
        idempotency_key: None,
    };
    apply_command(state, &command, context(1)).unwrap()
}

fn request(id: &str, from: &str, to: &str, value: &str) -> TransferRequest {
    TransferRequest::new(
        TransactionId::parse(id).unwrap(),
        AccountId::parse(from).unwrap(),
        AccountId::parse(to).unwrap(),
        amount(value),
        None,
    )
    .unwrap()
}

fn transfer_command(request: &TransferRequest) -> Command {
    Command::Transfer {
        request: request.clone(),
        idempotency_key: None,
    }
}

fn send(state: &mut Memory, request: &TransferRequest) -> Outcome {
    apply_command(state, &transfer_command(request), context(2)).unwrap()
}

fn status(outcome: &Outcome) -> (TransferStatus, Option<FailureReason>, bool) {
    match outcome {
        Outcome::Transfer {
            transfer,
            duplicate,
        } => (transfer.status, transfer.reason, *duplicate),
        other => panic!("not a transfer outcome: {other:?}"),
    }
}

#[test]
fn transfers_conserve_the_total() {
    let mut state = Memory::default();
    create(&mut state, "A", "100.5", "USD");
    create(&mut state, "B", "0", "USD");
    create(&mut state, "C", "7.0001", "USD");
    let total = state.sum();
    assert_eq!(total, state.total);
    let moves = [
        ("A", "B", "10.25"),
        ("B", "C", "3"),
        ("C", "A", "0.0001"),
        ("A", "C", "90.25"),
    ];
    for (n, (from, to, value)) in moves.iter().enumerate() {
        let outcome = send(&mut state, &request(&format!("t{n}"), from, to, value));
        assert_eq!(status(&outcome).0, TransferStatus::Completed);
        assert_eq!(state.sum(), total);
        assert_eq!(state.total, total);
    }
    assert_eq!(state.balance("A"), Decimal::from_str("0.0001").unwrap());
    assert_eq!(state.balance("C"), Decimal::from_str("100.25").unwrap());
}

#[test]
fn overdraft_is_refused_and_changes_nothing() {
    let mut state = Memory::default();
    create(&mut state, "A", "5", "USD");
    create(&mut state, "B", "0", "USD");
    let outcome = send(&mut state, &request("t1", "A", "B", "5.0001"));
    assert_eq!(
        status(&outcome),
        (
            TransferStatus::Failed,
            Some(FailureReason::InsufficientFunds),
            false
        )
    );
    assert_eq!(state.balance("A"), Decimal::from(5));
    assert_eq!(state.balance("B"), Decimal::ZERO);
    // Draining to exactly zero is allowed.
    let outcome = send(&mut state, &request("t2", "A", "B", "5"));
    assert_eq!(status(&outcome).0, TransferStatus::Completed);
    assert_eq!(state.balance("A"), Decimal::ZERO);
}

#[test]
fn a_resend_returns_the_original_outcome_and_applies_once() {
    let mut state = Memory::default();
    create(&mut state, "A", "10", "USD");
    create(&mut state, "B", "0", "USD");
    let first = send(&mut state, &request("t1", "A", "B", "4"));
    let again = send(&mut state, &request("t1", "A", "B", "4.0000"));
    assert_eq!(status(&again), (TransferStatus::Completed, None, true));
    assert_eq!(state.balance("A"), Decimal::from(6));
    let (Outcome::Transfer { transfer: a, .. }, Outcome::Transfer { transfer: b, .. }) =
        (&first, &again)
    else {
        panic!()
    };
    assert_eq!(a, b);
    // Same id, different body: a conflict, nothing applied.
    let conflict = send(&mut state, &request("t1", "A", "B", "5"));
    assert!(matches!(conflict, Outcome::TransferConflict { .. }));
    assert_eq!(state.balance("A"), Decimal::from(6));
    // A failed transfer is remembered too: a resend fails the same way even if funds arrived.
    let failed = send(&mut state, &request("t2", "B", "A", "100"));
    assert_eq!(status(&failed).0, TransferStatus::Failed);
    send(&mut state, &request("t3", "A", "B", "6"));
    let resent = send(&mut state, &request("t2", "B", "A", "100"));
    assert_eq!(
        status(&resent),
        (
            TransferStatus::Failed,
            Some(FailureReason::InsufficientFunds),
            true
        )
    );
}

#[test]
fn overflow_is_a_rejection_not_a_wrap() {
    let mut state = Memory::default();
    create(&mut state, "RICH", "999999999999999.9999", "USD");
    create(&mut state, "FULL", "999999999999999.9999", "USD");
    let outcome = send(&mut state, &request("t1", "RICH", "FULL", "0.0001"));
    assert_eq!(
        status(&outcome),
        (
            TransferStatus::Failed,
            Some(FailureReason::BalanceOverflow),
            false
        )
    );
    assert_eq!(state.balance("FULL"), Amount::max().value());
    assert!(Amount::parse(Decimal::from_str("1000000000000000").unwrap()).is_err());
}

#[test]
fn precision_is_exact_to_four_places() {
    assert!(Amount::parse(Decimal::from_str("0.00001").unwrap()).is_err());
    assert_eq!(amount("1.10000").value().to_string(), "1.1000");
    let mut state = Memory::default();
    create(&mut state, "A", "0.3", "USD");
    create(&mut state, "B", "0", "USD");
    for n in 0..3 {
        send(&mut state, &request(&format!("t{n}"), "A", "B", "0.1"));
    }
    // 0.1 + 0.1 + 0.1 is exactly 0.3 here, unlike in floating point.
    assert_eq!(state.balance("A"), Decimal::ZERO);
    assert_eq!(state.balance("B"), Decimal::from_str("0.3").unwrap());
}

#[test]
fn unknown_accounts_and_currency_mismatch_are_business_failures() {
    let mut state = Memory::default();
    create(&mut state, "A", "10", "USD");
    create(&mut state, "E", "10", "EUR");
    let cases = [
        (
            request("t1", "Z", "A", "1"),
            FailureReason::SourceAccountNotFound,
        ),
        (
            request("t2", "A", "Z", "1"),
            FailureReason::DestinationAccountNotFound,
        ),
        (
            request("t3", "A", "E", "1"),
            FailureReason::CurrencyMismatch,
        ),
    ];
    for (request, reason) in cases {
        assert_eq!(
            status(&send(&mut state, &request)),
            (TransferStatus::Failed, Some(reason), false)
        );
    }
    assert_eq!(state.sum(), Decimal::from(20));
}

#[test]
fn accounts_with_money_are_not_deleted_and_ids_are_not_reused() {
    let mut state = Memory::default();
    create(&mut state, "A", "10", "USD");
    create(&mut state, "B", "0", "USD");
    assert!(matches!(
        create(&mut state, "A", "1", "USD"),
        Outcome::AccountExists { .. }
    ));
    let delete = |state: &mut Memory, id: &str| {
        let command = Command::DeleteAccount {
            account_id: AccountId::parse(id).unwrap(),
            idempotency_key: None,
        };
        apply_command(state, &command, context(3)).unwrap()
    };
    assert!(matches!(
        delete(&mut state, "A"),
        Outcome::AccountNotEmpty { .. }
    ));
    assert!(matches!(
        delete(&mut state, "B"),
        Outcome::AccountDeleted { .. }
    ));
    assert!(matches!(
        delete(&mut state, "B"),
        Outcome::AccountNotFound { .. }
    ));
    assert!(matches!(
        create(&mut state, "B", "0", "USD"),
        Outcome::AccountExists { .. }
    ));
    assert_eq!(state.total, Decimal::from(10));
}

#[test]
fn sequences_are_gapless_across_completed_and_failed_transfers() {
    let mut state = Memory::default();
    create(&mut state, "A", "1", "USD");
    create(&mut state, "B", "0", "USD");
    let mut sequences = Vec::new();
    for (n, value) in ["1", "5", "1"].iter().enumerate() {
        if let Outcome::Transfer { transfer, .. } =
            send(&mut state, &request(&format!("t{n}"), "A", "B", value))
        {
            sequences.push(transfer.sequence);
        }
        send(&mut state, &request(&format!("t{n}"), "A", "B", value));
    }
    assert_eq!(sequences, vec![1, 2, 3]);
}

#[test]
fn invalid_transfer_requests_cannot_be_built_or_decoded() {
    let a = || AccountId::parse("A").unwrap();
    let id = || TransactionId::parse("t").unwrap();
    assert!(TransferRequest::new(
        id(),
        a(),
        AccountId::parse("B").unwrap(),
        Amount::ZERO,
        None
    )
    .is_err());
    assert!(TransferRequest::new(id(), a(), a(), amount("1"), None).is_err());
    let valid = request("t1", "A", "B", "1");
    let mut wire = serde_json::to_value(transfer_command(&valid)).unwrap();
    assert_eq!(
        serde_json::from_value::<Command>(wire.clone()).unwrap(),
        transfer_command(&valid)
    );
    wire["request"]["amount"] = json!("0.0000");
    assert!(serde_json::from_value::<Command>(wire.clone()).is_err());
    wire["request"]["amount"] = json!("1.0000");
    wire["request"]["destinationAccountId"] = json!("A");
    assert!(serde_json::from_value::<Command>(wire).is_err());
    // A batch is bounded and never empty, whoever decodes it.
    let batch = |count: usize| json!({"proposedAtMs": 1, "commands": vec![serde_json::to_value(transfer_command(&valid)).unwrap(); count]});
    assert!(serde_json::from_value::<Batch>(batch(1)).is_ok());
    assert!(serde_json::from_value::<Batch>(batch(0)).is_err());
    assert!(serde_json::from_value::<Batch>(batch(crate::domain::BATCH_COMMANDS_MAX + 1)).is_err());
}

#[test]
fn an_idempotency_key_replays_the_original_outcome_and_refuses_another_command() {
    let mut state = Memory::default();
    let key = IdempotencyKey::parse("key-1").unwrap();
    let create_keyed = |id: &str, balance: &str| Command::CreateAccount {
        account_id: AccountId::parse(id).unwrap(),
        balance: amount(balance),
        account_type: AccountType::savings(),
        currency: Currency::usd(),
        idempotency_key: Some(key.clone()),
    };
    let first = apply_command(&mut state, &create_keyed("A", "10"), context(1)).unwrap();
    assert!(matches!(first, Outcome::AccountCreated { .. }));
    // The resend replays the creation (not "exists"), and applies nothing.
    let again = apply_command(&mut state, &create_keyed("A", "10"), context(2)).unwrap();
    assert_eq!(
        again,
        Outcome::Replay {
            original: Box::new(first)
        }
    );
    assert_eq!(state.total, Decimal::from(10));
    // Same key, other command: refused, nothing applied.
    let other = apply_command(&mut state, &create_keyed("B", "10"), context(3)).unwrap();
    assert!(matches!(other, Outcome::IdempotencyConflict { .. }));
    assert!(!state.accounts.contains_key(&AccountId::parse("B").unwrap()));
    // A keyed delete replays "deleted" rather than answering "not found".
    create(&mut state, "Z", "0", "USD");
    let delete = Command::DeleteAccount {
        account_id: AccountId::parse("Z").unwrap(),
        idempotency_key: Some(IdempotencyKey::parse("del-Z").unwrap()),
    };
    let deleted = apply_command(&mut state, &delete, context(4)).unwrap();
    assert!(matches!(deleted, Outcome::AccountDeleted { .. }));
    let replayed = apply_command(&mut state, &delete, context(5)).unwrap();
    assert_eq!(
        replayed,
        Outcome::Replay {
            original: Box::new(deleted)
        }
    );
}

#[test]
fn ids_that_never_existed_get_no_history() {
    let mut state = Memory::default();
    create(&mut state, "A", "10", "USD");
    send(&mut state, &request("t1", "A", "GHOST", "1"));
    send(&mut state, &request("t2", "GHOST", "A", "1"));
    let ghost = AccountId::parse("GHOST").unwrap();
    assert!(!state.histories.contains_key(&ghost));
    assert_eq!(state.histories[&AccountId::parse("A").unwrap()], vec![1, 2]);
}
