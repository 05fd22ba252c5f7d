//! The canonical text of a cell: what CSV files hold and what `row_key` digests. Decimals as
//! fixed-point at their column's scale, dates `YYYY-MM-DD`, instants RFC 3339 in UTC with `Z` and
//! as many fractional digits (0, 3, 6 or 9) as they need.
//!
//! In: a typed cell or value. Out: its text, without allocating where it can. It parses nothing.

use std::borrow::Cow;

use super::column::{Cell, ColType, Value};

/// The canonical text of a cell (CSV cells and row-key input); text cells are borrowed.
pub fn cell_text(cell: &Cell, ty: ColType) -> Cow<'_, str> {
    match cell {
        Cell::Str(s) => Cow::Borrowed(s),
        _ => value_text(&cell.value(), ty).into_owned().into(),
    }
}

/// The canonical text of a value; text values are borrowed.
pub fn value_text<'v>(value: &'v Value<'_>, ty: ColType) -> Cow<'v, str> {
    match value {
        Value::Str(s) => Cow::Borrowed(s),
        Value::Null => Cow::Borrowed(""),
        _ => {
            let mut text = String::with_capacity(40);
            push_value_text(&mut text, value, ty);
            Cow::Owned(text)
        }
    }
}

/// Appends [`value_text`] to `out`, without allocating: dates as `YYYY-MM-DD`, timestamps as
/// RFC 3339 in UTC with `Z` and as many fractional digits (0, 3, 6 or 9) as they need.
pub fn push_value_text(out: &mut String, value: &Value<'_>, ty: ColType) {
    use std::fmt::Write;
    match (value, ty) {
        (Value::Null, _) => {}
        (Value::Str(s), _) => out.push_str(s),
        (Value::Dec(v), ColType::Decimal { scale, .. }) => push_fixed_point(out, *v, scale),
        (Value::Dec(v), _) => {
            let _ = write!(out, "{v}");
        }
        (Value::Int(v), _) => {
            let _ = write!(out, "{v}");
        }
        (Value::Bool(b), _) => out.push_str(if *b { "true" } else { "false" }),
        (Value::Date(days), _) => {
            if let Some(date) =
                chrono::NaiveDate::default().checked_add_signed(chrono::Duration::days(i64::from(*days)))
            {
                push_date(out, date);
            }
        }
        (Value::Timestamp(v), ColType::TimestampMicros) => {
            if let Some(t) = chrono::DateTime::from_timestamp_micros(*v) {
                push_timestamp(out, t.naive_utc());
            }
        }
        (Value::Timestamp(v), _) => push_timestamp(out, chrono::DateTime::from_timestamp_nanos(*v).naive_utc()),
    }
}

fn push_date(out: &mut String, date: chrono::NaiveDate) {
    use chrono::Datelike;
    use std::fmt::Write;
    let year = date.year();
    if (0..=9999).contains(&year) {
        let _ = write!(out, "{year:04}-{:02}-{:02}", date.month(), date.day());
    } else {
        let _ = write!(out, "{}", date.format("%Y-%m-%d"));
    }
}

fn push_timestamp(out: &mut String, t: chrono::NaiveDateTime) {
    use chrono::Timelike;
    use std::fmt::Write;
    push_date(out, t.date());
    let _ = write!(out, "T{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second());
    let nanos = t.nanosecond();
    let _ = match nanos {
        0 => Ok(()),
        n if n % 1_000_000 == 0 => write!(out, ".{:03}", n / 1_000_000),
        n if n % 1_000 == 0 => write!(out, ".{:06}", n / 1_000),
        n => write!(out, ".{n:09}"),
    };
    out.push('Z');
}

/// An unscaled decimal at `scale` as fixed-point text (`-2647`, 2 → `-26.47`).
pub fn fixed_point(unscaled: i128, scale: u32) -> String {
    let mut text = String::with_capacity(48);
    push_fixed_point(&mut text, unscaled, scale);
    text
}

/// Appends [`fixed_point`] text to `out`, without allocating.
pub fn push_fixed_point(out: &mut String, unscaled: i128, scale: u32) {
    use std::fmt::Write;
    // 2^127 has 39 digits.
    let mut digits = Digits { buf: [0; 40], len: 0 };
    let _ = write!(digits, "{}", unscaled.unsigned_abs());
    let digits = digits.as_str();
    if unscaled < 0 {
        out.push('-');
    }
    let scale = scale as usize;
    if scale == 0 {
        out.push_str(digits);
    } else if digits.len() <= scale {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', scale - digits.len()));
        out.push_str(digits);
    } else {
        let (whole, fraction) = digits.split_at(digits.len() - scale);
        out.push_str(whole);
        out.push('.');
        out.push_str(fraction);
    }
}

/// The decimal digits of a number, on the stack.
struct Digits {
    buf: [u8; 40],
    len: usize,
}

impl Digits {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl std::fmt::Write for Digits {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The 1-based line of `text` at which a CSV record read from it starts (its position's byte
/// offset): what an error about the record names, counting blank lines and line ends inside
/// quotes, as an editor does.
pub fn csv_line(text: &str, position: Option<&csv::Position>) -> usize {
    let bytes = text.as_bytes();
    let mut at = position.map_or(0, |p| usize::try_from(p.byte()).unwrap_or(usize::MAX)).min(bytes.len());
    // A record's position is where reading it began: before the line ends (blank lines, the
    // `\n` of a CRLF) that precede its first field.
    while at < bytes.len() && matches!(bytes[at], b'\r' | b'\n') {
        at += 1;
    }
    1 + memchr::memchr_iter(b'\n', &bytes[..at]).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_text_is_exact() {
        assert_eq!(fixed_point(-2647, 2), "-26.47");
        assert_eq!(fixed_point(5, 3), "0.005");
        assert_eq!(fixed_point(-5, 3), "-0.005");
        assert_eq!(fixed_point(0, 2), "0.00");
        assert_eq!(fixed_point(12, 0), "12");
        assert_eq!(fixed_point(i128::from(u64::MAX), 10), "1844674407.3709551615");
    }

    #[test]
    fn cell_text_matches_rfc_3339_with_automatic_fractions() {
        use chrono::SecondsFormat::AutoSi;
        for nanos in [
            0_i64,
            1_700_000_000_000_000_000,
            1_700_000_000_123_000_000,
            1_700_000_000_123_456_000,
            1_700_000_000_123_456_789,
            -86_400_000_000_000,
        ] {
            let expected = chrono::DateTime::from_timestamp_nanos(nanos).to_rfc3339_opts(AutoSi, true);
            assert_eq!(cell_text(&Cell::Timestamp(nanos), ColType::Timestamp), expected);
        }
        let micros = 1_700_000_000_000_001;
        let expected = chrono::DateTime::from_timestamp_micros(micros).unwrap().to_rfc3339_opts(AutoSi, true);
        assert_eq!(cell_text(&Cell::Timestamp(micros), ColType::TimestampMicros), expected);
        assert_eq!(cell_text(&Cell::Date(20089), ColType::Date), "2025-01-01");
        assert_eq!(cell_text(&Cell::Date(-1), ColType::Date), "1969-12-31");
        assert_eq!(cell_text(&Cell::Bool(true), ColType::Bool), "true");
        assert_eq!(cell_text(&Cell::Int(-7), ColType::Int64), "-7");
        assert_eq!(cell_text(&Cell::Null, ColType::Int64), "");
    }
}
