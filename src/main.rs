//! The `pcrecon` binary: parses the command line, calls the library, maps errors to exit codes.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use pcrecon::audit::{diff, verify};
use pcrecon::cli::{AuthCommand, Cli, Command, EmulatorCommand, FailOn, RunArgs, SummaryArgs, SummaryFormat};
use pcrecon::config::Settings;
use pcrecon::emulator::{server, world};
use pcrecon::error::Error;
use pcrecon::pipeline::{self, RunSummary};
use pcrecon::progress::Progress;
use pcrecon::sink::delta;
use pcrecon::sink::fetch::LocalCopy;
use pcrecon::sink::store::{Location, Store};
use std::sync::Arc;

/// Rows are allocated on the decoding threads and freed on the encoding ones: mimalloc's
/// thread-local heaps take such frees without the lock contention of the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The object-store client logs each retried request at info, with what its HTTP client said.
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("PCRECON_LOG").unwrap_or_else(|_| "info,object_store=warn".into());
    // A bar for a run on a terminal; log lines are printed above it.
    let terminal = std::io::stderr().is_terminal();
    let bar = terminal && matches!(&cli.command, Command::Run(args) if !args.dry_run);
    let progress = Arc::new(Progress::new(bar));
    // JSON lines for machines (cron, log shippers), readable text on a terminal.
    if terminal {
        tracing_subscriber::fmt().with_writer(progress.log_writer()).with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().json().with_writer(std::io::stderr).with_ansi(false).with_env_filter(filter).init();
    }
    if !matches!(&cli.command, Command::Emulator(_)) {
        stop_on_signals(progress.clone());
    }
    let result = run(cli, progress.clone());
    progress.finish();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let code = error.exit().code();
            // A store's error may quote a URL with a signature in it.
            let redacted = |text: &str| pcrecon::redact::redact(text).into_owned();
            if terminal {
                eprintln!("pcrecon: {}", redacted(&error.report()));
            } else {
                // The last log line, in the shape of the others, with the causes as a list.
                let causes: Vec<String> = error.causes().iter().map(|c| redacted(c)).collect();
                let line = serde_json::json!({
                    "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    "level": "ERROR",
                    "fields": {
                        "message": redacted(&error.report()),
                        "event": "run_failed",
                        "exit_code": code,
                        "causes": causes,
                    },
                    "target": "pcrecon",
                });
                eprintln!("{line}");
            }
            ExitCode::from(code)
        }
    }
}

/// Prints a run's summary as asked, with the exit code the run ends with.
fn print_summary(summary: &RunSummary, asked: SummaryArgs, ended: &Result<(), Error>) {
    if asked.quiet {
        return;
    }
    let json = match asked.summary {
        SummaryFormat::Auto => !std::io::stdout().is_terminal(),
        SummaryFormat::Text => false,
        SummaryFormat::Json => true,
    };
    if json {
        let (code, finding) = match ended {
            Ok(()) => (0, None),
            Err(e) => (e.exit().code(), Some(pcrecon::redact::redact(&e.report()).into_owned())),
        };
        println!("{}", summary.json(code, finding.as_deref()));
    } else {
        print!("{}", summary.render());
    }
}

fn run(cli: Cli, progress: Arc<Progress>) -> Result<(), Error> {
    match cli.command {
        Command::Extract(args) => {
            let settings = Settings::load(&args.config)?;
            let out = args.out.clone().unwrap_or_else(|| settings.output_dir.join("extract"));
            let summary = pipeline::extract_to_folder(
                &settings,
                &out,
                args.keep_raw.as_deref(),
                &pcrecon::clock::Clock::system(),
            )?;
            print!("{}", summary.render());
            Ok(())
        }
        Command::Schemas { out } => {
            std::fs::create_dir_all(&out).map_err(|source| Error::Io { path: out.clone(), source })?;
            for (name, text) in pcrecon::model::schema_files() {
                let path = out.join(name);
                std::fs::write(&path, text).map_err(|source| Error::Io { path: path.clone(), source })?;
            }
            Ok(())
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "pcrecon", &mut std::io::stdout());
            Ok(())
        }
        Command::Auth(AuthCommand::Login { config }) => {
            let settings = Settings::load_for_login(&config)?;
            let terminal = std::io::stderr().is_terminal();
            let path = pcrecon::onboard::login(&settings, |message| {
                // On a terminal the log line is not enough: the code is what the person needs.
                if terminal {
                    eprintln!("{message}");
                }
            })?;
            println!("signed in: the refresh token is in {}", path.display());
            Ok(())
        }
        Command::Auth(AuthCommand::Check { config }) => {
            let settings = Settings::load(&config)?;
            let checks = pcrecon::onboard::check(&settings, &pcrecon::clock::Clock::system())?;
            print!("{}", pcrecon::onboard::render(&checks));
            Ok(pcrecon::onboard::verdict(&checks)?)
        }
        Command::Man => {
            let out = Path::new("(stdout)");
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(|source| Error::Io { path: out.to_path_buf(), source })
        }
        Command::Run(args) => {
            let mut published = None;
            let result = run_job(&args, progress, &mut published);
            // Every run that was not a dry run says how it ended, failed ones included.
            if let (Some(path), false) = (&args.metrics, args.dry_run) {
                let code = result.as_ref().map_or_else(|e| e.exit().code(), |()| 0);
                let now = chrono::Utc::now().timestamp();
                let text = match &published {
                    Some(summary) => summary.metrics(code, now),
                    None => pipeline::report::metrics_head(code, now, false),
                };
                write_metrics(path, &text)?;
            }
            result
        }
        Command::Diff(args) => {
            let copies;
            if let (Some(destination), Some(a), Some(b)) = (&args.delta, &args.a, &args.b) {
                let (a, b) = (fetched_tables(destination, a)?, fetched_tables(destination, b)?);
                let out =
                    args.out.clone().unwrap_or_else(|| Path::new("diffs").join(format!("delta-{}-to-{}", a.1, b.1)));
                let report = diff::diff(a.0.path(), b.0.path(), &out)?;
                print!("{}", report.render());
                return if report.differs() {
                    Err(Error::Findings("the table versions differ".into()))
                } else {
                    Ok(())
                };
            }
            let (a, b) = match (&args.previous, &args.a, &args.b) {
                (Some(out), _, _) => {
                    let out = fetched(&location(out)?, Some(2))?;
                    let pair = diff::previous_pair(out.path())?;
                    copies = vec![out];
                    pair
                }
                (None, Some(a), Some(b)) => {
                    let (a, b) = (fetched(&location(a)?, None)?, fetched(&location(b)?, None)?);
                    let pair = (a.path().to_path_buf(), b.path().to_path_buf());
                    copies = vec![a, b];
                    pair
                }
                _ => return Err(Error::Usage("diff needs two snapshots, or --previous OUTPUT_DIR".into())),
            };
            let from_store = copies.iter().any(|c| matches!(c, LocalCopy::Fetched { .. }));
            let out = args.out.clone().unwrap_or_else(|| {
                let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                // Snapshots downloaded from a store have no folder of their own to write beside.
                let parent = match from_store {
                    true => Path::new("."),
                    false => b.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")),
                };
                parent.join("diffs").join(format!("{}-to-{}", name(&a), name(&b)))
            });
            let report = diff::diff(&a, &b, &out)?;
            print!("{}", report.render());
            if report.differs() { Err(Error::Findings("the snapshots differ".into())) } else { Ok(()) }
        }
        Command::Verify { dir, public_key } => {
            let key = public_key
                .map(|path| pcrecon::sink::signature::PublicKey::load(&path))
                .transpose()
                .map_err(|e| Error::Usage(e.to_string()))?;
            let dir = fetched(&location(&dir)?, None)?;
            let verified = verify::verify(dir.path(), key.as_ref())?;
            print!("{}", verify::render(&verified));
            let problems: usize = verified.iter().map(|v| v.problems.len()).sum();
            if problems > 0 {
                Err(Error::Findings(format!("{problems} problems: see the lines above")))
            } else {
                Ok(())
            }
        }
        Command::Demo(args) => {
            // The demo reports in EUR with the rate table generated with the sample world.
            let world = sample_world()?;
            let normalize = pcrecon::config::NormalizeSettings {
                reporting_currency: pcrecon::model::money::Currency::Eur,
                rates: pcrecon::config::Rates::File(world.join("rates.csv")),
                rate_date: pcrecon::normalize::fx::RateDateRule::MonthEnd,
                rounding: pcrecon::model::money::RoundingMode::HalfEven,
            };
            let summary = pcrecon::demo::run(
                &world,
                &location(&args.out)?,
                &args.faults,
                Some(normalize),
                &pcrecon::clock::Clock::system(),
            )?;
            print_summary(&summary, args.summary, &Ok(()));
            Ok(())
        }
        Command::Emulator(EmulatorCommand::Generate(args)) => {
            let spec = args.world.spec().map_err(Error::Usage)?;
            let truth = world::generate(&spec, &args.out)?;
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
                (None, true) => cached_world(&args.generate.spec().map_err(Error::Usage)?)?,
                (None, false) => sample_world()?,
            };
            let settings = args.settings(world_dir).map_err(Error::Usage)?;
            Ok(server::run_blocking(settings)?)
        }
    }
}

/// On SIGTERM or SIGINT: a log line that says so, and the exit code of the signal. The process
/// stops where it is, as a kill would: what is half-written is in hidden staging folders that
/// nobody reads and the next run removes, and the output folder's lock is taken over by the next
/// run, so nothing needs tidying first.
fn stop_on_signals(progress: Arc<Progress>) {
    use tokio::signal::unix::{SignalKind, signal};
    let watch = move || -> Option<()> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().ok()?;
        let (name, exit) = runtime.block_on(async {
            let mut terminate = signal(SignalKind::terminate()).ok()?;
            let mut interrupt = signal(SignalKind::interrupt()).ok()?;
            tokio::select! {
                _ = terminate.recv() => Some(("SIGTERM", pcrecon::error::Exit::Terminated)),
                _ = interrupt.recv() => Some(("SIGINT", pcrecon::error::Exit::Interrupted)),
            }
        })?;
        progress.finish();
        tracing::error!(
            event = "interrupted",
            signal = name,
            "stopped by {name} before the run finished; a rerun completes it"
        );
        std::process::exit(i32::from(exit.code()))
    };
    if let Err(e) = std::thread::Builder::new().name("signals".into()).spawn(move || {
        watch();
    }) {
        tracing::warn!(event = "signals_not_watched", error = %e);
    }
}

/// Exit code 1 after publishing: rejected records always; mismatches, sequences not ready,
/// restated invoices and match exceptions as asked.
fn exit_for(summary: &RunSummary, fail_on: &[FailOn]) -> Result<(), Error> {
    let at = summary.snapshot.display();
    if let Some(error) = &summary.tables_failed {
        return Err(Error::Findings(format!(
            "published {at}, but its Delta tables were not committed (the next run commits its own snapshot): {}",
            pcrecon::redact::redact(&error.to_string())
        )));
    }
    let rejected = summary.rejected();
    if rejected > 0 {
        return Err(Error::Findings(format!("published with {rejected} rejected records: see rejects/ in {at}")));
    }
    let asked = |levels: &[FailOn]| fail_on.iter().any(|f| levels.contains(f));
    let mismatches = summary.mismatches();
    if mismatches > 0 && asked(&[FailOn::Mismatch, FailOn::Exception]) {
        return Err(Error::Findings(format!(
            "published with {mismatches} tie-out mismatches: see reconciliation/ in {at}"
        )));
    }
    let focus = summary.focus_mismatches();
    if focus > 0 && asked(&[FailOn::Mismatch, FailOn::Exception]) {
        return Err(Error::Findings(format!(
            "published with {focus} FOCUS tie-out mismatches: see reconciliation/ (kinds focus_invoice, focus_currency) in {at}"
        )));
    }
    let not_ready = summary.not_ready();
    if not_ready > 0 && asked(&[FailOn::NotReady, FailOn::Exception]) {
        return Err(Error::Findings(format!(
            "published without {not_ready} sequences the v2 export could not serve yet: see reconciliation/ (status not_ready) in {at}"
        )));
    }
    if !summary.restated.is_empty() && asked(&[FailOn::Restated]) {
        return Err(Error::Findings(format!(
            "published with {} invoices restated since {} ({}): see pcrecon diff --previous",
            summary.restated.len(),
            summary.previous.as_deref().unwrap_or("the previous snapshot"),
            summary.restated.join(", ")
        )));
    }
    let exceptions = summary.exceptions();
    if exceptions > 0 && asked(&[FailOn::Exception]) {
        return Err(Error::Findings(format!(
            "published with {exceptions} match exceptions: see match_exceptions/ in {at}"
        )));
    }
    Ok(())
}

/// `pcrecon run`: the dry run, or the run, its summary (kept in `published`) and its exit.
fn run_job(args: &RunArgs, progress: Arc<Progress>, published: &mut Option<RunSummary>) -> Result<(), Error> {
    // A rebuild from a raw archive calls nothing: it needs no secret.
    let mut settings = match args.from_raw {
        Some(_) => Settings::load_offline(&args.config)?,
        None => Settings::load(&args.config)?,
    };
    if let Some(out) = &args.out {
        settings.publish_to(location(out)?);
    }
    let raw = args.from_raw.as_deref().map(|raw| fetched(&location(raw)?, None)).transpose()?;
    if args.dry_run {
        let plan = pipeline::dry_run(&settings, args.refresh)?;
        print!("{}", plan.render());
        return Ok(());
    }
    let options = pipeline::RunOptions {
        keep_raw: args.keep_raw.clone(),
        refresh: args.refresh,
        from_raw: raw.as_ref().map(|r| r.path().to_path_buf()),
        progress: Some(progress),
        clock: pcrecon::clock::Clock::system(),
    };
    let summary = published.insert(pipeline::run(&settings, &options)?);
    let ended = exit_for(summary, &args.fail_on);
    print_summary(summary, args.summary, &ended);
    ended
}

/// Replaces `path` with `text` whole (written beside, then renamed): a collector never reads half
/// a file.
fn write_metrics(path: &Path, text: &str) -> Result<(), Error> {
    // Readable by the collector, as node_exporter's textfile directory expects.
    pcrecon::sink::staging::replace_file(path, text.as_bytes(), 0o644)
        .map_err(|source| Error::Io { path: path.to_path_buf(), source })
}

/// A destination or source as given on the command line: a folder or an object-store URL.
fn location(text: &str) -> Result<Location, Error> {
    Location::parse(text).map_err(Error::Usage)
}

/// A local folder holding `location`: itself, or a download of it (all of it, or `LATEST` and
/// the newest `n` snapshots of an output prefix).
fn fetched(location: &Location, newest: Option<usize>) -> Result<LocalCopy, Error> {
    let copy = match newest {
        Some(n) => LocalCopy::of_newest(location, n),
        None => LocalCopy::of(location),
    };
    copy.map_err(|e| Error::Run(pipeline::RunError::Store(e)))
}

/// The snapshot a version of a destination's Delta tables holds, rebuilt into a temporary
/// folder, with the version's text as given.
fn fetched_tables(destination: &str, at: &str) -> Result<(tempfile::TempDir, String), Error> {
    let store = match location(destination)? {
        Location::Local(dir) => Store::local(&dir),
        Location::Store(url) => Store::connect(&url),
    }
    .map_err(|e| Error::Run(pipeline::RunError::Store(e)))?;
    let dir = tempfile::tempdir().map_err(|source| Error::Io { path: std::env::temp_dir(), source })?;
    let rebuilt = delta::rebuild(&store, &delta::At::parse(at), dir.path())
        .map_err(|e| Error::Run(pipeline::RunError::Delta(e)))?;
    if rebuilt.versions.is_empty() {
        return Err(Error::Usage(format!("{destination} has no Delta table with version or run {at}")));
    }
    if !rebuilt.missing.is_empty() {
        tracing::warn!(event = "delta_tables_left_out", at, tables = %rebuilt.missing.join(", "));
    }
    Ok((dir, at.to_owned()))
}

/// The samples world: `./samples/world` when run from the repository, else the same world
/// generated from its seed (the generator is deterministic) into the temporary folder, once: an
/// installed binary runs the demo anywhere.
fn sample_world() -> Result<PathBuf, Error> {
    let here = Path::new("samples/world");
    if here.join("world.json").is_file() {
        return Ok(here.to_path_buf());
    }
    let spec = pcrecon::emulator::args::WorldArgs::samples().spec().map_err(Error::Usage)?;
    cached_world(&spec)
}

/// A generated world, cached under the temporary folder by the hash of its spec.
fn cached_world(spec: &world::WorldSpec) -> Result<PathBuf, Error> {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(spec.fingerprint().as_bytes());
    let name: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let dir = std::env::temp_dir().join(format!("pcrecon-world-{name}"));
    if !dir.join("truth.json").is_file() {
        world::generate(spec, &dir)?;
    }
    Ok(dir)
}
