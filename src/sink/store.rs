//! Object storage destinations (Azure Blob / ADLS Gen2, S3, Google Cloud Storage): the same
//! snapshots and `LATEST` as an output folder, published with the same promise in the store's
//! own terms.
//!
//! In: a destination URL (`az://container/prefix`, `abfss://container@account.dfs.core.windows.net/prefix`,
//! `s3://bucket/prefix`, `gs://bucket/prefix`) with credentials from the environment as each
//! SDK names them (`AZURE_*`, `AWS_*`, `GOOGLE_*`), and a snapshot folder already published
//! locally. Out: that folder under `<prefix>/<run-id>/`, byte for byte.
//!
//! The promise: every file but `manifest.json` is uploaded (in parts when large) and checked
//! against the store's answer (its size always; its MD5 where the store's ETag is one; S3 also
//! verifies a SHA-256 checksum sent with every upload) before `manifest.json`, and `LATEST` is
//! written last, so a reader that follows `LATEST` never sees a partial run. A run that died
//! leaves a prefix without `manifest.json`, which the next run removes. One run at a time per
//! prefix: a lock object made with a conditional create, naming its holder and an expiry, so a
//! run that died does not block the next night forever.
//!
//! It does not decide what a snapshot holds (the writers do) nor where the local copy lives
//! (the caller does); it imports only the retention rule and the crash points.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion, WriteMultipart};
use serde::{Deserialize, Serialize};
use url::Url;

use super::lock::{LOCK_FILE, LockError, hostname};
use super::retention::{Retention, doomed, run_order, run_time};

/// Files this large or larger are uploaded in parts.
pub const MULTIPART_FROM: u64 = 16 * 1024 * 1024;
/// The size of each part of a multipart upload.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Uploads in flight at once.
pub const PARALLEL_UPLOADS: usize = 8;
/// The file that completes a snapshot: uploaded after every other one.
pub const MANIFEST: &str = "manifest.json";
/// The object naming the newest complete snapshot.
pub const LATEST: &str = "LATEST";

/// Where snapshots go: a local folder or an object-store prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A folder on this machine.
    Local(PathBuf),
    /// A prefix in an object store.
    Store(StoreUrl),
}

impl Location {
    /// Reads a destination as written in a config or on the command line: a URL with one of
    /// the supported schemes is a store, `file://` and anything without a scheme a folder; any
    /// other scheme is refused (it would otherwise become a folder named after it).
    pub fn parse(text: &str) -> Result<Location, String> {
        let scheme = text.split_once(":/").map(|(s, _)| s).filter(|s| {
            s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        });
        if scheme.is_none() {
            return Ok(Location::Local(PathBuf::from(text)));
        }
        let url = Url::parse(text).map_err(|e| format!("{}: not a URL: {e}", shown(text)))?;
        match StoreKind::of(url.scheme()) {
            Some(_) => StoreUrl::new(url).map(Location::Store),
            None if url.scheme() == "file" => {
                url.to_file_path().map(Location::Local).map_err(|()| format!("{text:?} is not a local path"))
            }
            None => Err(format!(
                "{}: the scheme {:?} is not a supported destination (az, abfs, abfss, s3, s3a, gs, file, or a path)",
                shown(text),
                url.scheme()
            )),
        }
    }
}

/// A destination as an error may quote it: without what follows a `?` or `#` (where a token
/// could be) nor user info.
fn shown(text: &str) -> String {
    let cut = text.find(['?', '#']).map_or(text, |at| &text[..at]);
    match cut.split_once("://") {
        Some((scheme, rest)) => {
            // `user:password@` goes; `container@account` (ADLS Gen2) stays.
            let rest = rest.split_once('@').filter(|(user, _)| user.contains(':')).map_or(rest, |(_, host)| host);
            format!("{scheme}://{rest}")
        }
        None => cut.to_owned(),
    }
}

/// Which object store a URL's scheme names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// Azure Blob Storage and ADLS Gen2: `az://`, `azure://`, `abfs://`, `abfss://`.
    Azure,
    /// Amazon S3 and compatible stores: `s3://`, `s3a://`.
    S3,
    /// Google Cloud Storage: `gs://`.
    Gcs,
    /// A local folder, spoken to as a store (Delta tables of a local output folder).
    Local,
}

impl StoreKind {
    fn of(scheme: &str) -> Option<StoreKind> {
        match scheme {
            "az" | "azure" | "abfs" | "abfss" => Some(StoreKind::Azure),
            "s3" | "s3a" => Some(StoreKind::S3),
            "gs" => Some(StoreKind::Gcs),
            _ => None,
        }
    }
}

/// An object-store URL without credentials: a query string or user info (where a SAS token or
/// a key could hide) is refused, since the URL is printed and recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUrl {
    url: Url,
    kind: StoreKind,
}

impl StoreUrl {
    fn new(url: Url) -> Result<StoreUrl, String> {
        let kind = StoreKind::of(url.scheme()).ok_or_else(|| format!("{} is not an object store", url.scheme()))?;
        if url.query().is_some() || url.fragment().is_some() || url.password().is_some() {
            return Err(format!(
                "{}://{}: credentials belong in the environment (AZURE_*, AWS_*, GOOGLE_*), not in the URL",
                url.scheme(),
                url.host_str().unwrap_or("")
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("{url}: the URL names no container or bucket"));
        }
        Ok(StoreUrl { url, kind })
    }

    /// A folder name for this destination's local work (`s3-bucket-a-b` for `s3://bucket/a/b`):
    /// two destinations never share a page cache, a lock or staged snapshots.
    pub fn folder_name(&self) -> String {
        let text = format!("{}-{}{}", self.url.scheme(), self.url.host_str().unwrap_or(""), self.url.path());
        let name: String =
            text.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' }).collect();
        name.trim_matches('-').to_owned()
    }

    /// The URL of `rel` below this prefix.
    pub fn join(&self, rel: &str) -> String {
        format!("{}/{rel}", self.url.as_str().trim_end_matches('/'))
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str().trim_end_matches('/'))
    }
}

/// What went wrong talking to a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be set up from the URL and the environment.
    #[error("cannot open {url}: {source}")]
    Open {
        /// The destination.
        url: String,
        /// The cause.
        source: object_store::Error,
    },
    /// A request failed.
    #[error("cannot {action} {object}: {source}")]
    Request {
        /// What was being done (`upload`, `read`, `list`, `delete`).
        action: &'static str,
        /// The object's URL.
        object: String,
        /// The cause.
        source: object_store::Error,
    },
    /// An uploaded object is not what was sent.
    #[error("{object} is not what was uploaded: {what}")]
    Mismatch {
        /// The object's URL.
        object: String,
        /// How it differs.
        what: String,
    },
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Local {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Another run took the prefix's lock over while this one held it.
    #[error("the lock {object} was taken over by {holder}: this run publishes nothing")]
    LockLost {
        /// The lock object.
        object: String,
        /// Who holds it now.
        holder: String,
    },
}

/// An object-store prefix, ready to use from synchronous code.
pub struct Store {
    store: Arc<dyn ObjectStore>,
    root: ObjectPath,
    url: StoreUrl,
    runtime: tokio::runtime::Runtime,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("url", &self.url.to_string()).finish()
    }
}

/// What an upload sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Uploaded {
    /// Objects written.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// What tidying a prefix removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tidied {
    /// Snapshots retention removed.
    pub removed: Vec<String>,
    /// Prefixes a run that died left without a manifest, removed.
    pub orphans: Vec<String>,
}

impl Store {
    /// Connects to a destination with the credentials of the environment.
    pub fn connect(url: &StoreUrl) -> Result<Store, StoreError> {
        let open = |source| StoreError::Open { url: url.to_string(), source };
        // The HTTP client ships without a TLS provider of its own (as the API client's does).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let text = url.url.as_str();
        let store: Arc<dyn ObjectStore> = match url.kind {
            StoreKind::Azure => {
                Arc::new(object_store::azure::MicrosoftAzureBuilder::from_env().with_url(text).build().map_err(open)?)
            }
            StoreKind::S3 => Arc::new(
                object_store::aws::AmazonS3Builder::from_env()
                    .with_url(text)
                    .with_checksum_algorithm(object_store::aws::Checksum::SHA256)
                    .build()
                    .map_err(open)?,
            ),
            StoreKind::Gcs => {
                Arc::new(object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(text).build().map_err(open)?)
            }
            StoreKind::Local => {
                let dir = url.url.to_file_path().unwrap_or_default();
                std::fs::create_dir_all(&dir).map_err(|source| StoreError::Local { path: dir.clone(), source })?;
                Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&dir).map_err(open)?)
            }
        };
        let root = match url.kind {
            StoreKind::Local => ObjectPath::default(),
            _ => ObjectPath::from_url_path(url.url.path()).map_err(|e| open(e.into()))?,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| StoreError::Local { path: PathBuf::from("(runtime)"), source })?;
        Ok(Store { store, root, url: url.clone(), runtime })
    }

    /// A local folder, spoken to as a store: what lets one writer serve both kinds of
    /// destination (the Delta tables).
    pub fn local(dir: &Path) -> Result<Store, StoreError> {
        let absolute =
            std::path::absolute(dir).map_err(|source| StoreError::Local { path: dir.to_path_buf(), source })?;
        let url = Url::from_directory_path(&absolute).map_err(|()| StoreError::Local {
            path: dir.to_path_buf(),
            source: std::io::Error::other("not an absolute path"),
        })?;
        Store::connect(&StoreUrl { url, kind: StoreKind::Local })
    }

    /// The last part of the prefix (a snapshot's run id, when the URL names a snapshot).
    pub fn last_part(&self) -> Option<&str> {
        self.root.filename()
    }

    /// The destination's URL.
    pub fn url(&self) -> &StoreUrl {
        &self.url
    }

    fn path(&self, rel: &str) -> ObjectPath {
        rel.split('/').filter(|p| !p.is_empty()).fold(self.root.clone(), |path, part| path.join(part))
    }

    fn request(&self, action: &'static str, rel: &str) -> impl Fn(object_store::Error) -> StoreError + use<> {
        let object = self.url.join(rel);
        move |source| StoreError::Request { action, object: object.clone(), source }
    }

    /// The bytes of `rel`, or `None` if there is no such object.
    pub fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(rel);
        let fail = self.request("read", rel);
        self.runtime.block_on(async {
            match self.store.get(&path).await {
                Ok(got) => got.bytes().await.map(|b| Some(b.to_vec())).map_err(&fail),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(fail(e)),
            }
        })
    }

    /// The snapshot `LATEST` names, if it names one whose manifest is there.
    pub fn latest(&self) -> Result<Option<String>, StoreError> {
        let Some(bytes) = self.read(LATEST)? else { return Ok(None) };
        let id = String::from_utf8_lossy(&bytes).trim().to_owned();
        Ok(self.has(&format!("{id}/{MANIFEST}"))?.then_some(id))
    }

    /// The size of `rel`, or `None` if there is no such object.
    pub fn size_of(&self, rel: &str) -> Result<Option<u64>, StoreError> {
        let path = self.path(rel);
        self.runtime.block_on(async {
            match self.store.head(&path).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(self.request("read", rel)(e)),
            }
        })
    }

    /// Whether `rel` exists.
    pub fn has(&self, rel: &str) -> Result<bool, StoreError> {
        self.size_of(rel).map(|size| size.is_some())
    }

    /// The names directly below the prefix that are run ids, each with whether it holds a
    /// manifest (a published snapshot) or not (a run that died mid-upload, or one uploading now),
    /// oldest first.
    pub fn runs(&self) -> Result<Vec<(String, bool)>, StoreError> {
        let listed = self
            .runtime
            .block_on(self.store.list_with_delimiter(Some(&self.root)))
            .map_err(self.request("list", ""))?;
        let mut ids: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .filter(|name| run_time(name).is_some())
            .collect();
        ids.sort_by_key(|id| run_order(id));
        ids.into_iter()
            .map(|id| {
                let complete = self.has(&format!("{id}/{MANIFEST}"))?;
                Ok((id, complete))
            })
            .collect()
    }

    /// Whether anything exists below `<id>/` (a run id is not reused).
    pub fn has_run(&self, id: &str) -> Result<bool, StoreError> {
        let prefix = self.path(id);
        self.runtime.block_on(async {
            let mut listed = self.store.list(Some(&prefix));
            listed.next().await.transpose().map(|first| first.is_some()).map_err(self.request("list", id))
        })
    }

    /// Uploads the snapshot folder `local` as `<id>/`: every file but `manifest.json` first,
    /// each checked once the store has it, then — if `before_manifest` agrees (the run still
    /// holds the lock) — `manifest.json`. Passes the crash point `upload` after each file.
    pub fn upload(
        &self,
        local: &Path,
        id: &str,
        mut before_manifest: impl FnMut() -> Result<(), StoreError>,
    ) -> Result<Uploaded, StoreError> {
        let mut files = Vec::new();
        list_files(local, "", &mut files)?;
        files.sort();
        let (last, first): (Vec<String>, Vec<String>) = files.into_iter().partition(|f| f == MANIFEST);
        let mut uploaded = Uploaded::default();
        for (n, batch) in [first, last].into_iter().enumerate() {
            if n == 1 {
                before_manifest()?;
            }
            let sent: Vec<u64> = self.runtime.block_on(
                futures_util::stream::iter(
                    batch.iter().map(|rel| self.put_file(local.join(rel), format!("{id}/{rel}"))),
                )
                .buffer_unordered(PARALLEL_UPLOADS)
                .inspect_ok(|_| crate::failpoint::hit("upload"))
                .try_collect(),
            )?;
            uploaded.files += sent.len();
            uploaded.bytes += sent.iter().sum::<u64>();
        }
        Ok(uploaded)
    }

    /// Uploads one local file as `rel` (in parts when large), checked as [`Store::upload`] checks
    /// each; returns its size.
    pub fn upload_file(&self, file: &Path, rel: &str) -> Result<u64, StoreError> {
        self.runtime.block_on(self.put_file(file.to_path_buf(), rel.to_owned()))
    }

    /// Writes one local file as `rel` and checks what the store says it holds.
    async fn put_file(&self, file: PathBuf, rel: String) -> Result<u64, StoreError> {
        let (file, rel) = (file.as_path(), rel.as_str());
        let local = |source| StoreError::Local { path: file.to_path_buf(), source };
        let path = self.path(rel);
        let fail = self.request("upload", rel);
        let size = std::fs::metadata(file).map_err(local)?.len();
        let mut md5 = md5::Md5::default();
        let mut reader = std::fs::File::open(file).map_err(local)?;
        if size >= MULTIPART_FROM {
            let upload = self.store.put_multipart(&path).await.map_err(&fail)?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            let mut buffer = vec![0u8; PART_SIZE];
            let sent: Result<(), StoreError> = async {
                loop {
                    let n = reader.read(&mut buffer).map_err(local)?;
                    if n == 0 {
                        return Ok(());
                    }
                    md5::Digest::update(&mut md5, &buffer[..n]);
                    writer.wait_for_capacity(2).await.map_err(&fail)?;
                    writer.write(&buffer[..n]);
                }
            }
            .await;
            match sent {
                // A part upload left incomplete is billed on S3 until aborted.
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(e);
                }
                Ok(()) => {
                    writer.finish().await.map_err(&fail)?;
                }
            }
        } else {
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            reader.read_to_end(&mut bytes).map_err(local)?;
            md5::Digest::update(&mut md5, &bytes);
            self.store.put(&path, PutPayload::from(bytes)).await.map_err(&fail)?;
        }
        let meta = self.store.head(&path).await.map_err(self.request("check", rel))?;
        let mismatch = |what| StoreError::Mismatch { object: self.url.join(rel), what };
        if meta.size != size {
            return Err(mismatch(format!("{} bytes stored, {size} sent", meta.size)));
        }
        let sent = crate::model::hex(&md5::Digest::finalize(md5));
        // Only Cloud Storage's ETag of a whole upload is its MD5: S3's is not under SSE-KMS (S3
        // checks the SHA-256 sent with the upload instead), Azure's never is.
        if self.url.kind == StoreKind::Gcs
            && size < MULTIPART_FROM
            && let Some(etag) = meta.e_tag.as_deref().map(|e| e.trim_matches('"').to_ascii_lowercase())
            && etag.len() == 32
            && etag.bytes().all(|b| b.is_ascii_hexdigit())
            && etag != sent
        {
            return Err(mismatch(format!("MD5 {etag} stored, {sent} sent")));
        }
        Ok(size)
    }

    /// Writes `bytes` as `rel`, replacing what is there.
    pub fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        let path = self.path(rel);
        self.runtime
            .block_on(self.store.put(&path, PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(self.request("upload", rel))
    }

    /// Writes `bytes` as `rel` only if nothing is there yet (a conditional create); `false` if
    /// something was.
    pub fn put_new(&self, rel: &str, bytes: Vec<u8>) -> Result<bool, StoreError> {
        let path = self.path(rel);
        match self.runtime.block_on(self.store.put_opts(&path, PutPayload::from(bytes), PutMode::Create.into())) {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => Ok(false),
            Err(e) => Err(self.request("upload", rel)(e)),
        }
    }

    /// The names of the objects directly below `<rel>/`, sorted.
    pub fn list(&self, rel: &str) -> Result<Vec<String>, StoreError> {
        let prefix = self.path(rel);
        let listed =
            self.runtime.block_on(self.store.list_with_delimiter(Some(&prefix))).map_err(self.request("list", rel))?;
        let mut names: Vec<String> =
            listed.objects.iter().filter_map(|o| o.location.filename().map(str::to_owned)).collect();
        names.sort();
        Ok(names)
    }

    /// Points `LATEST` at `id`: one object written whole, so a reader sees the old id or the new.
    pub fn point_latest(&self, id: &str) -> Result<(), StoreError> {
        let path = self.path(LATEST);
        let payload = PutPayload::from(format!("{id}\n").into_bytes());
        self.runtime.block_on(self.store.put(&path, payload)).map(|_| ()).map_err(self.request("upload", LATEST))
    }

    /// Removes every object below `<rel>/`.
    pub fn remove(&self, rel: &str) -> Result<(), StoreError> {
        let prefix = self.path(rel);
        self.runtime
            .block_on(async {
                let locations = self.store.list(Some(&prefix)).map_ok(|meta| meta.location).boxed();
                self.store.delete_stream(locations).try_collect::<Vec<_>>().await.map(|_| ())
            })
            .map_err(self.request("delete", rel))
    }

    /// Removes what runs that died left (prefixes without a manifest, `keep` aside) and the
    /// snapshots retention no longer keeps. Call it holding the lock: only then is a prefix
    /// without a manifest certainly not a run uploading now.
    pub fn tidy(&self, retention: Retention, keep: &str, now: DateTime<Utc>) -> Result<Tidied, StoreError> {
        let mut tidied = Tidied::default();
        let mut published = Vec::new();
        for (id, complete) in self.runs()? {
            if complete {
                published.push(id);
            } else if id != keep {
                self.remove(&id)?;
                tracing::info!(event = "orphaned_upload_removed", snapshot = %id, store = %self.url);
                tidied.orphans.push(id);
            }
        }
        for (id, reason) in doomed(&published, retention, keep, now.naive_utc()) {
            // The manifest first: a snapshot half-removed is then not a published one.
            self.delete(&format!("{id}/{MANIFEST}"))?;
            self.remove(id)?;
            tracing::info!(event = "snapshot_removed", snapshot = %id, reason = reason.name(), store = %self.url);
            tidied.removed.push(id.to_owned());
        }
        Ok(tidied)
    }

    fn delete(&self, rel: &str) -> Result<(), StoreError> {
        let path = self.path(rel);
        match self.runtime.block_on(self.store.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.request("delete", rel)(e)),
        }
    }

    /// Copies every object below `<rel>/` (all of the prefix when `rel` is empty) into the
    /// folder `into`, keeping their relative paths and streaming each to disk; objects whose
    /// first part is in `leave_out` are not copied.
    pub fn download(&self, rel: &str, into: &Path, leave_out: &[&str]) -> Result<usize, StoreError> {
        let prefix = if rel.is_empty() { self.root.clone() } else { self.path(rel) };
        let objects: Vec<object_store::ObjectMeta> =
            self.runtime.block_on(self.store.list(Some(&prefix)).try_collect()).map_err(self.request("list", rel))?;
        let depth = prefix.parts().count();
        let mut copied = 0;
        for meta in &objects {
            let parts: Vec<String> = meta.location.parts().skip(depth).map(|p| p.as_ref().to_owned()).collect();
            let skipped = parts.first().is_none_or(|first| leave_out.contains(&first.as_str()));
            if skipped {
                continue;
            }
            let name = parts.join("/");
            let object = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            let target = parts.iter().fold(into.to_path_buf(), |path, part| path.join(part));
            let local = |source| StoreError::Local { path: target.clone(), source };
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(local)?;
            }
            let mut file = std::fs::File::create(&target).map_err(local)?;
            let fail = self.request("read", &object);
            self.runtime.block_on(async {
                let mut stream = self.store.get(&meta.location).await.map_err(&fail)?.into_stream();
                while let Some(chunk) = stream.next().await {
                    std::io::Write::write_all(&mut file, &chunk.map_err(&fail)?).map_err(local)?;
                }
                Ok::<(), StoreError>(())
            })?;
            copied += 1;
        }
        Ok(copied)
    }

    /// Takes the prefix's lock for a run of `run_id`, to expire `expiry` after `now`. A lock
    /// whose holder is a dead process of this host, or whose expiry has passed, is taken over.
    pub fn lock(&self, run_id: &str, now: DateTime<Utc>, expiry: Duration) -> Result<StoreLock<'_>, LockError> {
        let object = self.url.join(LOCK_FILE);
        let path = self.path(LOCK_FILE);
        let failed = |e: object_store::Error| LockError::Store { object: object.clone(), message: e.to_string() };
        let mine = Holder::me(run_id, now, expiry);
        let body = || PutPayload::from(serde_json::to_vec(&mine).unwrap_or_default());
        let created = self.runtime.block_on(self.store.put_opts(&path, body(), PutMode::Create.into()));
        let result = match created {
            Ok(result) => result,
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                // The body and the version it is judged by come from one answer.
                let held = self.runtime.block_on(async {
                    let got = self.store.get(&path).await?;
                    let meta = got.meta.clone();
                    got.bytes().await.map(|bytes| (bytes, meta))
                });
                let (held, meta) = match held {
                    Ok(held) => held,
                    // Released between our two requests: try once more from the start.
                    Err(object_store::Error::NotFound { .. }) => return self.lock(run_id, now, expiry),
                    Err(e) => return Err(failed(e)),
                };
                let holder: Option<Holder> = serde_json::from_slice(&held).ok();
                let described =
                    holder.as_ref().map_or_else(|| String::from_utf8_lossy(&held).into_owned(), Holder::describe);
                let stale = match &holder {
                    None => true,
                    Some(h) => h.is_dead_here() || h.expires_at <= now,
                };
                if !stale {
                    return Err(LockError::Busy { at: object, holder: described });
                }
                tracing::warn!(event = "stale_lock_taken_over", lock = %object, previous_holder = %described);
                let swap = PutMode::Update(UpdateVersion { e_tag: meta.e_tag.clone(), version: meta.version.clone() });
                let options = PutOptions { mode: swap, ..PutOptions::default() };
                match self.runtime.block_on(self.store.put_opts(&path, body(), options)) {
                    Ok(result) => result,
                    Err(object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. }) => {
                        return Err(LockError::Busy { at: object, holder: "a run that took it over just now".into() });
                    }
                    Err(e) => return Err(failed(e)),
                }
            }
            Err(e) => return Err(failed(e)),
        };
        let held = Held { e_tag: result.e_tag, version: result.version, holder: mine, lost: None };
        Ok(StoreLock { store: self, path, object, held: Arc::new(std::sync::Mutex::new(held)), heartbeat: None })
    }
}

/// What a lock object says of its holder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Holder {
    run_id: String,
    pid: u32,
    host: String,
    since: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl Holder {
    fn me(run_id: &str, now: DateTime<Utc>, expiry: Duration) -> Holder {
        Holder {
            run_id: run_id.to_owned(),
            pid: std::process::id(),
            host: hostname(),
            since: now,
            expires_at: now + chrono::Duration::from_std(expiry).unwrap_or(chrono::Duration::hours(6)),
        }
    }

    fn describe(&self) -> String {
        format!(
            "run {} (pid {} on {}) since {}, expires {}",
            self.run_id,
            self.pid,
            self.host,
            self.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            self.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    }

    /// A holder on this host whose process is gone.
    fn is_dead_here(&self) -> bool {
        self.host == hostname() && !super::lock::process_alive(self.pid)
    }
}

/// The version of the lock object this run last wrote, shared with its heartbeat.
#[derive(Debug)]
struct Held {
    e_tag: Option<String>,
    version: Option<String>,
    holder: Holder,
    /// Set by the heartbeat when another run took the lock over.
    lost: Option<String>,
}

/// The lock object of a prefix, held until dropped (which deletes it if it is still ours).
pub struct StoreLock<'a> {
    store: &'a Store,
    path: ObjectPath,
    object: String,
    held: Arc<std::sync::Mutex<Held>>,
    heartbeat: Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
}

impl fmt::Debug for StoreLock<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreLock").field("object", &self.object).finish()
    }
}

/// Rewrites the lock object if it is still the version `held` names, with an expiry `expiry`
/// after `now`: the one renewal, for the run's thread and for its heartbeat.
fn renew_held(
    store: &Store,
    path: &ObjectPath,
    object: &str,
    held: &std::sync::Mutex<Held>,
    now: DateTime<Utc>,
    expiry: Duration,
) -> Result<(), StoreError> {
    let mut held = held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(holder) = &held.lost {
        return Err(StoreError::LockLost { object: object.to_owned(), holder: holder.clone() });
    }
    let renewed = Holder::me(&held.holder.run_id, now, expiry);
    let swap = PutMode::Update(UpdateVersion { e_tag: held.e_tag.clone(), version: held.version.clone() });
    let body = PutPayload::from(serde_json::to_vec(&renewed).unwrap_or_default());
    let options = PutOptions { mode: swap, ..PutOptions::default() };
    match store.runtime.block_on(store.store.put_opts(path, body, options)) {
        Ok(result) => {
            held.e_tag = result.e_tag;
            held.version = result.version;
            held.holder = renewed;
            Ok(())
        }
        Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => {
            let now_held = store.read(LOCK_FILE).ok().flatten().unwrap_or_default();
            let holder =
                serde_json::from_slice::<Holder>(&now_held).map_or_else(|_| "nobody".to_owned(), |h| h.describe());
            held.lost = Some(holder.clone());
            Err(StoreError::LockLost { object: object.to_owned(), holder })
        }
        Err(source) => Err(StoreError::Request { action: "renew", object: object.to_owned(), source }),
    }
}

impl StoreLock<'_> {
    /// Checks the lock is still this run's (nobody took it over as expired) and moves its
    /// expiry on from `now`.
    pub fn renew(&mut self, now: DateTime<Utc>, expiry: Duration) -> Result<(), StoreError> {
        renew_held(self.store, &self.path, &self.object, &self.held, now, expiry)
    }

    /// Renews the lock every quarter of `expiry` from a thread of its own, over a connection
    /// of its own (`own`), until the lock is dropped: a run longer than the expiry keeps it. A
    /// renewal that finds the lock taken over stops, and the run's next [`StoreLock::renew`]
    /// fails with what it found.
    pub fn keep_alive(&mut self, own: Store, expiry: Duration, now: impl Fn() -> DateTime<Utc> + Send + 'static) {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (path, object, held) = (self.path.clone(), self.object.clone(), self.held.clone());
        let every = expiry / 4;
        let span = tracing::Span::current();
        let beat = std::thread::spawn(move || {
            let _in_run = span.enter();
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                match renew_held(&own, &path, &object, &held, now(), expiry) {
                    Ok(()) => tracing::debug!(event = "lock_renewed", lock = %object),
                    Err(e @ StoreError::LockLost { .. }) => {
                        tracing::error!(event = "lock_lost", lock = %object, error = %e);
                        return;
                    }
                    // The store's own message may quote a signed URL: it is left out here, and
                    // the run's next renewal, if it fails too, reports it through the redacted error.
                    Err(_) => tracing::warn!(event = "lock_not_renewed", lock = %object),
                }
            }
        });
        self.heartbeat = Some((stop, beat));
    }
}

impl Drop for StoreLock<'_> {
    fn drop(&mut self) {
        if let Some((stop, beat)) = self.heartbeat.take() {
            drop(stop);
            let _ = beat.join();
        }
        let store = self.store;
        let e_tag = self.held.lock().map(|h| h.e_tag.clone()).unwrap_or_default();
        let ours = store.runtime.block_on(store.store.head(&self.path)).is_ok_and(|meta| meta.e_tag == e_tag);
        if ours {
            let _ = store.runtime.block_on(store.store.delete(&self.path));
            tracing::debug!(event = "lock_released", lock = %self.object);
        }
    }
}

/// Every file below `dir`, as paths relative to it with `/` between parts.
fn list_files(dir: &Path, prefix: &str, into: &mut Vec<String>) -> Result<(), StoreError> {
    let local = |source| StoreError::Local { path: dir.to_path_buf(), source };
    for entry in std::fs::read_dir(dir).map_err(local)? {
        let entry = entry.map_err(local)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        if entry.file_type().map_err(local)?.is_dir() {
            list_files(&entry.path(), &rel, into)?;
        } else {
            into.push(rel);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Store {
        /// A store in memory, as `connect` gives a cloud one.
        fn in_memory(prefix: &str) -> Store {
            let url = StoreUrl::new(Url::parse(&format!("s3://memory/{prefix}")).unwrap()).unwrap();
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let root = ObjectPath::from_url_path(url.url.path()).unwrap();
            Store { store: Arc::new(object_store::memory::InMemory::new()), root, url, runtime }
        }

        /// Another connection to the same memory, with a runtime of its own.
        fn sibling(&self) -> Store {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            Store { store: self.store.clone(), root: self.root.clone(), url: self.url.clone(), runtime }
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_snapshot_goes_up_whole_large_files_in_parts_and_comes_back_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let snapshot = dir.path().join("20261201T020000Z");
        std::fs::create_dir_all(snapshot.join("invoices")).unwrap();
        // Larger than one part, not a multiple of it.
        let large: Vec<u8> = (0..(MULTIPART_FROM as usize + PART_SIZE / 3)).map(|i| (i % 251) as u8).collect();
        std::fs::write(snapshot.join("invoices/part-00000.parquet"), &large).unwrap();
        std::fs::write(snapshot.join(MANIFEST), b"{}").unwrap();
        let store = Store::in_memory("billing");
        assert_eq!(store.latest().unwrap(), None);
        let mut asked = 0;
        let sent = store
            .upload(&snapshot, "20261201T020000Z", || {
                asked += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(asked, 1, "asked once, before the manifest");
        assert_eq!(sent, Uploaded { files: 2, bytes: large.len() as u64 + 2 });
        store.point_latest("20261201T020000Z").unwrap();
        assert_eq!(store.latest().unwrap().as_deref(), Some("20261201T020000Z"));
        assert_eq!(store.read("20261201T020000Z/invoices/part-00000.parquet").unwrap(), Some(large.clone()));
        let back = tempfile::tempdir().unwrap();
        assert_eq!(store.download("20261201T020000Z", back.path(), &[]).unwrap(), 2);
        assert_eq!(std::fs::read(back.path().join("invoices/part-00000.parquet")).unwrap(), large);
    }

    #[test]
    fn tidying_removes_dead_uploads_and_what_retention_no_longer_keeps() {
        let store = Store::in_memory("p");
        let put = |rel: &str| store.runtime.block_on(store.store.put(&store.path(rel), PutPayload::from("x"))).unwrap();
        for id in ["20261101T020000Z", "20261102T020000Z", "20261103T020000Z", "20261104T020000Z"] {
            put(&format!("{id}/a.parquet"));
            put(&format!("{id}/{MANIFEST}"));
        }
        put("20261103T120000Z/a.parquet"); // killed mid-upload: no manifest
        put("20261105T020000Z/a.parquet"); // the run uploading now
        let retention = Retention { keep_snapshots: 2, keep_days: None };
        let tidied = store.tidy(retention, "20261105T020000Z", at("2026-11-05T03:00:00Z")).unwrap();
        assert_eq!(tidied.orphans, ["20261103T120000Z"]);
        assert_eq!(tidied.removed, ["20261101T020000Z", "20261102T020000Z"]);
        let left: Vec<(String, bool)> = store.runs().unwrap();
        let expected = [("20261103T020000Z", true), ("20261104T020000Z", true), ("20261105T020000Z", false)];
        assert_eq!(left, expected.map(|(id, done)| (id.to_owned(), done)));
    }

    #[test]
    fn one_lock_per_prefix_until_released_or_expired() {
        let store = Store::in_memory("p");
        let hour = Duration::from_secs(3600);
        let mut first = store.lock("20261201T020000Z", at("2026-12-01T02:00:00Z"), hour).unwrap();
        match store.lock("20261201T020001Z", at("2026-12-01T02:00:01Z"), hour) {
            Err(LockError::Busy { at, holder }) => {
                assert_eq!(at, "s3://memory/p/.pcrecon.lock");
                assert!(
                    holder.contains("run 20261201T020000Z") && holder.contains("expires 2026-12-01T03:00:00Z"),
                    "{holder}"
                );
            }
            other => panic!("expected Busy, got {other:?}"),
        }
        first.renew(at("2026-12-01T02:30:00Z"), hour).unwrap();
        // Past its renewed expiry, another run takes it over; the first then knows it lost it.
        let second = store.lock("20261201T040000Z", at("2026-12-01T03:30:01Z"), hour).unwrap();
        match first.renew(at("2026-12-01T03:31:00Z"), hour) {
            Err(StoreError::LockLost { holder, .. }) => assert!(holder.contains("run 20261201T040000Z"), "{holder}"),
            other => panic!("expected LockLost, got {other:?}"),
        }
        drop(first);
        assert!(store.has(LOCK_FILE).unwrap(), "a lock that is no longer ours is not deleted");
        drop(second);
        assert!(!store.has(LOCK_FILE).unwrap(), "released");
        store.lock("20261201T050000Z", at("2026-12-01T05:00:00Z"), hour).unwrap();
    }

    #[test]
    fn a_run_longer_than_the_expiry_keeps_its_lock_alive() {
        let store = Store::in_memory("p");
        let expiry = Duration::from_millis(400);
        let mut lock = store.lock("20261201T020000Z", Utc::now(), expiry).unwrap();
        lock.keep_alive(store.sibling(), expiry, Utc::now);
        std::thread::sleep(Duration::from_millis(1000));
        // Without its heartbeat the lock would have expired twice over by now.
        assert!(matches!(store.lock("20261201T020001Z", Utc::now(), expiry), Err(LockError::Busy { .. })));
        lock.renew(Utc::now(), expiry).unwrap();
        drop(lock);
        assert!(!store.has(LOCK_FILE).unwrap(), "released, the heartbeat stopped");
    }

    #[test]
    fn destinations_are_told_apart_and_an_unknown_scheme_is_refused() {
        assert_eq!(Location::parse("out/snapshots"), Ok(Location::Local(PathBuf::from("out/snapshots"))));
        assert_eq!(Location::parse("file:///srv/out"), Ok(Location::Local(PathBuf::from("/srv/out"))));
        for url in ["az://billing/pcrecon", "abfss://billing@acct.dfs.core.windows.net/x", "s3://b/p", "gs://b"] {
            assert!(matches!(Location::parse(url), Ok(Location::Store(_))), "{url}");
        }
        let ftp = Location::parse("ftp://host/x").unwrap_err();
        assert!(ftp.contains("not a supported destination"), "{ftp}");
        let sas = Location::parse("az://billing/x?sv=2024&sig=SECRET").unwrap_err();
        assert!(sas.contains("credentials belong in the environment") && !sas.contains("SECRET"), "{sas}");
        let Ok(Location::Store(url)) = Location::parse("s3://bucket/a/b/") else { panic!() };
        assert_eq!(url.join("LATEST"), "s3://bucket/a/b/LATEST");
        assert_eq!(url.to_string(), "s3://bucket/a/b");
        assert_eq!(url.folder_name(), "s3-bucket-a-b");
        assert!(Location::parse("s3:/bucket").is_err(), "one slash short is not a local folder");
        let fragment = Location::parse("az://c/x#sig=SECRET").unwrap_err();
        assert!(!fragment.contains("SECRET"), "{fragment}");
    }

    #[test]
    fn a_lock_holder_reads_back_and_says_who_it_is() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T02:00:00Z").unwrap().with_timezone(&Utc);
        let holder = Holder::me("20261201T020000Z", now, Duration::from_secs(3600));
        let back: Holder = serde_json::from_slice(&serde_json::to_vec(&holder).unwrap()).unwrap();
        assert_eq!(back, holder);
        assert!(holder.describe().contains("expires 2026-12-01T03:00:00Z"), "{}", holder.describe());
        assert!(!holder.is_dead_here(), "this process is alive");
        let gone = Holder { pid: u32::MAX, ..holder };
        assert!(gone.is_dead_here());
    }
}
