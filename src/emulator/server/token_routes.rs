//! The Entra ID token endpoints, v2.0 (`/{tenant}/oauth2/v2.0/token`) and v1
//! (`/{tenant}/oauth2/token`), as axum routes.
//!
//! In: a form-encoded token request: `client_credentials` (for Partner Center, or for Microsoft
//! Graph when the scope or resource names it), `authorization_code` (the partner-consent code of
//! the secure application model), the device code of a sign-in ([`super::device_code`]) or
//! `refresh_token`, checked against the pinned client id and
//! secret if any. Out: Entra's token response, with a refresh token for App+User grants, or its
//! `{"error","error_description"}` 400. It does not sign or check tokens itself (`tokens` does),
//! and does not check the tokens presented to the API (the request gate does).

// `grant` returns the ready error response as its `Err`, once per request; boxing it would only
// add an allocation.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::App;
use super::request::form;
use super::respond::json;
use super::tokens::Bearer;

fn token_error(error: &str, description: &str) -> Response {
    let body = serde_json::json!({ "error": error, "error_description": description });
    json(StatusCode::BAD_REQUEST, body.to_string())
}

/// Which refresh token comes with a token.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refresh {
    /// None (client credentials).
    None,
    /// One for the confidential client that redeemed a code or a refresh token with its secret.
    Confidential,
    /// One for a public client (the device-code flow), redeemed without a secret.
    Public,
}

/// Checks a token request and returns whom the token speaks for, and which refresh token comes
/// with it.
fn grant(app: &App, fields: &[(String, String)]) -> Result<(Bearer, Refresh), Response> {
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let client_id = get("client_id").filter(|v| !v.is_empty());
    let Some(client_id) = client_id else {
        return Err(token_error(
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'client_id'.",
        ));
    };
    if app.settings.client_id.as_deref().is_some_and(|pinned| pinned != client_id) {
        return Err(token_error("unauthorized_client", "AADSTS700016: Application was not found in the directory."));
    }
    match get("grant_type") {
        Some("client_credentials") => {
            let secret = get("client_secret").filter(|s| !s.is_empty());
            let Some(secret) = secret else {
                return Err(token_error(
                    "invalid_client",
                    "AADSTS7000216: 'client_assertion' or 'client_secret' is required.",
                ));
            };
            if app.settings.client_secret.as_deref().is_some_and(|pinned| pinned != secret) {
                return Err(token_error("invalid_client", "AADSTS7000215: Invalid client secret provided."));
            }
            // A Microsoft Graph scope gets a token for Graph (the v2 export), which the
            // Partner Center endpoints refuse, as Graph refuses theirs.
            let graph = ["scope", "resource"].iter().any(|k| get(k).is_some_and(|s| s.contains("graph.microsoft.com")));
            Ok((if graph { Bearer::Graph } else { Bearer::App }, Refresh::None))
        }
        // The redemption of the partner-consent code (secure application model): a user token and
        // the refresh token that later runs use. A code that starts with `mfa-` stands for an
        // interactive sign-in that passed multi-factor authentication; any other for one that did
        // not.
        Some("authorization_code") => match get("code").filter(|c| !c.is_empty()) {
            Some(code) => Ok((Bearer::User { mfa: code.starts_with(MFA_CODE_PREFIX) }, Refresh::Confidential)),
            None => {
                Err(token_error("invalid_grant", "AADSTS9002313: Invalid request. Request is malformed or invalid."))
            }
        },
        // A public-client flow: no secret; the sign-in decides whom the token speaks for.
        Some(DEVICE_CODE_GRANT) => match get("device_code").filter(|c| !c.is_empty()) {
            Some(code) => match super::device_code::poll(app, client_id, code) {
                super::device_code::Poll::SignedIn(bearer) => Ok((bearer, Refresh::Public)),
                super::device_code::Poll::Refused(error, description) => Err(token_error(error, description)),
            },
            None => Err(token_error(
                "invalid_request",
                "AADSTS900144: The request body must contain the following parameter: 'device_code'.",
            )),
        },
        // Tokens redeemed from a refresh token keep the MFA claim of the sign-in behind it; one
        // asked for the pricing API's resource is for that audience alone.
        Some("refresh_token") => match get("refresh_token").and_then(|t| app.signer.check_any_refresh(t)) {
            // A token of a public-client sign-in is redeemed as it was issued: without a secret.
            Some((_, true)) if get("client_secret").is_some_and(|s| !s.is_empty()) => Err(token_error(
                "invalid_client",
                "AADSTS700025: Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
            )),
            Some((mfa, public)) => {
                let pricing =
                    ["scope", "resource"].iter().any(|k| get(k).is_some_and(|s| s.contains(PRICING_RESOURCE)));
                let bearer = if pricing { Bearer::Pricing { mfa } } else { Bearer::User { mfa } };
                Ok((bearer, if public { Refresh::Public } else { Refresh::Confidential }))
            }
            None => Err(token_error("invalid_grant", "AADSTS70000: The provided refresh token is invalid or expired.")),
        },
        _ => Err(token_error("unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.")),
    }
}

/// The resource of Partner Center's pricing API (the foreign exchange rates), another audience
/// than the Partner Center API's.
const PRICING_RESOURCE: &str = "api.partner.microsoft.com";

/// The grant type of a device-code poll (RFC 8628 §3.4).
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Authorization codes with this prefix stand for an interactive sign-in that passed MFA.
const MFA_CODE_PREFIX: &str = "mfa-";

fn refresh_token_for(app: &App, bearer: Bearer, refresh: Refresh) -> Option<String> {
    let mfa = matches!(bearer, Bearer::User { mfa: true } | Bearer::Pricing { mfa: true });
    match refresh {
        Refresh::None => None,
        Refresh::Confidential => Some(app.signer.refresh_token(mfa)),
        Refresh::Public => Some(app.signer.public_refresh_token(mfa)),
    }
}

/// `POST /{tenant}/oauth2/v2.0/token`: the v2.0 endpoint (`scope`).
pub(super) async fn token_v2(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let fields = form(&body);
    let (bearer, refresh) = match grant(&app, &fields) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let lifetime = app.settings.token_lifetime_secs;
    let mut body = serde_json::json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": app.signer.access_token(bearer, lifetime),
    });
    if let Some(token) = refresh_token_for(&app, bearer, refresh) {
        body["refresh_token"] = token.into();
        body["scope"] = "https://api.partnercenter.microsoft.com/user_impersonation".into();
    }
    json(StatusCode::OK, body.to_string())
}

/// `POST /{tenant}/oauth2/token`: the v1 endpoint (`resource`, times as strings).
pub(super) async fn token_v1(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let fields = form(&body);
    let (bearer, refresh) = match grant(&app, &fields) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let lifetime = app.settings.token_lifetime_secs;
    let resource = fields
        .iter()
        .find(|(k, _)| k == "resource")
        .map_or("https://api.partnercenter.microsoft.com", |(_, v)| v.as_str());
    let now = app.signer.now_ms() / 1000;
    let mut body = serde_json::json!({
        "token_type": "Bearer",
        "expires_in": lifetime.to_string(),
        "ext_expires_in": lifetime.to_string(),
        "expires_on": (now + lifetime).to_string(),
        "not_before": now.to_string(),
        "resource": resource,
        "access_token": app.signer.access_token(bearer, lifetime),
    });
    if let Some(token) = refresh_token_for(&app, bearer, refresh) {
        body["refresh_token"] = token.into();
        body["scope"] = "user_impersonation".into();
    }
    json(StatusCode::OK, body.to_string())
}
