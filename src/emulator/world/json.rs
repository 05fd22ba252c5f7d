//! A small, fast JSON object writer with the knobs the world needs to speak like Partner Center:
//! a number may go out as a string, an absent value as `""`, `null` or no key at all, and a date in
//! any of the API's styles. Everything is appended to a caller-owned `String`, so writing a million
//! records reuses one buffer.

use std::fmt::Write as _;

use chrono::{Duration, NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;

/// How an absent optional value is spelled (spec §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absent {
    /// `"key": ""`.
    Empty,
    /// `"key": null`.
    Null,
    /// No key.
    Missing,
}

/// How a date-time is spelled (spec §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateStyle {
    /// `2025-01-01T00:00:00Z`.
    Zulu,
    /// `2025-01-01T00:00:00`, no zone (means UTC).
    NoZone,
    /// `2025-01-01T10:12:33.1234567Z`, seven fractional digits.
    Fraction7,
    /// `2025-01-01T02:12:33.1234567-08:00`, the same instant at a negative offset.
    Offset,
}

/// Appends `s` as a JSON string literal.
pub fn push_str_literal(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Formats a date-time (taken as UTC) in a style.
pub fn format_datetime(at: NaiveDateTime, style: DateStyle) -> String {
    match style {
        DateStyle::Zulu => at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        DateStyle::NoZone => at.format("%Y-%m-%dT%H:%M:%S").to_string(),
        DateStyle::Fraction7 => {
            format!("{}.{:07}Z", at.format("%Y-%m-%dT%H:%M:%S"), at.and_utc().timestamp_subsec_nanos() / 100)
        }
        DateStyle::Offset => {
            let local = at - Duration::hours(8);
            format!("{}.{:07}-08:00", local.format("%Y-%m-%dT%H:%M:%S"), at.and_utc().timestamp_subsec_nanos() / 100)
        }
    }
}

/// Midnight UTC of a date.
pub fn midnight(date: NaiveDate) -> NaiveDateTime {
    date.and_hms_opt(0, 0, 0).unwrap_or(NaiveDateTime::MIN)
}

/// Writes one JSON object into a buffer. Call [`Obj::end`] to close it.
pub struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    /// Opens an object at the end of `out`.
    pub fn new(out: &'a mut String) -> Obj<'a> {
        out.push('{');
        Obj { out, first: true }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
    }

    /// A string value.
    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        push_str_literal(self.out, value);
        self
    }

    /// An optional string: the value, or the absent spelling.
    pub fn opt_str(&mut self, key: &str, value: Option<&str>, absent: Absent) -> &mut Self {
        match (value, absent) {
            (Some(v), _) => self.str(key, v),
            (None, Absent::Empty) => self.str(key, ""),
            (None, Absent::Null) => self.null(key),
            (None, Absent::Missing) => self,
        }
    }

    /// A decimal, as a JSON number or (when `quoted`) as a string holding the same digits.
    pub fn dec(&mut self, key: &str, value: Decimal, quoted: bool) -> &mut Self {
        self.key(key);
        if quoted {
            self.out.push('"');
        }
        let _ = write!(self.out, "{value}");
        if quoted {
            self.out.push('"');
        }
        self
    }

    /// An integer number.
    pub fn int(&mut self, key: &str, value: i64) -> &mut Self {
        self.key(key);
        let _ = write!(self.out, "{value}");
        self
    }

    /// A boolean.
    pub fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
        self
    }

    /// `null`.
    pub fn null(&mut self, key: &str) -> &mut Self {
        self.key(key);
        self.out.push_str("null");
        self
    }

    /// A value that is already JSON text.
    pub fn raw(&mut self, key: &str, json: &str) -> &mut Self {
        self.key(key);
        self.out.push_str(json);
        self
    }

    /// A date-time in a style.
    pub fn datetime(&mut self, key: &str, at: NaiveDateTime, style: DateStyle) -> &mut Self {
        let text = format_datetime(at, style);
        self.str(key, &text)
    }

    /// A date at midnight UTC in a style.
    pub fn date(&mut self, key: &str, date: NaiveDate, style: DateStyle) -> &mut Self {
        self.datetime(key, midnight(date), style)
    }

    /// An array of strings.
    pub fn str_array(&mut self, key: &str, values: &[&str]) -> &mut Self {
        self.key(key);
        self.out.push('[');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            push_str_literal(self.out, v);
        }
        self.out.push(']');
        self
    }

    /// A nested object written by `fill`.
    pub fn obj(&mut self, key: &str, fill: impl FnOnce(&mut Obj<'_>)) -> &mut Self {
        self.key(key);
        let mut inner = Obj::new(self.out);
        fill(&mut inner);
        inner.end();
        self
    }

    /// `{"objectType": …}` as `attributes`.
    pub fn attributes(&mut self, object_type: &str) -> &mut Self {
        self.obj("attributes", |a| {
            a.str("objectType", object_type);
        })
    }

    /// A `{"uri","method","headers":[]}` link object.
    pub fn link(&mut self, key: &str, uri: &str) -> &mut Self {
        self.obj(key, |l| {
            l.str("uri", uri).str("method", "GET").raw("headers", "[]");
        })
    }

    /// `"links": {"self": {…}}`.
    pub fn link_self(&mut self, uri: &str) -> &mut Self {
        self.obj("links", |l| {
            l.link("self", uri);
        })
    }

    /// An array of `len` objects, the `i`-th written by `fill(i, …)`.
    pub fn key_array(&mut self, key: &str, len: usize, mut fill: impl FnMut(usize, &mut Obj<'_>)) -> &mut Self {
        self.key(key);
        self.out.push('[');
        for i in 0..len {
            if i > 0 {
                self.out.push(',');
            }
            let mut item = Obj::new(self.out);
            fill(i, &mut item);
            item.end();
        }
        self.out.push(']');
        self
    }

    /// Closes the object.
    pub fn end(self) {
        self.out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn objects_are_valid_json_with_every_spelling() {
        let mut s = String::new();
        let mut o = Obj::new(&mut s);
        o.str("name", "Müller \"GmbH\"\n")
            .dec("price", Decimal::from_str("0.1835431430074643112595").unwrap(), false)
            .dec("qty", Decimal::from_str("16").unwrap(), true)
            .opt_str("a", None, Absent::Empty)
            .opt_str("b", None, Absent::Null)
            .opt_str("c", None, Absent::Missing)
            .str_array("q", &["AddOn", "Trial"])
            .attributes("Thing");
        o.end();
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["name"], "Müller \"GmbH\"\n");
        assert_eq!(v["price"].to_string(), "0.1835431430074643112595");
        assert_eq!(v["qty"], "16");
        assert_eq!(v["a"], "");
        assert!(v["b"].is_null());
        assert!(v.get("c").is_none());
        assert_eq!(v["attributes"]["objectType"], "Thing");
    }

    #[test]
    fn date_styles_spell_the_same_instant() {
        let at = NaiveDate::from_ymd_opt(2025, 3, 7).unwrap().and_hms_nano_opt(10, 12, 33, 123_456_700).unwrap();
        assert_eq!(format_datetime(at, DateStyle::Zulu), "2025-03-07T10:12:33Z");
        assert_eq!(format_datetime(at, DateStyle::NoZone), "2025-03-07T10:12:33");
        assert_eq!(format_datetime(at, DateStyle::Fraction7), "2025-03-07T10:12:33.1234567Z");
        assert_eq!(format_datetime(at, DateStyle::Offset), "2025-03-07T02:12:33.1234567-08:00");
        let parsed = chrono::DateTime::parse_from_rfc3339(&format_datetime(at, DateStyle::Offset)).unwrap();
        assert_eq!(parsed.naive_utc(), at);
    }
}
