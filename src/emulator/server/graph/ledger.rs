//! What the server remembers of the v2 exports requested from it ([`Exports`]): each request's
//! job and operation, the eTag of each data file, and which manifest and which root directory of
//! the blob storage belong to which operation. Ids are hashes of the request and the data's eTag
//! (`id_of`), so a repeated request for unchanged data finds the same operation.
//!
//! In: jobs from the export request, with the world they read. Out: the ledger the export,
//! operation, manifest and blob routes share, and the world's line-item file behind each job. It
//! does not answer requests or write files.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::super::App;
use super::super::attributes::Export;
use super::super::faults::Fault;
use super::super::store::LineFile;

/// What an export is of.
#[derive(Debug, Clone)]
pub(super) struct Job {
    pub(super) kind: Export,
    /// Invoice id (billed), or `CCY/period` with the v1 period name (unbilled).
    pub(super) invoice: Option<String>,
    pub(super) unbilled: Option<(String, String)>,
    pub(super) basic: bool,
    /// Why the operation fails (code 5000), if it does.
    pub(super) no_data: Option<String>,
    /// `YYYYMM` of a billed invoice's period.
    pub(super) billing_month: String,
}

impl Job {
    /// The attribute set's name (`full` or `basic`).
    pub(super) fn attribute_set(&self) -> &'static str {
        if self.basic { "basic" } else { "full" }
    }
}

/// An export operation, from its request to its manifest.
pub(super) struct Operation {
    pub(super) job: Job,
    pub(super) etag: String,
    /// How many operations for the same request expired before this one.
    pub(super) generation: u32,
    pub(super) polls: u32,
    pub(super) needed: u32,
    pub(super) expired: bool,
    pub(super) created: String,
    pub(super) manifest_id: String,
}

impl Operation {
    /// Whether the operation has expired, marking it so when this request draws the fault.
    pub(super) fn expired_by(&mut self, fault: Option<Fault>) -> bool {
        self.expired |= fault == Some(Fault::ExpiredOperation);
        self.expired
    }
}

/// Exports requested from this server.
#[derive(Default)]
pub struct Exports {
    pub(super) state: Mutex<Ledger>,
}

/// Everything [`Exports`] remembers, under one lock.
#[derive(Default)]
pub(super) struct Ledger {
    pub(super) operations: HashMap<String, Operation>,
    /// Request key → generation (a new one after an expiry).
    pub(super) generations: HashMap<String, u32>,
    /// Data file → eTag.
    pub(super) etags: HashMap<String, String>,
    /// Manifest id → operation id.
    pub(super) manifests: HashMap<String, String>,
    /// Root directory path → operation id.
    pub(super) roots: HashMap<String, String>,
}

/// A GUID-shaped id from a hash of some parts.
pub(super) fn id_of(parts: &[&str]) -> String {
    let digest = Sha256::digest(parts.join("\u{1f}").as_bytes());
    let h = crate::model::hex(&digest[..16]);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn stem(kind: Export) -> &'static str {
    match kind {
        Export::Usage => "usagelineitems",
        Export::Reconciliation => "billinglineitems",
    }
}

/// The world's line-item file a job exports, if the world has it.
pub(super) fn lines<'a>(app: &'a App, job: &Job) -> Option<&'a LineFile> {
    match (&job.invoice, &job.unbilled) {
        (Some(id), _) => app.store.invoice_lines(id, &format!("onetime-{}", stem(job.kind))),
        (None, Some((currency, period))) => app.store.unbilled_lines(currency, period, stem(job.kind)),
        _ => None,
    }
}

/// The name of a job's data file, whatever the request's attribute set.
pub(super) fn data_key(job: &Job) -> String {
    match (&job.invoice, &job.unbilled) {
        (Some(id), _) => format!("{}/{}", id.to_uppercase(), stem(job.kind)),
        (_, Some((c, p))) => format!("UNBILLED/{c}/{p}/{}", stem(job.kind)),
        _ => String::new(),
    }
}

/// The eTag of a job's data: the SHA-256 of its line-item file, computed once per file.
pub(super) fn etag_of(app: &App, job: &Job) -> String {
    let key = data_key(job);
    if let Some(e) = app.exports.state.lock().unwrap_or_else(|p| p.into_inner()).etags.get(&key) {
        return e.clone();
    }
    let digest = lines(app, job).and_then(|f| f.digest().ok()).unwrap_or_default();
    let etag = format!("\"0x{}\"", crate::model::hex(&digest[..digest.len().min(8)]).to_uppercase());
    app.exports.state.lock().unwrap_or_else(|p| p.into_inner()).etags.insert(key, etag.clone());
    etag
}
