//! One row of `reconciliation`, typed: what is checked ([`Kind`]), its outcome ([`Status`]) and
//! why ([`Class`]), with the amounts compared.
//!
//! In: what the tie-out found. Out: the row's cells in the schema's column order. It computes
//! nothing.

use super::TO_USAGE_SCALE;
use crate::model::document::DocumentKind;
use crate::tabular::Cell;

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
    /// A document's stated total against Σ `BilledCost` of its FOCUS rows.
    FocusInvoice,
    /// A currency's charge lines against Σ `BilledCost` of its FOCUS rows.
    FocusCurrency,
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
            Kind::FocusInvoice => "focus_invoice",
            Kind::FocusCurrency => "focus_currency",
        }
    }
}

/// The entry of the manifest's `checks` a `reconciliation` row is counted in. The FOCUS
/// tie-outs repeat a document's mismatch when its own lines do not add up: counted apart, an
/// operator's count of mismatching documents stays one per document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckGroup {
    /// Documents, notes, usage, summaries and exports (`tie_out`).
    TieOut,
    /// The FOCUS rows against documents and currencies (`focus`).
    Focus,
}

impl CheckGroup {
    /// Both, in the order the manifest lists them.
    pub const ALL: [CheckGroup; 2] = [CheckGroup::TieOut, CheckGroup::Focus];

    /// As the manifest's `checks` names it.
    pub fn name(self) -> &'static str {
        match self {
            CheckGroup::TieOut => "tie_out",
            CheckGroup::Focus => "focus",
        }
    }

    /// The group of a row of kind `kind` (the `kind` column).
    pub fn of_kind(kind: &str) -> CheckGroup {
        if kind == Kind::FocusInvoice.name() || kind == Kind::FocusCurrency.name() {
            CheckGroup::Focus
        } else {
            CheckGroup::TieOut
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

    pub(super) fn of(id: &str, currency: &str, kind: Kind, stated: Option<i128>, sum: i128, lines: u64) -> Check {
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

    pub(super) fn judged(mut self, (status, class): (Status, Class)) -> Check {
        (self.status, self.class) = (status, class);
        self
    }
}
