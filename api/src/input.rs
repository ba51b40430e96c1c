//! Parsing request bodies into domain values, naming the offending field on every refusal.
//!
//! Bodies are read as JSON objects with exact numbers (serde_json's arbitrary precision), so
//! an amount is never parsed through a float; numbers and decimal strings are both accepted.

use axum::body::{Body, Bytes};
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use storage::domain::{AccountId, AccountType, Amount, Currency, TransactionId};

use crate::error::ApiError;

/// Fields of a JSON object body, with the names it may contain.
pub struct Fields {
    map: Map<String, Value>,
}

/// Reads at most `limit_bytes` of body.
pub async fn read_body(body: Body, limit_bytes: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit_bytes).await.map_err(|_| {
        ApiError::bad_request(
            "BODY_TOO_LARGE",
            format!("request body exceeds {limit_bytes} bytes"),
        )
    })
}

impl Fields {
    pub fn parse(bytes: &[u8], allowed: &[&str]) -> Result<Fields, ApiError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            ApiError::bad_request("INVALID_JSON", format!("body is not valid JSON: {e}"))
        })?;
        let Value::Object(map) = value else {
            return Err(ApiError::bad_request(
                "INVALID_JSON",
                "body must be a JSON object",
            ));
        };
        if let Some(unknown) = map.keys().find(|key| !allowed.contains(&key.as_str())) {
            return Err(ApiError::bad_request(
                "UNKNOWN_FIELD",
                format!("{unknown}: unknown field (allowed: {})", allowed.join(", ")),
            ));
        }
        Ok(Fields { map })
    }

    fn present(&self, field: &str) -> Option<&Value> {
        self.map.get(field).filter(|value| !value.is_null())
    }

    pub fn required(&self, field: &str) -> Result<&Value, ApiError> {
        self.present(field)
            .ok_or_else(|| ApiError::invalid_field(field, "is required"))
    }

    pub fn optional_str(&self, field: &str) -> Result<Option<&str>, ApiError> {
        match self.present(field) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(ApiError::invalid_field(field, "must be a string")),
        }
    }

    pub fn required_str(&self, field: &str) -> Result<&str, ApiError> {
        self.required(field)?;
        Ok(self.optional_str(field)?.expect("present"))
    }

    pub fn account_id(&self, field: &str) -> Result<AccountId, ApiError> {
        AccountId::parse(self.required_str(field)?).map_err(|e| ApiError::invalid_field(field, e))
    }

    pub fn transaction_id(&self, field: &str) -> Result<TransactionId, ApiError> {
        TransactionId::parse(self.required_str(field)?)
            .map_err(|e| ApiError::invalid_field(field, e))
    }

    pub fn amount(&self, field: &str) -> Result<Amount, ApiError> {
        parse_amount(field, self.required(field)?)
    }

    pub fn account_type(&self, field: &str) -> Result<AccountType, ApiError> {
        match self.optional_str(field)? {
            None => Ok(AccountType::savings()),
            Some(text) => AccountType::parse(&text.to_ascii_uppercase())
                .map_err(|e| ApiError::invalid_field(field, e)),
        }
    }

    pub fn currency(&self, field: &str) -> Result<Currency, ApiError> {
        match self.optional_str(field)? {
            None => Ok(Currency::usd()),
            Some(text) => Currency::parse(&text.to_ascii_uppercase())
                .map_err(|e| ApiError::invalid_field(field, e)),
        }
    }

    /// An optional ISO-8601 timestamp, normalised so equal instants compare equal.
    pub fn timestamp(&self, field: &str) -> Result<Option<String>, ApiError> {
        let Some(text) = self.optional_str(field)? else {
            return Ok(None);
        };
        if text.len() > storage::domain::CLIENT_TIMESTAMP_LENGTH_MAX {
            return Err(ApiError::invalid_field(field, "is too long"));
        }
        if let Ok(instant) = chrono::DateTime::parse_from_rfc3339(text) {
            return Ok(Some(
                instant.to_utc().format("%Y-%m-%dT%H:%M:%S%.fZ").to_string(),
            ));
        }
        // The seed's LocalDateTime: no offset.
        chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
            .map(|local| Some(local.format("%Y-%m-%dT%H:%M:%S%.f").to_string()))
            .map_err(|_| {
                ApiError::invalid_field(
                    field,
                    "must be an ISO-8601 date-time like 2024-01-31T10:00:00",
                )
            })
    }

    pub fn account_ids(&self, field: &str, count_max: usize) -> Result<Vec<AccountId>, ApiError> {
        let Value::Array(items) = self.required(field)? else {
            return Err(ApiError::invalid_field(
                field,
                "must be an array of account ids",
            ));
        };
        if items.is_empty() || items.len() > count_max {
            return Err(ApiError::invalid_field(
                field,
                format!("must hold 1 to {count_max} ids"),
            ));
        }
        items
            .iter()
            .map(|item| match item {
                Value::String(text) => {
                    AccountId::parse(text).map_err(|e| ApiError::invalid_field(field, e))
                }
                _ => Err(ApiError::invalid_field(field, "must hold only strings")),
            })
            .collect()
    }
}

/// An exact decimal from a JSON number or a decimal string.
pub fn parse_amount(field: &str, value: &Value) -> Result<Amount, ApiError> {
    let text = match value {
        Value::Number(number) => number.to_string(),
        Value::String(text) => text.trim().to_owned(),
        _ => return Err(ApiError::invalid_field(field, "must be a decimal number")),
    };
    let decimal = Decimal::from_str_exact(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| {
            ApiError::invalid_field(field, format!("'{text}' is not a decimal within range"))
        })?;
    Amount::parse(decimal).map_err(|e| ApiError::invalid_field(field, e))
}

/// A path segment that must be an identifier.
pub fn path_id<T>(
    field: &str,
    text: &str,
    parse: fn(&str) -> Result<T, storage::domain::InvalidValue>,
) -> Result<T, ApiError> {
    parse(text).map_err(|e| ApiError::invalid_field(field, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(json: &str) -> Result<Amount, ApiError> {
        let fields =
            Fields::parse(format!("{{\"amount\": {json}}}").as_bytes(), &["amount"]).unwrap();
        fields.amount("amount")
    }

    #[test]
    fn amounts_are_exact_from_numbers_and_strings() {
        assert_eq!(amount("0.1").unwrap().value().to_string(), "0.1000");
        assert_eq!(
            amount("\"12.3456\"").unwrap().value().to_string(),
            "12.3456"
        );
        assert_eq!(amount("999999999999999.9999").unwrap(), Amount::max());
        assert!(amount("1000000000000000").is_err());
        assert!(amount("0.00001").is_err());
        assert!(amount("-1").is_err());
        assert!(amount("\"abc\"").is_err());
        assert!(amount("true").is_err());
    }

    #[test]
    fn unknown_and_missing_fields_are_named() {
        let error = Fields::parse(br#"{"amount": 1, "bogus": 2}"#, &["amount"])
            .err()
            .unwrap();
        assert!(error.to_string().contains("bogus"));
        let fields = Fields::parse(br#"{}"#, &["amount"]).unwrap();
        assert!(fields
            .amount("amount")
            .err()
            .unwrap()
            .to_string()
            .starts_with("amount"));
        assert!(Fields::parse(b"[1]", &[]).is_err());
        assert!(Fields::parse(b"{", &[]).is_err());
    }
}
