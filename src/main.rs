//! The `pcrecon` binary: parses the command line, calls the library, maps errors to exit codes.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use pcrecon::cli::{Cli, Command, EmulatorCommand, ExtractArgs};
use pcrecon::emulator::{server, world};
use pcrecon::extract::{self, dump, raw::RawArchive};

/// Exit code for a usage or configuration error.
const EXIT_USAGE: u8 = 2;
/// Exit code for credentials refused (token endpoint, 401 after a new token, 403).
const EXIT_AUTH: u8 = 3;
/// Exit code for an API failure that retries could not fix.
const EXIT_API: u8 = 4;
/// Exit code for data that cannot be read (a malformed page).
const EXIT_DATA: u8 = 5;
/// Exit code for an output I/O error.
const EXIT_IO: u8 = 6;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("PCRECON_LOG").unwrap_or_else(|_| "info".into());
    // JSON lines for machines (cron, log shippers), readable text on a terminal.
    if std::io::stderr().is_terminal() {
        tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().json().with_writer(std::io::stderr).with_ansi(false).with_env_filter(filter).init();
    }
    // reqwest is built without a default TLS provider; ring is the one pcrecon ships.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("pcrecon: {message}");
            ExitCode::from(code)
        }
    }
}

fn run(cli: Cli) -> Result<(), (u8, String)> {
    match cli.command {
        Command::Extract(args) => run_extract(&args),
        Command::Emulator(EmulatorCommand::Generate(args)) => {
            let spec = args.world.spec().map_err(|e| (EXIT_USAGE, e))?;
            let truth = world::generate(&spec, &args.out).map_err(|e| (EXIT_IO, e.to_string()))?;
            let rows: u64 = truth.datasets.values().sum();
            eprintln!(
                "generated {} ({} invoices, {rows} rows, {} anomalies)",
                args.out.display(),
                truth.invoices.len(),
                truth.anomalies.len()
            );
            Ok(())
        }
        Command::Emulator(EmulatorCommand::Serve(args)) => {
            let world_dir = match (&args.world, args.generate.any()) {
                (Some(dir), _) => dir.clone(),
                (None, true) => cached_world(&args.generate.spec().map_err(|e| (EXIT_USAGE, e))?)?,
                (None, false) => default_samples(),
            };
            let settings = args.settings(world_dir).map_err(|e| (EXIT_USAGE, e))?;
            server::run_blocking(settings).map_err(|e| (e.exit_code(), e.to_string()))
        }
    }
}

/// The bundled samples world: `./samples/world` when run from the repository, else the one beside the
/// sources this binary was built from.
fn default_samples() -> PathBuf {
    let here = Path::new("samples/world");
    if here.join("world.json").is_file() {
        here.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("samples").join("world")
    }
}

/// A generated world, cached under the temporary folder by the hash of its spec.
fn cached_world(spec: &world::WorldSpec) -> Result<PathBuf, (u8, String)> {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(spec.fingerprint().as_bytes());
    let name: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let dir = std::env::temp_dir().join(format!("pcrecon-world-{name}"));
    if !dir.join("truth.json").is_file() {
        world::generate(spec, &dir).map_err(|e| (EXIT_IO, e.to_string()))?;
    }
    Ok(dir)
}

/// `pcrecon extract`: every sequence in scope into `<out>/<dataset>/<scope>.jsonl`, published
/// only when the whole extraction succeeded.
fn run_extract(args: &ExtractArgs) -> Result<(), (u8, String)> {
    use pcrecon::api::auth::{Credentials, TokenProvider};
    use pcrecon::api::http::{Client, Policy};
    use pcrecon::api::paging::PagingError;
    use pcrecon::config::Settings;

    let settings = Settings::load(&args.config).map_err(|e| (EXIT_USAGE, e.to_string()))?;
    let api = &settings.api;
    let credentials = Credentials {
        token_url: api.token_url().map_err(|e| (EXIT_USAGE, e.to_string()))?,
        client_id: api.client_id.clone(),
        client_secret: api.client_secret.clone(),
        scope: api.scope.clone(),
        refresh_token: api.refresh_token.clone(),
    };
    let policy = Policy::new(api.max_in_flight, api.request_timeout, api.max_retries);
    let client = Client::new(&api.base_url, TokenProvider::new(credentials), policy).map_err(|e| (EXIT_USAGE, e))?;
    let client = std::sync::Arc::new(client);

    let out = args.out.clone().unwrap_or_else(|| settings.output_dir.join("extract"));
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let name = out.file_name().and_then(|n| n.to_str()).unwrap_or("extract").to_owned();
    let staging = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let io_err = |p: &Path, e: std::io::Error| (EXIT_IO, format!("cannot write {}: {e}", p.display()));
    std::fs::create_dir_all(&staging).map_err(|e| io_err(&staging, e))?;
    let archive = match &args.keep_raw {
        Some(dir) => Some(RawArchive::open(dir).map_err(|e| io_err(dir, e))?),
        None => None,
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| (EXIT_IO, format!("cannot start the runtime: {e}")))?;
    let (tx, rx) = tokio::sync::mpsc::channel(extract::CHANNEL_PAGES);
    let consumer_dir = staging.clone();
    let consumer = std::thread::spawn(move || dump::consume(rx, &consumer_dir, archive));
    let started = std::time::Instant::now();
    tracing::info!(event = "extract_started", correlation_id = client.correlation_id(), base_url = %api.base_url);
    let extracted = runtime.block_on(extract::extract(client.clone(), &settings.extract, tx));
    let dumped = consumer.join().map_err(|_| (EXIT_IO, "the writer thread panicked".to_owned()))?;
    let (report, dumped) = match (extracted, dumped) {
        (Ok(r), Ok(d)) => (r, d),
        (Err(e), _) => {
            let _ = std::fs::remove_dir_all(&staging);
            let code = match &e {
                PagingError::Api(api) if api.is_auth() => EXIT_AUTH,
                PagingError::Api(_) => EXIT_API,
                PagingError::Malformed { .. } => EXIT_DATA,
                PagingError::Closed => EXIT_IO,
            };
            return Err((code, e.to_string()));
        }
        (Ok(_), Err(e)) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err((EXIT_IO, e.to_string()));
        }
    };
    let summary = serde_json::json!({ "items": dumped.items, "sequences": dumped.sequences });
    let summary_path = staging.join("summary.json");
    let text = serde_json::to_vec_pretty(&summary).map_err(|e| (EXIT_IO, e.to_string()))?;
    std::fs::write(&summary_path, text).map_err(|e| io_err(&summary_path, e))?;
    if out.exists() {
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        std::fs::rename(&out, &old).map_err(|e| io_err(&out, e))?;
        std::fs::rename(&staging, &out).map_err(|e| io_err(&out, e))?;
        let _ = std::fs::remove_dir_all(&old);
    } else {
        std::fs::rename(&staging, &out).map_err(|e| io_err(&out, e))?;
    }
    tracing::info!(
        event = "extract_finished",
        elapsed_ms = started.elapsed().as_millis() as u64,
        sequences = report.sequences,
        requests = report.requests,
        retries = report.retries,
        throttled = report.throttled,
        unauthorized = report.unauthorized,
        restarts = dumped.restarts
    );
    println!("extracted into {}", out.display());
    for (dataset, items) in &dumped.items {
        println!("  {dataset:<34} {items:>10} items  {:>6} sequences", dumped.sequences.get(dataset).unwrap_or(&0));
    }
    println!(
        "  {} requests, {} retries, {} throttled, {} refused tokens, {} restarted sequences, {:.1?}",
        report.requests,
        report.retries,
        report.throttled,
        report.unauthorized,
        dumped.restarts,
        started.elapsed()
    );
    Ok(())
}
