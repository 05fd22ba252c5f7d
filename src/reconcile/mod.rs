//! The tie-out: what each document of the invoice list states against what its lines add up to
//! by Partner Center's own rules, each invoice with the notes that amend it, each invoice's
//! metered charges against its daily rated usage, and each currency's summary balance against its
//! documents.
//!
//! In: every distinct line-item row as it passes ([`Observer::observe`] into the [`Ledger`] of its
//! sequence), the sequences the v2 export could not serve yet, and at the end the `invoices` and
//! `invoice_summaries` rows. Out: typed [`Check`]s, one per row of the `reconciliation` dataset.
//! It does not decode, match, deduplicate or write anything: the caller observes only distinct
//! lines and writes the rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::model::document::{DocumentKind, is_void_status};
use crate::model::schema::{Cell, DatasetSchema, registry};

/// 10^12: from the amount scale (10) to the usage scale (22) the `reconciliation` amounts keep.
pub const TO_USAGE_SCALE: i128 = 1_000_000_000_000;

/// What one sequence's distinct lines add up to.
#[derive(Debug, Default, Clone)]
pub struct Sums {
    /// Currency and Σ of the invoice-total column (Decimal128 scale 10).
    total: Option<(String, i128)>,
    /// Lines counted in `total`.
    counted: u64,
    /// Σ at scale 22 of what the usage tie-out compares: daily rated usage
    /// `billing_pre_tax_total`, or the `subtotal` of metered recon lines (credits aside).
    metered: i128,
    /// Metered recon lines in `metered`, and the largest exchange rate among them.
    metered_lines: u64,
    max_rate: i128,
    /// Distinct lines observed.
    distinct: u64,
}

/// What a run's sequences add up to, and which the v2 export could not serve yet.
#[derive(Debug, Default)]
pub struct Ledger {
    sums: HashMap<(&'static str, String), Sums>,
    not_ready: BTreeMap<(&'static str, String), String>,
}

impl Ledger {
    /// The sums of one sequence, to observe its lines into.
    pub fn sums_mut(&mut self, dataset: &'static str, scope: &str) -> &mut Sums {
        self.sums.entry((dataset, scope.to_owned())).or_default()
    }

    /// Forgets what a sequence showed: it starts again.
    pub fn restart(&mut self, dataset: &'static str, scope: &str) {
        self.sums.remove(&(dataset, scope.to_owned()));
    }

    /// Records that the v2 export could not serve a sequence yet, and what it said.
    pub fn not_ready(&mut self, dataset: &'static str, scope: &str, detail: &str) {
        self.not_ready.insert((dataset, scope.to_owned()), detail.to_owned());
    }

    /// The sequences not ready, as `dataset/scope` → what the export said.
    pub fn not_ready_list(&self) -> BTreeMap<String, String> {
        self.not_ready.iter().map(|((d, s), detail)| (format!("{d}/{s}"), detail.clone())).collect()
    }

    fn sums_of(&self, dataset: &str, scope: &str) -> Option<&Sums> {
        self.sums.iter().find(|((d, s), _)| *d == dataset && s.eq_ignore_ascii_case(scope)).map(|(_, s)| s)
    }

    fn not_ready_of(&self, dataset: &str, scope: &str) -> Option<&str> {
        self.not_ready
            .iter()
            .find(|((d, s), _)| *d == dataset && s.eq_ignore_ascii_case(scope))
            .map(|(_, r)| r.as_str())
    }

    /// Σ of a document's distinct lines by Partner Center's rule, and their number.
    fn lines_of(&self, id: &str) -> (i128, u64) {
        let mut sum = 0i128;
        let mut count = 0u64;
        for ((dataset, scope), sums) in &self.sums {
            if invoice_total_column(dataset).is_some() && scope.eq_ignore_ascii_case(id) {
                sum += sums.total.as_ref().map_or(0, |t| t.1);
                count += sums.counted;
            }
        }
        (sum, count)
    }
}

/// The column whose distinct-line sum is an invoice's total, by dataset (spec §10.4).
fn invoice_total_column(dataset: &str) -> Option<&'static str> {
    match dataset {
        "billed_recon_line_items" | "legacy_office_line_items" => Some("total_for_customer"),
        "legacy_azure_line_items" => Some("post_tax_total"),
        _ => None,
    }
}

/// Which columns of a line feed the usage tie-out.
#[derive(Debug, Clone, Copy)]
enum Metered {
    /// Daily rated usage: the billing total.
    Usage(usize),
    /// Recon lines: subtotal, meter description (set on metered lines), charge type, rate.
    Recon { subtotal: usize, meter: usize, charge: usize, rate: usize },
    /// Neither.
    None,
}

/// Reads the amounts the tie-out needs from the rows of one dataset, its columns found once.
#[derive(Debug, Clone, Copy)]
pub struct Observer {
    total: Option<(usize, usize)>,
    metered: Metered,
}

impl Observer {
    /// The observer of a dataset's rows.
    pub fn of(schema: &DatasetSchema) -> Observer {
        let total = invoice_total_column(schema.name)
            .and_then(|c| schema.column(c))
            .zip(schema.currency_column.and_then(|c| schema.column(c)));
        let metered = match schema.name {
            "billed_consumption_line_items" => {
                schema.column("billing_pre_tax_total").map_or(Metered::None, Metered::Usage)
            }
            "billed_recon_line_items" => match (
                schema.column("subtotal"),
                schema.column("meter_description"),
                schema.column("charge_type"),
                schema.column("pc_to_bc_exchange_rate"),
            ) {
                (Some(subtotal), Some(meter), Some(charge), Some(rate)) => {
                    Metered::Recon { subtotal, meter, charge, rate }
                }
                _ => Metered::None,
            },
            _ => Metered::None,
        };
        Observer { total, metered }
    }

    /// Adds one distinct line to its sequence's sums.
    pub fn observe(&self, sums: &mut Sums, row: &[Cell]) {
        sums.distinct += 1;
        match self.metered {
            Metered::Usage(at) => {
                if let Cell::Dec(v) = row[at] {
                    sums.metered += v;
                }
            }
            Metered::Recon { subtotal, meter, charge, rate } => {
                let metered_line = !matches!(row[meter], Cell::Null)
                    && !matches!(&row[charge], Cell::Str(c) if c.eq_ignore_ascii_case("customerCredit"));
                if let (true, Cell::Dec(v)) = (metered_line, &row[subtotal]) {
                    sums.metered += v * TO_USAGE_SCALE;
                    sums.metered_lines += 1;
                    if let Cell::Dec(r) = row[rate] {
                        sums.max_rate = sums.max_rate.max(r);
                    }
                }
            }
            Metered::None => {}
        }
        if let Some((t, c)) = self.total
            && let (Cell::Dec(v), Cell::Str(currency)) = (&row[t], &row[c])
        {
            let entry = sums.total.get_or_insert_with(|| (currency.to_uppercase(), 0));
            entry.1 += v;
            sums.counted += 1;
        }
    }
}

/// What a check is of: the `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A document against its own lines, by its document kind.
    Document(DocumentKind),
    /// A document and the notes amending it, together.
    Net,
    /// An invoice's metered charges against its daily rated usage.
    Usage,
    /// A currency's summary balance against its documents.
    Summary,
    /// A sequence the v2 export could not serve yet.
    Export,
}

impl Kind {
    /// As the `kind` column spells it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Document(kind) => kind.tie_out_kind(),
            Kind::Net => "net",
            Kind::Usage => "usage",
            Kind::Summary => "summary",
            Kind::Export => "export",
        }
    }
}

/// The outcome of a check: the `status` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Equal to the minor unit, or within the residue Partner Center's rounding allows.
    Ok,
    /// Within `[reconcile] tolerance`.
    WithinTolerance,
    /// A difference nothing explains.
    Mismatch,
    /// An invoice a void note cancels (and its `net` check when the note reverses it exactly).
    Void,
    /// The lines are not served yet.
    NotReady,
    /// A summary that covers more than the run fetched (a run filtered by invoice date or id).
    Partial,
}

impl Status {
    /// As the `status` column spells it.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::WithinTolerance => "within_tolerance",
            Status::Mismatch => "mismatch",
            Status::Void => "void",
            Status::NotReady => "not_ready",
            Status::Partial => "partial",
        }
    }
}

/// Why a check has its status: the `classification` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Nothing to explain.
    None,
    /// An invoice and its notes are equal together.
    NetOfNotes,
    /// What rounding explains (within tolerance, or Partner Center's per-meter truncation).
    RoundingResidue,
    /// A stated total without any line.
    MissingLines,
    /// Lines that do not add up.
    Unexplained,
    /// A document without a stated total.
    MissingTotal,
    /// A note in another currency than the document it amends.
    CurrencyMismatch,
    /// Cancelled by a void note.
    Voided,
    /// The v2 export had no data yet.
    ExportNotReady,
    /// The run did not fetch every document the summary covers.
    FilteredRun,
}

impl Class {
    /// As the `classification` column spells it.
    pub fn name(self) -> &'static str {
        match self {
            Class::None => "none",
            Class::NetOfNotes => "net_of_notes",
            Class::RoundingResidue => "rounding_residue",
            Class::MissingLines => "missing_lines",
            Class::Unexplained => "unexplained",
            Class::MissingTotal => "missing_total",
            Class::CurrencyMismatch => "currency_mismatch",
            Class::Voided => "voided",
            Class::ExportNotReady => "export_not_ready",
            Class::FilteredRun => "filtered_run",
        }
    }
}

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

/// One row of `reconciliation`. Amounts are unscaled at the usage scale (22).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The document, `summary CCY`, or the scope of a sequence not ready.
    pub id: String,
    /// Billing currency.
    pub currency: String,
    /// What was stated (none for a document without a total, or a sequence not ready).
    pub stated: Option<i128>,
    /// What the lines add up to.
    pub lines_total: Option<i128>,
    /// The difference judged: stated − lines for documents and summaries; for usage, daily
    /// rated usage − metered charges (positive: usage above the charges, as truncation leaves).
    pub difference: Option<i128>,
    /// Lines counted.
    pub lines: u64,
    /// Outcome.
    pub status: Status,
    /// Why.
    pub class: Class,
    /// What is checked.
    pub kind: Kind,
    /// `documentType` as sent.
    pub document_type: Option<String>,
    /// The document a note amends.
    pub amends_of: Option<String>,
    /// The notes of a `net` check, or the dataset of an `export` check.
    pub related: Option<String>,
    /// What the export said, for checks not ready.
    pub detail: Option<String>,
}

impl Check {
    /// The row's cells, in the `reconciliation` schema's column order.
    pub fn cells(&self) -> Vec<Cell> {
        let text = |v: &Option<String>| v.clone().map_or(Cell::Null, Cell::Str);
        let amount = |v: Option<i128>| v.map_or(Cell::Null, Cell::Dec);
        vec![
            Cell::Str(self.id.clone()),
            Cell::Str(self.currency.clone()),
            amount(self.stated),
            amount(self.lines_total),
            amount(self.difference),
            Cell::Int(i64::try_from(self.lines).unwrap_or(i64::MAX)),
            Cell::Str(self.status.name().into()),
            Cell::Str(self.class.name().into()),
            Cell::Str(self.kind.name().into()),
            text(&self.document_type),
            text(&self.amends_of),
            text(&self.related),
            text(&self.detail),
        ]
    }

    fn of(id: &str, currency: &str, kind: Kind, stated: Option<i128>, sum: i128, lines: u64) -> Check {
        Check {
            id: id.to_owned(),
            currency: currency.to_owned(),
            stated: stated.map(|s| s * TO_USAGE_SCALE),
            lines_total: Some(sum * TO_USAGE_SCALE),
            difference: stated.map(|s| (s - sum) * TO_USAGE_SCALE),
            lines,
            status: Status::Ok,
            class: Class::None,
            kind,
            document_type: None,
            amends_of: None,
            related: None,
            detail: None,
        }
    }

    fn judged(mut self, (status, class): (Status, Class)) -> Check {
        (self.status, self.class) = (status, class);
        self
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

fn schema_named(name: &str) -> Option<&'static DatasetSchema> {
    registry().iter().find(|s| s.name == name)
}

/// The documents of the run, in the order of their rows.
fn documents<'a>(invoices: impl Iterator<Item = &'a Vec<Cell>>) -> Vec<Document> {
    let Some(schema) = schema_named("invoices") else { return Vec::new() };
    let at = |name: &str| schema.column(name);
    let (Some(id), Some(ccy), Some(total), Some(paid), Some(kind), Some(amends), Some(status), Some(amendments)) = (
        at("id"),
        at("currency_code"),
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
    let recon_not_ready = |id: &str| ledger.not_ready_of("billed_recon_line_items", id);
    let voided: BTreeSet<String> = docs
        .iter()
        .filter(|d| d.kind == DocumentKind::VoidNote)
        .filter_map(|d| d.amends_of.as_ref().map(|a| a.to_uppercase()))
        .chain(docs.iter().filter(|d| d.void).map(|d| d.id.to_uppercase()))
        .collect();
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
    if let Some(schema) = schema_named("invoice_summaries")
        && let (Some(ccy), Some(balance)) = (schema.column("currency_code"), schema.column("balance_amount"))
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
    let mut not_ready = ledger.not_ready_of("billed_recon_line_items", &doc.id).map(str::to_owned);
    let mut other_currency = false;
    for note in notes {
        stated = stated.zip(note.stated).map(|(a, b)| a + b);
        let (s, c) = ledger.lines_of(&note.id);
        sum += s;
        count += c;
        not_ready = not_ready.or_else(|| ledger.not_ready_of("billed_recon_line_items", &note.id).map(str::to_owned));
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
    let usage = ledger.sums_of("billed_consumption_line_items", invoice);
    let recon = ledger.sums_of("billed_recon_line_items", invoice).filter(|l| l.metered_lines > 0);
    if usage.is_none() && recon.is_none() {
        return None;
    }
    let charged = recon.map_or(0, |l| l.metered);
    let used = usage.map_or(0, |l| l.metered);
    let lines = recon.map_or(0, |l| l.metered_lines);
    let minor = currency.parse::<crate::model::money::Currency>().map_or(2, |c| c.minor_units());
    // Per line: 0.01 USD × rate (rate at scale 18 → ×10^2 to scale 22 after the 0.01) + one minor unit.
    let per_line = recon.map_or(0, |l| l.max_rate * 100) + 10i128.pow(22 - minor);
    let bound = per_line * i128::from(u32::try_from(lines).unwrap_or(u32::MAX));
    let difference = used - charged;
    let not_ready = ledger
        .not_ready_of("billed_consumption_line_items", invoice)
        .or_else(|| ledger.not_ready_of("billed_recon_line_items", invoice));
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
        let schema = schema_named("invoices").unwrap();
        let mut row = vec![Cell::Null; schema.columns.len()];
        let mut set = |name: &str, cell: Cell| row[schema.column(name).unwrap()] = cell;
        set("id", Cell::Str(id.into()));
        set("currency_code", Cell::Str(currency.into()));
        set("total_charges", Cell::Dec(total));
        set("paid_amount", Cell::Dec(0));
        set("document_type", Cell::Str(kind.into()));
        if let Some(a) = amends {
            set("amends_of", Cell::Str(a.into()));
        }
        row
    }

    fn recon_line(total: i128, currency: &str) -> Vec<Cell> {
        let schema = schema_named("billed_recon_line_items").unwrap();
        let mut row = vec![Cell::Null; schema.columns.len()];
        row[schema.column("total_for_customer").unwrap()] = Cell::Dec(total);
        row[schema.column("currency").unwrap()] = Cell::Str(currency.into());
        row
    }

    fn find<'a>(checks: &'a [Check], id: &str, kind: &str) -> &'a Check {
        checks.iter().find(|c| c.id == id && c.kind.name() == kind).unwrap()
    }

    #[test]
    fn an_invoice_ties_out_with_its_notes_and_notes_in_other_currencies_or_not_ready_are_named() {
        let recon = Observer::of(schema_named("billed_recon_line_items").unwrap());
        let mut ledger = Ledger::default();
        recon.observe(ledger.sums_mut("billed_recon_line_items", "G1"), &recon_line(1000, "EUR"));
        recon.observe(ledger.sums_mut("billed_recon_line_items", "C1"), &recon_line(-300, "EUR"));
        recon.observe(ledger.sums_mut("billed_recon_line_items", "G2"), &recon_line(500, "EUR"));
        recon.observe(ledger.sums_mut("billed_recon_line_items", "C2"), &recon_line(-100, "USD"));
        ledger.not_ready("billed_recon_line_items", "C3", "code 5000");
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
        let recon = Observer::of(schema_named("billed_recon_line_items").unwrap());
        let mut ledger = Ledger::default();
        recon.observe(ledger.sums_mut("billed_recon_line_items", "G1"), &recon_line(1000, "EUR"));
        recon.observe(ledger.sums_mut("billed_recon_line_items", "V1"), &recon_line(-1000, "EUR"));
        let mut rows =
            vec![invoice("G1", "EUR", 1000, "invoice", None), invoice("V1", "EUR", -1000, "void_note", Some("G1"))];
        let summary_schema = schema_named("invoice_summaries").unwrap();
        let mut summary = vec![Cell::Null; summary_schema.columns.len()];
        summary[summary_schema.column("currency_code").unwrap()] = Cell::Str("EUR".into());
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
        let schema = schema_named("invoices").unwrap();
        rows[0][schema.column("total_charges").unwrap()] = Cell::Null;
        rows[0][schema.column("document_type").unwrap()] = Cell::Null;
        rows.truncate(1);
        let checks = tie_out(&ledger, rows.iter(), std::iter::empty(), &Rules::default());
        assert_eq!(find(&checks, "G1", "invoice").class, Class::MissingTotal);
    }
}
