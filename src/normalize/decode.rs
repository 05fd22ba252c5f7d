//! Wire → domain: one API value into one typed cell, exactly, or an error that says why.
//!
//! Tolerant where the API is inconsistent (spec §4): numbers may be strings, `""`/`null`/missing
//! all mean "no value", dates come with or without zone, with seven fractional digits or an
//! offset, and `0001-01-01` means none. Strict where money is at stake: a decimal with more
//! fractional digits than its column keeps, or more digits than Decimal128(38) holds, is an
//! error, never rounded.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Timelike};
use rust_decimal::Decimal;
use serde_json::Value;

pub use crate::model::schema::{Cell, ColType};

/// Why a value could not be decoded (the caller adds file, page, record and field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

fn err<T>(message: String) -> Result<T, DecodeError> {
    Err(DecodeError(message))
}

/// The JSON members of an item, looked up case-insensitively (`pcToBCExchangeRate`,
/// `PCToBCExchangeRate` and `pCToBCExchangeRate` are one field; of two spellings in one item, the
/// later in key order wins).
pub struct Item<'a> {
    members: HashMap<u64, Member<'a>, BuildHasherDefault<Prehashed>>,
}

/// A member and any other member whose lower-cased name hashes alike (almost never).
struct Member<'a> {
    name: &'a str,
    value: &'a Value,
    others: Vec<(&'a str, &'a Value)>,
}

/// FNV-1a over the ASCII-lower-cased bytes: a case-insensitive key without allocating.
fn folded_hash(name: &str) -> u64 {
    name.bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(0x0100_0000_01b3))
}

/// The keys are hashes already.
#[derive(Default)]
struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl<'a> Item<'a> {
    /// Indexes an item; `None` unless it is a JSON object.
    pub fn new(value: &'a Value) -> Option<Item<'a>> {
        let object = value.as_object()?;
        let mut members: HashMap<u64, Member<'a>, BuildHasherDefault<Prehashed>> =
            HashMap::with_capacity_and_hasher(object.len(), BuildHasherDefault::default());
        for (name, value) in object {
            match members.entry(folded_hash(name)) {
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(Member { name, value, others: Vec::new() });
                }
                std::collections::hash_map::Entry::Occupied(mut slot) => {
                    let member = slot.get_mut();
                    if member.name.eq_ignore_ascii_case(name) {
                        (member.name, member.value) = (name, value);
                    } else if let Some(other) = member.others.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                        *other = (name, value);
                    } else {
                        member.others.push((name, value));
                    }
                }
            }
        }
        Some(Item { members })
    }

    /// The first of `names` (in any case) that is present.
    pub fn get(&self, names: &[&str]) -> Option<&'a Value> {
        names.iter().find_map(|n| {
            let member = self.members.get(&folded_hash(n))?;
            if member.name.eq_ignore_ascii_case(n) {
                return Some(member.value);
            }
            member.others.iter().find(|(other, _)| other.eq_ignore_ascii_case(n)).map(|(_, v)| *v)
        })
    }

    /// A value by dotted path (`companyProfile.companyName`, `entitledArtifacts.0.resourceId`),
    /// every segment matched case-insensitively.
    pub fn path(&self, path: &str) -> Option<&'a Value> {
        let mut segments = path.split('.');
        let mut value = self.get(&[segments.next()?])?;
        for segment in segments {
            value = match value {
                Value::Object(map) => map.iter().find(|(k, _)| k.eq_ignore_ascii_case(segment)).map(|(_, v)| v)?,
                Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(value)
    }
}

/// Whether a JSON value means "no value".
fn is_absent(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        _ => false,
    }
}

/// The digits of a JSON number or numeric string, exactly as sent.
fn numeric_text(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.trim().to_owned()),
        _ => None,
    }
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
    err(format!("{text:?} is not a date-time"))
}

/// Decodes one value for a column. `None` (missing), `null` and `""` give [`Cell::Null`].
pub fn decode(value: Option<&Value>, ty: ColType) -> Result<Cell, DecodeError> {
    if is_absent(value) {
        return Ok(Cell::Null);
    }
    let Some(value) = value else { return Ok(Cell::Null) };
    match ty {
        ColType::Utf8 => match value {
            Value::String(s) => Ok(Cell::Str(s.clone())),
            Value::Number(n) => Ok(Cell::Str(n.to_string())),
            Value::Bool(b) => Ok(Cell::Str(b.to_string())),
            other => Ok(Cell::Str(other.to_string())),
        },
        ColType::Json => Ok(Cell::Str(match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })),
        ColType::Decimal { scale } => {
            let Some(text) = numeric_text(value) else { return err(format!("{value} is not a number")) };
            to_decimal128(parse_decimal(&text)?, scale).map(Cell::Dec)
        }
        ColType::Int64 => {
            let Some(text) = numeric_text(value) else { return err(format!("{value} is not a whole number")) };
            let d = parse_decimal(&text)?;
            if !d.fract().is_zero() {
                return err(format!("{text} is not a whole number"));
            }
            let whole = d.trunc().mantissa() / 10i128.pow(d.trunc().scale());
            i64::try_from(whole).map(Cell::Int).or_else(|_| err(format!("{text} is out of range")))
        }
        ColType::Bool => match value {
            Value::Bool(b) => Ok(Cell::Bool(*b)),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Cell::Bool(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Cell::Bool(false)),
            other => err(format!("{other} is not a boolean")),
        },
        ColType::Timestamp | ColType::TimestampMicros | ColType::Date => {
            let Value::String(text) = value else { return err(format!("{value} is not a date")) };
            let Some(at) = parse_datetime(text)? else { return Ok(Cell::Null) };
            if ty == ColType::Date {
                if at.time().num_seconds_from_midnight() != 0 || at.time().nanosecond() != 0 {
                    return err(format!("{text:?} is not a whole day"));
                }
                let days = at.date().signed_duration_since(NaiveDate::default()).num_days();
                return i32::try_from(days).map(Cell::Date).or_else(|_| err(format!("{text:?} is out of range")));
            }
            if ty == ColType::TimestampMicros {
                if at.and_utc().timestamp_subsec_nanos() % 1000 != 0 {
                    return err(format!("{text:?} has digits below a microsecond"));
                }
                return Ok(Cell::Timestamp(at.and_utc().timestamp_micros()));
            }
            match at.and_utc().timestamp_nanos_opt() {
                Some(nanos) => Ok(Cell::Timestamp(nanos)),
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
    use std::path::Path;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn decimals_are_exact_and_never_rounded_to_fit() {
        let v: Value = serde_json::from_str("0.1835431430074643112595").unwrap();
        assert_eq!(decode(Some(&v), ColType::Decimal { scale: 22 }).unwrap(), Cell::Dec(1835431430074643112595));
        let e = decode(Some(&v), ColType::Decimal { scale: 10 }).unwrap_err();
        assert!(e.0.contains("22 fractional digits"), "{e}");
        let big: Value = serde_json::from_str("-1234567890123456.78").unwrap();
        assert_eq!(decode(Some(&big), ColType::Decimal { scale: 6 }).unwrap(), Cell::Dec(-1234567890123456780000));
        let s = Value::String("16".into());
        assert_eq!(decode(Some(&s), ColType::Decimal { scale: 28 }).unwrap(), Cell::Dec(16 * 10i128.pow(28)));
        let sci = Value::String("1.5E-3".into());
        assert_eq!(decode(Some(&sci), ColType::Decimal { scale: 4 }).unwrap(), Cell::Dec(15));
        let huge: Value = serde_json::from_str("79228162514264337593543950335").unwrap();
        let e = decode(Some(&huge), ColType::Decimal { scale: 10 }).unwrap_err();
        assert!(e.0.contains("does not fit Decimal128(38, 10)"), "{e}");
        assert_eq!(from_decimal128(16 * 10i128.pow(28), 28), Some(d("16")));
        assert_eq!(from_decimal128(-26470000, 6), Some(d("-26.47")));
        assert!(decode(Some(&Value::String("12,5".into())), ColType::Decimal { scale: 2 }).is_err());
    }

    #[test]
    fn absent_values_are_null_whatever_their_spelling() {
        for v in [None, Some(Value::Null), Some(Value::String(String::new())), Some(Value::String("  ".into()))] {
            assert_eq!(decode(v.as_ref(), ColType::Decimal { scale: 2 }).unwrap(), Cell::Null);
            assert_eq!(decode(v.as_ref(), ColType::Utf8).unwrap(), Cell::Null);
        }
        let sentinel = Value::String("0001-01-01T00:00:00".into());
        assert_eq!(decode(Some(&sentinel), ColType::Timestamp).unwrap(), Cell::Null);
    }

    #[test]
    fn dates_are_read_leniently_into_utc() {
        let ts = |s: &str| decode(Some(&Value::String(s.into())), ColType::Timestamp).unwrap();
        assert_eq!(ts("2019-02-04T09:22:40.1767993-08:00"), ts("2019-02-04T17:22:40.1767993Z"));
        assert_eq!(ts("2021-05-01T00:00:00"), ts("2021-05-01T00:00:00Z"));
        assert_eq!(ts("2021-05-20T18:48:30.6168285Z"), Cell::Timestamp(1_621_536_510_616_828_500));
        let day = |s: &str| decode(Some(&Value::String(s.into())), ColType::Date);
        assert_eq!(day("9999-12-14T00:00:00Z").unwrap(), Cell::Date(2_932_879));
        assert_eq!(day("1970-01-02").unwrap(), Cell::Date(1));
        assert!(day("2025-01-01T10:00:00Z").is_err());
        let raw_ts = |s: &str| decode(Some(&Value::String(s.into())), ColType::Timestamp);
        assert!(raw_ts("9999-12-14T00:00:00Z").is_err(), "beyond the nanosecond range is an error, not a wrap");
        assert!(raw_ts("2015-11-25T06: 41: 12Z").is_err());
        let micros = |s: &str| decode(Some(&Value::String(s.into())), ColType::TimestampMicros);
        assert_eq!(micros("9999-12-31T23:59:59Z").unwrap(), Cell::Timestamp(253_402_300_799_000_000));
        assert!(micros("2021-05-20T18:48:30.6168285Z").is_err(), "a 100 ns digit does not fit microseconds");
    }

    #[test]
    fn nested_paths_are_followed_case_insensitively() {
        let v: Value = serde_json::from_str(
            r#"{"CompanyProfile":{"companyName":"Contoso"},"entitledArtifacts":[{"resourceId":"r1"}]}"#,
        )
        .unwrap();
        let item = Item::new(&v).unwrap();
        assert_eq!(item.path("companyProfile.CompanyName"), Some(&Value::String("Contoso".into())));
        assert_eq!(item.path("entitledArtifacts.0.resourceId"), Some(&Value::String("r1".into())));
        assert_eq!(item.path("entitledArtifacts.1.resourceId"), None);
    }

    #[test]
    fn keys_normalise_prefix_case_and_space() {
        assert_eq!(normalize_key(" org:9060D13D-C3A1 "), "9060d13d-c3a1");
        assert_eq!(normalize_key("ORG:abc"), "abc");
        assert_eq!(normalize_key(&normalize_key("org:ABC")), normalize_key("org:ABC"));
    }

    #[test]
    fn every_hand_written_quirk_record_decodes_to_its_expected_value() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/quirks");
        let expected: Vec<Value> = serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
        for e in &expected {
            let file = e["file"].as_str().unwrap();
            let doc: Value = serde_json::from_slice(&std::fs::read(dir.join(file)).unwrap()).unwrap();
            let record = doc.pointer(e["path"].as_str().unwrap()).unwrap();
            let item = Item::new(record).unwrap();
            let field = e["field"].as_str().unwrap();
            let value = item.get(&[field]);
            let quirk = e["quirk"].as_str().unwrap();
            if let Some(want) = e.get("decimal") {
                let want = d(want.as_str().unwrap());
                // Each value at exactly its own number of fractional digits: nothing lost, nothing added.
                let scale = want.normalize().scale();
                let got = decode(value, ColType::Decimal { scale }).unwrap();
                assert_eq!(got, Cell::Dec(to_decimal128(want, scale).unwrap()), "{quirk}");
                if scale > 0 {
                    assert!(
                        decode(value, ColType::Decimal { scale: scale - 1 }).is_err(),
                        "{quirk}: one digit fewer must not fit"
                    );
                }
            } else if let Some(want) = e.get("utc") {
                // Instants are nanosecond timestamps; far-future calendar ends (9999-12-14) are dates.
                let ty =
                    if decode(Some(want), ColType::Timestamp).is_ok() { ColType::Timestamp } else { ColType::Date };
                assert_eq!(decode(value, ty).unwrap(), decode(Some(want), ty).unwrap(), "{quirk}");
            } else if e.get("absent").is_some() {
                let ty = if field.to_lowercase().contains("date") { ColType::Timestamp } else { ColType::Utf8 };
                assert_eq!(decode(value, ty).unwrap(), Cell::Null, "{file} {field}: {quirk}");
            } else if let Some(want) = e.get("key") {
                let Cell::Str(raw) = decode(value, ColType::Utf8).unwrap() else { panic!("{quirk}") };
                assert_eq!(normalize_key(&raw), want.as_str().unwrap(), "{quirk}");
            } else if let Some(want) = e.get("text") {
                assert_eq!(decode(value, ColType::Utf8).unwrap(), Cell::Str(want.as_str().unwrap().into()), "{quirk}");
            } else if let Some(want) = e.get("json") {
                let Cell::Str(text) = decode(value, ColType::Json).unwrap() else { panic!("{quirk}") };
                assert_eq!(&serde_json::from_str::<Value>(&text).unwrap(), want, "{quirk}");
            }
        }
    }
}
