//! The v2 asynchronous export on Microsoft Graph (spec §12), as one more source of pages: request
//! an export, poll its operation until it is ready (honouring `Retry-After`, up to a wall-clock
//! deadline), read the manifest, then download every file, gunzip it and cut its JSON lines into
//! the same [`Event`]s the v1 pager sends.
//!
//! A file is used only once all of it has arrived: it is downloaded into a spool folder and
//! decompressed there whole (every gzip member, every CRC), and every non-blank line checked to
//! start with `{` and end with `}`, before its first line goes downstream. The GA manifest gives no
//! per-file counts (spec §17.6), only `blobCount`, which is checked against the files it lists;
//! where a manifest does give a file's `itemCount` or `sizeInBytes` (Microsoft's sample model, the
//! older beta), those are checked too. A file that fails is downloaded again; an
//! expired operation (410) or an expired shared-access signature starts a new export. When the new
//! export describes other data (another eTag or other files) after lines were already sent, the
//! consumer is told to drop them ([`Event::Restart`]) and the sequence starts over.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::mpsc;

use crate::api::auth::TokenKind;
use crate::api::http::{Call, Client, Context, Response};
use crate::api::paging::{PagingError, Sequence, line_spans};
use crate::config::V2Settings;
use crate::model::page::{Event, ExportLineage, Page, Paging};

/// New exports one sequence may start after expiries before it gives up.
const MAX_EXPORTS: u32 = 10;
/// Downloads of one file before a new export is asked for.
const MAX_DOWNLOADS: u32 = 3;
/// A page holds about this many bytes of lines.
const PAGE_BYTES: usize = 4 << 20;
/// Longest pause between polls when the service names none.
const MAX_POLL_WAIT: Duration = Duration::from_secs(30);

/// One file of a manifest.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct BlobEntry {
    name: String,
    #[serde(default)]
    item_count: Option<u64>,
    #[serde(default)]
    size_in_bytes: Option<u64>,
}

/// The manifest of a finished export (also the older beta names). Its `Debug` leaves the
/// shared-access signature out.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    id: String,
    #[serde(rename = "eTag", alias = "etag", default)]
    etag: String,
    #[serde(alias = "rootFolder")]
    root_directory: String,
    #[serde(alias = "rootFolderSAS", default)]
    sas_token: String,
    #[serde(default)]
    blob_count: Option<usize>,
    #[serde(default)]
    blobs: Vec<BlobEntry>,
}

impl std::fmt::Debug for Manifest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manifest")
            .field("id", &self.id)
            .field("etag", &self.etag)
            .field("root_directory", &self.root_directory)
            .field("sas_token", &"[redacted]")
            .field("blob_count", &self.blob_count)
            .field("blobs", &self.blobs)
            .finish()
    }
}

/// An export whose manifest is in hand.
struct Ready {
    operation_id: String,
    manifest: Manifest,
}

#[derive(Deserialize)]
struct Operation {
    #[serde(rename = "@odata.type", default)]
    odata_type: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    status: String,
    #[serde(rename = "resourceLocation@odata.navigationLink", default)]
    manifest_link: Option<String>,
    #[serde(rename = "resourceLocation", default)]
    embedded: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<OperationError>,
}

#[derive(Deserialize)]
struct OperationError {
    #[serde(default)]
    code: serde_json::Value,
    #[serde(default)]
    message: String,
}

/// Why a file could not be used.
enum BlobFailure {
    /// The signature was refused (expired): a new export gives a new one.
    Expired,
    /// Its lines did not all arrive, again and again.
    Incomplete(String),
    /// The request failed for good.
    Failed(PagingError),
}

/// Fetches a v2 sequence to its end into `tx`; returns the number of items.
pub async fn run(
    client: &Client,
    seq: &Sequence,
    v2: &V2Settings,
    spool: &Path,
    tx: &mpsc::Sender<Event>,
) -> Result<u64, PagingError> {
    let mut exports = 1;
    let mut ready = ready_export(client, seq, v2, &mut exports).await?;
    let mut attempt = 1u32;
    let mut pages = 0u32;
    let mut items = 0u64;
    let mut index = 0;
    while index < ready.manifest.blobs.len() {
        let blob = ready.manifest.blobs[index].clone();
        match download(client, seq, &ready.manifest, &blob, spool).await {
            Ok(spooled) => {
                let sent = send_lines(seq, attempt, &mut pages, &spooled, tx).await;
                let _ = std::fs::remove_file(&spooled.path);
                items += sent?;
                index += 1;
                // Progress: the bound is on exports that expire one after another.
                exports = 1;
            }
            Err(BlobFailure::Failed(e)) => return Err(e),
            Err(failure) => {
                let reason = match failure {
                    BlobFailure::Incomplete(reason) => reason,
                    _ => "the shared-access signature was refused".to_owned(),
                };
                tracing::info!(event = "export_renewed", dataset = seq.dataset.name(), scope = %seq.scope, blob = %blob.name, %reason);
                exports += 1;
                let fresh = match ready_export(client, seq, v2, &mut exports).await {
                    Ok(fresh) => fresh,
                    Err(e) => {
                        // Whatever comes next (a retry, a fallback to v1) starts from nothing:
                        // the lines already sent must go.
                        if pages > 0 {
                            let reason = format!("the renewed export failed: {e}");
                            let restart = Event::Restart {
                                dataset: seq.dataset,
                                scope: seq.scope.clone(),
                                attempt: attempt + 1,
                                reason,
                            };
                            tx.send(restart).await.map_err(|_| PagingError::Closed)?;
                        }
                        return Err(e);
                    }
                };
                let same_data =
                    fresh.manifest.etag == ready.manifest.etag && fresh.manifest.blobs == ready.manifest.blobs;
                if !same_data {
                    if pages > 0 {
                        attempt += 1;
                        let reason = format!(
                            "the export changed (eTag {} → {}, {} → {} files)",
                            ready.manifest.etag,
                            fresh.manifest.etag,
                            ready.manifest.blobs.len(),
                            fresh.manifest.blobs.len()
                        );
                        tracing::info!(event = "export_restart", dataset = seq.dataset.name(), scope = %seq.scope, attempt, %reason);
                        tx.send(Event::Restart { dataset: seq.dataset, scope: seq.scope.clone(), attempt, reason })
                            .await
                            .map_err(|_| PagingError::Closed)?;
                    }
                    (pages, items, index) = (0, 0, 0);
                }
                ready = fresh;
            }
        }
    }
    if pages == 0 {
        // An export without lines still completes its sequence with one empty page, as v1 does.
        pages = 1;
        let nowhere = Arrival {
            request_id: String::new(),
            url: format!("{}/", ready.manifest.root_directory),
            fetched_at: chrono::Utc::now(),
        };
        let page = page(seq, attempt, 1, &nowhere, Vec::new());
        tx.send(Event::Page(page)).await.map_err(|_| PagingError::Closed)?;
    }
    let lineage = ExportLineage {
        operation_id: ready.operation_id,
        manifest_id: ready.manifest.id,
        etag: ready.manifest.etag,
        attribute_set: v2.attribute_set.to_owned(),
        blobs: ready.manifest.blobs.into_iter().map(|b| b.name).collect(),
    };
    let done = Event::Done {
        dataset: seq.dataset,
        scope: seq.scope.clone(),
        attempt,
        pages,
        items,
        export: Some(Box::new(lineage)),
    };
    tx.send(done).await.map_err(|_| PagingError::Closed)?;
    Ok(items)
}

fn context(seq: &Sequence, page: u32) -> Context {
    Context { dataset: seq.dataset, scope: seq.scope.clone(), page }
}

fn failure(seq: &Sequence, detail: String) -> PagingError {
    PagingError::Export { context: context(seq, 0), detail, no_data: false }
}

/// Requests an export and waits for its manifest, starting over when the operation or the
/// manifest has expired (410). `exports` counts the requests made for this sequence.
async fn ready_export(
    client: &Client,
    seq: &Sequence,
    v2: &V2Settings,
    exports: &mut u32,
) -> Result<Ready, PagingError> {
    loop {
        if *exports > MAX_EXPORTS {
            return Err(failure(seq, format!("expired {MAX_EXPORTS} times in a row; giving up")));
        }
        match request_export(client, seq, v2).await? {
            Some(ready) => return Ok(ready),
            None => *exports += 1,
        }
    }
}

/// One export: `None` when it expired (410) before its manifest was read.
async fn request_export(client: &Client, seq: &Sequence, v2: &V2Settings) -> Result<Option<Ready>, PagingError> {
    let ctx = context(seq, 0);
    let body = seq.export.as_deref().unwrap_or("{}").as_bytes();
    let call = Call { json: Some(body), ..Call::get(&seq.first, TokenKind::Graph, &ctx) };
    let accepted = client.get(&call).await?;
    let location = header(&accepted, "location")
        .ok_or_else(|| failure(seq, format!("request was answered {} without a Location header", accepted.status)))?;
    // A relative `Location` is resolved against the export's own URL.
    let location =
        url::Url::parse(&seq.first).and_then(|first| first.join(&location)).map_or(location, |u| u.to_string());
    let deadline = Instant::now() + v2.export_timeout;
    tracing::debug!(event = "export_requested", dataset = seq.dataset.name(), scope = %seq.scope, operation = %location);
    let mut polls = 0u32;
    loop {
        let response = match client.get(&Call::get(&location, TokenKind::Graph, &ctx)).await {
            Err(e) if e.status() == Some(410) => return Ok(None),
            other => other?,
        };
        polls += 1;
        let operation: Operation = serde_json::from_slice(&response.body)
            .map_err(|e| failure(seq, format!("operation {location} is not readable: {e}")))?;
        let kind = operation.odata_type.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
        let status = operation.status.to_ascii_lowercase();
        if kind == "exportsuccessoperation" || status == "succeeded" || status == "completed" {
            let manifest = match (operation.manifest_link, operation.embedded) {
                (Some(link), _) => match client.get(&Call::get(&link, TokenKind::Graph, &ctx)).await {
                    Err(e) if e.status() == Some(410) => return Ok(None),
                    other => serde_json::from_slice::<Manifest>(&other?.body)
                        .map_err(|e| failure(seq, format!("manifest {link} is not readable: {e}")))?,
                },
                (None, Some(embedded)) => serde_json::from_value(embedded).map_err(|e| {
                    failure(seq, format!("the manifest in operation {} is not readable: {e}", operation.id))
                })?,
                (None, None) => {
                    return Err(failure(seq, format!("operation {} succeeded without a manifest", operation.id)));
                }
            };
            if manifest.blob_count.is_some_and(|n| n != manifest.blobs.len()) {
                return Err(failure(
                    seq,
                    format!(
                        "manifest {} lists {} files but says blobCount {:?}",
                        manifest.id,
                        manifest.blobs.len(),
                        manifest.blob_count
                    ),
                ));
            }
            tracing::debug!(event = "export_ready", dataset = seq.dataset.name(), scope = %seq.scope, operation = %operation.id, manifest = %manifest.id, etag = %manifest.etag, blobs = manifest.blobs.len(), polls);
            return Ok(Some(Ready { operation_id: operation.id, manifest }));
        }
        if kind == "failedoperation" || status == "failed" {
            let (code, message) = operation.error.map_or((String::new(), String::new()), |e| {
                (e.code.as_str().map_or_else(|| e.code.to_string(), str::to_owned), e.message)
            });
            return Err(PagingError::Export {
                context: ctx,
                no_data: code == "5000",
                detail: format!("operation {} failed with code {code}: {message}", operation.id),
            });
        }
        let wait = crate::api::http::retry_after(&response.headers)
            .unwrap_or_else(|| Duration::from_millis(500 * 2u64.pow(polls.min(6))).min(MAX_POLL_WAIT));
        if Instant::now() + wait > deadline {
            return Err(failure(
                seq,
                format!(
                    "operation {} was still {} after {} s (extract.v2.export_timeout_secs)",
                    operation.id,
                    operation.status,
                    v2.export_timeout.as_secs()
                ),
            ));
        }
        tokio::time::sleep(wait).await;
    }
}

fn header(response: &Response, name: &str) -> Option<String> {
    response.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Where a file came from: its request, its URL without the signature, when it arrived.
struct Arrival {
    request_id: String,
    url: String,
    fetched_at: chrono::DateTime<chrono::Utc>,
}

/// A file's lines, decompressed into the spool folder.
struct Spooled {
    path: PathBuf,
    arrival: Arrival,
}

/// Downloads one file until all of it has arrived, and decompresses it into the spool folder.
async fn download(
    client: &Client,
    seq: &Sequence,
    manifest: &Manifest,
    blob: &BlobEntry,
    spool: &Path,
) -> Result<Spooled, BlobFailure> {
    let root = manifest.root_directory.trim_end_matches('/');
    let shown = format!("{root}/{}", blob.name);
    let url = format!("{shown}?{}", manifest.sas_token.trim_start_matches('?'));
    let name = uuid::Uuid::new_v4().simple().to_string();
    let gz = spool.join(format!("{name}.json.gz"));
    let lines = spool.join(format!("{name}.jsonl"));
    let ctx = context(seq, 0);
    let mut last = String::new();
    for _ in 0..MAX_DOWNLOADS {
        let call = Call { accept: "application/octet-stream", ..Call::get(&url, TokenKind::Sas, &ctx) };
        let response = match client.download(&call, &gz).await {
            Ok(r) => r,
            Err(e) if e.status() == Some(403) => {
                let _ = std::fs::remove_file(&gz);
                return Err(BlobFailure::Expired);
            }
            Err(e) => {
                let _ = std::fs::remove_file(&gz);
                return Err(BlobFailure::Failed(e.into()));
            }
        };
        crate::failpoint::hit("blob");
        let checked = tokio::task::block_in_place(|| gunzip(&gz, &lines, blob));
        let _ = std::fs::remove_file(&gz);
        match checked {
            Ok(()) => {
                let arrival = Arrival { request_id: response.request_id, url: shown, fetched_at: response.fetched_at };
                return Ok(Spooled { path: lines, arrival });
            }
            Err(reason) => {
                tracing::warn!(event = "blob_refetch", dataset = seq.dataset.name(), scope = %seq.scope, blob = %blob.name, %reason);
                last = reason;
            }
        }
    }
    let _ = std::fs::remove_file(&lines);
    Err(BlobFailure::Incomplete(format!("{}: {last}", blob.name)))
}

/// A cheap check of the line syntax: the first and last non-blank bytes of every non-blank line
/// are `{` and `}`. A file cut at a line end passes the gzip checks when the cut falls between
/// members; a line cut elsewhere fails this check unless it happens to stop just after a nested
/// `}`, and then the record fails to decode (a record error naming the page and record).
#[derive(Default)]
struct LineSyntax {
    /// Lines seen with content.
    lines: u64,
    /// First and last non-blank bytes of the line being read.
    first: Option<u8>,
    last: u8,
}

impl LineSyntax {
    fn feed(&mut self, bytes: &[u8]) -> Result<(), String> {
        for &b in bytes {
            if b == b'\n' {
                self.end_line()?;
            } else if !b.is_ascii_whitespace() {
                self.first.get_or_insert(b);
                self.last = b;
            }
        }
        Ok(())
    }

    fn end_line(&mut self) -> Result<(), String> {
        if let Some(first) = self.first.take() {
            self.lines += 1;
            if first != b'{' || self.last != b'}' {
                return Err(format!("line {} is not one JSON object", self.lines));
            }
        }
        Ok(())
    }

    /// The number of lines, once the input has ended.
    fn finish(mut self) -> Result<u64, String> {
        self.end_line()?;
        Ok(self.lines)
    }
}

/// Decompresses every gzip member of `gz` into `out` and checks the file: its gzip members and
/// CRCs, the syntax of its lines, and its size and number of lines where the manifest gives them.
fn gunzip(gz: &Path, out: &Path, blob: &BlobEntry) -> Result<(), String> {
    let size = std::fs::metadata(gz).map_err(|e| e.to_string())?.len();
    if let Some(expected) = blob.size_in_bytes.filter(|s| *s != size) {
        return Err(format!("{size} bytes arrived of {expected}"));
    }
    let input = File::open(gz).map_err(|e| e.to_string())?;
    let mut decoder = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 16, input));
    let mut writer = BufWriter::with_capacity(1 << 16, File::create(out).map_err(|e| e.to_string())?);
    let mut buf = vec![0u8; 1 << 16];
    let mut syntax = LineSyntax::default();
    loop {
        let n = decoder.read(&mut buf).map_err(|e| format!("the gzip stream is incomplete or corrupt: {e}"))?;
        if n == 0 {
            break;
        }
        syntax.feed(&buf[..n])?;
        writer.write_all(&buf[..n]).map_err(|e| e.to_string())?;
    }
    let lines = syntax.finish()?;
    writer.flush().map_err(|e| e.to_string())?;
    match blob.item_count {
        Some(expected) if expected != lines => Err(format!("{lines} lines arrived of {expected}")),
        _ => Ok(()),
    }
}

fn page(seq: &Sequence, attempt: u32, number: u32, arrival: &Arrival, body: Vec<u8>) -> Page {
    let items = line_spans(&body);
    Page {
        dataset: seq.dataset,
        scope: seq.scope.clone(),
        attempt,
        number,
        request_id: arrival.request_id.clone(),
        url: arrival.url.clone(),
        fetched_at: arrival.fetched_at,
        body: bytes::Bytes::from(body),
        items,
        paging: Paging::Lines,
    }
}

/// Sends a spooled file's lines as pages of about [`PAGE_BYTES`]; returns the items sent.
async fn send_lines(
    seq: &Sequence,
    attempt: u32,
    pages: &mut u32,
    spooled: &Spooled,
    tx: &mpsc::Sender<Event>,
) -> Result<u64, PagingError> {
    let cache_error = |e: std::io::Error| PagingError::Cache(format!("{}: {e}", spooled.path.display()));
    let mut reader = BufReader::with_capacity(1 << 16, File::open(&spooled.path).map_err(cache_error)?);
    let mut items = 0u64;
    loop {
        let body = tokio::task::block_in_place(|| {
            let mut body = Vec::with_capacity(PAGE_BYTES + (64 << 10));
            while body.len() < PAGE_BYTES {
                if reader.read_until(b'\n', &mut body)? == 0 {
                    break;
                }
            }
            Ok::<_, std::io::Error>(body)
        })
        .map_err(cache_error)?;
        if body.is_empty() {
            return Ok(items);
        }
        *pages += 1;
        let page = page(seq, attempt, *pages, &spooled.arrival, body);
        items += page.items.len() as u64;
        tx.send(Event::Page(page)).await.map_err(|_| PagingError::Closed)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    fn gz(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for part in parts {
            let mut e = GzEncoder::new(Vec::new(), Compression::default());
            e.write_all(part).unwrap();
            out.extend(e.finish().unwrap());
        }
        out
    }

    fn entry(items: Option<u64>) -> BlobEntry {
        BlobEntry { name: "part-00000.json.gz".into(), item_count: items, size_in_bytes: None }
    }

    #[test]
    fn every_gzip_member_is_read_and_lines_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let (input, out) = (dir.path().join("b.gz"), dir.path().join("b.jsonl"));
        std::fs::write(&input, gz(&[b"{\"a\":1}\n{\"a\":2}\n", b"{\"a\":3}\n\n{\"a\":4}"])).unwrap();
        gunzip(&input, &out, &entry(Some(4))).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n\n{\"a\":4}");
        assert!(gunzip(&input, &out, &entry(Some(5))).unwrap_err().contains("4 lines arrived of 5"));
    }

    #[test]
    fn a_truncated_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (input, out) = (dir.path().join("b.gz"), dir.path().join("b.jsonl"));
        let whole = gz(&[&b"{\"a\":1}\n".repeat(500)]);
        std::fs::write(&input, &whole[..whole.len() * 3 / 5]).unwrap();
        assert!(gunzip(&input, &out, &entry(None)).unwrap_err().contains("incomplete or corrupt"));
        let sized = BlobEntry { size_in_bytes: Some(whole.len() as u64), ..entry(None) };
        assert!(gunzip(&input, &out, &sized).unwrap_err().contains("bytes arrived of"));
    }

    #[test]
    fn a_file_whose_lines_are_not_json_objects_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (input, out) = (dir.path().join("b.gz"), dir.path().join("b.jsonl"));
        // The GA manifest has no counts: only the lines themselves can tell a cut file.
        let check = |content: &[u8]| {
            std::fs::write(&input, gz(&[content])).unwrap();
            gunzip(&input, &out, &entry(None))
        };
        assert!(check(b"{\"a\":1}\r\n  {\"a\":2}  \n\n{\"a\":3}").is_ok(), "blank lines and spaces are fine");
        assert!(check(b"").is_ok(), "an empty file has no lines");
        assert_eq!(check(b"{\"a\":1}\n{\"a\":").unwrap_err(), "line 2 is not one JSON object");
        assert_eq!(check(b"{\"a\":1}\n\"a\":2}\n").unwrap_err(), "line 2 is not one JSON object");
        assert_eq!(check(b"[1,2]\n").unwrap_err(), "line 1 is not one JSON object");
        // Two members split at a line end decompress into whole lines.
        std::fs::write(&input, gz(&[b"{\"a\":1}\n{\"a\"", b":2}\n"])).unwrap();
        assert!(gunzip(&input, &out, &entry(None)).is_ok());
    }

    #[test]
    fn a_manifest_never_shows_its_signature() {
        let m: Manifest =
            serde_json::from_str(r#"{"id":"m","rootDirectory":"https://x/y","sasToken":"sv=1&sig=SECRET","blobs":[]}"#)
                .unwrap();
        let shown = format!("{m:?}");
        assert!(!shown.contains("SECRET") && shown.contains("[redacted]"), "{shown}");
    }

    #[test]
    fn manifests_are_read_in_both_spellings() {
        let ga: Manifest = serde_json::from_str(r#"{"id":"m1","schemaVersion":"1","dataFormat":"compressedJSON","eTag":"e1","rootDirectory":"https://x/y","sasToken":"sv=1&sig=2","partitionType":"Default","blobCount":1,"blobs":[{"name":"part-1.json.gz","partitionValue":"default"}]}"#).unwrap();
        assert_eq!((ga.etag.as_str(), ga.blobs.len(), ga.sas_token.as_str()), ("e1", 1, "sv=1&sig=2"));
        let beta: Manifest = serde_json::from_str(r#"{"id":"m2","version":"1","eTag":"e2","rootFolder":"https://x/z","rootFolderSAS":"?sig=3","blobCount":0,"blobs":[]}"#).unwrap();
        assert_eq!((beta.root_directory.as_str(), beta.sas_token.as_str()), ("https://x/z", "?sig=3"));
    }
}
