//! Configuration: a TOML file plus the environment (`PCRECON_*`), validated once at start into
//! [`Settings`], one conversion per section (`api`, `output`, `extract`, `money` for
//! `[normalize]` and `[reconcile]`), each with its defaults as named constants. Secrets are read
//! here and nowhere else, and only ever held as `SecretString`.
//!
//! ```toml
//! [api]
//! tenant_id = "11111111-2222-3333-4444-555555555555"
//! client_id = "66666666-7777-8888-9999-000000000000"
//! authority_url = "https://login.microsoftonline.com"     # default; base_url for an emulator on loopback
//! base_url = "https://api.partnercenter.microsoft.com"    # default
//! graph_url = "https://graph.microsoft.com/v1.0"           # default: the v2 export (spec §12); <base_url>/v1.0 for an emulator
//! partner_api_url = "https://api.partner.microsoft.com"    # default: the pricing API (fxrates); <base_url>/partner for an emulator
//! max_in_flight = 4                                        # default
//! client_secret_file = "/etc/pcrecon/client_secret"       # or PCRECON_CLIENT_SECRET
//! refresh_token_file = "/etc/pcrecon/refresh_token"       # optional App+User (or PCRECON_REFRESH_TOKEN)
//!
//! [output]
//! dir = "out"                                             # or az://container/prefix, abfss://…, s3://bucket/prefix, gs://…
//! cache_dir = "pcrecon-cache"                              # object-store dir only: page cache and staging, a folder per destination
//! lock_expiry_hours = 6                                    # object-store dir only: a dead run's lock expires
//! delta = false                                            # true: also a Delta Lake table per dataset in <dir>/delta/
//! formats = ["parquet", "csv"]                             # or ["parquet"]: no CSV copy
//! csv_compression = "none"                                 # or "gzip": csv/…/part-*.csv.gz
//! csv_bom = false                                          # true: CSV starts with a BOM (Excel)
//! csv_delimiter = ","                                      # or ";", "\t", "|"
//! csv_decimal_separator = "."                              # or "," (with another delimiter)
//! rejects = false                                          # true: bad records go to `rejects`, the run goes on
//! keep_unknown_fields = false                              # true: members no column reads kept as JSON
//! keep_snapshots = 10                                      # published snapshots kept (the newest two always)
//! keep_days = 90                                           # optional: also remove snapshots older than this
//! resume_within_hours = 12                                 # a killed run restarted within this resumes
//! signing_key_file = "/etc/pcrecon/manifest.key"           # optional: minisign key signing each manifest
//!
//! [normalize]                                            # optional
//! reporting_currency = "EUR"
//! rates_file = "rates.csv"                                 # date,from,to,rate
//! # rate_source = "partner_center"                         # instead: Partner Center's monthly fxrates (App+User)
//! rate_date = "month_end"                                  # or "invoice_date", "charge_end"
//! rounding = "half_even"                                   # half_up, half_down, down, up, floor, ceiling
//!
//! [reconcile]                                            # optional
//! tolerance = { EUR = "0.02", JPY = "2" }                  # |stated − lines| up to this: within_tolerance
//!
//! [rebill]                                               # optional
//! markup_file = "markup.csv"                               # customer,product,percent[,fee]; * for any
//! rounding = "half_even"                                   # the resale amount, once per row
//! statements = false                                       # true: statements/<customer>/<period>.csv
//!
//! [focus]                                                # optional
//! billing_account_name = "Contoso CSP"                     # BillingAccountName of the focus rows (default: null)
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

mod api;
mod extract;
mod money;
mod output;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

pub use api::*;
pub use extract::*;
pub use money::{FocusSettings, NormalizeSettings, Rates, RebillSettings};
pub use output::{
    DEFAULT_CACHE_DIR, DEFAULT_KEEP_SNAPSHOTS, DEFAULT_LOCK_EXPIRY_HOURS, DEFAULT_OUTPUT_DIR,
    DEFAULT_RESUME_WITHIN_HOURS, MIN_KEEP_SNAPSHOTS,
};

use crate::sink::retention::Retention;

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
        /// What is wrong (redacted: a secret written inline is not quoted).
        message: String,
    },
    /// A value is not acceptable.
    #[error("invalid config: {0}")]
    Invalid(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    api: api::RawApi,
    #[serde(default)]
    output: output::RawOutput,
    #[serde(default)]
    extract: extract::RawExtract,
    normalize: Option<money::RawNormalize>,
    #[serde(default)]
    reconcile: money::RawReconcile,
    rebill: Option<money::RawRebill>,
    #[serde(default)]
    focus: money::RawFocus,
}

/// The validated configuration of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// API access.
    pub api: ApiSettings,
    /// The local output folder: the destination itself, or for an object-store destination
    /// (`store`) the folder that holds its page cache and staged snapshots (`[output] cache_dir`).
    pub output_dir: PathBuf,
    /// The object-store prefix snapshots are published to (none: `output_dir` is the destination).
    pub store: Option<crate::sink::store::StoreUrl>,
    /// Where object-store destinations work locally, one folder per destination (`[output] cache_dir`).
    pub cache_dir: PathBuf,
    /// How long an object-store lock holds before another run may take it over.
    pub lock_expiry: Duration,
    /// Also commit every dataset to its Delta Lake table under `<destination>/delta/`.
    pub delta: bool,
    /// How CSV files are written (byte-order mark, delimiter, decimal separator, gzip), or
    /// none when `[output] formats` leaves CSV out.
    pub csv: Option<crate::sink::writer::CsvFormat>,
    /// Keep going past undecodable records, writing them to `rejects` (else the run fails).
    pub rejects: bool,
    /// Keep the members no column reads in each dataset's `unknown_fields` column.
    pub keep_unknown_fields: bool,
    /// Extraction scope.
    pub extract: ExtractSettings,
    /// Reporting-currency conversion (none: the conversion columns stay empty).
    pub normalize: Option<NormalizeSettings>,
    /// Re-billing: the markup of `customer_charges` (none: no resale amounts).
    pub rebill: Option<RebillSettings>,
    /// The `focus` dataset's billing account name.
    pub focus: FocusSettings,
    /// Largest tie-out difference per billing currency that is still `within_tolerance`.
    pub tolerance: std::collections::BTreeMap<String, rust_decimal::Decimal>,
    /// Which published snapshots stay.
    pub retention: Retention,
    /// How long after its start a killed run may be resumed from what it fetched.
    pub resume_within: Duration,
    /// A minisign secret key that signs each manifest (none: manifests are not signed).
    pub signing_key_file: Option<std::path::PathBuf>,
}

fn join(base: &Url, path: &str) -> Result<Url, ConfigError> {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    base.join(path).map_err(|e| ConfigError::Invalid(format!("cannot build a URL from {base} and {path}: {e}")))
}

/// Whether a URL names this machine (an emulator, in practice).
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// HTTPS everywhere except to loopback.
fn checked_url(name: &str, text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|e| ConfigError::Invalid(format!("{name} {text:?} is not a URL: {e}")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        _ => {
            Err(ConfigError::Invalid(format!("{name} must use https (plain http is allowed to loopback only): {text}")))
        }
    }
}

impl Settings {
    /// Publishes to `location` instead of `[output] dir` (`--out`): a folder, or an object-store
    /// prefix worked on from `cache_dir`.
    pub fn publish_to(&mut self, location: crate::sink::store::Location) {
        match location {
            crate::sink::store::Location::Local(dir) => {
                self.output_dir = dir;
                self.store = None;
            }
            crate::sink::store::Location::Store(url) => {
                self.output_dir = self.cache_dir.join(url.folder_name());
                self.store = Some(url);
            }
        }
    }

    /// Loads and validates a config file; secrets come from the environment or secret files.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        Settings::load_for(path, Secrets::Required)
    }

    /// Loads and validates a config file for a run that calls nothing (a rebuild from a raw
    /// archive): the client secret may be absent.
    pub fn load_offline(path: &Path) -> Result<Settings, ConfigError> {
        Settings::load_for(path, Secrets::NotNeeded)
    }

    /// The settings `pcrecon auth login` needs: no client secret (the device-code sign-in is a
    /// public-client flow), and the refresh token file it is about to write may not exist yet.
    pub fn load_for_login(path: &Path) -> Result<Settings, ConfigError> {
        Settings::load_for(path, Secrets::Login)
    }

    fn load_for(path: &Path, secrets: Secrets) -> Result<Settings, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        // A TOML error quotes the offending line, which may hold a secret someone put inline.
        let raw: RawConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: crate::redact::redact(&e.to_string()).into_owned(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
        let graph_text = raw.api.graph_url.clone();
        let api = raw.api.settings(resolve, secrets)?;
        // An emulator serves the Graph export beside Partner Center: a config that points
        // `base_url` at one cannot half-work by sending the export to Microsoft.
        let graph_url = match graph_text {
            Some(text) => checked_url("api.graph_url", &text)?,
            None if is_loopback(&api.base_url) => join(&api.base_url, "v1.0")?,
            None => checked_url("api.graph_url", DEFAULT_GRAPH_URL)?,
        };
        let mut extract = raw.extract.settings(graph_url)?;
        let output = raw.output.settings(resolve)?;
        let normalize = raw.normalize.map(|n| n.settings(resolve)).transpose()?;
        if normalize.as_ref().is_some_and(|n| n.rates == Rates::PartnerCenter) {
            extract.partner_center_rates = Some(api.partner_api_url.clone());
        }
        Ok(Settings {
            api,
            output_dir: output.dir,
            store: output.store,
            cache_dir: output.cache_dir,
            lock_expiry: output.lock_expiry,
            delta: output.delta,
            csv: output.csv,
            rejects: output.rejects,
            keep_unknown_fields: output.keep_unknown_fields,
            retention: output.retention,
            resume_within: output.resume_within,
            signing_key_file: output.signing_key_file,
            tolerance: raw.reconcile.tolerance()?,
            normalize,
            rebill: raw.rebill.map(|r| r.settings(resolve)),
            focus: raw.focus.settings(),
            extract,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::v2::ExportKind;
    use crate::tabular::Dataset;
    use secrecy::ExposeSecret;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn a_config_pointing_base_url_at_an_emulator_gets_its_token_and_graph_urls_too() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "secret", "s3cret\n", 0o600);
        let text = "[api]\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret_file = \"secret\"\nbase_url = \"http://127.0.0.1:4242\"\n";
        let s = Settings::load(&write(dir.path(), "c.toml", text, 0o644)).unwrap();
        assert_eq!(s.extract.v2.graph_url.as_str(), "http://127.0.0.1:4242/v1.0");
        assert_eq!(s.api.token_url().unwrap().as_str(), "http://127.0.0.1:4242/t/oauth2/v2.0/token");
        let given = format!("{text}graph_url = \"https://graph.microsoft.com/v1.0\"\n");
        let s = Settings::load(&write(dir.path(), "d.toml", &given, 0o644)).unwrap();
        assert_eq!(s.extract.v2.graph_url.as_str(), "https://graph.microsoft.com/v1.0", "a given URL stays");
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
    fn a_csv_delimiter_or_decimal_separator_that_cannot_be_read_back_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "secret", "s", 0o600);
        let head = "[api]\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret_file = \"secret\"\n[output]\n";
        let load = |lines: &str| {
            let cfg = write(dir.path(), "c.toml", &format!("{head}{lines}"), 0o644);
            Settings::load(&cfg)
        };
        let s = load("csv_delimiter = \";\"\ncsv_decimal_separator = \",\"\n").unwrap();
        let csv = s.csv.unwrap();
        assert_eq!((csv.delimiter, csv.decimal_separator), (';', ','));
        let s = load("formats = [\"parquet\"]\n").unwrap();
        assert_eq!(s.csv, None, "CSV left out");
        let s = load("csv_compression = \"gzip\"\n").unwrap();
        assert_eq!(s.csv.unwrap().compression, crate::sink::writer::CsvCompression::Gzip);
        for (lines, says) in [
            ("csv_decimal_separator = \",\"\n", "both ','"),
            ("csv_delimiter = \"::\"\n", "output.csv_delimiter"),
            ("csv_decimal_separator = \"'\"\n", "output.csv_decimal_separator"),
            ("formats = [\"csv\"]\n", "must include \"parquet\""),
            ("formats = [\"xlsx\"]\n", "unknown variant"),
            ("csv_compression = \"zip\"\n", "unknown variant"),
        ] {
            let err = load(lines).unwrap_err().to_string();
            assert!(err.contains(says), "{lines}: {err}");
        }
    }

    #[test]
    fn a_toml_error_on_an_inline_secret_does_not_quote_it() {
        let dir = tempfile::tempdir().unwrap();
        let head = "[api]\ntenant_id = \"t\"\nclient_id = \"c\"\n";
        for (what, line, says) in [
            ("text after the value", "client_secret = \"s3cr3t-XYZ\" oops\n", "line 4"),
            ("a missing closing quote", "client_secret = \"s3cr3t-XYZ\nbase_url = \"x\"\n", "line 4"),
            ("a duplicate key", "refresh_token = 's3cr3t-XYZ'\nrefresh_token = 's3cr3t-XYZ'\n", "duplicate"),
            ("a key pcrecon does not know", "client_secret = \"s3cr3t-XYZ\"\n", "client_secret"),
        ] {
            let cfg = write(dir.path(), "c.toml", &format!("{head}{line}"), 0o644);
            let err = Settings::load(&cfg).unwrap_err();
            assert!(matches!(err, ConfigError::Parse { .. }), "{what}: {err}");
            let text = err.to_string();
            assert!(!text.contains("s3cr3t"), "{what}: {text}");
            assert!(text.contains(says), "{what}: {text}");
        }
    }

    #[test]
    fn rates_come_from_a_table_or_from_partner_center_never_both() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "secret", "s", 0o600);
        let head = "[api]\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret_file = \"secret\"\nbase_url = \"http://127.0.0.1:9\"\n[normalize]\nreporting_currency = \"EUR\"\n";
        let load = |lines: &str| Settings::load(&write(dir.path(), "c.toml", &format!("{head}{lines}"), 0o644));
        let s = load("rate_source = \"partner_center\"\n").unwrap();
        assert_eq!(s.normalize.unwrap().rates, Rates::PartnerCenter);
        assert_eq!(
            s.extract.partner_center_rates.unwrap().as_str(),
            "http://127.0.0.1:9/partner",
            "an emulator serves it"
        );
        let s = load("rates_file = \"r.csv\"\n").unwrap();
        assert!(matches!(s.normalize.unwrap().rates, Rates::File(p) if p.ends_with("r.csv")));
        assert_eq!(s.extract.partner_center_rates, None);
        assert!(load("").unwrap_err().to_string().contains("normalize.rates_file is missing"));
        let both = load("rates_file = \"r.csv\"\nrate_source = \"partner_center\"\n").unwrap_err().to_string();
        assert!(both.contains("exclude each other"), "{both}");
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
        assert_eq!(s.csv, Some(crate::sink::writer::CsvFormat::default()));
        // Its recipe for an emulator, base_url alone, sends nothing to Microsoft.
        let emulated = text.replace("https://api.partnercenter.microsoft.com", "http://127.0.0.1:9");
        let s = Settings::load(&write(dir.path(), "e.toml", &emulated, 0o644)).unwrap();
        assert!(s.extract.v2.graph_url.as_str().starts_with("http://127.0.0.1:9/"));
        assert!(s.api.token_url().unwrap().as_str().starts_with("http://127.0.0.1:9/"));
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
