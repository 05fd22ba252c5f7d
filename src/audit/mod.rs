//! Commands for auditors over published snapshots: `verify` proves that a snapshot's files are
//! the ones its manifest lists, and `diff` shows what changed between two snapshots.
//!
//! In: snapshot folders. Out: reports (and, for `diff`, Parquet and CSV). They never change a
//! snapshot.

pub mod diff;
pub mod verify;

use std::path::{Path, PathBuf};

use crate::sink::manifest::Manifest;

/// Why an audit command could not do its work (finding differences is not an error).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A folder is not a snapshot, or a manifest cannot be read.
    #[error("{0}")]
    NotASnapshot(String),
}

impl AuditError {
    /// An I/O error on a path.
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
        move |source| AuditError::Io { path: path.to_path_buf(), source }
    }
}

/// Input that could not be read back (a corrupt or truncated Parquet file): bad data, not an
/// output error.
pub fn unreadable(path: &Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
    move |e| {
        // The reader's message may name the file already.
        let text = e.to_string();
        let text = text.strip_prefix(&format!("{}: ", path.display())).unwrap_or(&text).to_owned();
        AuditError::NotASnapshot(format!("cannot read {}: {text}", path.display()))
    }
}

/// Why a path that a manifest lists must not be opened: it is absolute, climbs out with `..`,
/// is not a plain relative path, or resolves outside the snapshot (through a symbolic link).
/// `root` is the snapshot folder, `real_root` its canonical path.
pub fn outside(root: &Path, real_root: &Path, listed: &str) -> Option<&'static str> {
    use std::path::Component;
    let path = Path::new(listed);
    if listed.is_empty() {
        return Some("an empty path");
    }
    for component in path.components() {
        match component {
            Component::Normal(_) => {}
            Component::ParentDir => return Some("it climbs out of the snapshot with `..`"),
            Component::RootDir | Component::Prefix(_) => return Some("an absolute path"),
            Component::CurDir => return Some("not a plain relative path"),
        }
    }
    // A file that does not exist is reported missing; nothing is opened outside the snapshot.
    match root.join(path).canonicalize() {
        Ok(real) if !real.starts_with(real_root) => Some("it resolves outside the snapshot"),
        _ => None,
    }
}

/// Reads a snapshot's `manifest.json`.
pub fn read_manifest(snapshot: &Path) -> Result<Manifest, AuditError> {
    let path = snapshot.join("manifest.json");
    let bytes = std::fs::read(&path).map_err(|e| {
        AuditError::NotASnapshot(format!(
            "{} is not a published snapshot: cannot read {}: {e}",
            snapshot.display(),
            path.display()
        ))
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| AuditError::NotASnapshot(format!("{}: not a pcrecon manifest: {e}", path.display())))
}
