//! The `[normalize]` and `[reconcile]` sections: the reporting currency, its rate table, rate
//! date rule and rounding; and the tie-out's tolerance per billing currency.
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
            rates_file: resolve(&self.rates_file),
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
