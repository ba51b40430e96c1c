//! Response bodies, in the seed's camelCase JSON. Amounts are written as exact JSON numbers.

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{json, Value};
use storage::domain::{Account, AccountId, Transfer, TransferStatus};

pub fn exact_number(value: Decimal) -> Value {
    // Arbitrary-precision serde_json keeps every digit; never through f64.
    Value::Number(serde_json::Number::from_string_unchecked(value.to_string()))
}

pub fn account(account: &Account) -> Value {
    json!({
        "accountId": account.account_id.as_str(),
        "balance": exact_number(account.balance.value()),
        "accountType": account.account_type.as_str(),
        "currency": account.currency.as_str(),
        "version": account.version,
    })
}

pub fn transfer(transfer: &Transfer) -> Value {
    let request = &transfer.request;
    let mut body = json!({
        "transactionId": request.transaction_id().as_str(),
        "status": transfer.status.as_str(),
        "sourceAccountId": request.source_account_id().as_str(),
        "destinationAccountId": request.destination_account_id().as_str(),
        "amount": exact_number(request.amount().value()),
        "timestamp": request.client_timestamp(),
        "sequence": transfer.sequence,
        "logIndex": transfer.log_index,
        "committedAtMs": transfer.committed_at_ms,
    });
    if let Some(reason) = transfer.reason {
        body["reason"] = json!(reason.code());
        body["reasonMessage"] = json!(reason.message());
    }
    body
}

/// The seed's answer to POST /transactions/process.
pub fn process_result(transfer: &Transfer) -> Value {
    let id = transfer.request.transaction_id().as_str();
    match (transfer.status, transfer.reason) {
        (TransferStatus::Completed, _) => json!({
            "message": "Transaction accepted",
            "transactionId": id,
            "status": "COMPLETED",
            "sequence": transfer.sequence,
            "logIndex": transfer.log_index,
        }),
        (TransferStatus::Failed, reason) => {
            let reason = reason.expect("a failed transfer has a reason");
            json!({
                "message": format!("Error processing transaction: {}", reason.message()),
                "code": reason.code(),
                "transactionId": id,
                "status": "FAILED",
                "reason": reason.code(),
                "sequence": transfer.sequence,
                "logIndex": transfer.log_index,
            })
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub node_id: u64,
    pub rpc_addr: String,
    pub api_addr: String,
}

pub fn missing(ids: &[AccountId]) -> Value {
    json!(ids.iter().map(|id| id.as_str()).collect::<Vec<_>>())
}
