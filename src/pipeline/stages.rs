//! The stages of a run, page by page, and the snapshot they build: each page is decoded into its
//! datasets' rows (`normalize`), converted into the reporting currency, matched to what was
//! sold (`matching`), observed by the tie-out (`reconcile`) and handed to the sink's part files;
//! at the end the dimensions and computed datasets are written, every file placed in its
//! partition and `manifest.json` written, in a hidden staging folder that
//! [`crate::sink::staging::Staging`] puts in place in one step.
//!
//! Line items are written as they stream in, one file pair per sequence (`part-<scope>`), so that
//! concurrent extraction still gives deterministic files; they move into `period=YYYY-MM/` at the
//! end, when every invoice's billing period is known. The small dimensions are buffered and
//! written in scope order. Identical input gives byte-identical data files and manifest.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use crate::matching::{Match, MatchIndex};
use crate::model::page::scope_name;
use crate::model::page::{Event, ExportLineage};
use crate::normalize::fx::{InvoiceDates, Normalizer, day_of};
use crate::normalize::rows::{Checks, KnownFields, Origin, RowError, decode_item};
use crate::reconcile::{self, Ledger, Observer};
use crate::sink::manifest::{DatasetEntry, Drift, InvoiceLineage, Manifest};
use crate::sink::part::{PartReport, PartWriter, Totals, month_of};
use crate::sink::writer::FileReport;
use crate::tabular::text::fixed_point;
use crate::tabular::{Cell, Dataset, DatasetSchema, MatchColumn, Partition, ScopeKind, Source, registry};
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
    /// Start CSV files with a UTF-8 byte-order mark (Excel).
    pub csv_bom: bool,
    /// Keep going past records that cannot be decoded, writing them to `rejects` with the reason.
    pub rejects: bool,
    /// Keep the members no column reads in each dataset's `unknown_fields` column.
    pub keep_unknown_fields: bool,
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
    documents: BTreeMap<String, FileReport>,
    rows: Vec<Vec<Cell>>,
    normalizer: Option<Normalizer>,
    invoice_dates: HashMap<String, InvoiceDates>,
    /// The item each decoded row came from (its index in the page).
    row_items: Vec<usize>,
    /// The first 16 bytes of the SHA-256 of each item of the current page.
    item_digests: Vec<[u8; 16]>,
    index: Option<MatchIndex>,
    lines: HashMap<(Dataset, String), Lines>,
    /// SHA-256 of the items of each invoice-scoped sequence so far.
    content: HashMap<(Dataset, String), sha2::Sha256>,
    exports: BTreeMap<String, ExportLineage>,
    /// What the tie-out observes of each sequence, and what the v2 export could not serve yet.
    ledger: Ledger,
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
    /// Digests of items seen, to spot an item served twice; emptied when the sequence is
    /// complete, so that memory does not grow with the lines of a run.
    seen: std::collections::HashSet<[u8; 16]>,
    /// Distinct items of a complete sequence.
    distinct: u64,
    /// Rows per match status.
    statuses: BTreeMap<&'static str, u64>,
}

fn text(schema: &DatasetSchema, row: &[Cell], column: &str) -> Cell {
    match schema.column(column).map(|i| &row[i]) {
        Some(Cell::Str(s)) => Cell::Str(s.clone()),
        _ => Cell::Null,
    }
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
            row_items: Vec::new(),
            item_digests: Vec::new(),
            index: None,
            lines: HashMap::new(),
            content: HashMap::new(),
            exports: BTreeMap::new(),
            ledger: Ledger::default(),
            known: HashMap::new(),
            drift: HashMap::new(),
            stages: StageTimes::default(),
        }
    }

    fn part_paths(&self, dataset: Dataset, folder: &str, file: &str) -> (PathBuf, PathBuf) {
        (
            self.root.join(dataset.name()).join(folder).join(format!("{file}.parquet")),
            self.root.join("csv").join(dataset.name()).join(folder).join(format!("{file}.csv")),
        )
    }

    /// Takes one event of the extraction.
    pub fn handle(&mut self, event: &Event) -> Result<(), StageError> {
        match event {
            Event::Page(page) => {
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
                if page.dataset == Dataset::Documents {
                    let path =
                        self.root.join(Dataset::Documents.name()).join(format!("{}.pdf", scope_name(&page.scope)));
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent).map_err(io_at(parent))?;
                    }
                    std::fs::write(&path, &page.body).map_err(io_at(&path))?;
                    let sha = sha2::Sha256::digest(&page.body);
                    let report = FileReport {
                        path: relative(&self.root, &path.to_string_lossy()),
                        rows: 0,
                        bytes: page.body.len() as u64,
                        sha256: crate::model::hex(&sha),
                    };
                    self.documents.insert(page.scope.clone(), report);
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
                    if let Some(writer) = self.open.remove(&(schema.name, scope.clone())) {
                        writer.abandon();
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
                    }
                    if let Some(writer) = self.open.remove(&(schema.name, scope.clone())) {
                        let report = writer.finish().map_err(io_at(&self.root))?;
                        self.done.push((schema, scope.clone(), report));
                    }
                }
            }
        }
        Ok(())
    }

    /// Decodes a page into one dataset's rows and routes them to its file or its buffer; with
    /// `digest`, also digests its items into `item_digests`.
    fn take_page(
        &mut self,
        schema: &'static DatasetSchema,
        page: &crate::model::page::Page,
        digest: bool,
    ) -> Result<(), StageError> {
        let origin = Origin { scope: &page.scope, page: page.number };
        let started = std::time::Instant::now();
        // Unread members are looked for once per item: in the first dataset that decodes the page.
        let keep = self.options.keep_unknown_fields;
        let known = &*self.known.entry(page.dataset).or_insert_with(|| KnownFields::of(page.dataset, keep));
        let promised = match page.paging {
            crate::model::page::Paging::Lines => promised_attributes(page.dataset),
            _ => &[],
        };
        let checks = digest.then_some(Checks { known, promised });
        // Items decode on every core; collecting keeps them in page order.
        let decoded: Vec<_> = page
            .items
            .par_iter()
            .enumerate()
            .map(|(record, span)| {
                let text = &page.body[span.clone()];
                (digest.then(|| short_digest(text)), decode_item(schema, text, origin, record, checks))
            })
            .collect();
        self.rows.clear();
        self.row_items.clear();
        if digest {
            self.item_digests.clear();
        }
        for (index, ((item_digest, result), span)) in decoded.into_iter().zip(&page.items).enumerate() {
            self.item_digests.extend(item_digest);
            match result {
                Ok(decoded) => {
                    self.row_items.extend(std::iter::repeat_n(index, decoded.rows.len()));
                    self.rows.extend(decoded.rows);
                    for field in decoded.unknown {
                        let seen = self.drift.entry((page.dataset, page.scope.clone())).or_default();
                        if !seen.unknown.contains_key(&field) {
                            tracing::warn!(event = "unknown_field", dataset = %page.dataset, scope = %page.scope, field = %field, page = page.number, record = index);
                        }
                        *seen.unknown.entry(field).or_default() += 1;
                    }
                    // Judged against the attribute set when the sequence ends and names it.
                    for attribute in decoded.missing {
                        let seen = self.drift.entry((page.dataset, page.scope.clone())).or_default();
                        *seen.missing.entry(attribute.to_owned()).or_default() += 1;
                    }
                }
                Err(e) if self.options.rejects => self.reject(&e, &page.body[span.clone()]),
                Err(e) => return Err(e.into()),
            }
        }
        if schema.name == Dataset::Invoices {
            self.remember_invoices(schema);
        }
        let decoded_at = std::time::Instant::now();
        self.stages.decode += decoded_at - started;
        if let Some(normalizer) = self.normalizer.as_mut() {
            let invoice = self.invoice_dates.get(&page.scope.to_uppercase()).copied();
            for row in self.rows.iter_mut() {
                normalizer.apply(schema, row, invoice).map_err(|e| {
                    StageError::Fx(format!("dataset {}, scope {}, page {}: {e}", schema.name, page.scope, page.number))
                })?;
            }
        }
        let normalized_at = std::time::Instant::now();
        self.stages.normalize += normalized_at - decoded_at;
        if is_dimension(schema) {
            self.dims.entry(schema.name).or_default().entry(page.scope.clone()).or_default().append(&mut self.rows);
            return Ok(());
        }
        if schema.name.is_line_item() {
            self.check_lines(schema, page);
        }
        let matched_at = std::time::Instant::now();
        self.stages.matching += matched_at - normalized_at;
        let key = (schema.name, page.scope.clone());
        if !self.open.contains_key(&key) {
            let (parquet, csv) = self.part_paths(schema.name, "_parts", &format!("part-{}", scope_name(&page.scope)));
            let writer = PartWriter::create(schema, &parquet, &csv, self.options.csv_bom).map_err(io_at(&parquet))?;
            self.open.insert(key.clone(), writer);
        }
        if let Some(writer) = self.open.get_mut(&key) {
            writer.push_all(std::mem::take(&mut self.rows)).map_err(io_at(&self.root))?;
        }
        self.stages.write += matched_at.elapsed();
        Ok(())
    }

    /// Matches a page's line items, spots items served twice, and keeps the invoice sums.
    fn check_lines(&mut self, schema: &'static DatasetSchema, page: &crate::model::page::Page) {
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
        let Some(index) = self.index.as_ref() else { return };
        let matches: Vec<Match> = self.rows.par_iter().map(|row| index.match_row(schema, row)).collect();
        let key = (schema.name, page.scope.clone());
        let mut exceptions = Vec::new();
        let observer = Observer::of(schema);
        let sums = self.ledger.sums_mut(schema.name, &page.scope);
        let lines = self.lines.entry(key).or_default();
        for ((row, mut m), item) in self.rows.iter_mut().zip(matches).zip(&self.row_items) {
            let position = lines.position;
            lines.position += 1;
            *lines.statuses.entry(m.status).or_default() += 1;
            let exceptional = m.is_exception();
            let duplicate = !lines.seen.insert(self.item_digests[*item]);
            let entitlement = if exceptional || duplicate { m.entitlement.clone() } else { None };
            for (i, column) in schema.columns.iter().enumerate() {
                let Source::Match(which) = column.source else { continue };
                // Each match column appears once: its value moves into the row.
                let value = match which {
                    MatchColumn::Status => Some(m.status.to_owned()),
                    MatchColumn::Rule => Some(m.rule.to_owned()),
                    MatchColumn::Order => m.order.take(),
                    MatchColumn::Subscription => m.subscription.take(),
                    MatchColumn::Entitlement => m.entitlement.take(),
                };
                row[i] = value.map_or(Cell::Null, Cell::Str);
            }
            let exception = |reason: &str, rule: &str, failed: Option<String>| {
                let subscription = match schema.column("syndication_partner_subscription_number") {
                    Some(_) => text(schema, row, "syndication_partner_subscription_number"),
                    None => text(schema, row, "subscription_id"),
                };
                vec![
                    Cell::Str(schema.name.name().to_owned()),
                    Cell::Str(page.scope.clone()),
                    Cell::Int(position as i64),
                    Cell::Str(reason.to_owned()),
                    Cell::Str(rule.to_owned()),
                    text(schema, row, "customer_id"),
                    text(schema, row, "order_id"),
                    subscription,
                    entitlement.clone().map_or(Cell::Null, Cell::Str),
                    failed.map_or(Cell::Null, Cell::Str),
                ]
            };
            if exceptional {
                exceptions.push(exception(m.status, m.rule, m.failed_key.take()));
            }
            if duplicate {
                exceptions.push(exception("duplicate_line", "item", None));
                continue;
            }
            observer.observe(sums, row);
        }
        if !exceptions.is_empty() {
            let bucket = format!("{}/{}", schema.name, page.scope);
            self.dims.entry(Dataset::MatchExceptions).or_default().entry(bucket).or_default().extend(exceptions);
        }
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
        self.dims.entry(Dataset::Rejects).or_default().entry(key).or_default().push(row);
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
                let dates = InvoiceDates {
                    invoice_date: day_of(&row[date], schema.columns[date].ty),
                    period_end: day_of(&row[end], schema.columns[end].ty),
                };
                self.invoice_dates.insert(invoice.to_uppercase(), dates);
            }
        }
    }

    fn write_dimension(
        &self,
        schema: &'static DatasetSchema,
        folder: &str,
        rows: Vec<&Vec<Cell>>,
    ) -> Result<PartReport, StageError> {
        let (parquet, csv) = self.part_paths(schema.name, folder, "part-00000");
        let mut writer = PartWriter::create(schema, &parquet, &csv, self.options.csv_bom).map_err(io_at(&parquet))?;
        for row in rows {
            writer.push(row.clone()).map_err(io_at(&parquet))?;
        }
        writer.finish().map_err(io_at(&parquet))
    }

    /// Writes the dimensions, places every file in its partition and writes `manifest.json`.
    pub fn finish(mut self, source: BTreeMap<String, String>) -> Result<Manifest, StageError> {
        let finishing = std::time::Instant::now();
        if let Some(missing) = self.normalizer.as_ref().map(Normalizer::missing).filter(|m| !m.is_empty()) {
            let list: Vec<String> = missing.iter().map(|(currency, date)| format!("{currency} on {date}")).collect();
            return Err(StageError::Fx(format!(
                "the rate table has no rate into the reporting currency for {} (currency, date) pairs: {}",
                list.len(),
                list.join(", ")
            )));
        }
        let mut placed: Vec<(&'static DatasetSchema, PartReport)> = Vec::new();
        let mut invoice_months: BTreeMap<String, String> = BTreeMap::new();
        if let Some(invoices) = self.dims.get(&Dataset::Invoices) {
            let summaries = self.dims.get(&Dataset::InvoiceSummaries).into_iter().flat_map(|s| s.values().flatten());
            let checks = reconcile::tie_out(&self.ledger, invoices.values().flatten(), summaries, &self.options.rules);
            // One bucket, in the tie-out's own order.
            let rows: Vec<Vec<Cell>> = checks.iter().map(reconcile::Check::cells).collect();
            self.dims.insert(Dataset::Reconciliation, BTreeMap::from([(String::new(), rows)]));
        }
        let mut checks: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for ((dataset, _), lines) in &self.lines {
            let counts = checks.entry(format!("match:{dataset}")).or_default();
            for (status, n) in &lines.statuses {
                *counts.entry((*status).to_owned()).or_default() += n;
            }
        }
        if let (Some(rows), Some(schema)) = (self.dims.get(&Dataset::Reconciliation), Dataset::Reconciliation.schema())
        {
            let status_at = schema.column("status").unwrap_or(0);
            let counts = checks.entry("tie_out".into()).or_default();
            for row in rows.values().flatten() {
                if let Cell::Str(status) = &row[status_at] {
                    *counts.entry(status.clone()).or_default() += 1;
                }
            }
        }
        let dims = std::mem::take(&mut self.dims);
        for (name, by_scope) in &dims {
            let Some(schema) = name.schema() else { continue };
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
            for dir in [
                self.root.join(schema.name.name()).join("_parts"),
                self.root.join("csv").join(schema.name.name()).join("_parts"),
            ] {
                let _ = std::fs::remove_dir(dir);
            }
        }

        let mut datasets: BTreeMap<String, DatasetEntry> = BTreeMap::new();
        let mut sums: BTreeMap<Dataset, Totals> = BTreeMap::new();
        let mut files = Vec::new();
        for (schema, report) in placed {
            let entry = datasets.entry(schema.name.to_string()).or_insert_with(|| DatasetEntry {
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
            let Some(schema) = name.schema() else { continue };
            let entry = datasets.entry(name.to_string()).or_insert_with(|| DatasetEntry {
                schema_version: schema.version,
                rows: 0,
                control_totals: BTreeMap::new(),
            });
            for (currency, values) in totals {
                let mut columns = BTreeMap::new();
                for (column, value) in schema.totals.iter().zip(values) {
                    let scale = match schema.column(column).map(|i| schema.columns[i].ty) {
                        Some(crate::tabular::ColType::Decimal { scale }) => scale,
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
                Dataset::Documents.to_string(),
                DatasetEntry { schema_version: 1, rows: count, control_totals: BTreeMap::new() },
            );
            files.extend(self.documents.into_values());
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        // By name: the content digest reads the datasets in that order.
        let mut by_invoice: BTreeMap<String, BTreeMap<&str, String>> = BTreeMap::new();
        for ((dataset, invoice), hasher) in std::mem::take(&mut self.content) {
            by_invoice.entry(invoice).or_default().insert(dataset.name(), crate::model::hex(&hasher.finalize()));
        }
        let exports = std::mem::take(&mut self.exports);
        let lineage = by_invoice
            .into_iter()
            .map(|(invoice, parts)| {
                let mut hasher = sha2::Sha256::new();
                let mut etags = BTreeMap::new();
                for (dataset, digest) in parts {
                    hasher.update(format!("{dataset}={digest}\n"));
                    if let Some(export) = exports.get(&format!("{dataset}/{invoice}")) {
                        etags.insert(dataset.to_owned(), export.etag.clone());
                    }
                }
                (invoice, InvoiceLineage { content_sha256: crate::model::hex(&hasher.finalize()), etags })
            })
            .collect();
        let not_ready = self.ledger.not_ready_list();
        let mut schema_drift: BTreeMap<String, Drift> = BTreeMap::new();
        for ((dataset, _), drift) in std::mem::take(&mut self.drift) {
            schema_drift.entry(dataset.to_string()).or_default().add(&drift);
        }
        schema_drift.retain(|_, d| *d != Drift::default());
        let manifest =
            Manifest { format: 1, source, datasets, checks, files, lineage, exports, not_ready, schema_drift };
        let t = self.stages;
        tracing::info!(
            event = "stage_ms",
            digest = t.digest.as_millis() as u64,
            decode = t.decode.as_millis() as u64,
            normalize = t.normalize.as_millis() as u64,
            matching = t.matching.as_millis() as u64,
            write = t.write.as_millis() as u64,
            finish = finishing.elapsed().as_millis() as u64
        );
        let path = self.root.join("manifest.json");
        let mut text = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| StageError::Io { path: path.clone(), source: io::Error::other(e) })?;
        text.push(b'\n');
        std::fs::write(&path, text).map_err(io_at(&path))?;
        Ok(manifest)
    }
}
