//! Wire → domain: one API value into one typed cell, exactly, or an error that says why.
//!
//! Tolerant where the API is inconsistent (spec §4): numbers may be strings, `""`/`null`/missing
//! all mean "no value", dates come with or without zone, with seven fractional digits or an
//! offset, and `0001-01-01` means none. Strict where money is at stake: a decimal with more
//! fractional digits than its column keeps, or more digits than Decimal128(38) holds, is an
//! error, never rounded — except in the measure columns (quantities, unit prices) that say so
//! ([`Excess::RoundKeepingServed`]): they round half-even and hand back the number as served,
//! which the row keeps in `exact_values`.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Timelike};
use rust_decimal::Decimal;
use std::borrow::Cow;

pub use crate::tabular::{Cell, ColType, Excess, Value};

/// Why a value could not be decoded (the caller adds file, page, record and field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

fn err<T>(message: String) -> Result<T, DecodeError> {
    Err(DecodeError(message))
}

/// One JSON value exactly as it was received: its text, borrowed from the page. Nothing is
/// parsed until a column asks for it, and numbers are never parsed but as exact decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raw<'a>(&'a str);

impl<'a> Raw<'a> {
    /// A value from its JSON text (surrounding whitespace ignored).
    pub fn new(text: &'a str) -> Raw<'a> {
        // JSON's whitespace is ASCII.
        Raw(text.trim_ascii())
    }

    /// The JSON text.
    pub fn text(self) -> &'a str {
        self.0
    }

    fn first(self) -> u8 {
        self.0.as_bytes().first().copied().unwrap_or(b'n')
    }

    /// The contents of a JSON string (borrowed unless it has escapes); `None` for other values;
    /// an error for a string no text can hold (a lone surrogate such as `"\ud800"`).
    pub fn string(self) -> Result<Option<Cow<'a, str>>, DecodeError> {
        if self.first() != b'"' {
            return Ok(None);
        }
        let Some(inner) = self.0.get(1..self.0.len().saturating_sub(1)) else { return Ok(None) };
        if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
            return Ok(Some(Cow::Borrowed(inner)));
        }
        match serde_json::from_str::<String>(self.0) {
            Ok(text) => Ok(Some(Cow::Owned(text))),
            Err(e) => err(format!("{} is not a string text can hold ({e})", self.0)),
        }
    }

    /// The value as a JSON tree (numbers kept exact), for the rare column that needs one; an
    /// error when it cannot be read whole (nested deeper than the parser follows, say).
    pub fn value(self) -> Result<serde_json::Value, DecodeError> {
        serde_json::from_str(self.0).map_err(|e| {
            let shown: String = self.0.chars().take(40).collect();
            DecodeError(format!("{shown}… cannot be kept exactly ({e})"))
        })
    }

    fn is_number(self) -> bool {
        matches!(self.first(), b'-' | b'0'..=b'9')
    }
}

/// Whether a JSON value means "no value".
fn is_absent(value: Option<Raw<'_>>) -> Result<bool, DecodeError> {
    match value {
        None => Ok(true),
        Some(raw) if raw.text() == "null" => Ok(true),
        Some(raw) => Ok(raw.string()?.is_some_and(|s| s.trim().is_empty())),
    }
}

/// The digits of a JSON number or numeric string, exactly as sent.
fn numeric_text(value: Raw<'_>) -> Result<Option<Cow<'_, str>>, DecodeError> {
    if value.is_number() {
        return Ok(Some(Cow::Borrowed(value.text())));
    }
    Ok(value.string()?.map(|s| match s {
        Cow::Borrowed(b) => Cow::Borrowed(b.trim()),
        Cow::Owned(o) => Cow::Owned(o.trim().to_owned()),
    }))
}

/// Parses decimal text exactly: plain or scientific notation; never rounds.
pub fn parse_decimal(text: &str) -> Result<Decimal, DecodeError> {
    let parsed = if text.contains(['e', 'E']) { Decimal::from_scientific(text) } else { Decimal::from_str_exact(text) };
    match parsed {
        Ok(d) => Ok(d),
        Err(e) => err(format!("{text:?} is not an exact decimal ({e})")),
    }
}

/// The largest Decimal128(38, _) unscaled value.
const MAX_DECIMAL128: u128 = 10u128.pow(38) - 1;

/// The unscaled Decimal128(38, `scale`) value of a decimal, or why it does not fit: more
/// fractional digits than the column keeps, or more than 38 digits in all.
pub fn to_decimal128(value: Decimal, scale: u32) -> Result<i128, DecodeError> {
    let normalized = value.normalize();
    let digits = normalized.scale();
    if digits > scale {
        return err(format!("{value} has {digits} fractional digits; the column keeps {scale}"));
    }
    let unscaled = 10i128
        .checked_pow(scale - digits)
        .and_then(|factor| normalized.mantissa().checked_mul(factor))
        .filter(|v| v.unsigned_abs() <= MAX_DECIMAL128);
    match unscaled {
        Some(v) => Ok(v),
        None => err(format!("{value} does not fit Decimal128(38, {scale})")),
    }
}

/// The decimal an unscaled Decimal128 value stands for, when rust_decimal can hold it.
pub fn from_decimal128(unscaled: i128, scale: u32) -> Option<Decimal> {
    Decimal::try_from_i128_with_scale(unscaled, scale).ok().or_else(|| {
        // Trailing zeros beyond rust_decimal's 96 bits: drop them and try again.
        let mut v = unscaled;
        let mut s = scale;
        while s > 0 && v % 10 == 0 {
            v /= 10;
            s -= 1;
        }
        Decimal::try_from_i128_with_scale(v, s).ok()
    })
}

/// Parses the API's date-times leniently into UTC; `0001-01-01…` is `None`.
pub fn parse_datetime(text: &str) -> Result<Option<NaiveDateTime>, DecodeError> {
    let text = text.trim();
    if text.starts_with("0001-01-01") {
        return Ok(None);
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(Some(at.naive_utc()));
    }
    if let Ok(at) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Ok(Some(at));
    }
    if let Ok(day) = NaiveDate::from_str(text) {
        return Ok(day.and_hms_opt(0, 0, 0));
    }
    // Microsoft's own subscription example writes `2015-11-25T06: 41: 12Z`: spaces inside an
    // otherwise valid instant change nothing about it.
    if text.contains(' ') {
        let packed: String = text.chars().filter(|c| *c != ' ').collect();
        if let Ok(Some(at)) = parse_datetime(&packed) {
            return Ok(Some(at));
        }
    }
    err(format!("{text:?} is not a date-time"))
}

/// Decodes one decimal, and when its column rounds it ([`Excess::RoundKeepingServed`] and more
/// fractional digits than the column keeps), the number as served, for the row to keep.
pub fn decode_keeping_served<'a>(
    value: Option<Raw<'a>>,
    ty: ColType,
) -> Result<(Value<'a>, Option<Cow<'a, str>>), DecodeError> {
    let ColType::Decimal { scale, excess } = ty else { return decode(value, ty).map(|v| (v, None)) };
    if is_absent(value)? {
        return Ok((Value::Null, None));
    }
    let Some(value) = value else { return Ok((Value::Null, None)) };
    let Some(text) = numeric_text(value)? else { return err(format!("{} is not a number", value.text())) };
    let exact = parse_decimal(&text)?;
    if excess == Excess::RoundKeepingServed && exact.normalize().scale() > scale {
        let rounded = exact.round_dp_with_strategy(scale, rust_decimal::RoundingStrategy::MidpointNearestEven);
        return Ok((Value::Dec(to_decimal128(rounded, scale)?), Some(text)));
    }
    Ok((Value::Dec(to_decimal128(exact, scale)?), None))
}

/// Decodes one value for a column. `None` (missing), `null` and `""` give [`Value::Null`]; text is borrowed from the page unless it had to be unescaped or rebuilt.
pub fn decode<'a>(value: Option<Raw<'a>>, ty: ColType) -> Result<Value<'a>, DecodeError> {
    if is_absent(value)? {
        return Ok(Value::Null);
    }
    let Some(value) = value else { return Ok(Value::Null) };
    match ty {
        ColType::Utf8 | ColType::Json => Ok(Value::Str(match value.string()? {
            Some(s) => s,
            // Numbers and booleans as sent; objects and arrays in their compact form.
            None if value.is_number() || matches!(value.text(), "true" | "false") => Cow::Borrowed(value.text()),
            None => Cow::Owned(value.value()?.to_string()),
        })),
        ColType::Decimal { .. } => decode_keeping_served(Some(value), ty).map(|(v, _)| v),
        ColType::Int64 => {
            let Some(text) = numeric_text(value)? else {
                return err(format!("{} is not a whole number", value.text()));
            };
            let d = parse_decimal(&text)?;
            if !d.fract().is_zero() {
                return err(format!("{text} is not a whole number"));
            }
            let whole = d.trunc().mantissa() / 10i128.pow(d.trunc().scale());
            i64::try_from(whole).map(Value::Int).or_else(|_| err(format!("{text} is out of range")))
        }
        ColType::Bool => match (value.text(), value.string()?) {
            ("true", _) => Ok(Value::Bool(true)),
            ("false", _) => Ok(Value::Bool(false)),
            (_, Some(s)) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            (_, Some(s)) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            (other, _) => err(format!("{other} is not a boolean")),
        },
        ColType::Timestamp | ColType::TimestampMicros | ColType::Date => {
            let Some(text) = value.string()? else { return err(format!("{} is not a date", value.text())) };
            let Some(at) = parse_datetime(&text)? else { return Ok(Value::Null) };
            if ty == ColType::Date {
                if at.time().num_seconds_from_midnight() != 0 || at.time().nanosecond() != 0 {
                    return err(format!("{text:?} is not a whole day"));
                }
                let days = at.date().signed_duration_since(NaiveDate::default()).num_days();
                return i32::try_from(days).map(Value::Date).or_else(|_| err(format!("{text:?} is out of range")));
            }
            if ty == ColType::TimestampMicros {
                if at.and_utc().timestamp_subsec_nanos() % 1000 != 0 {
                    return err(format!("{text:?} has digits below a microsecond"));
                }
                return Ok(Value::Timestamp(at.and_utc().timestamp_micros()));
            }
            match at.and_utc().timestamp_nanos_opt() {
                Some(nanos) => Ok(Value::Timestamp(nanos)),
                None => err(format!("{text:?} is outside the range of a nanosecond timestamp (1677-2262)")),
            }
        }
    }
}

/// A join key as the API's many spellings of it normalise: trimmed, `org:` removed, lower case.
pub fn normalize_key(raw: &str) -> String {
    let trimmed = raw.trim();
    let bare = trimmed.get(..4).filter(|p| p.eq_ignore_ascii_case("org:")).map_or(trimmed, |_| &trimmed[4..]);
    bare.trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    /// A JSON string's raw text.
    fn quoted(s: &str) -> String {
        serde_json::to_string(s).unwrap()
    }

    #[test]
    fn decimals_are_exact_and_never_rounded_to_fit() {
        let v = Raw::new("0.1835431430074643112595");
        assert_eq!(decode(Some(v), ColType::decimal(22)).unwrap(), Value::Dec(1835431430074643112595));
        let e = decode(Some(v), ColType::decimal(10)).unwrap_err();
        assert!(e.0.contains("22 fractional digits"), "{e}");
        let big = Raw::new("-1234567890123456.78");
        assert_eq!(decode(Some(big), ColType::decimal(6)).unwrap(), Value::Dec(-1234567890123456780000));
        assert_eq!(decode(Some(Raw::new("\"16\"")), ColType::decimal(28)).unwrap(), Value::Dec(16 * 10i128.pow(28)));
        assert_eq!(decode(Some(Raw::new("\" 1.5E-3 \"")), ColType::decimal(4)).unwrap(), Value::Dec(15));
        let e = decode(Some(Raw::new("79228162514264337593543950335")), ColType::decimal(10)).unwrap_err();
        assert!(e.0.contains("does not fit Decimal128(38, 10)"), "{e}");
        assert_eq!(from_decimal128(16 * 10i128.pow(28), 28), Some(d("16")));
        assert_eq!(from_decimal128(-26470000, 6), Some(d("-26.47")));
        assert!(decode(Some(Raw::new("\"12,5\"")), ColType::decimal(2)).is_err());
        assert!(decode(Some(Raw::new("true")), ColType::decimal(2)).unwrap_err().0.contains("not a number"));
    }

    #[test]
    fn text_keeps_numbers_as_sent_and_unescapes_strings() {
        assert_eq!(decode(Some(Raw::new("1.50")), ColType::Utf8).unwrap(), Value::Str("1.50".into()));
        assert_eq!(decode(Some(Raw::new("false")), ColType::Utf8).unwrap(), Value::Str("false".into()));
        let escaped = Raw::new(r#""{\"env\":\"dev\"} \u00e9""#);
        assert_eq!(decode(Some(escaped), ColType::Utf8).unwrap(), Value::Str("{\"env\":\"dev\"} é".into()));
        assert_eq!(
            decode(Some(Raw::new(r#"[ "AddOn", "Trial" ]"#)), ColType::Json).unwrap(),
            Value::Str(r#"["AddOn","Trial"]"#.into())
        );
        assert_eq!(decode(Some(Raw::new(r#""TRUE""#)), ColType::Bool).unwrap(), Value::Bool(true));
    }

    #[test]
    fn absent_values_are_null_whatever_their_spelling() {
        for v in [None, Some(Raw::new("null")), Some(Raw::new("\"\"")), Some(Raw::new("\"  \""))] {
            assert_eq!(decode(v, ColType::decimal(2)).unwrap(), Value::Null);
            assert_eq!(decode(v, ColType::Utf8).unwrap(), Value::Null);
        }
        let sentinel = quoted("0001-01-01T00:00:00");
        assert_eq!(decode(Some(Raw::new(&sentinel)), ColType::Timestamp).unwrap(), Value::Null);
    }

    #[test]
    fn dates_are_read_leniently_into_utc() {
        let ts = |s: &str| decode(Some(Raw::new(&quoted(s))), ColType::Timestamp).map(Value::into_cell).unwrap();
        assert_eq!(ts("2019-02-04T09:22:40.1767993-08:00"), ts("2019-02-04T17:22:40.1767993Z"));
        assert_eq!(ts("2021-05-01T00:00:00"), ts("2021-05-01T00:00:00Z"));
        assert_eq!(ts("2021-05-20T18:48:30.6168285Z"), Cell::Timestamp(1_621_536_510_616_828_500));
        let day = |s: &str| decode(Some(Raw::new(&quoted(s))), ColType::Date).map(Value::into_cell);
        assert_eq!(day("9999-12-14T00:00:00Z").unwrap(), Cell::Date(2_932_879));
        assert_eq!(day("1970-01-02").unwrap(), Cell::Date(1));
        assert!(day("2025-01-01T10:00:00Z").is_err());
        let raw_ts = |s: &str| decode(Some(Raw::new(&quoted(s))), ColType::Timestamp).map(Value::into_cell);
        assert!(raw_ts("9999-12-14T00:00:00Z").is_err(), "beyond the nanosecond range is an error, not a wrap");
        assert_eq!(raw_ts("2015-11-25T06: 41: 12Z").unwrap(), ts("2015-11-25T06:41:12Z"), "Microsoft's own example");
        assert!(raw_ts("2015-11-25T06:41:1x").is_err());
        let micros = |s: &str| decode(Some(Raw::new(&quoted(s))), ColType::TimestampMicros).map(Value::into_cell);
        assert_eq!(micros("9999-12-31T23:59:59Z").unwrap(), Cell::Timestamp(253_402_300_799_000_000));
        assert!(micros("2021-05-20T18:48:30.6168285Z").is_err(), "a 100 ns digit does not fit microseconds");
    }

    #[test]
    fn keys_normalise_prefix_case_and_space() {
        assert_eq!(normalize_key(" org:9060D13D-C3A1 "), "9060d13d-c3a1");
        assert_eq!(normalize_key("ORG:abc"), "abc");
        assert_eq!(normalize_key(&normalize_key("org:ABC")), normalize_key("org:ABC"));
    }

    #[test]
    fn values_no_cell_can_hold_exactly_are_errors_never_null() {
        let surrogate = decode(Some(Raw::new(r#""Contoso \ud800""#)), ColType::Utf8).unwrap_err();
        assert!(surrogate.0.contains("not a string text can hold"), "{surrogate}");
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let nested = decode(Some(Raw::new(&deep)), ColType::Json).unwrap_err();
        assert!(nested.0.contains("cannot be kept exactly"), "{nested}");
        assert!(decode(Some(Raw::new(r#""\ud800""#)), ColType::decimal(2)).is_err());
        assert_eq!(decode(Some(Raw::new("[[1]]")), ColType::Json).unwrap(), Value::Str("[[1]]".into()));
    }

    /// Property tests of the decoders, 10,000 cases each: what the API can send of a number, a
    /// string or a date-time is either kept exactly or refused, never rounded or replaced.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        const CASES: u32 = 10_000;

        /// A decimal of up to 28 digits (what exact parsing holds), `frac` of them fractional.
        fn decimal() -> impl Strategy<Value = (i128, u32)> {
            (0u32..=18).prop_flat_map(|frac| {
                let bound = 10i128.pow(28) - 1;
                ((-bound..=bound), Just(frac))
            })
        }

        /// The plain decimal text of `mantissa` × 10^-`frac`, written digit by digit.
        fn text_of(mantissa: i128, frac: u32) -> String {
            let digits = format!("{:0>width$}", mantissa.unsigned_abs(), width = frac as usize + 1);
            let (int, fraction) = digits.split_at(digits.len() - frac as usize);
            let sign = if mantissa < 0 { "-" } else { "" };
            if frac == 0 { format!("{sign}{int}") } else { format!("{sign}{int}.{fraction}") }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(CASES))]

            #[test]
            fn a_number_is_kept_to_the_last_digit_in_every_spelling((mantissa, frac) in decimal(), pad in 0u32..4) {
                let scale = (frac + pad).min(18);
                let want = mantissa * 10i128.pow(scale - frac);
                let text = text_of(mantissa, frac);
                for sent in [text.clone(), format!("\"{text}\""), format!("\" {text} \"")] {
                    prop_assert_eq!(decode(Some(Raw::new(&sent)), ColType::decimal(scale)), Ok(Value::Dec(want)), "{}", sent);
                }
                // Scientific notation, as some producers write numbers: the same value.
                let scientific = format!("{mantissa}e-{frac}");
                prop_assert_eq!(decode(Some(Raw::new(&scientific)), ColType::decimal(scale)), Ok(Value::Dec(want)));
            }

            #[test]
            fn a_number_with_more_digits_than_its_column_is_refused_never_rounded(
                frac in 1u32..=18,
                head in -(10i128.pow(26))..10i128.pow(26),
                last in 1i128..=9,
            ) {
                // The last fractional digit is never 0: it is a digit the column must keep.
                let mantissa = head * 10 + if head < 0 { -last } else { last };
                let text = text_of(mantissa, frac);
                prop_assert!(decode(Some(Raw::new(&text)), ColType::decimal(frac - 1)).is_err(), "{}", text);
                let wide = format!("{}{text}", "9".repeat(20));
                let wide = if mantissa < 0 { format!("-{}", wide.replace('-', "")) } else { wide };
                prop_assert!(decode(Some(Raw::new(&wide)), ColType::decimal(18)).is_err(), "{}", wide);
            }

            #[test]
            fn garbage_in_a_number_is_an_error(text in "[0-9]{1,5}[,;a-df-z ][0-9]{1,5}|[1-9][0-9]{0,2}e[1-9][0-9]{2,3}") {
                let sent = format!("\"{text}\"");
                let decoded = decode(Some(Raw::new(&sent)), ColType::decimal(6));
                prop_assert!(decoded.is_err(), "{} gave {:?}", sent, decoded);
            }

            #[test]
            fn a_string_comes_back_as_sent(text in any::<String>()) {
                let sent = serde_json::to_string(&text).unwrap();
                let want = if text.trim().is_empty() { Value::Null } else { Value::Str(text.clone().into()) };
                prop_assert_eq!(decode(Some(Raw::new(&sent)), ColType::Utf8), Ok(want));
            }

            #[test]
            fn a_lone_surrogate_anywhere_is_an_error(before in "[a-zA-Z ]{0,8}", unit in 0xd800u32..0xe000, after in "[a-zA-Z ]{0,8}") {
                let sent = format!("\"{before}\\u{unit:04x}{after}\"");
                prop_assert!(decode(Some(Raw::new(&sent)), ColType::Utf8).is_err(), "{}", sent);
            }

            #[test]
            fn a_date_time_is_the_same_instant_in_every_documented_spelling(
                secs in -2_208_988_800i64..7_258_118_400, // 1900 to 2200
                ticks in 0u32..10_000_000,                // 100 ns, as .NET writes seven digits
                offset_minutes in -720i32..=840,
            ) {
                let at = DateTime::from_timestamp(secs, ticks * 100).unwrap();
                let want = Ok(Value::Timestamp(at.timestamp_nanos_opt().unwrap()));
                let zone = chrono::FixedOffset::east_opt(offset_minutes * 60).unwrap();
                let local = at.with_timezone(&zone);
                let seven = |t: &DateTime<chrono::FixedOffset>| format!("{}.{ticks:07}", t.format("%Y-%m-%dT%H:%M:%S"));
                let utc = seven(&at.fixed_offset());
                let spellings = [format!("{utc}Z"), utc.clone(), format!("{}{}", seven(&local), local.format("%:z"))];
                for text in spellings {
                    let sent = format!("\"{text}\"");
                    prop_assert_eq!(decode(Some(Raw::new(&sent)), ColType::Timestamp), want.clone(), "{}", text);
                }
            }

            #[test]
            fn a_date_time_that_is_no_date_is_an_error(text in "[0-9]{4}-(1[3-9]|00)-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z|[0-9]{4}-[0-9]{2}-(3[2-9]|00)") {
                let sent = format!("\"{text}\"");
                prop_assert!(decode(Some(Raw::new(&sent)), ColType::Timestamp).is_err(), "{}", text);
            }
        }
    }
}
