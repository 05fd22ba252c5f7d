//! The gate every request passes before routing (`handle`): latency, seeded fault injection,
//! bearer-token checks (App+User where documented, and the MFA claim of App+User tokens under
//! `require_mfa`), the optional per-minute rate limit, and one request-log line.
//!
//! In: a request off the connection, with the server's [`App`]. Out: the router's response with
//! the request and correlation ids echoed and an `MS-CV`, or the gate's own answer: 401/403 for a
//! refused token, an injected 429/500/503 in the shape of the route's service (Partner Center's
//! bodies on `/v1`, Graph's `{"error":{…}}` on `/v1.0` and `/beta`; blob storage is not throttled
//! this way), a truncated body, or a dropped connection ([`Dropped`]). It does not play out the
//! faults that belong to an endpoint (continuation, export and blob faults): it draws them and
//! hands them on in the [`RequestCtx`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tower_service::Service;

use super::log::LogLine;
use super::request::RequestCtx;
use super::respond;
use super::tokens::{Bearer, Refused};
use super::{App, Fault};
use crate::emulator::world::dice::Dice;

/// The connection was dropped on purpose (`reset` fault).
#[derive(Debug)]
pub(super) struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by the emulator")
    }
}

impl std::error::Error for Dropped {}

/// The endpoints whose pages carry a `links.next.uri`.
fn is_paged(path: &str) -> bool {
    path == "/v1/invoices" || path == "/v1/customers" || path.contains("/lineitems")
}

/// Operations the documentation lists as App+User only (spec §1.2).
fn needs_app_user(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    let segments: Vec<&str> = p.trim_end_matches('/').split('/').collect();
    match segments.as_slice() {
        ["", "v1", "invoices", "summaries"] => true,
        ["", "v1", "invoices", id] => !matches!(*id, "summary" | "estimates" | "unbilled"),
        ["", "v1", "invoices", _, "documents", "statement"] => true,
        ["", "v1", "invoices", _, "receipts", _, "documents", "statement"] => true,
        ["", "v1", "customers", _, "entitlements"] => true,
        _ => false,
    }
}

/// The resources the per-minute rate limit counts: everything under `/v1/customers`.
fn is_rate_limited_resource(path: &str) -> bool {
    path.starts_with("/v1/customers")
}

/// A drawn `Retry-After`: 1 to `max_retry_after` seconds, a quarter of the time as an HTTP date.
fn retry_after(app: &App, fault_dice: &mut Dice) -> String {
    let secs = fault_dice.int(1, i64::try_from(app.settings.max_retry_after).unwrap_or(1)) as u64;
    if fault_dice.percent(25) {
        // An HTTP date has whole seconds: one more second keeps it at least `secs` away.
        httpdate::fmt_http_date(SystemTime::from(app.settings.clock.now()) + Duration::from_secs(secs + 1))
    } else {
        secs.to_string()
    }
}

/// Passes one request through the gate and, unless the gate answers it, on to the router.
pub(super) async fn handle(
    app: Arc<App>,
    mut router: axum::Router,
    req: Request<Incoming>,
) -> Result<Response, Dropped> {
    let in_flight = app.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let started = Instant::now();
    app.requests.fetch_add(1, Ordering::Relaxed);
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let path_and_query = req.uri().path_and_query().map_or_else(|| path.clone(), |p| p.as_str().to_owned());
    let headers = req.headers().clone();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let continuation = headers.get("ms-continuationtoken").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let is_api = path.starts_with("/v1/") || path == "/v1";
    let is_graph = path.starts_with("/v1.0/") || path.starts_with("/beta/");
    let is_blob = path.starts_with("/blob/");
    // The pricing API (api.partner.microsoft.com: monthly exchange rates) throttles and fails
    // like Partner Center; its route checks its own tokens.
    let is_pricing = path.starts_with("/partner/v1.0/");

    // A shared-access signature is a credential: the log keeps the path only.
    let logged = if is_blob { path.clone() } else { path_and_query.clone() };
    let mut line = LogLine::new(&method, &logged, bearer.is_some(), in_flight, &headers);
    let fault = if is_api || is_graph || is_blob || is_pricing {
        let mut dice = app.fault_dice.lock().unwrap_or_else(|p| p.into_inner());
        app.settings.faults.draw(&mut dice, |f| match f {
            Fault::ExpiredContinuation => is_api && continuation.is_some(),
            Fault::ExpiredToken => (is_api || is_graph) && bearer.is_some(),
            Fault::MalformedNext => is_api && is_paged(&path),
            Fault::Truncate => is_api,
            Fault::TooManyRequests | Fault::InternalError | Fault::Unavailable => !is_blob,
            Fault::Reset | Fault::Slow => true,
            Fault::SlowOperation => is_graph && method == "POST",
            Fault::ExpiredOperation => is_graph && method == "GET",
            Fault::SasExpiry | Fault::BlobError | Fault::TruncatedBlob => is_blob,
        })
    } else {
        None
    };
    line.fault = fault;

    let response = async {
        if (is_api || is_graph || is_blob || is_pricing) && app.settings.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(app.settings.latency_ms)).await;
        }
        if is_api {
            match &bearer {
                None => {
                    return Ok(respond::unauthorized(
                        "Access denied: the request has no bearer token",
                        &app.store.partner_tenant_id,
                    ));
                }
                Some(token) => match app.signer.check_access(token) {
                    Ok(Bearer::Graph) => {
                        return Ok(respond::unauthorized(
                            "Access denied: the access token is for another audience (Microsoft Graph)",
                            &app.store.partner_tenant_id,
                        ));
                    }
                    Ok(Bearer::Pricing { .. }) => {
                        return Ok(respond::unauthorized(
                            "Access denied: the access token is for another audience (api.partner.microsoft.com)",
                            &app.store.partner_tenant_id,
                        ));
                    }
                    Ok(Bearer::App) if app.settings.require_app_user && needs_app_user(&path) => {
                        return Ok(respond::canonical(
                            StatusCode::FORBIDDEN,
                            "2032",
                            "Access denied: this operation needs an App+User token",
                        ));
                    }
                    // Every App+User call needs the MFA claim once Partner Center enforces it.
                    Ok(Bearer::User { mfa: false }) if app.settings.require_mfa => {
                        return Ok(respond::mfa_required());
                    }
                    Ok(_) if fault == Some(Fault::ExpiredToken) => {
                        return Ok(respond::unauthorized(
                            "Access denied: the access token has expired",
                            &app.store.partner_tenant_id,
                        ));
                    }
                    Ok(_) => {}
                    Err(Refused::Expired) => {
                        return Ok(respond::unauthorized(
                            "Access denied: the access token has expired",
                            &app.store.partner_tenant_id,
                        ));
                    }
                    Err(_) => {
                        return Ok(respond::unauthorized(
                            "Access denied: the access token is invalid",
                            &app.store.partner_tenant_id,
                        ));
                    }
                },
            }
        }
        if is_graph {
            let kind = bearer.as_deref().map(|t| app.signer.check_access(t));
            let refusal = match kind {
                None => Some("Access token is empty."),
                Some(Ok(Bearer::Graph)) if fault == Some(Fault::ExpiredToken) => {
                    Some("Lifetime validation failed, the token is expired.")
                }
                Some(Ok(Bearer::Graph)) => None,
                Some(Ok(_)) => Some("Access token validation failure. Invalid audience."),
                Some(Err(Refused::Expired)) => Some("Lifetime validation failed, the token is expired."),
                Some(Err(_)) => Some("Access token validation failure."),
            };
            if let Some(message) = refusal {
                return Ok(respond::graph_error(
                    StatusCode::UNAUTHORIZED,
                    "InvalidAuthenticationToken",
                    message,
                    &headers,
                ));
            }
        }
        match fault {
            Some(Fault::Reset) => return Err(Dropped),
            Some(Fault::TooManyRequests) => {
                let mut dice = app.fault_dice.lock().unwrap_or_else(|p| p.into_inner());
                let after = retry_after(&app, &mut dice);
                line.retry_after = Some(after.clone());
                if is_graph {
                    let message = format!("Too many requests. Retry after {} seconds.", seconds_of(&after));
                    let r = respond::graph_error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", &message, &headers);
                    return Ok(with_retry_after(r, &after));
                }
                return Ok(throttled(&after));
            }
            Some(Fault::InternalError) => {
                if is_graph {
                    return Ok(respond::graph_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "generalException",
                        "An internal server error occurred. Please try again later.",
                        &headers,
                    ));
                }
                return Ok(respond::canonical(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "500",
                    "An internal error occurred. Please try again later.",
                ));
            }
            Some(Fault::Unavailable) => {
                let mut dice = app.fault_dice.lock().unwrap_or_else(|p| p.into_inner());
                let after = retry_after(&app, &mut dice);
                line.retry_after = Some(after.clone());
                let r = if is_graph {
                    respond::graph_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "serviceNotAvailable",
                        "The service is temporarily unavailable. Please try again later.",
                        &headers,
                    )
                } else {
                    respond::canonical(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "503",
                        "The service is temporarily unavailable.",
                    )
                };
                return Ok(with_retry_after(r, &after));
            }
            Some(Fault::Slow) => tokio::time::sleep(Duration::from_millis(app.settings.slow_ms)).await,
            _ => {}
        }
        if app.settings.rate_limit_per_minute > 0
            && is_rate_limited_resource(&path)
            && let Some(after) = take_rate_slot(&app)
        {
            {
                line.retry_after = Some(after.to_string());
                line.rate_limited = true;
                return Ok(throttled(&after.to_string()));
            }
        }
        let raw_query = req.uri().query().unwrap_or("").to_owned();
        let ctx = RequestCtx {
            path: path.strip_prefix("/v1").unwrap_or(&path).to_owned(),
            query: form_urlencoded::parse(raw_query.as_bytes())
                .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
                .collect(),
            raw_query,
            continuation: continuation.clone(),
            malformed_next: fault == Some(Fault::MalformedNext),
            expire_continuation: fault == Some(Fault::ExpiredContinuation),
            fault,
        };
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ctx);
        let Ok(response) = router.call(req).await;
        Ok::<Response, Dropped>(response)
    }
    .await;

    let result = match response {
        Err(Dropped) => Err(Dropped),
        Ok(mut response) => {
            let cv = format!("emu{:08x}.{}", app.requests.load(Ordering::Relaxed), in_flight);
            echo_headers(&headers, &mut response, &cv);
            line.status = Some(response.status().as_u16());
            if fault == Some(Fault::Truncate) { Ok(truncated(response).await) } else { Ok(response) }
        }
    };
    line.elapsed_ms = started.elapsed().as_millis();
    if let Some(log) = &app.log {
        log.write(&line);
    }
    app.in_flight.fetch_sub(1, Ordering::SeqCst);
    result
}

/// Seconds of a `Retry-After` value (1 for an HTTP date, which the message cannot spell).
fn seconds_of(after: &str) -> u64 {
    after.parse::<u64>().unwrap_or(1)
}

/// The response with a `Retry-After` header.
fn with_retry_after(mut r: Response, after: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(after) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// The gateway's 429 of the Partner Center API.
fn throttled(after: &str) -> Response {
    let secs = seconds_of(after);
    let body = format!("{{\"statusCode\":429,\"message\":\"Rate limit is exceeded. Try again in {secs} seconds.\"}}");
    with_retry_after(respond::json(StatusCode::TOO_MANY_REQUESTS, body), after)
}

/// Takes a slot of the per-minute budget, or returns how many seconds until one frees up.
fn take_rate_slot(app: &App) -> Option<u64> {
    let mut window = app.rate_window.lock().unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    while window.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60)) {
        window.pop_front();
    }
    if window.len() < app.settings.rate_limit_per_minute as usize {
        window.push_back(now);
        return None;
    }
    let oldest = window.front().copied().unwrap_or(now);
    Some(60u64.saturating_sub(now.duration_since(oldest).as_secs()).max(1))
}

/// The same response with its body cut in half and the connection then broken, while
/// `Content-Length` still announces the whole body.
async fn truncated(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let half = Bytes::copy_from_slice(&bytes[..bytes.len() / 2]);
    parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    // The half is sent and flushed first; only then does the body fail, which drops the connection.
    let broken = futures_util::stream::once(async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Err::<Bytes, _>(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "truncated by the emulator"))
    });
    let chunks = futures_util::stream::iter([Ok::<Bytes, std::io::Error>(half)]).chain(broken);
    Response::from_parts(parts, Body::from_stream(chunks))
}

/// Headers echoed on every response.
fn echo_headers(request: &HeaderMap, response: &mut Response, cv: &str) {
    for name in ["ms-requestid", "ms-correlationid"] {
        if let Some(v) = request.get(name) {
            response.headers_mut().insert(name, v.clone());
        }
    }
    if let Ok(v) = HeaderValue::from_str(cv) {
        response.headers_mut().insert("ms-cv", v);
    }
}
