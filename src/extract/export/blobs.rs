//! One file of a finished v2 export, from its blob to pages: download it with the manifest's
//! shared-access signature (again when it arrives incomplete), decompress it whole into the spool
//! folder and check it, then cut its JSON lines into pages of about `PAGE_BYTES`.
//!
//! In: a manifest and one of its files, a spool folder. Out: the spooled lines, then
//! [`Event::Page`]s on the channel. It neither asks for exports nor polls them, and decides
//! nothing about what a failed file means for its sequence (a new export, a restart): that is
//! the parent module's.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use crate::api::auth::TokenKind;
use crate::api::error::Context;
use crate::api::http::{Call, Client};
use crate::api::paging::{PagingError, Sequence, line_spans};
use crate::model::page::{Event, Page, Paging};

use super::manifest::{BlobEntry, Manifest};

/// Downloads of one file before a new export is asked for.
const MAX_DOWNLOADS: u32 = 3;
/// A page holds about this many bytes of lines.
const PAGE_BYTES: usize = 4 << 20;

/// Why a file could not be used.
pub(super) enum BlobFailure {
    /// The signature was refused (expired): a new export gives a new one.
    Expired,
    /// Its lines did not all arrive, again and again.
    Incomplete(String),
    /// The request failed for good.
    Failed(PagingError),
}

/// Where a file came from: its request, its URL without the signature, when it arrived.
pub(super) struct Arrival {
    pub(super) request_id: String,
    pub(super) url: String,
    pub(super) fetched_at: chrono::DateTime<chrono::Utc>,
}

/// A file's lines, decompressed into the spool folder.
pub(super) struct Spooled {
    pub(super) path: PathBuf,
    arrival: Arrival,
}

/// The documented home of export files: Azure Blob Storage accounts.
const BLOB_HOST_SUFFIX: &str = ".blob.core.windows.net";

/// Whether an export's files may be fetched from `root`: HTTPS on an Azure Blob Storage host
/// (spec §12), or the host of the Graph root or of the API itself (an emulator serves both).
fn is_export_host(root: &str, graph: &url::Url, client: &Client) -> bool {
    let Ok(url) = url::Url::parse(root) else { return false };
    let on_blob_storage =
        url.scheme() == "https" && url.host_str().is_some_and(|h| h.to_ascii_lowercase().ends_with(BLOB_HOST_SUFFIX));
    on_blob_storage || super::is_graph_origin(root, graph, client)
}

/// Downloads one file until all of it has arrived, and decompresses it into the spool folder.
/// A manifest that puts its files anywhere but the hosts [`is_export_host`] accepts fails.
pub(super) async fn download(
    client: &Client,
    seq: &Sequence,
    graph: &url::Url,
    manifest: &Manifest,
    blob: &BlobEntry,
    spool: &Path,
) -> Result<Spooled, BlobFailure> {
    let root = manifest.root_directory.trim_end_matches('/');
    if !is_export_host(root, graph, client) {
        let origin =
            url::Url::parse(root).map_or_else(|_| "an unreadable URL".to_owned(), |u| u.origin().ascii_serialization());
        let detail = format!(
            "manifest puts its files on {origin}: pcrecon fetches export files from Azure Blob Storage \
             (*{BLOB_HOST_SUFFIX}) or the Graph host only"
        );
        let context = Context { dataset: seq.dataset, scope: seq.scope.clone(), page: 0 };
        return Err(BlobFailure::Failed(PagingError::Export { context, detail, no_data: false }));
    }
    let shown = format!("{root}/{}", blob.name);
    let url = format!("{shown}?{}", manifest.sas_token.trim_start_matches('?'));
    let name = uuid::Uuid::new_v4().simple().to_string();
    let gz = spool.join(format!("{name}.json.gz"));
    let lines = spool.join(format!("{name}.jsonl"));
    let ctx = Context { dataset: seq.dataset, scope: seq.scope.clone(), page: 0 };
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
                tracing::warn!(event = "blob_refetch", blob = %blob.name, %reason);
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

pub(super) fn page(seq: &Sequence, attempt: u32, number: u32, arrival: &Arrival, body: Vec<u8>) -> Page {
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
pub(super) async fn send_lines(
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
}
