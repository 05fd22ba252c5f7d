//! Files a new snapshot has in common with the one before it are hard links to that one's files,
//! not copies: a night on which nothing changed adds little more than its manifest to the disk.
//!
//! In: a staged snapshot with its manifest, and the previous published snapshot's folder. Out:
//! the staged files that are byte for byte the previous snapshot's, replaced by hard links to
//! them, and what that saved. A file is linked only when the previous manifest lists it at the
//! same path with the same size and SHA-256 *and* the previous file still hashes to it, so an
//! altered old file is never carried into a new snapshot. Linking is an optimisation: where the
//! file system cannot link (another device, no permission) the copy stays. Nothing is ever
//! written through a link: snapshots are never changed once published, and retention removes a
//! snapshot folder whole, which leaves the other snapshots' links to the same data in place.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::manifest::Manifest;

/// What a snapshot shares with the previous one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Shared {
    /// Files that are hard links to the previous snapshot's.
    pub files: u64,
    /// Their bytes: what the snapshot does not add to the disk.
    pub bytes: u64,
}

/// Replaces every file of the staged snapshot `staged` (listed in `manifest`) that the
/// previous snapshot, in the folder `previous` with the manifest `before`, holds unchanged by a
/// hard link to it.
pub fn link_unchanged(staged: &Path, manifest: &Manifest, previous: &Path, before: &Manifest) -> io::Result<Shared> {
    let listed: HashMap<&str, (&str, u64)> =
        before.files.iter().map(|f| (f.path.as_str(), (f.sha256.as_str(), f.bytes))).collect();
    let candidates: Vec<_> =
        manifest.files.iter().filter(|f| listed.get(f.path.as_str()) == Some(&(f.sha256.as_str(), f.bytes))).collect();
    let linked: Vec<io::Result<Option<u64>>> = candidates
        .par_iter()
        .map(|file| {
            let old = previous.join(&file.path);
            if !same_content(&old, &file.sha256, file.bytes)? {
                return Ok(None);
            }
            let new = staged.join(&file.path);
            let beside = new.with_file_name(format!(
                ".{}.link",
                new.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
            ));
            let _ = std::fs::remove_file(&beside);
            match std::fs::hard_link(&old, &beside) {
                Ok(()) => {
                    std::fs::rename(&beside, &new)?;
                    Ok(Some(file.bytes))
                }
                Err(e) => {
                    tracing::debug!(event = "file_not_linked", path = %file.path, error = %e);
                    Ok(None)
                }
            }
        })
        .collect();
    let mut shared = Shared::default();
    for bytes in linked {
        if let Some(bytes) = bytes? {
            shared.files += 1;
            shared.bytes += bytes;
        }
    }
    Ok(shared)
}

/// Whether the file at `path` has `bytes` bytes hashing to `sha256`; a file that is gone or
/// unreadable has not.
fn same_content(path: &Path, sha256: &str, bytes: u64) -> io::Result<bool> {
    let Ok(meta) = std::fs::metadata(path) else { return Ok(false) };
    if !meta.is_file() || meta.len() != bytes {
        return Ok(false);
    }
    let mut hasher = Sha256::new();
    let Ok(mut file) = std::fs::File::open(path) else { return Ok(false) };
    io::copy(&mut file, &mut hasher)?;
    Ok(crate::model::hex(&hasher.finalize()) == sha256)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::sink::writer::FileReport;

    fn snapshot(dir: &Path, files: &[(&str, &str)]) -> Manifest {
        let mut manifest: Manifest =
            serde_json::from_str(r#"{"format":1,"source":{},"datasets":{},"checks":{},"files":[]}"#).unwrap();
        for (path, text) in files {
            let at = dir.join(path);
            std::fs::create_dir_all(at.parent().unwrap()).unwrap();
            std::fs::write(&at, text).unwrap();
            manifest.files.push(FileReport {
                path: (*path).to_owned(),
                rows: 1,
                bytes: text.len() as u64,
                sha256: crate::model::hex(&Sha256::digest(text)),
            });
        }
        manifest
    }

    #[test]
    fn unchanged_files_become_links_and_changed_or_altered_ones_stay_copies() {
        let root = tempfile::tempdir().unwrap();
        let (old, new) = (root.path().join("a"), root.path().join("b"));
        let before =
            snapshot(&old, &[("x/same.parquet", "same"), ("x/changed.parquet", "v1"), ("x/altered.parquet", "ok")]);
        // Altered after it was published: its manifest no longer vouches for it.
        std::fs::write(old.join("x/altered.parquet"), "ko").unwrap();
        let manifest = snapshot(
            &new,
            &[
                ("x/same.parquet", "same"),
                ("x/changed.parquet", "v2"),
                ("x/altered.parquet", "ok"),
                ("x/new.parquet", "n"),
            ],
        );
        let shared = link_unchanged(&new, &manifest, &old, &before).unwrap();
        assert_eq!(shared, Shared { files: 1, bytes: 4 });
        let inode = |p: &Path| std::fs::metadata(p).unwrap().ino();
        assert_eq!(inode(&new.join("x/same.parquet")), inode(&old.join("x/same.parquet")));
        for kept in ["changed", "altered"] {
            let name = format!("x/{kept}.parquet");
            assert_ne!(inode(&new.join(&name)), inode(&old.join(&name)), "{kept}");
        }
        assert_eq!(std::fs::read_to_string(new.join("x/altered.parquet")).unwrap(), "ok");
        // Retention removing the old snapshot leaves the new one whole.
        std::fs::remove_dir_all(&old).unwrap();
        assert_eq!(std::fs::read_to_string(new.join("x/same.parquet")).unwrap(), "same");
        assert!(
            std::fs::read_dir(new.join("x")).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".link"))
        );
    }
}
