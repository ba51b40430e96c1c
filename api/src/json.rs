//! Reading a request body as JSON, refusing duplicate keys at any depth.
//!
//! Why: serde_json keeps the last of two equal keys, so `{"accountId":"x y","accountId":"ok"}`
//! would be read as `ok` while a proxy, a log or an audit tool reading the first key sees
//! `x y`. One body must have one meaning, so a duplicate is refused outright.
//!
//! How: a first pass walks the body with serde_json's own tokenizer into a visitor that
//! builds nothing and only remembers each object's keys (unescaped, so `"a"` and `"\u0061"`
//! are the same key); the body is then read into a `Value` as usual. Keeping the second
//! pass unchanged keeps serde_json's arbitrary-precision numbers exactly as written (the
//! first pass sees a number as a one-key map, which can never hold a duplicate).

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// The JSON value of `bytes`, or why it is not JSON or holds a duplicate key.
pub fn parse(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    UniqueKeys.deserialize(&mut deserializer)?;
    deserializer.end()?;
    serde_json::from_slice(bytes)
}

/// Walks one JSON value, failing on the first object with a repeated key.
#[derive(Clone, Copy)]
struct UniqueKeys;

impl<'de> DeserializeSeed<'de> for UniqueKeys {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        while items.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = entries.next_key::<String>()? {
            if seen.contains(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate key '{}'",
                    shortened(&key)
                )));
            }
            entries.next_value_seed(self)?;
            seen.insert(key);
        }
        Ok(())
    }
}

/// A key as named in an error: its first characters only, a body may be 64 KiB.
fn shortened(key: &str) -> String {
    const SHOWN_MAX: usize = 64;
    match key.char_indices().nth(SHOWN_MAX) {
        Some((end, _)) => format!("{}...", &key[..end]),
        None => key.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn refusal(text: &str) -> String {
        parse(text.as_bytes()).expect_err(text).to_string()
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        let error = refusal(r#"{"accountId":"x y","accountId":"ok","balance":1}"#);
        assert!(error.contains("duplicate key 'accountId'"), "{error}");
        assert!(refusal(r#"{"a":{"b":1,"b":1}}"#).contains("duplicate key 'b'"));
        assert!(refusal(r#"[{"c":[{"d":null,"d":null}]}]"#).contains("duplicate key 'd'"));
        assert!(refusal(r#"{"a":1,"\u0061":2}"#).contains("duplicate key 'a'"));
        let long = "k".repeat(100);
        let error = refusal(&format!(r#"{{"{long}":1,"{long}":1}}"#));
        assert!(
            error.contains(&format!("'{}...'", "k".repeat(64))),
            "{error}"
        );
    }

    #[test]
    fn equal_keys_in_different_objects_are_fine() {
        let value = parse(br#"{"a":{"a":1},"b":[{"a":2},{"a":3}]}"#).unwrap();
        assert_eq!(value["b"][1]["a"], 3);
    }

    #[test]
    fn numbers_stay_exact_and_invalid_json_is_refused() {
        let body = br#"{"amount": 0.1, "big": 0.99999999999999999999999999999e0}"#;
        let value = parse(body).unwrap();
        assert_eq!(value["amount"].to_string(), "0.1");
        assert_eq!(
            value["big"].to_string(),
            "0.99999999999999999999999999999e+0",
            "serde_json writes every exponent as e+N or e-N: the same value, every digit kept"
        );
        for text in ["{", "{\"a\":1,}", "{\"a\":1} x", "", "[1,]", "{\"a\" 1}"] {
            assert!(parse(text.as_bytes()).is_err(), "{text}");
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse(deep.as_bytes()).is_err(), "the recursion limit holds");
    }

    /// JSON text of a value, objects written entry by entry so a test controls their keys.
    fn leaf() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            "-?(0|[1-9][0-9]{0,30})(\\.[0-9]{1,30})?([eE][-+]?[0-9]{1,4})?",
            any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        ]
    }

    fn key() -> impl Strategy<Value = String> {
        "[a-zA-Z\"\\\\é$ ]{0,8}"
    }

    fn object(entries: &[(String, String)]) -> String {
        let body: Vec<String> = entries
            .iter()
            .map(|(key, value)| format!("{}:{value}", serde_json::to_string(key).unwrap()))
            .collect();
        format!("{{{}}}", body.join(","))
    }

    /// An object with distinct keys, values possibly objects or arrays themselves.
    fn unique_object() -> impl Strategy<Value = String> {
        let value = leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::btree_map(key(), inner, 0..4)
                    .prop_map(|m| object(&m.into_iter().collect::<Vec<_>>())),
            ]
        });
        prop::collection::btree_map(key(), value, 0..6)
            .prop_map(|m| object(&m.into_iter().collect::<Vec<_>>()))
    }

    proptest! {
        #[test]
        fn objects_without_duplicates_parse_as_serde_json_reads_them(text in unique_object()) {
            let expected: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(parse(text.as_bytes()).unwrap(), expected);
        }

        #[test]
        fn a_duplicated_key_is_refused_at_any_depth(
            entries in prop::collection::btree_map(key(), leaf(), 1..6),
            pick in any::<prop::sample::Index>(),
            place in any::<prop::sample::Index>(),
            other in leaf(),
            depth in 0usize..4,
            outer in unique_object(),
        ) {
            let mut entries: Vec<(String, String)> = entries.into_iter().collect();
            let duplicate = entries[pick.index(entries.len())].0.clone();
            entries.insert(place.index(entries.len() + 1), (duplicate.clone(), other));
            let mut text = object(&entries);
            for level in 0..depth {
                text = if level % 2 == 0 {
                    format!("[1,{text}]")
                } else if outer == "{}" {
                    format!("{{\"\\u0000\":{text}}}")
                } else {
                    // Inside an object whose other keys are distinct.
                    format!("{{\"\\u0000\":{text},{}", &outer[1..])
                };
            }
            let error = parse(text.as_bytes()).expect_err(&text).to_string();
            let shown = shortened(&duplicate);
            let expected = format!("duplicate key '{shown}'");
            prop_assert!(error.contains(&expected), "{}: {}", text, error);
        }
    }
}
