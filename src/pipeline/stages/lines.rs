//! Line items against what was sold: each row keyed (`row_key`), items served twice spotted and
//! pointed at their first copy (`is_duplicate`, `duplicate_of`), each row matched to its order,
//! subscription and entitlement, exceptions kept for `match_exceptions` with the money they
//! carry, and each distinct line observed by the tie-out.
//!
//! In: the batch of one page of a line-item dataset and the item each row came from. Out: the
//! batch with its key, duplicate and match columns, exception rows, the ledger's sums. It writes
//! no file.

use std::fmt::Write as _;

use rayon::prelude::*;

use super::*;
use crate::tabular::Duplicate;
use crate::tabular::text::push_value_text;

/// The first 16 bytes of the SHA-256 of a row's key columns (`name=text\x1f` each); `text` is
/// scratch space.
fn key_digest(schema: &DatasetSchema, keys: &[usize], row: &impl crate::tabular::Row, text: &mut String) -> [u8; 16] {
    text.clear();
    for &k in keys {
        text.push_str(&schema.columns[k].name);
        text.push('=');
        push_value_text(text, &row.value(k), schema.columns[k].ty);
        text.push('\x1f');
    }
    short_digest(text.as_bytes())
}

/// `row_key`'s text: the key digest in hex and the ordinal among rows with that key.
fn row_key_text(out: &mut String, digest: &[u8; 16], ordinal: u32) {
    out.clear();
    let _ = write!(out, "{}-{ordinal}", crate::model::hex(digest));
}

/// A derived column of line items this stage fills.
#[derive(Debug, Clone, Copy)]
enum Filled {
    RowKey,
    Duplicate(Duplicate),
    Match(MatchColumn),
}

/// Where one exception's money is read from.
struct Money {
    amount: Option<(usize, u32)>,
    currency: Option<usize>,
}

impl Money {
    fn of(schema: &DatasetSchema) -> Money {
        let amount =
            schema.name.line_amount_column().and_then(|c| schema.column(c)).and_then(|i| match schema.columns[i].ty {
                crate::tabular::ColType::Decimal { scale, .. } => Some((i, scale)),
                _ => None,
            });
        Money { amount, currency: schema.currency_column.and_then(|c| schema.column(c)) }
    }
}

impl Snapshot {
    pub(super) fn check_lines(
        &mut self,
        schema: &'static DatasetSchema,
        page: &crate::model::page::Page,
        batch: &RecordBatch,
        items: &[u32],
    ) -> Result<RecordBatch, arrow_schema::ArrowError> {
        if self.index.is_none() {
            // Master data arrives first: by the first line item, the index can be complete.
            let mut index = MatchIndex::default();
            for name in [Dataset::Orders, Dataset::Subscriptions, Dataset::Entitlements] {
                if let (Some(s), Some(by_scope)) = (name.schema(), self.dims.get(&name)) {
                    for rows in by_scope.values() {
                        index.add(s, rows);
                    }
                }
            }
            self.index = Some(index);
        }
        let Some(index) = self.index.as_ref() else { return Ok(batch.clone()) };
        let columns = Columns::of(batch);
        let (matches, digests): (Vec<Match>, Vec<[u8; 16]>) = {
            let keys = LineKeys::of(schema);
            let key_columns: Vec<usize> = schema.keys.iter().filter_map(|k| schema.column(k)).collect();
            (0..columns.rows())
                .into_par_iter()
                .map_init(String::new, |text, r| {
                    let row = columns.row(r);
                    (index.match_row(&keys, &row), key_digest(schema, &key_columns, &row, text))
                })
                .unzip()
        };
        let key = (schema.name, page.scope.clone());
        let mut exceptions = Vec::new();
        let observer = Observer::of(schema);
        let money = Money::of(schema);
        let sums = self.ledger.sums_mut(schema.name, &page.scope);
        let lines = self.lines.entry(key).or_default();
        let targets: Vec<(usize, Filled)> = schema
            .columns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c.source {
                Source::RowKey => Some((i, Filled::RowKey)),
                Source::Duplicate(which) => Some((i, Filled::Duplicate(which))),
                Source::Match(which) => Some((i, Filled::Match(which))),
                _ => None,
            })
            .collect();
        let mut builders: Vec<ColumnBuilder> =
            targets.iter().map(|(i, _)| ColumnBuilder::new(schema.columns[*i].ty, columns.rows())).collect();
        let text = |r: usize, column: &str| match schema.column(column).map(|i| columns.value(i, r)) {
            Some(Value::Str(s)) => Cell::Str(s.into_owned()),
            _ => Cell::Null,
        };
        let (mut row_key, mut first_key) = (String::with_capacity(40), String::with_capacity(40));
        for (((r, m), item), digest) in matches.into_iter().enumerate().zip(items).zip(digests) {
            let position = lines.position;
            lines.position += 1;
            *lines.statuses.entry(m.status).or_default() += 1;
            let ordinal = lines.ordinals.entry(digest).or_insert(0);
            row_key_text(&mut row_key, &digest, *ordinal);
            let first = match lines.seen.entry(self.item_digests[*item as usize]) {
                std::collections::hash_map::Entry::Occupied(first) => Some(*first.get()),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert((digest, *ordinal));
                    None
                }
            };
            *ordinal += 1;
            let duplicate = first.is_some();
            if let Some((digest, ordinal)) = first {
                row_key_text(&mut first_key, &digest, ordinal);
            }
            for (builder, (_, which)) in builders.iter_mut().zip(&targets) {
                match which {
                    Filled::RowKey => builder.append_str(Some(&row_key)),
                    Filled::Duplicate(Duplicate::Flag) => builder.append(&Value::Bool(duplicate)),
                    Filled::Duplicate(Duplicate::FirstCopy) => {
                        builder.append_str(first.map(|_| first_key.as_str()));
                    }
                    Filled::Match(which) => builder.append_str(match which {
                        MatchColumn::Status => Some(m.status),
                        MatchColumn::Rule => Some(m.rule),
                        MatchColumn::Order => m.order.as_deref(),
                        MatchColumn::Subscription => m.subscription.as_deref(),
                        MatchColumn::Entitlement => m.entitlement.as_deref(),
                    }),
                }
            }
            let exceptional = m.is_exception();
            let entitlement = if exceptional || duplicate { m.entitlement.clone() } else { None };
            let exception = |reason: &str, rule: &str, failed: Option<String>| {
                let subscription = match schema.column("syndication_partner_subscription_number") {
                    Some(_) => text(r, "syndication_partner_subscription_number"),
                    None => text(r, "subscription_id"),
                };
                let amount = money.amount.map_or(Cell::Null, |(i, scale)| match columns.value(i, r) {
                    Value::Dec(v) => Cell::Dec(v * 10i128.pow(EXCEPTION_SCALE - scale)),
                    _ => Cell::Null,
                });
                vec![
                    Cell::Str(schema.name.name().to_owned()),
                    Cell::Str(page.scope.clone()),
                    Cell::Int(position as i64),
                    Cell::Str(reason.to_owned()),
                    Cell::Str(rule.to_owned()),
                    text(r, "customer_id"),
                    text(r, "order_id"),
                    subscription,
                    entitlement.clone().map_or(Cell::Null, Cell::Str),
                    failed.map_or(Cell::Null, Cell::Str),
                    Cell::Str(row_key.clone()),
                    money.currency.map_or(Cell::Null, |i| match columns.value(i, r) {
                        Value::Str(c) => Cell::Str(c.to_uppercase()),
                        _ => Cell::Null,
                    }),
                    schema.name.line_amount_column().map_or(Cell::Null, |c| Cell::Str(c.to_owned())),
                    amount,
                    text(r, "customer_key"),
                ]
            };
            if exceptional {
                exceptions.push(exception(m.status, m.rule, m.failed_key.clone()));
            }
            if duplicate {
                exceptions.push(exception("duplicate_line", "item", None));
                continue;
            }
            observer.observe(sums, &columns.row(r));
        }
        if !exceptions.is_empty() {
            let bucket = format!("{}/{}", schema.name, page.scope);
            self.dims.entry(Dataset::MatchExceptions).or_default().entry(bucket).or_default().extend(exceptions);
        }
        let mut replaced = Vec::with_capacity(targets.len());
        for (builder, (i, _)) in builders.iter_mut().zip(&targets) {
            replaced.push((*i, builder.finish()?));
        }
        with_columns(batch, replaced)
    }
}

/// The scale of `match_exceptions.amount`: that of daily-rated-usage totals, the finest of the
/// line amounts, so every line's amount is held exactly.
const EXCEPTION_SCALE: u32 = match crate::tabular::USAGE_TOTAL {
    crate::tabular::ColType::Decimal { scale, .. } => scale,
    _ => 0,
};
