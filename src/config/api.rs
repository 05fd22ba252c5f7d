//! The `[api]` section: the tenant, the application and its secrets, the roots of Entra ID,
//! Partner Center and Microsoft Graph, and the HTTP limits.
//!
//! In: the section as parsed, and where relative paths start. Out: [`ApiSettings`] and the
//! Graph root. Secrets are read here (the environment first, then a file only its owner can
//! read) and held only as [`SecretString`]; no message names one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use super::{ConfigError, checked_url, join};

/// Entra ID's root, where tokens are asked for.
pub const DEFAULT_AUTHORITY_URL: &str = "https://login.microsoftonline.com";
/// Partner Center's API root.
pub const DEFAULT_BASE_URL: &str = "https://api.partnercenter.microsoft.com";
/// The root of Partner Center's pricing API, which serves the foreign exchange rates.
pub const DEFAULT_PARTNER_API_URL: &str = "https://api.partner.microsoft.com";
/// The token scope of the client-credentials grant.
pub const DEFAULT_SCOPE: &str = "https://api.partnercenter.microsoft.com/.default";
/// Requests in flight at most, by default.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;
/// The largest `max_in_flight` accepted.
pub const MAX_IN_FLIGHT_LIMIT: usize = 64;
/// Time limit of one request, body included, by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Retries of one call, by default: after transient failures, and separately after 429 answers.
pub const DEFAULT_MAX_RETRIES: u32 = 8;
/// The longest wait a `Retry-After` is obeyed for, by default; a longer one is cut to it.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    tenant_id: String,
    client_id: String,
    authority_url: Option<String>,
    base_url: Option<String>,
    pub(super) graph_url: Option<String>,
    partner_api_url: Option<String>,
    max_in_flight: Option<usize>,
    client_secret_file: Option<PathBuf>,
    refresh_token_file: Option<PathBuf>,
    scope: Option<String>,
    request_timeout_secs: Option<u64>,
    max_retries: Option<u32>,
    max_retry_after_secs: Option<u64>,
}

/// How pcrecon talks to Partner Center.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Partner tenant id.
    pub tenant_id: String,
    /// Application (client) id.
    pub client_id: String,
    /// Client secret (client-credentials grant).
    pub client_secret: SecretString,
    /// Refresh token of the App+User flow, when configured.
    pub refresh_token: Option<SecretString>,
    /// `api.refresh_token_file`, resolved: where `pcrecon auth login` writes the refresh token,
    /// and where a run writes back one the token endpoint rotated (unless `PCRECON_REFRESH_TOKEN`
    /// gave the token, which the process cannot write back).
    pub refresh_token_file: Option<PathBuf>,
    /// Whether the refresh token came from `PCRECON_REFRESH_TOKEN`.
    pub refresh_token_from_env: bool,
    /// Entra ID authority root.
    pub authority_url: Url,
    /// Partner Center API root.
    pub base_url: Url,
    /// Partner Center pricing API root (`[normalize] rate_source = "partner_center"`).
    pub partner_api_url: Url,
    /// Token scope of the client-credentials grant.
    pub scope: String,
    /// Requests in flight at most, across every dataset.
    pub max_in_flight: usize,
    /// Time limit of one request, body included.
    pub request_timeout: Duration,
    /// Retries of one call before giving up: after transient failures, and separately after
    /// 429 answers.
    pub max_retries: u32,
    /// The longest wait a `Retry-After` is obeyed for.
    pub max_retry_after: Duration,
}

impl ApiSettings {
    /// The token endpoint (`{authority}/{tenant}/oauth2/v2.0/token`).
    pub fn token_url(&self) -> Result<Url, ConfigError> {
        join(&self.authority_url, &format!("{}/oauth2/v2.0/token", self.tenant_id))
    }

    /// The device-code endpoint (`{authority}/{tenant}/oauth2/v2.0/devicecode`) of `auth login`.
    pub fn device_code_url(&self) -> Result<Url, ConfigError> {
        join(&self.authority_url, &format!("{}/oauth2/v2.0/devicecode", self.tenant_id))
    }
}

/// Whether the run calls the API, and so needs its client secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// It calls the API: a missing client secret is an error.
    Required,
    /// It calls nothing (a rebuild from a raw archive): the secret may be absent.
    NotNeeded,
    /// It signs in (`pcrecon auth login`): no client secret is sent, and the refresh token file
    /// it writes may not exist yet.
    Login,
}

impl RawApi {
    /// The validated section; `resolve` makes a relative secret file's path absolute.
    pub(super) fn settings(
        self,
        resolve: impl Fn(&Path) -> PathBuf,
        secrets: Secrets,
    ) -> Result<ApiSettings, ConfigError> {
        let client_secret = match (env_secret("PCRECON_CLIENT_SECRET"), &self.client_secret_file) {
            (Some(s), _) => s,
            (None, Some(file)) => secret_file("client_secret_file", &resolve(file))?,
            // Nothing is called: no secret is needed, and an empty one is never sent.
            (None, None) if secrets != Secrets::Required => SecretString::from(String::new()),
            (None, None) => {
                return Err(ConfigError::Invalid(
                    "no client secret: set PCRECON_CLIENT_SECRET or api.client_secret_file".into(),
                ));
            }
        };
        let refresh_token_file = self.refresh_token_file.as_deref().map(&resolve);
        let from_env = env_secret("PCRECON_REFRESH_TOKEN");
        let refresh_token_from_env = from_env.is_some();
        let refresh_token = match (from_env, &refresh_token_file) {
            (Some(s), _) => Some(s),
            (None, Some(file)) if secrets == Secrets::Login && !file.exists() => None,
            (None, Some(file)) if !file.exists() => {
                return Err(ConfigError::Invalid(format!(
                    "api.refresh_token_file {} does not exist: `pcrecon auth login` signs in and writes it",
                    file.display()
                )));
            }
            (None, Some(file)) => Some(secret_file("refresh_token_file", file)?),
            (None, None) => None,
        };
        let max_in_flight = self.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        if !(1..=MAX_IN_FLIGHT_LIMIT).contains(&max_in_flight) {
            return Err(ConfigError::Invalid(format!(
                "api.max_in_flight must be 1 to {MAX_IN_FLIGHT_LIMIT}, not {max_in_flight}"
            )));
        }
        let tenant_id = self.tenant_id.trim().to_owned();
        if tenant_id.is_empty() || self.client_id.trim().is_empty() {
            return Err(ConfigError::Invalid("api.tenant_id and api.client_id must not be empty".into()));
        }
        let base_url = checked_url("api.base_url", self.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL))?;
        // An emulator issues its own tokens: its base URL is its authority unless one is given.
        let authority_url = match self.authority_url.as_deref() {
            Some(text) => checked_url("api.authority_url", text)?,
            None if super::is_loopback(&base_url) => base_url.clone(),
            None => checked_url("api.authority_url", DEFAULT_AUTHORITY_URL)?,
        };
        // An emulator serves the pricing API under `/partner`.
        let partner_api_url = match self.partner_api_url.as_deref() {
            Some(text) => checked_url("api.partner_api_url", text)?,
            None if super::is_loopback(&base_url) => join(&base_url, "partner")?,
            None => checked_url("api.partner_api_url", DEFAULT_PARTNER_API_URL)?,
        };
        Ok(ApiSettings {
            partner_api_url,
            tenant_id,
            client_id: self.client_id.trim().to_owned(),
            client_secret,
            refresh_token,
            refresh_token_file,
            refresh_token_from_env,
            authority_url,
            base_url,
            scope: self.scope.unwrap_or_else(|| DEFAULT_SCOPE.into()),
            max_in_flight,
            request_timeout: self
                .request_timeout_secs
                .map_or(DEFAULT_REQUEST_TIMEOUT, |s| Duration::from_secs(s.max(1))),
            max_retries: self.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
            max_retry_after: self.max_retry_after_secs.map_or(DEFAULT_MAX_RETRY_AFTER, Duration::from_secs),
        })
    }
}

/// Reads a secret from a file that only its owner can read.
fn secret_file(name: &str, path: &Path) -> Result<SecretString, ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(ConfigError::Invalid(format!(
            "{name} {} is readable by group or others; chmod 600 it",
            path.display()
        )));
    }
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    let text = text.trim();
    if text.is_empty() {
        return Err(ConfigError::Invalid(format!("{name} {} is empty", path.display())));
    }
    Ok(SecretString::from(text.to_owned()))
}

/// Replaces the secret file at `path` with `secret` whole: written beside it with owner-only
/// permissions from its creation, synced, then renamed over it, so a reader (the next night's
/// run) finds the old token or the new one, never half of one, and nobody else can read either.
pub fn write_secret_file(path: &Path, secret: &SecretString) -> std::io::Result<()> {
    use secrecy::ExposeSecret;
    let text = format!("{}\n", secret.expose_secret());
    crate::sink::staging::replace_file(path, text.as_bytes(), 0o600)
}

/// A secret from the environment, when set and not blank.
fn env_secret(var: &str) -> Option<SecretString> {
    std::env::var(var).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).map(SecretString::from)
}
