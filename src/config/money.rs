//! The `[normalize]`, `[reconcile]`, `[rebill]` and `[focus]` sections: the reporting currency, where its rates come
//! from (a rate table, or Partner Center's monthly rates), rate date rule and rounding; and the
//! tie-out's tolerance per billing currency; the partner's markup table and its rounding.
//!
//! In: the sections as parsed, and where relative paths start. Out: [`NormalizeSettings`] and
//! the tolerances, as exact decimals (a tolerance is never a float).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNormalize {
    reporting_currency: String,
    rates_file: Option<PathBuf>,
    #[serde(default)]
    rate_source: RateSourceName,
    #[serde(default)]
    rate_date: crate::normalize::fx::RateDateRule,
    #[serde(default)]
    rounding: crate::model::money::RoundingMode,
}

/// `[normalize] rate_source`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RateSourceName {
    #[default]
    File,
    PartnerCenter,
}

/// Where the exchange rates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rates {
    /// A rate table the finance team keeps (`date,from,to,rate`).
    File(PathBuf),
    /// Partner Center's monthly rates (`fxrates`, USD per unit), fetched for each month a run
    /// needs; cross rates derived from them.
    PartnerCenter,
}

/// Conversion into the reporting currency.
#[derive(Debug, Clone)]
pub struct NormalizeSettings {
    /// The company's reporting currency.
    pub reporting_currency: crate::model::money::Currency,
    /// Where the rates come from.
    pub rates: Rates,
    /// Which day's rate converts a row.
    pub rate_date: crate::normalize::fx::RateDateRule,
    /// How converted amounts are rounded to minor units.
    pub rounding: crate::model::money::RoundingMode,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRebill {
    markup_file: Option<PathBuf>,
    #[serde(default)]
    rounding: crate::model::money::RoundingMode,
    #[serde(default)]
    statements: bool,
}

/// Re-billing (`[rebill]`): the partner's markup table and how resale amounts are rounded.
#[derive(Debug, Clone)]
pub struct RebillSettings {
    /// `customer,product,percent[,fee]`; none: `customer_charges` has no resale amounts.
    pub markup_file: Option<PathBuf>,
    /// How a resale amount is rounded to the currency's minor units (once per row).
    pub rounding: crate::model::money::RoundingMode,
    /// Also write `statements/<customer>/<period>.csv` (one per customer and billing period).
    pub statements: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFocus {
    billing_account_name: Option<String>,
}

/// The `focus` dataset (`[focus]`): what FOCUS calls the partner's billing account.
#[derive(Debug, Clone, Default)]
pub struct FocusSettings {
    /// `BillingAccountName` of every row (none: null).
    pub billing_account_name: Option<String>,
}

impl RawFocus {
    /// The section, a blank name being none.
    pub(super) fn settings(self) -> FocusSettings {
        FocusSettings { billing_account_name: self.billing_account_name.filter(|n| !n.trim().is_empty()) }
    }
}

impl RawRebill {
    /// The section; `resolve` makes a relative markup table's path absolute.
    pub(super) fn settings(self, resolve: impl Fn(&Path) -> PathBuf) -> RebillSettings {
        RebillSettings {
            markup_file: self.markup_file.as_deref().map(resolve),
            rounding: self.rounding,
            statements: self.statements,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReconcile {
    #[serde(default)]
    tolerance: std::collections::BTreeMap<String, String>,
}

impl RawNormalize {
    /// The validated section; `resolve` makes a relative rate table's path absolute.
    pub(super) fn settings(self, resolve: impl Fn(&Path) -> PathBuf) -> Result<NormalizeSettings, ConfigError> {
        Ok(NormalizeSettings {
            reporting_currency: self
                .reporting_currency
                .parse()
                .map_err(|e| ConfigError::Invalid(format!("normalize.reporting_currency: {e}")))?,
            rates: match (self.rate_source, &self.rates_file) {
                (RateSourceName::File, Some(file)) => Rates::File(resolve(file)),
                (RateSourceName::File, None) => {
                    return Err(ConfigError::Invalid(
                        "normalize.rates_file is missing: name the rate table (date,from,to,rate), or set rate_source = \"partner_center\"".into(),
                    ));
                }
                (RateSourceName::PartnerCenter, None) => Rates::PartnerCenter,
                (RateSourceName::PartnerCenter, Some(_)) => {
                    return Err(ConfigError::Invalid(
                        "normalize.rates_file and rate_source = \"partner_center\" exclude each other: the rates come from one place".into(),
                    ));
                }
            },
            rate_date: self.rate_date,
            rounding: self.rounding,
        })
    }
}

impl RawReconcile {
    /// The tolerance per billing currency (upper-cased), each a non-negative decimal.
    pub(super) fn tolerance(&self) -> Result<BTreeMap<String, rust_decimal::Decimal>, ConfigError> {
        self.tolerance
            .iter()
            .map(|(currency, amount)| {
                let value = amount.parse::<rust_decimal::Decimal>().ok().filter(|v| !v.is_sign_negative());
                value.map(|v| (currency.to_uppercase(), v)).ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "reconcile.tolerance.{currency}: {amount:?} is not a non-negative decimal"
                    ))
                })
            })
            .collect()
    }
}
