//! A local folder to read a destination from: a folder as it is, or what an object-store
//! prefix holds, downloaded into a temporary folder (for `verify`, `diff` and `--from-raw`).
//!
//! In: a [`Location`]. Out: a [`LocalCopy`] whose folder holds the snapshots, `LATEST` and
//! files of that location (never the lock object nor the Delta tables of an output prefix:
//! they are not part of any snapshot). It writes only below its temporary folder.

use std::path::{Path, PathBuf};

use super::delta::TABLES;
use super::lock::LOCK_FILE;
use super::store::{LATEST, Location, Store, StoreError};

/// A local folder to read a location from: the folder itself, or a copy of a store's prefix
/// downloaded into a temporary folder that is removed when this is dropped.
#[derive(Debug)]
pub enum LocalCopy {
    /// A local location, read in place.
    Given(PathBuf),
    /// A store's objects, downloaded.
    Fetched {
        /// The temporary folder.
        dir: tempfile::TempDir,
        /// Where in it the location's objects are.
        path: PathBuf,
    },
}

impl LocalCopy {
    /// The folder to read.
    pub fn path(&self) -> &Path {
        match self {
            LocalCopy::Given(path) => path,
            LocalCopy::Fetched { path, .. } => path,
        }
    }

    /// A local folder holding what `location` holds: read in place when it is local, else
    /// downloaded whole (into a folder named as the prefix's last part, so that a snapshot keeps
    /// its run id as its folder name).
    pub fn of(location: &Location) -> Result<LocalCopy, StoreError> {
        LocalCopy::fetch(location, None)
    }

    /// As [`LocalCopy::of`] for an output prefix, but downloading only `LATEST` and the newest
    /// `n` published snapshots up to the one it names (`pcrecon diff --previous` reads two).
    pub fn of_newest(location: &Location, n: usize) -> Result<LocalCopy, StoreError> {
        LocalCopy::fetch(location, Some(n))
    }

    fn fetch(location: &Location, newest: Option<usize>) -> Result<LocalCopy, StoreError> {
        let url = match location {
            Location::Local(path) => return Ok(LocalCopy::Given(path.clone())),
            Location::Store(url) => url,
        };
        let store = Store::connect(url)?;
        let dir = tempfile::tempdir().map_err(|source| StoreError::Local { path: std::env::temp_dir(), source })?;
        let name = store.last_part().unwrap_or("store").to_owned();
        let path = dir.path().join(name);
        std::fs::create_dir_all(&path).map_err(|source| StoreError::Local { path: path.clone(), source })?;
        let objects = match newest {
            None => store.download("", &path, &[LOCK_FILE, TABLES])?,
            Some(n) => {
                let published: Vec<String> =
                    store.runs()?.into_iter().filter(|(_, complete)| *complete).map(|(id, _)| id).collect();
                let end = match store.latest()? {
                    Some(latest) => published.iter().position(|id| *id == latest).map_or(published.len(), |i| i + 1),
                    None => published.len(),
                };
                let mut objects = 0;
                for id in &published[end.saturating_sub(n)..end] {
                    objects += store.download(id, &path.join(id), &[])?;
                }
                if let Some(bytes) = store.read(LATEST)? {
                    std::fs::write(path.join(LATEST), bytes)
                        .map_err(|source| StoreError::Local { path: path.join(LATEST), source })?;
                }
                objects
            }
        };
        tracing::info!(event = "store_downloaded", store = %url, objects);
        Ok(LocalCopy::Fetched { dir, path })
    }
}
