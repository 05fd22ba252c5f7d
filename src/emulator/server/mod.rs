//! The emulator's HTTP server: the Partner Center API (spec §8), the v2 export on Microsoft
//! Graph with its blob storage (spec §12, `graph`), and an Entra ID token endpoint over a world
//! folder, on loopback.
//!
//! In: [`ServeSettings`]. Out: a server whose first stdout line is `listening on http://HOST:PORT`,
//! followed by an `[api]` block that points pcrecon at it.
//! Every request passes one gate before routing (`gate`): latency, seeded fault injection,
//! bearer-token checks (App+User where documented, and the MFA claim of App+User tokens under
//! [`ServeSettings::require_mfa`]), the optional per-minute rate limit, and one request-log line.
//! Injected 429/500/503 answers take the shape of the route's service: Partner Center's bodies on
//! `/v1`, Graph's `{"error":{…}}` on `/v1.0` and `/beta`; blob storage is not throttled this way.

mod attributes;
mod control;
mod device_code;
mod faults;
mod fxrates;
mod gate;
mod graph;
mod log;
mod request;
mod respond;
mod routes;
mod store;
mod token_routes;
mod tokens;

use std::collections::VecDeque;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub use faults::{Fault, FaultSpec};
pub use graph::{ExportSettings, ManifestCounts, ManifestLocation, SuccessStatus};
pub use store::Store;

use crate::clock::Clock;
use crate::emulator::world::dice::Dice;
use log::RequestLog;
use tokens::Signer;

/// Validated settings of `pcrecon emulator serve`.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// World folder to serve.
    pub world: PathBuf,
    /// Address to bind (port 0 picks one).
    pub listen: SocketAddr,
    /// Largest page served.
    pub page_size: usize,
    /// Added latency per API request.
    pub latency_ms: u64,
    /// Fault probabilities.
    pub faults: FaultSpec,
    /// Seed of the fault draws.
    pub fault_seed: u64,
    /// Delay of a `slow` fault.
    pub slow_ms: u64,
    /// Largest `Retry-After` announced, in seconds.
    pub max_retry_after: u64,
    /// Request log file.
    pub request_log: Option<PathBuf>,
    /// Pinned client id.
    pub client_id: Option<String>,
    /// Pinned client secret.
    pub client_secret: Option<String>,
    /// Access-token lifetime.
    pub token_lifetime_secs: u64,
    /// The polling interval the device-code flow asks for.
    pub device_poll_secs: u64,
    /// Continuation-token lifetime.
    pub continuation_ttl_secs: u64,
    /// Requests per minute on customer, order and subscription resources (0: unlimited).
    pub rate_limit_per_minute: u32,
    /// Refuse app-only tokens (403) on the endpoints that need App+User (spec §1.2).
    pub require_app_user: bool,
    /// Refuse App+User tokens without an MFA claim (401, error 900421, spec §17.10).
    pub require_mfa: bool,
    /// Answer as Partner Center does since its v1 retirements: new-commerce line items of the
    /// periods it moved to the v2 export are refused (410).
    pub v1_retired: bool,
    /// The v2 export (spec §12).
    pub export: ExportSettings,
    /// The time the server reads: token, continuation and signature lifetimes, Graph's time
    /// stamps. [`Clock::fixed`] (`--fixed-clock`) stands it still until moved on by
    /// `POST /_emulator/clock/advance?secs=N`.
    pub clock: Clock,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The world folder is missing or malformed.
    #[error("cannot load world {path}: {detail}")]
    World {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The address could not be bound, or the log not opened.
    #[error("cannot start the server: {0}")]
    Start(String),
}

impl ServeError {
    fn world(path: &Path, e: std::io::Error) -> ServeError {
        ServeError::World { path: path.to_path_buf(), detail: e.to_string() }
    }
}

/// Shared state of a running server.
pub struct App {
    store: Store,
    settings: ServeSettings,
    signer: Signer,
    fault_dice: Mutex<Dice>,
    in_flight: AtomicUsize,
    log: Option<RequestLog>,
    rate_window: Mutex<VecDeque<Instant>>,
    requests: AtomicUsize,
    exports: graph::Exports,
    devices: device_code::DeviceCodes,
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    app: Arc<App>,
}

impl Server {
    /// Loads the world and binds the address.
    pub async fn bind(settings: ServeSettings) -> Result<Server, ServeError> {
        let store = Store::load(&settings.world)?;
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|e| ServeError::Start(format!("{}: {e}", settings.listen)))?;
        let log = match &settings.request_log {
            Some(path) => {
                Some(RequestLog::create(path).map_err(|e| ServeError::Start(format!("{}: {e}", path.display())))?)
            }
            None => None,
        };
        let app = App {
            signer: Signer::new(store.partner_tenant_id.as_bytes(), settings.clock.clone()),
            fault_dice: Mutex::new(Dice::new(settings.fault_seed, "faults")),
            in_flight: AtomicUsize::new(0),
            log,
            rate_window: Mutex::new(VecDeque::new()),
            requests: AtomicUsize::new(0),
            exports: graph::Exports::default(),
            devices: device_code::DeviceCodes::default(),
            store,
            settings,
        };
        Ok(Server { listener, app: Arc::new(app) })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        self.listener.local_addr().map_err(|e| ServeError::Start(e.to_string()))
    }

    /// Serves until the process ends.
    pub async fn run(self) {
        let router = routes::router(self.app.clone());
        loop {
            let Ok((stream, _)) = self.listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            let app = self.app.clone();
            let router = router.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| gate::handle(app.clone(), router.clone(), req));
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    }
}

/// The `[api]` section of a pcrecon config for a server at `addr`, with what it accepts.
fn api_block(addr: SocketAddr, settings: &ServeSettings, store: &Store) -> String {
    let base = format!("http://{addr}");
    let tenant = &store.partner_tenant_id;
    let client_id = settings.client_id.as_deref().unwrap_or("pcrecon-app");
    let secret = match settings.client_secret {
        Some(_) => "the one this server was given",
        None => "any",
    };
    format!(
        "# a pcrecon.toml for this emulator (export PCRECON_CLIENT_SECRET=<{secret}>; App+User: pcrecon auth login):\n\
         [api]\n\
         tenant_id = \"{tenant}\"\n\
         client_id = \"{client_id}\"\n\
         base_url = \"{base}\"\n\
         authority_url = \"{base}\"\n\
         graph_url = \"{base}/v1.0\"\n\
         partner_api_url = \"{base}/partner\"\n\
         # refresh_token_file = \"refresh_token\"\n"
    )
}

/// Runs the server on a new runtime, printing `listening on http://HOST:PORT` first, then the
/// `[api]` block of a config for it.
pub fn run_blocking(settings: ServeSettings) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| ServeError::Start(e.to_string()))?;
    runtime.block_on(async {
        let server = Server::bind(settings).await?;
        let addr = server.local_addr()?;
        let mut stdout = std::io::stdout();
        let _ = write!(stdout, "listening on http://{addr}\n{}", api_block(addr, &server.app.settings, &server.app.store));
        let _ = stdout.flush();
        tracing::info!(event = "emulator_started", %addr, world = %server.app.settings.world.display(), invoices = server.app.store.invoices.len(), customers = server.app.store.customers.len());
        tokio::select! {
            () = server.run() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(())
    })
}
