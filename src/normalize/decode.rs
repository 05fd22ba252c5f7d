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
use serde_json::value::RawValue;
use std::borrow::Cow;

pub use crate::tabular::{Cell, ColType};

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
        Raw(text.trim())
    }

    /// The JSON text.
    pub fn text(self) -> &'a str {
        self.0
    }

    fn first(self) -> u8 {
        self.0.as_bytes().first().copied().unwrap_or(b'n')
    }

    /// The contents of a JSON string (borrowed unless it has escapes); `None` for other values.
    pub fn string(self) -> Option<Cow<'a, str>> {
        if self.first() != b'"' {
            return None;
        }
        let inner = self.0.get(1..self.0.len().saturating_sub(1))?;
        if !inner.contains('\\') {
            return Some(Cow::Borrowed(inner));
        }
        serde_json::from_str::<String>(self.0).ok().map(Cow::Owned)
    }

    /// The value as a JSON tree (numbers kept exact), for the rare column that needs one.
    pub fn value(self) -> Value {
        serde_json::from_str(self.0).unwrap_or(Value::Null)
    }

    fn is_number(self) -> bool {
        matches!(self.first(), b'-' | b'0'..=b'9')
    }
}

/// A member name, borrowed unless it has escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(Visit)
    }
}

/// The members of a JSON object in order, each value left as its raw text.
struct Members<'a>(Vec<(Key<'a>, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Members<'de>, M::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(64));
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    members.push((key, value));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// The JSON members of an item, looked up case-insensitively (`pcToBCExchangeRate`,
/// `PCToBCExchangeRate` and `pCToBCExchangeRate` are one field; of two spellings in one item, the
/// later in key order wins). Values stay raw text borrowed from the page: decoding an item
/// allocates only its index.
pub struct Item<'a> {
    members: HashMap<u64, Member<'a>, BuildHasherDefault<Prehashed>>,
}

/// A member and any other member whose lower-cased name hashes alike (almost never).
struct Member<'a> {
    name: Cow<'a, str>,
    value: &'a RawValue,
    others: Vec<(Cow<'a, str>, &'a RawValue)>,
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
    /// Indexes an item from its JSON text; an error unless it is a JSON object.
    pub fn new(text: &'a [u8]) -> Result<Item<'a>, String> {
        let Members(object) = serde_json::from_slice(text).map_err(|e| e.to_string())?;
        let mut members: HashMap<u64, Member<'a>, BuildHasherDefault<Prehashed>> =
            HashMap::with_capacity_and_hasher(object.len(), BuildHasherDefault::default());
        for (Key(name), value) in object {
            match members.entry(folded_hash(&name)) {
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(Member { name, value, others: Vec::new() });
                }
                std::collections::hash_map::Entry::Occupied(mut slot) => {
                    let member = slot.get_mut();
                    if member.name.eq_ignore_ascii_case(&name) {
                        (member.name, member.value) = (name, value);
                    } else if let Some(other) = member.others.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                        *other = (name, value);
                    } else {
                        member.others.push((name, value));
                    }
                }
            }
        }
        Ok(Item { members })
    }

    fn raw(&self, name: &str) -> Option<&'a RawValue> {
        let member = self.members.get(&folded_hash(name))?;
        if member.name.eq_ignore_ascii_case(name) {
            return Some(member.value);
        }
        member.others.iter().find(|(other, _)| other.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }

    /// Every member, as named in the item, with its raw value (in no particular order).
    pub fn members(&self) -> impl Iterator<Item = (&str, &'a RawValue)> + '_ {
        self.members.values().flat_map(|m| {
            std::iter::once((m.name.as_ref(), m.value)).chain(m.others.iter().map(|(n, v)| (n.as_ref(), *v)))
        })
    }

    /// The first of `names` (in any case) that is present.
    pub fn get(&self, names: &[&str]) -> Option<Raw<'a>> {
        names.iter().find_map(|n| self.raw(n)).map(|v| Raw::new(v.get()))
    }

    /// A value by dotted path (`companyProfile.companyName`, `entitledArtifacts.0.resourceId`),
    /// every segment matched case-insensitively.
    pub fn path(&self, path: &str) -> Option<Raw<'a>> {
        let mut segments = path.split('.');
        let mut value = self.raw(segments.next()?)?;
        for segment in segments {
            let text: &'a str = value.get();
            value = match text.trim_start().as_bytes().first() {
                Some(b'{') => Item::new(text.as_bytes()).ok()?.raw(segment)?,
                Some(b'[') => elements(text)?.get(segment.parse::<usize>().ok()?).copied()?,
                _ => return None,
            };
        }
        Some(Raw::new(value.get()))
    }
}

/// The elements of a JSON array, each as raw text; `None` unless it is an array.
pub fn elements(text: &str) -> Option<Vec<&RawValue>> {
    serde_json::from_str(text).ok()
}

/// Whether a JSON value means "no value".
fn is_absent(value: Option<Raw<'_>>) -> bool {
    match value {
        None => true,
        Some(raw) if raw.text() == "null" => true,
        Some(raw) => raw.string().is_some_and(|s| s.trim().is_empty()),
    }
}

/// The digits of a JSON number or numeric string, exactly as sent.
fn numeric_text(value: Raw<'_>) -> Option<Cow<'_, str>> {
    if value.is_number() {
        return Some(Cow::Borrowed(value.text()));
    }
    value.string().map(|s| match s {
        Cow::Borrowed(b) => Cow::Borrowed(b.trim()),
        Cow::Owned(o) => Cow::Owned(o.trim().to_owned()),
    })
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

/// Decodes one value for a column. `None` (missing), `null` and `""` give [`Cell::Null`].
pub fn decode(value: Option<Raw<'_>>, ty: ColType) -> Result<Cell, DecodeError> {
    if is_absent(value) {
        return Ok(Cell::Null);
    }
    let Some(value) = value else { return Ok(Cell::Null) };
    match ty {
        ColType::Utf8 | ColType::Json => Ok(Cell::Str(match value.string() {
            Some(s) => s.into_owned(),
            // Numbers and booleans as sent; objects and arrays in their compact form.
            None if value.is_number() || matches!(value.text(), "true" | "false") => value.text().to_owned(),
            None => value.value().to_string(),
        })),
        ColType::Decimal { scale } => {
            let Some(text) = numeric_text(value) else { return err(format!("{} is not a number", value.text())) };
            to_decimal128(parse_decimal(&text)?, scale).map(Cell::Dec)
        }
        ColType::Int64 => {
            let Some(text) = numeric_text(value) else {
                return err(format!("{} is not a whole number", value.text()));
            };
            let d = parse_decimal(&text)?;
            if !d.fract().is_zero() {
                return err(format!("{text} is not a whole number"));
            }
            let whole = d.trunc().mantissa() / 10i128.pow(d.trunc().scale());
            i64::try_from(whole).map(Cell::Int).or_else(|_| err(format!("{text} is out of range")))
        }
        ColType::Bool => match (value.text(), value.string()) {
            ("true", _) => Ok(Cell::Bool(true)),
            ("false", _) => Ok(Cell::Bool(false)),
            (_, Some(s)) if s.eq_ignore_ascii_case("true") => Ok(Cell::Bool(true)),
            (_, Some(s)) if s.eq_ignore_ascii_case("false") => Ok(Cell::Bool(false)),
            (other, _) => err(format!("{other} is not a boolean")),
        },
        ColType::Timestamp | ColType::TimestampMicros | ColType::Date => {
            let Some(text) = value.string() else { return err(format!("{} is not a date", value.text())) };
            let Some(at) = parse_datetime(&text)? else { return Ok(Cell::Null) };
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

    /// A JSON string's raw text.
    fn quoted(s: &str) -> String {
        serde_json::to_string(s).unwrap()
    }

    #[test]
    fn decimals_are_exact_and_never_rounded_to_fit() {
        let v = Raw::new("0.1835431430074643112595");
        assert_eq!(decode(Some(v), ColType::Decimal { scale: 22 }).unwrap(), Cell::Dec(1835431430074643112595));
        let e = decode(Some(v), ColType::Decimal { scale: 10 }).unwrap_err();
        assert!(e.0.contains("22 fractional digits"), "{e}");
        let big = Raw::new("-1234567890123456.78");
        assert_eq!(decode(Some(big), ColType::Decimal { scale: 6 }).unwrap(), Cell::Dec(-1234567890123456780000));
        assert_eq!(
            decode(Some(Raw::new("\"16\"")), ColType::Decimal { scale: 28 }).unwrap(),
            Cell::Dec(16 * 10i128.pow(28))
        );
        assert_eq!(decode(Some(Raw::new("\" 1.5E-3 \"")), ColType::Decimal { scale: 4 }).unwrap(), Cell::Dec(15));
        let e = decode(Some(Raw::new("79228162514264337593543950335")), ColType::Decimal { scale: 10 }).unwrap_err();
        assert!(e.0.contains("does not fit Decimal128(38, 10)"), "{e}");
        assert_eq!(from_decimal128(16 * 10i128.pow(28), 28), Some(d("16")));
        assert_eq!(from_decimal128(-26470000, 6), Some(d("-26.47")));
        assert!(decode(Some(Raw::new("\"12,5\"")), ColType::Decimal { scale: 2 }).is_err());
        assert!(decode(Some(Raw::new("true")), ColType::Decimal { scale: 2 }).unwrap_err().0.contains("not a number"));
    }

    #[test]
    fn text_keeps_numbers_as_sent_and_unescapes_strings() {
        assert_eq!(decode(Some(Raw::new("1.50")), ColType::Utf8).unwrap(), Cell::Str("1.50".into()));
        assert_eq!(decode(Some(Raw::new("false")), ColType::Utf8).unwrap(), Cell::Str("false".into()));
        let escaped = Raw::new(r#""{\"env\":\"dev\"} \u00e9""#);
        assert_eq!(decode(Some(escaped), ColType::Utf8).unwrap(), Cell::Str("{\"env\":\"dev\"} é".into()));
        assert_eq!(
            decode(Some(Raw::new(r#"[ "AddOn", "Trial" ]"#)), ColType::Json).unwrap(),
            Cell::Str(r#"["AddOn","Trial"]"#.into())
        );
        assert_eq!(decode(Some(Raw::new(r#""TRUE""#)), ColType::Bool).unwrap(), Cell::Bool(true));
    }

    #[test]
    fn absent_values_are_null_whatever_their_spelling() {
        for v in [None, Some(Raw::new("null")), Some(Raw::new("\"\"")), Some(Raw::new("\"  \""))] {
            assert_eq!(decode(v, ColType::Decimal { scale: 2 }).unwrap(), Cell::Null);
            assert_eq!(decode(v, ColType::Utf8).unwrap(), Cell::Null);
        }
        let sentinel = quoted("0001-01-01T00:00:00");
        assert_eq!(decode(Some(Raw::new(&sentinel)), ColType::Timestamp).unwrap(), Cell::Null);
    }

    #[test]
    fn dates_are_read_leniently_into_utc() {
        let ts = |s: &str| decode(Some(Raw::new(&quoted(s))), ColType::Timestamp).unwrap();
        assert_eq!(ts("2019-02-04T09:22:40.1767993-08:00"), ts("2019-02-04T17:22:40.1767993Z"));
        assert_eq!(ts("2021-05-01T00:00:00"), ts("2021-05-01T00:00:00Z"));
        assert_eq!(ts("2021-05-20T18:48:30.6168285Z"), Cell::Timestamp(1_621_536_510_616_828_500));
        let day = |s: &str| decode(Some(Raw::new(&quoted(s))), ColType::Date);
        assert_eq!(day("9999-12-14T00:00:00Z").unwrap(), Cell::Date(2_932_879));
        assert_eq!(day("1970-01-02").unwrap(), Cell::Date(1));
        assert!(day("2025-01-01T10:00:00Z").is_err());
        let raw_ts = |s: &str| decode(Some(Raw::new(&quoted(s))), ColType::Timestamp);
        assert!(raw_ts("9999-12-14T00:00:00Z").is_err(), "beyond the nanosecond range is an error, not a wrap");
        assert_eq!(raw_ts("2015-11-25T06: 41: 12Z").unwrap(), ts("2015-11-25T06:41:12Z"), "Microsoft's own example");
        assert!(raw_ts("2015-11-25T06:41:1x").is_err());
        let micros = |s: &str| decode(Some(Raw::new(&quoted(s))), ColType::TimestampMicros);
        assert_eq!(micros("9999-12-31T23:59:59Z").unwrap(), Cell::Timestamp(253_402_300_799_000_000));
        assert!(micros("2021-05-20T18:48:30.6168285Z").is_err(), "a 100 ns digit does not fit microseconds");
    }

    #[test]
    fn nested_paths_are_followed_case_insensitively() {
        let text =
            r#"{"CompanyProfile":{"companyName":"Contoso"},"entitledArtifacts":[ {"resourceId":"r1"} ],"a":1,"A":2}"#;
        let item = Item::new(text.as_bytes()).unwrap();
        assert_eq!(item.path("companyProfile.CompanyName"), Some(Raw::new("\"Contoso\"")));
        assert_eq!(item.path("entitledArtifacts.0.resourceId"), Some(Raw::new("\"r1\"")));
        assert_eq!(item.path("entitledArtifacts.1.resourceId"), None);
        assert_eq!(item.get(&["a"]), Some(Raw::new("2")), "of two spellings, the later wins");
        assert!(Item::new(b"[1]").is_err());
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
            let record = doc.pointer(e["path"].as_str().unwrap()).unwrap().to_string();
            let item = Item::new(record.as_bytes()).unwrap();
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
                let want = want.to_string();
                let want = Some(Raw::new(&want));
                let ty = if decode(want, ColType::Timestamp).is_ok() { ColType::Timestamp } else { ColType::Date };
                assert_eq!(decode(value, ty).unwrap(), decode(want, ty).unwrap(), "{quirk}");
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
