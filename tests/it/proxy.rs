//! A mutating HTTP proxy for adversarial tests, and a decoy "other host".
//!
//! [`Proxy`] listens on `127.0.0.1:0` and forwards every request (method, path and query,
//! headers, body) to an upstream emulator. A [`Rule`] may change the exchange: edit or replace
//! the upstream's answer, or answer without forwarding at all (a 302, a 429, a 400 echoing the
//! request). The upstream's own base URL is replaced by the proxy's in response bodies and
//! `Location` headers, so that absolute URLs (a v2 export's operation, manifest and blob URLs)
//! come back through the proxy too. It records every request it saw, and its rule can be
//! switched off while it runs, so that a test can rerun against a healthy server.
//!
//! [`Decoy`] records every request it receives and answers each with 200 `{"items":[]}`: a host
//! that pcrecon must never talk to.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// A request as the proxy (or the decoy) received it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path with its query, as sent (`/v1/invoices?size=2000`).
    pub path_and_query: String,
    /// Every header, `Authorization` included (names in lower case).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Seen {
    /// The path without its query.
    pub fn path(&self) -> &str {
        self.path_and_query.split('?').next().unwrap_or("")
    }

    /// The first value of a header (name compared without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// An HTTP answer: the upstream's, or one a rule makes.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers (`Content-Length` is set from the body when sent).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: &serde_json::Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json; charset=utf-8".into())],
            body: body.to_string().into_bytes(),
        }
    }

    /// The same answer with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The same answer with another body.
    pub fn with_body(&self, body: Vec<u8>) -> Reply {
        Reply { body, ..self.clone() }
    }
}

/// What a rule does with one exchange.
pub enum Outcome {
    /// Leave it as it is: forward the request, or pass the upstream's answer on.
    Pass,
    /// Answer this instead (before forwarding: the upstream never sees the request).
    Replace(Reply),
}

type When = dyn Fn(&Seen) -> bool + Send + Sync;
type Before = dyn Fn(&Seen, usize) -> Outcome + Send + Sync;
type After = dyn Fn(&Seen, &Reply, usize) -> Outcome + Send + Sync;

/// How the proxy changes the requests `when` accepts. Its closures get the request and `n`, the
/// ordinal of this request among those `when` accepted (1 for the first).
pub struct Rule {
    when: Box<When>,
    before: Option<Box<Before>>,
    after: Option<Box<After>>,
}

impl Rule {
    /// Forwards the requests `when` accepts, then lets `edit` pass or replace the upstream's
    /// answer (already rewritten to the proxy's base URL).
    pub fn edit(
        when: impl Fn(&Seen) -> bool + Send + Sync + 'static,
        edit: impl Fn(&Seen, &Reply, usize) -> Outcome + Send + Sync + 'static,
    ) -> Rule {
        Rule { when: Box::new(when), before: None, after: Some(Box::new(edit)) }
    }

    /// Lets `answer` reply to the requests `when` accepts without forwarding them;
    /// [`Outcome::Pass`] forwards the request as usual.
    pub fn answer(
        when: impl Fn(&Seen) -> bool + Send + Sync + 'static,
        answer: impl Fn(&Seen, usize) -> Outcome + Send + Sync + 'static,
    ) -> Rule {
        Rule { when: Box::new(when), before: Some(Box::new(answer)), after: None }
    }
}

/// What the proxy's connections share.
struct Shared {
    upstream: String,
    base: String,
    http: reqwest::Client,
    rule: Option<Rule>,
    on: AtomicBool,
    matched: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
}

impl Shared {
    async fn handle(&self, seen: Seen) -> Option<Reply> {
        self.seen.lock().unwrap().push(seen.clone());
        let rule = self.rule.as_ref().filter(|r| self.on.load(Ordering::SeqCst) && (r.when)(&seen));
        let n = rule.map(|_| self.matched.fetch_add(1, Ordering::SeqCst) + 1);
        if let (Some(before), Some(n)) = (rule.and_then(|r| r.before.as_ref()), n)
            && let Outcome::Replace(reply) = before(&seen, n)
        {
            return Some(reply);
        }
        let reply = self.forward(&seen).await?;
        if let (Some(after), Some(n)) = (rule.and_then(|r| r.after.as_ref()), n)
            && let Outcome::Replace(replaced) = after(&seen, &reply, n)
        {
            return Some(replaced);
        }
        Some(reply)
    }

    /// The upstream's answer with its base URL replaced by the proxy's; `None` when the upstream
    /// dropped the connection or cut the body short (the proxy then drops its own).
    async fn forward(&self, seen: &Seen) -> Option<Reply> {
        let method = reqwest::Method::from_bytes(seen.method.as_bytes()).ok()?;
        let mut request = self.http.request(method, format!("{}{}", self.upstream, seen.path_and_query));
        for (name, value) in &seen.headers {
            if !is_hop_by_hop(name) && name != "host" {
                request = request.header(name, value);
            }
        }
        let response = request.body(seen.body.clone()).send().await.ok()?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                let value = if k == "location" { value.replace(&self.upstream, &self.base) } else { value };
                (k.as_str().to_owned(), value)
            })
            .collect();
        let body = response.bytes().await.ok()?.to_vec();
        let body = match String::from_utf8(body) {
            Ok(text) => text.replace(&self.upstream, &self.base).into_bytes(),
            // Binary bodies (gzip export files, PDFs) hold no URL.
            Err(binary) => binary.into_bytes(),
        };
        Some(Reply { status, headers, body })
    }
}

fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "connection" | "keep-alive" | "transfer-encoding" | "content-length" | "upgrade" | "te" | "trailer"
    )
}

/// Answers one request through `handle`; `None` from it drops the connection.
type Handler = Arc<dyn Fn(Seen) -> BoxFuture<'static, Option<Reply>> + Send + Sync>;

/// An HTTP/1 server on `127.0.0.1:0` running on a thread of its own until dropped.
struct Listener {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Listener {
    fn start(handler: Handler) -> Listener {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let base = format!("http://{}", socket.local_addr().unwrap());
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(socket).unwrap();
                loop {
                    let stream = tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => match accepted {
                            Ok((stream, _)) => stream,
                            Err(_) => continue,
                        },
                    };
                    let handler = handler.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| respond(handler.clone(), req));
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        Listener { base, stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn respond(
    handler: Handler,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, std::io::Error> {
    let dropped = || std::io::Error::other("connection dropped");
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| dropped())?.to_bytes().to_vec();
    let seen = Seen {
        method: parts.method.to_string(),
        path_and_query: parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body,
    };
    let reply = handler(seen).await.ok_or_else(dropped)?;
    let mut response = hyper::Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = hyper::StatusCode::from_u16(reply.status).map_err(|_| dropped())?;
    for (name, value) in reply.headers.iter().filter(|(name, _)| !is_hop_by_hop(name)) {
        if let (Ok(name), Ok(value)) =
            (hyper::header::HeaderName::from_bytes(name.as_bytes()), hyper::header::HeaderValue::from_str(value))
        {
            response.headers_mut().append(name, value);
        }
    }
    Ok(response)
}

/// A running proxy in front of an upstream emulator, stopped on drop.
pub struct Proxy {
    /// `http://127.0.0.1:PORT` of the proxy.
    pub base: String,
    shared: Arc<Shared>,
    _listener: Listener,
}

impl Proxy {
    /// A proxy that forwards everything to `upstream` (`http://127.0.0.1:PORT`) unchanged.
    pub fn start(upstream: &str) -> Proxy {
        Self::start_with(upstream, None)
    }

    /// A proxy to `upstream` that applies `rule` until it is switched off.
    pub fn with_rule(upstream: &str, rule: Rule) -> Proxy {
        Self::start_with(upstream, Some(rule))
    }

    fn start_with(upstream: &str, rule: Option<Rule>) -> Proxy {
        // reqwest ships without a default TLS provider (and the proxy never follows a redirect:
        // it hands each answer on as it came).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().build().unwrap();
        // The port is known only once bound: the handler reads the base from `Shared`, filled in
        // right after.
        let slot: Arc<Mutex<Option<Arc<Shared>>>> = Arc::new(Mutex::new(None));
        let handler_slot = slot.clone();
        let handler: Handler = Arc::new(move |seen| {
            let shared = handler_slot.lock().unwrap().clone();
            Box::pin(async move {
                match shared {
                    Some(shared) => shared.handle(seen).await,
                    None => None,
                }
            })
        });
        let listener = Listener::start(handler);
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            base: listener.base.clone(),
            http,
            rule,
            on: AtomicBool::new(true),
            matched: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        });
        *slot.lock().unwrap() = Some(shared.clone());
        Proxy { base: listener.base.clone(), shared, _listener: listener }
    }

    /// Switches the rule on or off (a proxy starts with it on).
    pub fn switch(&self, on: bool) {
        self.shared.on.store(on, Ordering::SeqCst);
    }

    /// Every request the proxy received so far, in order of arrival.
    pub fn requests(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }
}

/// Another host: records every request and answers it with 200 `{"items":[]}`.
pub struct Decoy {
    /// `http://127.0.0.1:PORT` of the decoy.
    pub base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    _listener: Listener,
}

impl Decoy {
    /// Starts the decoy.
    pub fn start() -> Decoy {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let handler: Handler = Arc::new(move |request| {
            record.lock().unwrap().push(request);
            Box::pin(async { Some(Reply::json(200, &serde_json::json!({ "items": [] }))) })
        });
        let listener = Listener::start(handler);
        Decoy { base: listener.base.clone(), seen, _listener: listener }
    }

    /// Every request the decoy received so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Writes `pcrecon.toml` in `dir` for an API at `base` (a proxy): authority, Partner Center and
/// Graph (`{base}/v1.0`) all there, then `extra` (more `[api]` keys first, then other sections).
/// Output goes to `dir/out`, the default. The twin of `helpers::write_config`.
pub fn write_config(base: &str, dir: &Path, extra: &str) -> PathBuf {
    let config = dir.join("pcrecon.toml");
    let text = format!(
        "[api]\ntenant_id = \"partner-tenant\"\nclient_id = \"pcrecon-app\"\nauthority_url = \"{base}\"\nbase_url = \"{base}\"\ngraph_url = \"{base}/v1.0\"\nmax_in_flight = 3\n{extra}\n"
    );
    std::fs::write(&config, text).unwrap();
    config
}
