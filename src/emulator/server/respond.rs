//! Response building: collection envelopes, links, and the error bodies of spec §6.2.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
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
}
