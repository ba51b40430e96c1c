//! The one grammar for a client's transfer timestamp, and its normal form.
//!
//! Why strict and normalised: the timestamp is part of a transfer's body, and a resend with
//! the same `transactionId` is a replay only if the bodies are equal. So two spellings of
//! one instant must normalise to the same text and two different instants never may: no
//! digit is dropped, no leniency (spaces, one-digit fields, lowercase letters) lets
//! different texts slip through unequal or unchecked.
//!
//! ```text
//! timestamp = date "T" time [ "." 1*9DIGIT ] [ offset ]
//! date      = 4DIGIT "-" 2DIGIT "-" 2DIGIT          ; a date that exists, year 0000-9999
//! time      = 2DIGIT ":" 2DIGIT ":" 2DIGIT          ; 00-23, 00-59, 00-59 (no leap second)
//! offset    = "Z" / ( "+" / "-" ) 2DIGIT ":" 2DIGIT ; hours 00-23, minutes 00-59
//! ```
//!
//! With an offset the instant is written in UTC as `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, and
//! must stay within years 0000-9999; without one (the seed's `LocalDateTime`) it is written
//! back as `YYYY-MM-DDTHH:MM:SS[.fraction]`. The fraction loses its trailing zeros and is
//! left out when zero. `-00:00` is taken as UTC.

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeDelta, Timelike};
use storage::domain::{InvalidValue, CLIENT_TIMESTAMP_LENGTH_MAX};

/// Most fraction digits: nanoseconds.
pub const FRACTION_DIGITS_MAX: usize = 9;

const SHAPE: &str = "must be an ISO-8601 date-time like 2024-01-31T10:00:00, \
                     2024-01-31T10:00:00.5Z or 2024-01-31T10:00:00+02:00";

/// The normal form of a client timestamp, or why it is not one.
pub fn normalise(text: &str) -> Result<String, InvalidValue> {
    if text.len() > CLIENT_TIMESTAMP_LENGTH_MAX {
        return Err(InvalidValue("is too long".into()));
    }
    let mut cursor = Cursor {
        text: text.as_bytes(),
        at: 0,
    };
    let local = date_time(&mut cursor)?;
    let fraction = fraction(&mut cursor)?;
    let offset_minutes = offset(&mut cursor)?;
    if cursor.at != cursor.text.len() {
        return Err(invalid(SHAPE));
    }
    let fraction = fraction.trim_end_matches('0');
    let fraction = if fraction.is_empty() {
        String::new()
    } else {
        format!(".{fraction}")
    };
    match offset_minutes {
        None => Ok(format!("{}{fraction}", plain(&local))),
        Some(minutes) => {
            let utc = local
                .checked_sub_signed(TimeDelta::minutes(minutes))
                .filter(|utc| (0..=9999).contains(&utc.year()))
                .ok_or_else(|| invalid("must be within years 0000 to 9999 once in UTC"))?;
            Ok(format!("{}{fraction}Z", plain(&utc)))
        }
    }
}

fn invalid(why: &str) -> InvalidValue {
    InvalidValue(why.to_owned())
}

/// `YYYY-MM-DDTHH:MM:SS`, the year always four digits.
fn plain(value: &NaiveDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        value.year(),
        value.month(),
        value.day(),
        value.hour(),
        value.minute(),
        value.second()
    )
}

/// Reads the text left to right, byte by byte; every byte the grammar does not name is a
/// refusal, so no non-ASCII text can reach a slice boundary.
struct Cursor<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn literal(&mut self, expected: u8) -> Result<(), InvalidValue> {
        if self.peek() != Some(expected) {
            return Err(invalid(SHAPE));
        }
        self.at += 1;
        Ok(())
    }

    /// Exactly `count` digits, as a number.
    fn number(&mut self, count: usize) -> Result<u32, InvalidValue> {
        let mut value = 0;
        for _ in 0..count {
            match self.peek() {
                Some(digit @ b'0'..=b'9') => value = value * 10 + u32::from(digit - b'0'),
                _ => return Err(invalid(SHAPE)),
            }
            self.at += 1;
        }
        Ok(value)
    }

    /// All the digits from here on, as text.
    fn digits(&mut self) -> &'a str {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        std::str::from_utf8(&self.text[start..self.at]).expect("ASCII digits")
    }
}

/// `YYYY-MM-DDTHH:MM:SS`, a date that exists and a time without leap second.
fn date_time(cursor: &mut Cursor<'_>) -> Result<NaiveDateTime, InvalidValue> {
    let year = cursor.number(4)?;
    cursor.literal(b'-')?;
    let month = cursor.number(2)?;
    cursor.literal(b'-')?;
    let day = cursor.number(2)?;
    cursor.literal(b'T')?;
    let hour = cursor.number(2)?;
    cursor.literal(b':')?;
    let minute = cursor.number(2)?;
    cursor.literal(b':')?;
    let second = cursor.number(2)?;
    let year = i32::try_from(year).expect("four digits");
    let date = NaiveDate::from_ymd_opt(year, month, day)
        .ok_or_else(|| invalid("must be a date that exists"))?;
    if second == 60 {
        return Err(invalid(
            "must have seconds 00 to 59: leap seconds are not accepted",
        ));
    }
    date.and_hms_opt(hour, minute, second)
        .ok_or_else(|| invalid("must have a time from 00:00:00 to 23:59:59"))
}

/// The fraction digits after an optional `.`, empty when there is none.
fn fraction<'a>(cursor: &mut Cursor<'a>) -> Result<&'a str, InvalidValue> {
    if cursor.peek() != Some(b'.') {
        return Ok("");
    }
    cursor.at += 1;
    let digits = cursor.digits();
    if digits.is_empty() {
        return Err(invalid(SHAPE));
    }
    if digits.len() > FRACTION_DIGITS_MAX {
        return Err(invalid(
            "must have at most 9 fraction digits (nanoseconds); more are never dropped",
        ));
    }
    Ok(digits)
}

/// The offset east of UTC in minutes: `None` without one, 0 for `Z`.
fn offset(cursor: &mut Cursor<'_>) -> Result<Option<i64>, InvalidValue> {
    let sign = match cursor.peek() {
        None => return Ok(None),
        Some(b'Z') => {
            cursor.at += 1;
            return Ok(Some(0));
        }
        Some(b'+') => 1,
        Some(b'-') => -1,
        Some(_) => return Err(invalid(SHAPE)),
    };
    cursor.at += 1;
    let hours = cursor.number(2)?;
    cursor.literal(b':')?;
    let minutes = cursor.number(2)?;
    if hours > 23 || minutes > 59 {
        return Err(invalid("must have an offset from -23:59 to +23:59"));
    }
    Ok(Some(sign * i64::from(hours * 60 + minutes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(text: &str) -> String {
        normalise(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn refused(text: &str, why: &str) {
        let error = normalise(text).expect_err(text).0;
        assert!(error.contains(why), "{text}: {error}");
    }

    #[test]
    fn the_seed_local_form_and_offsets_normalise() {
        assert_eq!(ok("2024-01-31T10:00:00"), "2024-01-31T10:00:00");
        assert_eq!(ok("2024-01-31T10:00:00.500"), "2024-01-31T10:00:00.5");
        assert_eq!(ok("2024-01-31T10:00:00.000"), "2024-01-31T10:00:00");
        assert_eq!(ok("2024-01-31T10:00:00Z"), "2024-01-31T10:00:00Z");
        assert_eq!(ok("2024-01-31T12:30:00+02:30"), "2024-01-31T10:00:00Z");
        assert_eq!(ok("2024-01-31T00:00:00-00:00"), "2024-01-31T00:00:00Z");
        assert_eq!(
            ok("2024-02-29T23:59:59.123456789-23:59"),
            "2024-03-01T23:58:59.123456789Z"
        );
        assert_eq!(ok("0000-01-01T00:00:00"), "0000-01-01T00:00:00");
        assert_eq!(
            ok("9999-12-31T23:59:59.999999999Z"),
            "9999-12-31T23:59:59.999999999Z"
        );
    }

    #[test]
    fn leap_seconds_are_refused_at_any_minute() {
        refused("2024-01-31T10:17:60", "leap seconds are not accepted");
        refused("2016-12-31T23:59:60Z", "leap seconds are not accepted");
        refused("2024-01-31T10:00:61", "00:00:00 to 23:59:59");
        refused("2024-01-31T24:00:00", "00:00:00 to 23:59:59");
        refused("2024-01-31T10:60:00", "00:00:00 to 23:59:59");
    }

    #[test]
    fn lenient_shapes_are_refused() {
        for text in [
            "2024-1-3T1:0:0",
            " 2024-01-31T10:00:00",
            "2024-01-31T10:00:00 ",
            "2024-01-31 10:00:00",
            "2024-01-31t10:00:00",
            "2024-01-31T10:00:00z",
            "2024-01-31T10:00",
            "2024-01-31",
            "2024-01-31T10:00:00.",
            "2024-01-31T10:00:00+0200",
            "2024-01-31T10:00:00+02",
            "+2024-01-31T10:00:00",
            "20240131T100000",
            "2024-01-31T10:00:00Z ",
            "2024-01-31T10:00:00,5",
            "",
        ] {
            refused(text, "ISO-8601");
        }
        refused("2024-02-30T10:00:00", "date that exists");
        refused("2023-02-29T10:00:00", "date that exists");
        refused("2024-13-01T10:00:00", "date that exists");
        refused("2024-00-01T10:00:00", "date that exists");
        refused("2024-01-31T10:00:00+24:00", "offset");
        refused("2024-01-31T10:00:00+01:60", "offset");
        refused(
            &format!("2024-01-31T10:00:00{}", "0".repeat(30)),
            "too long",
        );
    }

    #[test]
    fn digits_past_nanoseconds_are_refused_not_dropped() {
        refused(
            "2024-01-31T10:00:00.1234567891",
            "at most 9 fraction digits",
        );
        refused(
            "2024-01-31T10:00:00.0000000000Z",
            "at most 9 fraction digits",
        );
    }

    #[test]
    fn offsets_that_leave_years_0000_to_9999_are_refused() {
        refused("9999-12-31T23:00:00-01:00", "years 0000 to 9999");
        refused("0000-01-01T00:00:00+00:01", "years 0000 to 9999");
        assert_eq!(ok("0000-01-01T00:01:00+00:01"), "0000-01-01T00:00:00Z");
    }

    /// A valid date-time: its text and its UTC instant, fraction digits as written.
    fn instants() -> impl Strategy<Value = (NaiveDateTime, String)> {
        (
            0i32..=9999,
            1u32..=12,
            1u32..=31,
            0u32..24,
            0u32..60,
            0u32..60,
        )
            .prop_filter_map("date exists", |(y, mo, d, h, mi, s)| {
                NaiveDate::from_ymd_opt(y, mo, d)?.and_hms_opt(h, mi, s)
            })
            .prop_flat_map(|instant| (Just(instant), "[0-9]{0,9}"))
    }

    fn expected_fraction(digits: &str) -> String {
        let trimmed = digits.trim_end_matches('0');
        if trimmed.is_empty() {
            String::new()
        } else {
            format!(".{trimmed}")
        }
    }

    fn written_fraction(digits: &str) -> String {
        if digits.is_empty() {
            String::new()
        } else {
            format!(".{digits}")
        }
    }

    proptest! {
        #[test]
        fn valid_components_round_trip_to_the_normal_form(
            (instant, digits) in instants(),
            zulu in any::<bool>(),
        ) {
            let suffix = if zulu { "Z" } else { "" };
            let text = format!("{}{}{suffix}", plain(&instant), written_fraction(&digits));
            let expected = format!("{}{}{suffix}", plain(&instant), expected_fraction(&digits));
            prop_assert_eq!(normalise(&text), Ok(expected.clone()));
            prop_assert_eq!(normalise(&expected), Ok(expected));
        }

        #[test]
        fn equal_instants_with_different_offsets_normalise_equally(
            (utc, digits) in instants(),
            first in -1439i64..=1439,
            second in -1439i64..=1439,
        ) {
            let spell = |minutes: i64| {
                let local = utc.checked_add_signed(TimeDelta::minutes(minutes))?;
                if !(0..=9999).contains(&local.year()) {
                    return None;
                }
                let sign = if minutes < 0 { '-' } else { '+' };
                let (h, m) = (minutes.abs() / 60, minutes.abs() % 60);
                Some(format!("{}{}{sign}{h:02}:{m:02}", plain(&local), written_fraction(&digits)))
            };
            let expected = format!("{}{}Z", plain(&utc), expected_fraction(&digits));
            for minutes in [first, second, 0] {
                if let Some(text) = spell(minutes) {
                    prop_assert_eq!(normalise(&text), Ok(expected.clone()), "{}", text);
                }
            }
        }

        #[test]
        fn different_instants_never_normalise_equally(
            (a, a_digits) in instants(),
            (b, b_digits) in instants(),
        ) {
            let a_text = format!("{}{}Z", plain(&a), written_fraction(&a_digits));
            let b_text = format!("{}{}Z", plain(&b), written_fraction(&b_digits));
            let same = a == b && expected_fraction(&a_digits) == expected_fraction(&b_digits);
            prop_assert_eq!(normalise(&a_text) == normalise(&b_text), same);
        }

        #[test]
        fn arbitrary_texts_never_panic_and_accepted_ones_are_fixed_points(
            text in prop_oneof![
                any::<String>(),
                "[0-9T:.Z+\\- tz]{0,40}",
                concat!(
                    "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}",
                    "(\\.[0-9]{0,12})?(Z|[-+][0-9]{2}:[0-9]{2})?",
                ),
            ]
        ) {
            if let Ok(normal) = normalise(&text) {
                prop_assert!(text.is_ascii() && !text.contains(' '), "{}", text);
                prop_assert_eq!(normalise(&normal), Ok(normal.clone()));
            }
        }

        #[test]
        fn ten_or_more_fraction_digits_are_refused(
            (instant, _) in instants(),
            digits in "[0-9]{10,14}",
            suffix in "(|Z|[-+]0[0-9]:[0-5][0-9])",
        ) {
            let text = format!("{}.{digits}{suffix}", plain(&instant));
            let error = normalise(&text).expect_err(&text).0;
            prop_assert!(error.contains("at most 9 fraction digits"), "{}: {}", text, error);
        }
    }
}
