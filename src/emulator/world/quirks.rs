//! The wire quirks of spec §4 and §13, drawn at a configurable rate per record so that a client
//! meets every one of them: numbers as strings, `""`/null/missing, key-casing variants of the
//! exchange rate, dates with and without zone, seven fractional digits or an offset, and items
//! that omit their `invoiceLineItemType`/`billingProvider`.

use super::dice::{Dice, Ppm};
use super::json::{Absent, DateStyle};

/// Draws quirks for one stream of records.
pub struct Quirks {
    dice: Dice,
    rate: Ppm,
}

impl Quirks {
    /// A quirk source for a named stream at a rate per decision.
    pub fn new(seed: u64, stream: &str, rate: Ppm) -> Quirks {
        Quirks { dice: Dice::new(seed, stream), rate }
    }

    /// Whether this number goes out as a string.
    pub fn quoted(&mut self) -> bool {
        self.dice.chance(self.rate)
    }

    /// How this absent value is spelled: usually `""`, sometimes `null` or no key.
    pub fn absent(&mut self) -> Absent {
        if self.dice.chance(self.rate) {
            if self.dice.percent(50) { Absent::Null } else { Absent::Missing }
        } else {
            Absent::Empty
        }
    }

    /// The key the exchange rate travels under (spec §4.4).
    pub fn rate_key(&mut self) -> &'static str {
        if self.dice.chance(self.rate) {
            if self.dice.percent(50) { "PCToBCExchangeRate" } else { "pCToBCExchangeRate" }
        } else {
            "pcToBCExchangeRate"
        }
    }

    /// The key for the exchange-rate date, spelled like [`Quirks::rate_key`]'s choice.
    pub fn rate_date_key(rate_key: &str) -> &'static str {
        match rate_key {
            "PCToBCExchangeRate" => "PCToBCExchangeRateDate",
            "pCToBCExchangeRate" => "pCToBCExchangeRateDate",
            _ => "pcToBCExchangeRateDate",
        }
    }

    /// How a midnight date is spelled.
    pub fn date_style(&mut self) -> DateStyle {
        if self.dice.chance(self.rate) { DateStyle::NoZone } else { DateStyle::Zulu }
    }

    /// How a timestamp with a time of day is spelled.
    pub fn timestamp_style(&mut self) -> DateStyle {
        if self.dice.chance(self.rate) {
            if self.dice.percent(50) { DateStyle::Offset } else { DateStyle::NoZone }
        } else {
            DateStyle::Fraction7
        }
    }

    /// Whether this item omits `invoiceLineItemType` and `billingProvider` (rare).
    pub fn drop_item_type(&mut self) -> bool {
        self.dice.chance(Ppm(self.rate.0 / 10))
    }

    /// One of the spellings of "no tier-2 reseller" the API uses: `Some` text for a string
    /// (`"0"`, `""`), `None` for the number `0`.
    pub fn no_reseller(&mut self) -> Option<&'static str> {
        if self.dice.chance(self.rate) { *self.dice.pick(&[Some(""), None]) } else { Some("0") }
    }
}
