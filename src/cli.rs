//! The command line: clap definitions of pcrecon's subcommands, turned into validated settings
//! by the modules that own them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::emulator::args::{GenerateArgs, ServeArgs};

/// Reconciles Microsoft Partner Center (CSP) billing into exact, typed Parquet and CSV.
#[derive(Debug, Parser)]
#[command(name = "pcrecon", version, about, long_about = None, after_help = crate::error::Exit::help())]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
// Parsed once per process: the size of the emulator's many flags does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// The nightly job: extract, write every dataset as Parquet and CSV, publish a snapshot.
    Run(RunArgs),
    /// Run the job on the bundled samples, against the emulator started in this process.
    Demo(DemoArgs),
    /// Extract every dataset in scope from the API into JSON lines (one file per sequence).
    Extract(ExtractArgs),
    /// The local Partner Center emulator: generate a world, or serve one over HTTP.
    #[command(subcommand)]
    Emulator(EmulatorCommand),
    /// Compare two published snapshots row by row (by `row_key`): rows added, removed and
    /// changed, and the change of the control totals.
    Diff(DiffArgs),
    /// Re-hash every file of a snapshot (or of every snapshot of an output folder) against its
    /// manifest.json; list missing, altered and extra files.
    Verify {
        /// A snapshot folder, an output folder, or a raw archive (`--keep-raw`); or the URL of
        /// one in an object store (`az://…`, `s3://…`, `gs://…`), downloaded first.
        dir: String,
        /// A minisign public key: each manifest's signature (`manifest.json.minisig`) must be
        /// valid for it.
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
    /// Write the output dataset schemas (`<dataset>.json` and a README) into a folder.
    Schemas {
        /// Folder to write into.
        #[arg(long, default_value = "schemas")]
        out: PathBuf,
    },
    /// Print a shell completion script: `pcrecon completions bash > /etc/bash_completion.d/pcrecon`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `pcrecon man > /usr/local/share/man/man1/pcrecon.1`.
    Man,
    /// Sign in for the App+User refresh token, and check what the credentials can do.
    #[command(subcommand)]
    Auth(AuthCommand),
}

/// `pcrecon auth`.
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Sign in with the device code flow (a browser, MFA) and write the App+User refresh token
    /// to `api.refresh_token_file`, owner-only.
    Login {
        /// Configuration file (TOML): `[api]` with `tenant_id`, `client_id` and `refresh_token_file`.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Try one read-only call per kind of token (app-only, Graph, App+User) and say which work.
    Check {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
}

/// How `run` and `demo` print their summary on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SummaryFormat {
    /// A table on a terminal, one JSON document otherwise.
    Auto,
    /// The table.
    Text,
    /// One JSON document.
    Json,
}

/// The summary flags of `run` and `demo`.
#[derive(Debug, Clone, Copy, Args)]
pub struct SummaryArgs {
    /// The summary on stdout: a table on a terminal, one JSON document when stdout is not one
    /// (cron, a pipe), or as asked.
    #[arg(long, value_enum, default_value = "auto")]
    pub summary: SummaryFormat,
    /// No summary on stdout (the logs on stderr still say how the run ended).
    #[arg(long, short, conflicts_with = "summary")]
    pub quiet: bool,
}

/// `pcrecon run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Configuration file (TOML); secrets come from the environment or secret files.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Also archive every raw page (gzip) with its request metadata into this folder.
    #[arg(long)]
    pub keep_raw: Option<PathBuf>,
    /// Exit with 1 (after publishing) on tie-out mismatches, on sequences the v2 export could not
    /// serve yet (`not_ready`), on any finding (`exception`: a mismatch, a match exception, a
    /// sequence not ready), on invoices restated since the previous snapshot (`restated`), or
    /// never; several may be given, comma-separated. Rejected records always exit with 1.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "never")]
    pub fail_on: Vec<FailOn>,
    /// Fetch billed invoices again even when an earlier run published them unchanged.
    #[arg(long)]
    pub refresh: bool,
    /// Also write the run's metrics (rows, control totals, findings, requests, throttling,
    /// duration, exit code) in Prometheus text format to this file, replaced whole, for
    /// node_exporter's textfile collector (`--metrics /var/lib/node_exporter/pcrecon.prom`).
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// Print the plan (datasets, invoices, requests, output files, what the cache supplies)
    /// after discovery, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Rebuild the snapshot from a `--keep-raw` archive instead of calling the API: the same
    /// bytes as the run that made the archive.
    /// The archive may be in an object store (a URL), downloaded first.
    #[arg(long, value_name = "RAWDIR", conflicts_with_all = ["keep_raw", "dry_run", "refresh"])]
    pub from_raw: Option<String>,
    /// Publish into this output folder or object-store prefix (`az://…`, `s3://…`, `gs://…`)
    /// instead of `[output] dir`: an auditor's rebuild with `--from-raw` leaves the operator's
    /// folder, its `LATEST` and its cache untouched.
    #[arg(long, value_name = "DIR|URL")]
    pub out: Option<String>,
    /// The summary.
    #[command(flatten)]
    pub summary: SummaryArgs,
}

/// `pcrecon diff`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["a", "previous"])))]
pub struct DiffArgs {
    /// The earlier snapshot folder (or its object-store URL).
    #[arg(requires = "b")]
    pub a: Option<String>,
    /// The later snapshot folder (or its object-store URL).
    pub b: Option<String>,
    /// Compare the last two snapshots of this output folder or object-store prefix (the one
    /// before LATEST, and LATEST).
    #[arg(long, value_name = "OUTPUT_DIR|URL", conflicts_with_all = ["a", "b"])]
    pub previous: Option<String>,
    /// Compare two versions of the Delta tables of this destination (`[output] delta = true`):
    /// A and B are then table versions (`3`) or the run ids that committed them.
    #[arg(long, value_name = "OUTPUT_DIR|URL", requires = "a", conflicts_with = "previous")]
    pub delta: Option<String>,
    /// Where to write diff_changes and diff_totals [default: `diffs/A-to-B` beside B].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// When a published run still exits with 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// A tie-out mismatch.
    Mismatch,
    /// A sequence the v2 export could not serve yet (`not_ready` in `reconciliation`).
    #[value(name = "not_ready")]
    NotReady,
    /// A mismatch, a match exception or a sequence not ready.
    Exception,
    /// An invoice whose content differs from the previous snapshot's.
    Restated,
    /// Only rejected records (which mean data was left out).
    Never,
}

/// `pcrecon demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Output folder, or an object-store prefix (`az://…`, `s3://…`, `gs://…`; credentials from
    /// the environment, local work in `./pcrecon-cache`).
    #[arg(long, default_value = "pcrecon-demo", value_name = "DIR|URL")]
    pub out: String,
    /// Faults for the emulator to inject (same syntax as `emulator serve --faults`).
    #[arg(long, default_value = "")]
    pub faults: String,
    /// The summary.
    #[command(flatten)]
    pub summary: SummaryArgs,
}

/// `pcrecon extract`.
#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// Configuration file (TOML). The client secret comes from PCRECON_CLIENT_SECRET or the
    /// file named by `api.client_secret_file`, never from the command line.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Folder to publish the extraction into [default: <output.dir>/extract].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also archive every raw page (gzip) with its request metadata into this folder.
    #[arg(long)]
    pub keep_raw: Option<PathBuf>,
}

/// Emulator subcommands.
#[derive(Debug, Subcommand)]
pub enum EmulatorCommand {
    /// Generate a seeded world (same arguments, byte-identical files) with its truth.json.
    Generate(GenerateArgs),
    /// Serve a world over HTTP on loopback, speaking the Partner Center API.
    Serve(Box<ServeArgs>),
}
