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
