//! Parsing request bodies into domain values, naming the offending field on every refusal.
//!
//! Bodies are read as JSON objects with exact numbers (serde_json's arbitrary precision) and
//! no duplicate keys (`json`), so an amount is never parsed through a float; numbers and
//! decimal strings are both accepted, in one grammar (`storage::money`).

use axum::body::{Body, Bytes};
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
        let value = crate::json::parse(bytes).map_err(|e| {
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
        crate::timestamp::normalise(text)
            .map(Some)
            .map_err(|e| ApiError::invalid_field(field, e))
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

/// An exact amount from a JSON number (its digits exactly as sent: serde_json keeps them,
/// writing only the exponent marker as `e+`/`e-`) or a string in the same grammar, untrimmed.
pub fn parse_amount(field: &str, value: &Value) -> Result<Amount, ApiError> {
    let parsed = match value {
        Value::Number(number) => Amount::parse_text(&number.to_string()),
        Value::String(text) => Amount::parse_text(text),
        _ => return Err(ApiError::invalid_field(field, "must be a decimal number")),
    };
    parsed.map_err(|e| ApiError::invalid_field(field, e))
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

    fn refusal(result: Result<impl std::fmt::Debug, ApiError>) -> (&'static str, String) {
        match result.expect_err("refused") {
            ApiError::BadRequest { code, message } => (code, message),
            other => panic!("not a 400: {other:?}"),
        }
    }

    #[test]
    fn rounded_exponent_forms_are_refused_not_rounded() {
        for json in [
            "0.99999999999999999999999999999e0",
            "0.00009999999999999999999999999e0",
            "\"0.99999999999999999999999999999e0\"",
            "\"0.00009999999999999999999999999e0\"",
        ] {
            let (code, message) = refusal(amount(json));
            assert_eq!(code, "INVALID_FIELD");
            assert_eq!(
                message, "amount: must have at most 4 decimal places",
                "{json}"
            );
        }
    }

    #[test]
    fn one_grammar_for_numbers_and_strings() {
        for text in [
            "1_000", "1_", "+12.5", " 12.5 ", "5.", ".5", " 1", "1 ", "0x1", "",
        ] {
            let (_, message) = refusal(amount(&format!("\"{text}\"")));
            assert!(
                message.contains("plain decimal number"),
                "{text}: {message}"
            );
        }
        for (json, expected) in [
            ("1.000000000000000000000000000000", "1.0000"),
            ("0e99", "0.0000"),
            ("-0", "0.0000"),
            ("0.0e-99999999999", "0.0000"),
            ("1e3", "1000.0000"),
            ("12345e-4", "1.2345"),
        ] {
            assert_eq!(
                amount(json).unwrap().value().to_string(),
                expected,
                "{json}"
            );
            let string = format!("\"{json}\"");
            assert_eq!(
                amount(&string).unwrap().value().to_string(),
                expected,
                "{string}"
            );
        }
        assert!(amount("1e-5").is_err());
        assert!(amount("\"1e-5\"").is_err());
    }

    #[test]
    fn duplicate_keys_are_refused_as_invalid_json() {
        let body = br#"{"accountId":"x y","accountId":"ok","balance":1}"#;
        let (code, message) = refusal(Fields::parse(body, &["accountId", "balance"]).map(|_| ()));
        assert_eq!(code, "INVALID_JSON");
        assert!(message.contains("duplicate key 'accountId'"), "{message}");
        let nested = br#"{"accountIds":["a"],"accountId":{"x":1,"x":2}}"#;
        let (code, _) = refusal(Fields::parse(nested, &["accountIds", "accountId"]).map(|_| ()));
        assert_eq!(code, "INVALID_JSON");
    }

    fn timestamp(text: &str) -> Result<Option<String>, ApiError> {
        let body = serde_json::json!({ "timestamp": text }).to_string();
        Fields::parse(body.as_bytes(), &["timestamp"])?.timestamp("timestamp")
    }

    #[test]
    fn timestamps_have_one_strict_grammar() {
        for text in [
            "2024-01-31T10:17:60",
            "2024-1-3T1:0:0",
            " 2024-01-31T10:00:00",
            "2024-01-31 10:00:00",
            "2024-01-31T10:00:00.1234567891",
            "2024-01-31T10:00:00.1234567890",
            "9999-12-31T23:30:00-00:31",
        ] {
            let (code, message) = refusal(timestamp(text));
            assert_eq!(code, "INVALID_FIELD");
            assert!(message.starts_with("timestamp: "), "{message}");
        }
        assert_eq!(
            timestamp("2024-01-31T12:00:00.100+02:00")
                .unwrap()
                .as_deref(),
            Some("2024-01-31T10:00:00.1Z")
        );
        assert_eq!(
            timestamp("2024-01-31T10:00:00").unwrap().as_deref(),
            Some("2024-01-31T10:00:00")
        );
        let fields = Fields::parse(b"{}", &["timestamp"]).unwrap();
        assert_eq!(fields.timestamp("timestamp").unwrap(), None);
    }

    proptest::proptest! {
        #[test]
        fn numbers_and_strings_of_one_amount_agree(
            integer in 0u64..1_000_000_000_000_000,
            fraction in 0u64..10_000,
            zeros in 0usize..40,
            shift in 0usize..40,
        ) {
            let expected = format!("{integer}.{fraction:04}");
            let digits = format!("{integer}{fraction:04}{}", "0".repeat(zeros));
            let scale = 4 + zeros;
            // The same value with `shift` more leading fraction zeros and a larger exponent.
            let exponent = digits.len() + shift - scale;
            let shifted = format!("0.{}{digits}e{exponent}", "0".repeat(shift));
            let trimmed = match digits.trim_start_matches('0') {
                "" => "0",
                trimmed => trimmed,
            };
            for text in [
                expected.clone(),
                format!("{expected}{}", "0".repeat(zeros)),
                format!("{trimmed}e-{}", 4 + zeros),
                format!("{trimmed}E-{}", 4 + zeros),
                shifted,
            ] {
                let as_number = amount(&text).map(|a| a.value().to_string());
                let as_string = amount(&format!("\"{text}\"")).map(|a| a.value().to_string());
                proptest::prop_assert_eq!(as_number.ok(), Some(expected.clone()), "{}", text);
                proptest::prop_assert_eq!(as_string.ok(), Some(expected.clone()), "{}", text);
            }
        }

        #[test]
        fn out_of_range_amounts_are_refused_as_numbers_and_strings(
            integer in 0u64..10_000_000_000_000_000,
            fraction in 0u64..100_000,
            zeros in 0usize..20,
        ) {
            proptest::prop_assume!(integer >= 1_000_000_000_000_000 || fraction % 10 != 0);
            let plain = format!("{integer}.{fraction:05}");
            let digits = format!("{integer}{fraction:05}");
            let trimmed = digits.trim_start_matches('0');
            for text in [
                plain.clone(),
                format!("{plain}{}e0", "0".repeat(zeros)),
                format!("{trimmed}{}e-{}", "0".repeat(zeros), 5 + zeros),
                format!("0.{digits}e{}", digits.len() - 5),
            ] {
                proptest::prop_assert!(amount(&text).is_err(), "{}", text);
                proptest::prop_assert!(amount(&format!("\"{text}\"")).is_err(), "{}", text);
            }
        }
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
