//! The demo: the one place that wires the emulator to the pipeline. It serves a world with the
//! emulator on a free loopback port, in this process, and runs the nightly job against it.
//!
//! In: a world folder, an output folder, optional faults, a reporting currency and the clock both
//! sides read. Out: the run's summary. The emulator takes `pcrecon emulator serve`'s defaults;
//! the job, the settings a config for that emulator would give.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use clap::Parser;
use secrecy::SecretString;

use crate::clock::Clock;
use crate::config::{ApiSettings, ConfigError, ExtractSettings, Settings};
use crate::emulator::args::ServeArgs;
use crate::emulator::server::Server;
use crate::pipeline::{self, RunError, RunOptions, RunSummary};
use crate::sink::store::Location;

/// `pcrecon emulator serve`'s flags, parsed as the command line would.
#[derive(Parser)]
struct Serve {
    #[command(flatten)]
    args: ServeArgs,
}

/// The demo: serves `world` with the emulator on a free loopback port, in this process, and
/// runs the job against it into `out` (a folder, or an object-store prefix worked on from
/// `./pcrecon-cache`).
pub fn run(
    world: &Path,
    out: &Location,
    faults: &str,
    normalize: Option<crate::config::NormalizeSettings>,
    clock: &Clock,
) -> Result<RunSummary, RunError> {
    // `pcrecon emulator serve`'s own defaults, and the demo's choices said once, as flags: it
    // meets Partner Center as it is today (v1 no longer serves recent periods), and faults
    // asked for with `--faults` announce short waits, so that the demo stays quick.
    let flags = [
        "serve",
        "--v1-retired",
        "--faults",
        faults,
        "--fault-seed",
        "1",
        "--max-retry-after",
        "1",
        "--slow-ms",
        "1000",
    ];
    let mut serve = Serve::try_parse_from(flags)
        .map_err(|e| ConfigError::Invalid(format!("demo: {e}")))?
        .args
        .settings(world.to_path_buf())
        .map_err(ConfigError::Invalid)?;
    // One clock for both sides: the emulator's tokens live by the time the run reads.
    serve.clock = clock.clone();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() else {
            return;
        };
        runtime.block_on(async move {
            match Server::bind(serve).await {
                Ok(server) => {
                    let _ = addr_tx.send(server.local_addr().map_err(|e| e.to_string()));
                    server.run().await;
                }
                Err(e) => {
                    let _ = addr_tx.send(Err(e.to_string()));
                }
            }
        });
    });
    let started = addr_rx.recv().map_err(|_| RunError::Start("the emulator did not start".into()))?;
    let addr = started.map_err(|e| RunError::Start(format!("the emulator did not start: {e}")))?;
    let base = url::Url::parse(&format!("http://{addr}")).map_err(|e| RunError::Start(e.to_string()))?;
    let graph = base.join("v1.0").map_err(|e| RunError::Start(e.to_string()))?;
    let mut settings = Settings {
        api: ApiSettings {
            tenant_id: "demo-partner".into(),
            client_id: "pcrecon-demo".into(),
            client_secret: SecretString::from("demo-secret"),
            refresh_token: None,
            refresh_token_file: None,
            refresh_token_from_env: false,
            authority_url: base.clone(),
            partner_api_url: base.join("partner").map_err(|e| RunError::Start(e.to_string()))?,
            base_url: base,
            scope: crate::config::DEFAULT_SCOPE.into(),
            max_in_flight: crate::config::DEFAULT_MAX_IN_FLIGHT,
            request_timeout: crate::config::DEFAULT_REQUEST_TIMEOUT,
            max_retries: crate::config::DEFAULT_MAX_RETRIES,
            max_retry_after: crate::config::DEFAULT_MAX_RETRY_AFTER,
        },
        output_dir: std::path::PathBuf::from(crate::config::DEFAULT_OUTPUT_DIR),
        store: None,
        cache_dir: std::path::PathBuf::from(crate::config::DEFAULT_CACHE_DIR),
        lock_expiry: Duration::from_secs(crate::config::DEFAULT_LOCK_EXPIRY_HOURS * 3600),
        delta: false,
        csv: Some(crate::sink::writer::CsvFormat::default()),
        rejects: false,
        keep_unknown_fields: false,
        signing_key_file: None,
        tolerance: BTreeMap::new(),
        retention: crate::sink::retention::Retention {
            keep_snapshots: crate::config::DEFAULT_KEEP_SNAPSHOTS,
            keep_days: None,
        },
        resume_within: Duration::from_secs(crate::config::DEFAULT_RESUME_WITHIN_HOURS * 3600),
        normalize: normalize.clone(),
        rebill: None,
        // The samples world's partner, named as its operator would name it in `[focus]`.
        focus: crate::config::FocusSettings { billing_account_name: Some("Contoso Cloud Solutions (Emulated)".into()) },
        extract: ExtractSettings {
            datasets: crate::tabular::Dataset::selectable().collect(),
            invoice_ids: Vec::new(),
            invoices_from: None,
            invoices_to: None,
            unbilled_periods: crate::config::DEFAULT_UNBILLED_PERIODS.to_vec(),
            currencies: Vec::new(),
            api_version: crate::config::auto_api_versions(),
            v2: crate::config::V2Settings::defaults(graph),
            partner_center_rates: None,
        },
    };
    settings.publish_to(out.clone());
    pipeline::run(&settings, &RunOptions { clock: clock.clone(), ..RunOptions::default() })
}
