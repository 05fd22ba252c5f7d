//! A page's items → a record batch of a dataset's source columns, following its
//! [`DatasetSchema`]: each item is indexed once ([`Item`]), each column's value decoded straight
//! into the row being built and appended to the column builders; text stays borrowed from the
//! page unless it had to be unescaped or rebuilt (JSON values kept as text, `unknown_fields`). An
//! item is all or nothing: a record that cannot be decoded adds no row and comes back as a
//! [`RowError`] naming the dataset, scope, page, record and field.
//!
//! In: item texts borrowed from a page. Out: a [`RecordBatch`] (derived columns left null for the
//! stages to fill), the item each row came from, the members no column reads, the errors. It
//! converts no currency and matches nothing.

use std::borrow::Cow;

use arrow_array::RecordBatch;
use rayon::prelude::*;
use serde_json::value::RawValue;

use super::decode::{ColType, Raw, Value, decode, from_decimal128, to_decimal128};
use super::item::{FoldedNames, Item, MemberPath, elements};
use crate::tabular::batch::{BatchBuilder, stage_schema};
use crate::tabular::{Dataset, DatasetSchema, Implied, Source};

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
            dataset: schema.name.to_string(),
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

/// A dataset's schema and what each of its columns reads from an item, its paths hashed once
/// per page.
#[derive(Debug, Clone)]
pub struct ColumnPaths<'s> {
    schema: &'s DatasetSchema,
    /// Per column: its field and aliases (`Field`), its parent's field (`Parent`), its field
    /// (`Implied`), or its fraction then percentage field (`Percent`); none for the others.
    paths: Vec<Vec<MemberPath<'static>>>,
}

impl<'s> ColumnPaths<'s> {
    /// The paths of `schema`'s columns.
    pub fn of(schema: &'s DatasetSchema) -> ColumnPaths<'s> {
        let paths = schema
            .columns
            .iter()
            .map(|column| match &column.source {
                Source::Field(paths) => paths.iter().map(|p| MemberPath::new(p)).collect(),
                Source::Parent(path) => vec![MemberPath::new(path)],
                Source::Implied { field, .. } => vec![MemberPath::new(field)],
                Source::Percent { field, percent } => vec![MemberPath::new(field), MemberPath::new(percent)],
                _ => Vec::new(),
            })
            .collect();
        ColumnPaths { schema, paths }
    }
}

/// Decodes one item (or one element of its exploded array) into `row`, in column order.
fn row_of<'a>(
    paths: &ColumnPaths<'_>,
    item: &Item<'a>,
    parent: Option<&Item<'a>>,
    origin: Origin<'a>,
    record: usize,
    row: &mut Vec<Value<'a>>,
) -> Result<(), Box<RowError>> {
    let schema = paths.schema;
    row.clear();
    for (column, bound) in schema.columns.iter().zip(&paths.paths) {
        let (value, field) = match &column.source {
            Source::Field(names) => (bound.iter().find_map(|p| item.at(p)), names[0]),
            Source::Parent(path) => (parent.and_then(|p| bound.first().and_then(|b| p.at(b))), *path),
            Source::Percent { field, percent } => {
                let found = (bound.first().and_then(|b| item.at(b)), bound.get(1).and_then(|b| item.at(b)));
                let value = percent_value(found, field, percent, column.ty)
                    .map_err(|(f, reason)| RowError::at(schema, origin, record, f, &column.name, reason))?;
                row.push(value);
                continue;
            }
            Source::Implied { field, otherwise } => {
                let value = decode(bound.first().and_then(|b| item.at(b)), column.ty)
                    .map_err(|e| RowError::at(schema, origin, record, field, &column.name, e.0))?;
                let value = match (value, otherwise) {
                    (Value::Null, Implied::Text(text)) => Value::Str(Cow::Borrowed(text)),
                    (Value::Null, Implied::Positive(other)) => match schema.column(other).and_then(|i| row.get(i)) {
                        Some(Value::Dec(d)) => Value::Bool(*d > 0),
                        _ => Value::Null,
                    },
                    (value, _) => value,
                };
                row.push(value);
                continue;
            }
            Source::Scope => {
                row.push(Value::Str(Cow::Borrowed(origin.scope)));
                continue;
            }
            Source::RowKey | Source::Fx(_) | Source::Match(_) | Source::Unread => {
                row.push(Value::Null);
                continue;
            }
            Source::BillingPrice { price, rate, currency } => {
                let value = billing_price(schema, row, price, rate, currency, column.ty)
                    .map_err(|reason| RowError::at(schema, origin, record, price, &column.name, reason))?;
                row.push(value);
                continue;
            }
        };
        let fail = |reason: String| RowError::at(schema, origin, record, field, &column.name, reason);
        let value = decode(value, column.ty).map_err(|e| fail(e.0))?;
        if value.is_null() && !column.nullable {
            return Err(fail("a value is required".into()));
        }
        row.push(value);
    }
    Ok(())
}

/// A fraction from its field, or from a percentage field divided by 100, exactly. The v2 export
/// writes its percentages as whole numbers (15 for 15 %); a percentage with a fraction (0.15) is
/// most likely a fraction under a percentage's name, and an error rather than a silent 0.0015.
/// Either way the result must be a rate between 0 and 1.
fn percent_value<'a>(
    (fraction, percentage): (Option<Raw<'a>>, Option<Raw<'a>>),
    field: &'static str,
    percent: &'static str,
    ty: ColType,
) -> Result<Value<'a>, (&'static str, String)> {
    let ColType::Decimal { scale } = ty else {
        return decode(fraction, ty).map_err(|e| (field, e.0));
    };
    let one = 10i128.pow(scale);
    let in_range = |value: Value<'a>, name: &'static str, shown: &dyn std::fmt::Display| match value {
        Value::Dec(v) if !(0..=one).contains(&v) => {
            Err((name, format!("{shown} is not a rate between 0 and 1 (0 % to 100 %)")))
        }
        value => Ok(value),
    };
    let value = decode(fraction, ty).map_err(|e| (field, e.0))?;
    if !value.is_null() {
        let raw = fraction.map(|r| r.text()).unwrap_or_default();
        return in_range(value, field, &raw);
    }
    let Some(raw) = percentage else { return Ok(Value::Null) };
    let whole = decode(Some(raw), ColType::Decimal { scale: 0 });
    match (whole, scale >= 2) {
        (Ok(Value::Null), _) => Ok(Value::Null),
        (Ok(_), true) => {
            let value = decode(Some(raw), ColType::Decimal { scale: scale - 2 }).map_err(|e| (percent, e.0))?;
            in_range(value, percent, &raw.text())
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

/// `price × rate` truncated to the billing currency's minor units, from values already decoded.
fn billing_price(
    schema: &DatasetSchema,
    row: &[Value<'_>],
    price: &str,
    rate: &str,
    currency: &str,
    ty: ColType,
) -> Result<Value<'static>, String> {
    let get = |name: &str| schema.column(name).and_then(|i| row.get(i).map(|c| (c, schema.columns[i].ty)));
    let (
        Some((Value::Dec(p), ColType::Decimal { scale: ps })),
        Some((Value::Dec(r), ColType::Decimal { scale: rs })),
        Some((Value::Str(c), _)),
    ) = (get(price), get(rate), get(currency))
    else {
        return Ok(Value::Null);
    };
    let Ok(currency) = c.parse::<crate::model::money::Currency>() else { return Ok(Value::Null) };
    let (Some(p), Some(r)) = (from_decimal128(*p, ps), from_decimal128(*r, rs)) else { return Ok(Value::Null) };
    let product = p.checked_mul(r).ok_or_else(|| format!("{p} × {r} overflows"))?;
    let ColType::Decimal { scale } = ty else { return Ok(Value::Null) };
    to_decimal128(currency.truncate_minor(product), scale).map(Value::Dec).map_err(|e| e.0)
}

/// The top-level members the datasets built from one extracted dataset read: what the API sends
/// beyond them is schema drift, reported rather than dropped in silence.
#[derive(Debug, Clone, Default)]
pub struct KnownFields {
    /// Member names, in any case.
    names: FoldedNames,
    /// Keep the unread members in the `unknown_fields` column.
    pub keep: bool,
}

impl KnownFields {
    /// What the datasets built from `dataset`'s pages read. `attributes` (`objectType`) and
    /// `links` are the envelope of every resource, not data.
    pub fn of(dataset: Dataset, keep: bool) -> KnownFields {
        let mut names = FoldedNames::default();
        names.insert("attributes");
        names.insert("links");
        for schema in dataset.tables_filled() {
            if let Some(array) = schema.explode {
                names.insert(array);
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
                        names.insert(first);
                    }
                }
            }
        }
        KnownFields { names, keep }
    }
}

/// What to look for in an item besides its columns.
#[derive(Debug, Clone, Copy)]
pub struct Checks<'a> {
    /// The members its datasets read.
    pub known: &'a KnownFields,
    /// Attributes its source promises to carry (a v2 export's attribute set), each to be present.
    pub promised: &'a [&'static str],
    /// Whether the item must name its invoice: a line of a billed invoice's v2 export, which
    /// has no other tie to the invoice it was exported for.
    pub names_invoice: bool,
}

/// What an item gave besides its values: how many rows, the names of its members no column
/// reads (sorted), and the promised attributes it lacks, when asked.
#[derive(Debug, Default)]
pub struct ItemNotes {
    /// Rows appended: one, or one per element of an exploded array.
    pub rows: usize,
    /// Members no column reads.
    pub unknown: Vec<String>,
    /// Promised attributes the item lacks.
    pub missing: Vec<&'static str>,
}

/// Decodes one item (JSON text) into its rows (one, or one per element of an exploded array),
/// appended to `out` only when all of them decode; `row` is scratch space the caller reuses. With
/// `checks`, also finds the members no column reads (kept in `unknown_fields` when they say so)
/// and the promised attributes the item lacks.
pub fn decode_item<'a>(
    paths: &ColumnPaths<'_>,
    text: &'a [u8],
    origin: Origin<'a>,
    record: usize,
    checks: Option<Checks<'_>>,
    row: &mut Vec<Value<'a>>,
    out: &mut BatchBuilder,
) -> Result<ItemNotes, Box<RowError>> {
    let schema = paths.schema;
    let known = checks.map(|c| c.known);
    let fail = |reason: String| RowError::at(schema, origin, record, "-", "-", reason);
    let object = text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let item = Item::parse(text)
        .map_err(|e| fail(if object { format!("not JSON: {e}") } else { "not a JSON object".into() }))?;
    let mut unread: Vec<(&str, &RawValue)> = match known {
        Some(known) => item.unknown(&known.names),
        None => Vec::new(),
    };
    if checks.is_some_and(|c| c.names_invoice)
        && !matches!(decode(item.get(&["invoiceNumber"]), ColType::Utf8), Ok(Value::Str(_)))
    {
        let reason = "a line of a billed invoice's export must name its invoice".to_owned();
        return Err(RowError::at(schema, origin, record, "invoiceNumber", "invoice_number", reason));
    }
    // Nothing the dataset reads: not a line of it (an all-empty row would hide that).
    if known.is_some() && unread.len() == item.len() {
        return Err(fail(format!(
            "no member of the item is a field of {} (it has {} members)",
            schema.name,
            unread.len()
        )));
    }
    unread.sort_by(|a, b| a.0.cmp(b.0));
    let unknown: Vec<String> = unread.iter().map(|(name, _)| (*name).to_owned()).collect();
    let missing: Vec<&'static str> =
        checks.map_or(&[][..], |c| c.promised).iter().copied().filter(|a| item.get(&[a]).is_none()).collect();
    let unread_at = schema.columns.iter().position(|c| c.source == Source::Unread);
    let kept = match known.filter(|k| k.keep && !unread.is_empty()).and(unread_at) {
        Some(at) => {
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
            Some((at, json))
        }
        None => None,
    };
    let keep = |row: &mut Vec<Value<'a>>| {
        if let Some((at, json)) = &kept {
            row[*at] = Value::Str(Cow::Owned(json.clone()));
        }
    };
    let rows = match schema.explode {
        None => {
            row_of(paths, &item, None, origin, record, row)?;
            keep(row);
            out.push_row(row);
            1
        }
        Some(array) => {
            let elements = item.path(array).and_then(|raw| elements(raw.text())).unwrap_or_default();
            let mut rows = Vec::with_capacity(elements.len());
            for element in elements {
                let child = Item::new(element.get()).map_err(|_| fail(format!("{array} holds a non-object")))?;
                row_of(paths, &child, Some(&item), origin, record, row)?;
                keep(row);
                rows.push(std::mem::take(row));
            }
            for values in &rows {
                out.push_row(values);
            }
            rows.len()
        }
    };
    Ok(ItemNotes { rows, unknown, missing })
}

/// Items decoded per task at most: a page is cut into about two tasks per core, each of at least
/// [`MIN_CHUNK_ITEMS`] items, so that both cores work on small pages too and big pages are few
/// batches to join.
const CHUNK_ITEMS: usize = 1024;

/// Items decoded per task at least.
const MIN_CHUNK_ITEMS: usize = 32;

/// A page's items as one batch.
#[derive(Debug)]
pub struct PageBatch {
    /// The rows of every item that decoded, in item order.
    pub batch: RecordBatch,
    /// The index in the page of the item each row came from.
    pub row_items: Vec<u32>,
    /// Items with members no column reads or promised attributes missing: (index, notes).
    pub notes: Vec<(usize, ItemNotes)>,
    /// Items that could not be decoded, in order: (index, error).
    pub errors: Vec<(usize, Box<RowError>)>,
}

/// Decodes a page's items (spans into `body`) on every core into one batch; records that cannot
/// be decoded are left out of it and listed. An error only when the batch itself cannot be built
/// (a decimal beyond 38 digits).
pub fn decode_page<'a>(
    schema: &DatasetSchema,
    body: &'a [u8],
    spans: &[std::ops::Range<usize>],
    origin: Origin<'a>,
    checks: Option<Checks<'_>>,
) -> Result<PageBatch, arrow_schema::ArrowError> {
    let paths = ColumnPaths::of(schema);
    let chunk_items = spans.len().div_ceil(rayon::current_num_threads() * 2).clamp(MIN_CHUNK_ITEMS, CHUNK_ITEMS);
    let chunks: Vec<_> = spans
        .par_chunks(chunk_items)
        .enumerate()
        .map(|(chunk, spans)| {
            let first = chunk * chunk_items;
            let mut out = BatchBuilder::new(schema, spans.len());
            let mut row = Vec::with_capacity(schema.columns.len());
            let (mut items, mut notes, mut errors) = (Vec::with_capacity(spans.len()), Vec::new(), Vec::new());
            for (offset, span) in spans.iter().enumerate() {
                let index = first + offset;
                match decode_item(&paths, &body[span.clone()], origin, index, checks, &mut row, &mut out) {
                    Ok(item) => {
                        items.extend(std::iter::repeat_n(index as u32, item.rows));
                        if !item.unknown.is_empty() || !item.missing.is_empty() {
                            notes.push((index, item));
                        }
                    }
                    Err(e) => errors.push((index, e)),
                }
            }
            out.finish().map(|batch| (batch, items, notes, errors))
        })
        .collect::<Result<_, _>>()?;
    let mut page = PageBatch {
        batch: RecordBatch::new_empty(stage_schema(schema)),
        row_items: Vec::new(),
        notes: Vec::new(),
        errors: Vec::new(),
    };
    let mut batches = Vec::with_capacity(chunks.len());
    for (batch, items, notes, errors) in chunks {
        batches.push(batch);
        page.row_items.extend(items);
        page.notes.extend(notes);
        page.errors.extend(errors);
    }
    if batches.len() == 1 {
        page.batch = batches.remove(0);
    } else if !batches.is_empty() {
        page.batch = arrow_select::concat::concat_batches(&page.batch.schema(), &batches)?;
    }
    Ok(page)
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::tabular::Cell;
    use crate::tabular::batch::rows_of;
    use crate::tabular::text::cell_text;

    /// The rows of items as one page decodes them, or its first error.
    fn decode_texts(
        schema: &DatasetSchema,
        texts: &[&[u8]],
        origin: Origin<'_>,
        rows: &mut Vec<Vec<Cell>>,
    ) -> Result<(), Box<RowError>> {
        let mut body = Vec::new();
        let mut spans = Vec::new();
        for text in texts {
            spans.push(body.len()..body.len() + text.len());
            body.extend_from_slice(text);
        }
        let mut page = decode_page(schema, &body, &spans, origin, None).unwrap();
        if !page.errors.is_empty() {
            return Err(page.errors.remove(0).1);
        }
        rows.extend(rows_of(&page.batch));
        Ok(())
    }

    /// One item's notes and rows.
    fn decode_one(
        schema: &DatasetSchema,
        text: &[u8],
        origin: Origin<'_>,
        record: usize,
        checks: Option<Checks<'_>>,
    ) -> Result<(ItemNotes, Vec<Vec<Cell>>), Box<RowError>> {
        let mut out = BatchBuilder::new(schema, 1);
        let paths = ColumnPaths::of(schema);
        let notes = decode_item(&paths, text, origin, record, checks, &mut Vec::new(), &mut out)?;
        Ok((notes, rows_of(&out.finish().unwrap())))
    }

    #[test]
    fn quirky_items_decode_into_rows_and_bad_values_are_located() {
        let schema = Dataset::BilledRecon.schema().unwrap();
        let page: serde_json::Value = serde_json::from_slice(
            &std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/samples/quirks/onetime-line-items.json")).unwrap(),
        )
        .unwrap();
        let texts: Vec<String> = page["items"].as_array().unwrap().iter().map(|v| v.to_string()).collect();
        let texts: Vec<&[u8]> = texts.iter().map(|t| t.as_bytes()).collect();
        let mut rows = Vec::new();
        decode_texts(schema, &texts, Origin { scope: "G000773581", page: 1 }, &mut rows).unwrap();
        assert_eq!(rows.len(), 4);
        let rate = schema.column("pc_to_bc_exchange_rate").unwrap();
        let scale = 18;
        assert_eq!(cell_text(&rows[1][rate], ColType::Decimal { scale }), "0.891200000000000000");
        assert_eq!(cell_text(&rows[2][rate], ColType::Decimal { scale }), "0.891200000000000000");

        let bad = r#"{"subtotal":"12.345678901234","currency":"EUR"}"#;
        let err = decode_texts(schema, &[bad.as_bytes()], Origin { scope: "G1", page: 3 }, &mut rows).unwrap_err();
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
        let schema = Dataset::BilledRecon.schema().unwrap();
        let item = r#"{"unitPrice":"16","effectiveUnitPrice":0.1835431430074643112595,"pcToBCExchangeRate":0.8912,"currency":"EUR"}"#;
        let mut rows = Vec::new();
        decode_texts(schema, &[item.as_bytes()], Origin { scope: "G1", page: 1 }, &mut rows).unwrap();
        let text = |c: &str| cell_text(&rows[0][schema.column(c).unwrap()], ColType::Decimal { scale: 10 });
        assert_eq!(text("unit_price_billing"), "14.2500000000", "16 × 0.8912 = 14.2592 → 14.25");
        assert_eq!(text("effective_unit_price_billing"), "0.1600000000", "0.16357… → 0.16");
    }

    #[test]
    fn v2_percentages_become_fractions_only_when_whole_and_rates_stay_between_0_and_1() {
        let schema = Dataset::BilledUsage.schema().unwrap();
        let pec = schema.column("rate_of_partner_earned_credit").unwrap();
        let credit = schema.column("rate_of_credit").unwrap();
        let decode_one = |item: &str| {
            let mut rows = Vec::new();
            decode_texts(schema, &[item.as_bytes()], Origin { scope: "G1", page: 2 }, &mut rows)
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
        let schema = Dataset::Subscriptions.schema().unwrap();
        let item = br#"{"id":"s1","offerId":"o","newField":{"a":1},"attributes":{"objectType":"Subscription"},"AnotherOne":2}"#;
        let origin = Origin { scope: "c1", page: 1 };
        let known = KnownFields::of(Dataset::Subscriptions, false);
        let checks = |known| Some(Checks { known, promised: &["OfferId", "Missing"], names_invoice: false });
        let (notes, rows) = decode_one(schema, item, origin, 0, checks(&known)).unwrap();
        assert_eq!(notes.missing, ["Missing"], "a promised attribute is looked for in any case");
        assert_eq!(notes.unknown, ["AnotherOne", "newField"]);
        let at = schema.column("unknown_fields").unwrap();
        assert_eq!(rows[0][at], Cell::Null);
        let keep = KnownFields::of(Dataset::Subscriptions, true);
        let (_, kept) = decode_one(schema, item, origin, 0, checks(&keep)).unwrap();
        assert_eq!(kept[0][at], Cell::Str(r#"{"AnotherOne":2,"newField":{"a":1}}"#.into()));
        assert!(decode_one(schema, item, origin, 0, None).unwrap().0.unknown.is_empty());
    }

    #[test]
    fn an_item_without_a_known_member_or_a_v2_line_without_its_invoice_is_an_error() {
        let origin = Origin { scope: "G1", page: 4 };
        let schema = Dataset::BilledUsage.schema().unwrap();
        let known = KnownFields::of(Dataset::BilledUsage, false);
        let checks = |names_invoice| Some(Checks { known: &known, promised: &[], names_invoice });
        let stranger = decode_one(schema, br#"{"foo":1}"#, origin, 2, checks(false)).unwrap_err();
        assert!(stranger.reason.contains("no member of the item"), "{stranger}");
        assert!(decode_one(schema, b"{}", origin, 2, checks(false)).is_err(), "an empty object is no line either");
        let line = br#"{"CustomerId":"c1","Quantity":"2"}"#;
        assert!(decode_one(schema, line, origin, 0, checks(false)).is_ok());
        let unnamed = decode_one(schema, line, origin, 0, checks(true)).unwrap_err();
        assert_eq!((unnamed.field.as_str(), unnamed.record), ("invoiceNumber", 0), "{unnamed}");
        let named = br#"{"InvoiceNumber":"G1","CustomerId":"c1","Quantity":"2"}"#;
        assert!(decode_one(schema, named, origin, 0, checks(true)).is_ok());
    }

    #[test]
    fn order_lines_are_exploded_with_their_order_id() {
        let schema = Dataset::OrderLineItems.schema().unwrap();
        let order =
            r#"{"id":"o1","lineItems":[{"lineItemNumber":0,"offerId":"A"},{"lineItemNumber":1,"offerId":"B"}]}"#;
        let mut rows = Vec::new();
        decode_texts(schema, &[order.as_bytes()], Origin { scope: "c1", page: 1 }, &mut rows).unwrap();
        assert_eq!(rows.len(), 2);
        let order_id = schema.column("order_id").unwrap();
        assert_eq!(rows[1][order_id], Cell::Str("o1".into()));
        assert_eq!(rows[1][schema.column("customer_id").unwrap()], Cell::Str("c1".into()));
        assert_eq!(rows[1][schema.column("line_item_number").unwrap()], Cell::Int(1));
    }

    #[test]
    fn an_item_that_is_not_utf_8_is_located_by_the_parser() {
        let schema = Dataset::BilledUsage.schema().unwrap();
        let item = b"{\"customerName\":\"M\xfcller\"}";
        let error = decode_one(schema, item, Origin { scope: "G1", page: 2 }, 5, None).unwrap_err();
        assert_eq!((error.page, error.record), (2, 5));
        assert!(error.reason.starts_with("not JSON: invalid unicode code point at line 1"), "{}", error.reason);
        let not_object = decode_one(schema, b"[\xff]", Origin { scope: "G1", page: 2 }, 0, None).unwrap_err();
        assert_eq!(not_object.reason, "not a JSON object");
    }
}
