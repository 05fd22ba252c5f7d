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

use super::decode::{
    ColType, Raw, Value, decode, decode_keeping_served, from_decimal128, normalize_key, parse_decimal, to_decimal128,
};
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
    let mut served: Vec<(&str, Cow<'a, str>)> = Vec::new();
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
                    (Value::Null, Implied::Scope) => Value::Str(Cow::Borrowed(origin.scope)),
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
            Source::CustomerKey(id) => {
                let key = match schema.column(id).and_then(|i| row.get(i)) {
                    Some(Value::Str(id)) => Some(normalize_key(id)).filter(|k| !k.is_empty()),
                    _ => None,
                };
                row.push(key.map_or(Value::Null, |k| Value::Str(Cow::Owned(k))));
                continue;
            }
            Source::ExactValues => {
                row.push(exact_values(&served));
                continue;
            }
            Source::RowKey | Source::Duplicate(_) | Source::Fx(_) | Source::Match(_) | Source::Unread => {
                row.push(Value::Null);
                continue;
            }
            Source::BillingPrice { price, rate, currency } => {
                let value = billing_price(schema, row, &served, (price, rate, currency), column.ty)
                    .map_err(|reason| RowError::at(schema, origin, record, price, &column.name, reason))?;
                row.push(value);
                continue;
            }
        };
        let fail = |reason: String| RowError::at(schema, origin, record, field, &column.name, reason);
        let (value, as_served) = decode_keeping_served(value, column.ty).map_err(|e| fail(e.0))?;
        if value.is_null() && !column.nullable {
            return Err(fail("a value is required".into()));
        }
        if let Some(text) = as_served {
            served.push((column.name.as_str(), text));
        }
        row.push(value);
    }
    Ok(())
}

/// The `exact_values` cell: `{column: "number as served"}` for the measures a row rounded.
fn exact_values(served: &[(&str, Cow<'_, str>)]) -> Value<'static> {
    if served.is_empty() {
        return Value::Null;
    }
    let members: Vec<String> = served
        .iter()
        .map(|(name, text)| {
            let name = serde_json::to_string(name).unwrap_or_default();
            format!("{name}:{}", serde_json::to_string(text.as_ref()).unwrap_or_default())
        })
        .collect();
    Value::Str(Cow::Owned(format!("{{{}}}", members.join(","))))
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
    let ColType::Decimal { scale, .. } = ty else {
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
    let whole = decode(Some(raw), ColType::decimal(0));
    match (whole, scale >= 2) {
        (Ok(Value::Null), _) => Ok(Value::Null),
        (Ok(_), true) => {
            let value = decode(Some(raw), ColType::decimal(scale - 2)).map_err(|e| (percent, e.0))?;
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

/// `price × rate` truncated to the billing currency's minor units, from values already decoded
/// (the price as served when its column rounded it).
fn billing_price(
    schema: &DatasetSchema,
    row: &[Value<'_>],
    served: &[(&str, Cow<'_, str>)],
    (price, rate, currency): (&str, &str, &str),
    ty: ColType,
) -> Result<Value<'static>, String> {
    let get = |name: &str| schema.column(name).and_then(|i| row.get(i).map(|c| (c, schema.columns[i].ty)));
    let (
        Some((Value::Dec(p), ColType::Decimal { scale: ps, .. })),
        Some((Value::Dec(r), ColType::Decimal { scale: rs, .. })),
        Some((Value::Str(c), _)),
    ) = (get(price), get(rate), get(currency))
    else {
        return Ok(Value::Null);
    };
    let Ok(currency) = c.parse::<crate::model::money::Currency>() else { return Ok(Value::Null) };
    let exact = match served.iter().find(|(name, _)| *name == price) {
        Some((_, text)) => Some(parse_decimal(text).map_err(|e| e.0)?),
        None => from_decimal128(*p, ps),
    };
    let (Some(p), Some(r)) = (exact, from_decimal128(*r, rs)) else { return Ok(Value::Null) };
    let product = p.checked_mul(r).ok_or_else(|| format!("{p} × {r} overflows"))?;
    let ColType::Decimal { scale, .. } = ty else { return Ok(Value::Null) };
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
        return Err(RowError::at(schema, origin, record, "invoiceNumber", "invoice_id", reason));
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
    let arrow = stage_schema(schema);
    let chunk_items = spans.len().div_ceil(rayon::current_num_threads() * 2).clamp(MIN_CHUNK_ITEMS, CHUNK_ITEMS);
    let chunks: Vec<_> = spans
        .par_chunks(chunk_items)
        .enumerate()
        .map(|(chunk, spans)| {
            let first = chunk * chunk_items;
            let mut out = BatchBuilder::with_schema(arrow.clone(), schema, spans.len());
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
        batch: RecordBatch::new_empty(arrow),
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
    if !batches.is_empty() {
        page.batch = arrow_select::concat::concat_batches(&page.batch.schema(), &batches)?;
    }
    Ok(page)
}
#[cfg(test)]
mod tests;
