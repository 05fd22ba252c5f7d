//! Errors that say where: the [`Context`] of a request (dataset, scope, page), the [`ApiError`] a
//! request fails with for good, and what a Partner Center or Graph error body says.
//!
//! In: the facts of a failed exchange (status, path, `MS-RequestId`, error body). Out: errors and
//! one-line summaries fit for an operator, redacted ([`crate::redact`]) and capped when built from
//! a body, and redacted again when displayed, so that whoever built one, its `Display`, the logs
//! and the crate's report never show a token a server echoed. It sends nothing and decides nothing
//! about retrying (that is the gate's, in `http`).

use std::fmt;

use crate::redact::{excerpt, redact};
use crate::tabular::Dataset;

use super::auth::AuthError;

/// Where a request belongs, for errors and logs.
#[derive(Debug, Clone)]
pub struct Context {
    /// Dataset being extracted.
    pub dataset: Dataset,
    /// Invoice id, `CCY/period`, customer id, or `all`.
    pub scope: String,
    /// Page number within its sequence, from 1.
    pub page: u32,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dataset {}, {} {}", self.dataset, scope_kind(&self.scope), self.scope)?;
        // Page 0: a request that is not a page (the v2 export's operation and manifest).
        if self.page > 0 { write!(f, ", page {}", self.page) } else { Ok(()) }
    }
}

fn scope_kind(scope: &str) -> &'static str {
    if scope.len() == 6 && scope.bytes().all(|b| b.is_ascii_digit()) {
        return "month";
    }
    match scope.as_bytes().first() {
        Some(b'G' | b'D' | b'T') if !scope.contains('/') => "invoice",
        _ if scope.contains('/') => "unbilled",
        _ if scope == "all" => "scope",
        _ => "customer",
    }
}

/// A request failed for good.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The API answered with a status that retrying cannot fix.
    #[error("{context}: HTTP {status} for {} (MS-RequestId {request_id}): {}", redact(.path), redact(.detail))]
    Status {
        /// Where.
        context: Context,
        /// HTTP status.
        status: u16,
        /// Path and query (no secrets travel in them; redacted when shown all the same).
        path: String,
        /// The request id sent.
        request_id: String,
        /// What the error body said, redacted and capped.
        detail: String,
    },
    /// Transient failures did not stop.
    #[error("{context}: gave up after {attempts} attempts for {} (MS-RequestId {request_id}): {}", redact(.path), redact(.last))]
    Exhausted {
        /// Where.
        context: Context,
        /// Attempts made.
        attempts: u32,
        /// Path and query.
        path: String,
        /// The request id sent.
        request_id: String,
        /// The last failure.
        last: String,
    },
    /// Partner Center refused an App+User call because the token has no MFA claim (401, error
    /// code 900421): the refresh token comes from a sign-in without multi-factor authentication.
    #[error(
        "{context}: Partner Center requires multi-factor authentication for App+User calls (error code 900421, HTTP 401 for {}, MS-RequestId {request_id}): the refresh token was issued by a sign-in without MFA; obtain a new refresh token through an interactive sign-in with MFA (`pcrecon auth login` writes it to api.refresh_token_file; or the partner consent of the secure application model, into api.refresh_token_file or PCRECON_REFRESH_TOKEN)",
        redact(.path)
    )]
    MfaRequired {
        /// Where.
        context: Context,
        /// Path and query.
        path: String,
        /// The request id sent.
        request_id: String,
    },
    /// An endpoint that needs an App+User token refused the app-only token it was sent, because
    /// no refresh token is configured.
    #[error(
        "{context}: HTTP {status} for {} (MS-RequestId {request_id}): {}: this endpoint needs an App+User token and no refresh token is configured: run `pcrecon auth login` to write the file api.refresh_token_file names (or set PCRECON_REFRESH_TOKEN)",
        redact(.path),
        redact(.detail)
    )]
    AppUserNeeded {
        /// Where.
        context: Context,
        /// HTTP status (401 or 403).
        status: u16,
        /// Path and query.
        path: String,
        /// The request id sent.
        request_id: String,
        /// What the error body said, redacted and capped.
        detail: String,
    },
    /// No token.
    #[error("{context}: authentication failed: {source}")]
    Auth {
        /// Where.
        context: Context,
        /// Why.
        source: AuthError,
    },
}

impl ApiError {
    /// The HTTP status, when the API answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } | ApiError::AppUserNeeded { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the failure is about credentials (401 after a fresh token, 403, token refused,
    /// MFA required).
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            ApiError::Auth { .. }
                | ApiError::MfaRequired { .. }
                | ApiError::AppUserNeeded { .. }
                | ApiError::Status { status: 401 | 403, .. }
        )
    }
}

/// The error code Partner Center answers an App+User call whose token lacks an MFA claim.
pub(super) const MFA_REQUIRED: &str = "900421";

/// The `code` of a Partner Center error body (a number or a string), if it has one.
pub(super) fn error_code(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let code = v.get("code")?;
    Some(code.as_str().map_or_else(|| code.to_string(), str::to_owned))
}

/// What the error body says, in one line: Partner Center's canonical body, the framework's
/// `message`, or Graph's `{"error":{"code","message"}}`; else the body itself. Always redacted
/// (a server may echo the `Authorization` header, a continuation token, a signed URL) and capped
/// at [`crate::redact::EXCERPT_CHARS`] characters.
pub(super) fn error_detail(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    if let Some(e) = v.get("error").filter(|e| e.is_object()) {
        let text = |k: &str| e.get(k).and_then(|x| x.as_str()).unwrap_or("");
        return excerpt(&format!("{}: {}", text("code"), text("message")), &[]);
    }
    let pick = |k: &str| v.get(k).map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned));
    let said = match (pick("code"), pick("description"), pick("message"), pick("errorCode")) {
        (Some(code), Some(description), _, _) => format!("{code}: {description}"),
        (_, _, Some(message), _) => message,
        (_, _, _, Some(code)) => code,
        _ => return excerpt(&String::from_utf8_lossy(body), &[]),
    };
    excerpt(&said, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_of_every_documented_shape_are_summarised() {
        assert_eq!(error_detail(br#"{"code":"1000","description":"Not found","data":[]}"#), "1000: Not found");
        assert_eq!(error_detail(br#"{"code":1000,"description":"Not found"}"#), "1000: Not found");
        assert_eq!(error_detail(br#"{"message":"The request is invalid."}"#), "The request is invalid.");
        assert_eq!(error_detail(b"plain text"), "plain text");
        let graph = br#"{"error":{"code":"TooManyRequests","message":"Too many requests.","innerError":{"date":"2026-12-02T10:00:00","request-id":"r","client-request-id":"c"}}}"#;
        assert_eq!(error_detail(graph), "TooManyRequests: Too many requests.");
    }

    #[test]
    fn the_mfa_refusal_is_recognised_by_its_code_and_says_what_to_do() {
        let body = br#"{"code":900421,"description":"MFA required","errorName":"MfaRequired","isRetryable":false}"#;
        assert_eq!(error_code(body).as_deref(), Some(MFA_REQUIRED));
        assert_eq!(error_code(br#"{"code":"900421","description":"MFA required"}"#).as_deref(), Some(MFA_REQUIRED));
        assert_eq!(error_code(br#"{"code":"400","description":"expired"}"#).as_deref(), Some("400"));
        let e = ApiError::MfaRequired {
            context: Context { dataset: Dataset::Invoices, scope: "G000123".into(), page: 1 },
            path: "/v1/invoices/G000123".into(),
            request_id: "r-1".into(),
        };
        assert!(e.is_auth());
        let text = e.to_string();
        for part in [
            "multi-factor authentication",
            "900421",
            "interactive sign-in",
            "refresh_token_file",
            "PCRECON_REFRESH_TOKEN",
        ] {
            assert!(text.contains(part), "{part:?} missing from {text}");
        }
    }

    const BEARER: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2FwaSJ9.c2lnbmF0dXJl";

    fn status(detail: String, path: &str) -> ApiError {
        ApiError::Status {
            context: Context { dataset: Dataset::BilledRecon, scope: "G000123".into(), page: 2 },
            status: 400,
            path: path.into(),
            request_id: "r-1".into(),
            detail,
        }
    }

    #[test]
    fn an_error_body_echoing_the_authorization_header_and_continuation_tokens_shows_neither() {
        let data: Vec<serde_json::Value> = (1..=70)
            .map(|n| serde_json::json!({ "key": "MS-ContinuationToken", "value": format!("tok-{n}-SECRET") }))
            .collect();
        let body = serde_json::json!({
            "code": "400",
            "description": format!("The request is invalid. Authorization: Bearer {BEARER}; continuationToken=tok-0-SECRET"),
            "data": data,
            "headers": { "Authorization": format!("Bearer {BEARER}") },
        });
        let detail = error_detail(body.to_string().as_bytes());
        assert_eq!(
            detail,
            "400: The request is invalid. Authorization: Bearer [redacted]; continuationToken=[redacted]"
        );
        // A body of no known shape is shown itself: redacted, on one line, capped.
        let unknown =
            error_detail(body.to_string().replace("\"code\"", "\"c\"").replace("description", "d").as_bytes());
        for shown in [&detail, &unknown, &status(unknown.clone(), "/v1/x").to_string()] {
            assert!(!shown.contains("SECRET") && !shown.contains(BEARER) && !shown.contains("c2lnbmF0dXJl"), "{shown}");
        }
        assert!(unknown.chars().count() <= crate::redact::EXCERPT_CHARS + 30, "{unknown}");
        assert!(
            unknown.starts_with(r#"{"c":"400","data":[{"key":"MS-ContinuationToken","value":"[redacted]"}"#),
            "{unknown}"
        );
    }

    #[test]
    fn errors_built_elsewhere_are_redacted_when_shown() {
        let text =
            status(format!("Authorization: Bearer {BEARER}"), "/v1/x?continuationToken=abc%2Bdef&size=5").to_string();
        assert!(!text.contains(BEARER) && !text.contains("abc%2Bdef"), "{text}");
        assert!(text.contains("HTTP 400 for /v1/x?continuationToken=[redacted]&size=5"), "{text}");
        let exhausted = ApiError::Exhausted {
            context: Context { dataset: Dataset::Invoices, scope: "all".into(), page: 1 },
            attempts: 6,
            path: "/v1/invoices".into(),
            request_id: "r-2".into(),
            last: "HTTP 503: refresh_token=0.AAA-secret".into(),
        };
        assert!(exhausted.to_string().ends_with("HTTP 503: refresh_token=[redacted]"), "{exhausted}");
    }

    #[test]
    fn contexts_name_the_scope_kind() {
        let c = Context { dataset: Dataset::BilledRecon, scope: "G000123".into(), page: 3 };
        assert_eq!(c.to_string(), "dataset billed_recon_line_items, invoice G000123, page 3");
        let u = Context { dataset: Dataset::UnbilledRecon, scope: "EUR/current".into(), page: 1 };
        assert_eq!(u.to_string(), "dataset unbilled_recon_line_items, unbilled EUR/current, page 1");
    }
}
