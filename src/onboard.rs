//! The road from the demo to a tenant: `pcrecon auth login`, the device-code sign-in that writes
//! the App+User refresh token to `api.refresh_token_file`, and `pcrecon auth check`, one
//! read-only call per kind of token, each said to work or not and why.
//!
//! In: validated settings. Out: the refresh token file (login), a report (check). It calls the
//! token endpoints and, for the check, the API; it reads or writes no snapshot.

use std::fmt::Write as _;

use crate::api::auth::{AuthError, TokenKind};
use crate::api::device::DeviceFlow;
use crate::api::error::{ApiError, Context};
use crate::api::http::Call;
use crate::clock::Clock;
use crate::config::{ConfigError, Settings};
use crate::tabular::Dataset;

/// Why `auth login` or `auth check` did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum OnboardError {
    /// The configuration cannot serve the command.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The sign-in did not give a refresh token.
    #[error("the sign-in did not complete: {0}")]
    SignIn(AuthError),
    /// The refresh token could not be written.
    #[error("cannot write api.refresh_token_file {path}: {source}")]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The client or its runtime could not start.
    #[error("{0}")]
    Start(String),
    /// Some checks failed.
    #[error("{failed} of {of} checks failed: see the lines above")]
    ChecksFailed {
        /// Checks that failed.
        failed: usize,
        /// Checks made.
        of: usize,
        /// Whether a credential was refused (else the API failed).
        refused: bool,
    },
}

impl OnboardError {
    /// Whether credentials were refused (exit 3), rather than the endpoint failing (exit 4).
    pub fn is_refusal(&self) -> bool {
        match self {
            OnboardError::SignIn(e) => !e.is_transient(),
            OnboardError::ChecksFailed { refused, .. } => *refused,
            _ => false,
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, OnboardError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| OnboardError::Start(format!("cannot start the runtime: {e}")))
}

/// `pcrecon auth login`: shows a code to enter at Microsoft's sign-in page (as the log event
/// `device_code_issued`, and on stderr), waits for an account of the partner tenant to sign in
/// there with MFA, and writes the refresh token to `api.refresh_token_file` (owner-only,
/// replaced whole). Returns the file written.
pub fn login(settings: &Settings, on_code: impl Fn(&str)) -> Result<std::path::PathBuf, OnboardError> {
    let api = &settings.api;
    let Some(path) = api.refresh_token_file.clone() else {
        return Err(ConfigError::Invalid(
            "auth login writes the refresh token to api.refresh_token_file: name that file in [api]".into(),
        )
        .into());
    };
    if api.refresh_token_from_env {
        tracing::warn!(
            event = "refresh_token_from_environment",
            "PCRECON_REFRESH_TOKEN is set: runs use it, not the file this sign-in writes"
        );
    }
    let device_url = api.device_code_url()?;
    let http = crate::api::transport::client_builder()
        .timeout(api.request_timeout)
        .build()
        .map_err(|e| OnboardError::Start(format!("cannot build the HTTP client: {e}")))?;
    let flow = DeviceFlow::new(http, device_url, api.token_url()?, &api.client_id);
    let signed_in = runtime()?.block_on(async {
        let code = flow.start().await.map_err(OnboardError::SignIn)?;
        tracing::info!(
            event = "device_code_issued",
            verification_uri = %code.verification_uri,
            user_code = %code.user_code,
            expires_in_secs = code.expires_in,
            "{}",
            code.message
        );
        on_code(&code.message);
        flow.finish(&code).await.map_err(OnboardError::SignIn)
    })?;
    crate::config::write_secret_file(&path, &signed_in.refresh_token)
        .map_err(|source| OnboardError::Write { path: path.clone(), source })?;
    tracing::info!(event = "refresh_token_written", path = %path.display(), "signed in; the refresh token is in {}", path.display());
    Ok(path)
}

/// One check of `auth check`.
#[derive(Debug)]
pub struct Check {
    /// What was tried.
    pub what: &'static str,
    /// What came of it.
    pub outcome: Outcome,
}

/// What a check found.
#[derive(Debug)]
pub enum Outcome {
    /// It worked.
    Ok,
    /// A credential was refused, or a permission is missing: why.
    Refused(String),
    /// The API failed (not the credentials): why.
    Failed(String),
    /// Not tried: why.
    Skipped(String),
}

/// The checks, as lines.
pub fn render(checks: &[Check]) -> String {
    let mut text = String::new();
    for check in checks {
        let (word, why) = match &check.outcome {
            Outcome::Ok => ("ok", None),
            Outcome::Refused(why) => ("refused", Some(why)),
            Outcome::Failed(why) => ("failed", Some(why)),
            Outcome::Skipped(why) => ("skipped", Some(why)),
        };
        let _ = match why {
            Some(why) => writeln!(text, "{word:<8} {}: {why}", check.what),
            None => writeln!(text, "{word:<8} {}", check.what),
        };
    }
    text
}

fn outcome(result: Result<(), ApiError>) -> Outcome {
    match result {
        Ok(()) => Outcome::Ok,
        Err(e) if e.is_auth() => Outcome::Refused(crate::redact::redact(&e.to_string()).into_owned()),
        Err(e) => Outcome::Failed(crate::redact::redact(&e.to_string()).into_owned()),
    }
}

/// `pcrecon auth check`: for each kind of token a run uses, one read-only call with it —
/// Partner Center app-only (the customer list), Microsoft Graph app-only (the v2 export's
/// operations, `PartnerBilling.Read.All`), and App+User from the refresh token (the invoice
/// summaries, which also tells whether the sign-in behind it passed MFA).
pub fn check(settings: &Settings, clock: &Clock) -> Result<Vec<Check>, OnboardError> {
    let client = crate::pipeline::client(&settings.api, clock).map_err(|e| OnboardError::Start(e.to_string()))?;
    let base = client.base().to_owned();
    let graph = settings.extract.v2.graph_url.as_str().trim_end_matches('/').to_owned();
    let acts_for_user = settings.api.refresh_token.is_some();
    let checks = runtime()?.block_on(async {
        let get = |url: String, kind: TokenKind, dataset: Dataset| {
            let client = &client;
            async move {
                let context = Context { dataset, scope: "all".into(), page: 1 };
                client.get(&Call::get(&url, kind, &context)).await.map(|_| ())
            }
        };
        let mut checks = vec![Check {
            what: "Partner Center, app-only token: GET /v1/customers",
            outcome: outcome(get(format!("{base}/v1/customers?size=1"), TokenKind::App, Dataset::Customers).await),
        }];
        // An operation that does not exist: a token Graph accepts is answered 404, one it refuses 401 or 403.
        let probe = format!("{graph}/reports/partners/billing/operations/00000000-0000-0000-0000-000000000000");
        let graph_outcome = match get(probe, TokenKind::Graph, Dataset::BilledRecon).await {
            Err(ApiError::Status { status: 404, .. }) => Outcome::Ok,
            other => outcome(other),
        };
        checks.push(Check {
            what: "Microsoft Graph, app-only token (PartnerBilling.Read.All): the v2 export",
            outcome: graph_outcome,
        });
        let user = match acts_for_user {
            true => {
                let summaries = get(format!("{base}/v1/invoices/summaries"), TokenKind::User, Dataset::InvoiceSummaries);
                outcome(summaries.await)
            }
            false => Outcome::Skipped(
                "no refresh token: run `pcrecon auth login` to write api.refresh_token_file (invoice by id, summaries, statements and entitlements need it)".into(),
            ),
        };
        checks.push(Check { what: "Partner Center, App+User token with MFA: GET /v1/invoices/summaries", outcome: user });
        checks
    });
    Ok(checks)
}

/// The failure a set of checks ends with, if one failed: credentials refused (exit 3), or the
/// API failing (exit 4).
pub fn verdict(checks: &[Check]) -> Result<(), OnboardError> {
    let failed = checks.iter().filter(|c| matches!(c.outcome, Outcome::Refused(_) | Outcome::Failed(_))).count();
    let refused = checks.iter().any(|c| matches!(c.outcome, Outcome::Refused(_)));
    match failed {
        0 => Ok(()),
        _ => Err(OnboardError::ChecksFailed { failed, of: checks.len(), refused }),
    }
}
