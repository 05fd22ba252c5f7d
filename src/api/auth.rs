//! Entra ID access tokens: the client-credentials grant (app-only) and the refresh-token grant
//! of the secure application model (App+User, which some endpoints need, spec §1.2).
//!
//! Tokens are cached and refreshed ahead of expiry (30 s, or a third of a short lifetime), and
//! dropped when the API answers 401. The provider never sends a request on its own: the HTTP
//! layer calls it while holding the request's in-flight permit, so token calls count against the
//! same bound as API calls. Secrets and tokens live in [`SecretString`] and are never formatted;
//! what the token endpoint answers is redacted ([`crate::redact`]) with the secrets the request
//! posted before it becomes an [`AuthError`], since an endpoint may quote the form back. A
//! refresh token the endpoint rotates replaces the old one for the rest of the run and is handed
//! to the [`RotatedToken`] keeper, if any, so that the next run starts from it.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;
use url::Url;

use crate::redact::{excerpt, redact_known};

/// Which kind of token a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// App-only (client credentials).
    App,
    /// App+User (refresh token), where configured; app-only otherwise.
    User,
    /// App-only, for Microsoft Graph (the v2 export, spec §12): its own audience and scope.
    Graph,
    /// App+User for Partner Center's pricing API (`api.partner.microsoft.com`: the foreign
    /// exchange rates), its own audience; none without a refresh token.
    Pricing,
    /// None: the URL carries a shared-access signature (blob storage).
    Sas,
}

/// The scope of Microsoft Graph tokens (application permission `PartnerBilling.Read.All`).
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Entra ID refused the credentials (not retried).
    #[error("the token endpoint refused the {grant} grant with HTTP {status}: {error}: {description}")]
    Refused {
        /// Grant type.
        grant: &'static str,
        /// HTTP status.
        status: u16,
        /// OAuth error code (redacted).
        error: String,
        /// Its description (Entra's AADSTS text; redacted and capped, for an endpoint that
        /// quotes the posted form), or the body itself when it is not an OAuth error.
        description: String,
    },
    /// An endpoint takes App+User tokens only, and no refresh token is configured.
    #[error(
        "{0} takes App+User tokens only and no refresh token is configured: run `pcrecon auth login` to write api.refresh_token_file"
    )]
    AppUserOnly(&'static str),
    /// A transient failure (transport error, 5xx, 429); the caller may retry. Redacted.
    #[error("the token endpoint is unavailable: {0}")]
    Unavailable(String),
}

impl AuthError {
    /// Whether retrying may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, AuthError::Unavailable(_))
    }
}

/// Keeps a refresh token the token endpoint rotated (writes it back where it came from).
#[derive(Clone)]
pub struct RotatedToken(pub std::sync::Arc<KeepToken>);

/// What keeps a rotated refresh token: `Err` says why it could not.
pub type KeepToken = dyn Fn(&SecretString) -> Result<(), String> + Send + Sync;

impl std::fmt::Debug for RotatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RotatedToken")
    }
}

/// What the provider needs to ask for tokens.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Token endpoint.
    pub token_url: Url,
    /// Application (client) id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: SecretString,
    /// Scope of the client-credentials grant.
    pub scope: String,
    /// Refresh token of the App+User flow.
    pub refresh_token: Option<SecretString>,
    /// Where a rotated refresh token goes, if anywhere.
    pub keep_rotated: Option<RotatedToken>,
}

/// The scope of App+User tokens for Partner Center, with a refresh token (`offline_access`).
pub const USER_SCOPE: &str = "https://api.partnercenter.microsoft.com/user_impersonation offline_access";

struct Cached {
    token: SecretString,
    refresh_at: Instant,
}

/// Hands out valid access tokens.
pub struct TokenProvider {
    credentials: Credentials,
    app: Mutex<Option<Cached>>,
    graph: Mutex<Option<Cached>>,
    /// The App+User tokens (Partner Center's, the pricing API's) and the refresh token they
    /// are redeemed from.
    user: Mutex<UserTokens>,
    /// Whether the refresh token was issued to a public client (`pcrecon auth login`'s device
    /// code sign-in): Entra then refuses a client secret with it (AADSTS700025).
    public_refresh: std::sync::atomic::AtomicBool,
}

/// The App+User side of the provider.
struct UserTokens {
    partner_center: Option<Cached>,
    pricing: Option<Cached>,
    refresh: Option<SecretString>,
}

/// The scope of App+User tokens for the pricing API, with a refresh token.
pub const PRICING_SCOPE: &str = "https://api.partner.microsoft.com/.default offline_access";

/// Entra's refusal of a client secret sent with a public client's refresh token.
const PUBLIC_CLIENT_REFUSAL: &str = "AADSTS700025";

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Deserialize, Default)]
struct TokenErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// The values of a token form's secret fields (`client_secret`, `refresh_token`, ...).
fn posted_secrets<'a>(form: &[(&str, &'a str)]) -> Vec<&'a str> {
    form.iter().filter(|(name, _)| crate::redact::is_secret_name(name)).map(|(_, value)| *value).collect()
}

/// The refusal a non-200 token answer says, redacted with the secrets the request posted.
fn refused(grant: &'static str, status: u16, body: &[u8], posted: &[&str]) -> AuthError {
    let e: TokenErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let description = if e.error.is_empty() && e.error_description.is_empty() {
        String::from_utf8_lossy(body).into_owned()
    } else {
        e.error_description
    };
    AuthError::Refused { grant, status, error: excerpt(&e.error, posted), description: excerpt(&description, posted) }
}

/// Seconds from `expires_in`, which v2 sends as a number and v1 as a string.
fn lifetime(value: Option<&serde_json::Value>) -> Duration {
    let secs = match value {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    Duration::from_secs(secs.unwrap_or(3600))
}

/// When to refresh a token that lives `lifetime`: 30 s early, or a third of a short lifetime, so
/// that a token handed out is still valid when its request arrives.
fn refresh_margin(lifetime: Duration) -> Duration {
    Duration::from_secs(30).min(lifetime / 3)
}

impl TokenProvider {
    /// A provider for some credentials.
    pub fn new(credentials: Credentials) -> TokenProvider {
        let refresh = credentials.refresh_token.clone();
        TokenProvider {
            credentials,
            app: Mutex::new(None),
            graph: Mutex::new(None),
            user: Mutex::new(UserTokens { partner_center: None, pricing: None, refresh }),
            public_refresh: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether App+User calls get an App+User token (a refresh token is configured), rather than
    /// an app-only one.
    pub fn acts_for_user(&self) -> bool {
        self.credentials.refresh_token.is_some()
    }

    /// A valid token of a kind, fetched or refreshed with `http` if needed.
    pub async fn token(&self, http: &reqwest::Client, kind: TokenKind) -> Result<SecretString, AuthError> {
        if matches!(kind, TokenKind::User | TokenKind::Pricing) {
            let mut guard = self.user.lock().await;
            let user = &mut *guard;
            if let Some(refresh) = user.refresh.clone() {
                let (cache, scope) = match kind {
                    TokenKind::Pricing => (&mut user.pricing, PRICING_SCOPE),
                    _ => (&mut user.partner_center, USER_SCOPE),
                };
                if let Some(c) = cache.as_ref().filter(|c| Instant::now() < c.refresh_at) {
                    return Ok(c.token.clone());
                }
                use std::sync::atomic::Ordering::Relaxed;
                let redeem = |public: bool| {
                    let mut form = vec![
                        ("grant_type", "refresh_token"),
                        ("client_id", self.credentials.client_id.as_str()),
                        ("refresh_token", refresh.expose_secret()),
                        ("scope", scope),
                    ];
                    if !public {
                        form.push(("client_secret", self.credentials.client_secret.expose_secret()));
                    }
                    form
                };
                let public = self.public_refresh.load(Relaxed);
                let (cached, rotated) = match self.request(http, "refresh_token", &redeem(public)).await {
                    // A token of a public-client sign-in: redeemed again without the secret.
                    Err(AuthError::Refused { description, .. })
                        if !public && description.contains(PUBLIC_CLIENT_REFUSAL) =>
                    {
                        self.public_refresh.store(true, Relaxed);
                        tracing::debug!(event = "refresh_token_of_public_client");
                        self.request(http, "refresh_token", &redeem(true)).await?
                    }
                    other => other?,
                };
                let token = cached.token.clone();
                *cache = Some(cached);
                if let Some(r) = rotated.filter(|r| r.expose_secret() != refresh.expose_secret()) {
                    if let Some(keep) = &self.credentials.keep_rotated {
                        match (keep.0)(&r) {
                            Ok(()) => tracing::info!(event = "refresh_token_rotated", "kept the rotated refresh token"),
                            // The old token stays valid until it expires: the next run may use it.
                            Err(error) => tracing::warn!(event = "refresh_token_not_kept", %error),
                        }
                    }
                    user.refresh = Some(r);
                }
                return Ok(token);
            }
            // The pricing API knows no app-only token: asking Entra for one would only earn a 401.
            if kind == TokenKind::Pricing {
                return Err(AuthError::AppUserOnly("the pricing API (exchange rates)"));
            }
        }
        let (mut app, scope) = match kind {
            TokenKind::Graph => (self.graph.lock().await, GRAPH_SCOPE),
            _ => (self.app.lock().await, self.credentials.scope.as_str()),
        };
        if let Some(c) = app.as_ref().filter(|c| Instant::now() < c.refresh_at) {
            return Ok(c.token.clone());
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.credentials.client_id.as_str()),
            ("client_secret", self.credentials.client_secret.expose_secret()),
            ("scope", scope),
        ];
        let (cached, _) = self.request(http, "client_credentials", &form).await?;
        let token = cached.token.clone();
        *app = Some(cached);
        Ok(token)
    }

    /// Forgets a token the API refused, so the next call fetches a new one. A token that was
    /// already replaced by another task is left alone.
    pub async fn invalidate(&self, refused: &SecretString) {
        let same = |c: &Option<Cached>| c.as_ref().is_some_and(|c| c.token.expose_secret() == refused.expose_secret());
        for cache in [&self.app, &self.graph] {
            let mut cached = cache.lock().await;
            if same(&cached) {
                *cached = None;
            }
        }
        let mut guard = self.user.lock().await;
        let user = &mut *guard;
        for cache in [&mut user.partner_center, &mut user.pricing] {
            if same(cache) {
                *cache = None;
            }
        }
    }

    async fn request(
        &self,
        http: &reqwest::Client,
        grant: &'static str,
        form: &[(&str, &str)],
    ) -> Result<(Cached, Option<SecretString>), AuthError> {
        // What this request posted that an answer must not show, however it quotes it.
        let posted = posted_secrets(form);
        let unavailable = |text: String| AuthError::Unavailable(redact_known(&text, &posted).into_owned());
        let response = http
            .post(self.credentials.token_url.clone())
            .form(form)
            .send()
            .await
            .map_err(|e| unavailable(crate::api::transport::describe_transport(&e)))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| unavailable(crate::api::transport::describe_transport(&e)))?;
        if status == 429 || status >= 500 {
            return Err(AuthError::Unavailable(format!("HTTP {status}")));
        }
        if status != 200 {
            return Err(refused(grant, status, &body, &posted));
        }
        let t: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| unavailable(format!("unreadable token response: {e}")))?;
        let life = lifetime(t.expires_in.as_ref());
        let cached = Cached {
            token: SecretString::from(t.access_token),
            refresh_at: Instant::now() + life - refresh_margin(life),
        };
        tracing::debug!(event = "token_issued", grant, lifetime_secs = life.as_secs());
        Ok((cached, t.refresh_token.map(SecretString::from)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_come_as_numbers_or_strings() {
        assert_eq!(lifetime(Some(&serde_json::json!(3599))), Duration::from_secs(3599));
        assert_eq!(lifetime(Some(&serde_json::json!("3600"))), Duration::from_secs(3600));
        assert_eq!(lifetime(None), Duration::from_secs(3600));
    }

    #[test]
    fn a_token_endpoint_quoting_the_posted_form_shows_no_secret() {
        let secret = "Xy8Q~a.b_c-d e";
        let refresh = "0.AAAA-refresh+token/with=chars";
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", "app"),
            ("client_secret", secret),
            ("refresh_token", refresh),
            ("scope", "https://api.partnercenter.microsoft.com/user_impersonation offline_access"),
        ];
        let posted = posted_secrets(&form);
        assert_eq!(posted, [secret, refresh]);
        let encoded: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let quoted = serde_json::json!({
            "error": "invalid_request",
            "error_description": format!("AADSTS900144: the request body could not be read: {encoded}; the secret was {secret}, the token {refresh}"),
        });
        let not_oauth = format!("<html>bad gateway: {encoded}</html>");
        for body in [quoted.to_string(), not_oauth] {
            let e = refused("refresh_token", 400, body.as_bytes(), &posted);
            let text = e.to_string();
            for hidden in [secret, refresh, "Xy8Q", "a.b_c", "0.AAAA", "with=chars", "Xy8Q%7Ea.b_c-d+e"] {
                assert!(!text.contains(hidden), "{hidden} in {text}");
            }
            assert!(text.contains("client_secret=[redacted]"), "{text}");
            assert!(text.contains("the refresh_token grant with HTTP 400"), "{text}");
        }
    }

    #[test]
    fn short_tokens_are_refreshed_a_third_early_long_ones_thirty_seconds() {
        assert_eq!(refresh_margin(Duration::from_secs(3600)), Duration::from_secs(30));
        assert_eq!(refresh_margin(Duration::from_secs(6)), Duration::from_secs(2));
    }
}
