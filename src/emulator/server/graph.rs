//! The v2 reconciliation export on Microsoft Graph (spec §12) and the blob storage behind it.
//!
//! `POST /{v1.0|beta}/reports/partners/billing/{usage|reconciliation}/{billed|unbilled}/export`
//! answers 202 with a `Location`; the operation goes `notStarted` → `running` (with
//! `Retry-After`) → `succeeded` (or `completed`, the other documented spelling, with
//! [`SuccessStatus::Completed`]), or `failed` with code 5000 for a legacy or unknown invoice; the
//! manifest, linked from the operation (`resourceLocation@odata.navigationLink`) or embedded in it
//! (`resourceLocation`, [`ManifestLocation::Embedded`]), lists gzip JSON-lines files under
//! `rootDirectory`, served by `GET /blob/...` only with a valid, unexpired shared-access
//! signature. As in GA, the manifest gives each file's `name` and `partitionValue` only, and
//! `blobCount`; [`ManifestCounts::WithCounts`] adds the per-file `itemCount` and `sizeInBytes`
//! of Microsoft's sample model. `billingPeriod` takes `current` or `last`; anything else,
//! including v1's `previous` and the sentinel `unknownFutureValue`, is a Graph 400.
//!
//! The files hold the same line items v1 serves, under the attribute names of the `attributes`
//! module, split into files of `blob_lines` lines; every odd file is written as two gzip members.
//! Ids are derived from the request and the data's eTag (the SHA-256 of the line items), so a
//! repeated request for unchanged data gets the same operation, manifest and files, and a revised
//! world gets a new eTag. An operation that expired (410) is replaced by a new one at the next
//! request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use std::io::Write as _;

use super::App;
use super::attributes::Export;
use super::faults::Fault;
use super::request::RequestCtx;
use super::respond::json;
use super::store::LineFile;

/// What a manifest says about each of its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ManifestCounts {
    /// As the GA resource: `name` and `partitionValue` only (spec §17.6).
    #[default]
    Ga,
    /// Also `itemCount` and `sizeInBytes`, as Microsoft's sample model has them.
    WithCounts,
}

impl std::str::FromStr for ManifestCounts {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ga" => Ok(ManifestCounts::Ga),
            "with-counts" => Ok(ManifestCounts::WithCounts),
            other => Err(format!("{other:?} is not a manifest style (ga, with-counts)")),
        }
    }
}

/// Where a successful operation puts its manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ManifestLocation {
    /// A link to it (`resourceLocation@odata.navigationLink`), as the documentation's example.
    #[default]
    Linked,
    /// The manifest object itself under `resourceLocation`, as Graph has been seen to answer.
    Embedded,
}

impl std::str::FromStr for ManifestLocation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "linked" => Ok(ManifestLocation::Linked),
            "embedded" => Ok(ManifestLocation::Embedded),
            other => Err(format!("{other:?} is not a manifest location (linked, embedded)")),
        }
    }
}

/// The `status` of a successful operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SuccessStatus {
    /// `succeeded`, as the documentation's example.
    #[default]
    Succeeded,
    /// `completed`, as the resource's enumeration lists it.
    Completed,
}

impl SuccessStatus {
    fn as_str(self) -> &'static str {
        match self {
            SuccessStatus::Succeeded => "succeeded",
            SuccessStatus::Completed => "completed",
        }
    }
}

impl std::str::FromStr for SuccessStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "succeeded" => Ok(SuccessStatus::Succeeded),
            "completed" => Ok(SuccessStatus::Completed),
            other => Err(format!("{other:?} is not an operation status (succeeded, completed)")),
        }
    }
}

/// How the emulated export behaves.
#[derive(Debug, Clone)]
pub struct ExportSettings {
    /// Polls an operation answers "not ready" before it succeeds.
    pub polls: u32,
    /// `Retry-After` (seconds) on operations that are not ready.
    pub retry_after_secs: u64,
    /// Lines per file.
    pub blob_lines: usize,
    /// Lifetime of a manifest's shared-access signature.
    pub sas_ttl_secs: u64,
    /// New-commerce invoices whose export has no data yet (code 5000, "try again later").
    pub unavailable: Vec<String>,
    /// What the manifest says about each file.
    pub manifest_counts: ManifestCounts,
    /// Where a successful operation puts its manifest.
    pub manifest_location: ManifestLocation,
    /// The `status` of a successful operation.
    pub success_status: SuccessStatus,
}

impl Default for ExportSettings {
    fn default() -> Self {
        ExportSettings {
            polls: 2,
            retry_after_secs: 1,
            blob_lines: 5000,
            sas_ttl_secs: 12 * 3600,
            unavailable: Vec::new(),
            manifest_counts: ManifestCounts::Ga,
            manifest_location: ManifestLocation::Linked,
            success_status: SuccessStatus::Succeeded,
        }
    }
}

/// What an export is of.
#[derive(Debug, Clone)]
struct Job {
    kind: Export,
    /// Invoice id (billed), or `CCY/period` with the v1 period name (unbilled).
    invoice: Option<String>,
    unbilled: Option<(String, String)>,
    basic: bool,
    /// Why the operation fails (code 5000), if it does.
    no_data: Option<String>,
    /// `YYYYMM` of a billed invoice's period.
    billing_month: String,
}

impl Job {
    /// The attribute set's name (`full` or `basic`).
    fn attribute_set(&self) -> &'static str {
        if self.basic { "basic" } else { "full" }
    }
}

struct Operation {
    job: Job,
    etag: String,
    /// How many operations for the same request expired before this one.
    generation: u32,
    polls: u32,
    needed: u32,
    expired: bool,
    created: String,
    manifest_id: String,
}

impl Operation {
    /// Whether the operation has expired, marking it so when this request draws the fault.
    fn expired_by(&mut self, fault: Option<Fault>) -> bool {
        self.expired |= fault == Some(Fault::ExpiredOperation);
        self.expired
    }
}

/// Graph's timestamps: seven fractional digits.
fn graph_time() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f0").to_string()
}

/// Exports requested from this server.
#[derive(Default)]
pub struct Exports {
    state: Mutex<Ledger>,
}

#[derive(Default)]
struct Ledger {
    operations: HashMap<String, Operation>,
    /// Request key → generation (a new one after an expiry).
    generations: HashMap<String, u32>,
    /// Data file → eTag.
    etags: HashMap<String, String>,
    /// Manifest id → operation id.
    manifests: HashMap<String, String>,
    /// Root directory path → operation id.
    roots: HashMap<String, String>,
}

fn graph_error(status: StatusCode, code: &str, message: &str, request: &HeaderMap) -> Response {
    super::respond::graph_error(status, code, message, request)
}

fn storage_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}\nRequestId:{}\nTime:{}</Message></Error>",
        uuid::Uuid::new_v4(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    r
}

/// A GUID-shaped id from a hash of some parts.
fn id_of(parts: &[&str]) -> String {
    let digest = Sha256::digest(parts.join("\u{1f}").as_bytes());
    let h = crate::model::hex(&digest[..16]);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn origin(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1");
    format!("http://{host}")
}

fn stem(kind: Export) -> &'static str {
    match kind {
        Export::Usage => "usagelineitems",
        Export::Reconciliation => "billinglineitems",
    }
}

fn lines<'a>(app: &'a App, job: &Job) -> Option<&'a LineFile> {
    match (&job.invoice, &job.unbilled) {
        (Some(id), _) => app.store.invoice_lines(id, &format!("onetime-{}", stem(job.kind))),
        (None, Some((currency, period))) => app.store.unbilled_lines(currency, period, stem(job.kind)),
        _ => None,
    }
}

fn data_key(job: &Job) -> String {
    match (&job.invoice, &job.unbilled) {
        (Some(id), _) => format!("{}/{}", id.to_uppercase(), stem(job.kind)),
        (_, Some((c, p))) => format!("UNBILLED/{c}/{p}/{}", stem(job.kind)),
        _ => String::new(),
    }
}

fn field<'a>(body: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    body.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.as_str())
}

/// `POST …/{usage|reconciliation}/{billed|unbilled}/export`.
pub async fn export(
    State(app): State<Arc<App>>,
    Extension(ctx): Extension<RequestCtx>,
    Path((version, kind, state)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let h = &headers;
    if !matches!(version.as_str(), "v1.0" | "beta") {
        return graph_error(StatusCode::NOT_FOUND, "BadRequest", "Resource not found for the segment.", h);
    }
    let Some(kind) = Export::from_segment(&kind) else {
        return graph_error(StatusCode::NOT_FOUND, "BadRequest", "Resource not found for the segment.", h);
    };
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "The request body is not valid JSON.", h);
    };
    let basic = match field(&request, "attributeSet").map(str::to_ascii_lowercase).as_deref() {
        None | Some("full") => false,
        Some("basic") => true,
        Some(_) => {
            return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "attributeSet must be full or basic.", h);
        }
    };
    let mut job = Job { kind, invoice: None, unbilled: None, basic, no_data: None, billing_month: String::new() };
    match state.as_str() {
        "billed" => {
            let Some(id) = field(&request, "invoiceId").filter(|i| !i.is_empty()) else {
                return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "invoiceId is required.", h);
            };
            match app.store.invoice(id) {
                Some(inv)
                    if inv.legacy
                        || app.settings.export.unavailable.iter().any(|u| u.eq_ignore_ascii_case(&inv.id)) =>
                {
                    job.no_data = Some(format!(
                        "No reconciliation data available currently for Invoice {}. Please try again later.",
                        inv.id
                    ));
                }
                Some(inv) => {
                    let full: serde_json::Value = serde_json::from_str(&inv.full).unwrap_or_default();
                    let start = full.get("billingPeriodStartDate").and_then(|v| v.as_str()).unwrap_or("");
                    job.billing_month = start.get(..7).unwrap_or("").replace('-', "");
                }
                None => job.no_data = Some("No data available".into()),
            }
            job.invoice = Some(id.to_uppercase());
        }
        "unbilled" => {
            let currency = field(&request, "currencyCode").unwrap_or("").to_uppercase();
            // The v1 period the world files the lines under.
            let period = match field(&request, "billingPeriod") {
                Some(p) if p.eq_ignore_ascii_case("current") => "current",
                Some(p) if p.eq_ignore_ascii_case("last") => "previous",
                Some(p) if p.eq_ignore_ascii_case("unknownFutureValue") => {
                    return graph_error(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        "billingPeriod 'unknownFutureValue' is not supported.",
                        h,
                    );
                }
                Some(p) => {
                    let message = format!("Invalid billingPeriod '{p}': the value must be current or last.");
                    return graph_error(StatusCode::BAD_REQUEST, "BadRequest", &message, h);
                }
                None => return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "billingPeriod is required.", h),
            };
            if currency.len() != 3 {
                return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "currencyCode is required.", h);
            }
            job.unbilled = Some((currency, period.to_owned()));
        }
        _ => return graph_error(StatusCode::NOT_FOUND, "BadRequest", "Resource not found for the segment.", h),
    }
    // The first export of a file reads all of it for its eTag: off the async workers.
    let etag = tokio::task::block_in_place(|| etag_of(&app, &job));
    let key = format!("{}|{state}|{}|{}", kind.segment(), data_key(&job), job.attribute_set());
    let mut guard = app.exports.state.lock().unwrap_or_else(|p| p.into_inner());
    let st = &mut *guard;
    let mut generation = *st.generations.entry(key.clone()).or_insert(0);
    let mut operation_id = id_of(&["operation", &key, &etag, &generation.to_string()]);
    if st.operations.get(&operation_id).is_some_and(|op| op.expired) {
        generation += 1;
        st.generations.insert(key.clone(), generation);
        operation_id = id_of(&["operation", &key, &etag, &generation.to_string()]);
    }
    if !st.operations.contains_key(&operation_id) {
        let slow = ctx.fault == Some(Fault::SlowOperation);
        let manifest_id = id_of(&["manifest", &operation_id]);
        st.manifests.insert(manifest_id.clone(), operation_id.clone());
        st.operations.insert(
            operation_id.clone(),
            Operation {
                job,
                etag,
                generation,
                polls: 0,
                needed: app.settings.export.polls + if slow { 4 } else { 0 },
                expired: false,
                created: graph_time(),
                manifest_id,
            },
        );
    }
    drop(guard);
    let location = format!("{}/{version}/reports/partners/billing/operations/{operation_id}", origin(&headers));
    let mut r = Response::new(axum::body::Body::empty());
    *r.status_mut() = StatusCode::ACCEPTED;
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// The eTag of a job's data: the SHA-256 of its line-item file, computed once per file.
fn etag_of(app: &App, job: &Job) -> String {
    let key = data_key(job);
    if let Some(e) = app.exports.state.lock().unwrap_or_else(|p| p.into_inner()).etags.get(&key) {
        return e.clone();
    }
    let digest = lines(app, job).and_then(|f| f.digest().ok()).unwrap_or_default();
    let etag = format!("\"0x{}\"", crate::model::hex(&digest[..digest.len().min(8)]).to_uppercase());
    app.exports.state.lock().unwrap_or_else(|p| p.into_inner()).etags.insert(key, etag.clone());
    etag
}

fn gone(request: &HeaderMap) -> Response {
    graph_error(StatusCode::GONE, "Gone", "The operation has expired. Request a new export.", request)
}

/// `GET …/operations/{id}`.
pub async fn operation(
    State(app): State<Arc<App>>,
    Extension(ctx): Extension<RequestCtx>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut guard = app.exports.state.lock().unwrap_or_else(|p| p.into_inner());
    let st = &mut *guard;
    let Some(op) = st.operations.get_mut(&id) else {
        return graph_error(StatusCode::NOT_FOUND, "NotFound", "The operation was not found.", &headers);
    };
    if op.expired_by(ctx.fault) {
        return gone(&headers);
    }
    op.polls += 1;
    let now = graph_time();
    let ns = "#microsoft.graph.partners.billing";
    let mut body = serde_json::json!({
        "@odata.context": format!("{}/{version}/$metadata#reports/partners/billing/operations/$entity", origin(&headers)),
        "id": id,
        "createdDateTime": op.created,
        "lastActionDateTime": now,
    });
    let mut retry = false;
    if op.polls <= op.needed {
        body["@odata.type"] = format!("{ns}.runningOperation").into();
        body["status"] = if op.polls == 1 { "notStarted" } else { "running" }.into();
        retry = true;
    } else if let Some(message) = &op.job.no_data {
        body["@odata.type"] = format!("{ns}.failedOperation").into();
        body["status"] = "failed".into();
        body["error"] = serde_json::json!({ "code": "5000", "message": message });
    } else {
        let manifest_id = op.manifest_id.clone();
        body["@odata.type"] = format!("{ns}.exportSuccessOperation").into();
        body["status"] = app.settings.export.success_status.as_str().into();
        match app.settings.export.manifest_location {
            ManifestLocation::Linked => {
                body["resourceLocation@odata.navigationLink"] =
                    format!("{}/{version}/reports/partners/billing/manifests/{manifest_id}", origin(&headers)).into();
            }
            ManifestLocation::Embedded => {
                let manifest = tokio::task::block_in_place(|| manifest_of(&app, st, &id, &headers));
                match manifest {
                    Ok(mut manifest) => {
                        manifest.as_object_mut().map(|m| m.remove("@odata.context"));
                        body["resourceLocation"] = manifest;
                    }
                    Err(e) => return graph_error(StatusCode::INTERNAL_SERVER_ERROR, "generalException", &e, &headers),
                }
            }
        }
    }
    drop(guard);
    let mut r = json(StatusCode::OK, body.to_string());
    if retry && let Ok(v) = HeaderValue::from_str(&app.settings.export.retry_after_secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// The files of an operation: (name, first line, end line). A new operation after an expiry
/// writes its files under new names, as a new export does.
fn blobs_of(app: &App, op: &Operation) -> Vec<(String, usize, usize)> {
    let (job, etag) = (&op.job, &op.etag);
    let total = lines(app, job).map_or(0, LineFile::len);
    let per = app.settings.export.blob_lines.max(1);
    (0..total.div_ceil(per))
        .map(|i| {
            let tag = id_of(&["blob", etag, &i.to_string(), job.attribute_set(), &op.generation.to_string()]);
            (format!("part-{i:05}-{tag}.c000.json.gz"), i * per, ((i + 1) * per).min(total))
        })
        .collect()
}

/// The bytes of file `index` of a job, lines `from..to`: the export's lines, gzip-compressed
/// (every odd file as two members).
fn blob_bytes(app: &App, job: &Job, index: usize, from: usize, to: usize) -> Result<Vec<u8>, String> {
    let file = lines(app, job).ok_or_else(|| "the export's data is gone".to_owned())?;
    let raw = file.raw_lines(from, to).map_err(|e| e.to_string())?;
    let content = export_lines(&raw, job.kind, job.basic)?;
    Ok(gzip_members(&content, if index % 2 == 1 { 2 } else { 1 }))
}

fn root_path(app: &App, op: &Operation) -> String {
    let tenant = &app.store.partner_tenant_id;
    let fragment = op.job.attribute_set();
    let version = op.etag.trim_matches('"').trim_start_matches("0x");
    let container = match (op.job.kind, op.job.invoice.is_some()) {
        (Export::Usage, true) => "billedusagefastpath",
        (Export::Usage, false) => "unbilledusagefastpath",
        (Export::Reconciliation, true) => "billedreconfastpath",
        (Export::Reconciliation, false) => "unbilledreconfastpath",
    };
    let scope = match (&op.job.invoice, &op.job.unbilled) {
        (Some(id), _) => format!("BillingMonth={}/InvoiceId={id}", op.job.billing_month),
        (_, Some((c, p))) => format!("Currency={c}/Period={p}"),
        _ => String::new(),
    };
    format!(
        "/blob/{container}/v1/PartnerTenantId={tenant}/{scope}/InvoiceVersion={version}/Fragment={fragment}/PartitionType=default"
    )
}

/// The manifest of the finished operation `op_id`, with a fresh shared-access signature; its
/// root directory is registered for downloads.
fn manifest_of(app: &App, st: &mut Ledger, op_id: &str, headers: &HeaderMap) -> Result<serde_json::Value, String> {
    let op = st.operations.get(op_id).ok_or_else(|| "the operation is gone".to_owned())?;
    let root = root_path(app, op);
    let blobs = blobs_of(app, op);
    let expiry =
        chrono::Utc::now() + chrono::Duration::seconds(i64::try_from(app.settings.export.sas_ttl_secs).unwrap_or(0));
    let se = expiry.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let sas =
        format!("sv=2023-11-03&sr=d&sp=rl&se={}&sdd=7&sig={}", se.replace(':', "%3A"), app.signer.sas(&root, &se));
    let mut entries = Vec::with_capacity(blobs.len());
    for (index, (name, from, to)) in blobs.iter().enumerate() {
        let mut entry = serde_json::json!({ "name": name, "partitionValue": "default" });
        if app.settings.export.manifest_counts == ManifestCounts::WithCounts {
            entry["itemCount"] = (to - from).into();
            entry["sizeInBytes"] = blob_bytes(app, &op.job, index, *from, *to)?.len().into();
        }
        entries.push(entry);
    }
    let body = serde_json::json!({
        "@odata.context": format!("{}/v1.0/$metadata#reports/partners/billing/manifests/$entity", origin(headers)),
        "id": op.manifest_id,
        "schemaVersion": "1",
        "dataFormat": "compressedJSON",
        "createdDateTime": op.created,
        "eTag": op.etag,
        "partnerTenantId": app.store.partner_tenant_id,
        "rootDirectory": format!("{}{root}", origin(headers)),
        "sasToken": sas,
        "partitionType": "Default",
        "blobCount": entries.len(),
        "blobs": entries,
    });
    st.roots.insert(root, op_id.to_owned());
    Ok(body)
}

/// `GET …/manifests/{id}`.
pub async fn manifest(
    State(app): State<Arc<App>>,
    Extension(ctx): Extension<RequestCtx>,
    Path((_version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut guard = app.exports.state.lock().unwrap_or_else(|p| p.into_inner());
    let st = &mut *guard;
    let not_found = || graph_error(StatusCode::NOT_FOUND, "NotFound", "The manifest was not found.", &headers);
    let Some(op_id) = st.manifests.get(&id).cloned() else {
        return not_found();
    };
    let Some(op) = st.operations.get_mut(&op_id) else {
        return not_found();
    };
    if op.expired_by(ctx.fault) {
        return gone(&headers);
    }
    if op.polls <= op.needed || op.job.no_data.is_some() {
        return graph_error(StatusCode::NOT_FOUND, "NotFound", "The manifest is not ready.", &headers);
    }
    match tokio::task::block_in_place(|| manifest_of(&app, st, &op_id, &headers)) {
        Ok(body) => json(StatusCode::OK, body.to_string()),
        Err(e) => graph_error(StatusCode::INTERNAL_SERVER_ERROR, "generalException", &e, &headers),
    }
}

/// `GET /blob/{root}/{name}?{sas}`.
pub async fn blob(
    State(app): State<Arc<App>>,
    Extension(ctx): Extension<RequestCtx>,
    Path(path): Path<String>,
) -> Response {
    let full = format!("/blob/{path}");
    let Some((root, name)) = full.rsplit_once('/') else {
        return storage_error(StatusCode::NOT_FOUND, "BlobNotFound", "The specified blob does not exist.");
    };
    let (se, sig) = (ctx.get("se").unwrap_or(""), ctx.get("sig").unwrap_or(""));
    let valid = app.signer.sas(root, se) == sig;
    let unexpired = chrono::DateTime::parse_from_rfc3339(se).is_ok_and(|t| t > chrono::Utc::now());
    if ctx.fault == Some(Fault::SasExpiry) {
        // A signature that expires is as old as its export: the operation has expired too.
        let mut st = app.exports.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = st.roots.get(root).cloned()
            && let Some(op) = st.operations.get_mut(&id)
        {
            op.expired = true;
        }
    }
    if !valid || !unexpired || ctx.fault == Some(Fault::SasExpiry) {
        let message = if valid {
            "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.\nSigned expiry time has passed."
        } else {
            "Server failed to authenticate the request. Signature did not match."
        };
        return storage_error(StatusCode::FORBIDDEN, "AuthenticationFailed", message);
    }
    if ctx.fault == Some(Fault::BlobError) {
        return storage_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "The server encountered an internal error. Please retry the request.",
        );
    }
    let found = {
        let st = app.exports.state.lock().unwrap_or_else(|p| p.into_inner());
        st.roots
            .get(root)
            .and_then(|id| st.operations.get(id))
            .map(|op| (op.job.clone(), op.etag.clone(), blobs_of(&app, op)))
    };
    let Some((job, etag, blobs)) = found else {
        return storage_error(StatusCode::NOT_FOUND, "ContainerNotFound", "The specified container does not exist.");
    };
    let Some((index, (_, from, to))) = blobs.iter().enumerate().find(|(_, (n, _, _))| n == name) else {
        return storage_error(StatusCode::NOT_FOUND, "BlobNotFound", "The specified blob does not exist.");
    };
    if lines(&app, &job).is_none() {
        return storage_error(StatusCode::NOT_FOUND, "BlobNotFound", "The specified blob does not exist.");
    }
    let mut body = match tokio::task::block_in_place(|| blob_bytes(&app, &job, index, *from, *to)) {
        Ok(body) => body,
        Err(e) => return storage_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", &e),
    };
    if ctx.fault == Some(Fault::TruncatedBlob) {
        body.truncate(body.len() * 3 / 5);
    }
    let mut r = Response::new(body.into());
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// Lines gzip-compressed as `members` members, split at line ends.
fn gzip_members(content: &[u8], members: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = content;
    for m in (1..=members).rev() {
        let cut = if m == 1 {
            rest.len()
        } else {
            let half = rest.len() / m;
            rest[half..].iter().position(|b| *b == b'\n').map_or(rest.len(), |p| half + p + 1)
        };
        let (part, tail) = rest.split_at(cut);
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        let _ = encoder.write_all(part);
        out.extend(encoder.finish().unwrap_or_default());
        rest = tail;
    }
    out
}

/// v1 line items (JSON lines) rewritten under the export's attribute names and set.
pub fn export_lines(raw: &[u8], kind: Export, basic: bool) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(raw.len());
    for line in raw.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)) {
        let item: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(line).map_err(|e| format!("world line item: {e}"))?;
        let mut text = String::from("{");
        for attr in kind.attributes().filter(|a| a.basic || !basic) {
            let Some(value) = super::attributes::value_of(&item, attr.from) else { continue };
            if text.len() > 1 {
                text.push(',');
            }
            text.push_str(&serde_json::to_string(attr.name).unwrap_or_default());
            text.push(':');
            text.push_str(&serde_json::to_string(&value).unwrap_or_default());
        }
        text.push_str("}\n");
        out.extend_from_slice(text.as_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn usage_lines_take_the_export_names_and_percentages() {
        let raw = br#"{"partnerId":"p","resellerMpnId":"0","unitOfMeasure":"1 Hour","unitType":"1 Hour","rateOfPartnerEarnedCredit":0.15,"rateOfCredit":"1","quantity":1.50,"hasPartnerEarnedCredit":true,"invoiceLineItemType":"usage_line_items"}"#;
        let full = String::from_utf8(export_lines(raw, Export::Usage, false).unwrap()).unwrap();
        assert_eq!(
            full,
            "{\"PartnerId\":\"p\",\"Tier2MpnId\":\"0\",\"Unit\":\"1 Hour\",\"Quantity\":1.50,\"UnitType\":\"1 Hour\",\"PartnerEarnedCreditPercentage\":15,\"CreditPercentage\":100}\n"
        );
        // `basic` keeps `UnitType` and drops `Unit`, as Microsoft's list marks them.
        let basic = String::from_utf8(export_lines(raw, Export::Usage, true).unwrap()).unwrap();
        assert_eq!(basic, "{\"PartnerId\":\"p\",\"Quantity\":1.50,\"UnitType\":\"1 Hour\",\"CreditPercentage\":100}\n");
    }

    #[test]
    fn reconciliation_lines_take_pascal_case_names_and_a_product_category() {
        let raw = br#"{"partnerId":"p","resellerMpnId":"123","productId":"DZH318Z0BQ4B","publisherName":"Microsoft Corporation","totalForCustomer":"10.50","currency":"EUR","invoiceLineItemType":"billing_line_items"}"#;
        let full = String::from_utf8(export_lines(raw, Export::Reconciliation, false).unwrap()).unwrap();
        assert_eq!(
            full,
            "{\"PartnerId\":\"p\",\"Tier2MpnId\":\"123\",\"ProductId\":\"DZH318Z0BQ4B\",\"ProductCategory\":\"Azure\",\"Total\":\"10.50\",\"Currency\":\"EUR\",\"PublisherName\":\"Microsoft Corporation\"}\n"
        );
    }

    #[test]
    fn files_of_two_members_hold_every_line() {
        let content = b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n";
        let gz = gzip_members(content, 2);
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(gz.as_slice()).read_to_end(&mut out).unwrap();
        assert_eq!(out, content);
        let mut first = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice()).read_to_end(&mut first).unwrap();
        assert!(first.len() < content.len(), "the first member alone is not the whole file");
    }
}
