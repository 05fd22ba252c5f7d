//! The device authorization grant (OAuth 2.0, RFC 8628) on the Microsoft identity platform: how
//! an operator signs in once, in a browser, with multi-factor authentication, to give pcrecon
//! the refresh token of the App+User flow.
//!
//! Microsoft's documentation: `POST {authority}/{tenant}/oauth2/v2.0/devicecode` with
//! `client_id` and `scope` answers `device_code`, `user_code`, `verification_uri`,
//! `expires_in`, `interval` and a `message` for the user; the device then polls
//! `POST {authority}/{tenant}/oauth2/v2.0/token` with
//! `grant_type=urn:ietf:params:oauth:grant-type:device_code`, `client_id` and `device_code`
//! every `interval` seconds. While the user has not finished, the answer is a 400 with
//! `error=authorization_pending` (keep polling); `slow_down` asks for a longer interval;
//! `authorization_declined`, `bad_verification_code` and `expired_token` end the flow. It is a
//! public-client flow: no client secret is sent (the app registration must allow public client
//! flows). In: the endpoints and the client id. Out: the tokens, or why not. It writes nothing.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use super::auth::{AuthError, USER_SCOPE};
use crate::redact::excerpt;

/// What the device-code endpoint hands out.
#[derive(Debug, Deserialize)]
pub struct DeviceCode {
    /// The code the device polls with (not shown to anyone).
    device_code: String,
    /// The code the user enters.
    pub user_code: String,
    /// Where the user enters it.
    pub verification_uri: String,
    /// Seconds the codes live.
    pub expires_in: u64,
    /// Seconds between polls.
    #[serde(default = "default_interval")]
    pub interval: u64,
    /// What to tell the user, in Entra's words.
    #[serde(default)]
    pub message: String,
}

fn default_interval() -> u64 {
    5
}

/// The tokens a finished sign-in gives.
pub struct SignedIn {
    /// The refresh token of the App+User flow.
    pub refresh_token: SecretString,
}

/// The device-code flow of one client against one tenant's endpoints.
pub struct DeviceFlow {
    http: reqwest::Client,
    device_url: Url,
    token_url: Url,
    client_id: String,
}

#[derive(Deserialize, Default)]
struct OAuthAnswer {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// What one poll found.
enum Polled {
    Pending,
    SlowDown,
    Done(SignedIn),
}

impl DeviceFlow {
    /// A flow for `client_id`, with the tenant's device-code and token endpoints.
    pub fn new(http: reqwest::Client, device_url: Url, token_url: Url, client_id: &str) -> DeviceFlow {
        DeviceFlow { http, device_url, token_url, client_id: client_id.to_owned() }
    }

    /// Asks for a device code and a user code for Partner Center's App+User scope.
    pub async fn start(&self) -> Result<DeviceCode, AuthError> {
        let form = [("client_id", self.client_id.as_str()), ("scope", USER_SCOPE)];
        let response = self.http.post(self.device_url.clone()).form(&form).send().await;
        let response = response.map_err(|e| AuthError::Unavailable(super::transport::describe_transport(&e)))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| AuthError::Unavailable(e.to_string()))?;
        if status != 200 {
            return Err(refused("device_code", status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| AuthError::Unavailable(format!("unreadable device code answer: {e}")))
    }

    /// Polls until the user signs in (or declines, or the code expires), waiting the interval
    /// the endpoint asked for between polls.
    pub async fn finish(&self, code: &DeviceCode) -> Result<SignedIn, AuthError> {
        let mut interval = Duration::from_secs(code.interval.max(1));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(code.expires_in);
        loop {
            tokio::time::sleep(interval).await;
            match self.poll(code).await? {
                Polled::Done(signed_in) => return Ok(signed_in),
                // RFC 8628 §3.5: five seconds more from now on.
                Polled::SlowDown => interval += Duration::from_secs(5),
                Polled::Pending if tokio::time::Instant::now() >= deadline => {
                    return Err(AuthError::Refused {
                        grant: "device_code",
                        status: 400,
                        error: "expired_token".into(),
                        description: "the code expired before the sign-in finished".into(),
                    });
                }
                Polled::Pending => {}
            }
        }
    }

    async fn poll(&self, code: &DeviceCode) -> Result<Polled, AuthError> {
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", self.client_id.as_str()),
            ("device_code", code.device_code.as_str()),
        ];
        let response = self.http.post(self.token_url.clone()).form(&form).send().await;
        let response = match response {
            Ok(r) => r,
            // A poll that does not arrive is polled again.
            Err(e) => {
                tracing::warn!(event = "device_code_poll_failed", error = %super::transport::describe_transport(&e));
                return Ok(Polled::Pending);
            }
        };
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap_or_default();
        if status == 429 || status >= 500 {
            return Ok(Polled::Pending);
        }
        let answer: OAuthAnswer = serde_json::from_slice(&body).unwrap_or_default();
        match (status, answer.error.as_str()) {
            (200, _) => {
                let refresh_token = answer.refresh_token.ok_or_else(|| AuthError::Refused {
                    grant: "device_code",
                    status,
                    error: "no_refresh_token".into(),
                    description: "the sign-in gave no refresh token: the scope needs offline_access".into(),
                })?;
                Ok(Polled::Done(SignedIn { refresh_token: SecretString::from(refresh_token) }))
            }
            (_, "authorization_pending") => Ok(Polled::Pending),
            (_, "slow_down") => Ok(Polled::SlowDown),
            _ => Err(refused("device_code", status, &body)),
        }
    }
}

/// A refusal, with Entra's error and description (capped and redacted: the device code is a
/// credential while it lives).
fn refused(grant: &'static str, status: u16, body: &[u8]) -> AuthError {
    let answer: OAuthAnswer = serde_json::from_slice(body).unwrap_or_default();
    let description = match answer.error_description.is_empty() {
        true => String::from_utf8_lossy(body).into_owned(),
        false => answer.error_description,
    };
    AuthError::Refused { grant, status, error: excerpt(&answer.error, &[]), description: excerpt(&description, &[]) }
}
