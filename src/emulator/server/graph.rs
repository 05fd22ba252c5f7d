//! The v2 reconciliation export on Microsoft Graph (spec §12) and the blob storage behind it.
//!
//! `POST /{v1.0|beta}/reports/partners/billing/{usage|reconciliation}/{billed|unbilled}/export`
//! answers 202 with a `Location`; the operation goes `notStarted` → `running` (with
//! `Retry-After`) → `succeeded`, or `failed` with code 5000 for a legacy or unknown invoice; the
//! manifest lists gzip JSON-lines files under `rootDirectory`, served by `GET /blob/...` only with
//! a valid, unexpired shared-access signature.
//!
//! The files hold the same line items v1 serves, under the attribute names of spec §12.4
//! ([`crate::model::v2`]), split into files of `blob_lines` lines; every odd file is written as
//! two gzip members. Ids are derived from the request and the data's eTag (the SHA-256 of the
//! line items), so a repeated request for unchanged data gets the same operation, manifest and
//! files, and a revised world gets a new eTag. An operation that expired (410) is replaced by a
//! new one at the next request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use flate2::Compression;
use flate2::write::GzEncoder;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use std::io::Write as _;

use super::App;
use super::faults::Fault;
use super::respond::json;
use super::routes::RequestCtx;
use super::store::LineFile;
use crate::model::v2::{ExportKind, Scale};

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
}

impl Default for ExportSettings {
    fn default() -> Self {
        ExportSettings {
            polls: 2,
            retry_after_secs: 1,
            blob_lines: 5000,
            sas_ttl_secs: 12 * 3600,
            unavailable: Vec::new(),
        }
    }
}

/// What an export is of.
#[derive(Debug, Clone)]
struct Job {
    kind: ExportKind,
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

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    json(status, body.to_string())
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

fn stem(kind: ExportKind) -> &'static str {
    match kind {
        ExportKind::Usage => "usagelineitems",
        ExportKind::Reconciliation => "billinglineitems",
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
    if !matches!(version.as_str(), "v1.0" | "beta") {
        return graph_error(StatusCode::NOT_FOUND, "BadRequest", "Resource not found for the segment.");
    }
    let kind = match kind.as_str() {
        "usage" => ExportKind::Usage,
        "reconciliation" => ExportKind::Reconciliation,
        _ => return graph_error(StatusCode::NOT_FOUND, "BadRequest", "Resource not found for the segment."),
    };
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "The request body is not valid JSON.");
    };
    let basic = match field(&request, "attributeSet").map(str::to_ascii_lowercase).as_deref() {
        None | Some("full") => false,
        Some("basic") => true,
        Some(_) => return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "attributeSet must be full or basic."),
    };
    let mut job = Job { kind, invoice: None, unbilled: None, basic, no_data: None, billing_month: String::new() };
    match state.as_str() {
        "billed" => {
            let Some(id) = field(&request, "invoiceId").filter(|i| !i.is_empty()) else {
                return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "invoiceId is required.");
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
            let period = match field(&request, "billingPeriod").map(str::to_ascii_lowercase).as_deref() {
                Some("current") => "current",
                // `last` as documented; v1's `previous` is taken as the same period.
                Some("last" | "previous") => "previous",
                _ => {
                    return graph_error(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        "billingPeriod must be current or last.",
                    );
                }
            };
            if currency.len() != 3 {
                return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "currencyCode is required.");
            }
            job.unbilled = Some((currency, period.to_owned()));
        }
        _ => return graph_error(StatusCode::NOT_FOUND, "BadRequest", "Resource not found for the segment."),
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

fn gone() -> Response {
    graph_error(StatusCode::GONE, "Gone", "The operation has expired. Request a new export.")
}

/// `GET …/operations/{id}`.
pub async fn operation(
    State(app): State<Arc<App>>,
    Extension(ctx): Extension<RequestCtx>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut guard = app.exports.state.lock().unwrap_or_else(|p| p.into_inner());
    let Some(op) = guard.operations.get_mut(&id) else {
        return graph_error(StatusCode::NOT_FOUND, "NotFound", "The operation was not found.");
    };
    if op.expired_by(ctx.fault) {
        return gone();
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
        body["@odata.type"] = format!("{ns}.exportSuccessOperation").into();
        body["status"] = "succeeded".into();
        body["resourceLocation@odata.navigationLink"] =
            format!("{}/{version}/reports/partners/billing/manifests/{}", origin(&headers), op.manifest_id).into();
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

fn root_path(app: &App, op: &Operation) -> String {
    let tenant = &app.store.partner_tenant_id;
    let fragment = op.job.attribute_set();
    let version = op.etag.trim_matches('"').trim_start_matches("0x");
    let container = match (op.job.kind, op.job.invoice.is_some()) {
        (ExportKind::Usage, true) => "billedusagefastpath",
        (ExportKind::Usage, false) => "unbilledusagefastpath",
        (ExportKind::Reconciliation, true) => "billedreconfastpath",
        (ExportKind::Reconciliation, false) => "unbilledreconfastpath",
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

/// `GET …/manifests/{id}`.
pub async fn manifest(
    State(app): State<Arc<App>>,
    Extension(ctx): Extension<RequestCtx>,
    Path((_version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut guard = app.exports.state.lock().unwrap_or_else(|p| p.into_inner());
    let st = &mut *guard;
    let Some(op_id) = st.manifests.get(&id).cloned() else {
        return graph_error(StatusCode::NOT_FOUND, "NotFound", "The manifest was not found.");
    };
    let Some(op) = st.operations.get_mut(&op_id) else {
        return graph_error(StatusCode::NOT_FOUND, "NotFound", "The manifest was not found.");
    };
    if op.expired_by(ctx.fault) {
        return gone();
    }
    if op.polls <= op.needed || op.job.no_data.is_some() {
        return graph_error(StatusCode::NOT_FOUND, "NotFound", "The manifest is not ready.");
    }
    let root = root_path(&app, op);
    st.roots.insert(root.clone(), op_id.clone());
    let op = &st.operations[&op_id];
    let blobs = blobs_of(&app, op);
    let expiry =
        chrono::Utc::now() + chrono::Duration::seconds(i64::try_from(app.settings.export.sas_ttl_secs).unwrap_or(0));
    let se = expiry.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let sas =
        format!("sv=2023-11-03&sr=d&sp=rl&se={}&sdd=7&sig={}", se.replace(':', "%3A"), app.signer.sas(&root, &se));
    let body = serde_json::json!({
        "@odata.context": format!("{}/v1.0/$metadata#reports/partners/billing/manifests/$entity", origin(&headers)),
        "id": id,
        "schemaVersion": "1",
        "dataFormat": "compressedJSON",
        "createdDateTime": op.created,
        "eTag": op.etag,
        "partnerTenantId": app.store.partner_tenant_id,
        "rootDirectory": format!("{}{root}", origin(&headers)),
        "sasToken": sas,
        "partitionType": "Default",
        "blobCount": blobs.len(),
        "blobs": blobs
            .iter()
            .map(|(name, from, to)| serde_json::json!({ "name": name, "partitionValue": "default", "itemCount": to - from }))
            .collect::<Vec<_>>(),
    });
    json(StatusCode::OK, body.to_string())
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
    let Some(file) = lines(&app, &job) else {
        return storage_error(StatusCode::NOT_FOUND, "BlobNotFound", "The specified blob does not exist.");
    };
    let built = tokio::task::block_in_place(|| {
        let raw = file.raw_lines(*from, *to).map_err(|e| e.to_string())?;
        let content = export_lines(&raw, job.kind, job.basic)?;
        Ok::<_, String>(gzip_members(&content, if index % 2 == 1 { 2 } else { 1 }))
    });
    let mut body = match built {
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

/// v1 line items (JSON lines) rewritten with the export's attribute names, scales and set.
pub fn export_lines(raw: &[u8], kind: ExportKind, basic: bool) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(raw.len());
    for line in raw.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)) {
        let item: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(line).map_err(|e| format!("world line item: {e}"))?;
        let mut text = String::from("{");
        for attr in kind.attributes().iter().filter(|a| a.basic || !basic) {
            let Some((_, value)) = item.iter().find(|(k, _)| k.eq_ignore_ascii_case(attr.v1)) else { continue };
            let value = match attr.scale {
                Scale::Same => value.clone(),
                Scale::Percent => percent_of(value),
            };
            if text.len() > 1 {
                text.push(',');
            }
            text.push_str(&serde_json::to_string(attr.v2).unwrap_or_default());
            text.push(':');
            text.push_str(&serde_json::to_string(&value).unwrap_or_default());
        }
        text.push_str("}\n");
        out.extend_from_slice(text.as_bytes());
    }
    Ok(out)
}

/// A fraction (number or numeric string) as a percentage number, exactly.
fn percent_of(value: &serde_json::Value) -> serde_json::Value {
    let text = match value {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => return other.clone(),
    };
    match text.trim().parse::<Decimal>().ok().and_then(|d| d.checked_mul(Decimal::ONE_HUNDRED)) {
        Some(p) => serde_json::from_str(&p.normalize().to_string()).unwrap_or_else(|_| value.clone()),
        None => value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn usage_lines_take_the_export_names_and_percentages() {
        let raw = br#"{"partnerId":"p","resellerMpnId":"0","unitOfMeasure":"1 Hour","rateOfPartnerEarnedCredit":0.15,"rateOfCredit":"1","quantity":1.50,"hasPartnerEarnedCredit":true,"invoiceLineItemType":"usage_line_items"}"#;
        let full = String::from_utf8(export_lines(raw, ExportKind::Usage, false).unwrap()).unwrap();
        assert_eq!(
            full,
            "{\"PartnerId\":\"p\",\"Tier2MpnId\":\"0\",\"Unit\":\"1 Hour\",\"Quantity\":1.50,\"PartnerEarnedCreditPercentage\":15,\"CreditPercentage\":100}\n"
        );
        let basic = String::from_utf8(export_lines(raw, ExportKind::Usage, true).unwrap()).unwrap();
        assert_eq!(basic, "{\"PartnerId\":\"p\",\"Unit\":\"1 Hour\",\"Quantity\":1.50,\"CreditPercentage\":100}\n");
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
