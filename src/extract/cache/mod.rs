//! The page cache of an output folder (`OUT/.cache`): every sequence a run fetched, page by page
//! exactly as received (zstd), and a marker (`sequence.json`) written last that lists the pages
//! with their SHA-256. The marker is written when the fetch ends, as `sequence.pending.json`,
//! and becomes `sequence.json` only once the run decoded every page of it ([`PageCache::confirm`]):
//! a sequence whose data failed the run is fetched again by the next one, never replayed.
//! It is what makes runs incremental and resumable:
//!
//! - a billed invoice's sequences are reused by later runs for as long as the invoice's entry in
//!   the invoice list (its fingerprint) is unchanged, unless the run is told to `--refresh`;
//! - every other sequence (unbilled and master data) is reused only by the attempt that fetched
//!   it, that is by a run started again after a crash;
//! - a sequence without a marker, or with a page that does not hash to it, is fetched again.
//!
//! Replayed pages become the same events a fetch gives, so nothing downstream can tell them
//! apart, and a resumed run publishes the same bytes as an uninterrupted one.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::api::paging::{PagingError, Sequence};
use crate::model::hex;
use crate::model::page::scope_name;
use crate::model::page::{Event, ExportLineage, Page, Paging};
use crate::tabular::Dataset;

const MARKER: &str = "sequence.json";
/// The marker's format. Format 1 was confirmed before its pages decoded: such a sequence is
/// fetched again.
const MARKER_FORMAT: u32 = 2;
/// The marker of a sequence fetched whole but not yet decoded.
const PENDING: &str = "sequence.pending.json";
const ATTEMPT: &str = "attempt.json";
/// zstd level of cached pages: the fastest, since the cache is written while the run waits.
const LEVEL: i32 = 1;

/// When a cached sequence may stand in for a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reuse {
    /// Only within the attempt that fetched it (unbilled data, master data).
    Attempt,
    /// Across runs while the billed invoice's fingerprint is unchanged.
    Invoice {
        /// SHA-256 of the invoice's entry in the invoice list.
        fingerprint: String,
    },
}

/// A run of the job from its first start to its publication, over any number of restarts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    /// Random id.
    pub id: String,
    /// When its first run started (RFC 3339).
    pub started_at: String,
    /// The run id its latest run will publish under.
    pub run_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    format: u32,
    dataset: String,
    scope: String,
    /// First URL, relative to the API root: a sequence asked differently is another sequence.
    first: String,
    paging: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fingerprint: Option<String>,
    attempt: String,
    items: u64,
    pages: Vec<PageEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    export: Option<ExportLineage>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PageEntry {
    file: String,
    bytes: u64,
    sha256: String,
    request_id: String,
    url: String,
    fetched_at: String,
}

/// What the cache holds for a sequence that may be reused.
#[derive(Debug)]
pub struct Cached {
    marker: Marker,
    /// Whether it comes from an earlier run (carried) rather than this attempt (resumed).
    pub carried: bool,
}

/// The cache of one output folder. Only the holder of the folder's lock opens it.
#[derive(Debug)]
pub struct PageCache {
    root: PathBuf,
    attempt: Attempt,
    refresh: bool,
}

/// The attempt `attempt.json` names, unless its run was published.
fn unpublished_attempt(out: &Path, root: &Path) -> Option<Attempt> {
    let bytes = fs::read(root.join(ATTEMPT)).ok()?;
    let attempt: Attempt = serde_json::from_slice(&bytes).ok()?;
    (!out.join(&attempt.run_id).join("manifest.json").exists()).then_some(attempt)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}

impl PageCache {
    /// Opens the cache of `out` for a run that will publish as `run_id`. An attempt that did not
    /// publish and started less than `resume_within` ago is resumed; otherwise a new one begins.
    pub fn open(
        out: &Path,
        run_id: &str,
        refresh: bool,
        resume_within: Duration,
        now: chrono::DateTime<chrono::Utc>,
    ) -> io::Result<PageCache> {
        let root = out.join(".cache");
        fs::create_dir_all(&root)?;
        let resumable = unpublished_attempt(out, &root).filter(|a| {
            chrono::DateTime::parse_from_rfc3339(&a.started_at)
                .ok()
                .and_then(|t| (now - t.with_timezone(&chrono::Utc)).to_std().ok())
                .is_some_and(|age| age <= resume_within)
        });
        let attempt = match resumable {
            Some(mut a) => {
                tracing::info!(event = "attempt_resumed", attempt = %a.id, started_at = %a.started_at);
                a.run_id = run_id.to_owned();
                a
            }
            None => Attempt {
                id: uuid::Uuid::new_v4().to_string(),
                started_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                run_id: run_id.to_owned(),
            },
        };
        let text = serde_json::to_vec_pretty(&attempt).map_err(io::Error::other)?;
        write_atomically(&root.join(ATTEMPT), &text)?;
        // Files a killed run left half-downloaded are never used: they are fetched again.
        match fs::remove_dir_all(root.join("spool")) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        Ok(PageCache { root, attempt, refresh })
    }

    /// Opens the cache without changing it, to plan a dry run.
    pub fn peek(out: &Path, refresh: bool) -> PageCache {
        let root = out.join(".cache");
        let attempt = unpublished_attempt(out, &root).unwrap_or(Attempt {
            id: String::new(),
            started_at: String::new(),
            run_id: String::new(),
        });
        PageCache { root, attempt, refresh }
    }

    /// Where v2 export files wait, whole, before their lines are used (emptied at every open).
    pub fn spool(&self) -> PathBuf {
        self.root.join("spool")
    }

    /// The attempt this run belongs to.
    pub fn attempt(&self) -> &Attempt {
        &self.attempt
    }

    fn dir(&self, dataset: Dataset, scope: &str) -> PathBuf {
        self.root.join(dataset.name()).join(scope_name(scope))
    }

    /// The cached sequence that may replace fetching `seq` (whose first URL relative to the API
    /// root is `first`), if any.
    pub fn reusable(&self, seq: &Sequence, first: &str, reuse: &Reuse) -> Option<Cached> {
        let bytes = fs::read(self.dir(seq.dataset, &seq.scope).join(MARKER)).ok()?;
        let marker: Marker = serde_json::from_slice(&bytes).ok()?;
        if marker.format != MARKER_FORMAT
            || marker.dataset != seq.dataset.name()
            || marker.scope != seq.scope
            || marker.first != first
        {
            return None;
        }
        let this_attempt = !self.attempt.id.is_empty() && marker.attempt == self.attempt.id;
        let usable = match reuse {
            Reuse::Attempt => this_attempt,
            Reuse::Invoice { fingerprint } => {
                marker.fingerprint.as_ref() == Some(fingerprint) && (this_attempt || !self.refresh)
            }
        };
        usable.then_some(Cached { carried: !this_attempt, marker })
    }

    /// Replays a cached sequence into `tx`. Every page is checked against its SHA-256 first; on
    /// a missing or altered page the consumer is told to drop what it had, and `false` says
    /// that the sequence has to be fetched.
    pub async fn replay(&self, seq: &Sequence, cached: Cached, tx: &mpsc::Sender<Event>) -> Result<bool, PagingError> {
        let dir = self.dir(seq.dataset, &seq.scope);
        // Replayed pages are decoded again: until they are, the sequence is pending once more.
        fs::rename(dir.join(MARKER), dir.join(PENDING))
            .map_err(|e| PagingError::Cache(format!("{}: {e}", dir.display())))?;
        let paging = Paging::from_name(&cached.marker.paging).unwrap_or(seq.paging);
        let mut items_total = 0u64;
        for (index, entry) in cached.marker.pages.iter().enumerate() {
            let number = index as u32 + 1;
            let path = dir.join(&entry.file);
            let loaded = tokio::task::block_in_place(|| load_page(&path, entry, paging));
            let (body, items) = match loaded {
                Ok(page) => page,
                Err(reason) => {
                    tracing::warn!(event = "cached_page_rejected", page = number, %reason);
                    if number > 1 {
                        let restart =
                            Event::Restart { dataset: seq.dataset, scope: seq.scope.clone(), attempt: 2, reason };
                        tx.send(restart).await.map_err(|_| PagingError::Closed)?;
                    }
                    return Ok(false);
                }
            };
            items_total += items.len() as u64;
            let page = Page {
                dataset: seq.dataset,
                scope: seq.scope.clone(),
                attempt: 1,
                number,
                request_id: entry.request_id.clone(),
                url: entry.url.clone(),
                fetched_at: chrono::DateTime::parse_from_rfc3339(&entry.fetched_at)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .unwrap_or_default(),
                body,
                items,
                paging,
            };
            tx.send(Event::Page(page)).await.map_err(|_| PagingError::Closed)?;
        }
        let done = Event::Done {
            dataset: seq.dataset,
            scope: seq.scope.clone(),
            attempt: 1,
            pages: cached.marker.pages.len() as u32,
            items: items_total,
            export: cached.marker.export.map(Box::new),
        };
        tx.send(done).await.map_err(|_| PagingError::Closed)?;
        Ok(true)
    }

    /// Marks a sequence fetched by this run as decoded: from now on it may stand in for a fetch.
    /// Returns whether there was one to confirm (a replayed sequence has none).
    pub fn confirm(&self, dataset: Dataset, scope: &str) -> io::Result<bool> {
        let dir = self.dir(dataset, scope);
        match fs::rename(dir.join(PENDING), dir.join(MARKER)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Starts recording a fetch of `seq`, first forgetting what the cache had of it.
    pub fn recorder(&self, seq: &Sequence, first: &str, reuse: &Reuse) -> io::Result<Recorder> {
        let dir = self.dir(seq.dataset, &seq.scope);
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(&dir)?;
        let fingerprint = match reuse {
            Reuse::Invoice { fingerprint } => Some(fingerprint.clone()),
            Reuse::Attempt => None,
        };
        Ok(Recorder {
            dir,
            marker: Marker {
                format: MARKER_FORMAT,
                dataset: seq.dataset.to_string(),
                scope: seq.scope.clone(),
                first: first.to_owned(),
                paging: seq.paging.name().to_owned(),
                fingerprint,
                attempt: self.attempt.id.clone(),
                items: 0,
                pages: Vec::new(),
                export: None,
            },
            current_attempt: 1,
        })
    }

    /// After a publication: the attempt is over, and only billed invoices' sequences stay.
    pub fn finish_attempt(&self) -> io::Result<()> {
        fs::remove_file(self.root.join(ATTEMPT))?;
        for dataset in fs::read_dir(&self.root)?.flatten().filter(|e| e.path().is_dir() && e.file_name() != "spool") {
            for scope in fs::read_dir(dataset.path())?.flatten() {
                let keep = fs::read(scope.path().join(MARKER))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Marker>(&b).ok())
                    .is_some_and(|m| m.fingerprint.is_some());
                if !keep {
                    fs::remove_dir_all(scope.path())?;
                }
            }
        }
        Ok(())
    }
}

fn load_page(path: &Path, entry: &PageEntry, paging: Paging) -> Result<(Bytes, Vec<std::ops::Range<usize>>), String> {
    let compressed = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let body = zstd::stream::decode_all(compressed.as_slice()).map_err(|e| format!("{}: {e}", path.display()))?;
    super::verified_page(path, body, &entry.sha256, paging)
}

/// Writes one fetched sequence into the cache as its events go by.
#[derive(Debug)]
pub struct Recorder {
    dir: PathBuf,
    marker: Marker,
    current_attempt: u32,
}

impl Recorder {
    /// Records one event of the sequence; its completion writes the pending marker.
    pub fn record(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::Page(page) => {
                if page.attempt != self.current_attempt {
                    self.current_attempt = page.attempt;
                    self.marker.pages.clear();
                }
                let file = format!("a{}-p{:05}.json.zst", page.attempt, page.number);
                let mut encoder = zstd::stream::Encoder::new(fs::File::create(self.dir.join(&file))?, LEVEL)?;
                encoder.write_all(&page.body)?;
                encoder.finish()?;
                self.marker.pages.push(PageEntry {
                    file,
                    bytes: page.body.len() as u64,
                    sha256: hex(&Sha256::digest(&page.body)),
                    request_id: page.request_id.clone(),
                    url: page.url.clone(),
                    fetched_at: page.fetched_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                });
            }
            // A sequence not ready has no marker (its event does not come through here: it is
            // sent after the fetch that failed), so the next run asks again.
            Event::Restart { .. } | Event::NotReady { .. } => self.marker.pages.clear(),
            Event::Done { items, export, .. } => {
                self.marker.items = *items;
                self.marker.export = export.as_deref().cloned();
                let keep: std::collections::HashSet<&str> = self.marker.pages.iter().map(|p| p.file.as_str()).collect();
                for entry in fs::read_dir(&self.dir)?.flatten() {
                    if !keep.contains(entry.file_name().to_string_lossy().as_ref()) {
                        fs::remove_file(entry.path())?;
                    }
                }
                let text = serde_json::to_vec_pretty(&self.marker).map_err(io::Error::other)?;
                write_atomically(&self.dir.join(PENDING), &text)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
