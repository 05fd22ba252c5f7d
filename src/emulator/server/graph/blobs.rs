//! The manifest and the files of a finished v2 export, and the blob storage that serves them
//! (spec §12): `GET …/manifests/{id}`, and `GET /blob/...` with a valid, unexpired shared-access
//! signature, answering storage's XML errors otherwise.
//!
//! In: an operation of the [`Ledger`] and the world's line items behind it. Out: the manifest
//! (`rootDirectory`, `sasToken`, the files' names, and [`ManifestCounts::WithCounts`]'s counts)
//! and each file's bytes: the line items under the export's attribute names, `blob_lines` to a
//! file, gzip-compressed, every odd file as two members. It does not create operations or move
//! them along; the `graph` module does.

use std::io::Write as _;
use std::sync::Arc;

use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use flate2::Compression;
use flate2::write::GzEncoder;

use super::super::App;
use super::super::attributes::Export;
use super::super::faults::Fault;
use super::super::request::RequestCtx;
use super::super::respond::{graph_error, json, operation_expired, origin};
use super::super::store::LineFile;
use super::ledger::{Job, Ledger, Operation, id_of, lines};
use super::settings::ManifestCounts;

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
pub(super) fn manifest_of(
    app: &App,
    st: &mut Ledger,
    op_id: &str,
    headers: &HeaderMap,
) -> Result<serde_json::Value, String> {
    let op = st.operations.get(op_id).ok_or_else(|| "the operation is gone".to_owned())?;
    let root = root_path(app, op);
    let blobs = blobs_of(app, op);
    let expiry = app.settings.clock.now()
        + chrono::Duration::seconds(i64::try_from(app.settings.export.sas_ttl_secs).unwrap_or(0));
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
        return operation_expired(&headers);
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
    let unexpired = chrono::DateTime::parse_from_rfc3339(se).is_ok_and(|t| t > app.settings.clock.now());
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
fn export_lines(raw: &[u8], kind: Export, basic: bool) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(raw.len());
    for line in raw.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)) {
        let item: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(line).map_err(|e| format!("world line item: {e}"))?;
        let mut text = String::from("{");
        for attr in kind.attributes().filter(|a| a.basic || !basic) {
            let Some(value) = super::super::attributes::value_of(&item, attr.from) else { continue };
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
