//! `--dry-run`: what a run would fetch and write, from discovery (read-only calls) and the page
//! cache as it stands.
//!
//! In: settings. Out: a [`DryRun`] to print. It takes no lock and writes nothing, not even to the
//! cache.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{RunError, client, with_needed_datasets};
use crate::config::Settings;
use crate::extract::{self, cache::PageCache};
use crate::sink::layout;
use crate::sink::writer::CsvCompression;
use crate::tabular::{Dataset, Kind, Partition};

/// What a dry run found: the plan of a run, read from discovery and the page cache.
#[derive(Debug)]
pub struct DryRun {
    /// Output folder.
    pub out: PathBuf,
    /// Requests discovery made.
    pub discovery_requests: u64,
    /// Invoices in scope.
    pub invoices: usize,
    /// One line per sequence: dataset, scope, API, action, output files.
    pub sequences: Vec<PlannedSequence>,
}

/// One sequence of a dry run's plan.
#[derive(Debug)]
pub struct PlannedSequence {
    /// Dataset.
    pub dataset: Dataset,
    /// Invoice, `CCY/period` or customer.
    pub scope: String,
    /// The API that serves it.
    pub api: &'static str,
    /// `fetch`, `carry` (unchanged billed invoice from an earlier run) or `resume`.
    pub action: &'static str,
    /// Requests it needs at least (0 from the cache).
    pub requests: u64,
    /// The files its rows go to, relative to the snapshot.
    pub files: Vec<String>,
}

impl DryRun {
    /// The plan for people: totals per dataset and action, then every sequence.
    pub fn render(&self) -> String {
        let mut text = format!(
            "dry run of {}: discovery made {} requests; nothing else was fetched and nothing was written\n",
            self.out.display(),
            self.discovery_requests
        );
        let mut per: BTreeMap<(&str, &str, &str), (u64, u64)> = BTreeMap::new();
        for s in &self.sequences {
            let e = per.entry((s.dataset.name(), s.api, s.action)).or_default();
            e.0 += 1;
            e.1 += s.requests;
        }
        let requests: u64 = self.sequences.iter().map(|s| s.requests).sum();
        text.push_str(&format!(
            "  {} invoices, {} sequences, at least {requests} more requests\n  {:<34} {:<3} {:<7} {:>9} {:>9}\n",
            self.invoices,
            self.sequences.len(),
            "dataset",
            "api",
            "action",
            "sequences",
            "requests"
        ));
        for ((dataset, api, action), (count, requests)) in per {
            text.push_str(&format!("  {dataset:<34} {api:<3} {action:<7} {count:>9} {requests:>9}\n"));
        }
        text.push_str("  sequences (dataset, scope, api, action, files):\n");
        for s in &self.sequences {
            text.push_str(&format!(
                "    {:<34} {:<38} {:<3} {:<7} {}\n",
                s.dataset,
                s.scope,
                s.api,
                s.action,
                s.files.join(" ")
            ));
        }
        text
    }
}

/// The files a sequence's rows go to, relative to the snapshot, as the sink lays them out.
fn planned_files(planned: &extract::Planned, csv: Option<CsvCompression>) -> Vec<String> {
    let seq = &planned.seq;
    if seq.dataset.kind() == Kind::File {
        return vec![layout::kept_file(seq.dataset, &seq.scope)];
    }
    let month = planned.month.as_deref().unwrap_or("*");
    seq.dataset
        .tables_filled()
        .flat_map(|schema| {
            let folder = match schema.partition {
                Partition::Invoice | Partition::RowMonth(_) => layout::partition(month),
                // The month of the rows, which only the data tells.
                Partition::ScopeMonth(_) => layout::partition("*"),
                Partition::None => String::new(),
            };
            let (parquet, csv) = layout::part_files(schema.name, &folder, &layout::part_name(schema, &seq.scope), csv);
            std::iter::once(parquet).chain(csv)
        })
        .chain(focus_files(planned, month, csv))
        .collect()
}

/// The `focus` part of a charge sequence: in its invoice's billing month, or, for open charges,
/// the month only the data tells.
fn focus_files(planned: &extract::Planned, month: &str, csv: Option<CsvCompression>) -> Vec<String> {
    let (seq, Some(focus)) = (&planned.seq, Dataset::Focus.schema()) else { return Vec::new() };
    if !crate::focus::is_source(seq.dataset) {
        return Vec::new();
    }
    let billed = seq.dataset.scope_kind() == crate::tabular::ScopeKind::Invoice;
    let folder = layout::partition(if billed { month } else { "*" });
    let part = layout::part_name(focus, &crate::focus::part_scope(seq.dataset, &seq.scope));
    let (parquet, csv) = layout::part_files(Dataset::Focus, &folder, &part, csv);
    std::iter::once(parquet).chain(csv).collect()
}

/// `--dry-run`: discovery only (read-only API calls), then the plan, from the page cache as it
/// stands. Takes no lock and writes nothing.
pub fn dry_run(settings: &Settings, refresh: bool) -> Result<DryRun, RunError> {
    let settings = with_needed_datasets(settings);
    // A dry run stamps nothing: the system's clock will do.
    let client = client(&settings.api, &crate::clock::Clock::system())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Start(format!("cannot start the runtime: {e}")))?;
    let plan = runtime.block_on(extract::discover(&client, &settings.extract, None))?;
    let cache = PageCache::peek(&settings.output_dir, refresh);
    let sequences = plan
        .sequences
        .iter()
        .map(|planned| {
            let first = extract::sequence_key(&client, &planned.seq);
            let cached = cache.reusable(&planned.seq, &first, &planned.reuse);
            // A v2 export needs at least its request, one poll, its manifest and one file.
            let fetch_requests = if planned.seq.export.is_some() { 4 } else { 1 };
            let (action, requests) = match &cached {
                Some(c) if c.carried => ("carry", 0),
                Some(_) => ("resume", 0),
                None => ("fetch", fetch_requests),
            };
            PlannedSequence {
                dataset: planned.seq.dataset,
                scope: planned.seq.scope.clone(),
                api: planned.seq.api(),
                action,
                requests,
                files: planned_files(planned, settings.csv.map(|c| c.compression)),
            }
        })
        .collect();
    Ok(DryRun {
        out: settings.output_dir.clone(),
        discovery_requests: plan.discovery_requests,
        invoices: plan.invoices,
        sequences,
    })
}
