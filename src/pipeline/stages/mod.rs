//! The stages of a run, page by page, and the snapshot they build: each page is decoded into one
//! record batch per dataset it fills (`normalize`), given its reporting-currency arrays, matched
//! to what was sold (`matching`, which adds the match arrays), observed by the tie-out
//! (`reconcile`) and handed to the sink's part files;
//! at the end the dimensions and computed datasets are written, every file placed in its
//! partition and `manifest.json` written, in a hidden staging folder that
//! [`crate::sink::staging::Staging`] puts in place in one step.
//!
//! Line items are written as they stream in, one file pair per sequence (`part-<scope>`), so that
//! concurrent extraction still gives deterministic files; they move into `period=YYYY-MM/` at the
//! end, when every invoice's billing period is known. The small dimensions are buffered and
//! written in scope order. Identical input gives byte-identical data files and manifest.

mod finish;
mod lines;
mod page;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use crate::matching::{LineKeys, Match, MatchIndex};
use crate::model::page::{Event, ExportLineage};
use crate::normalize::fx::{InvoiceDates, Normalizer, day_of};
use crate::normalize::items::{Checks, KnownFields, Origin, RowError, decode_page};
use crate::reconcile::{self, Ledger, Observer};
use crate::sink::layout;
use crate::sink::manifest::{DatasetEntry, Drift, InvoiceLineage, Manifest};
use crate::sink::part::{PartReport, PartWriter, Totals, month_of};
use crate::sink::writer::FileReport;
use crate::tabular::batch::{ColumnBuilder, Columns, rows_of, with_columns};
use crate::tabular::{Cell, Dataset, DatasetSchema, MatchColumn, Partition, ScopeKind, Source, Value, registry};
use arrow_array::RecordBatch;
use rayon::prelude::*;
use sha2::Digest;

/// Why the snapshot failed.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// A value could not be decoded.
    #[error(transparent)]
    Data(#[from] Box<RowError>),
    /// Amounts could not be converted into the reporting currency.
    #[error("{0}")]
    Fx(String),
    /// A page's values do not fit their columns' arrays (a decimal beyond 38 digits).
    #[error("{0}")]
    Batch(String),
    /// The per-customer charges could not be summed or marked up.
    #[error(transparent)]
    Rebill(#[from] crate::rebill::RebillError),
    /// A charge line could not be written as FOCUS rows.
    #[error(transparent)]
    Focus(#[from] crate::focus::FocusError),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StageError + '_ {
    move |source| StageError::Io { path: path.to_path_buf(), source }
}

/// Options of the output.
#[derive(Debug, Clone, Default)]
pub struct StageOptions {
    /// How the tie-out judges differences.
    pub rules: reconcile::Rules,
    /// How CSV files are written; none: no CSV.
    pub csv: Option<crate::sink::writer::CsvFormat>,
    /// Keep going past records that cannot be decoded, writing them to `rejects` with the reason.
    pub rejects: bool,
    /// Keep the members no column reads in each dataset's `unknown_fields` column.
    pub keep_unknown_fields: bool,
    /// Signs `manifest.json` (none: unsigned).
    pub signing_key: Option<crate::sink::signature::SigningKey>,
    /// The partner's markup table for `customer_charges` (none: no resale amounts).
    pub markup: Option<crate::rebill::Markup>,
    /// Write a statement per customer and billing period (`statements/`).
    pub statements: bool,
    /// What the `focus` rows say of the billing account.
    pub focus: crate::focus::FocusOptions,
}

/// The attributes a v2 export line of a dataset may be promised: the documented list of the
/// `full` set (a `basic` export's lines are held to its part of it when the sequence ends). Only
/// daily rated usage has a published list; reconciliation promises nothing.
fn promised_attributes(dataset: Dataset) -> &'static [&'static str] {
    static USAGE: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    match crate::model::v2::ExportKind::of_dataset(dataset) {
        Some((crate::model::v2::ExportKind::Usage, _)) => {
            USAGE.get_or_init(|| crate::model::v2::USAGE.iter().map(|a| a.name).collect())
        }
        _ => &[],
    }
}

/// Whether the `basic` attribute set has an attribute of the published list.
fn basic_attribute(name: &str) -> bool {
    crate::model::v2::USAGE.iter().any(|a| a.basic && a.name == name)
}

/// The first 16 bytes of the SHA-256 of an item.
fn short_digest(item: &[u8]) -> [u8; 16] {
    let digest = sha2::Sha256::digest(item);
    let mut short = [0u8; 16];
    short.copy_from_slice(&digest[..16]);
    short
}

/// The key of a sequence in the manifest's `exports`: `dataset/scope`.
fn export_key(dataset: Dataset, scope: &str) -> String {
    format!("{dataset}/{scope}")
}

/// A snapshot being written into a staging folder.
pub struct Snapshot {
    root: PathBuf,
    options: StageOptions,
    open: HashMap<(Dataset, String), PartWriter<'static>>,
    done: Vec<(&'static DatasetSchema, String, PartReport)>,
    dims: BTreeMap<Dataset, BTreeMap<String, Vec<Vec<Cell>>>>,
    /// Files kept as served (statements, rate files), by dataset and scope.
    kept: BTreeMap<(Dataset, String), FileReport>,
    normalizer: Option<Normalizer>,
    invoice_dates: HashMap<String, InvoiceDates>,
    /// The first 16 bytes of the SHA-256 of each item of the current page.
    item_digests: Vec<[u8; 16]>,
    index: Option<MatchIndex>,
    lines: HashMap<(Dataset, String), Lines>,
    /// SHA-256 of the items of each invoice-scoped sequence so far.
    content: HashMap<(Dataset, String), sha2::Sha256>,
    exports: BTreeMap<String, ExportLineage>,
    /// The sequences some record of which went to `rejects`.
    rejected: std::collections::HashSet<(Dataset, String)>,
    /// What the tie-out observes of each sequence, and what the v2 export could not serve yet.
    ledger: Ledger,
    charges: crate::rebill::Charges,
    /// The FOCUS rows of the charges, and their sums per invoice.
    focus: crate::focus::Focus,
    /// What each extracted dataset's columns read.
    known: HashMap<Dataset, KnownFields>,
    /// Schema drift per sequence (dropped when it restarts).
    drift: HashMap<(Dataset, String), Drift>,
    /// Time spent in each stage, as this thread sees it (parallel stages count their wall time).
    stages: StageTimes,
}

/// Time spent per stage of the snapshot, logged when it finishes (`stage_ms`).
#[derive(Debug, Default, Clone, Copy)]
struct StageTimes {
    digest: std::time::Duration,
    decode: std::time::Duration,
    normalize: std::time::Duration,
    matching: std::time::Duration,
    write: std::time::Duration,
}

/// What a sequence of line items has shown so far (dropped when it restarts).
#[derive(Debug, Default)]
struct Lines {
    /// Rows seen (the next row's position).
    position: u64,
    /// The next ordinal of each key digest: rows with equal keys are told apart by their order
    /// of arrival (the `-N` of `row_key`).
    ordinals: HashMap<[u8; 16], u32>,
    /// Per item digest, the key digest and ordinal of its first copy, to spot an item served
    /// twice and name the `row_key` of the first; emptied when the sequence is complete, so that
    /// memory does not grow with the lines of a run.
    seen: HashMap<[u8; 16], ([u8; 16], u32)>,
    /// Distinct items of a complete sequence.
    distinct: u64,
    /// Rows per match status.
    statuses: BTreeMap<&'static str, u64>,
}

fn is_dimension(schema: &DatasetSchema) -> bool {
    matches!(schema.partition, Partition::None | Partition::RowMonth(_))
}

fn relative(root: &Path, path: &str) -> String {
    Path::new(path).strip_prefix(root).map_or_else(|_| path.to_owned(), |p| p.to_string_lossy().replace('\\', "/"))
}

impl Snapshot {
    /// A snapshot written under `root` (the staging folder).
    pub fn new(root: &Path, options: StageOptions, normalizer: Option<Normalizer>) -> Snapshot {
        let focus = crate::focus::Focus::new(options.focus.clone());
        Snapshot {
            root: root.to_path_buf(),
            options,
            open: HashMap::new(),
            done: Vec::new(),
            dims: BTreeMap::new(),
            kept: BTreeMap::new(),
            normalizer,
            invoice_dates: HashMap::new(),
            item_digests: Vec::new(),
            index: None,
            lines: HashMap::new(),
            content: HashMap::new(),
            exports: BTreeMap::new(),
            rejected: std::collections::HashSet::new(),
            ledger: Ledger::default(),
            charges: crate::rebill::Charges::default(),
            focus,
            known: HashMap::new(),
            drift: HashMap::new(),
            stages: StageTimes::default(),
        }
    }

    /// A writer of a part's Parquet file and its CSV file (if CSV is written), in the staging
    /// folder; and the Parquet file's path.
    fn part_writer(
        &self,
        schema: &'static crate::tabular::DatasetSchema,
        folder: &str,
        part: &str,
    ) -> Result<(PartWriter<'static>, PathBuf), StageError> {
        let csv = self.options.csv;
        let (parquet, csv_file) = layout::part_files(schema.name, folder, part, csv.map(|c| c.compression));
        let parquet = self.root.join(parquet);
        let csv_file = csv_file.map(|f| self.root.join(f));
        let csv = csv_file.as_deref().zip(csv);
        let writer = PartWriter::create(schema, &parquet, csv).map_err(io_at(&parquet))?;
        Ok((writer, parquet))
    }

    /// Writes a file kept as served into the snapshot, for the manifest.
    fn keep_file(&mut self, path: &Path, body: &[u8], scope: String, dataset: Dataset) -> Result<(), StageError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_at(parent))?;
        }
        std::fs::write(path, body).map_err(io_at(path))?;
        let report = FileReport {
            path: relative(&self.root, &path.to_string_lossy()),
            rows: 0,
            bytes: body.len() as u64,
            sha256: crate::model::hex(&sha2::Sha256::digest(body)),
        };
        self.kept.insert((dataset, scope), report);
        Ok(())
    }

    /// Whether some record of a sequence went to `rejects` (then it must not stand in for a
    /// fetch: the next run asks the API again).
    pub fn rejected_from(&self, dataset: Dataset, scope: &str) -> bool {
        self.rejected.contains(&(dataset, scope.to_owned()))
    }

    /// Takes one event of the extraction.
    pub fn handle(&mut self, event: &Event) -> Result<(), StageError> {
        match event {
            Event::Page(page) => {
                let _page =
                    tracing::info_span!("page", dataset = %page.dataset, scope = %page.scope, number = page.number)
                        .entered();
                // Every item is digested, for the lineage and to spot an item served twice: by the
                // first dataset decoding the page (while the item is in cache), or here.
                let mut schemas = page.dataset.tables_filled();
                match schemas.next() {
                    Some(schema) => self.take_page(schema, page, true)?,
                    None => {
                        let started = std::time::Instant::now();
                        self.item_digests =
                            page.items.par_iter().map(|span| short_digest(&page.body[span.clone()])).collect();
                        self.stages.digest += started.elapsed();
                    }
                }
                if page.dataset.scope_kind() == ScopeKind::Invoice {
                    let hasher = self.content.entry((page.dataset, page.scope.to_uppercase())).or_default();
                    for digest in &self.item_digests {
                        hasher.update(digest);
                    }
                }
                if page.dataset == Dataset::FxRates
                    && let Some(normalizer) = self.normalizer.as_mut()
                {
                    normalizer
                        .add_partner_center_month(&page.scope, &page.body)
                        .map_err(|e| StageError::Fx(e.to_string()))?;
                }
                if page.dataset.kind() == crate::tabular::Kind::File {
                    let path = self.root.join(layout::kept_file(page.dataset, &page.scope));
                    self.keep_file(&path, &page.body, page.scope.clone(), page.dataset)?;
                    return Ok(());
                }
                for schema in schemas {
                    self.take_page(schema, page, false)?;
                }
            }
            Event::Restart { dataset, scope, .. } => {
                self.drift.remove(&(*dataset, scope.clone()));
                self.content.remove(&(*dataset, scope.to_uppercase()));
                self.exports.remove(&export_key(*dataset, scope));
                for schema in dataset.tables_filled() {
                    for computed in [Dataset::Rejects, Dataset::MatchExceptions] {
                        if let Some(rows) = self.dims.get_mut(&computed) {
                            rows.remove(&format!("{}/{scope}", schema.name));
                        }
                    }
                    self.lines.remove(&(schema.name, scope.clone()));
                    self.ledger.restart(schema.name, scope);
                    self.charges.restart(schema.name, scope);
                    self.focus.restart(schema.name, scope);
                    for key in
                        [(schema.name, scope.clone()), (Dataset::Focus, crate::focus::part_scope(schema.name, scope))]
                    {
                        if let Some(writer) = self.open.remove(&key) {
                            writer.abandon();
                        }
                    }
                    if let Some(d) = self.dims.get_mut(&schema.name) {
                        d.remove(scope);
                    }
                }
            }
            Event::NotReady { dataset, scope, detail } => self.ledger.not_ready(*dataset, scope, detail),
            Event::Done { dataset, scope, export, .. } => {
                if let Some(drift) = self.drift.get_mut(&(*dataset, scope.clone())) {
                    let basic = export.as_deref().is_some_and(|e| e.attribute_set == "basic");
                    drift.missing.retain(|attribute, _| !basic || basic_attribute(attribute));
                    for (attribute, lines) in &drift.missing {
                        tracing::warn!(event = "missing_attribute", dataset = %dataset, scope = %scope, attribute = %attribute, lines);
                    }
                }
                let key = export_key(*dataset, scope);
                match export {
                    Some(lineage) => self.exports.insert(key, (**lineage).clone()),
                    None => self.exports.remove(&key),
                };
                for schema in dataset.tables_filled() {
                    if let Some(lines) = self.lines.get_mut(&(schema.name, scope.clone())) {
                        lines.distinct = std::mem::take(&mut lines.seen).len() as u64;
                        lines.ordinals = HashMap::new();
                    }
                    if let Some(writer) = self.open.remove(&(schema.name, scope.clone())) {
                        let report = writer.finish().map_err(io_at(&self.root))?;
                        self.done.push((schema, scope.clone(), report));
                    }
                    let focus = crate::focus::part_scope(schema.name, scope);
                    if let (Some(writer), Some(focus_schema)) =
                        (self.open.remove(&(Dataset::Focus, focus.clone())), Dataset::Focus.schema())
                    {
                        let report = writer.finish().map_err(io_at(&self.root))?;
                        self.done.push((focus_schema, focus, report));
                    }
                }
            }
        }
        Ok(())
    }
}
