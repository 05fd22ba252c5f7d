//! The kinds of billing document Partner Center serves in its invoice list, and their status, as
//! the client reads them.
//!
//! Microsoft's invoice resource says `documentType` tells invoices from credit notes (its page
//! spells "Invoice" and "Credit Note"), while the SDK's enum names `invoice`, `void_note` and
//! `adjustment_note`; enums reach the wire in lower snake case. So a value is compared without
//! case, spaces or underscores, and one pcrecon does not know is kept as sent and treated as an
//! invoice-like document of its own. `status` is "such as active, void".

/// What a document of the invoice list is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DocumentKind {
    /// An invoice (also a rebill, which is an invoice like any other).
    Invoice,
    /// A credit note: charges of an earlier invoice credited back, on its own lines.
    CreditNote,
    /// An adjustment note: a correction of an earlier invoice.
    AdjustmentNote,
    /// A void note: an earlier invoice cancelled in full.
    VoidNote,
    /// A `documentType` pcrecon does not know (kept as sent in `invoices`).
    Other,
}

impl DocumentKind {
    /// Reads a `documentType` as sent; missing means an invoice.
    pub fn from_wire(value: Option<&str>) -> DocumentKind {
        let Some(value) = value else { return DocumentKind::Invoice };
        let folded: String =
            value.chars().filter(|c| !matches!(c, '_' | ' ' | '-')).map(|c| c.to_ascii_lowercase()).collect();
        match folded.as_str() {
            "" | "invoice" => DocumentKind::Invoice,
            "creditnote" => DocumentKind::CreditNote,
            "adjustmentnote" => DocumentKind::AdjustmentNote,
            "voidnote" => DocumentKind::VoidNote,
            _ => DocumentKind::Other,
        }
    }

    /// Whether the document amends another one (a note) rather than billing charges itself.
    pub fn is_note(self) -> bool {
        matches!(self, DocumentKind::CreditNote | DocumentKind::AdjustmentNote | DocumentKind::VoidNote)
    }

    /// The `kind` of its row in `reconciliation`.
    pub fn tie_out_kind(self) -> &'static str {
        match self {
            DocumentKind::Invoice => "invoice",
            DocumentKind::CreditNote => "credit_note",
            DocumentKind::AdjustmentNote => "adjustment_note",
            DocumentKind::VoidNote => "void_note",
            DocumentKind::Other => "document",
        }
    }
}

/// Whether a `status` says the document was voided.
pub fn is_void_status(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.trim().eq_ignore_ascii_case("void") || v.trim().eq_ignore_ascii_case("voided"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_spelling_is_read() {
        for (wire, kind) in [
            (Some("invoice"), DocumentKind::Invoice),
            (Some("Invoice"), DocumentKind::Invoice),
            (None, DocumentKind::Invoice),
            (Some("Credit Note"), DocumentKind::CreditNote),
            (Some("credit_note"), DocumentKind::CreditNote),
            (Some("CreditNote"), DocumentKind::CreditNote),
            (Some("void_note"), DocumentKind::VoidNote),
            (Some("adjustment_note"), DocumentKind::AdjustmentNote),
            (Some("rebate_memo"), DocumentKind::Other),
        ] {
            assert_eq!(DocumentKind::from_wire(wire), kind, "{wire:?}");
        }
        assert!(is_void_status(Some("Void")));
        assert!(!is_void_status(Some("active")));
        assert!(!is_void_status(None));
    }
}
