//! The `[extract]` section and its `[extract.v2]` table: which datasets, invoices, unbilled
//! periods and currencies a run covers, and which API serves each dataset both serve — with the
//! cut-over months of the v2 export, its attribute set and how long to wait for it.
//!
//! In: the section as parsed, and the Graph root from `[api]`. Out: [`ExtractSettings`]. It
//! knows the dataset names only through [`Dataset`] and the v2 routing only through
//! [`ExportKind`].

use std::time::Duration;

use chrono::NaiveDate;
use serde::Deserialize;
use url::Url;

use super::ConfigError;
use crate::model::v2::ExportKind;
use crate::tabular::Dataset;

/// The unbilled periods a run covers by default (both Partner Center serves).
pub const DEFAULT_UNBILLED_PERIODS: [&str; 2] = ["current", "previous"];
/// The v2 export's attribute set, by default.
pub const DEFAULT_ATTRIBUTE_SET: &str = "full";
/// Longest wait for a v2 export, by default.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(3600);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExtract {
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
    /// The name used in configuration and in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            ApiVersion::Auto => "auto",
            ApiVersion::V1 => "v1",
            ApiVersion::V2 => "v2",
        }
    }

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
            attribute_set: DEFAULT_ATTRIBUTE_SET,
            export_timeout: DEFAULT_EXPORT_TIMEOUT,
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
    /// The pricing API root to fetch Partner Center's monthly exchange rates from, when
    /// `[normalize] rate_source = "partner_center"`.
    pub partner_center_rates: Option<url::Url>,
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

impl RawExtract {
    /// The validated section; the v2 export is asked for under `graph_url`.
    pub(super) fn settings(self, graph_url: Url) -> Result<ExtractSettings, ConfigError> {
        let datasets = match self.datasets {
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
        let unbilled_periods = match self.unbilled_periods {
            None => DEFAULT_UNBILLED_PERIODS.to_vec(),
            Some(periods) => periods
                .iter()
                .map(|p| {
                    DEFAULT_UNBILLED_PERIODS
                        .into_iter()
                        .find(|known| known == p)
                        .ok_or_else(|| ConfigError::Invalid(format!("unknown unbilled period {p:?}")))
                })
                .collect::<Result<_, _>>()?,
        };
        let api_version = ExportKind::served()
            .map(|d| {
                let chosen = match &self.api_version {
                    None => Ok(ApiVersion::Auto),
                    Some(RawApiVersion::All(text)) => ApiVersion::parse("extract.api_version", text),
                    Some(RawApiVersion::PerDataset(map)) => map
                        .get(d.name())
                        .map_or(Ok(ApiVersion::Auto), |t| ApiVersion::parse(&format!("extract.api_version.{d}"), t)),
                };
                chosen.map(|v| (d, v))
            })
            .collect::<Result<_, _>>()?;
        if let Some(RawApiVersion::PerDataset(map)) = &self.api_version
            && let Some(unknown) =
                map.keys().find(|k| Dataset::from_name(k).is_none_or(|d| ExportKind::of_dataset(d).is_none()))
        {
            let both: Vec<_> = ExportKind::served().map(Dataset::name).collect();
            return Err(ConfigError::Invalid(format!(
                "extract.api_version.{unknown}: only {} have two APIs",
                both.join(", ")
            )));
        }
        let raw_v2 = self.v2.unwrap_or_default();
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
        let invoices_from = date("extract.invoices_from", self.invoices_from)?;
        let invoices_to = date("extract.invoices_to", self.invoices_to)?;
        if let (Some(from), Some(to)) = (invoices_from, invoices_to)
            && from > to
        {
            return Err(ConfigError::Invalid(format!(
                "extract.invoices_from ({from}) is after extract.invoices_to ({to}): no invoice could be in range"
            )));
        }
        Ok(ExtractSettings {
            datasets,
            invoice_ids: self.invoice_ids.unwrap_or_default(),
            invoices_from,
            invoices_to,
            unbilled_periods,
            currencies: self.currencies.unwrap_or_default().iter().map(|c| c.to_uppercase()).collect(),
            api_version,
            v2,
            partner_center_rates: None,
        })
    }
}
