//! The v2 asynchronous export on Microsoft Graph (spec §12), as one more source of pages: request
//! an export, poll its operation until it is ready (honouring `Retry-After`, up to a wall-clock
//! deadline), read the manifest, then download every file, gunzip it and cut its JSON lines into
//! the same [`Event`]s the v1 pager sends.
//!
//! A file is used only once all of it has arrived: it is downloaded into a spool folder and
//! decompressed there whole (every gzip member, every CRC), and every non-blank line checked to
//! start with `{` and end with `}`, before its first line goes downstream. The GA manifest gives no
//! per-file counts (spec §17.6), only `blobCount`, which is checked against the files it lists;
//! where a manifest does give a file's `itemCount` or `sizeInBytes` (Microsoft's sample model, the
//! older beta), those are checked too. A file that fails is downloaded again; an
//! expired operation (410) or an expired shared-access signature starts a new export. When the new
//! export describes other data (another eTag or other files) after lines were already sent, the
//! consumer is told to drop them ([`Event::Restart`]) and the sequence starts over.
//!
//! Here: the request and the poll of its operation. The manifest's wire shape is `manifest`'s;
//! the download, check and cut of one file is `blobs`'s.

mod blobs;
mod manifest;

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::mpsc;

use crate::api::auth::TokenKind;
use crate::api::error::Context;
use crate::api::http::{Call, Client, Response};
use crate::api::paging::{PagingError, Sequence};
use crate::api::retry::retry_after;
use crate::config::V2Settings;
use crate::model::page::{Event, ExportLineage};

use blobs::{Arrival, BlobFailure, download, page, send_lines};
use manifest::Manifest;

/// New exports one sequence may start after expiries before it gives up.
const MAX_EXPORTS: u32 = 10;
/// Longest pause between polls when the service names none.
const MAX_POLL_WAIT: Duration = Duration::from_secs(30);

/// An export whose manifest is in hand.
struct Ready {
    operation_id: String,
    manifest: Manifest,
}

#[derive(Deserialize)]
struct Operation {
    #[serde(rename = "@odata.type", default)]
    odata_type: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    status: String,
    #[serde(rename = "resourceLocation@odata.navigationLink", default)]
    manifest_link: Option<String>,
    #[serde(rename = "resourceLocation", default)]
    embedded: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<OperationError>,
}

#[derive(Deserialize)]
struct OperationError {
    #[serde(default)]
    code: serde_json::Value,
    #[serde(default)]
    message: String,
}

/// Fetches a v2 sequence to its end into `tx`; returns the number of items.
pub async fn run(
    client: &Client,
    seq: &Sequence,
    v2: &V2Settings,
    spool: &Path,
    tx: &mpsc::Sender<Event>,
) -> Result<u64, PagingError> {
    let mut exports = 1;
    let mut ready = ready_export(client, seq, v2, &mut exports, None).await?;
    let mut attempt = 1u32;
    let mut pages = 0u32;
    let mut items = 0u64;
    let mut index = 0;
    while index < ready.manifest.blobs.len() {
        let blob = ready.manifest.blobs[index].clone();
        match download(client, seq, &v2.graph_url, &ready.manifest, &blob, spool).await {
            Ok(spooled) => {
                let sent = send_lines(seq, attempt, &mut pages, &spooled, tx).await;
                let _ = std::fs::remove_file(&spooled.path);
                items += sent?;
                index += 1;
                // Progress: the bound is on exports that expire one after another.
                exports = 1;
            }
            Err(BlobFailure::Failed(e)) => return Err(e),
            Err(failure) => {
                let reason = match failure {
                    BlobFailure::Incomplete(reason) => reason,
                    _ => "the shared-access signature was refused".to_owned(),
                };
                tracing::info!(event = "export_renewed", blob = %blob.name, %reason);
                exports += 1;
                let fresh = match ready_export(client, seq, v2, &mut exports, Some(&reason)).await {
                    Ok(fresh) => fresh,
                    Err(e) => {
                        // Whatever comes next (a retry, a fallback to v1) starts from nothing:
                        // the lines already sent must go.
                        if pages > 0 {
                            let reason = format!("the renewed export failed: {e}");
                            let restart = Event::Restart {
                                dataset: seq.dataset,
                                scope: seq.scope.clone(),
                                attempt: attempt + 1,
                                reason,
                            };
                            tx.send(restart).await.map_err(|_| PagingError::Closed)?;
                        }
                        return Err(e);
                    }
                };
                let same_data =
                    fresh.manifest.etag == ready.manifest.etag && fresh.manifest.blobs == ready.manifest.blobs;
                if !same_data {
                    if pages > 0 {
                        attempt += 1;
                        let reason = format!(
                            "the export changed (eTag {} → {}, {} → {} files)",
                            ready.manifest.etag,
                            fresh.manifest.etag,
                            ready.manifest.blobs.len(),
                            fresh.manifest.blobs.len()
                        );
                        tracing::info!(event = "export_restart", attempt, %reason);
                        tx.send(Event::Restart { dataset: seq.dataset, scope: seq.scope.clone(), attempt, reason })
                            .await
                            .map_err(|_| PagingError::Closed)?;
                    }
                    (pages, items, index) = (0, 0, 0);
                }
                ready = fresh;
            }
        }
    }
    if pages == 0 {
        // An export without lines still completes its sequence with one empty page, as v1 does.
        pages = 1;
        let nowhere = Arrival {
            request_id: String::new(),
            url: format!("{}/", ready.manifest.root_directory),
            fetched_at: client.clock().now(),
        };
        let page = page(seq, attempt, 1, &nowhere, Vec::new());
        tx.send(Event::Page(page)).await.map_err(|_| PagingError::Closed)?;
    }
    let lineage = ExportLineage {
        operation_id: ready.operation_id,
        manifest_id: ready.manifest.id,
        etag: ready.manifest.etag,
        attribute_set: v2.attribute_set.to_owned(),
        blobs: ready.manifest.blobs.into_iter().map(|b| b.name).collect(),
    };
    let done = Event::Done {
        dataset: seq.dataset,
        scope: seq.scope.clone(),
        attempt,
        pages,
        items,
        export: Some(Box::new(lineage)),
    };
    tx.send(done).await.map_err(|_| PagingError::Closed)?;
    Ok(items)
}

fn context(seq: &Sequence, page: u32) -> Context {
    Context { dataset: seq.dataset, scope: seq.scope.clone(), page }
}

/// An export failure; its detail may quote what Graph sent (a URL with a signature, say), so it
/// is redacted here, once.
fn failure(seq: &Sequence, detail: String) -> PagingError {
    PagingError::Export {
        context: context(seq, 0),
        detail: crate::redact::redact(&detail).into_owned(),
        no_data: false,
    }
}

/// Whether `url` is on the Graph root's origin or the API's (an emulator serves both): the only
/// places the Graph bearer token may go.
pub(super) fn is_graph_origin(url: &str, graph: &url::Url, client: &Client) -> bool {
    url::Url::parse(url).is_ok_and(|u| u.origin() == graph.origin()) || client.is_api_origin(url)
}

/// Refuses a link Graph gave (the operation's `Location`, the manifest's link) that leads
/// elsewhere than [`is_graph_origin`]: following it would hand that host the bearer token.
fn graph_link(seq: &Sequence, what: &str, url: &str, v2: &V2Settings, client: &Client) -> Result<(), PagingError> {
    if is_graph_origin(url, &v2.graph_url, client) {
        return Ok(());
    }
    let origin =
        url::Url::parse(url).map_or_else(|_| "an unreadable URL".to_owned(), |u| u.origin().ascii_serialization());
    Err(failure(
        seq,
        format!("{what} leads to another host ({origin}); pcrecon follows Graph links on the Graph host only"),
    ))
}

/// Requests an export and waits for its manifest, starting over when the operation or the
/// manifest has expired (410). `exports` counts the requests made for this sequence; `renewing`
/// says why a new export is asked for, when a file of the last one could not be used, so that
/// giving up names that reason rather than only the count.
async fn ready_export(
    client: &Client,
    seq: &Sequence,
    v2: &V2Settings,
    exports: &mut u32,
    renewing: Option<&str>,
) -> Result<Ready, PagingError> {
    loop {
        if *exports > MAX_EXPORTS {
            let detail = match renewing {
                Some(reason) => format!("gave no usable file in {MAX_EXPORTS} exports in a row; the last: {reason}"),
                None => format!("expired {MAX_EXPORTS} times in a row; giving up"),
            };
            return Err(failure(seq, detail));
        }
        match request_export(client, seq, v2).await? {
            Some(ready) => return Ok(ready),
            None => *exports += 1,
        }
    }
}

/// One export: `None` when it expired (410) before its manifest was read.
async fn request_export(client: &Client, seq: &Sequence, v2: &V2Settings) -> Result<Option<Ready>, PagingError> {
    let ctx = context(seq, 0);
    let body = seq.export.as_deref().unwrap_or("{}").as_bytes();
    let call = Call { json: Some(body), ..Call::get(&seq.first, TokenKind::Graph, &ctx) };
    let accepted = client.get(&call).await?;
    let location = header(&accepted, "location")
        .ok_or_else(|| failure(seq, format!("request was answered {} without a Location header", accepted.status)))?;
    // A relative `Location` is resolved against the export's own URL.
    let location =
        url::Url::parse(&seq.first).and_then(|first| first.join(&location)).map_or(location, |u| u.to_string());
    graph_link(seq, "the operation's Location", &location, v2, client)?;
    let deadline = Instant::now() + v2.export_timeout;
    tracing::debug!(event = "export_requested", operation = %location);
    let mut polls = 0u32;
    loop {
        let response = match client.get(&Call::get(&location, TokenKind::Graph, &ctx)).await {
            Err(e) if e.status() == Some(410) => return Ok(None),
            other => other?,
        };
        polls += 1;
        let operation: Operation = serde_json::from_slice(&response.body)
            .map_err(|e| failure(seq, format!("operation {location} is not readable: {e}")))?;
        let kind = operation.odata_type.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
        let status = operation.status.to_ascii_lowercase();
        if kind == "exportsuccessoperation" || status == "succeeded" || status == "completed" {
            let manifest = match (operation.manifest_link, operation.embedded) {
                (Some(link), _) => match graph_link(seq, "the operation's manifest link", &link, v2, client)
                    .map(|()| Call::get(&link, TokenKind::Graph, &ctx))
                {
                    Err(e) => return Err(e),
                    Ok(call) => match client.get(&call).await {
                        Err(e) if e.status() == Some(410) => return Ok(None),
                        other => serde_json::from_slice::<Manifest>(&other?.body)
                            .map_err(|e| failure(seq, format!("manifest {link} is not readable: {e}")))?,
                    },
                },
                (None, Some(embedded)) => serde_json::from_value(embedded).map_err(|e| {
                    failure(seq, format!("the manifest in operation {} is not readable: {e}", operation.id))
                })?,
                (None, None) => {
                    return Err(failure(seq, format!("operation {} succeeded without a manifest", operation.id)));
                }
            };
            if manifest.blob_count.is_some_and(|n| n != manifest.blobs.len()) {
                return Err(failure(
                    seq,
                    format!(
                        "manifest {} lists {} files but says blobCount {:?}",
                        manifest.id,
                        manifest.blobs.len(),
                        manifest.blob_count
                    ),
                ));
            }
            tracing::debug!(event = "export_ready", operation = %operation.id, manifest = %manifest.id, etag = %manifest.etag, blobs = manifest.blobs.len(), polls);
            return Ok(Some(Ready { operation_id: operation.id, manifest }));
        }
        if kind == "failedoperation" || status == "failed" {
            let (code, message) = operation.error.map_or((String::new(), String::new()), |e| {
                (e.code.as_str().map_or_else(|| e.code.to_string(), str::to_owned), e.message)
            });
            return Err(PagingError::Export {
                context: ctx,
                no_data: code == "5000",
                detail: format!(
                    "operation {} failed with code {code}: {}",
                    operation.id,
                    crate::redact::excerpt(&message, &[])
                ),
            });
        }
        let wait = retry_after(&response.headers, client.clock().now().into())
            .map(|asked| client.capped(asked, "the export operation"))
            .unwrap_or_else(|| Duration::from_millis(500 * 2u64.pow(polls.min(6))).min(MAX_POLL_WAIT));
        if Instant::now().checked_add(wait).is_none_or(|at| at > deadline) {
            return Err(failure(
                seq,
                format!(
                    "operation {} was still {} after {} s (extract.v2.export_timeout_secs)",
                    operation.id,
                    operation.status,
                    v2.export_timeout.as_secs()
                ),
            ));
        }
        tokio::time::sleep(wait).await;
    }
}

fn header(response: &Response, name: &str) -> Option<String> {
    response.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}
