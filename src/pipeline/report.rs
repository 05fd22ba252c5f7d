//! What a run and an extraction report: the summary table the CLI prints (datasets, rows, control
//! totals, checks, restatements, sequences not ready, requests) and the counts `--fail-on` reads.
//!
//! In: the published manifest and the extraction's counts. Out: text and numbers. It decides
//! nothing and writes no file.

use crate::reconcile::CheckGroup;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::extract::ExtractReport;
use crate::extract::dump::DumpReport;
use crate::sink::manifest::{Drift, ExportOperation, Manifest};
use crate::tabular::Dataset;

/// `run.json`: what one run did, for the operator and for monitoring — the one file of a
/// snapshot that differs between runs over the same data (times, counts of requests).
#[derive(Debug, Serialize)]
pub struct RunRecord<'a> {
    /// The snapshot's id (`YYYYMMDDTHHMMSSZ`).
    pub run_id: &'a str,
    /// The attempt whose fetched pages the run used (a resumed run names the killed one's).
    pub attempt: Option<&'a str>,
    /// When that attempt started.
    pub attempt_started_at: Option<&'a str>,
    /// The raw archive a `--from-raw` run replayed.
    pub from_raw: Option<&'a Path>,
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// When it finished.
    pub finished_at: String,
    /// Wall time of the extraction and the stages.
    pub elapsed_ms: u64,
    /// The version of pcrecon that made the snapshot.
    pub pcrecon_version: &'static str,
    /// The Partner Center root it called.
    pub base_url: &'a str,
    /// Requests sent.
    pub requests: u64,
    /// Retries after transient failures and throttling.
    pub retries: u64,
    /// 429 answers honoured.
    pub throttled: u64,
    /// 401 answers that led to a new token.
    pub refused_tokens: u64,
    /// Sequences in the plan.
    pub sequences: u64,
    /// Sequences of unchanged billed invoices taken from an earlier run.
    pub sequences_carried: u64,
    /// Sequences taken from a killed attempt's pages.
    pub sequences_resumed: u64,
    /// The snapshot `LATEST` named before this run.
    pub previous_snapshot: Option<&'a str>,
    /// Invoices whose content or v2 eTag changed since that snapshot.
    pub restated_invoices: &'a [String],
    /// Invoices that snapshot did not have.
    pub new_invoices: u64,
    /// Rows per dataset.
    pub rows: BTreeMap<&'a str, u64>,
    /// Sequences the v2 export could not serve yet, with what it said.
    pub not_ready: &'a BTreeMap<String, String>,
    /// Members no column reads and attributes missing, per dataset.
    pub schema_drift: &'a BTreeMap<String, Drift>,
    /// Per `dataset/scope` served by the v2 export, the operation and manifest that served it.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub exports: &'a BTreeMap<String, ExportOperation>,
}

/// What an extraction run produced.
#[derive(Debug)]
pub struct ExtractSummary {
    /// Where it was published.
    pub out: PathBuf,
    /// Requests, retries, throttling.
    pub report: ExtractReport,
    /// Items and sequences per dataset.
    pub dumped: DumpReport,
    /// Wall time.
    pub elapsed: Duration,
}

impl ExtractSummary {
    /// A few lines for people.
    pub fn render(&self) -> String {
        let mut text = format!("extracted into {}\n", self.out.display());
        for (dataset, items) in &self.dumped.items {
            let sequences = self.dumped.sequences.get(dataset).unwrap_or(&0);
            text.push_str(&format!("  {dataset:<34} {items:>10} items  {sequences:>6} sequences\n"));
        }
        text.push_str(&format!(
            "  {} requests, {} retries, {} throttled, {} refused tokens, {} restarted sequences, {} ms\n",
            self.report.requests,
            self.report.retries,
            self.report.throttled,
            self.report.unauthorized,
            self.dumped.restarts,
            self.elapsed.as_millis()
        ));
        text
    }
}

/// What a run published.
#[derive(Debug)]
pub struct RunSummary {
    /// The snapshot folder (for an object-store destination, its local copy).
    pub snapshot: PathBuf,
    /// The snapshot's URL in the object store it was published to, if any.
    pub published: Option<String>,
    /// The Delta table commits of the run (`[output] delta = true`).
    pub tables: Vec<crate::sink::delta::TableCommit>,
    /// Why the Delta tables were not committed, if they were not (the snapshot is published).
    pub tables_failed: Option<crate::sink::delta::DeltaError>,
    /// Its manifest.
    pub manifest: Manifest,
    /// Requests, retries, throttling, sequences carried and resumed.
    pub report: ExtractReport,
    /// The snapshot `LATEST` named before this run, if any.
    pub previous: Option<String>,
    /// Invoices whose content differs from the previous snapshot's.
    pub restated: Vec<String>,
    /// Invoices that the previous snapshot did not have.
    pub new_invoices: u64,
    /// Snapshots retention removed.
    pub removed: Vec<String>,
    /// Files that are hard links to the previous snapshot's, and their bytes.
    pub shared: crate::sink::share::Shared,
    /// Wall time.
    pub elapsed: Duration,
}

impl RunSummary {
    /// Line items that are match exceptions or served twice.
    pub fn exceptions(&self) -> u64 {
        self.manifest.datasets.get(Dataset::MatchExceptions.name()).map_or(0, |d| d.rows)
    }

    /// Invoices and currencies whose tie-out is a mismatch.
    pub fn mismatches(&self) -> u64 {
        self.group_mismatches(CheckGroup::TieOut)
    }

    /// Documents and currencies whose FOCUS rows do not tie out.
    pub fn focus_mismatches(&self) -> u64 {
        self.group_mismatches(CheckGroup::Focus)
    }

    fn group_mismatches(&self, group: CheckGroup) -> u64 {
        let mismatch = crate::reconcile::Status::Mismatch.name();
        self.manifest.checks.get(group.name()).and_then(|c| c.get(mismatch)).copied().unwrap_or(0)
    }

    /// Sequences the v2 export could not serve yet.
    pub fn not_ready(&self) -> u64 {
        self.manifest.not_ready.len() as u64
    }

    /// Records that went to `rejects`.
    pub fn rejected(&self) -> u64 {
        self.manifest.datasets.get(Dataset::Rejects.name()).map_or(0, |d| d.rows)
    }

    /// Logs a warning per kind of finding the run published with (tie-out and FOCUS mismatches, match
    /// exceptions, sequences not ready, rejected records, throttling and retries), with its
    /// count: what an operator's log alerting keys on.
    pub fn warn_findings(&self) {
        let findings = [
            ("tie_out_mismatches", self.mismatches()),
            ("focus_mismatches", self.focus_mismatches()),
            ("match_exceptions", self.exceptions()),
            ("sequences_not_ready", self.not_ready()),
            ("records_rejected", self.rejected()),
        ];
        for (event, count) in findings.into_iter().filter(|(_, n)| *n > 0) {
            tracing::warn!(event, count, snapshot = %self.snapshot.display());
        }
        if self.report.throttled > 0 || self.report.retries > 0 {
            tracing::warn!(
                event = "throttled_and_retried",
                throttled = self.report.throttled,
                retries = self.report.retries,
                requests = self.report.requests
            );
        }
    }

    /// The run as Prometheus text-format metrics (for node_exporter's textfile collector), with
    /// the exit code the run ends with. Control totals are written as the manifest states them.
    pub fn metrics(&self, exit_code: u8, finished_at: i64) -> String {
        let mut text = metrics_head(exit_code, finished_at, true);
        let mut gauge = |name: &str, help: &str, samples: Vec<(String, String)>| {
            text.push_str(&format!("# HELP pcrecon_{name} {help}\n# TYPE pcrecon_{name} gauge\n"));
            for (labels, value) in samples {
                text.push_str(&format!("pcrecon_{name}{labels} {value}\n"));
            }
        };
        let ms = self.elapsed.as_millis();
        gauge(
            "run_duration_seconds",
            "Wall time of the run.",
            vec![(String::new(), format!("{}.{:03}", ms / 1000, ms % 1000))],
        );
        let rows = self.manifest.datasets.iter().map(|(d, e)| (format!("{{dataset=\"{d}\"}}"), e.rows.to_string()));
        gauge("rows", "Rows published per dataset.", rows.collect());
        let mut totals = Vec::new();
        for (dataset, entry) in &self.manifest.datasets {
            for (currency, columns) in &entry.control_totals {
                for (column, value) in columns {
                    let labels = format!("{{dataset=\"{dataset}\",currency=\"{currency}\",column=\"{column}\"}}");
                    totals.push((labels, value.clone()));
                }
            }
        }
        gauge("control_total", "Control totals per dataset, currency and column, as in the manifest.", totals);
        let counts = [
            ("tie_out_mismatches", "Invoices and currencies whose tie-out is a mismatch.", self.mismatches()),
            ("focus_mismatches", "Documents and currencies whose FOCUS rows do not tie out.", self.focus_mismatches()),
            ("match_exceptions", "Line items that are match exceptions.", self.exceptions()),
            ("not_ready_sequences", "Sequences the v2 export could not serve yet.", self.not_ready()),
            ("rejected_records", "Records that went to rejects.", self.rejected()),
            ("restated_invoices", "Invoices restated since the previous snapshot.", self.restated.len() as u64),
            ("requests", "HTTP requests of the run.", self.report.requests),
            ("retries", "Requests retried.", self.report.retries),
            ("throttled", "Requests answered 429.", self.report.throttled),
            ("snapshot_files", "Files of the snapshot.", self.manifest.files.len() as u64),
            ("snapshot_bytes", "Bytes of the snapshot's files.", self.manifest.files.iter().map(|f| f.bytes).sum()),
            ("snapshot_shared_bytes", "Bytes of files hard-linked to the previous snapshot's.", self.shared.bytes),
        ];
        for (name, help, value) in counts {
            gauge(name, help, vec![(String::new(), value.to_string())]);
        }
        text
    }

    /// The summary as one JSON document (what `run` prints when stdout is not a terminal): the
    /// table's facts, with the exit code the run ends with and, when not 0, why.
    pub fn json(&self, exit_code: u8, finding: Option<&str>) -> serde_json::Value {
        let bytes: u64 = self.manifest.files.iter().map(|f| f.bytes).sum();
        let datasets: serde_json::Map<String, serde_json::Value> = self
            .manifest
            .datasets
            .iter()
            .map(|(name, entry)| {
                (name.clone(), serde_json::json!({ "rows": entry.rows, "control_totals": entry.control_totals }))
            })
            .collect();
        let tables: Vec<serde_json::Value> = self
            .tables
            .iter()
            .map(|t| serde_json::json!({ "dataset": t.dataset, "version": t.version, "added": t.added, "removed": t.removed, "kept": t.kept }))
            .collect();
        serde_json::json!({
            "event": "run_summary",
            "exit_code": exit_code,
            "finding": finding,
            "snapshot": self.snapshot.display().to_string(),
            "published": self.published,
            "run_id": self.snapshot.file_name().map(|n| n.to_string_lossy().into_owned()),
            "previous_snapshot": self.previous,
            "restated_invoices": self.restated,
            "new_invoices": self.new_invoices,
            "datasets": datasets,
            "checks": self.manifest.checks,
            "not_ready": self.manifest.not_ready,
            "files": self.manifest.files.len(),
            "bytes": bytes,
            "shared_files": self.shared.files,
            "shared_bytes": self.shared.bytes,
            "sequences": self.report.sequences,
            "sequences_carried": self.report.carried,
            "sequences_resumed": self.report.resumed,
            "requests": self.report.requests,
            "retries": self.report.retries,
            "throttled": self.report.throttled,
            "removed_snapshots": self.removed,
            "delta_tables": tables,
            "delta_failed": self.tables_failed.as_ref().map(|e| crate::redact::redact(&e.to_string()).into_owned()),
            "elapsed_ms": self.elapsed.as_millis() as u64,
        })
    }

    /// The summary table: datasets, rows, control totals per currency.
    pub fn render(&self) -> String {
        let mut text = match &self.published {
            Some(url) => format!("published {url} (local copy {})\n", self.snapshot.display()),
            None => format!("published {}\n", self.snapshot.display()),
        };
        text.push_str(&format!("  {:<34} {:>10}  control totals\n", "dataset", "rows"));
        for (name, entry) in &self.manifest.datasets {
            let mut first = true;
            let totals: Vec<String> = entry
                .control_totals
                .iter()
                .map(|(currency, columns)| {
                    let cols: Vec<String> = columns.iter().map(|(c, v)| format!("{c} {v}")).collect();
                    format!("{currency}: {}", cols.join(", "))
                })
                .collect();
            if totals.is_empty() {
                text.push_str(&format!("  {name:<34} {:>10}\n", entry.rows));
            }
            for line in totals {
                if first {
                    text.push_str(&format!("  {name:<34} {:>10}  {line}\n", entry.rows));
                    first = false;
                } else {
                    text.push_str(&format!("  {:<34} {:>10}  {line}\n", "", ""));
                }
            }
        }
        for (check, counts) in &self.manifest.checks {
            let total: u64 = counts.values().sum();
            let good = counts.get("matched").or_else(|| counts.get("ok")).copied().unwrap_or(0)
                + counts.get("not_applicable").copied().unwrap_or(0);
            let detail: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
            text.push_str(&format!("  {check:<34} {good:>6} of {total:<6} {}\n", detail.join(", ")));
        }
        if let Some(previous) = &self.previous {
            text.push_str(&format!(
                "  since {previous}: {} restated invoices{}, {} new invoices (pcrecon diff --previous shows the rows)\n",
                self.restated.len(),
                if self.restated.is_empty() { String::new() } else { format!(" ({})", self.restated.join(", ")) },
                self.new_invoices
            ));
        }
        let bytes: u64 = self.manifest.files.iter().map(|f| f.bytes).sum();
        let on_disk = match self.shared.files {
            0 => format!("{bytes} bytes"),
            n => format!(
                "{bytes} bytes, {} new on disk: {n} unchanged files hard-linked to the previous snapshot",
                bytes - self.shared.bytes.min(bytes)
            ),
        };
        text.push_str(&format!(
            "  {} files ({on_disk}), {} sequences ({} carried from earlier runs, {} resumed), {} requests, {} retries, {} throttled, {} ms\n",
            self.manifest.files.len(),
            self.report.sequences,
            self.report.carried,
            self.report.resumed,
            self.report.requests,
            self.report.retries,
            self.report.throttled,
            self.elapsed.as_millis()
        ));
        if !self.manifest.not_ready.is_empty() {
            let list: Vec<&str> = self.manifest.not_ready.keys().map(String::as_str).collect();
            text.push_str(&format!(
                "  not ready in the v2 export yet (published without them; a later run fetches them): {}\n",
                list.join(", ")
            ));
        }
        if !self.removed.is_empty() {
            text.push_str(&format!("  retention removed {}\n", self.removed.join(", ")));
        }
        if !self.tables.is_empty() {
            let (added, removed, kept) =
                self.tables.iter().fold((0, 0, 0), |(a, r, k), t| (a + t.added, r + t.removed, k + t.kept));
            let versions: BTreeSet<u64> = self.tables.iter().map(|t| t.version).collect();
            let versions: Vec<String> = versions.iter().map(u64::to_string).collect();
            text.push_str(&format!(
                "  delta: {} tables committed (version {}): {added} files added, {removed} removed, {kept} kept\n",
                self.tables.len(),
                versions.join(", ")
            ));
        }
        text
    }
}

/// The metrics every run writes, published or not: whether it published, its exit code, and
/// when it finished.
pub fn metrics_head(exit_code: u8, finished_at: i64, published: bool) -> String {
    format!(
        "# HELP pcrecon_run_published 1 when the run published its snapshot (with or without findings), 0 when it failed.\n\
         # TYPE pcrecon_run_published gauge\npcrecon_run_published {}\n\
         # HELP pcrecon_exit_code The exit code of the run (see pcrecon --help).\n\
         # TYPE pcrecon_exit_code gauge\npcrecon_exit_code {exit_code}\n\
         # HELP pcrecon_run_finished_timestamp_seconds When the run ended (Unix time).\n\
         # TYPE pcrecon_run_finished_timestamp_seconds gauge\npcrecon_run_finished_timestamp_seconds {finished_at}\n",
        u8::from(published)
    )
}
