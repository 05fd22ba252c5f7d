//! Exact money: ISO 4217 currencies with their minor units, and the explicit rounding rules
//! Partner Center applies. Amounts are always [`rust_decimal::Decimal`]; nothing here touches a
//! binary float.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};

/// A billing or pricing currency, identified by its ISO 4217 code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Currency {
    /// US dollar (2 minor digits); the pricing currency of Azure and of the emulator's catalog.
    Usd,
    /// Euro (2).
    Eur,
    /// Pound sterling (2).
    Gbp,
    /// Japanese yen (0).
    Jpy,
    /// Danish krone (2).
    Dkk,
    /// Swiss franc (2).
    Chf,
    /// Kuwaiti dinar (3).
    Kwd,
}

/// A currency code that pcrecon does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown currency code {0:?}")]
pub struct UnknownCurrency(pub String);

impl Currency {
    /// Every supported currency, in code order.
    pub const ALL: [Currency; 7] =
        [Currency::Chf, Currency::Dkk, Currency::Eur, Currency::Gbp, Currency::Jpy, Currency::Kwd, Currency::Usd];

    /// The upper-case ISO 4217 code.
    pub fn code(self) -> &'static str {
        match self {
            Currency::Usd => "USD",
            Currency::Eur => "EUR",
            Currency::Gbp => "GBP",
            Currency::Jpy => "JPY",
            Currency::Dkk => "DKK",
            Currency::Chf => "CHF",
            Currency::Kwd => "KWD",
        }
    }

    /// The symbol Partner Center shows beside amounts (`currencySymbol`).
    pub fn symbol(self) -> &'static str {
        match self {
            Currency::Usd => "$",
            Currency::Eur => "€",
            Currency::Gbp => "£",
            Currency::Jpy => "¥",
            Currency::Dkk => "kr",
            Currency::Chf => "CHF",
            Currency::Kwd => "KD",
        }
    }

    /// ISO 4217 minor units: the number of decimal places of the currency's smallest unit.
    pub fn minor_units(self) -> u32 {
        match self {
            Currency::Jpy => 0,
            Currency::Kwd => 3,
            _ => 2,
        }
    }

    /// Rounds down, toward zero, to the currency's minor unit.
    ///
    /// This is Partner Center's `floor2` of the recon-file subtotal rule (spec §9.4), generalised
    /// from "2 decimals" to the currency's ISO 4217 minor units so that JPY amounts are whole yen.
    /// Toward zero rather than toward negative infinity, so that a refund mirrors its charge to
    /// the minor unit; for the positive amounts of the spec's examples the two are the same.
    pub fn truncate_minor(self, amount: Decimal) -> Decimal {
        truncate_dp(amount, self.minor_units())
    }

    /// Formats an amount at exactly the currency's minor units (`12.5` → `12.50` in EUR).
    pub fn fixed(self, amount: Decimal) -> Decimal {
        let mut a = amount;
        a.rescale(self.minor_units());
        a
    }
}

/// How an amount is rounded to its currency's minor units (only ever at the edges).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundingMode {
    /// Ties to the even neighbour (banker's rounding); the default.
    #[default]
    HalfEven,
    /// Ties away from zero (commercial rounding).
    HalfUp,
    /// Ties toward zero.
    HalfDown,
    /// Toward zero (truncation; Partner Center's `floor2` of positive amounts).
    Down,
    /// Away from zero.
    Up,
    /// Toward negative infinity.
    Floor,
    /// Toward positive infinity.
    Ceiling,
}

impl RoundingMode {
    /// The name used in configuration and outputs.
    pub fn name(self) -> &'static str {
        match self {
            RoundingMode::HalfEven => "half_even",
            RoundingMode::HalfUp => "half_up",
            RoundingMode::HalfDown => "half_down",
            RoundingMode::Down => "down",
            RoundingMode::Up => "up",
            RoundingMode::Floor => "floor",
            RoundingMode::Ceiling => "ceiling",
        }
    }

    fn strategy(self) -> RoundingStrategy {
        match self {
            RoundingMode::HalfEven => RoundingStrategy::MidpointNearestEven,
            RoundingMode::HalfUp => RoundingStrategy::MidpointAwayFromZero,
            RoundingMode::HalfDown => RoundingStrategy::MidpointTowardZero,
            RoundingMode::Down => RoundingStrategy::ToZero,
            RoundingMode::Up => RoundingStrategy::AwayFromZero,
            RoundingMode::Floor => RoundingStrategy::ToNegativeInfinity,
            RoundingMode::Ceiling => RoundingStrategy::ToPositiveInfinity,
        }
    }
}

impl Currency {
    /// Rounds to the currency's minor units with a mode, and pads to exactly that many digits.
    pub fn round(self, amount: Decimal, mode: RoundingMode) -> Decimal {
        self.fixed(amount.round_dp_with_strategy(self.minor_units(), mode.strategy()))
    }
}

/// The ISO 4217 minor units of any national currency code (not only those [`Currency`] names):
/// most have 2; these have none or 3 (ISO 4217, the currencies in circulation). `None` for
/// what is not a three-letter code.
pub fn iso_minor_units(code: &str) -> Option<u32> {
    const NONE: [&str; 16] = [
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF",
    ];
    const THREE: [&str; 7] = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
    let code = code.trim().to_ascii_uppercase();
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    Some(if NONE.contains(&code.as_str()) {
        0
    } else if THREE.contains(&code.as_str()) {
        3
    } else {
        2
    })
}

/// Rounds `amount` to the minor units of the currency `code` with a mode ([`iso_minor_units`]).
pub fn round_to_minor_units(code: &str, amount: Decimal, mode: RoundingMode) -> Option<Decimal> {
    let units = iso_minor_units(code)?;
    let mut rounded = amount.round_dp_with_strategy(units, mode.strategy());
    rounded.rescale(units);
    Some(rounded)
}

/// `a × b` only when no digit is lost: the mantissas are multiplied in i128, and the product
/// is accepted only if a Decimal holds it as it is (at most 28 fractional digits, 96 bits).
pub fn exact_product(a: Decimal, b: Decimal) -> Option<Decimal> {
    let (a, b) = (a.normalize(), b.normalize());
    let mantissa = a.mantissa().checked_mul(b.mantissa())?;
    Decimal::try_from_i128_with_scale(mantissa, a.scale() + b.scale()).ok()
}

/// Rounds toward zero to `dp` decimal places (the spec's `floor2` is `truncate_dp(x, 2)`).
pub fn truncate_dp(amount: Decimal, dp: u32) -> Decimal {
    amount.round_dp_with_strategy(dp, RoundingStrategy::ToZero)
}

impl FromStr for Currency {
    type Err = UnknownCurrency;

    /// Parses a code case-insensitively (`usd`, `USD`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::ALL
            .into_iter()
            .find(|c| c.code().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownCurrency(s.to_owned()))
    }
}

impl serde::Serialize for Currency {
    /// Serialises as the ISO code, so a currency can key a JSON object.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn truncation_follows_minor_units_and_mirrors_refunds() {
        assert_eq!(Currency::Eur.truncate_minor(d("10.129")), d("10.12"));
        assert_eq!(Currency::Eur.truncate_minor(d("-10.129")), d("-10.12"));
        assert_eq!(Currency::Jpy.truncate_minor(d("1523.99")), d("1523"));
        assert_eq!(Currency::Kwd.truncate_minor(d("1.23456")), d("1.234"));
        assert_eq!(truncate_dp(d("0.1835431430074643112595"), 2), d("0.18"));
    }

    #[test]
    fn every_rounding_mode_rounds_as_named() {
        use RoundingMode::*;
        let cases = [
            (
                "2.345",
                [
                    ("half_even", "2.34"),
                    ("half_up", "2.35"),
                    ("half_down", "2.34"),
                    ("down", "2.34"),
                    ("up", "2.35"),
                    ("floor", "2.34"),
                    ("ceiling", "2.35"),
                ],
            ),
            (
                "-2.345",
                [
                    ("half_even", "-2.34"),
                    ("half_up", "-2.35"),
                    ("half_down", "-2.34"),
                    ("down", "-2.34"),
                    ("up", "-2.35"),
                    ("floor", "-2.35"),
                    ("ceiling", "-2.34"),
                ],
            ),
            (
                "2.355",
                [
                    ("half_even", "2.36"),
                    ("half_up", "2.36"),
                    ("half_down", "2.35"),
                    ("down", "2.35"),
                    ("up", "2.36"),
                    ("floor", "2.35"),
                    ("ceiling", "2.36"),
                ],
            ),
        ];
        for (amount, expected) in cases {
            for (mode, (name, want)) in [HalfEven, HalfUp, HalfDown, Down, Up, Floor, Ceiling].into_iter().zip(expected)
            {
                assert_eq!(mode.name(), name);
                assert_eq!(Currency::Eur.round(d(amount), mode).to_string(), want, "{amount} {name}");
            }
        }
        assert_eq!(Currency::Jpy.round(d("1523.5"), HalfEven).to_string(), "1524");
        assert_eq!(Currency::Kwd.round(d("1.0005"), HalfEven).to_string(), "1.000");
        assert_eq!(Currency::Usd.round(d("7"), HalfEven).to_string(), "7.00");
    }

    #[test]
    fn codes_parse_case_insensitively_and_round_trip() {
        for c in Currency::ALL {
            assert_eq!(c.code().to_lowercase().parse::<Currency>().unwrap(), c);
            assert_eq!(c.to_string(), c.code());
        }
        assert!("XXX".parse::<Currency>().is_err());
    }

    #[test]
    fn fixed_pads_to_minor_units() {
        assert_eq!(Currency::Eur.fixed(d("12.5")).to_string(), "12.50");
        assert_eq!(Currency::Jpy.fixed(d("12")).to_string(), "12");
    }
}
