//! `pcrecon verify`: re-hashes every file of a snapshot against its `manifest.json` and lists
//! every file that is missing, differs, or is not in the manifest.

use std::io;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::{AuditError, read_manifest};
use crate::model::hex;

/// Files of a snapshot that are not data: written after the manifest, or the manifest itself.
const NOT_LISTED: [&str; 2] = ["manifest.json", "run.json"];

/// What is wrong with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Listed in the manifest, not on disk.
    Missing(String),
    /// On disk with other bytes than the manifest says.
    Differs {
        /// The file.
        path: String,
        /// What the manifest says.
        expected: String,
        /// What the file is.
        found: String,
    },
    /// On disk, not in the manifest.
    Extra(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Missing(path) => write!(f, "missing  {path}"),
            Problem::Differs { path, expected, found } => {
                write!(f, "differs  {path}: manifest says {expected}, the file is {found}")
            }
            Problem::Extra(path) => write!(f, "extra    {path}: not in the manifest"),
        }
    }
}

/// The verification of one snapshot.
#[derive(Debug)]
pub struct Verified {
    /// The snapshot.
    pub snapshot: PathBuf,
    /// Files the manifest lists.
    pub files: usize,
    /// Bytes hashed.
    pub bytes: u64,
    /// Everything that does not match.
    pub problems: Vec<Problem>,
}

fn hash_file(path: &Path) -> io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let bytes = io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok((bytes, hex(&hasher.finalize())))
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(root, &path, out)?;
        } else if let Ok(relative) = path.strip_prefix(root) {
            out.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

/// Verifies one snapshot folder.
pub fn verify_snapshot(snapshot: &Path) -> Result<Verified, AuditError> {
    let manifest = read_manifest(snapshot)?;
    let checked: Vec<Result<(u64, Option<Problem>), AuditError>> = manifest
        .files
        .par_iter()
        .map(|file| {
            let path = snapshot.join(&file.path);
            match hash_file(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((0, Some(Problem::Missing(file.path.clone())))),
                Err(e) => Err(AuditError::Io { path, source: e }),
                Ok((bytes, sha)) if sha != file.sha256 || bytes != file.bytes => Ok((
                    bytes,
                    Some(Problem::Differs {
                        path: file.path.clone(),
                        expected: format!("{} bytes, SHA-256 {}", file.bytes, file.sha256),
                        found: format!("{bytes} bytes, SHA-256 {sha}"),
                    }),
                )),
                Ok((bytes, _)) => Ok((bytes, None)),
            }
        })
        .collect();
    let mut problems = Vec::new();
    let mut bytes = 0;
    for result in checked {
        let (n, problem) = result?;
        bytes += n;
        problems.extend(problem);
    }
    let listed: std::collections::HashSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    let mut present = Vec::new();
    walk(snapshot, snapshot, &mut present).map_err(AuditError::io(snapshot))?;
    present.sort();
    problems.extend(
        present
            .into_iter()
            .filter(|p| !listed.contains(p.as_str()) && !NOT_LISTED.contains(&p.as_str()))
            .map(Problem::Extra),
    );
    Ok(Verified { snapshot: snapshot.to_path_buf(), files: manifest.files.len(), bytes, problems })
}

/// Verifies a snapshot, or every snapshot of an output folder.
pub fn verify(dir: &Path) -> Result<Vec<Verified>, AuditError> {
    if dir.join("manifest.json").exists() {
        return Ok(vec![verify_snapshot(dir)?]);
    }
    let snapshots = crate::sink::retention::snapshots(dir);
    if snapshots.is_empty() {
        return Err(AuditError::NotASnapshot(format!(
            "{} has no manifest.json and no published snapshots",
            dir.display()
        )));
    }
    snapshots.iter().map(|(_, path)| verify_snapshot(path)).collect()
}

/// The report for people: one line per problem, one summary line per snapshot.
pub fn render(verified: &[Verified]) -> String {
    let mut text = String::new();
    for v in verified {
        for p in &v.problems {
            text.push_str(&format!("{}: {p}\n", v.snapshot.display()));
        }
        let verdict = if v.problems.is_empty() { "ok".to_owned() } else { format!("{} problems", v.problems.len()) };
        text.push_str(&format!("{}: {verdict} ({} files, {} bytes hashed)\n", v.snapshot.display(), v.files, v.bytes));
    }
    text
}
