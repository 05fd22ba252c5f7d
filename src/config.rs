//! Configuration: a TOML file plus the environment (`PCRECON_*`), validated once at start into
//! [`Settings`]. Secrets are read here and nowhere else, and only ever held as [`SecretString`].
//!
//! ```toml
//! [api]
//! tenant_id = "11111111-2222-3333-4444-555555555555"
//! client_id = "66666666-7777-8888-9999-000000000000"
//! authority_url = "https://login.microsoftonline.com"     # default
//! base_url = "https://api.partnercenter.microsoft.com"    # default
//! graph_url = "https://graph.microsoft.com/v1.0"           # default: the v2 export (spec §12)
//! max_in_flight = 4                                        # default
//! client_secret_file = "/etc/pcrecon/client_secret"       # or PCRECON_CLIENT_SECRET
//! refresh_token_file = "/etc/pcrecon/refresh_token"       # optional App+User (or PCRECON_REFRESH_TOKEN)
//!
//! [output]
//! dir = "out"
//! csv_bom = false                                          # true: CSV starts with a BOM (Excel)
//! rejects = false                                          # true: bad records go to `rejects`, the run goes on
//! keep_unknown_fields = false                              # true: members no column reads kept as JSON
//! keep_snapshots = 10                                      # published snapshots kept (the newest two always)
//! keep_days = 90                                           # optional: also remove snapshots older than this
//! resume_within_hours = 12                                 # a killed run restarted within this resumes
//!
//! [normalize]                                            # optional
//! reporting_currency = "EUR"
//! rates_file = "rates.csv"                                 # date,from,to,rate
//! rate_date = "month_end"                                  # or "invoice_date", "charge_end"
//! rounding = "half_even"                                   # half_up, half_down, down, up, floor, ceiling
//!
//! [reconcile]                                            # optional
//! tolerance = { EUR = "0.02", JPY = "2" }                  # |stated − lines| up to this: within_tolerance
//!
//! [extract]
//! datasets = ["invoices", "billed_recon_line_items"]      # default: every dataset
//! invoice_ids = ["G000123456"]                             # default: every invoice in the date range
//! invoices_from = "2025-01-01"                             # invoice date, inclusive
//! invoices_to = "2025-03-31"
//! unbilled_periods = ["current", "previous"]               # default
//! api_version = "auto"                                     # or "v1", "v2", or per dataset:
//! # api_version = { billed_consumption_line_items = "v2", unbilled_recon_line_items = "v1" }
//!
//! [extract.v2]                                           # the v2 export on Microsoft Graph
//! recon_from = "2024-02"                                   # auto: billed recon of periods from here via v2
//! usage_from = "2022-09"                                   # auto: billed usage of periods from here via v2
//! attribute_set = "full"                                   # or "basic" (fewer columns filled)
//! export_timeout_secs = 3600                               # wall clock from POST to a ready manifest
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDate;
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use crate::model::v2::ExportKind;
use crate::sink::retention::Retention;
use crate::tabular::Dataset;

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("invalid config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong (never a secret: secrets are not in the file).
        message: String,
    },
    /// A value is not acceptable.
    #[error("invalid config: {0}")]
    Invalid(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    api: RawApi,
    #[serde(default)]
    output: RawOutput,
    #[serde(default)]
    extract: RawExtract,
    normalize: Option<RawNormalize>,
    #[serde(default)]
    reconcile: RawReconcile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReconcile {
    #[serde(default)]
    tolerance: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNormalize {
    reporting_currency: String,
    rates_file: PathBuf,
    #[serde(default)]
    rate_date: crate::normalize::fx::RateDateRule,
    #[serde(default)]
    rounding: crate::model::money::RoundingMode,
}

/// Conversion into the reporting currency.
#[derive(Debug, Clone)]
pub struct NormalizeSettings {
    /// The company's reporting currency.
    pub reporting_currency: crate::model::money::Currency,
    /// Rate table (`date,from,to,rate`).
    pub rates_file: PathBuf,
    /// Which day's rate converts a row.
    pub rate_date: crate::normalize::fx::RateDateRule,
    /// How converted amounts are rounded to minor units.
    pub rounding: crate::model::money::RoundingMode,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    tenant_id: String,
    client_id: String,
    authority_url: Option<String>,
    base_url: Option<String>,
    graph_url: Option<String>,
    max_in_flight: Option<usize>,
    client_secret_file: Option<PathBuf>,
    refresh_token_file: Option<PathBuf>,
    scope: Option<String>,
    request_timeout_secs: Option<u64>,
    max_retries: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    dir: Option<PathBuf>,
    csv_bom: Option<bool>,
    rejects: Option<bool>,
    keep_unknown_fields: Option<bool>,
    keep_snapshots: Option<usize>,
    keep_days: Option<u32>,
    resume_within_hours: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExtract {
    datasets: Option<Vec<String>>,
    invoice_ids: Option<Vec<String>>,
    invoices_from: Option<toml::Value>,
    invoices_to: Option<toml::Value>,
    unbilled_periods: Option<Vec<String>>,
    currencies: Option<Vec<String>>,
    api_version: Option<RawApiVersion>,
    v2: Option<RawV2>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawApiVersion {
    All(String),
    PerDataset(std::collections::BTreeMap<String, String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawV2 {
    recon_from: Option<String>,
    usage_from: Option<String>,
    attribute_set: Option<String>,
    export_timeout_secs: Option<u64>,
}

/// Which API serves a line-item dataset that both serve (spec §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// Legacy invoices and periods before the cut-over via v1, the rest via v2.
    Auto,
    /// Always the v1 line-item calls.
    V1,
    /// Always the v2 export (legacy invoices, which v2 does not serve, stay on v1).
    V2,
}

impl ApiVersion {
    fn parse(name: &str, text: &str) -> Result<ApiVersion, ConfigError> {
        match text {
            "auto" => Ok(ApiVersion::Auto),
            "v1" => Ok(ApiVersion::V1),
            "v2" => Ok(ApiVersion::V2),
            other => Err(ConfigError::Invalid(format!("{name}: {other:?} is not \"auto\", \"v1\" or \"v2\""))),
        }
    }
}

/// Microsoft Graph's root, where the v2 export is requested.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";

/// How the v2 export is used.
#[derive(Debug, Clone)]
pub struct V2Settings {
    /// Microsoft Graph root (`https://graph.microsoft.com/v1.0`).
    pub graph_url: Url,
    /// Under `auto`, billed reconciliation of billing periods from this month (`YYYY-MM`) on.
    pub recon_from: String,
    /// Under `auto`, billed daily rated usage of billing periods from this month on.
    pub usage_from: String,
    /// `full` or `basic`.
    pub attribute_set: &'static str,
    /// Longest wait, wall clock, from an export request to its manifest.
    pub export_timeout: Duration,
}

impl V2Settings {
    /// The documented defaults, with a Graph root.
    pub fn defaults(graph_url: Url) -> V2Settings {
        V2Settings {
            graph_url,
            recon_from: RECON_V2_FROM.into(),
            usage_from: USAGE_V2_FROM.into(),
            attribute_set: "full",
            export_timeout: Duration::from_secs(3600),
        }
    }
}

/// The first billing period whose new-commerce billed reconciliation v1 no longer serves
/// (retired on 21 April 2025): `auto` sends it to v2, and v1 is no fallback for it.
pub const RECON_V2_FROM: &str = "2024-02";

/// The first billing period whose billed daily rated usage v1 no longer serves.
pub const USAGE_V2_FROM: &str = "2022-09";

/// `auto` for every dataset both APIs serve.
pub fn auto_api_versions() -> std::collections::BTreeMap<Dataset, ApiVersion> {
    ExportKind::served().map(|d| (d, ApiVersion::Auto)).collect()
}

fn month(name: &str, value: Option<String>, default: &str) -> Result<String, ConfigError> {
    let text = value.unwrap_or_else(|| default.to_owned());
    let valid = text.len() == 7 && NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d").is_ok();
    if valid { Ok(text) } else { Err(ConfigError::Invalid(format!("{name}: {text:?} is not a month (YYYY-MM)"))) }
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
    /// Entra ID authority root.
    pub authority_url: Url,
    /// Partner Center API root.
    pub base_url: Url,
    /// Token scope of the client-credentials grant.
    pub scope: String,
    /// Requests in flight at most, across every dataset.
    pub max_in_flight: usize,
    /// Time limit of one request, body included.
    pub request_timeout: Duration,
    /// Retries of a transient failure before giving up.
    pub max_retries: u32,
}

impl ApiSettings {
    /// The token endpoint (`{authority}/{tenant}/oauth2/v2.0/token`).
    pub fn token_url(&self) -> Result<Url, ConfigError> {
        join(&self.authority_url, &format!("{}/oauth2/v2.0/token", self.tenant_id))
    }
}

/// What to extract.
#[derive(Debug, Clone)]
pub struct ExtractSettings {
    /// Datasets to extract.
    pub datasets: Vec<Dataset>,
    /// Only these billed invoices (empty: all in the date range).
    pub invoice_ids: Vec<String>,
    /// Invoices dated on or after.
    pub invoices_from: Option<NaiveDate>,
    /// Invoices dated on or before.
    pub invoices_to: Option<NaiveDate>,
    /// Unbilled periods (`current`, `previous`).
    pub unbilled_periods: Vec<&'static str>,
    /// Billing currencies for unbilled data (empty: those of the invoice summaries).
    pub currencies: Vec<String>,
    /// Which API serves each dataset both serve ([`ExportKind::served`]).
    pub api_version: std::collections::BTreeMap<Dataset, ApiVersion>,
    /// The v2 export.
    pub v2: V2Settings,
}

impl ExtractSettings {
    /// Whether a dataset is wanted.
    pub fn wants(&self, dataset: Dataset) -> bool {
        self.datasets.contains(&dataset)
    }

    /// Whether the run fetches only some of the partner's invoices (by id or invoice date), so
    /// that a currency's summary covers documents the run does not have.
    pub fn filters_invoices(&self) -> bool {
        !self.invoice_ids.is_empty() || self.invoices_from.is_some() || self.invoices_to.is_some()
    }

    /// Whether the v2 export serves a dataset: for billed data, of the billing period `period`
    /// (`YYYY-MM`, `None` when unknown). Legacy invoices never get here: v2 does not serve them.
    pub fn uses_v2(&self, dataset: Dataset, period: Option<&str>) -> bool {
        match self.api_version.get(&dataset) {
            None | Some(ApiVersion::V1) => false,
            Some(ApiVersion::V2) => true,
            Some(ApiVersion::Auto) => {
                let from = match dataset {
                    Dataset::BilledRecon => &self.v2.recon_from,
                    Dataset::BilledUsage => &self.v2.usage_from,
                    _ => return true,
                };
                period.is_none_or(|p| p >= from.as_str())
            }
        }
    }
}

/// The validated configuration of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// API access.
    pub api: ApiSettings,
    /// Output folder.
    pub output_dir: PathBuf,
    /// Start CSV files with a UTF-8 byte-order mark (for Excel).
    pub csv_bom: bool,
    /// Keep going past undecodable records, writing them to `rejects` (else the run fails).
    pub rejects: bool,
    /// Keep the members no column reads in each dataset's `unknown_fields` column.
    pub keep_unknown_fields: bool,
    /// Extraction scope.
    pub extract: ExtractSettings,
    /// Reporting-currency conversion (none: the conversion columns stay empty).
    pub normalize: Option<NormalizeSettings>,
    /// Largest tie-out difference per billing currency that is still `within_tolerance`.
    pub tolerance: std::collections::BTreeMap<String, rust_decimal::Decimal>,
    /// Which published snapshots stay.
    pub retention: Retention,
    /// How long after its start a killed run may be resumed from what it fetched.
    pub resume_within: Duration,
}

fn join(base: &Url, path: &str) -> Result<Url, ConfigError> {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    base.join(path).map_err(|e| ConfigError::Invalid(format!("cannot build a URL from {base} and {path}: {e}")))
}

/// HTTPS everywhere except to loopback.
fn checked_url(name: &str, text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|e| ConfigError::Invalid(format!("{name} {text:?} is not a URL: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => {
            Err(ConfigError::Invalid(format!("{name} must use https (plain http is allowed to loopback only): {text}")))
        }
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

/// A date written as a TOML date (`2025-01-01`) or a string (`"2025-01-01"`).
fn date(name: &str, value: Option<toml::Value>) -> Result<Option<NaiveDate>, ConfigError> {
    let text = match value {
        None => return Ok(None),
        Some(toml::Value::String(s)) => s,
        Some(toml::Value::Datetime(d)) => d.to_string(),
        Some(other) => return Err(ConfigError::Invalid(format!("{name} must be a date, not {}", other.type_str()))),
    };
    text.parse().map(Some).map_err(|_| ConfigError::Invalid(format!("{name} {text:?} is not a date (YYYY-MM-DD)")))
}

fn env_secret(var: &str) -> Option<SecretString> {
    std::env::var(var).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).map(SecretString::from)
}

impl Settings {
    /// Loads and validates a config file; secrets come from the environment or secret files.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let raw: RawConfig = toml::from_str(&text)
            .map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { base.join(p) };

        let client_secret = match (env_secret("PCRECON_CLIENT_SECRET"), &raw.api.client_secret_file) {
            (Some(s), _) => s,
            (None, Some(file)) => secret_file("client_secret_file", &resolve(file))?,
            (None, None) => {
                return Err(ConfigError::Invalid(
                    "no client secret: set PCRECON_CLIENT_SECRET or api.client_secret_file".into(),
                ));
            }
        };
        let refresh_token = match (env_secret("PCRECON_REFRESH_TOKEN"), &raw.api.refresh_token_file) {
            (Some(s), _) => Some(s),
            (None, Some(file)) => Some(secret_file("refresh_token_file", &resolve(file))?),
            (None, None) => None,
        };
        let max_in_flight = raw.api.max_in_flight.unwrap_or(4);
        if !(1..=64).contains(&max_in_flight) {
            return Err(ConfigError::Invalid(format!("api.max_in_flight must be 1 to 64, not {max_in_flight}")));
        }
        let datasets = match raw.extract.datasets {
            None => Dataset::selectable().collect(),
            Some(names) => names
                .iter()
                .map(|n| {
                    Dataset::from_name(n).filter(|d| d.is_selectable()).ok_or_else(|| {
                        let known: Vec<_> = Dataset::selectable().map(Dataset::name).collect();
                        ConfigError::Invalid(format!("unknown dataset {n:?} (known: {})", known.join(", ")))
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let unbilled_periods = match raw.extract.unbilled_periods {
            None => vec!["current", "previous"],
            Some(periods) => periods
                .iter()
                .map(|p| match p.as_str() {
                    "current" => Ok("current"),
                    "previous" => Ok("previous"),
                    other => Err(ConfigError::Invalid(format!("unknown unbilled period {other:?}"))),
                })
                .collect::<Result<_, _>>()?,
        };
        let api_version = ExportKind::served()
            .map(|d| {
                let chosen = match &raw.extract.api_version {
                    None => Ok(ApiVersion::Auto),
                    Some(RawApiVersion::All(text)) => ApiVersion::parse("extract.api_version", text),
                    Some(RawApiVersion::PerDataset(map)) => map
                        .get(d.name())
                        .map_or(Ok(ApiVersion::Auto), |t| ApiVersion::parse(&format!("extract.api_version.{d}"), t)),
                };
                chosen.map(|v| (d, v))
            })
            .collect::<Result<_, _>>()?;
        if let Some(RawApiVersion::PerDataset(map)) = &raw.extract.api_version
            && let Some(unknown) =
                map.keys().find(|k| Dataset::from_name(k).is_none_or(|d| ExportKind::of_dataset(d).is_none()))
        {
            let both: Vec<_> = ExportKind::served().map(Dataset::name).collect();
            return Err(ConfigError::Invalid(format!(
                "extract.api_version.{unknown}: only {} have two APIs",
                both.join(", ")
            )));
        }
        let raw_v2 = raw.extract.v2.unwrap_or_default();
        let graph_url = checked_url("api.graph_url", raw.api.graph_url.as_deref().unwrap_or(DEFAULT_GRAPH_URL))?;
        let defaults = V2Settings::defaults(graph_url);
        let v2 = V2Settings {
            recon_from: month("extract.v2.recon_from", raw_v2.recon_from, &defaults.recon_from)?,
            usage_from: month("extract.v2.usage_from", raw_v2.usage_from, &defaults.usage_from)?,
            attribute_set: match raw_v2.attribute_set.as_deref().unwrap_or(defaults.attribute_set) {
                "full" => "full",
                "basic" => "basic",
                other => {
                    return Err(ConfigError::Invalid(format!(
                        "extract.v2.attribute_set: {other:?} is not \"full\" or \"basic\""
                    )));
                }
            },
            export_timeout: raw_v2
                .export_timeout_secs
                .map_or(defaults.export_timeout, |s| Duration::from_secs(s.max(1))),
            ..defaults
        };
        let tenant_id = raw.api.tenant_id.trim().to_owned();
        if tenant_id.is_empty() || raw.api.client_id.trim().is_empty() {
            return Err(ConfigError::Invalid("api.tenant_id and api.client_id must not be empty".into()));
        }
        Ok(Settings {
            api: ApiSettings {
                tenant_id,
                client_id: raw.api.client_id.trim().to_owned(),
                client_secret,
                refresh_token,
                authority_url: checked_url(
                    "api.authority_url",
                    raw.api.authority_url.as_deref().unwrap_or("https://login.microsoftonline.com"),
                )?,
                base_url: checked_url(
                    "api.base_url",
                    raw.api.base_url.as_deref().unwrap_or("https://api.partnercenter.microsoft.com"),
                )?,
                scope: raw.api.scope.unwrap_or_else(|| "https://api.partnercenter.microsoft.com/.default".into()),
                max_in_flight,
                request_timeout: Duration::from_secs(raw.api.request_timeout_secs.unwrap_or(300).max(1)),
                max_retries: raw.api.max_retries.unwrap_or(8),
            },
            output_dir: resolve(&raw.output.dir.unwrap_or_else(|| PathBuf::from("out"))),
            csv_bom: raw.output.csv_bom.unwrap_or(false),
            rejects: raw.output.rejects.unwrap_or(false),
            keep_unknown_fields: raw.output.keep_unknown_fields.unwrap_or(false),
            retention: Retention {
                keep_snapshots: raw.output.keep_snapshots.unwrap_or(10).max(2),
                keep_days: raw.output.keep_days,
            },
            resume_within: Duration::from_secs(raw.output.resume_within_hours.unwrap_or(12) * 3600),
            tolerance: raw
                .reconcile
                .tolerance
                .iter()
                .map(|(currency, amount)| {
                    let value = amount.parse::<rust_decimal::Decimal>().ok().filter(|v| !v.is_sign_negative());
                    value.map(|v| (currency.to_uppercase(), v)).ok_or_else(|| {
                        ConfigError::Invalid(format!(
                            "reconcile.tolerance.{currency}: {amount:?} is not a non-negative decimal"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
            normalize: match raw.normalize {
                None => None,
                Some(n) => Some(NormalizeSettings {
                    reporting_currency: n
                        .reporting_currency
                        .parse()
                        .map_err(|e| ConfigError::Invalid(format!("normalize.reporting_currency: {e}")))?,
                    rates_file: resolve(&n.rates_file),
                    rate_date: n.rate_date,
                    rounding: n.rounding,
                }),
            },
            extract: ExtractSettings {
                datasets,
                invoice_ids: raw.extract.invoice_ids.unwrap_or_default(),
                invoices_from: date("extract.invoices_from", raw.extract.invoices_from)?,
                invoices_to: date("extract.invoices_to", raw.extract.invoices_to)?,
                unbilled_periods,
                currencies: raw.extract.currencies.unwrap_or_default().iter().map(|c| c.to_uppercase()).collect(),
                api_version,
                v2,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn a_minimal_config_gets_the_documented_defaults() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "secret", "s3cret\n", 0o600);
        let cfg = write(
            dir.path(),
            "c.toml",
            "[api]\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret_file = \"secret\"\n",
            0o644,
        );
        let s = Settings::load(&cfg).unwrap();
        assert_eq!(s.api.base_url.as_str(), "https://api.partnercenter.microsoft.com/");
        assert_eq!(s.api.token_url().unwrap().as_str(), "https://login.microsoftonline.com/t/oauth2/v2.0/token");
        assert_eq!(s.api.max_in_flight, 4);
        assert_eq!(s.api.client_secret.expose_secret(), "s3cret");
        assert_eq!(s.extract.datasets.len(), Dataset::selectable().count());
        assert_eq!(s.output_dir, dir.path().join("out"));
        assert_eq!(s.extract.v2.graph_url.as_str(), "https://graph.microsoft.com/v1.0");
        assert_eq!((s.extract.v2.recon_from.as_str(), s.extract.v2.usage_from.as_str()), ("2024-02", "2022-09"));
        assert!(s.extract.api_version.values().all(|v| *v == ApiVersion::Auto));
    }

    #[test]
    fn the_api_of_each_dataset_follows_its_setting_and_the_cut_over() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "secret", "s", 0o600);
        let load = |extract: &str| {
            let text = format!(
                "[api]\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret_file = \"secret\"\n[extract]\n{extract}\n"
            );
            Settings::load(&write(dir.path(), "c.toml", &text, 0o644))
        };
        let auto = load("").unwrap().extract;
        assert!(!auto.uses_v2(Dataset::BilledRecon, Some("2024-01")), "before the recon cut-over");
        assert!(auto.uses_v2(Dataset::BilledRecon, Some("2024-02")));
        assert!(auto.uses_v2(Dataset::BilledUsage, Some("2023-05")), "usage moved earlier");
        assert!(!auto.uses_v2(Dataset::BilledUsage, Some("2022-08")));
        assert!(auto.uses_v2(Dataset::UnbilledRecon, None), "unbilled data is v2's");
        assert!(auto.uses_v2(Dataset::BilledRecon, None), "an unknown period is a recent one");
        assert!(!auto.uses_v2(Dataset::LegacyOffice, None));
        let mixed = load("api_version = { billed_consumption_line_items = \"v1\", unbilled_recon_line_items = \"v2\" }\n[extract.v2]\nrecon_from = \"2025-06\"").unwrap().extract;
        assert!(!mixed.uses_v2(Dataset::BilledUsage, Some("2026-01")));
        assert!(!mixed.uses_v2(Dataset::BilledRecon, Some("2025-05")));
        assert!(mixed.uses_v2(Dataset::BilledRecon, Some("2025-06")));
        let v1 = load("api_version = \"v1\"").unwrap().extract;
        assert!(ExportKind::served().all(|d| !v1.uses_v2(d, None)));
        for (bad, says) in [
            ("api_version = \"v3\"", "not \"auto\""),
            ("api_version = { invoices = \"v2\" }", "only billed_recon_line_items"),
            ("[extract.v2]\nrecon_from = \"2024-13\"", "not a month"),
            ("[extract.v2]\nattribute_set = \"all\"", "\"full\" or \"basic\""),
        ] {
            let error = load(bad).unwrap_err().to_string();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }

    #[test]
    fn a_secret_file_readable_by_others_is_refused_without_showing_it() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "secret", "do-not-show", 0o644);
        let cfg = write(
            dir.path(),
            "c.toml",
            "[api]\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret_file = \"secret\"\n",
            0o644,
        );
        let err = Settings::load(&cfg).unwrap_err().to_string();
        assert!(err.contains("readable by group or others"), "{err}");
        assert!(!err.contains("do-not-show"));
    }

    #[test]
    fn plain_http_is_allowed_to_loopback_only() {
        assert!(checked_url("x", "http://127.0.0.1:8080").is_ok());
        assert!(checked_url("x", "http://localhost:8080").is_ok());
        assert!(checked_url("x", "http://[::1]:8080").is_ok());
        assert!(checked_url("x", "http://api.partnercenter.microsoft.com").is_err());
        assert!(checked_url("x", "https://api.partnercenter.microsoft.com").is_ok());
        assert!(checked_url("x", "ftp://127.0.0.1").is_err());
    }

    #[test]
    fn the_sample_config_loads_once_a_secret_file_is_named() {
        let sample =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/pcrecon.toml")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "s", "x", 0o600);
        let text =
            sample.replace("# client_secret_file = \"/etc/pcrecon/client_secret\"", "client_secret_file = \"s\"");
        let s = Settings::load(&write(dir.path(), "c.toml", &text, 0o644)).unwrap();
        assert_eq!(s.api.max_in_flight, 4);
        assert_eq!(s.extract.unbilled_periods, ["current", "previous"]);
        assert!(!s.csv_bom);
    }

    #[test]
    fn unknown_keys_and_datasets_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "secret", "s", 0o600);
        let cfg = write(
            dir.path(),
            "c.toml",
            "[api]\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret_file = \"secret\"\nbase_uri = \"x\"\n",
            0o644,
        );
        assert!(Settings::load(&cfg).unwrap_err().to_string().contains("base_uri"));
        let cfg = write(
            dir.path(),
            "d.toml",
            "[api]\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret_file = \"secret\"\n[extract]\ndatasets = [\"nope\"]\n",
            0o644,
        );
        assert!(Settings::load(&cfg).unwrap_err().to_string().contains("unknown dataset"));
    }
}
