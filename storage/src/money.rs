//! The one text grammar for money amounts, used for request bodies, peers' messages and
//! stored records alike.
//!
//! Why a hand-written parser: `Decimal::from_scientific` and friends round anything past 28
//! significant digits, and they accept shapes (`+1`, `1_000`, `.5`, `5.`) that JSON does
//! not, so the same amount could be spelt in ways the ledger cannot tell apart and a
//! different amount could be silently turned into an accepted one. Here the grammar is
//! exactly JSON's number grammar and the value is exact or refused, never rounded:
//!
//! ```text
//! amount   = [ "-" ] int [ "." 1*DIGIT ] [ ( "e" / "E" ) [ "+" / "-" ] 1*DIGIT ]
//! int      = "0" / ( %x31-39 *DIGIT )
//! ```
//!
//! The significand is stripped of leading and trailing zeros (moving the exponent), so
//! `1.000000000000000000000000000000`, `1e0` and `0.1e1` are all exactly one, and `0e99` and
//! `-0` are exactly zero. What remains must fit decimal(19,4).

use rust_decimal::Decimal;

use crate::domain::{Amount, InvalidValue, AMOUNT_INTEGER_DIGITS_MAX, AMOUNT_SCALE_MAX};

/// Longest amount text read; no amount within decimal(19,4) needs more than a few dozen
/// characters, and a bound keeps the work (and any echo of the text) small.
pub const AMOUNT_TEXT_LENGTH_MAX: usize = 256;

/// A number as written: sign, the digits of the integer and fraction parts, and the
/// exponent (saturated: beyond ±i64 nothing fits decimal(19,4) anyway).
struct Written<'a> {
    negative: bool,
    integer: &'a [u8],
    fraction: &'a [u8],
    exponent: i64,
}

/// An exact non-zero value `significand × 10^exponent`, the significand without leading or
/// trailing zeros.
struct Exact {
    negative: bool,
    significand: Vec<u8>,
    exponent: i64,
}

impl Amount {
    /// Parses an amount written in the JSON number grammar, exactly (see the module doc).
    pub fn parse_text(text: &str) -> Result<Amount, InvalidValue> {
        if text.len() > AMOUNT_TEXT_LENGTH_MAX {
            return Err(InvalidValue(format!(
                "must be at most {AMOUNT_TEXT_LENGTH_MAX} characters"
            )));
        }
        let written = lex(text.as_bytes()).ok_or_else(|| {
            InvalidValue(
                "must be a plain decimal number such as 12.34 or 1.5e3 \
                 (no '+', spaces, '_' or bare '.')"
                    .into(),
            )
        })?;
        let units = match exact(&written) {
            None => 0,
            Some(value) => units_of(&value)?,
        };
        // Built from the count of ten-thousandths, so it carries four places as
        // decimal(19,4) does: zero is 0.0000, not 0.
        Amount::parse(Decimal::from_i128_with_scale(units, AMOUNT_SCALE_MAX))
    }
}

/// Splits `text` along the JSON number grammar; `None` when it does not match.
fn lex(text: &[u8]) -> Option<Written<'_>> {
    let mut at = 0;
    let negative = text.first() == Some(&b'-');
    if negative {
        at += 1;
    }
    let integer = match text.get(at)? {
        b'0' => &text[at..at + 1],
        b'1'..=b'9' => digits(&text[at..]),
        _ => return None,
    };
    at += integer.len();
    let mut fraction: &[u8] = &[];
    if text.get(at) == Some(&b'.') {
        fraction = digits(&text[at + 1..]);
        if fraction.is_empty() {
            return None;
        }
        at += 1 + fraction.len();
    }
    let mut exponent = 0;
    if matches!(text.get(at), Some(b'e' | b'E')) {
        at += 1;
        let exponent_negative = text.get(at) == Some(&b'-');
        if matches!(text.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let exponent_digits = digits(&text[at..]);
        if exponent_digits.is_empty() {
            return None;
        }
        at += exponent_digits.len();
        exponent = saturating_number(exponent_digits);
        if exponent_negative {
            exponent = -exponent;
        }
    }
    (at == text.len()).then_some(Written {
        negative,
        integer,
        fraction,
        exponent,
    })
}

/// The longest prefix of ASCII digits.
fn digits(text: &[u8]) -> &[u8] {
    let end = text
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(text.len());
    &text[..end]
}

/// The value of a digit string, saturated at `i64::MAX`.
fn saturating_number(digits: &[u8]) -> i64 {
    digits.iter().fold(0i64, |value, digit| {
        value
            .saturating_mul(10)
            .saturating_add(i64::from(digit - b'0'))
    })
}

/// The exact value written, `None` when it is zero (whatever its sign or exponent).
fn exact(written: &Written<'_>) -> Option<Exact> {
    let all: Vec<u8> = written
        .integer
        .iter()
        .chain(written.fraction)
        .copied()
        .collect();
    let first = all.iter().position(|&d| d != b'0')?;
    let last = all
        .iter()
        .rposition(|&d| d != b'0')
        .expect("a non-zero digit");
    // value = all × 10^(exponent - fraction length); dropping the zeros after `last` moves
    // the exponent up by their count.
    let fraction_len = i64::try_from(written.fraction.len()).expect("bounded text");
    let trailing = i64::try_from(all.len() - 1 - last).expect("bounded text");
    Some(Exact {
        negative: written.negative,
        significand: all[first..=last].to_vec(),
        exponent: written
            .exponent
            .saturating_sub(fraction_len)
            .saturating_add(trailing),
    })
}

/// The ten-thousandths in an exact non-zero value, or why it is not an amount.
fn units_of(value: &Exact) -> Result<i128, InvalidValue> {
    if value.negative {
        return Err(InvalidValue("must not be negative".into()));
    }
    let scale = i64::from(AMOUNT_SCALE_MAX);
    if value.exponent < -scale {
        return Err(InvalidValue(format!(
            "must have at most {AMOUNT_SCALE_MAX} decimal places"
        )));
    }
    let length = i64::try_from(value.significand.len()).expect("bounded text");
    if length.saturating_add(value.exponent) > i64::from(AMOUNT_INTEGER_DIGITS_MAX) {
        return Err(InvalidValue(format!(
            "must have at most {AMOUNT_INTEGER_DIGITS_MAX} integer digits"
        )));
    }
    // Now -4 <= exponent and length + exponent <= 15, so the count of ten-thousandths has at
    // most 19 digits: it fits an i128 with room to spare.
    let shift = u32::try_from(value.exponent + scale).expect("checked above");
    let significand = value
        .significand
        .iter()
        .fold(0i128, |units, digit| units * 10 + i128::from(digit - b'0'));
    Ok(significand * 10i128.pow(shift))
}

impl TryFrom<String> for Amount {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, InvalidValue> {
        Amount::parse_text(&value)
    }
}

/// The wire and disk form: the decimal with its four places, such as `12.3400` (also for
/// [`Amount::ZERO`], whose decimal has none).
impl From<Amount> for String {
    fn from(value: Amount) -> String {
        let mut decimal = value.value();
        decimal.rescale(AMOUNT_SCALE_MAX);
        decimal.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FRACTION_UNITS: u64 = 10_000;
    const INTEGER_LIMIT: u64 = 1_000_000_000_000_000;

    fn parsed(text: &str) -> Result<String, String> {
        Amount::parse_text(text)
            .map(|amount| amount.value().to_string())
            .map_err(|e| e.0)
    }

    fn refused_with(text: &str, why: &str) {
        let error = parsed(text).expect_err(text);
        assert!(error.contains(why), "{text}: {error}");
    }

    #[test]
    fn more_than_28_significant_digits_are_refused_not_rounded() {
        refused_with("0.99999999999999999999999999999e0", "4 decimal places");
        refused_with("0.00009999999999999999999999999e0", "4 decimal places");
        refused_with("0.99999999999999999999999999999", "4 decimal places");
        refused_with("1e-5", "4 decimal places");
        refused_with("1000000000000000", "15 integer digits");
        refused_with("1e15", "15 integer digits");
        refused_with("9999999999999999999999999999999e-16", "4 decimal places");
    }

    #[test]
    fn exact_long_forms_are_accepted() {
        assert_eq!(
            parsed("1.000000000000000000000000000000"),
            Ok("1.0000".into())
        );
        assert_eq!(parsed("0e99"), Ok("0.0000".into()));
        assert_eq!(parsed("0.0e-99999999999"), Ok("0.0000".into()));
        assert_eq!(parsed("-0"), Ok("0.0000".into()));
        assert_eq!(parsed("-0.000e5"), Ok("0.0000".into()));
        assert_eq!(parsed("1e3"), Ok("1000.0000".into()));
        assert_eq!(parsed("12345e-4"), Ok("1.2345".into()));
        assert_eq!(parsed("1E+3"), Ok("1000.0000".into()));
        assert_eq!(parsed("0.1"), Ok("0.1000".into()));
        assert_eq!(
            parsed("999999999999999.9999"),
            Ok("999999999999999.9999".into())
        );
        assert_eq!(
            parsed("9999999999999999999e-4"),
            Ok("999999999999999.9999".into())
        );
        assert_eq!(
            parsed("0.00000000000000000000000000000000000000000000012e46"),
            Ok("1.2000".into())
        );
    }

    #[test]
    fn shapes_outside_the_json_number_grammar_are_refused() {
        for text in [
            "1_000", "1_", "+12.5", " 12.5 ", " 12.5", "12.5 ", "5.", ".5", "", "-", "01", "00",
            "-01", "1e", "1e+", "1.e3", "1.5e3.2", "--1", "1-", "0x10", "NaN", "inf", "1,5", "١",
            "1.5\n", "e5", "1ee5", "1e5e5", "12.5f",
        ] {
            refused_with(text, "plain decimal number");
        }
    }

    #[test]
    fn negative_non_zero_and_long_texts_are_refused() {
        refused_with("-1", "must not be negative");
        refused_with("-0.0001", "must not be negative");
        refused_with(&"1".repeat(300), "at most 256 characters");
    }

    #[test]
    fn huge_exponents_neither_overflow_nor_panic() {
        refused_with("1e9223372036854775807", "15 integer digits");
        refused_with("1e99999999999999999999999999", "15 integer digits");
        refused_with("1e-99999999999999999999999999", "4 decimal places");
        refused_with("1e-9223372036854775808", "4 decimal places");
        assert_eq!(parsed("0e-99999999999999999999999999"), Ok("0.0000".into()));
    }

    #[test]
    fn serde_uses_the_four_place_string_and_only_the_strict_grammar() {
        let amount = Amount::parse_text("12.34").unwrap();
        assert_eq!(serde_json::to_string(&amount).unwrap(), "\"12.3400\"");
        for text in ["\"0.0000\"", "\"12.3400\"", "\"999999999999999.9999\""] {
            let back: Amount = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&back).unwrap(), text);
        }
        assert_eq!(serde_json::to_string(&Amount::ZERO).unwrap(), "\"0.0000\"");
        assert!(serde_json::from_str::<Amount>("12.34").is_err());
        assert!(serde_json::from_str::<Amount>("\"+12.34\"").is_err());
        assert!(serde_json::from_str::<Amount>("\"0.99999999999999999999999999999e0\"").is_err());
    }

    /// The exact value of a text in the grammar, as `integer.ffff` (an independent oracle:
    /// plain string shifting with a small exponent, no early stripping).
    fn oracle(text: &str) -> Option<String> {
        if !text.is_ascii() {
            return None;
        }
        let unsigned = text.strip_prefix('-').unwrap_or(text);
        let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
            Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i64>().ok()?),
            None => (unsigned, 0),
        };
        let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits = format!("{integer}{fraction}");
        if digits.bytes().all(|d| d == b'0') {
            return Some("0.0000".into());
        }
        // The point sits `point` digits from the left of `digits`.
        let point = i64::try_from(integer.len()).ok()?.checked_add(exponent)?;
        if !(-100..=100).contains(&point) {
            return None;
        }
        let padded_left = "0".repeat(usize::try_from(-point).unwrap_or(0) + 1) + &digits;
        let point = usize::try_from(point + (-point).max(0) + 1).ok()?;
        let padded = padded_left.clone() + &"0".repeat(point.saturating_sub(padded_left.len()));
        let (whole, part) = padded.split_at(point);
        let whole = whole.trim_start_matches('0');
        let part = format!("{part:0<4}");
        if part[4..].bytes().any(|d| d != b'0') {
            return None;
        }
        Some(format!(
            "{}.{}",
            if whole.is_empty() { "0" } else { whole },
            &part[..4]
        ))
    }

    /// Equivalent spellings of `units` ten-thousandths, all in the grammar.
    fn spellings(units: u128, zeros: usize, point: usize, exponent_case: u8) -> Vec<String> {
        let fraction_units = u128::from(FRACTION_UNITS);
        let canonical = format!("{}.{:04}", units / fraction_units, units % fraction_units);
        if units == 0 {
            return vec![
                canonical,
                "0".into(),
                "-0".into(),
                "0e7".into(),
                "0.000E-3".into(),
            ];
        }
        // units × 10^-4 = digits × 10^(-4 - zeros)
        let digits = format!("{units}{}", "0".repeat(zeros));
        let scale = 4 + zeros as i64;
        let point = point % (digits.len() + 1);
        let written = match point {
            0 => format!("0.{digits}"),
            p if p == digits.len() => digits.clone(),
            p => format!("{}.{}", &digits[..p], &digits[p..]),
        };
        // value = written × 10^(exponent), written = digits × 10^-(len - point)
        let exponent = digits.len() as i64 - point as i64 - scale;
        let marker = match exponent_case % 3 {
            0 => format!("e{exponent}"),
            1 if exponent >= 0 => format!("E+{exponent}"),
            _ => format!("E{exponent}"),
        };
        let mut all = vec![
            canonical.clone(),
            format!("{canonical}{}", "0".repeat(zeros)),
            format!("{written}{marker}"),
            format!("{digits}e-{scale}"),
        ];
        if exponent == 0 {
            all.push(written);
        }
        all
    }

    fn units_within_range() -> impl Strategy<Value = u64> {
        prop_oneof![
            0..FRACTION_UNITS,
            0..INTEGER_LIMIT * FRACTION_UNITS,
            (0..16u32, 0..FRACTION_UNITS).prop_map(|(digits, fraction)| {
                10u64.pow(digits).saturating_sub(1).min(INTEGER_LIMIT - 1) * FRACTION_UNITS
                    + fraction
            }),
        ]
    }

    proptest! {
        #[test]
        fn every_spelling_of_a_valid_amount_parses_to_it(
            units in units_within_range(),
            zeros in 0usize..30,
            point in 0usize..60,
            exponent_case in 0u8..3,
        ) {
            let expected = Decimal::from_i128_with_scale(i128::from(units), AMOUNT_SCALE_MAX);
            for text in spellings(units.into(), zeros, point, exponent_case) {
                prop_assert_eq!(parsed(&text), Ok(expected.to_string()), "{}", text);
            }
        }

        #[test]
        fn a_fifth_fraction_digit_is_refused_in_any_spelling(
            integer in 0..INTEGER_LIMIT,
            fraction in (0u64..10_000, 1u64..10).prop_map(|(four, fifth)| four * 10 + fifth),
            zeros in 0usize..30,
            point in 0usize..60,
            exponent_case in 0u8..3,
        ) {
            // integer.fraction(5 digits) = (integer × 10^5 + fraction) × 10^-5: spell it as
            // a tenth of the units form, so the same shapes are used.
            let units = u128::from(integer) * 100_000 + u128::from(fraction);
            for text in spellings(units, zeros, point, exponent_case) {
                let tenth = shift_down(&text);
                let error = parsed(&tenth).expect_err(&tenth);
                prop_assert!(error.contains("4 decimal places"), "{}: {}", tenth, error);
            }
        }

        #[test]
        fn a_sixteenth_integer_digit_is_refused_in_any_spelling(
            integer in INTEGER_LIMIT..INTEGER_LIMIT * 10,
            fraction in 0..FRACTION_UNITS,
            zeros in 0usize..30,
            point in 0usize..60,
            exponent_case in 0u8..3,
        ) {
            let units = u128::from(integer) * u128::from(FRACTION_UNITS) + u128::from(fraction);
            for text in spellings(units, zeros, point, exponent_case) {
                let error = parsed(&text).expect_err(&text);
                prop_assert!(error.contains("15 integer digits"), "{}: {}", text, error);
            }
        }

        #[test]
        fn arbitrary_texts_never_panic_and_accepted_ones_are_exact(
            text in prop_oneof![
                any::<String>(),
                "[-+0-9eE._ ]{0,40}",
                "-?(0|[1-9][0-9]{0,20})(\\.[0-9]{1,30})?([eE][-+]?[0-9]{1,3})?",
            ]
        ) {
            if let Ok(amount) = Amount::parse_text(&text) {
                prop_assert!(text.bytes().all(|b| b"-+0123456789.eE".contains(&b)), "{}", text);
                prop_assert_eq!(Some(amount.value().to_string()), oracle(&text), "{}", text);
            } else if let Some(value) = oracle(&text) {
                // In the grammar and exact within range: must have been accepted unless it
                // is negative and non-zero, or out of the grammar's shape.
                let in_grammar = lex(text.as_bytes()).is_some();
                let negative = text.starts_with('-') && value != "0.0000";
                let too_long = text.len() > AMOUNT_TEXT_LENGTH_MAX || value.len() > 20;
                prop_assert!(!in_grammar || negative || too_long, "{}", text);
            }
        }

        #[test]
        fn non_grammar_shapes_of_valid_amounts_are_refused(
            units in 1..INTEGER_LIMIT * FRACTION_UNITS,
            shape in 0usize..9,
        ) {
            let integer = units / FRACTION_UNITS;
            let fraction = units % FRACTION_UNITS;
            let plain = format!("{integer}.{fraction:04}");
            let text = match shape {
                0 => format!("+{plain}"),
                1 => format!(" {plain}"),
                2 => format!("{plain} "),
                3 => format!("{integer}_{fraction:04}"),
                4 => format!("{integer}."),
                5 => format!(".{fraction:04}"),
                6 => format!("0{plain}"),
                7 => format!("{plain}e"),
                _ => format!("{integer}_"),
            };
            refused_with(&text, "plain decimal number");
        }

        #[test]
        fn the_stored_string_form_round_trips(units in 0..INTEGER_LIMIT * FRACTION_UNITS) {
            let amount = Amount::parse(Decimal::from_i128_with_scale(
                i128::from(units),
                AMOUNT_SCALE_MAX,
            ))
            .unwrap();
            let text = String::from(amount);
            prop_assert_eq!(Amount::parse_text(&text), Ok(amount));
            let json = serde_json::to_string(&amount).unwrap();
            prop_assert_eq!(serde_json::from_str::<Amount>(&json).unwrap(), amount);
        }
    }

    /// The same spelling, worth a tenth: one more fraction digit or one less exponent.
    fn shift_down(text: &str) -> String {
        match text.find(['e', 'E']) {
            Some(at) => {
                let exponent: i64 = text[at + 1..].parse().unwrap();
                format!("{}e{}", &text[..at], exponent - 1)
            }
            None => format!("{text}e-1"),
        }
    }
}
