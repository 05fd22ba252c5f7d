//! Control totals: the one rule by which a dataset's money columns are summed, per billing
//! currency, and the fixed-point text the manifest records them in. A line the API served twice
//! counts once: its later copies (`is_duplicate`) are summed apart, beside the totals. The
//! writers keep them as rows stream by; `verify` recomputes them from the files read back, by the
//! same rule.
//!
//! In: a dataset's schema and its rows. Out: [`Totals`] (unscaled Decimal128 sums), and their text.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::tabular::text::fixed_point;
use crate::tabular::{ColType, DatasetSchema, Duplicate, Row, Source, Value};

/// Σ per currency of each control-total column (unscaled, at the column's scale).
pub type Sums = BTreeMap<String, Vec<i128>>;

/// A dataset's control totals: over its distinct rows, and over the later copies of lines
/// served twice, apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Σ over the rows that are not a later copy of another.
    pub distinct: Sums,
    /// Σ over the later copies of lines served twice.
    pub served_twice: Sums,
    /// Those later copies.
    pub served_twice_rows: u64,
}

impl Totals {
    /// No rows yet.
    pub fn new() -> Totals {
        Totals::default()
    }

    /// Adds `more` into these totals.
    pub fn merge(&mut self, more: Totals) -> Result<(), Overflow> {
        merge(&mut self.distinct, more.distinct)?;
        merge(&mut self.served_twice, more.served_twice)?;
        self.served_twice_rows += more.served_twice_rows;
        Ok(())
    }
}

/// Which columns of a dataset hold its currency, its control totals, and whether a row is a
/// later copy of a line served twice.
#[derive(Debug, Clone)]
pub struct TotalColumns {
    currency: Option<usize>,
    totals: Vec<usize>,
    duplicate: Option<usize>,
}

/// A sum that left Decimal128.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a control total does not fit Decimal128(38)")]
pub struct Overflow;

impl TotalColumns {
    /// The currency and control-total columns of `schema`.
    pub fn of(schema: &DatasetSchema) -> TotalColumns {
        TotalColumns {
            currency: schema.currency_column.and_then(|c| schema.column(c)),
            totals: schema.totals.iter().filter_map(|t| schema.column(t)).collect(),
            duplicate: schema.columns.iter().position(|c| c.source == Source::Duplicate(Duplicate::Flag)),
        }
    }

    /// Adds a row: under its currency in upper case (`-` without one), each total column's
    /// unscaled decimal; a null adds nothing. A later copy of a line served twice goes to
    /// [`Totals::served_twice`].
    pub fn add(&self, row: &(impl Row + ?Sized), totals: &mut Totals) -> Result<(), Overflow> {
        let copy = self.duplicate.is_some_and(|i| row.value(i) == Value::Bool(true));
        if copy {
            totals.served_twice_rows += 1;
        }
        if self.totals.is_empty() {
            return Ok(());
        }
        let totals = if copy { &mut totals.served_twice } else { &mut totals.distinct };
        let value = self.currency.map(|i| row.value(i));
        let currency = match &value {
            Some(Value::Str(c)) if c.bytes().any(|b| b.is_ascii_lowercase()) => Cow::Owned(c.to_uppercase()),
            Some(Value::Str(c)) => Cow::Borrowed(c.as_ref()),
            _ => Cow::Borrowed("-"),
        };
        // Looked up before inserting: a row allocates nothing once its currency is known.
        if !totals.contains_key(currency.as_ref()) {
            totals.insert(currency.to_string(), vec![0; self.totals.len()]);
        }
        let Some(sums) = totals.get_mut(currency.as_ref()) else { return Ok(()) };
        for (sum, &i) in sums.iter_mut().zip(&self.totals) {
            if let Value::Dec(v) = row.value(i) {
                *sum = sum.checked_add(v).ok_or(Overflow)?;
            }
        }
        Ok(())
    }
}

/// Adds `more` into `into`, currency by currency.
fn merge(into: &mut Sums, more: Sums) -> Result<(), Overflow> {
    for (currency, values) in more {
        let sums = into.entry(currency).or_insert_with(|| vec![0; values.len()]);
        for (sum, value) in sums.iter_mut().zip(values) {
            *sum = sum.checked_add(value).ok_or(Overflow)?;
        }
    }
    Ok(())
}

/// The totals as the manifest records them: per currency, per column, fixed-point at the
/// column's scale.
pub fn control_totals(schema: &DatasetSchema, totals: &Sums) -> BTreeMap<String, BTreeMap<String, String>> {
    totals
        .iter()
        .map(|(currency, values)| {
            let columns = schema
                .totals
                .iter()
                .zip(values)
                .map(|(column, &value)| {
                    let scale = match schema.column(column).map(|i| schema.columns[i].ty) {
                        Some(ColType::Decimal { scale, .. }) => scale,
                        _ => 0,
                    };
                    ((*column).to_owned(), fixed_point(value, scale))
                })
                .collect();
            (currency.clone(), columns)
        })
        .collect()
}
