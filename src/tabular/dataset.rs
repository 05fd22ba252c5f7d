//! The one list of datasets. Everything a stage needs to know about a dataset — its name, its
//! kind, what its scope is, whether the v2 export serves it, which column makes an invoice's
//! total, which dataset's pages fill it, and (from `catalog`) its schema — is a method of [`Dataset`], so no
//! other module lists dataset names or branches on one's spelling. (Which datasets the v2 export
//! serves is a fact of that export: `model::v2::ExportKind`.)
//!
//! In: nothing. Out: [`Dataset`] and its vocabulary ([`Kind`], [`ScopeKind`]). It holds no
//! column lists (those are in `catalog`) and knows nothing of HTTP or of the wire.

use std::fmt;

/// A dataset: one output table, or one kind of page the extraction produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dataset {
    /// Invoices and credit documents (`GET /v1/invoices/{id}`).
    Invoices,
    /// One balance per billing currency (`GET /v1/invoices/summaries`).
    InvoiceSummaries,
    /// Billed new-commerce charges of an invoice.
    BilledRecon,
    /// Open new-commerce charges not invoiced yet.
    UnbilledRecon,
    /// Billed daily rated usage of an invoice.
    BilledUsage,
    /// Open daily rated usage not invoiced yet.
    UnbilledUsage,
    /// Legacy licence-based charges of a D- invoice.
    LegacyOffice,
    /// Legacy Azure charges of a D- invoice.
    LegacyAzure,
    /// Legacy Azure daily usage quantities of a D- invoice.
    LegacyAzureUsage,
    /// The partner's customers.
    Customers,
    /// Orders of a customer.
    Orders,
    /// The lines of each order (built from the `orders` pages).
    OrderLineItems,
    /// Subscriptions of a customer.
    Subscriptions,
    /// Entitlements of a customer.
    Entitlements,
    /// Invoice statements as PDF files.
    Documents,
    /// The pages of the invoice list, read to plan the run; archived, never published.
    InvoiceList,
    /// Partner Center's monthly foreign exchange rates (CSV files, one per month), fetched when
    /// `[normalize] rate_source = "partner_center"`, kept as served.
    FxRates,
    /// Computed: line items that are not matched or were served twice.
    MatchExceptions,
    /// Computed: each tie-out check.
    Reconciliation,
    /// Computed: records that could not be decoded.
    Rejects,
    /// Computed: what each customer was billed, per billing period, currency, product and
    /// charge type, with the resale amount of the partner's markup.
    CustomerCharges,
    /// Computed: every billed and open charge as FOCUS 1.2 cost and usage rows.
    Focus,
    /// Computed: one CSV statement per customer and billing period (`[rebill] statements`),
    /// written whole like a file kept as served.
    Statements,
    /// Written by `pcrecon diff`: rows and columns that changed.
    DiffChanges,
    /// Written by `pcrecon diff`: the change of each control total.
    DiffTotals,
}

/// What a dataset's rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Charges and usage: matched, deduplicated, tied out, one part file per sequence.
    LineItem,
    /// Invoices, summaries and customer resources: the dimensions lines are matched against.
    MasterData,
    /// Files kept as served (invoice statements).
    File,
    /// Pages read only to plan the run.
    Listing,
    /// Tables pcrecon computes (reconciliation, exceptions, rejects, diffs).
    Computed,
}

/// What the scope of a dataset's sequences is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeKind {
    /// The whole partner tenant (one sequence).
    Tenant,
    /// One invoice (its id).
    Invoice,
    /// One customer (its id).
    Customer,
    /// One billing currency and unbilled period (`EUR/current`).
    Unbilled,
    /// One calendar month (`202501`).
    Month,
    /// No sequence: the table is computed.
    None,
}

impl Dataset {
    /// Every dataset, in the order outputs are listed.
    pub const ALL: [Dataset; 25] = [
        Dataset::Invoices,
        Dataset::InvoiceSummaries,
        Dataset::BilledRecon,
        Dataset::UnbilledRecon,
        Dataset::BilledUsage,
        Dataset::UnbilledUsage,
        Dataset::LegacyOffice,
        Dataset::LegacyAzure,
        Dataset::LegacyAzureUsage,
        Dataset::Customers,
        Dataset::Orders,
        Dataset::OrderLineItems,
        Dataset::Subscriptions,
        Dataset::Entitlements,
        Dataset::Documents,
        Dataset::InvoiceList,
        Dataset::FxRates,
        Dataset::MatchExceptions,
        Dataset::Reconciliation,
        Dataset::Rejects,
        Dataset::CustomerCharges,
        Dataset::Focus,
        Dataset::Statements,
        Dataset::DiffChanges,
        Dataset::DiffTotals,
    ];

    /// What the line items are matched and tied out against: fetched before any line item,
    /// and fetched whenever a line-item dataset is wanted.
    pub const DIMENSIONS: [Dataset; 4] =
        [Dataset::Invoices, Dataset::Orders, Dataset::Subscriptions, Dataset::Entitlements];

    /// The name, as outputs, configuration and logs spell it.
    pub const fn name(self) -> &'static str {
        match self {
            Dataset::Invoices => "invoices",
            Dataset::InvoiceSummaries => "invoice_summaries",
            Dataset::BilledRecon => "billed_recon_line_items",
            Dataset::UnbilledRecon => "unbilled_recon_line_items",
            Dataset::BilledUsage => "billed_consumption_line_items",
            Dataset::UnbilledUsage => "unbilled_consumption_line_items",
            Dataset::LegacyOffice => "legacy_office_line_items",
            Dataset::LegacyAzure => "legacy_azure_line_items",
            Dataset::LegacyAzureUsage => "legacy_azure_usage_line_items",
            Dataset::Customers => "customers",
            Dataset::Orders => "orders",
            Dataset::OrderLineItems => "order_line_items",
            Dataset::Subscriptions => "subscriptions",
            Dataset::Entitlements => "entitlements",
            Dataset::Documents => "documents",
            Dataset::InvoiceList => "invoice_list",
            Dataset::FxRates => "fxrates",
            Dataset::MatchExceptions => "match_exceptions",
            Dataset::Reconciliation => "reconciliation",
            Dataset::Rejects => "rejects",
            Dataset::CustomerCharges => "customer_charges",
            Dataset::Focus => "focus",
            Dataset::Statements => "statements",
            Dataset::DiffChanges => "diff_changes",
            Dataset::DiffTotals => "diff_totals",
        }
    }

    /// The dataset of a name.
    pub fn from_name(name: &str) -> Option<Dataset> {
        Dataset::ALL.into_iter().find(|d| d.name() == name)
    }

    /// What its rows are.
    pub const fn kind(self) -> Kind {
        match self {
            Dataset::BilledRecon
            | Dataset::UnbilledRecon
            | Dataset::BilledUsage
            | Dataset::UnbilledUsage
            | Dataset::LegacyOffice
            | Dataset::LegacyAzure
            | Dataset::LegacyAzureUsage => Kind::LineItem,
            Dataset::Invoices
            | Dataset::InvoiceSummaries
            | Dataset::Customers
            | Dataset::Orders
            | Dataset::OrderLineItems
            | Dataset::Subscriptions
            | Dataset::Entitlements => Kind::MasterData,
            Dataset::Documents | Dataset::FxRates | Dataset::Statements => Kind::File,
            Dataset::InvoiceList => Kind::Listing,
            Dataset::MatchExceptions
            | Dataset::Reconciliation
            | Dataset::Rejects
            | Dataset::CustomerCharges
            | Dataset::Focus
            | Dataset::DiffChanges
            | Dataset::DiffTotals => Kind::Computed,
        }
    }

    /// The file name extension of a file kept as served (statements are PDF, rates CSV), for
    /// datasets of [`Kind::File`].
    pub const fn file_extension(self) -> Option<&'static str> {
        match self {
            Dataset::Documents => Some("pdf"),
            Dataset::FxRates | Dataset::Statements => Some("csv"),
            _ => None,
        }
    }

    /// Whether its rows are line items.
    pub const fn is_line_item(self) -> bool {
        matches!(self.kind(), Kind::LineItem)
    }

    /// What the scope of its sequences is.
    pub const fn scope_kind(self) -> ScopeKind {
        match self {
            Dataset::Invoices
            | Dataset::Documents
            | Dataset::BilledRecon
            | Dataset::BilledUsage
            | Dataset::LegacyOffice
            | Dataset::LegacyAzure
            | Dataset::LegacyAzureUsage => ScopeKind::Invoice,
            Dataset::UnbilledRecon | Dataset::UnbilledUsage => ScopeKind::Unbilled,
            Dataset::FxRates => ScopeKind::Month,
            Dataset::Orders | Dataset::OrderLineItems | Dataset::Subscriptions | Dataset::Entitlements => {
                ScopeKind::Customer
            }
            Dataset::InvoiceSummaries | Dataset::Customers | Dataset::InvoiceList => ScopeKind::Tenant,
            Dataset::MatchExceptions
            | Dataset::Reconciliation
            | Dataset::Rejects
            | Dataset::CustomerCharges
            | Dataset::Focus
            | Dataset::Statements
            | Dataset::DiffChanges
            | Dataset::DiffTotals => ScopeKind::None,
        }
    }

    /// Whether `[extract] datasets` may name it (the rates come with `[normalize]` and the
    /// statements with `[rebill]`, not as datasets of their own).
    pub const fn is_selectable(self) -> bool {
        matches!(self.kind(), Kind::LineItem | Kind::MasterData | Kind::File)
            && self.source().is_none()
            && !matches!(self, Dataset::FxRates | Dataset::Statements)
    }

    /// Every dataset `[extract] datasets` may name, in [`Dataset::ALL`]'s order.
    pub fn selectable() -> impl Iterator<Item = Dataset> {
        Dataset::ALL.into_iter().filter(|d| d.is_selectable())
    }

    /// The fetched dataset whose pages fill this one, when it is not itself (`orders` fills
    /// `order_line_items`).
    pub const fn source(self) -> Option<Dataset> {
        match self {
            Dataset::OrderLineItems => Some(Dataset::Orders),
            _ => None,
        }
    }

    /// The column whose distinct-line sum is an invoice's total (spec §10.4): the customer
    /// total of new-commerce and legacy licence lines, the post-tax total of legacy Azure lines.
    /// Usage rows do not make the total: the metered recon lines already bill them.
    pub const fn invoice_total_column(self) -> Option<&'static str> {
        match self {
            Dataset::BilledRecon | Dataset::LegacyOffice => Some("total_for_customer"),
            Dataset::LegacyAzure => Some("post_tax_total"),
            _ => None,
        }
    }
}

impl Dataset {
    /// The column holding what one line is worth in its billing currency: the invoice-total
    /// column of billed lines, the same column of open ones, the billing total of daily rated
    /// usage. Legacy Azure usage carries quantities only.
    pub const fn line_amount_column(self) -> Option<&'static str> {
        match self {
            Dataset::UnbilledRecon => Some("total_for_customer"),
            Dataset::BilledUsage | Dataset::UnbilledUsage => Some("billing_pre_tax_total"),
            _ => self.invoice_total_column(),
        }
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Dataset {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        for d in Dataset::ALL {
            assert_eq!(Dataset::from_name(d.name()), Some(d));
        }
        let names: std::collections::BTreeSet<_> = Dataset::ALL.iter().map(|d| d.name()).collect();
        assert_eq!(names.len(), Dataset::ALL.len());
        assert_eq!(Dataset::from_name("nope"), None);
    }

    #[test]
    fn every_table_has_a_schema_and_files_and_listings_do_not() {
        for d in Dataset::ALL {
            let table = !matches!(d.kind(), Kind::File | Kind::Listing);
            assert_eq!(d.schema().is_some(), table, "{d}");
        }
    }

    #[test]
    fn dimensions_are_selectable_master_data() {
        for d in Dataset::DIMENSIONS {
            assert!(d.is_selectable() && d.kind() == Kind::MasterData, "{d}");
        }
        assert!(!Dataset::OrderLineItems.is_selectable());
        assert!(Dataset::Documents.is_selectable());
        assert_eq!(Dataset::selectable().count(), 14);
    }
}
