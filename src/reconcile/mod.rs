//! The tie-out: what each document of the invoice list states against what its lines add up to
//! by Partner Center's own rules, each invoice with the notes that amend it, each invoice's
//! metered charges against its daily rated usage, and each currency's summary balance against its
//! documents; and (`focus`) the FOCUS rows against each document and each currency.
//!
//! In: every distinct line-item row as it passes ([`Observer::observe`] into the [`Ledger`] of its
//! sequence), the sequences the v2 export could not serve yet, and at the end the `invoices` and
//! `invoice_summaries` rows. Out: typed [`Check`]s, one per row of the `reconciliation` dataset.
//! It does not decode, match, deduplicate or write anything: the caller observes only distinct
//! lines and writes the rows.

mod check;
mod focus;
mod ledger;

use std::collections::{BTreeMap, BTreeSet};

pub use check::{Check, CheckGroup, Class, Kind, Status};
pub use focus::{FocusCurrency, focus_checks};
pub use ledger::{Ledger, Observer, Sums};

use crate::model::document::{DocumentKind, is_void_status};
use crate::tabular::{Cell, Dataset};

/// 10^12: from the amount scale (10) to the usage scale (22) the `reconciliation` amounts keep.
pub const TO_USAGE_SCALE: i128 = 1_000_000_000_000;

/// A difference's status and class: exact is `ok`; within the currency's tolerance,
/// `within_tolerance`; otherwise a `mismatch`, of documents without any line (`missing_lines`)
/// or with lines that do not add up (`unexplained`: the lines are summed by Partner Center's own
/// rounding rules, so no residue is expected).
fn classify(difference: i128, lines: u64, tolerance: i128) -> (Status, Class) {
    match (difference, lines) {
        (0, _) => (Status::Ok, Class::None),
        (d, _) if d.abs() <= tolerance => (Status::WithinTolerance, Class::RoundingResidue),
        (_, 0) => (Status::Mismatch, Class::MissingLines),
        _ => (Status::Mismatch, Class::Unexplained),
    }
}

/// How the tie-out judges differences.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Largest difference per currency (unscaled at the amount scale) still acceptable.
    pub tolerance: BTreeMap<String, i128>,
    /// The run fetched only some documents (by invoice date or id): summaries cover more.
    pub filtered: bool,
}

/// One document of the invoice list, as the tie-out reads it from the `invoices` rows.
struct Document {
    id: String,
    currency: String,
    /// `totalCharges` and `paidAmount`, unscaled at the amount scale.
    stated: Option<i128>,
    paid: i128,
    kind: DocumentKind,
    /// `documentType` as sent.
    document_type: Option<String>,
    amends_of: Option<String>,
    /// Ids its `amendments` list.
    amendments: Vec<String>,
    /// Its `status` says void.
    void: bool,
}

/// The documents of the run, in the order of their rows.
fn documents<'a>(invoices: impl Iterator<Item = &'a Vec<Cell>>) -> Vec<Document> {
    let Some(schema) = Dataset::Invoices.schema() else { return Vec::new() };
    let at = |name: &str| schema.column(name);
    let (Some(id), Some(ccy), Some(total), Some(paid), Some(kind), Some(amends), Some(status), Some(amendments)) = (
        at("id"),
        at("billing_currency"),
        at("total_charges"),
        at("paid_amount"),
        at("document_type"),
        at("amends_of"),
        at("status"),
        at("amendments"),
    ) else {
        return Vec::new();
    };
    let text = |cell: &Cell| match cell {
        Cell::Str(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let amount = |cell: &Cell| if let Cell::Dec(v) = cell { Some(*v) } else { None };
    invoices
        .filter_map(|row| {
            let Cell::Str(identifier) = &row[id] else { return None };
            let document_type = text(&row[kind]);
            let listed: Vec<String> = text(&row[amendments])
                .and_then(|json| serde_json::from_str::<Vec<serde_json::Value>>(&json).ok())
                .unwrap_or_default()
                .iter()
                .filter_map(|a| a.get("id").and_then(|v| v.as_str()).map(str::to_owned))
                .collect();
            Some(Document {
                id: identifier.clone(),
                currency: text(&row[ccy]).unwrap_or_default().to_uppercase(),
                stated: amount(&row[total]),
                paid: amount(&row[paid]).unwrap_or(0),
                kind: DocumentKind::from_wire(document_type.as_deref()),
                document_type,
                amends_of: text(&row[amends]),
                amendments: listed,
                void: is_void_status(text(&row[status]).as_deref()),
            })
        })
        .collect()
}

/// The documents (upper-case ids) a void note cancels or whose status says void.
fn voided(docs: &[Document]) -> BTreeSet<String> {
    docs.iter()
        .filter(|d| d.kind == DocumentKind::VoidNote)
        .filter_map(|d| d.amends_of.as_ref().map(|a| a.to_uppercase()))
        .chain(docs.iter().filter(|d| d.void).map(|d| d.id.to_uppercase()))
        .collect()
}

/// Every check of a run, in a stable order: each document (its own lines, then with its notes,
/// then its usage), then each sequence not ready, then each currency's summary.
pub fn tie_out<'a>(
    ledger: &Ledger,
    invoices: impl Iterator<Item = &'a Vec<Cell>>,
    summaries: impl Iterator<Item = &'a Vec<Cell>>,
    rules: &Rules,
) -> Vec<Check> {
    let docs = documents(invoices);
    let tolerance = |currency: &str| rules.tolerance.get(currency).copied().unwrap_or(0);
    let recon_not_ready = |id: &str| ledger.not_ready_of(Dataset::BilledRecon, id);
    let voided = voided(&docs);
    // A note belongs to the document its `amendsOf` names; a note without one, to the document
    // whose `amendments` list it.
    let owner = |note: &Document| -> Option<String> {
        note.amends_of.clone().or_else(|| {
            docs.iter().find(|d| d.amendments.iter().any(|a| a.eq_ignore_ascii_case(&note.id))).map(|d| d.id.clone())
        })
    };
    let mut checks = Vec::new();
    for doc in &docs {
        let (sum, count) = ledger.lines_of(&doc.id);
        let mut own = Check::of(&doc.id, &doc.currency, Kind::Document(doc.kind), doc.stated, sum, count);
        own.document_type = doc.document_type.clone();
        own.amends_of = doc.amends_of.clone();
        own.detail = recon_not_ready(&doc.id).map(str::to_owned);
        let judged = if voided.contains(&doc.id.to_uppercase()) {
            (Status::Void, Class::Voided)
        } else if own.detail.is_some() {
            (Status::NotReady, Class::ExportNotReady)
        } else if let Some(stated) = doc.stated {
            classify(stated - sum, count, tolerance(&doc.currency))
        } else {
            (Status::Mismatch, Class::MissingTotal)
        };
        checks.push(own.judged(judged));

        let notes: Vec<&Document> = docs
            .iter()
            .filter(|n| n.kind.is_note() && !n.id.eq_ignore_ascii_case(&doc.id))
            .filter(|n| owner(n).is_some_and(|o| o.eq_ignore_ascii_case(&doc.id)))
            .collect();
        if !notes.is_empty() {
            checks.push(net_check(
                doc,
                &notes,
                ledger,
                tolerance(&doc.currency),
                voided.contains(&doc.id.to_uppercase()),
            ));
        }
        if !doc.kind.is_note()
            && let Some(check) = usage_check(ledger, &doc.id, &doc.currency)
        {
            checks.push(check);
        }
    }
    for ((dataset, scope), detail) in &ledger.not_ready {
        let currency = docs
            .iter()
            .find(|d| d.id.eq_ignore_ascii_case(scope))
            .map_or_else(|| scope.split('/').next().unwrap_or_default().to_uppercase(), |d| d.currency.clone());
        let mut check = Check::of(scope, &currency, Kind::Export, None, 0, 0);
        check.lines_total = None;
        check.difference = None;
        check.related = Some((*dataset).to_owned());
        check.detail = Some(detail.clone());
        checks.push(check.judged((Status::NotReady, Class::ExportNotReady)));
    }
    let mut owed: BTreeMap<String, (i128, u64)> = BTreeMap::new();
    for doc in &docs {
        let entry = owed.entry(doc.currency.clone()).or_default();
        entry.0 += doc.stated.unwrap_or(0) + doc.paid;
        entry.1 += 1;
    }
    if let Some(schema) = Dataset::InvoiceSummaries.schema()
        && let (Some(ccy), Some(balance)) = (schema.column("billing_currency"), schema.column("balance_amount"))
    {
        let mut stated: Vec<(String, i128)> = summaries
            .filter_map(|row| match (&row[ccy], &row[balance]) {
                (Cell::Str(c), Cell::Dec(b)) => Some((c.to_uppercase(), *b)),
                _ => None,
            })
            .collect();
        stated.sort();
        for (currency, stated) in stated {
            let (sum, count) = owed.get(&currency).copied().unwrap_or_default();
            let check = Check::of(&format!("summary {currency}"), &currency, Kind::Summary, Some(stated), sum, count);
            // A summary covers every document of the account; a filtered run has only some.
            let judged = if rules.filtered {
                (Status::Partial, Class::FilteredRun)
            } else {
                classify(stated - sum, count, tolerance(&currency))
            };
            checks.push(check.judged(judged));
        }
    }
    checks
}

/// A document and the notes amending it, together. A note in another currency is a mismatch of
/// its own kind; a note or document whose lines are not served yet makes the whole not ready; a
/// voided invoice whose void note reverses it exactly is `void`.
fn net_check(doc: &Document, notes: &[&Document], ledger: &Ledger, tolerance: i128, voided: bool) -> Check {
    let (mut sum, mut count) = ledger.lines_of(&doc.id);
    let mut stated = doc.stated;
    let mut not_ready = ledger.not_ready_of(Dataset::BilledRecon, &doc.id).map(str::to_owned);
    let mut other_currency = false;
    for note in notes {
        stated = stated.zip(note.stated).map(|(a, b)| a + b);
        let (s, c) = ledger.lines_of(&note.id);
        sum += s;
        count += c;
        not_ready = not_ready.or_else(|| ledger.not_ready_of(Dataset::BilledRecon, &note.id).map(str::to_owned));
        other_currency |= note.currency != doc.currency;
    }
    let mut check = Check::of(&doc.id, &doc.currency, Kind::Net, stated, sum, count);
    check.document_type = doc.document_type.clone();
    check.related = Some(notes.iter().map(|n| n.id.as_str()).collect::<Vec<_>>().join(","));
    let judged = if other_currency {
        (Status::Mismatch, Class::CurrencyMismatch)
    } else if not_ready.is_some() {
        (Status::NotReady, Class::ExportNotReady)
    } else if let Some(stated) = stated {
        match (classify(stated - sum, count, tolerance), voided) {
            ((Status::Ok, _), true) => (Status::Void, Class::Voided),
            ((Status::Ok, _), false) => (Status::Ok, Class::NetOfNotes),
            (other, _) => other,
        }
    } else {
        (Status::Mismatch, Class::MissingTotal)
    };
    check.detail = not_ready;
    check.judged(judged)
}

/// An invoice's metered recon charges (credits aside) against its daily rated usage. The recon
/// side truncates twice per meter line (USD cents, then billing minor units, spec §9.4), so
/// usage may exceed it by up to `0.01 × rate + 1 minor unit` per line: that residue is
/// `rounding_residue` and `ok`; more, or usage below the charges, is `unexplained`.
fn usage_check(ledger: &Ledger, invoice: &str, currency: &str) -> Option<Check> {
    let usage = ledger.sums_of(Dataset::BilledUsage, invoice);
    let recon = ledger.sums_of(Dataset::BilledRecon, invoice).filter(|l| l.metered_lines > 0);
    if usage.is_none() && recon.is_none() {
        return None;
    }
    let charged = recon.map_or(0, |l| l.metered);
    let used = usage.map_or(0, |l| l.metered);
    let lines = recon.map_or(0, |l| l.metered_lines);
    let minor = currency.parse::<crate::model::money::Currency>().map_or(2, |c| c.minor_units());
    // Per line: 0.01 USD × rate (the rate at scale 20 is 0.01 × rate at 22) + one minor unit.
    let per_line = recon.map_or(0, |l| l.max_rate) + 10i128.pow(22 - minor);
    let bound = per_line * i128::from(u32::try_from(lines).unwrap_or(u32::MAX));
    let difference = used - charged;
    let not_ready = ledger
        .not_ready_of(Dataset::BilledUsage, invoice)
        .or_else(|| ledger.not_ready_of(Dataset::BilledRecon, invoice));
    let judged = match difference {
        _ if not_ready.is_some() => (Status::NotReady, Class::ExportNotReady),
        0 => (Status::Ok, Class::None),
        d if (0..=bound).contains(&d) => (Status::Ok, Class::RoundingResidue),
        _ => (Status::Mismatch, Class::Unexplained),
    };
    let check = Check {
        id: invoice.to_owned(),
        currency: currency.to_owned(),
        stated: Some(charged),
        lines_total: Some(used),
        difference: Some(difference),
        lines: usage.map_or(0, |l| l.distinct),
        status: Status::Ok,
        class: Class::None,
        kind: Kind::Usage,
        document_type: None,
        amends_of: None,
        related: None,
        detail: not_ready.map(str::to_owned),
    };
    Some(check.judged(judged))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoice(id: &str, currency: &str, total: i128, kind: &str, amends: Option<&str>) -> Vec<Cell> {
        let schema = Dataset::Invoices.schema().unwrap();
        let mut row = vec![Cell::Null; schema.columns.len()];
        let mut set = |name: &str, cell: Cell| row[schema.column(name).unwrap()] = cell;
        set("id", Cell::Str(id.into()));
        set("billing_currency", Cell::Str(currency.into()));
        set("total_charges", Cell::Dec(total));
        set("paid_amount", Cell::Dec(0));
        set("document_type", Cell::Str(kind.into()));
        if let Some(a) = amends {
            set("amends_of", Cell::Str(a.into()));
        }
        row
    }

    fn recon_line(total: i128, currency: &str) -> Vec<Cell> {
        let schema = Dataset::BilledRecon.schema().unwrap();
        let mut row = vec![Cell::Null; schema.columns.len()];
        row[schema.column("total_for_customer").unwrap()] = Cell::Dec(total);
        row[schema.column("billing_currency").unwrap()] = Cell::Str(currency.into());
        row
    }

    fn find<'a>(checks: &'a [Check], id: &str, kind: &str) -> &'a Check {
        checks.iter().find(|c| c.id == id && c.kind.name() == kind).unwrap()
    }

    #[test]
    fn an_invoice_ties_out_with_its_notes_and_notes_in_other_currencies_or_not_ready_are_named() {
        let recon = Observer::of(Dataset::BilledRecon.schema().unwrap());
        let mut ledger = Ledger::default();
        recon.observe(ledger.sums_mut(Dataset::BilledRecon, "G1"), &recon_line(1000, "EUR"));
        recon.observe(ledger.sums_mut(Dataset::BilledRecon, "C1"), &recon_line(-300, "EUR"));
        recon.observe(ledger.sums_mut(Dataset::BilledRecon, "G2"), &recon_line(500, "EUR"));
        recon.observe(ledger.sums_mut(Dataset::BilledRecon, "C2"), &recon_line(-100, "USD"));
        ledger.not_ready(Dataset::BilledRecon, "C3", "code 5000");
        let rows = [
            invoice("G1", "EUR", 1000, "invoice", None),
            invoice("C1", "EUR", -300, "Credit Note", Some("G1")),
            invoice("G2", "EUR", 500, "invoice", None),
            invoice("C2", "USD", -100, "credit_note", Some("G2")),
            invoice("G3", "EUR", 0, "invoice", None),
            invoice("C3", "EUR", -5, "credit_note", Some("G3")),
        ];
        let checks = tie_out(&ledger, rows.iter(), std::iter::empty(), &Rules::default());
        let net = find(&checks, "G1", "net");
        assert_eq!((net.status, net.class, net.stated), (Status::Ok, Class::NetOfNotes, Some(700 * TO_USAGE_SCALE)));
        assert_eq!(net.related.as_deref(), Some("C1"));
        assert_eq!(find(&checks, "C1", "credit_note").status, Status::Ok);
        assert_eq!(find(&checks, "G2", "net").class, Class::CurrencyMismatch);
        let pending = find(&checks, "G3", "net");
        assert_eq!((pending.status, pending.detail.as_deref()), (Status::NotReady, Some("code 5000")));
        assert_eq!(find(&checks, "C3", "export").status, Status::NotReady);
    }

    #[test]
    fn a_void_note_voids_its_invoice_and_summaries_of_filtered_runs_are_partial() {
        let recon = Observer::of(Dataset::BilledRecon.schema().unwrap());
        let mut ledger = Ledger::default();
        recon.observe(ledger.sums_mut(Dataset::BilledRecon, "G1"), &recon_line(1000, "EUR"));
        recon.observe(ledger.sums_mut(Dataset::BilledRecon, "V1"), &recon_line(-1000, "EUR"));
        let mut rows =
            vec![invoice("G1", "EUR", 1000, "invoice", None), invoice("V1", "EUR", -1000, "void_note", Some("G1"))];
        let summary_schema = Dataset::InvoiceSummaries.schema().unwrap();
        let mut summary = vec![Cell::Null; summary_schema.columns.len()];
        summary[summary_schema.column("billing_currency").unwrap()] = Cell::Str("EUR".into());
        summary[summary_schema.column("balance_amount").unwrap()] = Cell::Dec(0);
        let summaries = [summary];
        let checks = tie_out(&ledger, rows.iter(), summaries.iter(), &Rules::default());
        assert_eq!(find(&checks, "G1", "invoice").status, Status::Void);
        assert_eq!(find(&checks, "G1", "net").status, Status::Void);
        assert_eq!(find(&checks, "V1", "void_note").status, Status::Ok);
        assert_eq!(find(&checks, "summary EUR", "summary").status, Status::Ok);
        let filtered = Rules { filtered: true, ..Rules::default() };
        let checks = tie_out(&ledger, rows.iter(), summaries.iter(), &filtered);
        assert_eq!(find(&checks, "summary EUR", "summary").class, Class::FilteredRun);
        // A document without a stated total is not silently zero.
        let schema = Dataset::Invoices.schema().unwrap();
        rows[0][schema.column("total_charges").unwrap()] = Cell::Null;
        rows[0][schema.column("document_type").unwrap()] = Cell::Null;
        rows.truncate(1);
        let checks = tie_out(&ledger, rows.iter(), std::iter::empty(), &Rules::default());
        assert_eq!(find(&checks, "G1", "invoice").class, Class::MissingTotal);
    }
}
