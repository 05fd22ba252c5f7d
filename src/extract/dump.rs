//! The consumer of `pcrecon extract`: every extracted item as one JSON line, exactly as the API
//! sent it, in one file per sequence (`<dataset>/<scope>.jsonl`, statements as
//! `documents/<invoice>.pdf`), published atomically when the whole extraction succeeded.
//!
//! A restart truncates its sequence's file, so a sequence's file holds exactly the items of its
//! last, complete attempt, in page order: the same bytes whatever faults the run met.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use tokio::sync::mpsc::Receiver;

use super::raw::RawArchive;
use crate::model::page::Event;
use crate::model::page::scope_name;
use crate::tabular::{Dataset, Kind};

/// Items and sequences per dataset.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct DumpReport {
    /// Items per dataset.
    pub items: BTreeMap<&'static str, u64>,
    /// Completed sequences per dataset.
    pub sequences: BTreeMap<&'static str, u64>,
    /// Restarted sequences.
    pub restarts: u64,
    /// Sequences the v2 export could not serve yet (`dataset/scope`): no file is written for them.
    pub not_ready: Vec<String>,
}

/// Why the dump failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct DumpError {
    /// The file.
    pub path: PathBuf,
    /// The cause.
    pub source: std::io::Error,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DumpError + '_ {
    move |source| DumpError { path: path.to_path_buf(), source }
}

fn file_of(root: &Path, dataset: Dataset, scope: &str) -> PathBuf {
    let ext = dataset.file_extension().unwrap_or("jsonl");
    root.join(dataset.name()).join(format!("{}.{ext}", scope_name(scope)))
}

/// Consumes events into `staging` (and the raw archive), until the channel closes; gives the
/// archive back for the caller to seal once the extraction is known to have succeeded.
pub fn consume(
    mut rx: Receiver<Event>,
    staging: &Path,
    mut archive: Option<RawArchive>,
) -> Result<(DumpReport, Option<RawArchive>), DumpError> {
    let mut report = DumpReport::default();
    while let Some(event) = rx.blocking_recv() {
        if let Some(a) = archive.as_mut() {
            a.record(&event).map_err(io(staging))?;
        }
        match &event {
            Event::Page(page) => {
                let path = file_of(staging, page.dataset, &page.scope);
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(io(parent))?;
                }
                let mut file = OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path))?;
                if page.dataset.kind() == Kind::File {
                    file.write_all(&page.body).map_err(io(&path))?;
                } else {
                    let mut buf = Vec::with_capacity(page.body.len() + page.items.len());
                    for item in page.item_texts() {
                        buf.extend_from_slice(item);
                        buf.push(b'\n');
                    }
                    file.write_all(&buf).map_err(io(&path))?;
                }
            }
            Event::Restart { dataset, scope, .. } => {
                let path = file_of(staging, *dataset, scope);
                if path.exists() {
                    File::create(&path).map_err(io(&path))?;
                }
                report.restarts += 1;
            }
            Event::NotReady { dataset, scope, .. } => {
                let path = file_of(staging, *dataset, scope);
                if path.exists() {
                    fs::remove_file(&path).map_err(io(&path))?;
                }
                report.not_ready.push(format!("{dataset}/{scope}"));
            }
            Event::Done { dataset, scope, items, .. } => {
                let path = file_of(staging, *dataset, scope);
                if !path.exists() {
                    if let Some(parent) = path.parent() {
                        fs::create_dir_all(parent).map_err(io(parent))?;
                    }
                    File::create(&path).map_err(io(&path))?;
                }
                *report.items.entry(dataset.name()).or_default() +=
                    if dataset.kind() == Kind::File { 1 } else { *items };
                *report.sequences.entry(dataset.name()).or_default() += 1;
            }
        }
    }
    Ok((report, archive))
}
