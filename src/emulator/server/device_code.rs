//! Entra ID's device authorization grant (OAuth 2.0 RFC 8628, as the Microsoft identity platform
//! serves it): `POST /{tenant}/oauth2/v2.0/devicecode` hands out a device code and a user code,
//! the user enters the code at the verification page and signs in, and the device polls the
//! token endpoint with `grant_type=urn:ietf:params:oauth:grant-type:device_code` until then.
//!
//! The verification page, `/devicelogin`, stands for the browser sign-in: a form with the code,
//! a box for "signed in with multi-factor authentication" and a decline button; a script posts
//! `user_code=…&mfa=true` to it. Until the user acts, a poll is answered `authorization_pending`;
//! after a decline, `authorization_declined`; after `expires_in`, `expired_token`; a code this
//! server never issued, `bad_verification_code` — each a 400 with Entra's `error` and
//! `error_description`, as Microsoft documents them. A code is redeemed once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::App;
use super::respond::json;
use super::tokens::Bearer;

/// How long a device code lives, as Entra ID issues them (15 minutes).
const EXPIRES_IN_SECS: u64 = 900;

/// Codes handed out and not yet redeemed, by device code.
#[derive(Default)]
pub(super) struct DeviceCodes {
    pending: Mutex<HashMap<String, Pending>>,
    issued: std::sync::atomic::AtomicU64,
}

struct Pending {
    user_code: String,
    client_id: String,
    expires_at_ms: u64,
    decision: Option<Decision>,
}

#[derive(Clone, Copy)]
enum Decision {
    SignedIn { mfa: bool },
    Declined,
}

/// What a poll with a device code gets.
pub(super) enum Poll {
    /// The user signed in: the token speaks for them.
    SignedIn(Bearer),
    /// The OAuth error to answer with.
    Refused(&'static str, &'static str),
}

/// A form's fields by name (the first of a name, as the token endpoint reads them).
fn form(body: &Bytes) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    for (name, value) in super::request::form(body) {
        fields.entry(name).or_insert(value);
    }
    fields
}

fn oauth_error(error: &str, description: &str) -> Response {
    json(StatusCode::BAD_REQUEST, serde_json::json!({ "error": error, "error_description": description }).to_string())
}

/// The code a person types: nine letters and digits without the ones that look alike.
fn user_code(digest: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    digest.iter().take(9).map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect()
}

/// `POST /{tenant}/oauth2/v2.0/devicecode`: a device code for a client and a scope.
pub(super) async fn device_code(
    State(app): State<Arc<App>>,
    Path(_tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = form(&body);
    let Some(client_id) = fields.get("client_id").filter(|c| !c.is_empty()) else {
        return oauth_error(
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'client_id'.",
        );
    };
    if fields.get("scope").is_none_or(|s| s.trim().is_empty()) {
        return oauth_error(
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'scope'.",
        );
    }
    if app.settings.client_id.as_deref().is_some_and(|pinned| pinned != client_id) {
        return oauth_error("unauthorized_client", "AADSTS700016: Application was not found in the directory.");
    }
    let n = app.devices.issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let digest = Sha256::digest(format!("{}.{n}.{}", app.signer.now_ms(), app.signer.refresh_token(false)));
    let device_code = format!("DAQABAAEAAA{}", crate::emulator::world::dice::hex(&digest[..24]));
    let code = user_code(&digest[23..]);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let uri = format!("http://{host}/devicelogin");
    let pending = Pending {
        user_code: code.clone(),
        client_id: client_id.clone(),
        expires_at_ms: app.signer.now_ms() + EXPIRES_IN_SECS * 1000,
        decision: None,
    };
    app.devices.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(device_code.clone(), pending);
    let body = serde_json::json!({
        "user_code": code,
        "device_code": device_code,
        "verification_uri": uri,
        "expires_in": EXPIRES_IN_SECS,
        "interval": app.settings.device_poll_secs,
        "message": format!("To sign in, use a web browser to open the page {uri} and enter the code {code} to authenticate."),
    });
    json(StatusCode::OK, body.to_string())
}

/// A poll of the token endpoint with a device code.
pub(super) fn poll(app: &App, client_id: &str, device_code: &str) -> Poll {
    let mut pending = app.devices.pending.lock().unwrap_or_else(|p| p.into_inner());
    let Some(entry) = pending.get(device_code).filter(|p| p.client_id == client_id) else {
        return Poll::Refused("bad_verification_code", "AADSTS70000: The device code was not recognized.");
    };
    if app.signer.now_ms() >= entry.expires_at_ms {
        pending.remove(device_code);
        return Poll::Refused("expired_token", "AADSTS70019: Verification code expired.");
    }
    match entry.decision {
        None => Poll::Refused(
            "authorization_pending",
            "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        ),
        Some(Decision::Declined) => {
            pending.remove(device_code);
            Poll::Refused("authorization_declined", "AADSTS70000: The user declined the sign-in.")
        }
        Some(Decision::SignedIn { mfa }) => {
            pending.remove(device_code);
            Poll::SignedIn(Bearer::User { mfa })
        }
    }
}

const PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign in (emulated)</title></head><body>\
<h1>Enter code</h1><p>The Partner Center emulator stands in for the Microsoft sign-in here.</p>\
<form method=\"post\" action=\"/devicelogin\"><label>Code <input name=\"user_code\" autofocus></label>\
<label><input type=\"checkbox\" name=\"mfa\" value=\"true\" checked> signed in with multi-factor authentication</label>\
<button type=\"submit\">Sign in</button> <button type=\"submit\" name=\"decline\" value=\"true\">Decline</button></form></body></html>";

fn html(status: StatusCode, text: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], text).into_response()
}

/// `GET /devicelogin`: the page where the code is entered.
pub(super) async fn page() -> Response {
    html(StatusCode::OK, PAGE.to_owned())
}

/// `POST /devicelogin`: the user enters the code and signs in (`mfa=true`: with MFA), or
/// declines (`decline=true`).
pub(super) async fn sign_in(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let fields = form(&body);
    let typed: String = fields
        .get("user_code")
        .map(|c| c.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_uppercase())
        .unwrap_or_default();
    let yes = |name: &str| fields.get(name).is_some_and(|v| matches!(v.as_str(), "true" | "on" | "1"));
    let now = app.signer.now_ms();
    let mut pending = app.devices.pending.lock().unwrap_or_else(|p| p.into_inner());
    let found = pending.values_mut().find(|p| p.user_code == typed && p.decision.is_none() && now < p.expires_at_ms);
    let Some(entry) = found else {
        return html(StatusCode::BAD_REQUEST, "<p>That code is not valid or has expired.</p>".into());
    };
    let decision = if yes("decline") { Decision::Declined } else { Decision::SignedIn { mfa: yes("mfa") } };
    entry.decision = Some(decision);
    let said = match decision {
        Decision::Declined => "You declined the sign-in. You can close this window.",
        Decision::SignedIn { .. } => "You have signed in to pcrecon on your device. You may now close this window.",
    };
    html(StatusCode::OK, format!("<p>{said}</p>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_nine_unambiguous_characters() {
        let code = user_code(&Sha256::digest(b"x"));
        assert_eq!(code.len(), 9);
        assert!(code.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
        assert!(!code.contains(['0', 'O', '1', 'I']), "{code}");
    }
}
