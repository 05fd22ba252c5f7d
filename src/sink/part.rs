//! The rows of one dataset for one file pair (Parquet + CSV): computes each row's `row_key`,
//! the control totals per currency, and the billing month its rows belong to.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::writer::{FileReport, Writer};
use crate::model::schema::{Cell, ColType, DatasetSchema, Partition, Source};
use crate::normalize::rows::cell_text;

/// Σ per currency of each total column, as unscaled Decimal128 values.
pub type Totals = BTreeMap<String, Vec<i128>>;

/// A finished file pair.
#[derive(Debug, Clone)]
pub struct PartReport {
    /// Parquet and CSV files.
    pub files: Vec<FileReport>,
    /// Rows in each.
    pub rows: u64,
    /// Control totals.
    pub totals: Totals,
    /// `YYYY-MM` of the first row's partition column, where the dataset needs it.
    pub month: Option<String>,
}

/// Writes rows of one dataset to a Parquet and a CSV file.
pub struct PartWriter<'s> {
    schema: &'s DatasetSchema,
    parquet: Writer,
    csv: Writer,
    keys: Vec<usize>,
    row_key: Option<usize>,
    seen: HashMap<[u8; 16], u32>,
    currency: Option<usize>,
    totals_at: Vec<usize>,
    totals: Totals,
    month_at: Option<usize>,
    month: Option<String>,
    rows: u64,
}

/// `YYYY-MM` of a date or timestamp cell.
pub fn month_of(cell: &Cell, ty: ColType) -> Option<String> {
    let text = cell_text(cell, ty);
    text.get(..7).filter(|m| m.len() == 7).map(str::to_owned)
}

impl<'s> PartWriter<'s> {
    /// Opens `parquet` and `csv` for a dataset's rows.
    pub fn create(schema: &'s DatasetSchema, parquet: &Path, csv: &Path, bom: bool) -> io::Result<PartWriter<'s>> {
        let index = |name: &str| schema.column(name);
        let month_column = match schema.partition {
            Partition::RowMonth(c) | Partition::ScopeMonth(c) => index(c),
            Partition::None | Partition::Invoice => None,
        };
        Ok(PartWriter {
            schema,
            parquet: Writer::parquet(parquet, schema)?,
            csv: Writer::csv(csv, schema, bom)?,
            keys: schema.keys.iter().filter_map(|k| index(k)).collect(),
            row_key: schema.columns.iter().position(|c| c.source == Source::RowKey),
            seen: HashMap::new(),
            currency: schema.currency_column.and_then(index),
            totals_at: schema.totals.iter().filter_map(|t| index(t)).collect(),
            totals: Totals::new(),
            month_at: month_column,
            month: None,
            rows: 0,
        })
    }

    /// Writes one row (its `row_key` cell is filled in here).
    pub fn push(&mut self, mut row: Vec<Cell>) -> io::Result<()> {
        if let Some(at) = self.row_key {
            let mut hasher = Sha256::new();
            for &k in &self.keys {
                hasher.update(self.schema.columns[k].name.as_bytes());
                hasher.update(b"=");
                hasher.update(cell_text(&row[k], self.schema.columns[k].ty).as_bytes());
                hasher.update(b"\x1f");
            }
            let digest = hasher.finalize();
            let mut short = [0u8; 16];
            short.copy_from_slice(&digest[..16]);
            // Exact duplicates (same key) are told apart by their order of arrival.
            let ordinal = self.seen.entry(short).or_insert(0);
            row[at] = Cell::Str(format!("{}-{}", crate::model::hex(&short), ordinal));
            *ordinal += 1;
        }
        if self.month.is_none() {
            self.month = self.month_at.and_then(|i| month_of(&row[i], self.schema.columns[i].ty));
        }
        if !self.totals_at.is_empty() {
            let currency = match self.currency.map(|i| &row[i]) {
                Some(Cell::Str(c)) => c.to_uppercase(),
                _ => "-".to_owned(),
            };
            let sums = self.totals.entry(currency).or_insert_with(|| vec![0; self.totals_at.len()]);
            for (sum, &i) in sums.iter_mut().zip(&self.totals_at) {
                if let Cell::Dec(v) = row[i] {
                    *sum += v;
                }
            }
        }
        self.parquet.push(&row)?;
        self.csv.push(&row)?;
        self.rows += 1;
        Ok(())
    }

    /// Completes both files.
    pub fn finish(self) -> io::Result<PartReport> {
        let files = vec![self.parquet.finish()?, self.csv.finish()?];
        Ok(PartReport { files, rows: self.rows, totals: self.totals, month: self.month })
    }

    /// Drops both files (a restarted sequence).
    pub fn abandon(self) {
        self.parquet.abandon();
        self.csv.abandon();
    }
}
