//! Response building: collection envelopes, links, the error bodies of spec §6.2, and the error
//! body of Microsoft Graph (`{"error":{"code","message","innerError"}}`) for the Graph routes,
//! with the origin their links start with.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::emulator::world::json::push_str_literal;

/// A JSON response.
pub fn json(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    r
}

/// The canonical Partner Center error body (`code`, `description`, `data`, `source`).
pub fn canonical(status: StatusCode, code: &str, description: &str) -> Response {
    let mut body = String::from("{\"code\":");
    push_str_literal(&mut body, code);
    body.push_str(",\"description\":");
    push_str_literal(&mut body, description);
    body.push_str(",\"data\":[],\"source\":\"PartnerFD\"}");
    json(status, body)
}

/// Partner Center's answer to an App+User call whose token has no MFA claim (spec §17.10): 401
/// with error code 900421, not retryable, and a claims challenge in `WWW-Authenticate`.
pub fn mfa_required() -> Response {
    let body = serde_json::json!({
        "code": 900421,
        "description": "Multi-factor authentication is required for App+User calls: the access token has no MFA claim. Sign in interactively with MFA to obtain a new token.",
        "errorName": "MfaRequired",
        "isRetryable": false,
        "data": [],
        "source": "PartnerFD",
    });
    let mut r = json(StatusCode::UNAUTHORIZED, body.to_string());
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(
            "Bearer error=\"insufficient_claims\", error_description=\"multi-factor authentication required\"",
        ),
    );
    r
}

/// A Microsoft Graph error: `code`, `message`, and `innerError` with the time, a request id and
/// the caller's `client-request-id` (or the request id when it sent none).
pub fn graph_error(status: StatusCode, code: &str, message: &str, request: &HeaderMap) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let client_request_id = request
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| request_id.clone(), str::to_owned);
    let body = serde_json::json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        },
    });
    let mut r = json(status, body.to_string());
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        r.headers_mut().insert("request-id", v);
    }
    r
}

/// Graph's 410 for an export operation that has expired: the client is to request a new export.
pub(super) fn operation_expired(request: &HeaderMap) -> Response {
    graph_error(StatusCode::GONE, "Gone", "The operation has expired. Request a new export.", request)
}

/// `http://HOST` of the request, from its `Host` header, which the Graph routes' links start with.
pub(super) fn origin(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// The framework-level 400 for invalid query values.
pub fn invalid_request() -> Response {
    json(StatusCode::BAD_REQUEST, "{\"message\":\"The request is invalid.\"}")
}

/// 404 with the canonical body.
pub fn not_found(what: &str) -> Response {
    canonical(StatusCode::NOT_FOUND, "1000", &format!("{what} was not found"))
}

/// 401 for a missing, invalid or expired access token.
pub fn unauthorized(description: &str, tenant: &str) -> Response {
    let mut r = canonical(StatusCode::UNAUTHORIZED, "400", description);
    if let Ok(v) = HeaderValue::from_str(&format!("OAuth realm=urn:cpsvc:cpid:{tenant}")) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

/// The next page of a collection: where it is, and the continuation token to send (seek paging).
pub struct Next {
    /// Relative URI of the next page.
    pub uri: String,
    /// `MS-ContinuationToken` to send with it.
    pub token: Option<String>,
}

/// Builds a collection envelope around already-serialised items (`a,b,c`).
pub fn collection(items: &[u8], count: usize, self_uri: Option<&str>, next: Option<&Next>) -> Vec<u8> {
    let mut head = format!("{{\"totalCount\":{count},\"items\":[");
    let mut tail = String::from("]");
    if let Some(token) = next.and_then(|n| n.token.as_deref()) {
        tail.push_str(",\"continuationToken\":");
        push_str_literal(&mut tail, token);
    }
    if let Some(uri) = self_uri {
        tail.push_str(",\"links\":{\"self\":");
        link(&mut tail, uri, None);
        if let Some(n) = next {
            tail.push_str(",\"next\":");
            link(&mut tail, &n.uri, n.token.as_deref());
        }
        tail.push('}');
    }
    tail.push_str(",\"attributes\":{\"objectType\":\"Collection\"}}");
    let mut out = std::mem::take(&mut head).into_bytes();
    out.reserve(items.len() + tail.len());
    out.extend_from_slice(items);
    out.extend_from_slice(tail.as_bytes());
    out
}

fn link(out: &mut String, uri: &str, token: Option<&str>) {
    out.push_str("{\"uri\":");
    push_str_literal(out, uri);
    out.push_str(",\"method\":\"GET\",\"headers\":[");
    if let Some(t) = token {
        out.push_str("{\"key\":\"MS-ContinuationToken\",\"value\":");
        push_str_literal(out, t);
        out.push('}');
    }
    out.push_str("]}");
}

/// Joins serialised items with commas.
pub fn join<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_are_valid_json_with_the_token_in_both_places() {
        let next = Next {
            uri: "/invoices/unbilled/lineitems?size=2&seekOperation=Next".into(),
            token: Some("a+b/c==".into()),
        };
        let body = collection(b"{\"a\":1},{\"a\":2}", 2, Some("/invoices/unbilled/lineitems?size=2"), Some(&next));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["totalCount"], 2);
        assert_eq!(v["items"].as_array().unwrap().len(), 2);
        assert_eq!(v["continuationToken"], "a+b/c==");
        assert_eq!(v["links"]["next"]["headers"][0]["key"], "MS-ContinuationToken");
        assert_eq!(v["links"]["next"]["headers"][0]["value"], "a+b/c==");
        assert_eq!(v["attributes"]["objectType"], "Collection");
        let bare: serde_json::Value = serde_json::from_slice(&collection(b"", 0, None, None)).unwrap();
        assert!(bare.get("links").is_none());
    }

    #[tokio::test]
    async fn graph_errors_carry_code_message_and_the_callers_request_id() {
        use http_body_util::BodyExt;
        let mut request = HeaderMap::new();
        request.insert("client-request-id", HeaderValue::from_static("c0ffee00-0000-4000-8000-000000000001"));
        let r = graph_error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "slow down", &request);
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        let body = r.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "TooManyRequests");
        assert_eq!(v["error"]["message"], "slow down");
        assert_eq!(v["error"]["innerError"]["client-request-id"], "c0ffee00-0000-4000-8000-000000000001");
        assert!(v["error"]["innerError"]["request-id"].as_str().is_some_and(|id| id.len() == 36));
        assert!(v["error"]["innerError"]["date"].as_str().is_some_and(|d| d.len() == 19));
    }
}
