//! The rows of one dataset for one file pair (Parquet + CSV): computes each row's `row_key`,
//! the control totals per currency, and the billing month its rows belong to.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;

use rayon::prelude::*;
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

/// The first 16 bytes of the SHA-256 of a row's key columns.
fn key_digest(schema: &DatasetSchema, keys: &[usize], row: &[Cell]) -> [u8; 16] {
    let mut hasher = Sha256::new();
    for &k in keys {
        hasher.update(schema.columns[k].name.as_bytes());
        hasher.update(b"=");
        hasher.update(cell_text(&row[k], schema.columns[k].ty).as_bytes());
        hasher.update(b"\x1f");
    }
    let digest = hasher.finalize();
    let mut short = [0u8; 16];
    short.copy_from_slice(&digest[..16]);
    short
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

    /// Fills in `row_key` (exact duplicates are told apart by their order of arrival), and
    /// keeps the month and the control totals.
    fn account(&mut self, row: &mut [Cell], digest: Option<[u8; 16]>) {
        if let (Some(at), Some(short)) = (self.row_key, digest) {
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
    }

    /// Writes one row (its `row_key` cell is filled in here).
    pub fn push(&mut self, mut row: Vec<Cell>) -> io::Result<()> {
        let digest = self.row_key.map(|_| key_digest(self.schema, &self.keys, &row));
        self.account(&mut row, digest);
        self.parquet.push(&row)?;
        self.csv.push(&row)?;
        self.rows += 1;
        Ok(())
    }

    /// Writes a page of rows in order, as [`PartWriter::push`] would one by one: key digests are
    /// computed on every core, and the Parquet and CSV files are encoded side by side.
    pub fn push_all(&mut self, rows: &mut [Vec<Cell>]) -> io::Result<()> {
        let digests: Vec<Option<[u8; 16]>> = match self.row_key {
            Some(_) => {
                let (schema, keys) = (self.schema, &self.keys);
                rows.par_iter().map(|row| Some(key_digest(schema, keys, row))).collect()
            }
            None => vec![None; rows.len()],
        };
        for (row, digest) in rows.iter_mut().zip(digests) {
            self.account(row, digest);
        }
        let (parquet, csv) = (&mut self.parquet, &mut self.csv);
        let (a, b) = rayon::join(
            || rows.iter().try_for_each(|row| parquet.push(row)),
            || rows.iter().try_for_each(|row| csv.push(row)),
        );
        a?;
        b?;
        self.rows += rows.len() as u64;
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
