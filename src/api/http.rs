//! One gate for every request to Partner Center: the shared in-flight bound, the global
//! `Retry-After` deadline, tokens, request ids, retries with backoff, and errors that say where.
//!
//! Order of one attempt: wait out any `Retry-After` deadline → take an in-flight permit → get a
//! token (fetching it under the same permit) → send → read the whole body → release the permit.
//! 429 (and 503 with `Retry-After`) set a deadline no request passes; 5xx, 408, resets, timeouts
//! and truncated bodies back off exponentially with jitter; 401 drops the token and retries with a
//! new one (a few times at most), except Partner Center's 401 with error code 900421 (the App+User
//! token has no MFA claim, spec §17.10), which no new token from the same refresh token can fix
//! and which fails at once with what the operator has to do;
//! other 4xx fail at once with the dataset, scope, page and `MS-RequestId` in the error.
//! The errors themselves are `error`'s; how long a wait lasts is `retry`'s.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap};
use secrecy::ExposeSecret;
use tokio::sync::{Mutex, Semaphore};
use url::Url;

use super::auth::{TokenKind, TokenProvider};
use super::error::{ApiError, Context, MFA_REQUIRED, error_code, error_detail};
use super::retry::{backoff, retry_after};
use super::transport::describe_transport;
use crate::clock::Clock;

// `extract` still names a request's context by this path.

/// One logical call: retries of it share its `MS-RequestId`.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// Absolute URL.
    pub url: &'a str,
    /// Extra headers (those a `links.next` names).
    pub headers: &'a [(String, String)],
    /// `Accept`.
    pub accept: &'static str,
    /// Token kind.
    pub token: TokenKind,
    /// Where it belongs.
    pub context: &'a Context,
    /// A JSON body to `POST`; without one the call is a `GET`.
    pub json: Option<&'a [u8]>,
}

impl<'a> Call<'a> {
    /// A `GET` of `url` that accepts JSON.
    pub fn get(url: &'a str, token: TokenKind, context: &'a Context) -> Call<'a> {
        Call { url, headers: &[], accept: "application/json", token, context, json: None }
    }
}

/// A response that arrived whole.
#[derive(Debug, Clone)]
pub struct Response {
    /// The body.
    pub body: Bytes,
    /// `MS-RequestId` sent with the request.
    pub request_id: String,
    /// When the body arrived.
    pub fetched_at: chrono::DateTime<chrono::Utc>,
    /// HTTP status (2xx).
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
}

/// Counters of a run.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests sent (token calls excluded).
    pub requests: AtomicU64,
    /// Retries after transient failures.
    pub retries: AtomicU64,
    /// 429 answers.
    pub throttled: AtomicU64,
    /// 401 answers.
    pub unauthorized: AtomicU64,
}

/// Tunables of the gate.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Requests in flight at most.
    pub max_in_flight: usize,
    /// Time limit of one attempt, body included.
    pub timeout: Duration,
    /// Retries of one call after transient failures (5xx, resets, timeouts, truncated bodies),
    /// and separately after 429 answers.
    pub max_retries: u32,
    /// The longest wait a `Retry-After` is obeyed for: a longer one is cut to it, with a warning.
    pub max_retry_after: Duration,
    /// First backoff; doubles each retry up to `max_backoff`.
    pub base_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
    /// Wait after a 429 that names no `Retry-After`.
    pub default_retry_after: Duration,
}

impl Policy {
    /// The defaults for a bound and a timeout.
    pub fn new(max_in_flight: usize, timeout: Duration, max_retries: u32) -> Policy {
        Policy {
            max_in_flight,
            timeout,
            max_retries,
            max_retry_after: Duration::from_secs(300),
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            default_retry_after: Duration::from_secs(10),
        }
    }
}

/// The Partner Center HTTP client.
pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: TokenProvider,
    permits: Semaphore,
    not_before: Mutex<Instant>,
    last_wait_notice: Mutex<Option<Instant>>,
    correlation_id: String,
    policy: Policy,
    clock: Clock,
    /// Counters.
    pub stats: Stats,
}

/// Streams a response body into a new file; a failure says why without the URL.
async fn stream_to_file(mut response: reqwest::Response, path: &Path) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let shown = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut file = tokio::fs::File::create(path).await.map_err(shown)?;
    while let Some(chunk) = response.chunk().await.map_err(|e| describe_transport(&e))? {
        file.write_all(&chunk).await.map_err(shown)?;
    }
    file.flush().await.map_err(shown)
}

/// The largest body size a response's `Content-Length` is trusted for when its buffer is
/// allocated (a larger body still arrives, into a growing buffer).
const PREALLOCATED_BODY: u64 = 64 << 20;

/// Reads a response body into one buffer, allocated once at its announced length: no chunk list
/// beside the copy, so a page in flight costs its own size.
async fn read_body(mut response: reqwest::Response) -> Result<Bytes, String> {
    let announced = response.content_length().unwrap_or(0).min(PREALLOCATED_BODY);
    let mut body = Vec::with_capacity(usize::try_from(announced).unwrap_or(0));
    while let Some(chunk) = response.chunk().await.map_err(|e| describe_transport(&e))? {
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// How often a long `Retry-After` wait says it is still waiting.
const WAIT_NOTICE_EVERY: Duration = Duration::from_secs(30);

/// Redirects one call follows at most (on its own host).
const MAX_REDIRECTS: usize = 5;

/// Fresh tokens one call may ask for after 401 answers.
const MAX_TOKEN_RENEWALS: u32 = 3;

enum Attempt {
    Done(Response),
    Fatal(ApiError),
    Retry { wait: Duration, reason: String, throttled: bool },
}

/// Why a redirect was not followed, naming only where it led (its query may hold a credential).
fn redirect_detail(headers: &HeaderMap) -> String {
    let target = headers
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| Url::parse(l).ok())
        .map_or_else(|| "elsewhere".to_owned(), |u| u.origin().ascii_serialization());
    format!("redirects to {target}: pcrecon follows redirects on the host a call started from only")
}

impl Client {
    /// A client for an API root with a token provider.
    pub fn new(base: &Url, auth: TokenProvider, policy: Policy, clock: Clock) -> Result<Client, String> {
        // A redirect is followed only on the host it started from (the bearer token goes with it),
        // and only a few times; any other is answered as the 3xx it is, which fails the call.
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            let same_origin = attempt.previous().first().is_some_and(|first| first.origin() == attempt.url().origin());
            if same_origin && attempt.previous().len() <= MAX_REDIRECTS { attempt.follow() } else { attempt.stop() }
        });
        let http = super::transport::client_builder()
            .redirect(redirects)
            .timeout(policy.timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Client {
            http,
            base: base.as_str().trim_end_matches('/').to_owned(),
            auth,
            permits: Semaphore::new(policy.max_in_flight),
            not_before: Mutex::new(Instant::now()),
            last_wait_notice: Mutex::new(None),
            correlation_id: uuid::Uuid::new_v4().to_string(),
            policy,
            clock,
            stats: Stats::default(),
        })
    }

    /// The clock pages are stamped with and `Retry-After` dates are read against.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The API root without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Requests in flight at most.
    pub fn max_in_flight(&self) -> usize {
        self.policy.max_in_flight
    }

    /// The correlation id of this run.
    pub fn correlation_id(&self) -> &str {
        &self.correlation_id
    }

    /// Resolves a link as spec §1.1 says: relative links omit `/v1` unless they start with it.
    pub fn resolve(&self, uri: &str) -> String {
        if uri.starts_with("http://") || uri.starts_with("https://") {
            uri.to_owned()
        } else if uri.starts_with("/v1/") || uri == "/v1" {
            format!("{}{uri}", self.base)
        } else {
            format!("{}/v1{}", self.base, if uri.starts_with('/') { uri.to_owned() } else { format!("/{uri}") })
        }
    }

    /// Whether `url` is on the API's own scheme, host and port: the only place links and
    /// redirects may lead, since every request there carries the bearer token.
    pub fn is_api_origin(&self, url: &str) -> bool {
        match (Url::parse(url), Url::parse(&self.base)) {
            (Ok(url), Ok(base)) => url.origin() == base.origin(),
            _ => false,
        }
    }

    /// What a `Retry-After` of `asked` is obeyed as: at most `max_retry_after`, with a warning
    /// when it asked for more.
    pub fn capped(&self, asked: Duration, path: &str) -> Duration {
        if asked <= self.policy.max_retry_after {
            return asked;
        }
        tracing::warn!(
            event = "retry_after_capped",
            path = %crate::redact::redact(path),
            asked_secs = asked.as_secs(),
            cap_secs = self.policy.max_retry_after.as_secs(),
            "the API asked to wait longer than api.max_retry_after_secs; waiting that long instead"
        );
        self.policy.max_retry_after
    }

    /// Waits until no `Retry-After` deadline holds; a long wait says so every
    /// [`WAIT_NOTICE_EVERY`] (once for all the requests waiting), so that a log never goes quiet.
    async fn wait_for_deadline(&self) {
        loop {
            let deadline = *self.not_before.lock().await;
            let now = Instant::now();
            if deadline <= now {
                return;
            }
            let left = deadline - now;
            if left > WAIT_NOTICE_EVERY {
                let notice_due = {
                    let mut last = self.last_wait_notice.lock().await;
                    let due = last.is_none_or(|at| now.duration_since(at) >= WAIT_NOTICE_EVERY);
                    if due {
                        *last = Some(now);
                    }
                    due
                };
                if notice_due {
                    tracing::info!(event = "throttled_wait", left_secs = left.as_secs(), "waiting out Retry-After");
                }
            }
            tokio::time::sleep_until((now + left.min(WAIT_NOTICE_EVERY)).into()).await;
        }
    }

    async fn push_deadline(&self, wait: Duration) {
        // A little beyond what was asked: an HTTP date has whole seconds, clocks differ by a hair.
        let deadline = Instant::now() + wait + Duration::from_millis(100);
        let mut nb = self.not_before.lock().await;
        if deadline > *nb {
            *nb = deadline;
        }
    }

    fn backoff(&self, retry: u32) -> Duration {
        backoff(self.policy.base_backoff, self.policy.max_backoff, retry)
    }

    /// Makes one call; returns the whole body of its 2xx answer.
    pub async fn get(&self, call: &Call<'_>) -> Result<Response, ApiError> {
        self.send(call, None).await
    }

    /// Makes one call and streams the body of its 2xx answer into the file `to` (created or
    /// truncated at every attempt); the response's `body` is empty.
    pub async fn download(&self, call: &Call<'_>, to: &Path) -> Result<Response, ApiError> {
        self.send(call, Some(to)).await
    }

    async fn send(&self, call: &Call<'_>, to: Option<&Path>) -> Result<Response, ApiError> {
        let Call { url, context, .. } = *call;
        let request_id = uuid::Uuid::new_v4().to_string();
        // A shared-access signature in a query is a credential: errors and logs never show it.
        let shown = if call.token == TokenKind::Sas { url.split('?').next().unwrap_or(url) } else { url };
        let path = shown.strip_prefix(&self.base).unwrap_or(shown).to_owned();
        let mut retries = 0u32;
        let mut throttled = 0u32;
        let mut renewals = 0u32;
        loop {
            match self.attempt(call, &request_id, &path, &mut renewals, to).await {
                Attempt::Done(r) => return Ok(r),
                Attempt::Fatal(e) => return Err(e),
                Attempt::Retry { wait, reason, throttled: was_throttled } => {
                    let count = if was_throttled {
                        throttled += 1;
                        throttled
                    } else {
                        retries += 1;
                        retries
                    };
                    if count > self.policy.max_retries {
                        return Err(ApiError::Exhausted {
                            context: context.clone(),
                            attempts: retries + throttled,
                            path,
                            request_id,
                            last: reason,
                        });
                    }
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(event = "retry", %reason, wait_ms = wait.as_millis() as u64);
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn attempt(
        &self,
        call: &Call<'_>,
        request_id: &str,
        path: &str,
        renewals: &mut u32,
        to: Option<&Path>,
    ) -> Attempt {
        let Call { url, headers, accept, token: kind, context, json } = *call;
        let permit = loop {
            self.wait_for_deadline().await;
            let Ok(permit) = self.permits.acquire().await else {
                return Attempt::Fatal(ApiError::Exhausted {
                    context: context.clone(),
                    attempts: 0,
                    path: path.to_owned(),
                    request_id: request_id.to_owned(),
                    last: "the client was shut down".into(),
                });
            };
            // A 429 may have arrived while this request waited for its permit.
            if *self.not_before.lock().await <= Instant::now() {
                break permit;
            }
        };
        let token = match kind {
            TokenKind::Sas => None,
            _ => match self.auth.token(&self.http, kind).await {
                Ok(t) => Some(t),
                Err(e) if e.is_transient() => {
                    return Attempt::Retry { wait: self.backoff(0), reason: e.to_string(), throttled: false };
                }
                Err(source) => return Attempt::Fatal(ApiError::Auth { context: context.clone(), source }),
            },
        };
        let mut request = match json {
            Some(body) => self
                .http
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("client-request-id", request_id)
                .body(body.to_vec()),
            None => self.http.get(url),
        };
        if let Some(token) = &token {
            request = request.header(AUTHORIZATION, format!("Bearer {}", token.expose_secret()));
        }
        let mut request = request
            .header(ACCEPT, accept)
            .header("MS-RequestId", request_id)
            .header("MS-CorrelationId", &self.correlation_id)
            .header("X-Locale", "en-US");
        for (k, v) in headers {
            request = request.header(k.as_str(), v.as_str());
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let sent = request.send().await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                drop(permit);
                return Attempt::Retry { wait: self.backoff(0), reason: describe_transport(&e), throttled: false };
            }
        };
        let status = response.status().as_u16();
        let response_headers = response.headers().clone();
        let body = match to {
            Some(path) if (200..300).contains(&status) => stream_to_file(response, path).await.map(|()| Bytes::new()),
            _ => read_body(response).await,
        };
        drop(permit);
        let body = match body {
            Ok(b) => b,
            Err(reason) => return Attempt::Retry { wait: self.backoff(1), reason, throttled: false },
        };
        tracing::debug!(event = "response", status, request_id, bytes = body.len());
        match status {
            200..=299 => Attempt::Done(Response {
                body,
                request_id: request_id.to_owned(),
                fetched_at: self.clock.now(),
                status,
                headers: response_headers,
            }),
            429 => {
                self.stats.throttled.fetch_add(1, Ordering::Relaxed);
                let asked =
                    retry_after(&response_headers, self.clock.now().into()).unwrap_or(self.policy.default_retry_after);
                let wait = self.capped(asked, path);
                self.push_deadline(wait).await;
                Attempt::Retry {
                    wait: Duration::ZERO,
                    reason: format!("HTTP 429, Retry-After {}s", wait.as_secs()),
                    throttled: true,
                }
            }
            // No token redeemed from the same refresh token gains the MFA claim: not retried.
            401 if error_code(&body).as_deref() == Some(MFA_REQUIRED) => {
                self.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
                Attempt::Fatal(ApiError::MfaRequired {
                    context: context.clone(),
                    path: path.to_owned(),
                    request_id: request_id.to_owned(),
                })
            }
            // A refused token is replaced and the call retried with the new one; a fresh token
            // refused again and again means the credentials themselves are not accepted.
            401 if *renewals < MAX_TOKEN_RENEWALS
                && let Some(token) = &token =>
            {
                self.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
                *renewals += 1;
                self.auth.invalidate(token).await;
                Attempt::Retry {
                    wait: Duration::ZERO,
                    reason: "HTTP 401: token refused, fetched a new one".into(),
                    throttled: false,
                }
            }
            408 | 500..=599 => {
                let asked = retry_after(&response_headers, self.clock.now().into()).map(|a| self.capped(a, path));
                if let Some(wait) = asked {
                    self.push_deadline(wait).await;
                }
                let wait = asked.map_or_else(|| self.backoff(1), |_| Duration::ZERO);
                Attempt::Retry { wait, reason: format!("HTTP {status}: {}", error_detail(&body)), throttled: false }
            }
            300..=399 => Attempt::Fatal(ApiError::Status {
                context: context.clone(),
                status,
                path: path.to_owned(),
                request_id: request_id.to_owned(),
                detail: redirect_detail(&response_headers),
            }),
            401 | 403 if matches!(kind, TokenKind::User | TokenKind::Pricing) && !self.auth.acts_for_user() => {
                Attempt::Fatal(ApiError::AppUserNeeded {
                    context: context.clone(),
                    status,
                    path: path.to_owned(),
                    request_id: request_id.to_owned(),
                    detail: error_detail(&body),
                })
            }
            _ => Attempt::Fatal(ApiError::Status {
                context: context.clone(),
                status,
                path: path.to_owned(),
                request_id: request_id.to_owned(),
                detail: error_detail(&body),
            }),
        }
    }
}
