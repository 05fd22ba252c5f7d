//! A page's items → typed rows of a dataset, following its [`DatasetSchema`]. Errors name the
//! dataset, scope, page, record and field, so a bad value is found in seconds.

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::value::RawValue;

use super::decode::{Cell, ColType, Item, decode, elements, from_decimal128, to_decimal128};
use crate::model::schema::{DatasetSchema, Implied, Source};

/// Where in the input a value could not be decoded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("dataset {dataset}, scope {scope}, page {page}, record {record}, field {field} (column {column}): {reason}")]
pub struct RowError {
    /// Dataset.
    pub dataset: String,
    /// Scope of the sequence (invoice, `CCY/period`, customer).
    pub scope: String,
    /// Page number within the sequence.
    pub page: u32,
    /// Zero-based record index within the page.
    pub record: usize,
    /// The API field.
    pub field: String,
    /// The output column.
    pub column: String,
    /// What is wrong.
    pub reason: String,
}

impl RowError {
    fn at(
        schema: &DatasetSchema,
        origin: Origin<'_>,
        record: usize,
        field: &str,
        column: &str,
        reason: String,
    ) -> Box<RowError> {
        Box::new(RowError {
            dataset: schema.name.to_owned(),
            scope: origin.scope.to_owned(),
            page: origin.page,
            record,
            field: field.to_owned(),
            column: column.to_owned(),
            reason,
        })
    }
}

/// Where a page came from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// Scope of the sequence.
    pub scope: &'a str,
    /// Page number.
    pub page: u32,
}

fn row_of(
    schema: &DatasetSchema,
    item: &Item<'_>,
    parent: Option<&Item<'_>>,
    origin: Origin<'_>,
    record: usize,
) -> Result<Vec<Cell>, Box<RowError>> {
    let mut row = Vec::with_capacity(schema.columns.len());
    for column in &schema.columns {
        let (value, field) = match &column.source {
            Source::Field(paths) => (paths.iter().find_map(|p| item.path(p)), paths[0]),
            Source::Parent(path) => (parent.and_then(|p| p.path(path)), *path),
            Source::Percent { field, percent } => {
                let cell = percent_cell(item, field, percent, column.ty)
                    .map_err(|(f, reason)| RowError::at(schema, origin, record, f, &column.name, reason))?;
                row.push(cell);
                continue;
            }
            Source::Implied { field, otherwise } => {
                let value = item.path(field);
                let cell = decode(value, column.ty)
                    .map_err(|e| RowError::at(schema, origin, record, field, &column.name, e.0))?;
                row.push(match (cell, otherwise) {
                    (Cell::Null, Implied::Text(text)) => Cell::Str((*text).to_owned()),
                    (Cell::Null, Implied::Positive(other)) => match schema.column(other).and_then(|i| row.get(i)) {
                        Some(Cell::Dec(d)) => Cell::Bool(*d > 0),
                        _ => Cell::Null,
                    },
                    (cell, _) => cell,
                });
                continue;
            }
            Source::Scope => {
                row.push(Cell::Str(origin.scope.to_owned()));
                continue;
            }
            Source::RowKey | Source::Fx(_) | Source::Match(_) | Source::Unread => {
                row.push(Cell::Null);
                continue;
            }
            Source::BillingPrice { price, rate, currency } => {
                let cell = billing_price(schema, &row, price, rate, currency, column.ty)
                    .map_err(|reason| RowError::at(schema, origin, record, price, &column.name, reason))?;
                row.push(cell);
                continue;
            }
        };
        let fail = |reason: String| RowError::at(schema, origin, record, field, &column.name, reason);
        let cell = decode(value, column.ty).map_err(|e| fail(e.0))?;
        if cell == Cell::Null && !column.nullable {
            return Err(fail("a value is required".into()));
        }
        row.push(cell);
    }
    Ok(row)
}

/// A fraction from its field, or from a percentage field divided by 100, exactly. The v2 export
/// writes its percentages as whole numbers (15 for 15 %); a percentage with a fraction (0.15) is
/// most likely a fraction under a percentage's name, and an error rather than a silent 0.0015.
/// Either way the result must be a rate between 0 and 1.
fn percent_cell(
    item: &Item<'_>,
    field: &'static str,
    percent: &'static str,
    ty: ColType,
) -> Result<Cell, (&'static str, String)> {
    let ColType::Decimal { scale } = ty else {
        return decode(item.path(field), ty).map_err(|e| (field, e.0));
    };
    let one = 10i128.pow(scale);
    let in_range = |cell: Cell, name: &'static str, shown: &dyn std::fmt::Display| match cell {
        Cell::Dec(v) if !(0..=one).contains(&v) => {
            Err((name, format!("{shown} is not a rate between 0 and 1 (0 % to 100 %)")))
        }
        cell => Ok(cell),
    };
    let cell = decode(item.path(field), ty).map_err(|e| (field, e.0))?;
    if cell != Cell::Null {
        let raw = item.path(field).map(|r| r.text().to_owned()).unwrap_or_default();
        return in_range(cell, field, &raw);
    }
    let Some(raw) = item.path(percent) else { return Ok(Cell::Null) };
    let whole = decode(Some(raw), ColType::Decimal { scale: 0 });
    match (whole, scale >= 2) {
        (Ok(Cell::Null), _) => Ok(Cell::Null),
        (Ok(_), true) => {
            let cell = decode(Some(raw), ColType::Decimal { scale: scale - 2 }).map_err(|e| (percent, e.0))?;
            in_range(cell, percent, &raw.text())
        }
        _ => Err((
            percent,
            format!(
                "{} is not a whole percentage: the export writes percentages as whole numbers (15 for 15 %)",
                raw.text()
            ),
        )),
    }
}

/// `price × rate` truncated to the billing currency's minor units, from cells already decoded.
fn billing_price(
    schema: &DatasetSchema,
    row: &[Cell],
    price: &str,
    rate: &str,
    currency: &str,
    ty: ColType,
) -> Result<Cell, String> {
    let get = |name: &str| schema.column(name).and_then(|i| row.get(i).map(|c| (c, schema.columns[i].ty)));
    let (
        Some((Cell::Dec(p), ColType::Decimal { scale: ps })),
        Some((Cell::Dec(r), ColType::Decimal { scale: rs })),
        Some((Cell::Str(c), _)),
    ) = (get(price), get(rate), get(currency))
    else {
        return Ok(Cell::Null);
    };
    let Ok(currency) = c.parse::<crate::model::money::Currency>() else { return Ok(Cell::Null) };
    let (Some(p), Some(r)) = (from_decimal128(*p, ps), from_decimal128(*r, rs)) else { return Ok(Cell::Null) };
    let product = p.checked_mul(r).ok_or_else(|| format!("{p} × {r} overflows"))?;
    let ColType::Decimal { scale } = ty else { return Ok(Cell::Null) };
    to_decimal128(currency.truncate_minor(product), scale).map(Cell::Dec).map_err(|e| e.0)
}

/// The top-level members the datasets built from one extracted dataset read: what the API sends
/// beyond them is schema drift, reported rather than dropped in silence.
#[derive(Debug, Clone, Default)]
pub struct KnownFields {
    /// Lower-cased member names.
    names: HashSet<String>,
    /// Keep the unread members in the `unknown_fields` column.
    pub keep: bool,
}

impl KnownFields {
    /// What the datasets built from `dataset`'s pages read. `attributes` (`objectType`) and
    /// `links` are the envelope of every resource, not data.
    pub fn of(dataset: &str, keep: bool) -> KnownFields {
        let mut names: HashSet<String> = ["attributes", "links"].into_iter().map(str::to_owned).collect();
        for schema in crate::model::schema::registry().iter().filter(|s| s.source_dataset() == dataset) {
            if let Some(array) = schema.explode {
                names.insert(array.to_ascii_lowercase());
                continue;
            }
            for column in &schema.columns {
                let paths: Vec<&str> = match &column.source {
                    Source::Field(paths) => paths.clone(),
                    Source::Percent { field, percent } => vec![field, percent],
                    Source::Implied { field, .. } => vec![field],
                    _ => Vec::new(),
                };
                for path in paths {
                    if let Some(first) = path.split('.').next() {
                        names.insert(first.to_ascii_lowercase());
                    }
                }
            }
        }
        KnownFields { names, keep }
    }

    fn knows(&self, name: &str) -> bool {
        self.names.contains(&name.to_ascii_lowercase())
    }
}

/// What to look for in an item besides its columns.
#[derive(Debug, Clone, Copy)]
pub struct Checks<'a> {
    /// The members its datasets read.
    pub known: &'a KnownFields,
    /// Attributes its source promises to carry (a v2 export's attribute set), each to be present.
    pub promised: &'a [&'static str],
}

/// One item's rows, the names of its members no column reads (sorted), and the promised
/// attributes it lacks, when asked.
#[derive(Debug, Default)]
pub struct Decoded {
    /// One row, or one per element of an exploded array.
    pub rows: Vec<Vec<Cell>>,
    /// Members no column reads.
    pub unknown: Vec<String>,
    /// Promised attributes the item lacks.
    pub missing: Vec<&'static str>,
}

/// Decodes one item (JSON text) into its rows (one, or one per element of an exploded array);
/// with `checks`, also finds the members no column reads (kept in `unknown_fields` when they say
/// so) and the promised attributes the item lacks.
pub fn decode_item(
    schema: &DatasetSchema,
    text: &[u8],
    origin: Origin<'_>,
    record: usize,
    checks: Option<Checks<'_>>,
) -> Result<Decoded, Box<RowError>> {
    let known = checks.map(|c| c.known);
    let fail = |reason: String| RowError::at(schema, origin, record, "-", "-", reason);
    let item = Item::new(text).map_err(|e| {
        let object = text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        fail(if object { format!("not JSON: {e}") } else { "not a JSON object".into() })
    })?;
    let mut unread: Vec<(&str, &RawValue)> = match known {
        Some(known) => item.members().filter(|(name, _)| !known.knows(name)).collect(),
        None => Vec::new(),
    };
    unread.sort_by(|a, b| a.0.cmp(b.0));
    let unknown: Vec<String> = unread.iter().map(|(name, _)| (*name).to_owned()).collect();
    let missing: Vec<&'static str> =
        checks.map_or(&[][..], |c| c.promised).iter().copied().filter(|a| item.get(&[a]).is_none()).collect();
    let rows = rows_of(schema, &item, origin, record)?;
    let unread_at = schema.columns.iter().position(|c| c.source == Source::Unread);
    let Some(at) = known.filter(|k| k.keep && !unread.is_empty()).and(unread_at) else {
        return Ok(Decoded { rows, unknown, missing });
    };
    let mut json = String::from("{");
    for (i, (name, value)) in unread.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&serde_json::to_string(name).unwrap_or_default());
        json.push(':');
        json.push_str(value.get().trim());
    }
    json.push('}');
    let mut rows = rows;
    for row in &mut rows {
        row[at] = Cell::Str(json.clone());
    }
    Ok(Decoded { rows, unknown, missing })
}

fn rows_of(
    schema: &DatasetSchema,
    item: &Item<'_>,
    origin: Origin<'_>,
    record: usize,
) -> Result<Vec<Vec<Cell>>, Box<RowError>> {
    let fail = |reason: String| RowError::at(schema, origin, record, "-", "-", reason);
    match schema.explode {
        None => Ok(vec![row_of(schema, item, None, origin, record)?]),
        Some(array) => {
            let elements = item.path(array).and_then(|raw| elements(raw.text())).unwrap_or_default();
            elements
                .iter()
                .map(|element| {
                    let child =
                        Item::new(element.get().as_bytes()).map_err(|_| fail(format!("{array} holds a non-object")))?;
                    row_of(schema, &child, Some(item), origin, record)
                })
                .collect()
        }
    }
}

/// Decodes the items of one page (JSON texts) into rows, appended to `out`; stops at the first
/// record that cannot be decoded.
pub fn decode_page<'a>(
    schema: &DatasetSchema,
    items: impl Iterator<Item = &'a [u8]>,
    origin: Origin<'_>,
    out: &mut Vec<Vec<Cell>>,
) -> Result<(), Box<RowError>> {
    for (record, text) in items.enumerate() {
        out.extend(decode_item(schema, text, origin, record, None)?.rows);
    }
    Ok(())
}

/// The canonical text of a cell (CSV cells and row-key input); text cells are borrowed.
pub fn cell_text(cell: &Cell, ty: ColType) -> Cow<'_, str> {
    match cell {
        Cell::Str(s) => Cow::Borrowed(s),
        Cell::Null => Cow::Borrowed(""),
        _ => {
            let mut text = String::with_capacity(40);
            push_cell_text(&mut text, cell, ty);
            Cow::Owned(text)
        }
    }
}

/// Appends [`cell_text`] to `out`, without allocating: dates as `YYYY-MM-DD`, timestamps as
/// RFC 3339 in UTC with `Z` and as many fractional digits (0, 3, 6 or 9) as they need.
pub fn push_cell_text(out: &mut String, cell: &Cell, ty: ColType) {
    use std::fmt::Write;
    match (cell, ty) {
        (Cell::Null, _) => {}
        (Cell::Str(s), _) => out.push_str(s),
        (Cell::Dec(v), ColType::Decimal { scale }) => push_fixed_point(out, *v, scale),
        (Cell::Dec(v), _) => {
            let _ = write!(out, "{v}");
        }
        (Cell::Int(v), _) => {
            let _ = write!(out, "{v}");
        }
        (Cell::Bool(b), _) => out.push_str(if *b { "true" } else { "false" }),
        (Cell::Date(days), _) => {
            if let Some(date) =
                chrono::NaiveDate::default().checked_add_signed(chrono::Duration::days(i64::from(*days)))
            {
                push_date(out, date);
            }
        }
        (Cell::Timestamp(v), ColType::TimestampMicros) => {
            if let Some(t) = chrono::DateTime::from_timestamp_micros(*v) {
                push_timestamp(out, t.naive_utc());
            }
        }
        (Cell::Timestamp(v), _) => push_timestamp(out, chrono::DateTime::from_timestamp_nanos(*v).naive_utc()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::schema::find;

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

    #[test]
    fn quirky_items_decode_into_rows_and_bad_values_are_located() {
        let schema = find("billed_recon_line_items").unwrap();
        let page: serde_json::Value = serde_json::from_slice(
            &std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/samples/quirks/onetime-line-items.json")).unwrap(),
        )
        .unwrap();
        let texts: Vec<String> = page["items"].as_array().unwrap().iter().map(|v| v.to_string()).collect();
        let mut rows = Vec::new();
        decode_page(&schema, texts.iter().map(|t| t.as_bytes()), Origin { scope: "G000773581", page: 1 }, &mut rows)
            .unwrap();
        assert_eq!(rows.len(), 4);
        let rate = schema.column("pc_to_bc_exchange_rate").unwrap();
        let scale = 18;
        assert_eq!(cell_text(&rows[1][rate], ColType::Decimal { scale }), "0.891200000000000000");
        assert_eq!(cell_text(&rows[2][rate], ColType::Decimal { scale }), "0.891200000000000000");

        let bad = r#"{"subtotal":"12.345678901234","currency":"EUR"}"#;
        let err =
            decode_page(&schema, [bad.as_bytes()].into_iter(), Origin { scope: "G1", page: 3 }, &mut rows).unwrap_err();
        let text = err.to_string();
        for part in [
            "dataset billed_recon_line_items",
            "scope G1",
            "page 3",
            "record 0",
            "field subtotal",
            "column subtotal",
            "12.345678901234",
        ] {
            assert!(text.contains(part), "{part:?} missing from {text}");
        }
    }

    #[test]
    fn pricing_prices_are_converted_with_the_lines_own_rate_and_truncated() {
        let schema = find("billed_recon_line_items").unwrap();
        let item = r#"{"unitPrice":"16","effectiveUnitPrice":0.1835431430074643112595,"pcToBCExchangeRate":0.8912,"currency":"EUR"}"#;
        let mut rows = Vec::new();
        decode_page(&schema, [item.as_bytes()].into_iter(), Origin { scope: "G1", page: 1 }, &mut rows).unwrap();
        let text = |c: &str| cell_text(&rows[0][schema.column(c).unwrap()], ColType::Decimal { scale: 10 });
        assert_eq!(text("unit_price_billing"), "14.2500000000", "16 × 0.8912 = 14.2592 → 14.25");
        assert_eq!(text("effective_unit_price_billing"), "0.1600000000", "0.16357… → 0.16");
    }

    #[test]
    fn v2_percentages_become_fractions_only_when_whole_and_rates_stay_between_0_and_1() {
        let schema = find("billed_consumption_line_items").unwrap();
        let pec = schema.column("rate_of_partner_earned_credit").unwrap();
        let credit = schema.column("rate_of_credit").unwrap();
        let decode_one = |item: &str| {
            let mut rows = Vec::new();
            decode_page(&schema, [item.as_bytes()].into_iter(), Origin { scope: "G1", page: 2 }, &mut rows)
                .map(|()| rows.remove(0))
        };
        let row = decode_one(r#"{"PartnerEarnedCreditPercentage":15,"CreditPercentage":"100"}"#).unwrap();
        assert_eq!(cell_text(&row[pec], ColType::Decimal { scale: 10 }), "0.1500000000");
        assert_eq!(cell_text(&row[credit], ColType::Decimal { scale: 10 }), "1.0000000000");
        let row = decode_one(r#"{"rateOfPartnerEarnedCredit":0.15,"PartnerEarnedCreditPercentage":15}"#).unwrap();
        assert_eq!(cell_text(&row[pec], ColType::Decimal { scale: 10 }), "0.1500000000", "the fraction wins");
        for (item, field, says) in [
            (r#"{"PartnerEarnedCreditPercentage":0.15}"#, "partnerEarnedCreditPercentage", "not a whole percentage"),
            (r#"{"CreditPercentage":150}"#, "creditPercentage", "not a rate between 0 and 1"),
            (r#"{"rateOfCredit":15}"#, "rateOfCredit", "not a rate between 0 and 1"),
            (r#"{"rateOfPartnerEarnedCredit":-0.1}"#, "rateOfPartnerEarnedCredit", "not a rate between 0 and 1"),
        ] {
            let error = decode_one(item).unwrap_err();
            assert_eq!(error.field, field, "{item}");
            assert!(error.reason.contains(says), "{item}: {}", error.reason);
            assert_eq!((error.page, error.record), (2, 0));
        }
    }

    #[test]
    fn unread_members_are_found_and_kept_only_when_asked() {
        let schema = find("subscriptions").unwrap();
        let item = br#"{"id":"s1","offerId":"o","newField":{"a":1},"attributes":{"objectType":"Subscription"},"AnotherOne":2}"#;
        let origin = Origin { scope: "c1", page: 1 };
        let known = KnownFields::of("subscriptions", false);
        let checks = |known| Some(Checks { known, promised: &["OfferId", "Missing"] });
        let decoded = decode_item(&schema, item, origin, 0, checks(&known)).unwrap();
        assert_eq!(decoded.missing, ["Missing"], "a promised attribute is looked for in any case");
        assert_eq!(decoded.unknown, ["AnotherOne", "newField"]);
        let at = schema.column("unknown_fields").unwrap();
        assert_eq!(decoded.rows[0][at], Cell::Null);
        let keep = KnownFields::of("subscriptions", true);
        let kept = decode_item(&schema, item, origin, 0, checks(&keep)).unwrap();
        assert_eq!(kept.rows[0][at], Cell::Str(r#"{"AnotherOne":2,"newField":{"a":1}}"#.into()));
        assert!(decode_item(&schema, item, origin, 0, None).unwrap().unknown.is_empty());
    }

    #[test]
    fn order_lines_are_exploded_with_their_order_id() {
        let schema = find("order_line_items").unwrap();
        let order =
            r#"{"id":"o1","lineItems":[{"lineItemNumber":0,"offerId":"A"},{"lineItemNumber":1,"offerId":"B"}]}"#;
        let mut rows = Vec::new();
        decode_page(&schema, [order.as_bytes()].into_iter(), Origin { scope: "c1", page: 1 }, &mut rows).unwrap();
        assert_eq!(rows.len(), 2);
        let order_id = schema.column("order_id").unwrap();
        assert_eq!(rows[1][order_id], Cell::Str("o1".into()));
        assert_eq!(rows[1][schema.column("customer_id").unwrap()], Cell::Str("c1".into()));
        assert_eq!(rows[1][schema.column("line_item_number").unwrap()], Cell::Int(1));
    }
}
