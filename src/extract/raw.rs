//! The raw archive (`--keep-raw DIR`): every page exactly as received, gzip-compressed, with its
//! request metadata, so an auditor can see what the API said and a run can be re-derived from it.
//!
//! Layout: `pages/<dataset>/<scope>/a<attempt>-p<page>.json.gz` (`.pdf.gz` for statements) and
//! `index.jsonl`, one line per event: pages (dataset, scope, attempt, page, MS-RequestId, URL,
//! time, bytes, SHA-256, items, file), restarts and completions. Continuation tokens and access
//! tokens are never written: the URL carries neither.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::api::paging::Event;

/// A folder-safe name for a scope (`EUR/current` → `EUR-current`).
pub fn scope_name(scope: &str) -> String {
    scope.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' }).collect()
}

#[derive(Serialize)]
struct IndexLine<'a> {
    event: &'static str,
    dataset: &'a str,
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
}

/// Writes the archive.
pub struct RawArchive {
    dir: PathBuf,
    index: BufWriter<File>,
}

impl RawArchive {
    /// Opens (creates) an archive folder; an existing index is appended to.
    pub fn open(dir: &Path) -> std::io::Result<RawArchive> {
        fs::create_dir_all(dir.join("pages"))?;
        let index = OpenOptions::new().create(true).append(true).open(dir.join("index.jsonl"))?;
        Ok(RawArchive { dir: dir.to_path_buf(), index: BufWriter::new(index) })
    }

    /// Records one event.
    pub fn record(&mut self, event: &Event) -> std::io::Result<()> {
        let line = match event {
            Event::Page(p) => {
                let ext = if p.dataset == "documents" { "pdf" } else { "json" };
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
                })
            }
            Event::Restart { dataset, scope, attempt, reason } => serde_json::to_string(&IndexLine {
                event: "restart",
                dataset,
                scope,
                attempt: *attempt,
                page: None,
                request_id: None,
                url: None,
                fetched_at: None,
                bytes: None,
                sha256: None,
                items: None,
                file: None,
                reason: Some(reason),
            }),
            Event::Done { dataset, scope, attempt, pages, items } => serde_json::to_string(&IndexLine {
                event: "done",
                dataset,
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
            }),
        }
        .map_err(std::io::Error::other)?;
        self.index.write_all(line.as_bytes())?;
        self.index.write_all(b"\n")
    }

    /// Flushes the index.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.index.flush()?;
        self.index.get_ref().sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_become_safe_names() {
        assert_eq!(scope_name("EUR/current"), "EUR-current");
        assert_eq!(scope_name("G000123"), "G000123");
        assert_eq!(scope_name("../etc"), "..-etc");
    }
}
