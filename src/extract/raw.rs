//! The raw archive (`--keep-raw DIR`): every page exactly as received, gzip-compressed, with its
//! request metadata, so an auditor can see what the API said and a run can be re-derived from it.
//!
//! Layout: `pages/<dataset>/<scope>/a<attempt>-p<page>.json.gz` (`.pdf.gz` for statements) and
//! `index.jsonl`, one line per event in the order the run took them: pages (dataset, scope,
//! attempt, page, MS-RequestId, URL, time, bytes, SHA-256, items, file), restarts and completions,
//! and last an `end` line with the number of sequences and pages, written only once the whole
//! extraction succeeded ([`RawArchive::seal`]). An archive without it (a run that failed or was
//! killed, an index cut short) is refused by [`replay`], as is one whose lines do not add up.
//! Continuation tokens and access tokens are never written: the URL carries neither.
//!
//! [`replay`] reads an archive back into the same events, each page checked against its SHA-256:
//! `pcrecon run --from-raw` rebuilds the run's snapshot from them without the API.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Read;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::page::{Event, ExportLineage, Page, Paging, scope_name};
use crate::tabular::Dataset;

#[derive(Serialize)]
struct IndexLine<'a> {
    event: &'static str,
    dataset: Dataset,
    scope: &'a str,
    attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fetched_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    items: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paging: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    export: Option<&'a ExportLineage>,
}

impl<'a> IndexLine<'a> {
    /// A line that marks a sequence (a restart, or an export not ready) with why.
    fn marker(event: &'static str, dataset: Dataset, scope: &'a str, attempt: u32, reason: &'a str) -> Self {
        IndexLine {
            event,
            dataset,
            scope,
            attempt,
            page: None,
            request_id: None,
            url: None,
            fetched_at: None,
            bytes: None,
            sha256: None,
            items: None,
            file: None,
            reason: Some(reason),
            paging: None,
            export: None,
        }
    }
}

/// The last line of a complete archive's index.
#[derive(Serialize, Deserialize)]
struct EndLine {
    event: String,
    sequences: u64,
    pages: u64,
}

/// Writes the archive.
pub struct RawArchive {
    dir: PathBuf,
    index: BufWriter<File>,
    sequences: u64,
    pages: u64,
}

impl RawArchive {
    /// Opens (creates) an archive folder for one run: an index already there is replaced.
    pub fn open(dir: &Path) -> std::io::Result<RawArchive> {
        fs::create_dir_all(dir.join("pages"))?;
        let index = OpenOptions::new().create(true).write(true).truncate(true).open(dir.join("index.jsonl"))?;
        Ok(RawArchive { dir: dir.to_path_buf(), index: BufWriter::new(index), sequences: 0, pages: 0 })
    }

    /// Records one event.
    pub fn record(&mut self, event: &Event) -> std::io::Result<()> {
        let line = match event {
            Event::Page(p) => {
                let ext = p.dataset.file_extension().unwrap_or("json");
                let rel =
                    format!("pages/{}/{}/a{}-p{:05}.{ext}.gz", p.dataset, scope_name(&p.scope), p.attempt, p.number);
                let path = self.dir.join(&rel);
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)?;
                }
                let mut gz = GzEncoder::new(BufWriter::new(File::create(&path)?), Compression::fast());
                gz.write_all(&p.body)?;
                gz.finish()?.flush()?;
                let sha = Sha256::digest(&p.body);
                self.pages += 1;
                serde_json::to_string(&IndexLine {
                    event: "page",
                    dataset: p.dataset,
                    scope: &p.scope,
                    attempt: p.attempt,
                    page: Some(p.number),
                    request_id: Some(&p.request_id),
                    url: Some(&p.url),
                    fetched_at: Some(p.fetched_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                    bytes: Some(p.body.len()),
                    sha256: Some(crate::model::hex(&sha)),
                    items: Some(p.items.len() as u64),
                    file: Some(rel),
                    reason: None,
                    paging: Some(p.paging.name()),
                    export: None,
                })
            }
            Event::Restart { dataset, scope, attempt, reason } => {
                serde_json::to_string(&IndexLine::marker("restart", *dataset, scope, *attempt, reason))
            }
            Event::NotReady { dataset, scope, detail } => {
                self.sequences += 1;
                serde_json::to_string(&IndexLine::marker("not_ready", *dataset, scope, 1, detail))
            }
            Event::Done { dataset, scope, attempt, pages, items, export } => {
                self.sequences += 1;
                serde_json::to_string(&IndexLine {
                    event: "done",
                    dataset: *dataset,
                    scope,
                    attempt: *attempt,
                    page: Some(*pages),
                    request_id: None,
                    url: None,
                    fetched_at: None,
                    bytes: None,
                    sha256: None,
                    items: Some(*items),
                    file: None,
                    reason: None,
                    paging: None,
                    export: export.as_deref(),
                })
            }
        }
        .map_err(std::io::Error::other)?;
        self.index.write_all(line.as_bytes())?;
        self.index.write_all(b"\n")
    }

    /// Marks the archive complete, once the extraction it recorded succeeded: writes the `end`
    /// line and makes the index durable.
    pub fn seal(mut self) -> std::io::Result<()> {
        let end = EndLine { event: "end".into(), sequences: self.sequences, pages: self.pages };
        let line = serde_json::to_string(&end).map_err(std::io::Error::other)?;
        self.index.write_all(line.as_bytes())?;
        self.index.write_all(b"\n")?;
        self.index.flush()?;
        self.index.get_ref().sync_all()
    }
}

/// One line of `index.jsonl`, read back.
#[derive(Deserialize)]
struct IndexEntry {
    event: String,
    dataset: String,
    scope: String,
    attempt: u32,
    #[serde(default)]
    page: Option<u32>,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    fetched_at: Option<String>,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    items: Option<u64>,
    /// The page's size, uncompressed.
    #[serde(default)]
    bytes: Option<usize>,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    paging: Option<String>,
    #[serde(default)]
    export: Option<ExportLineage>,
}

/// How a dataset's pages hold their items (what the pager knew from the endpoint).
fn paging_of(dataset: Dataset) -> Paging {
    match dataset {
        Dataset::Documents | Dataset::FxRates => Paging::Document,
        Dataset::Invoices => Paging::Single,
        _ => Paging::Unpaged,
    }
}

/// The entries of a complete index (line number, entry), without its `end` line; an index that is not
/// complete is refused before anything is replayed: no `end` line last, counts that differ from
/// it, or a sequence whose pages do not add up to what its completion says.
fn complete_index(index_path: &Path, index: &str) -> Result<Vec<(usize, IndexEntry)>, String> {
    let incomplete = |why: String| {
        format!(
            "the raw archive {} is incomplete ({why}): it is not the record of a run that finished; \
             archive a run again with --keep-raw",
            index_path.display()
        )
    };
    let mut lines: Vec<(usize, &str)> = index.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).collect();
    let end = lines
        .pop()
        .and_then(|(_, last)| serde_json::from_str::<EndLine>(last).ok())
        .filter(|end| end.event == "end")
        .ok_or_else(|| incomplete("its index has no end line".into()))?;
    // Pages of each sequence's current attempt, until its completion checks them.
    let mut open: std::collections::HashMap<(String, String), (u32, u32)> = std::collections::HashMap::new();
    let (mut sequences, mut pages) = (0u64, 0u64);
    let mut entries = Vec::with_capacity(lines.len());
    for (number, line) in lines {
        let shape: IndexEntry =
            serde_json::from_str(line).map_err(|e| format!("{} line {}: {e}", index_path.display(), number + 1))?;
        let key = (shape.dataset.clone(), shape.scope.clone());
        match shape.event.as_str() {
            "page" => {
                pages += 1;
                let entry = open.entry(key).or_insert((shape.attempt, 0));
                if entry.0 != shape.attempt {
                    *entry = (shape.attempt, 0);
                }
                entry.1 += 1;
            }
            "restart" => {
                open.insert(key, (shape.attempt, 0));
            }
            "not_ready" => {
                sequences += 1;
                open.remove(&key);
            }
            "done" => {
                sequences += 1;
                let seen = open.remove(&key).map_or(0, |(_, n)| n);
                let said = shape.page.unwrap_or(0);
                if seen != said {
                    return Err(incomplete(format!(
                        "line {}: {}/{} ends after {said} pages, the index lists {seen}",
                        number + 1,
                        key.0,
                        key.1
                    )));
                }
            }
            _ => {}
        }
        entries.push((number, shape));
    }
    if let Some(((dataset, scope), _)) = open.into_iter().min() {
        return Err(incomplete(format!("{dataset}/{scope} has pages but no end")));
    }
    if (sequences, pages) != (end.sequences, end.pages) {
        return Err(incomplete(format!(
            "the end line counts {} sequences and {} pages, the index lists {sequences} and {pages}",
            end.sequences, end.pages
        )));
    }
    Ok(entries)
}

/// The largest page size a replay trusts its index for when it allocates.
const PREALLOCATED_PAGE: usize = 256 << 20;

/// What a replay sent.
#[derive(Debug, Default, Clone, Copy)]
pub struct Replayed {
    /// Pages.
    pub pages: u64,
    /// Completed sequences.
    pub sequences: u64,
    /// Bytes of JSON (uncompressed).
    pub bytes: u64,
}

/// What checking an archive found (`pcrecon verify RAWDIR`).
#[derive(Debug, Default)]
pub struct ArchiveCheck {
    /// Pages the index lists.
    pub pages: u64,
    /// Sequences it completes.
    pub sequences: u64,
    /// Bytes of the pages, uncompressed, as read.
    pub bytes: u64,
    /// Every page file that is missing, unreadable, or not what the index records (size,
    /// SHA-256), and every file under `pages/` the index does not list.
    pub problems: Vec<String>,
}

/// Checks the archive in `dir` without rebuilding anything: its index is complete (it ends
/// with the `end` line and its counts add up), and every page it lists is there with the size
/// and SHA-256 it records. An incomplete index is an error; the pages' problems are all listed.
pub fn check_archive(dir: &Path) -> Result<ArchiveCheck, String> {
    let index_path = dir.join("index.jsonl");
    let index = fs::read_to_string(&index_path).map_err(|e| format!("cannot read {}: {e}", index_path.display()))?;
    let mut check = ArchiveCheck::default();
    let mut listed = std::collections::BTreeSet::new();
    for (number, entry) in complete_index(&index_path, &index)? {
        match entry.event.as_str() {
            "done" | "not_ready" => check.sequences += 1,
            "page" => {
                check.pages += 1;
                let at = format!("index line {}", number + 1);
                let Some(file) = entry.file.as_deref() else {
                    check.problems.push(format!("{at}: a page without a file"));
                    continue;
                };
                listed.insert(file.to_owned());
                let mut body = Vec::new();
                let read = File::open(dir.join(file))
                    .and_then(|f| flate2::read::GzDecoder::new(f).read_to_end(&mut body).map(|_| ()));
                if let Err(e) = read {
                    check.problems.push(format!("{file}: {e}"));
                    continue;
                }
                check.bytes += body.len() as u64;
                let sha = crate::model::hex(&Sha256::digest(&body));
                if entry.sha256.as_deref() != Some(sha.as_str()) {
                    check.problems.push(format!(
                        "{file}: SHA-256 {sha}, the index records {}",
                        entry.sha256.as_deref().unwrap_or("none")
                    ));
                } else if entry.bytes.is_some_and(|b| b != body.len()) {
                    check.problems.push(format!(
                        "{file}: {} bytes, the index records {}",
                        body.len(),
                        entry.bytes.unwrap_or(0)
                    ));
                }
            }
            _ => {}
        }
    }
    let mut stack = vec![dir.join("pages")];
    while let Some(folder) = stack.pop() {
        let Ok(entries) = fs::read_dir(&folder) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(relative) = path.strip_prefix(dir) {
                let relative = relative.to_string_lossy().into_owned();
                if !listed.contains(&relative) {
                    check.problems.push(format!("{relative}: not in the index"));
                }
            }
        }
    }
    check.problems.sort();
    Ok(check)
}

/// Reads the archive in `dir` back into the events the run took, in its order, into `send`
/// (which returns `false` when its consumer has gone). Every page is checked against its
/// SHA-256; an entry that cannot be read fails with the index line and the file.
pub fn replay(dir: &Path, mut send: impl FnMut(Event) -> bool) -> Result<Replayed, String> {
    let index_path = dir.join("index.jsonl");
    let index = fs::read_to_string(&index_path).map_err(|e| format!("cannot read {}: {e}", index_path.display()))?;
    let entries = complete_index(&index_path, &index)?;
    let mut replayed = Replayed::default();
    for (number, entry) in entries {
        let at = || format!("{} line {}", index_path.display(), number + 1);
        let dataset = Dataset::from_name(&entry.dataset)
            .ok_or_else(|| format!("{}: unknown dataset {:?}", at(), entry.dataset))?;
        let event = match entry.event.as_str() {
            "page" => {
                let file = entry.file.as_deref().ok_or_else(|| format!("{}: a page without a file", at()))?;
                let paging = entry.paging.as_deref().and_then(Paging::from_name).unwrap_or_else(|| paging_of(dataset));
                let path = dir.join(file);
                // The index records the page's size: read it into one allocation (a lying index
                // only costs a regrowth).
                let mut body = Vec::with_capacity(entry.bytes.unwrap_or(0).min(PREALLOCATED_PAGE));
                flate2::read::GzDecoder::new(
                    File::open(&path).map_err(|e| format!("{}: {}: {e}", at(), path.display()))?,
                )
                .read_to_end(&mut body)
                .map_err(|e| format!("{}: {}: {e}", at(), path.display()))?;
                let (body, items) =
                    super::verified_page(&path, body, entry.sha256.as_deref().unwrap_or_default(), paging)
                        .map_err(|e| format!("{}: {e}", at()))?;
                replayed.pages += 1;
                replayed.bytes += body.len() as u64;
                Event::Page(Page {
                    dataset,
                    scope: entry.scope,
                    attempt: entry.attempt,
                    number: entry.page.unwrap_or(1),
                    request_id: entry.request_id.unwrap_or_default(),
                    url: entry.url.unwrap_or_default(),
                    fetched_at: entry
                        .fetched_at
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .unwrap_or_default(),
                    body,
                    items,
                    paging,
                })
            }
            "restart" => Event::Restart {
                dataset,
                scope: entry.scope,
                attempt: entry.attempt,
                reason: entry.reason.unwrap_or_default(),
            },
            "not_ready" => {
                replayed.sequences += 1;
                Event::NotReady { dataset, scope: entry.scope, detail: entry.reason.unwrap_or_default() }
            }
            "done" => {
                replayed.sequences += 1;
                Event::Done {
                    dataset,
                    scope: entry.scope,
                    attempt: entry.attempt,
                    pages: entry.page.unwrap_or(0),
                    items: entry.items.unwrap_or(0),
                    export: entry.export.map(Box::new),
                }
            }
            other => return Err(format!("{}: unknown event {other:?}", at())),
        };
        if !send(event) {
            break;
        }
    }
    Ok(replayed)
}
