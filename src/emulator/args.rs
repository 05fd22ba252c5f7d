//! The emulator's command line: the flags of `pcrecon emulator generate` and `serve` (clap
//! definitions), validated here into a [`WorldSpec`] and [`ServeSettings`]. The demo parses the
//! same flags, so that it serves with `serve`'s own defaults.
//!
//! In: arguments. Out: the world's and the server's settings, or what is wrong with them.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::NaiveDate;
use clap::Args;

use super::server::{ExportSettings, FaultSpec, ServeSettings};
use super::world::dice::Ppm;
use super::world::documents::NoteRates;
use super::world::{AnomalyRates, WorldSpec};
use crate::clock::Clock;

/// What world to generate. Every flag is optional so that `serve` can tell whether a world was
/// asked for; the defaults are applied by [`WorldArgs::spec`].
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct WorldArgs {
    /// Seed of every random draw [default: 7].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Number of customers [default: 12].
    #[arg(long)]
    pub customers: Option<usize>,
    /// Number of invoiced months [default: 3].
    #[arg(long)]
    pub months: Option<u32>,
    /// Daily rated usage rows per full month, across all customers [default: 2000].
    #[arg(long)]
    pub usage_rows_per_month: Option<u64>,
    /// The world's date (YYYY-MM-DD): unbilled data runs to the day before [default: 2025-03-05].
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
    /// Anomaly rates, `kind=probability,…` over the defaults, or `none`.
    #[arg(long)]
    pub anomalies: Option<String>,
    /// Probability of each wire quirk decision (numbers as strings, null vs missing, …) [default: 0.05].
    #[arg(long)]
    pub quirk_rate: Option<String>,
    /// Revision of the world: revision N restates N billed invoices of revision 0 (one licence
    /// line re-priced each, totals, statement and summaries following), as Microsoft does when
    /// it corrects a billed month [default: 0].
    #[arg(long)]
    pub revision: Option<u32>,
    /// Rates per new-commerce invoice of the documents that amend it, `kind=probability,…` over
    /// the defaults (`credit_note=0.15,adjustment_note=0.1,void_note=0.05`; a void note comes with
    /// a rebill), or `none`. The first month always has one of each kind whose rate is above zero.
    #[arg(long)]
    pub documents: Option<String>,
}

impl WorldArgs {
    /// Whether any generator flag was given.
    pub fn any(&self) -> bool {
        *self != WorldArgs::default()
    }

    /// The arguments of the bundled `samples/world` (README, Samples): the defaults with 800
    /// usage rows a month.
    pub fn samples() -> WorldArgs {
        WorldArgs { usage_rows_per_month: Some(800), ..WorldArgs::default() }
    }

    /// Validates the arguments into a world spec.
    pub fn spec(&self) -> Result<WorldSpec, String> {
        Ok(WorldSpec {
            seed: self.seed.unwrap_or(7),
            customers: self.customers.unwrap_or(12),
            months: self.months.unwrap_or(3),
            usage_rows_per_month: self.usage_rows_per_month.unwrap_or(2000),
            as_of: self.as_of.unwrap_or_else(WorldSpec::default_as_of),
            anomalies: AnomalyRates::parse(self.anomalies.as_deref().unwrap_or(""))?,
            quirk_rate: Ppm::parse(self.quirk_rate.as_deref().unwrap_or("0.05"))?,
            revision: self.revision.unwrap_or(0),
            notes: NoteRates::parse(self.documents.as_deref().unwrap_or(""))?,
        })
    }
}

/// `pcrecon emulator generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The world to make.
    #[command(flatten)]
    pub world: WorldArgs,
    /// Folder to write the world into (replaced atomically when complete).
    #[arg(long)]
    pub out: PathBuf,
}

/// `pcrecon emulator serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Serve this world folder. Without it, a world is generated from the generator flags (and
    /// cached); with neither, the bundled `samples/world` is served.
    // Every generator flag belongs to the group clap names after their struct.
    #[arg(long, conflicts_with = "WorldArgs")]
    pub world: Option<PathBuf>,
    /// Generator flags, used when no --world is given.
    #[command(flatten)]
    pub generate: WorldArgs,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Largest page the server returns (requests may ask for less).
    #[arg(long, default_value_t = 2000)]
    pub page_size: usize,
    /// Added latency per API request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Injected faults as per-request probabilities, e.g.
    /// `429=0.05,500=0.02,503=0.01,reset=0.005,truncate=0.005,slow=0.01,expired_continuation=0.01,expired_token=0.01,malformed_next=0.01`.
    #[arg(long, default_value = "")]
    pub faults: String,
    /// Seed of the fault draws.
    #[arg(long, default_value_t = 1)]
    pub fault_seed: u64,
    /// Delay of a `slow` fault, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    pub slow_ms: u64,
    /// Largest Retry-After a 429/503 fault announces, in seconds.
    #[arg(long, default_value_t = 2)]
    pub max_retry_after: u64,
    /// Write one JSON line per request to this file.
    #[arg(long)]
    pub request_log: Option<PathBuf>,
    /// Accept only this client id at the token endpoint.
    #[arg(long)]
    pub client_id: Option<String>,
    /// Accept only this client secret at the token endpoint (prefer PCRECON_EMULATOR_CLIENT_SECRET).
    #[arg(long, env = "PCRECON_EMULATOR_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub token_lifetime_secs: u64,
    /// The polling interval the device-code flow (`pcrecon auth login`) asks for, in seconds
    /// (Entra ID asks for 5).
    #[arg(long, default_value_t = 5)]
    pub device_poll_secs: u64,
    /// Lifetime of continuation tokens, in seconds.
    #[arg(long, default_value_t = 900)]
    pub continuation_ttl_secs: u64,
    /// Requests per minute allowed on customer, order and subscription resources (spec §7);
    /// 0 turns the limit off.
    #[arg(long, default_value_t = 0)]
    pub rate_limit_per_minute: u32,
    /// Refuse app-only tokens (403) where the documentation requires App+User: invoice by id,
    /// summaries, statements, entitlements.
    #[arg(long)]
    pub require_app_user: bool,
    /// Refuse, as Partner Center does since April 2025 and March 2026, the v1 new-commerce line
    /// items it moved to the v2 export: billed reconciliation of periods from February 2024,
    /// billed daily rated usage from September 2022, and all unbilled line items (410 Gone).
    #[arg(long)]
    pub v1_retired: bool,
    /// v2 export: polls an operation answers "not ready" before it succeeds.
    #[arg(long, default_value_t = 2)]
    pub export_polls: u32,
    /// v2 export: `Retry-After` seconds on operations that are not ready.
    #[arg(long, default_value_t = 1)]
    pub export_retry_after: u64,
    /// v2 export: lines per file.
    #[arg(long, default_value_t = 5000)]
    pub blob_lines: usize,
    /// v2 export: lifetime of a manifest's shared-access signature, in seconds.
    #[arg(long, default_value_t = 43200)]
    pub sas_ttl_secs: u64,
    /// v2 export: new-commerce invoices whose export has no data yet (code 5000), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub export_unavailable: Vec<String>,
    /// v2 export: what the manifest says of each file: `ga` (name and partitionValue only, as
    /// Microsoft's GA resource) or `with-counts` (also itemCount and sizeInBytes, as the sample
    /// model).
    #[arg(long, default_value = "ga", value_name = "ga|with-counts")]
    pub export_manifest: crate::emulator::server::ManifestCounts,
    /// v2 export: where a successful operation puts its manifest: `linked`
    /// (resourceLocation@odata.navigationLink) or `embedded` (the object under resourceLocation).
    #[arg(long, default_value = "linked", value_name = "linked|embedded")]
    pub export_manifest_location: crate::emulator::server::ManifestLocation,
    /// v2 export: the status of a successful operation: `succeeded` (the documentation's
    /// example) or `completed` (the resource's enumeration).
    #[arg(long, default_value = "succeeded", value_name = "succeeded|completed")]
    pub export_operation_status: crate::emulator::server::SuccessStatus,
    /// Refuse App+User tokens without an MFA claim (401, error 900421), as Partner Center does
    /// from April 2026. Refresh tokens carry the claim when the authorization code they were
    /// redeemed from starts with `mfa-` (an interactive sign-in that passed MFA).
    #[arg(long)]
    pub require_mfa: bool,
    /// Stand the server's clock still at this instant (RFC 3339) instead of reading the
    /// system's; it moves only when `POST /_emulator/clock/advance?secs=N` asks, so that token,
    /// continuation and signature lifetimes can be tested without waiting.
    #[arg(long)]
    pub fixed_clock: Option<chrono::DateTime<chrono::Utc>>,
}

impl ServeArgs {
    /// Validates the arguments into server settings (the world folder is resolved by the caller).
    pub fn settings(&self, world: PathBuf) -> Result<ServeSettings, String> {
        if self.page_size == 0 {
            return Err("--page-size must be at least 1".into());
        }
        Ok(ServeSettings {
            world,
            listen: self.listen,
            page_size: self.page_size,
            latency_ms: self.latency_ms,
            faults: FaultSpec::parse(&self.faults)?,
            fault_seed: self.fault_seed,
            slow_ms: self.slow_ms,
            max_retry_after: self.max_retry_after.max(1),
            request_log: self.request_log.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            token_lifetime_secs: self.token_lifetime_secs,
            device_poll_secs: self.device_poll_secs,
            continuation_ttl_secs: self.continuation_ttl_secs,
            rate_limit_per_minute: self.rate_limit_per_minute,
            require_app_user: self.require_app_user,
            v1_retired: self.v1_retired,
            require_mfa: self.require_mfa,
            clock: self.fixed_clock.map_or_else(Clock::system, Clock::fixed),
            export: ExportSettings {
                polls: self.export_polls,
                retry_after_secs: self.export_retry_after,
                blob_lines: self.blob_lines.max(1),
                sas_ttl_secs: self.sas_ttl_secs,
                unavailable: self.export_unavailable.clone(),
                manifest_counts: self.export_manifest,
                manifest_location: self.export_manifest_location,
                success_status: self.export_operation_status,
            },
        })
    }
}
