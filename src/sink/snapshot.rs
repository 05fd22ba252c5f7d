//! A snapshot being built: every dataset as Parquet and CSV, partitioned by billing period, the
//! statements, and `manifest.json`, in a hidden staging folder that [`publish`] renames into
//! place in one step.
//!
//! Line items are written as they stream in, one file pair per sequence (`part-<scope>`), so that
//! concurrent extraction still gives deterministic files; they move into `period=YYYY-MM/` at the
//! end, when every invoice's billing period is known. The small dimensions are buffered and
//! written in scope order. Identical input gives byte-identical data files and manifest.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::part::{PartReport, PartWriter, Totals, month_of};
use super::writer::FileReport;
use crate::api::paging::Event;
use crate::extract::raw::scope_name;
use crate::model::schema::{Cell, DatasetSchema, Partition, registry};
use crate::normalize::fx::{InvoiceDates, Normalizer, day_of};
use crate::normalize::rows::{Origin, RowError, decode_item, fixed_point};
use rayon::prelude::*;

/// Why the snapshot failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A value could not be decoded.
    #[error(transparent)]
    Data(#[from] Box<RowError>),
    /// Amounts could not be converted into the reporting currency.
    #[error("{0}")]
    Fx(String),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> SinkError + '_ {
    move |source| SinkError::Io { path: path.to_path_buf(), source }
}

/// Options of the output.
#[derive(Debug, Clone, Copy, Default)]
pub struct SinkOptions {
    /// Start CSV files with a UTF-8 byte-order mark (Excel).
    pub csv_bom: bool,
    /// Keep going past records that cannot be decoded, writing them to `rejects` with the reason.
    pub rejects: bool,
}

/// One dataset in the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetEntry {
    /// Schema version.
    pub schema_version: u32,
    /// Rows.
    pub rows: u64,
    /// Σ per currency of each control-total column, fixed-point at the column's scale.
    pub control_totals: BTreeMap<String, BTreeMap<String, String>>,
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// Manifest format.
    pub format: u32,
    /// Where the data came from.
    pub source: BTreeMap<&'static str, String>,
    /// Per dataset.
    pub datasets: BTreeMap<String, DatasetEntry>,
    /// Every file: path, rows, bytes, SHA-256.
    pub files: Vec<FileReport>,
}

/// A snapshot being written into a staging folder.
pub struct Snapshot {
    root: PathBuf,
    options: SinkOptions,
    open: HashMap<(&'static str, String), PartWriter<'static>>,
    done: Vec<(&'static DatasetSchema, String, PartReport)>,
    dims: BTreeMap<&'static str, BTreeMap<String, Vec<Vec<Cell>>>>,
    documents: BTreeMap<String, FileReport>,
    rows: Vec<Vec<Cell>>,
    normalizer: Option<Normalizer>,
    invoice_dates: HashMap<String, InvoiceDates>,
}

fn is_dimension(schema: &DatasetSchema) -> bool {
    matches!(schema.partition, Partition::None | Partition::RowMonth(_))
}

fn schema(name: &str) -> Option<&'static DatasetSchema> {
    registry().iter().find(|s| s.name == name)
}

fn relative(root: &Path, path: &str) -> String {
    Path::new(path).strip_prefix(root).map_or_else(|_| path.to_owned(), |p| p.to_string_lossy().replace('\\', "/"))
}

impl Snapshot {
    /// A snapshot written under `root` (the staging folder).
    pub fn new(root: &Path, options: SinkOptions, normalizer: Option<Normalizer>) -> Snapshot {
        Snapshot {
            root: root.to_path_buf(),
            options,
            open: HashMap::new(),
            done: Vec::new(),
            dims: BTreeMap::new(),
            documents: BTreeMap::new(),
            rows: Vec::new(),
            normalizer,
            invoice_dates: HashMap::new(),
        }
    }

    fn part_paths(&self, dataset: &str, folder: &str, file: &str) -> (PathBuf, PathBuf) {
        (
            self.root.join(dataset).join(folder).join(format!("{file}.parquet")),
            self.root.join("csv").join(dataset).join(folder).join(format!("{file}.csv")),
        )
    }

    /// Takes one event of the extraction.
    pub fn handle(&mut self, event: &Event) -> Result<(), SinkError> {
        match event {
            Event::Page(page) => {
                if page.dataset == "documents" {
                    let path = self.root.join("documents").join(format!("{}.pdf", scope_name(&page.scope)));
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent).map_err(io_at(parent))?;
                    }
                    std::fs::write(&path, &page.body).map_err(io_at(&path))?;
                    let sha = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&page.body));
                    let report = FileReport {
                        path: relative(&self.root, &path.to_string_lossy()),
                        rows: 0,
                        bytes: page.body.len() as u64,
                        sha256: crate::emulator::world::dice::hex(&sha),
                    };
                    self.documents.insert(page.scope.clone(), report);
                    return Ok(());
                }
                for schema in registry().iter().filter(|s| s.source_dataset() == page.dataset) {
                    self.take_page(schema, page)?;
                }
            }
            Event::Restart { dataset, scope, .. } => {
                for schema in registry().iter().filter(|s| s.source_dataset() == *dataset) {
                    if let Some(rejects) = self.dims.get_mut("rejects") {
                        rejects.remove(&format!("{}/{scope}", schema.name));
                    }
                    if let Some(writer) = self.open.remove(&(schema.name, scope.clone())) {
                        writer.abandon();
                    }
                    if let Some(d) = self.dims.get_mut(schema.name) {
                        d.remove(scope);
                    }
                }
            }
            Event::Done { dataset, scope, .. } => {
                for schema in registry().iter().filter(|s| s.source_dataset() == *dataset) {
                    if let Some(writer) = self.open.remove(&(schema.name, scope.clone())) {
                        let report = writer.finish().map_err(io_at(&self.root))?;
                        self.done.push((schema, scope.clone(), report));
                    }
                }
            }
        }
        Ok(())
    }

    /// Decodes a page into one dataset's rows and routes them to its file or its buffer.
    fn take_page(&mut self, schema: &'static DatasetSchema, page: &crate::api::paging::Page) -> Result<(), SinkError> {
        let origin = Origin { scope: &page.scope, page: page.number };
        // Items decode on every core; collecting keeps them in page order.
        let decoded: Vec<_> = page
            .items
            .par_iter()
            .enumerate()
            .map(|(record, span)| decode_item(schema, &page.body[span.clone()], origin, record))
            .collect();
        self.rows.clear();
        for (result, span) in decoded.into_iter().zip(&page.items) {
            match result {
                Ok(rows) => self.rows.extend(rows),
                Err(e) if self.options.rejects => self.reject(&e, &page.body[span.clone()]),
                Err(e) => return Err(e.into()),
            }
        }
        if schema.name == "invoices" {
            self.remember_invoices(schema);
        }
        if let Some(normalizer) = self.normalizer.as_mut() {
            let invoice = self.invoice_dates.get(&page.scope.to_uppercase()).copied();
            for row in self.rows.iter_mut() {
                normalizer.apply(schema, row, invoice).map_err(|e| {
                    SinkError::Fx(format!("dataset {}, scope {}, page {}: {e}", schema.name, page.scope, page.number))
                })?;
            }
        }
        if is_dimension(schema) {
            self.dims.entry(schema.name).or_default().entry(page.scope.clone()).or_default().append(&mut self.rows);
            return Ok(());
        }
        let key = (schema.name, page.scope.clone());
        if !self.open.contains_key(&key) {
            let (parquet, csv) = self.part_paths(schema.name, "_parts", &format!("part-{}", scope_name(&page.scope)));
            let writer = PartWriter::create(schema, &parquet, &csv, self.options.csv_bom).map_err(io_at(&parquet))?;
            self.open.insert(key.clone(), writer);
        }
        if let Some(writer) = self.open.get_mut(&key) {
            for row in self.rows.drain(..) {
                writer.push(row).map_err(io_at(&self.root))?;
            }
        }
        Ok(())
    }

    /// Keeps a record that could not be decoded, with where it was and why.
    fn reject(&mut self, error: &RowError, item: &[u8]) {
        tracing::warn!(event = "record_rejected", dataset = %error.dataset, scope = %error.scope, page = error.page, record = error.record, field = %error.field, reason = %error.reason);
        let row = vec![
            Cell::Str(error.dataset.clone()),
            Cell::Str(error.scope.clone()),
            Cell::Int(i64::from(error.page)),
            Cell::Int(error.record as i64),
            Cell::Str(error.field.clone()),
            Cell::Str(error.column.clone()),
            Cell::Str(error.reason.clone()),
            Cell::Str(String::from_utf8_lossy(item).into_owned()),
        ];
        let key = format!("{}/{}", error.dataset, error.scope);
        self.dims.entry("rejects").or_default().entry(key).or_default().push(row);
    }

    /// Notes each invoice's dates, which the rows of its line items are converted with.
    fn remember_invoices(&mut self, schema: &DatasetSchema) {
        let (Some(id), Some(date), Some(end)) =
            (schema.column("id"), schema.column("invoice_date"), schema.column("billing_period_end_date"))
        else {
            return;
        };
        for row in &self.rows {
            if let Cell::Str(invoice) = &row[id] {
                let dates = InvoiceDates { invoice_date: day_of(&row[date]), period_end: day_of(&row[end]) };
                self.invoice_dates.insert(invoice.to_uppercase(), dates);
            }
        }
    }

    fn write_dimension(
        &self,
        schema: &'static DatasetSchema,
        folder: &str,
        rows: Vec<&Vec<Cell>>,
    ) -> Result<PartReport, SinkError> {
        let (parquet, csv) = self.part_paths(schema.name, folder, "part-00000");
        let mut writer = PartWriter::create(schema, &parquet, &csv, self.options.csv_bom).map_err(io_at(&parquet))?;
        for row in rows {
            writer.push(row.clone()).map_err(io_at(&parquet))?;
        }
        writer.finish().map_err(io_at(&parquet))
    }

    /// Writes the dimensions, places every file in its partition and writes `manifest.json`.
    pub fn finish(mut self, source: BTreeMap<&'static str, String>) -> Result<Manifest, SinkError> {
        if let Some(missing) = self.normalizer.as_ref().map(Normalizer::missing).filter(|m| !m.is_empty()) {
            let list: Vec<String> = missing.iter().map(|(currency, date)| format!("{currency} on {date}")).collect();
            return Err(SinkError::Fx(format!(
                "the rate table has no rate into the reporting currency for {} (currency, date) pairs: {}",
                list.len(),
                list.join(", ")
            )));
        }
        let mut placed: Vec<(&'static DatasetSchema, PartReport)> = Vec::new();
        let mut invoice_months: BTreeMap<String, String> = BTreeMap::new();
        let dims = std::mem::take(&mut self.dims);
        for (name, by_scope) in &dims {
            let Some(schema) = schema(name) else { continue };
            // Scope order, then arrival order: the same input gives the same file.
            let rows: Vec<&Vec<Cell>> = by_scope.values().flatten().collect();
            match schema.partition {
                Partition::RowMonth(column) => {
                    let at = schema.column(column).unwrap_or(0);
                    let id = schema.column("id");
                    let mut by_month: BTreeMap<String, Vec<&Vec<Cell>>> = BTreeMap::new();
                    for row in rows {
                        let month = month_of(&row[at], schema.columns[at].ty).unwrap_or_else(|| "unknown".into());
                        if let Some(Cell::Str(invoice)) = id.map(|i| &row[i]) {
                            invoice_months.insert(invoice.to_uppercase(), month.clone());
                        }
                        by_month.entry(month).or_default().push(row);
                    }
                    for (month, rows) in by_month {
                        placed.push((schema, self.write_dimension(schema, &format!("period={month}"), rows)?));
                    }
                }
                _ => placed.push((schema, self.write_dimension(schema, "", rows)?)),
            }
        }
        for (schema, scope, mut report) in std::mem::take(&mut self.done) {
            let month = match schema.partition {
                Partition::Invoice => invoice_months.get(&scope.to_uppercase()).cloned(),
                _ => report.month.clone(),
            }
            .unwrap_or_else(|| "unknown".into());
            for file in &mut report.files {
                let from = PathBuf::from(&file.path);
                let to =
                    from.parent().and_then(Path::parent).map(|d| d.join(format!("period={month}"))).unwrap_or_default();
                std::fs::create_dir_all(&to).map_err(io_at(&to))?;
                let target = to.join(from.file_name().unwrap_or_default());
                std::fs::rename(&from, &target).map_err(io_at(&target))?;
                file.path = target.to_string_lossy().into_owned();
            }
            placed.push((schema, report));
        }
        for schema in registry() {
            for dir in
                [self.root.join(schema.name).join("_parts"), self.root.join("csv").join(schema.name).join("_parts")]
            {
                let _ = std::fs::remove_dir(dir);
            }
        }

        let mut datasets: BTreeMap<String, DatasetEntry> = BTreeMap::new();
        let mut sums: BTreeMap<&str, Totals> = BTreeMap::new();
        let mut files = Vec::new();
        for (schema, report) in placed {
            let entry = datasets.entry(schema.name.to_owned()).or_insert_with(|| DatasetEntry {
                schema_version: schema.version,
                rows: 0,
                control_totals: BTreeMap::new(),
            });
            entry.rows += report.rows;
            let totals = sums.entry(schema.name).or_default();
            for (currency, values) in report.totals {
                let sum = totals.entry(currency).or_insert_with(|| vec![0; values.len()]);
                for (s, v) in sum.iter_mut().zip(values) {
                    *s += v;
                }
            }
            for mut file in report.files {
                file.path = relative(&self.root, &file.path);
                files.push(file);
            }
        }
        for (name, totals) in sums {
            let Some(schema) = schema(name) else { continue };
            let entry = datasets.entry(name.to_owned()).or_insert_with(|| DatasetEntry {
                schema_version: schema.version,
                rows: 0,
                control_totals: BTreeMap::new(),
            });
            for (currency, values) in totals {
                let mut columns = BTreeMap::new();
                for (column, value) in schema.totals.iter().zip(values) {
                    let scale = match schema.column(column).map(|i| schema.columns[i].ty) {
                        Some(crate::model::schema::ColType::Decimal { scale }) => scale,
                        _ => 0,
                    };
                    columns.insert((*column).to_owned(), fixed_point(value, scale));
                }
                entry.control_totals.insert(currency, columns);
            }
        }
        if !self.documents.is_empty() {
            let count = self.documents.len() as u64;
            datasets.insert(
                "documents".into(),
                DatasetEntry { schema_version: 1, rows: count, control_totals: BTreeMap::new() },
            );
            files.extend(self.documents.into_values());
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let manifest = Manifest { format: 1, source, datasets, files };
        let path = self.root.join("manifest.json");
        let mut text = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| SinkError::Io { path: path.clone(), source: io::Error::other(e) })?;
        text.push(b'\n');
        std::fs::write(&path, text).map_err(io_at(&path))?;
        Ok(manifest)
    }
}

/// Moves a finished staging folder to `out/<run_id>` and then points `out/LATEST` at it; a
/// crash at any instant leaves either the previous snapshot or the new one in view, never half.
pub fn publish(staging: &Path, out: &Path, run_id: &str) -> io::Result<PathBuf> {
    sync_dir(staging)?;
    let target = out.join(run_id);
    std::fs::rename(staging, &target)?;
    sync_dir(out)?;
    let latest = out.join(".LATEST.tmp");
    std::fs::write(&latest, format!("{run_id}\n"))?;
    std::fs::File::open(&latest)?.sync_all()?;
    std::fs::rename(&latest, out.join("LATEST"))?;
    sync_dir(out)?;
    Ok(target)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
