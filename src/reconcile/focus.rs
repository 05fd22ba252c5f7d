//! The FOCUS tie-outs: Σ `BilledCost` of the `focus` rows of each document against the
//! document's stated total, and of each billing currency against what the charge lines it is
//! made of add up to. FOCUS 1.2 requires the first ("the sum of the BilledCost for a given
//! InvoiceId MUST match the sum of the payable amount provided in the corresponding invoice");
//! the second proves no line was lost or counted twice on the way, open charges included.
//!
//! In: the documents (`invoices` rows), the FOCUS sums the stages kept. Out: one [`Check`] per
//! document with FOCUS rows or a stated total, and per currency. It reads no file.

use std::collections::BTreeMap;

use super::{Check, Class, Kind, Ledger, Rules, Status, classify, documents, voided};
use crate::focus::InvoiceSums;
use crate::tabular::{Cell, Dataset};

/// One billing currency's sums, unscaled at the amount scale (10).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FocusCurrency {
    /// Σ of the charge lines' line-amount column (distinct lines, billed and open).
    pub lines: i128,
    /// Σ `BilledCost` of the FOCUS rows.
    pub focus: i128,
}

/// The FOCUS checks: each document, then each currency.
pub fn focus_checks<'a>(
    ledger: &Ledger,
    invoices: impl Iterator<Item = &'a Vec<Cell>>,
    by_invoice: &InvoiceSums,
    by_currency: &BTreeMap<String, FocusCurrency>,
    rules: &Rules,
) -> Vec<Check> {
    let tolerance = |currency: &str| rules.tolerance.get(currency).copied().unwrap_or(0);
    let docs = documents(invoices);
    let voided = voided(&docs);
    let mut checks = Vec::new();
    for doc in &docs {
        let (sum, rows) = by_invoice.get(&doc.id.to_uppercase()).map_or((0, 0), |(_, s, n)| (*s, *n));
        let check = Check::of(&doc.id, &doc.currency, Kind::FocusInvoice, doc.stated, sum, rows);
        let not_ready = ledger.not_ready_of(Dataset::BilledRecon, &doc.id).map(str::to_owned);
        // As the document's own check judges it: a voided document is void, not a mismatch.
        let judged = match (&not_ready, doc.stated) {
            _ if voided.contains(&doc.id.to_uppercase()) => (Status::Void, Class::Voided),
            (Some(_), _) => (Status::NotReady, Class::ExportNotReady),
            (None, Some(stated)) => classify(stated - sum, rows, tolerance(&doc.currency)),
            (None, None) => (Status::Mismatch, Class::MissingTotal),
        };
        checks.push(Check { detail: not_ready, ..check.judged(judged) });
    }
    // FOCUS rows naming a document the invoice list does not have.
    for (invoice, (currency, sum, rows)) in by_invoice {
        if !docs.iter().any(|d| d.id.eq_ignore_ascii_case(invoice)) {
            let check = Check::of(invoice, currency, Kind::FocusInvoice, None, *sum, *rows);
            checks.push(check.judged((Status::Mismatch, Class::MissingTotal)));
        }
    }
    for (currency, sums) in by_currency {
        let check =
            Check::of(&format!("focus {currency}"), currency, Kind::FocusCurrency, Some(sums.lines), sums.focus, 0);
        let judged = match sums.lines - sums.focus {
            0 => (Status::Ok, Class::None),
            _ => (Status::Mismatch, Class::Unexplained),
        };
        checks.push(check.judged(judged));
    }
    checks
}
