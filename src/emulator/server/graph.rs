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
//!
//! This module takes the export request and answers the operation's status; the manifest and the
//! files are served by `blobs`, the ledger they share is `ledger`, and the documented variants
//! the emulator can answer with are chosen in `settings`.

mod blobs;
mod ledger;
mod settings;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

pub(super) use blobs::{blob, manifest};
pub(super) use ledger::Exports;
pub use settings::{ExportSettings, ManifestCounts, ManifestLocation, SuccessStatus};

use super::App;
use super::attributes::Export;
use super::faults::Fault;
use super::request::RequestCtx;
use super::respond::{graph_error, json, operation_expired, origin};
use blobs::manifest_of;
use ledger::{Job, Operation, data_key, etag_of, id_of};

/// Graph's timestamps, by the server's clock: seven fractional digits.
fn graph_time(app: &App) -> String {
    app.settings.clock.now().format("%Y-%m-%dT%H:%M:%S%.6f0").to_string()
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
                created: graph_time(&app),
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
        return operation_expired(&headers);
    }
    op.polls += 1;
    let now = graph_time(&app);
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
