//! The run: under the output folder's lock, plan → dimensions → facts → finish → publish, as
//! settings → API client (or a raw archive) → extraction → the snapshot's stages → Parquet/CSV →
//! manifest → atomic publish → retention; `extract` (JSON lines only); the dry run ([`plan`]);
//! what a run reports ([`report`]).
//!
//! In: validated [`Settings`]. Out: a published snapshot and its [`RunSummary`]. Errors of every
//! stage arrive here as a [`RunError`]; [`crate::error::Error`] knows its exit code. It does not
//! wire the emulator (that is `demo`'s).

pub mod plan;
pub mod report;
pub mod stages;

pub use plan::{DryRun, PlannedSequence, dry_run};
pub use report::{ExtractSummary, RunRecord, RunSummary};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::api::auth::{Credentials, TokenProvider};
use crate::api::http::{Client, Policy};
use crate::api::paging::PagingError;
use crate::clock::Clock;
use crate::config::{ApiSettings, ConfigError, Settings};
use crate::extract::cache::PageCache;
use crate::extract::dump::{self, DumpError};
use crate::extract::raw::RawArchive;
use crate::extract::{self, ExtractReport};
use crate::model::page::Event;
use crate::normalize::fx::{Normalizer, RateTable};
use crate::progress::Progress;
use crate::sink::delta::{DeltaError, RunMark, TableCommit};
use crate::sink::lock::{LockError, OutputLock};
use crate::sink::manifest::{Manifest, Provenance};
use crate::sink::retention::Retention;
use crate::sink::signature::SigningKey;
use crate::sink::staging::{Staging, is_abandoned, point_latest};
use crate::sink::store::{Store, StoreError, StoreLock, Tidied};
use stages::{Snapshot, StageError, StageOptions};
use std::collections::BTreeMap;
use tracing::Instrument;

/// Why a run failed: the error of the stage that failed, with its cause kept, so that
/// [`crate::error::Error::exit`] can tell the operator what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration or the command line is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The extraction failed (API, data, cache).
    #[error(transparent)]
    Extract(#[from] PagingError),
    /// A stage of the snapshot failed (a value, a rate, a file).
    #[error(transparent)]
    Stage(#[from] StageError),
    /// The output folder's lock was not taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The object-store destination failed (the snapshot stays unpublished there).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A Delta table could not be committed (the snapshot is published; the next run commits).
    #[error(transparent)]
    Delta(#[from] DeltaError),
    /// `extract` could not write its files.
    #[error(transparent)]
    Dump(#[from] DumpError),
    /// A raw archive could not be replayed (a page missing, altered or out of order).
    #[error("{0}")]
    Replay(String),
    /// A file or folder could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The run could not start (the async runtime, the HTTP client, the demo's emulator).
    #[error("{0}")]
    Start(String),
    /// A thread of the run panicked: a defect of pcrecon, not of the data or the API.
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
}

fn io_error(path: &Path, source: std::io::Error) -> RunError {
    RunError::Io { path: path.to_path_buf(), source }
}

/// The text of a JSON report, or why it has none.
fn json_text(value: &impl serde::Serialize, path: &Path) -> Result<Vec<u8>, RunError> {
    serde_json::to_vec_pretty(value).map_err(|e| io_error(path, std::io::Error::other(e)))
}

/// Builds the API client of a run.
pub fn client(api: &ApiSettings, clock: &Clock) -> Result<Client, RunError> {
    let credentials = Credentials {
        token_url: api.token_url()?,
        client_id: api.client_id.clone(),
        client_secret: api.client_secret.clone(),
        scope: api.scope.clone(),
        refresh_token: api.refresh_token.clone(),
        keep_rotated: rotated_token_keeper(api),
    };
    let policy = Policy {
        max_retry_after: api.max_retry_after,
        ..Policy::new(api.max_in_flight, api.request_timeout, api.max_retries)
    };
    Client::new(&api.base_url, TokenProvider::new(credentials), policy, clock.clone()).map_err(RunError::Start)
}

/// Writes a rotated refresh token back to `api.refresh_token_file`, when the token came from
/// that file (one from the environment cannot be written back).
pub fn rotated_token_keeper(api: &ApiSettings) -> Option<crate::api::auth::RotatedToken> {
    let path = api.refresh_token_file.clone().filter(|_| !api.refresh_token_from_env && api.refresh_token.is_some())?;
    Some(crate::api::auth::RotatedToken(std::sync::Arc::new(move |token| {
        crate::config::write_secret_file(&path, token)
            .map_err(|e| format!("cannot write api.refresh_token_file {}: {e}", path.display()))
    })))
}

/// Runs `work` on a thread of its own, inside the span of the caller (the run's).
fn in_this_span<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> std::thread::JoinHandle<R> {
    let span = tracing::Span::current();
    std::thread::spawn(move || span.in_scope(work))
}

/// Runs the extraction into `consume`, which reads the page stream on its own thread. The
/// consumer's failure wins over the extraction's (which then only reports the closed channel).
fn drive<R: Send + 'static>(
    settings: &Settings,
    clock: &Clock,
    cache: Option<Arc<PageCache>>,
    progress: Option<Arc<Progress>>,
    consume: impl FnOnce(tokio::sync::mpsc::Receiver<crate::model::page::Event>) -> Result<R, RunError> + Send + 'static,
) -> Result<(ExtractReport, R, Duration), RunError> {
    let client = Arc::new(client(&settings.api, clock)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Start(format!("cannot start the runtime: {e}")))?;
    let (tx, rx) = tokio::sync::mpsc::channel(extract::CHANNEL_PAGES);
    let consumer = in_this_span(move || consume(rx));
    let started = Instant::now();
    tracing::info!(event = "extract_started", correlation_id = client.correlation_id(), base_url = %settings.api.base_url);
    let extraction = extract::extract(client.clone(), &settings.extract, cache, progress, tx);
    let extracted = runtime.block_on(extraction.instrument(tracing::Span::current()));
    let consumed = consumer.join().map_err(|_| RunError::Panicked("writer"))?;
    let (report, result) = match (extracted, consumed) {
        (Ok(report), Ok(result)) => (report, result),
        (_, Err(e)) => return Err(e),
        (Err(e), Ok(_)) => return Err(e.into()),
    };
    let elapsed = started.elapsed();
    tracing::info!(
        event = "extract_finished",
        elapsed_ms = elapsed.as_millis() as u64,
        sequences = report.sequences,
        requests = report.requests,
        retries = report.retries,
        throttled = report.throttled,
        unauthorized = report.unauthorized
    );
    Ok((report, result, elapsed))
}

/// Replays a raw archive into `consume` on its own thread, as [`drive`] does with the API.
fn replay_raw<R: Send + 'static>(
    dir: &Path,
    consume: impl FnOnce(tokio::sync::mpsc::Receiver<Event>) -> Result<R, RunError> + Send + 'static,
) -> Result<(ExtractReport, R, Duration), RunError> {
    let (tx, rx) = tokio::sync::mpsc::channel(extract::CHANNEL_PAGES);
    let consumer = in_this_span(move || consume(rx));
    let started = Instant::now();
    tracing::info!(event = "replay_started", archive = %dir.display());
    let replayed = crate::extract::raw::replay(dir, |event| tx.blocking_send(event).is_ok());
    drop(tx);
    let consumed = consumer.join().map_err(|_| RunError::Panicked("writer"))?;
    let (replayed, result) = match (replayed, consumed) {
        (_, Err(e)) => return Err(e),
        (Err(e), Ok(_)) => return Err(RunError::Replay(e)),
        (Ok(r), Ok(result)) => (r, result),
    };
    let elapsed = started.elapsed();
    tracing::info!(
        event = "replay_finished",
        elapsed_ms = elapsed.as_millis() as u64,
        pages = replayed.pages,
        bytes = replayed.bytes
    );
    Ok((ExtractReport { sequences: replayed.sequences, ..ExtractReport::default() }, result, elapsed))
}

/// Seals the raw archive of an extraction that succeeded (see [`RawArchive::seal`]).
fn seal(archive: Option<RawArchive>, keep_raw: Option<&Path>) -> Result<(), RunError> {
    match (archive, keep_raw) {
        (Some(archive), Some(dir)) => archive.seal().map_err(|e| io_error(dir, e)),
        _ => Ok(()),
    }
}

fn open_archive(keep_raw: Option<&Path>) -> Result<Option<RawArchive>, RunError> {
    keep_raw.map(|dir| RawArchive::open(dir).map_err(|e| io_error(dir, e))).transpose()
}

/// Extracts everything in scope into `out` (one JSON-lines file per sequence), published only
/// when the whole extraction succeeded; optionally archives every raw page into `keep_raw`.
pub fn extract_to_folder(
    settings: &Settings,
    out: &Path,
    keep_raw: Option<&Path>,
    clock: &Clock,
) -> Result<ExtractSummary, RunError> {
    let staging = Staging::beside(out).map_err(|e| io_error(out, e))?;
    let archive = open_archive(keep_raw)?;
    let into = staging.path().to_path_buf();
    let driven = drive(settings, clock, None, None, move |rx| Ok(dump::consume(rx, &into, archive)?));
    let (report, (dumped, archive), elapsed) = driven?;
    seal(archive, keep_raw)?;
    let summary_path = staging.path().join("summary.json");
    let summary = serde_json::json!({ "items": dumped.items, "sequences": dumped.sequences });
    let text = json_text(&summary, &summary_path)?;
    std::fs::write(&summary_path, text).map_err(|e| io_error(&summary_path, e))?;
    staging.publish().map_err(|e| io_error(out, e))?;
    Ok(ExtractSummary { out: out.to_path_buf(), report, dumped, elapsed })
}

/// How a run goes, beyond its configuration.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Also archive every raw page into this folder.
    pub keep_raw: Option<PathBuf>,
    /// Fetch billed invoices again even when an earlier run has them unchanged.
    pub refresh: bool,
    /// Progress display (hidden when `None`).
    pub progress: Option<Arc<Progress>>,
    /// Rebuild the snapshot from this `--keep-raw` archive instead of calling the API.
    pub from_raw: Option<PathBuf>,
    /// The time the run reads (its id, its report, retention, resuming).
    pub clock: Clock,
}

/// Removes what runs whose process is gone left behind: staging folders (`.<run-id>.tmp-<pid>`,
/// e.g. of a killed run) and snapshots whose removal was cut short (`.<run-id>.deleting`). A live
/// run's folder is left alone.
fn remove_abandoned(out: &Path) {
    let Ok(entries) = std::fs::read_dir(out) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let abandoned = if name.starts_with('.') && name.ends_with(".deleting") { true } else { is_abandoned(&name) };
        if abandoned {
            tracing::info!(event = "abandoned_folder_removed", folder = %name);
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A run id from the clock: `YYYYMMDDTHHMMSSZ`, with a suffix if that folder (or, for an
/// object-store destination, that prefix) exists already.
fn run_id(out: &Path, store: Option<&Store>, now: chrono::DateTime<chrono::Utc>) -> Result<String, RunError> {
    let base = now.format("%Y%m%dT%H%M%SZ").to_string();
    let mut id = base.clone();
    let mut n = 2;
    while out.join(&id).exists() || store.map(|s| s.has_run(&id)).transpose()?.unwrap_or(false) {
        id = format!("{base}-{n}");
        n += 1;
    }
    Ok(id)
}

/// Billed line items are partitioned by their invoice's billing period, tied out against its
/// total, and matched against master data: a run always extracts those too.
fn with_needed_datasets(settings: &Settings) -> Settings {
    let mut settings = settings.clone();
    for needed in crate::tabular::Dataset::DIMENSIONS {
        if !settings.extract.wants(needed) {
            settings.extract.datasets.push(needed);
        }
    }
    settings
}

fn stage_options(settings: &Settings) -> Result<StageOptions, RunError> {
    let tolerance = settings
        .tolerance
        .iter()
        .map(|(c, v)| crate::normalize::decode::to_decimal128(*v, 10).map(|t| (c.clone(), t)))
        .collect::<Result<_, _>>()
        .map_err(|e| RunError::Config(ConfigError::Invalid(format!("reconcile.tolerance: {}", e.0))))?;
    Ok(StageOptions {
        csv: settings.csv,
        rejects: settings.rejects,
        keep_unknown_fields: settings.keep_unknown_fields,
        rules: crate::reconcile::Rules { tolerance, filtered: settings.extract.filters_invoices() },
        signing_key: settings
            .signing_key_file
            .as_deref()
            .map(SigningKey::load)
            .transpose()
            .map_err(|e| RunError::Config(ConfigError::Invalid(format!("output.signing_key_file: {e}"))))?,
        markup: settings
            .rebill
            .as_ref()
            .and_then(|r| r.markup_file.as_deref().map(|path| crate::rebill::Markup::load(path, r.rounding)))
            .transpose()
            .map_err(|e| RunError::Config(ConfigError::Invalid(e.to_string())))?,
        statements: settings.rebill.as_ref().is_some_and(|r| r.statements),
        focus: crate::focus::FocusOptions {
            billing_account_name: settings.focus.billing_account_name.clone(),
            tenant_id: settings.api.tenant_id.clone(),
        },
    })
}

/// What the manifest records of the run's settings: those that change its numbers.
fn provenance(settings: &Settings) -> Result<Provenance, RunError> {
    let extract = &settings.extract;
    let v2 = [
        ("recon_from", extract.v2.recon_from.clone()),
        ("usage_from", extract.v2.usage_from.clone()),
        ("attribute_set", extract.v2.attribute_set.to_owned()),
    ];
    let mut provenance = Provenance {
        pcrecon_version: env!("CARGO_PKG_VERSION").to_owned(),
        tenant_id: settings.api.tenant_id.clone(),
        routing: extract.api_version.iter().map(|(d, v)| (d.to_string(), v.name().to_owned())).collect(),
        v2: v2.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        tolerance: settings.tolerance.iter().map(|(c, t)| (c.clone(), t.to_string())).collect(),
        filtered: extract.filters_invoices(),
        ..Provenance::default()
    };
    if let Some(n) = &settings.normalize {
        provenance.reporting_currency = Some(n.reporting_currency.to_string());
        provenance.rounding = Some(n.rounding.name().to_owned());
        provenance.rate_date = Some(n.rate_date.name().to_owned());
        match &n.rates {
            crate::config::Rates::File(path) => {
                let table = std::fs::read(path).map_err(|e| io_error(path, e))?;
                provenance.rate_table_sha256 = Some(crate::model::hex(&Sha256::digest(&table)));
            }
            // The month files are in the snapshot (`fxrates/`), each with its SHA-256.
            crate::config::Rates::PartnerCenter => provenance.rate_source = Some("partner_center".into()),
        }
    }
    Ok(provenance)
}

fn normalizer(settings: &Settings) -> Result<Option<Normalizer>, RunError> {
    settings
        .normalize
        .as_ref()
        .map(|n| {
            // Partner Center's rates arrive with the run's first pages (`fxrates`).
            let table = match &n.rates {
                crate::config::Rates::File(path) => {
                    RateTable::load(path).map_err(|e| RunError::Config(ConfigError::Invalid(e.to_string())))?
                }
                crate::config::Rates::PartnerCenter => RateTable::partner_center(),
            };
            Ok(Some(Normalizer::new(n.reporting_currency, table, n.rate_date, n.rounding)))
        })
        .unwrap_or(Ok(None))
}

/// The previous snapshot's manifest, as `LATEST` names it: the destination's (the store's, when
/// the run publishes to one).
fn previous_manifest(out: &Path, store: Option<&Store>) -> Result<Option<(String, Manifest)>, RunError> {
    let (id, bytes) = match store {
        Some(store) => match store.latest()? {
            Some(id) => {
                let bytes = store.read(&format!("{id}/manifest.json"))?;
                (id, bytes)
            }
            None => return Ok(None),
        },
        None => match crate::sink::retention::latest(out) {
            Some((id, path)) => (id, std::fs::read(path.join("manifest.json")).ok()),
            None => return Ok(None),
        },
    };
    Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()).map(|m| (id, m)))
}

/// Invoices whose content or v2 eTag differs from the previous snapshot's, and how many are
/// new. An invoice whose datasets moved between v1 and v2 is served in another form, so its
/// content cannot be compared: it is logged, not called restated.
fn restatements(previous: Option<&Manifest>, manifest: &Manifest) -> (Vec<String>, u64) {
    let Some(previous) = previous else { return (Vec::new(), 0) };
    let mut restated = Vec::new();
    let mut new = 0;
    for (invoice, lineage) in &manifest.lineage {
        match previous.lineage.get(invoice) {
            Some(before) if !before.etags.keys().eq(lineage.etags.keys()) => {
                tracing::info!(event = "invoice_source_changed", invoice = %invoice, v2_before = ?before.etags.keys().collect::<Vec<_>>(), v2_now = ?lineage.etags.keys().collect::<Vec<_>>());
            }
            Some(before) if before != lineage => restated.push(invoice.clone()),
            Some(_) => {}
            None => new += 1,
        }
    }
    (restated, new)
}

/// Uploads a snapshot published locally to its store, points the store's `LATEST` at it, and
/// tidies the prefix; returns the snapshot's URL and what tidying removed.
fn publish_to_store(
    store: &Store,
    lock: &mut StoreLock<'_>,
    snapshot: &Path,
    id: &str,
    settings: &Settings,
    clock: &Clock,
) -> Result<(String, Tidied), RunError> {
    lock.renew(clock.now(), settings.lock_expiry)?;
    let started = Instant::now();
    // Still this run's lock before the manifest and before LATEST: nobody took the prefix over
    // while it uploaded.
    let uploaded = store.upload(snapshot, id, || lock.renew(clock.now(), settings.lock_expiry))?;
    lock.renew(clock.now(), settings.lock_expiry)?;
    store.point_latest(id)?;
    let url = store.url().join(id);
    tracing::info!(
        event = "store_published",
        snapshot = %url,
        files = uploaded.files,
        bytes = uploaded.bytes,
        elapsed_ms = started.elapsed().as_millis() as u64
    );
    crate::failpoint::hit("store_latest");
    let tidied = store.tidy(settings.retention, id, clock.now()).unwrap_or_else(|e| {
        tracing::warn!(event = "retention_failed", store = %store.url(), error = %crate::redact::redact(&e.to_string()));
        Tidied::default()
    });
    Ok((url, tidied))
}

/// Commits the published snapshot to the Delta tables of its destination (the store, or the
/// output folder), re-encoding files in a hidden scratch folder of `out`.
fn commit_tables(
    store: Option<&Store>,
    out: &Path,
    snapshot: &Path,
    manifest: &Manifest,
    id: &str,
    clock: &Clock,
) -> Result<Vec<TableCommit>, DeltaError> {
    let local;
    let destination = match store {
        Some(store) => store,
        None => {
            local = Store::local(out)?;
            &local
        }
    };
    let file_error =
        |path: &Path, e: std::io::Error| DeltaError::File { file: path.display().to_string(), message: e.to_string() };
    let manifest_path = snapshot.join("manifest.json");
    let bytes = std::fs::read(&manifest_path).map_err(|e| file_error(&manifest_path, e))?;
    let run = RunMark { run_id: id, manifest_sha256: crate::model::hex(&Sha256::digest(&bytes)), at: clock.now() };
    let scratch = out.join(format!(".delta.tmp-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| file_error(&scratch, e))?;
    let commits = crate::sink::delta::commit_snapshot(destination, snapshot, manifest, &run, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    commits
}

/// The nightly job: under the output folder's lock, extracts everything in scope (reusing
/// what the page cache may stand in for), writes every dataset as Parquet and CSV with a
/// manifest into a hidden staging folder, publishes it as `<output.dir>/<run-id>` with `LATEST`
/// pointing at it, and applies retention. With an object-store destination, the folder is the
/// local `cache_dir`, and the published snapshot is then uploaded under the store prefix's lock,
/// `manifest.json` last and the store's `LATEST` after it.
pub fn run(settings: &Settings, options: &RunOptions) -> Result<RunSummary, RunError> {
    let settings = with_needed_datasets(settings);
    let out = settings.output_dir.clone();
    let store = settings.store.as_ref().map(Store::connect).transpose()?;
    std::fs::create_dir_all(&out).map_err(|e| io_error(&out, e))?;
    let _lock = OutputLock::acquire(&out, options.clock.now())?;
    remove_abandoned(&out);
    let id = run_id(&out, store.as_ref(), options.clock.now())?;
    let mut store_lock = store.as_ref().map(|s| s.lock(&id, options.clock.now(), settings.lock_expiry)).transpose()?;
    // Every event of the run, on every thread, names it through this span.
    let run_span = tracing::info_span!("run", run_id = %id);
    let _in_run = run_span.enter();
    // A replay needs no cache: the archive is the whole input.
    let cache = match options.from_raw {
        Some(_) => None,
        None => Some(Arc::new(
            PageCache::open(&out, &id, options.refresh, settings.resume_within, options.clock.now())
                .map_err(|e| io_error(&out.join(".cache"), e))?,
        )),
    };
    let staging = Staging::beside(&out.join(&id)).map_err(|e| io_error(&out, e))?;
    let archive = open_archive(options.keep_raw.as_deref())?;
    let sink = stage_options(&settings)?;
    let normalizer = normalizer(&settings)?;
    let previous = previous_manifest(&out, store.as_ref())?;
    let root = staging.path().to_path_buf();
    let source: BTreeMap<String, String> = [
        ("api".to_owned(), "Partner Center REST v1; Microsoft Graph reconciliation export v2 (see exports)".to_owned()),
        ("schemas".to_owned(), "schemas/".to_owned()),
    ]
    .into_iter()
    .collect();
    let provenance = provenance(&settings)?;
    let started_at = options.clock.now();
    let progress = options.progress.clone();
    let seen = progress.clone();
    let decoded = cache.clone();
    let cache_dir = out.join(".cache");
    let consume = move |mut rx: tokio::sync::mpsc::Receiver<Event>| {
        let mut snapshot = Snapshot::new(&root, sink, normalizer);
        let mut archive = archive;
        while let Some(event) = rx.blocking_recv() {
            if let Some(a) = archive.as_mut() {
                a.record(&event).map_err(|e| io_error(&root, e))?;
            }
            snapshot.handle(&event)?;
            // Every page of the sequence decoded: only now may the cache stand in for it.
            // A sequence with rejected records is not confirmed: the next run asks for it again.
            if let (Some(cache), Event::Done { dataset, scope, .. }) = (&decoded, &event)
                && !snapshot.rejected_from(*dataset, scope)
                && cache.confirm(*dataset, scope).map_err(|e| io_error(&cache_dir, e))?
            {
                crate::failpoint::hit("sequence");
            }
            if let Some(p) = &seen {
                p.event(&event);
            }
            if matches!(event, Event::Page(_)) {
                crate::failpoint::hit("page");
            }
        }
        crate::failpoint::hit("finish");
        let manifest = snapshot.finish(source, provenance)?;
        crate::failpoint::hit("manifest");
        Ok((manifest, archive))
    };
    let driven = match &options.from_raw {
        Some(dir) => replay_raw(dir, consume),
        None => drive(&settings, &options.clock, cache.clone(), progress.clone(), consume),
    };
    if let Some(p) = &progress {
        p.finish();
    }
    // A failed run drops its staging folder unpublished.
    let (report, (manifest, archive), elapsed) = driven?;
    seal(archive, options.keep_raw.as_deref())?;
    let (restated, new_invoices) = restatements(previous.as_ref().map(|(_, m)| m), &manifest);
    for invoice in &restated {
        tracing::warn!(event = "invoice_restated", invoice = %invoice, previous_snapshot = previous.as_ref().map(|p| p.0.as_str()).unwrap_or(""));
    }
    let run = RunRecord {
        run_id: &id,
        attempt: cache.as_ref().map(|c| c.attempt().id.as_str()),
        attempt_started_at: cache.as_ref().map(|c| c.attempt().started_at.as_str()),
        from_raw: options.from_raw.as_deref(),
        started_at: started_at.to_rfc3339(),
        finished_at: options.clock.now().to_rfc3339(),
        elapsed_ms: elapsed.as_millis() as u64,
        pcrecon_version: env!("CARGO_PKG_VERSION"),
        base_url: settings.api.base_url.as_str(),
        requests: report.requests,
        retries: report.retries,
        throttled: report.throttled,
        refused_tokens: report.unauthorized,
        sequences: report.sequences,
        sequences_carried: report.carried,
        sequences_resumed: report.resumed,
        previous_snapshot: previous.as_ref().map(|p| p.0.as_str()),
        restated_invoices: &restated,
        new_invoices,
        rows: manifest.datasets.iter().map(|(k, v)| (k.as_str(), v.rows)).collect(),
        not_ready: &manifest.not_ready,
        schema_drift: &manifest.schema_drift,
        exports: &manifest.operations,
    };
    crate::report::write(staging.path(), &manifest, &restated).map_err(|e| io_error(Path::new(&e.path), e.source))?;
    // Against the previous snapshot, when its folder is here (a store destination keeps its
    // newest two locally).
    let shared = match (crate::sink::retention::latest(&out), &previous) {
        (Some((id, dir)), Some((previous_id, before))) if id == *previous_id => {
            crate::sink::share::link_unchanged(staging.path(), &manifest, &dir, before)
                .map_err(|e| io_error(staging.path(), e))?
        }
        _ => crate::sink::share::Shared::default(),
    };
    let run_path = staging.path().join("run.json");
    let text = json_text(&run, &run_path)?;
    std::fs::write(&run_path, text).map_err(|e| io_error(&run_path, e))?;
    let snapshot = staging.publish().map_err(|e| io_error(&out, e))?;
    crate::failpoint::hit("publish");
    point_latest(&out, &id).map_err(|e| io_error(&out, e))?;
    tracing::info!(event = "run_published", snapshot = %snapshot.display(), files = manifest.files.len());
    crate::failpoint::hit("latest");
    let published = match (&store, &mut store_lock) {
        (Some(store), Some(lock)) => Some(publish_to_store(store, lock, &snapshot, &id, &settings, &options.clock)?),
        _ => None,
    };
    // The snapshot is published: tidying up after it may fail without failing the run.
    if let Some(Err(e)) = cache.as_ref().map(|c| c.finish_attempt()) {
        tracing::warn!(event = "cache_not_tidied", error = %e);
    }
    // A store's local folder only stages: the newest two stay there, for the next run's cache.
    let local_retention = match store {
        Some(_) => Retention { keep_snapshots: crate::config::MIN_KEEP_SNAPSHOTS, keep_days: None },
        None => settings.retention,
    };
    let removed_here = crate::sink::retention::apply(&out, local_retention, &id, options.clock.now().naive_utc())
        .unwrap_or_else(|e| {
            tracing::warn!(event = "retention_failed", error = %e);
            Vec::new()
        });
    let (published, removed) = match published {
        Some((url, tidied)) => (Some(url), tidied.removed),
        None => (None, removed_here),
    };
    // Last: the snapshot is published whatever becomes of its tables, and the next run commits
    // its own snapshot if this commit fails.
    let (tables, tables_failed) = match settings.delta {
        false => (Vec::new(), None),
        true => match commit_tables(store.as_ref(), &out, &snapshot, &manifest, &id, &options.clock) {
            Ok(tables) => (tables, None),
            Err(e) => {
                tracing::error!(event = "delta_commit_failed", error = %crate::redact::redact(&e.to_string()));
                (Vec::new(), Some(e))
            }
        },
    };
    let summary = RunSummary {
        snapshot,
        published,
        tables,
        tables_failed,
        manifest,
        report,
        previous: previous.map(|p| p.0),
        restated,
        new_invoices,
        removed,
        shared,
        elapsed,
    };
    summary.warn_findings();
    Ok(summary)
}
