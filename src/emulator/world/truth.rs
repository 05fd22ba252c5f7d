//! Ground truth of a generated world: what a client that reads every endpoint must get back
//! (row counts and decimal control totals per dataset), every invoice's stated and computed
//! totals, and every anomaly the generator planted on purpose.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Serialize;

use crate::model::money::Currency;

/// Dataset names, as DESIGN.md names the outputs.
pub mod dataset {
    /// Invoices (top-level documents of the invoice list).
    pub const INVOICES: &str = "invoices";
    /// One summary per currency.
    pub const INVOICE_SUMMARIES: &str = "invoice_summaries";
    /// Billed new-commerce reconciliation lines.
    pub const BILLED_RECON: &str = "billed_recon_line_items";
    /// Unbilled new-commerce reconciliation lines.
    pub const UNBILLED_RECON: &str = "unbilled_recon_line_items";
    /// Billed daily rated usage.
    pub const BILLED_USAGE: &str = "billed_consumption_line_items";
    /// Unbilled daily rated usage.
    pub const UNBILLED_USAGE: &str = "unbilled_consumption_line_items";
    /// Legacy Office licence lines.
    pub const LEGACY_OFFICE: &str = "legacy_office_line_items";
    /// Legacy Azure billing lines.
    pub const LEGACY_AZURE: &str = "legacy_azure_line_items";
    /// Legacy Azure daily usage lines (quantities only).
    pub const LEGACY_AZURE_USAGE: &str = "legacy_azure_usage_line_items";
    /// Customers.
    pub const CUSTOMERS: &str = "customers";
    /// Orders.
    pub const ORDERS: &str = "orders";
    /// Lines of orders.
    pub const ORDER_LINE_ITEMS: &str = "order_line_items";
    /// Subscriptions.
    pub const SUBSCRIPTIONS: &str = "subscriptions";
    /// Entitlements.
    pub const ENTITLEMENTS: &str = "entitlements";
}

/// Σ field per dataset × currency.
pub type FieldSums = BTreeMap<&'static str, BTreeMap<Currency, BTreeMap<&'static str, Decimal>>>;

/// Row counts and control totals, accumulated while the world is written.
///
/// A line the API serves twice is two rows but one charge: its amounts count once in
/// [`Tally::totals`], and the second copy's in [`Tally::served_twice`].
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Rows served per dataset (duplicates included: they are served).
    pub counts: BTreeMap<&'static str, u64>,
    /// Σ field per dataset × currency, over every distinct line.
    pub totals: FieldSums,
    /// Copies served after the first, per dataset.
    pub served_twice_rows: BTreeMap<&'static str, u64>,
    /// Σ field per dataset × currency over those copies.
    pub served_twice: FieldSums,
}

/// Adds `amount` at `dataset` × `currency` × `field`.
fn add_to(sums: &mut FieldSums, dataset: &'static str, currency: Currency, field: &'static str, amount: Decimal) {
    *sums.entry(dataset).or_default().entry(currency).or_default().entry(field).or_default() += amount;
}

/// Adds every sum of `more` into `sums`.
fn merge_sums(sums: &mut FieldSums, more: FieldSums) {
    for (dataset, by_currency) in more {
        for (currency, fields) in by_currency {
            for (field, amount) in fields {
                add_to(sums, dataset, currency, field, amount);
            }
        }
    }
}

impl Tally {
    /// Counts one served row.
    pub fn row(&mut self, dataset: &'static str) {
        *self.counts.entry(dataset).or_default() += 1;
    }

    /// Adds an amount to a control total.
    pub fn add(&mut self, dataset: &'static str, currency: Currency, field: &'static str, amount: Decimal) {
        add_to(&mut self.totals, dataset, currency, field, amount);
    }

    /// Counts a line served `copies` times with its `amounts`: every copy is a row, the first
    /// counts in the control totals and the others beside them.
    pub fn line(
        &mut self,
        dataset: &'static str,
        currency: Currency,
        copies: u32,
        amounts: &[(&'static str, Decimal)],
    ) {
        for copy in 0..copies {
            self.row(dataset);
            let sums = if copy == 0 {
                &mut self.totals
            } else {
                *self.served_twice_rows.entry(dataset).or_default() += 1;
                &mut self.served_twice
            };
            for &(field, amount) in amounts {
                add_to(sums, dataset, currency, field, amount);
            }
        }
    }

    /// Adds another tally into this one.
    pub fn merge(&mut self, other: Tally) {
        for (k, v) in other.counts {
            *self.counts.entry(k).or_default() += v;
        }
        for (k, v) in other.served_twice_rows {
            *self.served_twice_rows.entry(k).or_default() += v;
        }
        merge_sums(&mut self.totals, other.totals);
        merge_sums(&mut self.served_twice, other.served_twice);
    }
}

/// One planted anomaly.
#[derive(Debug, Clone, Serialize)]
pub struct Anomaly {
    /// `order_not_found`, `subscription_not_found`, `entitlement_not_found`, `entitlement_expired`,
    /// `customer_mismatch`, `duplicate_line`, `invoice_total_mismatch`.
    pub kind: &'static str,
    /// Dataset of the line (or `invoices`).
    pub dataset: &'static str,
    /// Invoice the line is billed on.
    pub invoice_id: String,
    /// Billing currency.
    pub currency: Currency,
    /// `customerId` as the line spells it.
    pub customer_id: String,
    /// `orderId` of the line (recon lines).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// `subscriptionId` of the line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    /// The entitlement key the line names: `reservationOrderId` (recon) or `benefitOrderId` (usage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entitlement_id: Option<String>,
    /// Zero-based position of the line among the rows served for its invoice and dataset (for a
    /// duplicate, the position of the second copy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// The line's identifying fields, as served.
    pub line: BTreeMap<&'static str, String>,
}

/// Truth about one invoice.
#[derive(Debug, Clone, Serialize)]
pub struct InvoiceTruth {
    /// Invoice id.
    pub invoice_id: String,
    /// `documentType`.
    pub document_type: &'static str,
    /// `G` new commerce or `D` legacy.
    pub commerce: &'static str,
    /// Billing currency.
    pub currency: Currency,
    /// Billing period (`YYYY-MM`).
    pub billing_period: String,
    /// `status`: `active`, or `void` for an invoice a void note cancels.
    pub status: &'static str,
    /// `amendsOf`: the invoice a note amends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amends_of: Option<String>,
    /// `amendments`: the notes amending this invoice.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub amendments: Vec<String>,
    /// The voided invoice this one bills again (a rebill names nothing on the wire: this is the
    /// world's own record).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebill_of: Option<String>,
    /// The rebill of a voided invoice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebilled_by: Option<String>,
    /// `totalCharges` as served.
    pub stated_total: Decimal,
    /// `paidAmount` as served: negative once a payment is received.
    pub paid_amount: Decimal,
    /// What is still owed: `totalCharges + paidAmount`.
    pub owed: Decimal,
    /// Σ of the invoice's distinct lines by Microsoft's rule (duplicates counted once).
    pub lines_total: Decimal,
    /// Σ of every line served for the invoice (duplicates counted twice).
    pub served_lines_total: Decimal,
    /// Lines served per dataset.
    pub lines: BTreeMap<&'static str, u64>,
    /// What a tie-out of this document against its own lines finds: `ok`, `mismatch` (a planted
    /// `invoice_total_mismatch`) or `void` (a voided invoice).
    pub tie_out: &'static str,
    /// For an invoice with notes: the invoice and its notes together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net: Option<NetTruth>,
}

/// An invoice and the notes amending it, tied out together.
#[derive(Debug, Clone, Serialize)]
pub struct NetTruth {
    /// Σ `totalCharges` of the invoice and its notes.
    pub stated_total: Decimal,
    /// Σ of their distinct lines.
    pub lines_total: Decimal,
    /// `ok`, `mismatch`, or `void` when a void note cancels the invoice.
    pub tie_out: &'static str,
}

/// Truth about one billing currency's summary.
#[derive(Debug, Clone, Serialize)]
pub struct SummaryTruth {
    /// Billing currency.
    pub currency: Currency,
    /// `balanceAmount`: Σ `totalCharges + paidAmount` over every document of the currency.
    pub balance: Decimal,
    /// Documents in the currency.
    pub documents: u64,
    /// What the summary tie-out finds: `ok`.
    pub tie_out: &'static str,
}

/// Truth about one unbilled (currency, period) pair.
#[derive(Debug, Clone, Serialize)]
pub struct UnbilledTruth {
    /// Billing currency.
    pub currency: Currency,
    /// `current` or `previous`.
    pub period: &'static str,
    /// The month the period is (`YYYY-MM`).
    pub billing_period: String,
    /// Lines served per dataset.
    pub lines: BTreeMap<&'static str, u64>,
}

/// The whole `truth.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Truth {
    /// Generator seed.
    pub seed: u64,
    /// Partner tenant id.
    pub partner_tenant_id: String,
    /// The world's date.
    pub as_of: String,
    /// Generator arguments, so the world can be made again.
    pub generator: BTreeMap<&'static str, String>,
    /// Rows served per dataset.
    pub datasets: BTreeMap<&'static str, u64>,
    /// Σ per dataset × currency × field over every distinct line (a line served twice once).
    pub control_totals: FieldSums,
    /// Copies served after the first, per dataset (none: absent).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub served_twice_rows: BTreeMap<&'static str, u64>,
    /// Σ per dataset × currency × field over those copies.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub served_twice_totals: FieldSums,
    /// Every document of the invoice list: invoices, notes and rebills.
    pub invoices: Vec<InvoiceTruth>,
    /// Every billing currency's summary.
    pub summaries: Vec<SummaryTruth>,
    /// Every unbilled (currency, period).
    pub unbilled: Vec<UnbilledTruth>,
    /// Every planted anomaly.
    pub anomalies: Vec<Anomaly>,
    /// Restatements of this revision of the world (none in revision 0).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restated: Vec<Restatement>,
}

/// One billed line re-priced by a world revision.
#[derive(Debug, Clone, Serialize)]
pub struct Restatement {
    /// The revision that made it (1 = the first).
    pub revision: u32,
    /// The invoice it changes.
    pub invoice_id: String,
    /// The line's `referenceId`, which identifies it.
    pub reference_id: String,
    /// The line's `totalForCustomer` before and after.
    pub total_before: Decimal,
    /// After.
    pub total_after: Decimal,
}
