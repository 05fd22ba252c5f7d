//! The extraction stage: decides which sequences of pages a run needs (its scope) and fetches
//! them all, concurrently under the client's in-flight bound, into one bounded channel of
//! [`Event`]s.
//!
//! In: a [`Client`] and [`ExtractSettings`]. Out: pages of raw JSON tagged with dataset, scope,
//! attempt, page number and request id; restarts; completions. It does not decode items, and
//! nothing downstream knows which API served a page, so another source (the v2 export) can feed
//! the same channel.

pub mod cache;
mod discover;
pub mod dump;
pub mod export;
pub mod raw;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use sha2::Digest;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::api::http::Client;
use crate::api::paging::{self, PagingError, Sequence};
use crate::config::ExtractSettings;
use crate::model::page::{Event, Paging};
use crate::tabular::Dataset;
use cache::{PageCache, Reuse};
pub use discover::discover;

/// Pages buffered between the extraction and its consumer.
pub const CHANNEL_PAGES: usize = 4;

/// What an extraction did.
#[derive(Debug, Default, Clone)]
pub struct ExtractReport {
    /// Sequences fetched.
    pub sequences: u64,
    /// Requests sent.
    pub requests: u64,
    /// Retries after transient failures and throttling.
    pub retries: u64,
    /// 429 answers honoured.
    pub throttled: u64,
    /// 401 answers that led to a new token.
    pub unauthorized: u64,
    /// Sequences of billed invoices taken from an earlier run's cache instead of fetched.
    pub carried: u64,
    /// Sequences taken from the cache of this attempt (fetched before a crash).
    pub resumed: u64,
}

/// One sequence a run needs, and when the cache may stand in for fetching it.
#[derive(Debug, Clone)]
pub struct Planned {
    /// What to fetch.
    pub seq: Sequence,
    /// When a cached copy will do.
    pub reuse: Reuse,
    /// The invoice's billing month (`YYYY-MM`), where the invoice list tells it.
    pub month: Option<String>,
    /// The v1 sequence that stands in when the v2 export of `seq`, chosen by `auto`, has no data
    /// (operation failed with code 5000): only where v1 still serves the period.
    pub fallback: Option<Sequence>,
}

/// What a run will fetch, as found by discovery.
#[derive(Debug, Default)]
pub struct Plan {
    /// Every sequence after discovery, invoices and master data first.
    pub sequences: Vec<Planned>,
    /// Invoices in scope.
    pub invoices: usize,
    /// Currencies of the unbilled sequences.
    pub currencies: usize,
    /// Requests discovery made.
    pub discovery_requests: u64,
}

/// A page body read back from disk (`path`), checked against the SHA-256 recorded when it was
/// fetched, with its item spans found as the pager found them.
pub(crate) fn verified_page(
    path: &std::path::Path,
    body: Vec<u8>,
    sha256: &str,
    paging: Paging,
) -> Result<(bytes::Bytes, Vec<std::ops::Range<usize>>), String> {
    if crate::model::hex(&sha2::Sha256::digest(&body)) != sha256 {
        return Err(format!("{} does not match its recorded SHA-256", path.display()));
    }
    let body = bytes::Bytes::from(body);
    let items = paging::item_spans(paging, &body).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((body, items))
}

/// Runs the whole extraction into `tx`: discovery, then every planned sequence, from the cache
/// where it may stand in.
pub async fn extract(
    client: Arc<Client>,
    settings: &ExtractSettings,
    cache: Option<Arc<PageCache>>,
    progress: Option<Arc<crate::progress::Progress>>,
    tx: mpsc::Sender<Event>,
) -> Result<ExtractReport, PagingError> {
    let plan = discover(&client, settings, Some(&tx)).await?;
    if let Some(p) = progress {
        p.plan(plan.sequences.len() as u64);
    }
    tracing::info!(
        event = "extract_planned",
        sequences = plan.sequences.len(),
        invoices = plan.invoices,
        currencies = plan.currencies
    );
    let mut report = ExtractReport { sequences: plan.sequences.len() as u64, ..ExtractReport::default() };
    let (first, rest): (Vec<Planned>, Vec<Planned>) =
        plan.sequences.into_iter().partition(|p| Dataset::DIMENSIONS.contains(&p.seq.dataset));
    let spool = match &cache {
        Some(cache) => cache.spool(),
        None => std::env::temp_dir().join(format!("pcrecon-spool-{}", uuid::Uuid::new_v4().simple())),
    };
    std::fs::create_dir_all(&spool).map_err(|e| PagingError::Cache(format!("{}: {e}", spool.display())))?;
    let batches = async {
        for batch in [first, rest] {
            let (carried, resumed) = run_batch(&client, settings, &spool, batch, cache.clone(), &tx).await?;
            report.carried += carried;
            report.resumed += resumed;
        }
        Ok::<_, PagingError>(())
    };
    let finished = batches.await;
    let _ = std::fs::remove_dir_all(&spool);
    finished?;
    report.requests = client.stats.requests.load(Ordering::Relaxed);
    report.retries = client.stats.retries.load(Ordering::Relaxed);
    report.throttled = client.stats.throttled.load(Ordering::Relaxed);
    report.unauthorized = client.stats.unauthorized.load(Ordering::Relaxed);
    Ok(report)
}

/// A sequence's first URL relative to the API root, and for a v2 export its request body: what
/// the cache knows it by.
pub fn sequence_key(client: &Client, seq: &Sequence) -> String {
    let first = seq.first.strip_prefix(client.base()).unwrap_or(&seq.first);
    match &seq.export {
        Some(body) => format!("POST {first} {body}"),
        None => first.to_owned(),
    }
}

/// Where one sequence's pages came from.
enum Origin {
    Fetched,
    Carried,
    Resumed,
}

/// What fetching needs besides the client.
struct Fetching<'a> {
    client: &'a Client,
    v2: &'a crate::config::V2Settings,
    /// Where v2 export files are downloaded and decompressed before use.
    spool: &'a std::path::Path,
}

impl Fetching<'_> {
    /// Fetches a sequence through its API into `tx`.
    async fn fetch(&self, seq: &Sequence, tx: &mpsc::Sender<Event>) -> Result<u64, PagingError> {
        if seq.export.is_some() {
            export::run(self.client, seq, self.v2, self.spool, tx).await
        } else {
            paging::run(self.client, seq, tx).await
        }
    }
}

/// Replays a sequence from the cache when it may, else fetches it, recording it in the cache.
/// A v2 export without data (code 5000) falls back to v1 where v1 still serves the period; else
/// it is most likely not ready yet (spec §17.9): it is asked for again, backing off, until
/// `export_timeout_secs` after the first request, and then reported as not ready.
async fn one_sequence(
    fetching: &Fetching<'_>,
    planned: &Planned,
    cache: Option<&PageCache>,
    tx: &mpsc::Sender<Event>,
    slot: &mut Slot,
) -> Result<Origin, PagingError> {
    let seq = &planned.seq;
    let deadline = std::time::Instant::now() + fetching.v2.export_timeout;
    let mut wait = std::time::Duration::from_secs(1);
    let mut asked = 1u32;
    loop {
        match (fetch_or_replay(fetching, planned, cache, tx).await, &planned.fallback) {
            (Err(PagingError::Export { no_data: true, detail, .. }), Some(fallback)) => {
                tracing::warn!(event = "export_no_data_v1_fallback", %detail);
                let v1 = Planned { seq: fallback.clone(), fallback: None, ..planned.clone() };
                return Box::pin(fetch_or_replay(fetching, &v1, cache, tx)).await;
            }
            (Err(PagingError::Export { no_data: true, detail, .. }), None) => {
                if std::time::Instant::now() + wait <= deadline {
                    tracing::info!(event = "export_not_ready_retry", wait_ms = wait.as_millis() as u64, %detail);
                    // Waiting holds no slot: other sequences run meanwhile.
                    slot.permit = None;
                    tokio::time::sleep(wait).await;
                    slot.permit = Some(slot.running.clone().acquire_owned().await.map_err(|_| PagingError::Closed)?);
                    wait = (wait * 2).min(MAX_NOT_READY_WAIT);
                    asked += 1;
                    continue;
                }
                let detail = format!(
                    "{detail}; still so at the end of extract.v2.export_timeout_secs ({} s), and v1 no longer serves this period",
                    fetching.v2.export_timeout.as_secs()
                );
                tracing::warn!(event = "export_not_ready", requests = asked, %detail);
                let event = Event::NotReady { dataset: seq.dataset, scope: seq.scope.clone(), detail };
                tx.send(event).await.map_err(|_| PagingError::Closed)?;
                return Ok(Origin::Fetched);
            }
            (result, _) => return result,
        }
    }
}

/// A sequence's place among those running at once, given up while it waits.
struct Slot {
    running: Arc<Semaphore>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Longest pause between two requests for an export that is not ready.
const MAX_NOT_READY_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

async fn fetch_or_replay(
    fetching: &Fetching<'_>,
    planned: &Planned,
    cache: Option<&PageCache>,
    tx: &mpsc::Sender<Event>,
) -> Result<Origin, PagingError> {
    let seq = &planned.seq;
    let first = sequence_key(fetching.client, seq);
    let Some(cache) = cache else {
        fetching.fetch(seq, tx).await?;
        return Ok(Origin::Fetched);
    };
    if let Some(cached) = cache.reusable(seq, &first, &planned.reuse) {
        let carried = cached.carried;
        if cache.replay(seq, cached, tx).await? {
            tracing::debug!(event = "sequence_reused", carried);
            return Ok(if carried { Origin::Carried } else { Origin::Resumed });
        }
    }
    let cache_error = |e: std::io::Error| PagingError::Cache(format!("{}/{}: {e}", seq.dataset, seq.scope));
    let mut recorder =
        tokio::task::block_in_place(|| cache.recorder(seq, &first, &planned.reuse)).map_err(cache_error)?;
    let (local_tx, local_rx) = mpsc::channel(2);
    let fetch = async {
        let result = fetching.fetch(seq, &local_tx).await;
        drop(local_tx);
        result
    };
    // Owning the receiver, the forwarder drops it when it stops early, which stops the fetch.
    let forward = async move {
        let mut local_rx = local_rx;
        while let Some(event) = local_rx.recv().await {
            tokio::task::block_in_place(|| recorder.record(&event)).map_err(cache_error)?;
            tx.send(event).await.map_err(|_| PagingError::Closed)?;
        }
        Ok::<_, PagingError>(())
    };
    let (fetched, forwarded) = tokio::join!(fetch, forward);
    fetched?;
    forwarded?;
    Ok(Origin::Fetched)
}

/// Fetches sequences concurrently to their end. Each holds at most one page, so memory stays
/// bounded by the number of running sequences, not by the size of the data. Returns the
/// sequences carried from earlier runs and resumed from this attempt.
async fn run_batch(
    client: &Arc<Client>,
    settings: &ExtractSettings,
    spool: &std::path::Path,
    sequences: Vec<Planned>,
    cache: Option<Arc<PageCache>>,
    tx: &mpsc::Sender<Event>,
) -> Result<(u64, u64), PagingError> {
    let running = Arc::new(Semaphore::new(client_parallelism(client)));
    // A v2 export spends most of its time waiting for its operation, holds no continuation token,
    // and buffers its files on disk: more of them run at once than v1 sequences.
    let exporting = Arc::new(Semaphore::new(client_parallelism(client) * 4));
    let mut tasks = JoinSet::new();
    for planned in sequences {
        let client = client.clone();
        let tx = tx.clone();
        let running = if planned.seq.export.is_some() { exporting.clone() } else { running.clone() };
        let cache = cache.clone();
        let v2 = settings.v2.clone();
        let spool = spool.to_path_buf();
        // Every event of the sequence, down to each request's retries, names it through this span.
        let span = tracing::info_span!("sequence", dataset = %planned.seq.dataset, scope = %planned.seq.scope);
        let task = async move {
            let mut slot =
                Slot { permit: Some(running.clone().acquire_owned().await.map_err(|_| PagingError::Closed)?), running };
            let fetching = Fetching { client: &client, v2: &v2, spool: &spool };
            one_sequence(&fetching, &planned, cache.as_deref(), &tx, &mut slot).await
        };
        tasks.spawn(task.instrument(span));
    }
    let (mut carried, mut resumed) = (0, 0);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(Origin::Fetched)) => {}
            Ok(Ok(Origin::Carried)) => carried += 1,
            Ok(Ok(Origin::Resumed)) => resumed += 1,
            Ok(Err(e)) => {
                tasks.abort_all();
                return Err(e);
            }
            Err(join) => {
                tasks.abort_all();
                return Err(PagingError::Task(join.to_string()));
            }
        }
    }
    Ok((carried, resumed))
}

/// Sequences that run at once: as many as requests may be in flight, so that a sequence holding
/// a live continuation token is never starved long enough for the token to expire.
fn client_parallelism(client: &Client) -> usize {
    client.max_in_flight()
}
