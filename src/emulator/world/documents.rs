//! Documents that amend invoices, as Partner Center issues them (spec §17.2): credit notes,
//! adjustment notes, and void notes that cancel an invoice which is then rebilled.
//!
//! In: the world's rates per kind and the invoices of each billed month. Out: which invoice gets
//! which document, decided once per month before any line is written, so that the line writers
//! can write a note's lines (and a rebill's) beside the invoice's own. It writes nothing itself.
//!
//! What the world says about them, in its own words from Microsoft's pages: a note is a document
//! of its own in the invoice list and by id, with its own (negative) line items; it names the
//! invoice it amends in `amendsOf`, and that invoice lists it in `amendments`. A void note
//! reverses every line of its invoice, whose `status` becomes `void`; the charges are billed
//! again on a new invoice (the rebill), which ties out on its own.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::dice::{Dice, Ppm};
use crate::model::money::Currency;

/// A kind of document that amends an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NoteKind {
    /// Products bought earlier and cancelled or returned: some lines credited back.
    CreditNote,
    /// A price corrected after the invoice was issued: one line partly credited.
    AdjustmentNote,
    /// The whole invoice cancelled; its charges billed again on a rebill.
    VoidNote,
}

impl NoteKind {
    /// Every kind, in the order the first month plants them.
    pub const ALL: [NoteKind; 3] = [NoteKind::VoidNote, NoteKind::CreditNote, NoteKind::AdjustmentNote];

    /// The `documentType` the API writes (its enum names, lower snake case).
    pub fn document_type(self) -> &'static str {
        match self {
            NoteKind::CreditNote => "credit_note",
            NoteKind::AdjustmentNote => "adjustment_note",
            NoteKind::VoidNote => "void_note",
        }
    }

    fn parse(name: &str) -> Option<NoteKind> {
        NoteKind::ALL.into_iter().find(|k| k.document_type() == name)
    }
}

/// Probability per new-commerce invoice of each kind of amending document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteRates(BTreeMap<NoteKind, Ppm>);

impl Default for NoteRates {
    /// A few per world: enough to show each kind every month or two.
    fn default() -> Self {
        let mut rates = NoteRates::none();
        for (kind, ppm) in
            [(NoteKind::CreditNote, 150_000), (NoteKind::AdjustmentNote, 100_000), (NoteKind::VoidNote, 50_000)]
        {
            rates.0.insert(kind, Ppm(ppm));
        }
        rates
    }
}

impl NoteRates {
    /// No amending documents at all.
    pub fn none() -> NoteRates {
        NoteRates(NoteKind::ALL.into_iter().map(|k| (k, Ppm(0))).collect())
    }

    /// The rate of one kind.
    pub fn rate(&self, kind: NoteKind) -> Ppm {
        self.0.get(&kind).copied().unwrap_or_default()
    }

    /// Parses `kind=probability,…` over the defaults; `none` turns every kind off.
    pub fn parse(text: &str) -> Result<NoteRates, String> {
        let mut rates = NoteRates::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "none" {
                rates = NoteRates::none();
                continue;
            }
            let (name, value) = part.split_once('=').ok_or_else(|| format!("{part:?} is not kind=probability"))?;
            let kind = NoteKind::parse(name.trim()).ok_or_else(|| {
                let known: Vec<&str> = NoteKind::ALL.iter().map(|k| k.document_type()).collect();
                format!("unknown document kind {name:?} (known: {})", known.join(", "))
            })?;
            rates.0.insert(kind, Ppm::parse(value)?);
        }
        Ok(rates)
    }

    /// A stable description (part of the world's fingerprint).
    pub fn describe(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{}={}", k.document_type(), Decimal::new(i64::from(v.0), 6).normalize()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The amending document an invoice gets, with the ids it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amendment {
    /// What kind.
    pub kind: NoteKind,
    /// The note's id.
    pub note_id: String,
    /// For a void note, the id of the rebill.
    pub rebill_id: Option<String>,
}

/// Decides the amending documents of one billed month: each invoice draws at most one kind; in
/// the first month every kind with a rate above zero is planted once (on the invoices of the
/// last currencies, which carry fewest planted anomalies), as far as there are invoices.
/// `ids` gives the invoice id per currency; `note_id` and `rebill_id` the ids to issue.
pub fn plan_month(
    rates: &NoteRates,
    dice: &mut Dice,
    showcase: bool,
    ids: &BTreeMap<Currency, String>,
    mut note_id: impl FnMut(usize) -> String,
    mut rebill_id: impl FnMut(usize) -> String,
) -> BTreeMap<Currency, Amendment> {
    let currencies: Vec<Currency> = ids.keys().copied().collect();
    let mut chosen: BTreeMap<Currency, NoteKind> = BTreeMap::new();
    if showcase {
        let kinds = NoteKind::ALL.into_iter().filter(|k| rates.rate(*k) != Ppm(0));
        for (kind, currency) in kinds.zip(currencies.iter().rev()) {
            chosen.insert(*currency, kind);
        }
    }
    for currency in &currencies {
        // Every invoice draws, so a month's draws do not depend on the showcase.
        let drawn = NoteKind::ALL.into_iter().find(|k| dice.chance(rates.rate(*k)));
        if let Some(kind) = drawn {
            chosen.entry(*currency).or_insert(kind);
        }
    }
    chosen
        .into_iter()
        .map(|(currency, kind)| {
            let index = currencies.iter().position(|c| *c == currency).unwrap_or(0);
            let rebill = (kind == NoteKind::VoidNote).then(|| rebill_id(index));
            (currency, Amendment { kind, note_id: note_id(index), rebill_id: rebill })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> BTreeMap<Currency, String> {
        [Currency::Usd, Currency::Eur, Currency::Gbp, Currency::Jpy]
            .into_iter()
            .enumerate()
            .map(|(i, c)| (c, format!("G{i}")))
            .collect()
    }

    #[test]
    fn the_first_month_shows_every_kind_and_a_void_note_comes_with_its_rebill() {
        let mut dice = Dice::new(1, "notes");
        let plan = plan_month(&NoteRates::default(), &mut dice, true, &ids(), |i| format!("N{i}"), |i| format!("R{i}"));
        let kinds: std::collections::BTreeSet<NoteKind> = plan.values().map(|a| a.kind).collect();
        assert_eq!(kinds.len(), 3, "{plan:?}");
        for a in plan.values() {
            assert_eq!(a.rebill_id.is_some(), a.kind == NoteKind::VoidNote);
        }
        let none = plan_month(&NoteRates::none(), &mut dice, true, &ids(), |i| format!("N{i}"), |i| format!("R{i}"));
        assert!(none.is_empty());
    }

    #[test]
    fn rates_parse_over_the_defaults() {
        let rates = NoteRates::parse("void_note=0.5").unwrap();
        assert_eq!(rates.rate(NoteKind::VoidNote), Ppm(500_000));
        assert_eq!(rates.rate(NoteKind::CreditNote), NoteRates::default().rate(NoteKind::CreditNote));
        assert_eq!(NoteRates::parse("none").unwrap(), NoteRates::none());
        assert!(NoteRates::parse("refund=0.1").unwrap_err().contains("credit_note"));
    }
}
