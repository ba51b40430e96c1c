//! The ledger's vocabulary: identifiers, amounts, accounts, transfers, the commands that
//! change them and the outcomes they produce.
//!
//! Every type here is parsed once at the boundary ("parse, don't validate"): a value of
//! `AccountId` or `Amount` is valid by construction, so the apply logic never re-checks
//! shapes, only business rules.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Longest identifier the seed's `varchar(50)` columns hold.
pub const ID_LENGTH_MAX: usize = 50;
/// Longest account type the seed's `varchar(20)` column holds.
pub const ACCOUNT_TYPE_LENGTH_MAX: usize = 20;
/// decimal(19,4): four fractional digits.
pub const AMOUNT_SCALE_MAX: u32 = 4;
/// decimal(19,4): fifteen integer digits, so every amount is below 10^15.
pub const AMOUNT_INTEGER_DIGITS_MAX: u32 = 15;
/// Client timestamps are short ISO-8601 strings; anything longer is not one.
pub const CLIENT_TIMESTAMP_LENGTH_MAX: usize = 40;

/// Why a value could not be parsed; the field name is added by the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

fn parse_identifier(value: &str, what: &str) -> Result<String, InvalidValue> {
    if value.is_empty() {
        return Err(InvalidValue(format!("{what} must not be empty")));
    }
    if value.len() > ID_LENGTH_MAX {
        return Err(InvalidValue(format!(
            "{what} must be at most {ID_LENGTH_MAX} characters"
        )));
    }
    // Why a narrow alphabet: ids become RocksDB key parts (see `keys`), URL path segments
    // and SQL values; excluding separators and control characters keeps all three safe.
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
    if !value.chars().all(allowed) {
        return Err(InvalidValue(format!(
            "{what} may contain only letters, digits, '-', '_', '.', ':'"
        )));
    }
    Ok(value.to_owned())
}

macro_rules! identifier {
    ($name:ident, $what:literal) => {
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: &str) -> Result<Self, InvalidValue> {
                parse_identifier(value, $what).map(Self)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(value: String) -> Result<Self, InvalidValue> {
                Self::parse(&value)
            }
        }
        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

identifier!(AccountId, "account id");
identifier!(TransactionId, "transaction id");

/// An exact money amount within decimal(19,4): at most four fractional digits and fifteen
/// integer digits. May be zero; never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
// Read only from the strict text grammar (`money`), written as "12.3400".
#[serde(try_from = "String", into = "String")]
pub struct Amount(Decimal);

impl Amount {
    /// Zero with four decimal places, like every other amount, so it encodes as "0.0000".
    pub const ZERO: Amount = Amount(Decimal::from_parts(0, 0, 0, false, AMOUNT_SCALE_MAX));

    /// Largest representable amount: 999,999,999,999,999.9999.
    pub fn max() -> Amount {
        Amount(Decimal::from_i128_with_scale(
            9_999_999_999_999_999_999,
            AMOUNT_SCALE_MAX,
        ))
    }

    pub fn parse(value: Decimal) -> Result<Amount, InvalidValue> {
        let value = value.normalize();
        if value.is_sign_negative() && !value.is_zero() {
            return Err(InvalidValue("must not be negative".into()));
        }
        if value.scale() > AMOUNT_SCALE_MAX {
            return Err(InvalidValue(format!(
                "must have at most {AMOUNT_SCALE_MAX} decimal places"
            )));
        }
        if value > Self::max().0 {
            return Err(InvalidValue(format!(
                "must have at most {AMOUNT_INTEGER_DIGITS_MAX} integer digits"
            )));
        }
        // Always carry four decimal places, as decimal(19,4) does, so equal amounts have
        // equal encodings (idempotency compares bodies).
        let mut value = value.abs();
        value.rescale(AMOUNT_SCALE_MAX);
        Ok(Amount(value))
    }

    pub fn value(self) -> Decimal {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// `None` when the sum would leave decimal(19,4): a rejection, never a wrap.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        let sum = self.0.checked_add(other.0)?;
        (sum <= Self::max().0).then_some(Amount(sum))
    }

    /// `None` when the difference would be negative.
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        let difference = self.0.checked_sub(other.0)?;
        (!difference.is_sign_negative() || difference.is_zero()).then(|| {
            let mut d = difference.abs();
            d.rescale(AMOUNT_SCALE_MAX);
            Amount(d)
        })
    }
}

impl TryFrom<Decimal> for Amount {
    type Error = InvalidValue;
    fn try_from(value: Decimal) -> Result<Self, InvalidValue> {
        Amount::parse(value)
    }
}
impl From<Amount> for Decimal {
    fn from(value: Amount) -> Decimal {
        value.0
    }
}
impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// ISO-4217 style currency code: three upper-case letters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    pub fn parse(value: &str) -> Result<Currency, InvalidValue> {
        if value.len() == 3 && value.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(Currency(value.to_owned()))
        } else {
            Err(InvalidValue(
                "must be three upper-case letters, like USD".into(),
            ))
        }
    }
    pub fn usd() -> Currency {
        Currency("USD".into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for Currency {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, InvalidValue> {
        Currency::parse(&value)
    }
}
impl From<Currency> for String {
    fn from(value: Currency) -> String {
        value.0
    }
}

/// Account type, free-form as in the seed (`SAVINGS`, `CHECKING`, ...) but bounded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountType(String);

impl AccountType {
    pub fn parse(value: &str) -> Result<AccountType, InvalidValue> {
        let allowed = |c: char| c.is_ascii_uppercase() || c == '_';
        if !value.is_empty() && value.len() <= ACCOUNT_TYPE_LENGTH_MAX && value.chars().all(allowed)
        {
            Ok(AccountType(value.to_owned()))
        } else {
            Err(InvalidValue(format!(
                "must be 1 to {ACCOUNT_TYPE_LENGTH_MAX} upper-case letters or '_', like SAVINGS"
            )))
        }
    }
    pub fn savings() -> AccountType {
        AccountType("SAVINGS".into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for AccountType {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, InvalidValue> {
        AccountType::parse(&value)
    }
}
impl From<AccountType> for String {
    fn from(value: AccountType) -> String {
        value.0
    }
}

/// An account as the state machine stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub account_id: AccountId,
    pub balance: Amount,
    pub account_type: AccountType,
    pub currency: Currency,
    /// Leader-stamped time of creation, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    /// Number of changes applied to this account since creation.
    pub version: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransferStatus {
    Completed,
    Failed,
}

impl TransferStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferStatus::Completed => "COMPLETED",
            TransferStatus::Failed => "FAILED",
        }
    }
}

/// Why a transfer was refused: a business outcome, recorded like a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureReason {
    InsufficientFunds,
    SourceAccountNotFound,
    DestinationAccountNotFound,
    CurrencyMismatch,
    BalanceOverflow,
}

impl FailureReason {
    pub fn code(self) -> &'static str {
        match self {
            FailureReason::InsufficientFunds => "INSUFFICIENT_FUNDS",
            FailureReason::SourceAccountNotFound => "SOURCE_ACCOUNT_NOT_FOUND",
            FailureReason::DestinationAccountNotFound => "DESTINATION_ACCOUNT_NOT_FOUND",
            FailureReason::CurrencyMismatch => "CURRENCY_MISMATCH",
            FailureReason::BalanceOverflow => "BALANCE_OVERFLOW",
        }
    }
    /// The seed's wording: "Error processing transaction: Insufficient funds".
    pub fn message(self) -> &'static str {
        match self {
            FailureReason::InsufficientFunds => "Insufficient funds",
            FailureReason::SourceAccountNotFound => "Source account not found",
            FailureReason::DestinationAccountNotFound => "Destination account not found",
            FailureReason::CurrencyMismatch => "Currency mismatch between accounts",
            FailureReason::BalanceOverflow => "Destination balance would exceed decimal(19,4)",
        }
    }
}

/// What a client asked to move; compared field by field for idempotency.
///
/// Its rules hold by construction, whoever builds it (REST, a peer's frame, the disk): the
/// amount is positive and the two accounts differ. A value breaking them cannot be built
/// or decoded, so apply only asserts what a correct leader can never propose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "TransferRequestFields")]
pub struct TransferRequest {
    transaction_id: TransactionId,
    source_account_id: AccountId,
    destination_account_id: AccountId,
    amount: Amount,
    /// The client's own timestamp, normalised at the boundary; part of the body.
    client_timestamp: Option<String>,
}

/// Why a transfer request breaks a rule, naming the field a client would fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidRequest {
    pub field: &'static str,
    pub problem: String,
}

impl TransferRequest {
    pub fn new(
        transaction_id: TransactionId,
        source_account_id: AccountId,
        destination_account_id: AccountId,
        amount: Amount,
        client_timestamp: Option<String>,
    ) -> Result<TransferRequest, InvalidRequest> {
        let invalid = |field, problem: &str| InvalidRequest {
            field,
            problem: problem.to_owned(),
        };
        if amount.is_zero() {
            return Err(invalid("amount", "must be greater than 0"));
        }
        if source_account_id == destination_account_id {
            return Err(invalid(
                "destinationAccountId",
                "must differ from sourceAccountId",
            ));
        }
        if client_timestamp
            .as_ref()
            .is_some_and(|t| t.is_empty() || t.len() > CLIENT_TIMESTAMP_LENGTH_MAX)
        {
            return Err(invalid("timestamp", "must be 1 to 40 characters"));
        }
        Ok(TransferRequest {
            transaction_id,
            source_account_id,
            destination_account_id,
            amount,
            client_timestamp,
        })
    }

    pub fn transaction_id(&self) -> &TransactionId {
        &self.transaction_id
    }
    pub fn source_account_id(&self) -> &AccountId {
        &self.source_account_id
    }
    pub fn destination_account_id(&self) -> &AccountId {
        &self.destination_account_id
    }
    pub fn amount(&self) -> Amount {
        self.amount
    }
    pub fn client_timestamp(&self) -> Option<&str> {
        self.client_timestamp.as_deref()
    }
}

/// The decoded shape of a [`TransferRequest`], before its rules are checked.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TransferRequestFields {
    transaction_id: TransactionId,
    source_account_id: AccountId,
    destination_account_id: AccountId,
    amount: Amount,
    client_timestamp: Option<String>,
}

impl TryFrom<TransferRequestFields> for TransferRequest {
    type Error = InvalidRequest;
    fn try_from(fields: TransferRequestFields) -> Result<TransferRequest, InvalidRequest> {
        TransferRequest::new(
            fields.transaction_id,
            fields.source_account_id,
            fields.destination_account_id,
            fields.amount,
            fields.client_timestamp,
        )
    }
}

/// Longest `Idempotency-Key` header value: room for a UUID, a ULID or a prefixed id.
pub const IDEMPOTENCY_KEY_LENGTH_MAX: usize = 128;

/// A client's `Idempotency-Key`: the same key with the same command returns the original
/// outcome; with a different command it is refused. Remembered in the state machine.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(value: &str) -> Result<IdempotencyKey, InvalidValue> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
        if value.is_empty()
            || value.len() > IDEMPOTENCY_KEY_LENGTH_MAX
            || !value.chars().all(allowed)
        {
            return Err(InvalidValue(format!(
                "must be 1 to {IDEMPOTENCY_KEY_LENGTH_MAX} letters, digits, '-', '_', '.', ':'"
            )));
        }
        Ok(IdempotencyKey(value.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for IdempotencyKey {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, InvalidValue> {
        IdempotencyKey::parse(&value)
    }
}
impl From<IdempotencyKey> for String {
    fn from(value: IdempotencyKey) -> String {
        value.0
    }
}
impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A transfer as applied: the request, its outcome and where it sits in the commit order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transfer {
    pub request: TransferRequest,
    pub status: TransferStatus,
    pub reason: Option<FailureReason>,
    /// Gapless position in the committed journal (1, 2, 3, ...): the archiver's cursor.
    pub sequence: u64,
    /// Raft log index of the entry that carried it.
    pub log_index: u64,
    pub committed_at_ms: u64,
}

/// One state change, as proposed through Raft. Each may carry the client's
/// `Idempotency-Key`: absent from the encoding when not given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Command {
    #[serde(rename_all = "camelCase")]
    CreateAccount {
        account_id: AccountId,
        balance: Amount,
        account_type: AccountType,
        currency: Currency,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idempotency_key: Option<IdempotencyKey>,
    },
    #[serde(rename_all = "camelCase")]
    DeleteAccount {
        account_id: AccountId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idempotency_key: Option<IdempotencyKey>,
    },
    #[serde(rename_all = "camelCase")]
    Transfer {
        request: TransferRequest,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idempotency_key: Option<IdempotencyKey>,
    },
}

impl Command {
    pub fn idempotency_key(&self) -> Option<&IdempotencyKey> {
        match self {
            Command::CreateAccount {
                idempotency_key, ..
            }
            | Command::DeleteAccount {
                idempotency_key, ..
            }
            | Command::Transfer {
                idempotency_key, ..
            } => idempotency_key.as_ref(),
        }
    }
}

/// Most commands in one Raft entry: the bulk API's 8,190 transfers and then some. A batch
/// above it cannot be decoded (a peer's frame or the disk), so none can reach apply.
pub const BATCH_COMMANDS_MAX: usize = 8_192;

/// A Raft entry's payload: many commands, one fsync, one replication round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "BatchFields")]
pub struct Batch {
    /// Leader's wall clock at proposal, so apply never reads a clock.
    pub proposed_at_ms: u64,
    pub commands: Vec<Command>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchFields {
    proposed_at_ms: u64,
    commands: Vec<Command>,
}

impl TryFrom<BatchFields> for Batch {
    type Error = InvalidValue;
    fn try_from(fields: BatchFields) -> Result<Batch, InvalidValue> {
        if fields.commands.is_empty() || fields.commands.len() > BATCH_COMMANDS_MAX {
            return Err(InvalidValue(format!(
                "a batch holds 1 to {BATCH_COMMANDS_MAX} commands, not {}",
                fields.commands.len()
            )));
        }
        Ok(Batch {
            proposed_at_ms: fields.proposed_at_ms,
            commands: fields.commands,
        })
    }
}

/// What the state machine remembers of a command sent with an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdempotencyRecord {
    pub command: Command,
    pub outcome: Outcome,
}

/// The result of one command, in the order of the batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum Outcome {
    AccountCreated {
        account: Account,
    },
    AccountExists {
        account_id: AccountId,
    },
    AccountDeleted {
        account_id: AccountId,
    },
    AccountNotFound {
        account_id: AccountId,
    },
    AccountNotEmpty {
        account: Account,
    },
    /// Applied now, or the original outcome of an identical resend.
    Transfer {
        transfer: Transfer,
        duplicate: bool,
    },
    /// The transaction id was used before with a different body; nothing applied.
    TransferConflict {
        existing: Transfer,
    },
    /// The command's `Idempotency-Key` was seen before with this very command: the
    /// original outcome, nothing applied now.
    Replay {
        original: Box<Outcome>,
    },
    /// The `Idempotency-Key` was used before with a different command; nothing applied.
    IdempotencyConflict {
        key: IdempotencyKey,
    },
}

/// The response of one Raft entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    pub outcomes: Vec<Outcome>,
}
