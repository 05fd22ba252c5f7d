//! The tables pcrecon computes: the tie-out checks, the match exceptions, the rejects, the
//! per-customer charges, and the two tables of `pcrecon diff`.
//!
//! In: nothing. Out: their schemas (their rows are built by `reconcile`, `pipeline` and `audit`).

use super::master::dimension;
use super::*;

fn computed(name: &str, ty: ColType) -> Column {
    Column { name: name.into(), source: Source::Field(vec![]), ty, nullable: true }
}

/// Every line item that is not matched (or is served twice), with the reason and the keys.
pub(super) fn match_exceptions() -> DatasetSchema {
    let mut s = dimension(
        Dataset::MatchExceptions,
        "Line items that do not belong to anything sold, or that were served twice, with the reason",
        "one exception of one line item",
        "computed",
        vec!["dataset", "scope", "position", "reason"],
        ["dataset", "scope"].into_iter().map(|c| computed(c, S)).collect(),
    );
    s.columns.push(computed("position", I));
    for c in ["reason", "match_rule", "customer_id", "order_id", "subscription_id", "entitlement_key", "failed_key"] {
        s.columns.push(computed(c, S));
    }
    // What the line is and what it is worth: the money at risk, without a join back to it.
    s.columns.push(computed("row_key", S));
    s.columns.push(computed("billing_currency", S));
    s.columns.push(computed("amount_column", S));
    // Usage amounts carry more digits than charges: the usage scale holds both exactly.
    s.columns.push(computed("amount", USAGE_TOTAL));
    s.columns.push(customer_key("customer_id"));
    s.currency_column = Some("billing_currency");
    s.totals = vec!["amount"];
    s.version += 2;
    s.built_from = "-";
    s
}

/// Each invoice's stated total against the sum of its lines.
pub(super) fn reconciliation() -> DatasetSchema {
    let mut s = dimension(
        Dataset::Reconciliation,
        "Each document's stated total against the sum of its distinct lines by Partner Center's rules, each invoice with the notes amending it, its metered charges against its daily rated usage, each currency's summary balance against its documents, each sequence the v2 export could not serve yet, and the FOCUS rows' BilledCost against each document's total and each currency's charge lines",
        "one document (kind invoice, credit_note, adjustment_note, void_note), one invoice with its notes (kind net), one invoice's usage (kind usage), one billing currency (kind summary), one sequence not ready (kind export), one document's FOCUS rows (kind focus_invoice), or one currency's FOCUS rows (kind focus_currency)",
        "computed",
        vec!["invoice_id", "billing_currency", "kind"],
        vec![computed("invoice_id", S), computed("billing_currency", S)],
    );
    // Usage rows carry the unrounded daily-rated-usage sums, hence the usage scale.
    for c in ["stated_total", "lines_total", "difference"] {
        s.columns.push(computed(c, USAGE_TOTAL));
    }
    s.columns.push(computed("lines", I));
    s.columns.push(computed("status", S));
    s.columns.push(computed("classification", S));
    s.columns.push(computed("kind", S));
    for c in ["document_type", "amends_of", "related_documents", "detail"] {
        s.columns.push(computed(c, S));
    }
    s.version = 3;
    // No control totals: its rows are of different kinds (invoice, usage, summary) whose sums
    // would mean nothing.
    s.built_from = "-";
    s
}

/// What each customer was billed: the distinct billed lines summed per customer, billing period,
/// currency, product, SKU and charge type, with the resale amount of the markup table.
pub(super) fn customer_charges() -> DatasetSchema {
    let mut s = dimension(
        Dataset::CustomerCharges,
        "What each customer was billed, for re-billing: the distinct billed lines (new commerce and legacy) summed per customer, billing period, billing currency, product, SKU and charge type; with [rebill], the markup that applies and the resale amount, rounded once to the currency's minor units",
        "one customer × billing period × billing currency × product × SKU × charge type × source dataset",
        "computed",
        vec![
            "customer_id",
            "billing_period",
            "billing_currency",
            "product_id",
            "sku_id",
            "charge_type",
            "source_dataset",
        ],
        [
            "customer_id",
            "customer_name",
            "billing_period",
            "billing_currency",
            "product_id",
            "sku_id",
            "product_name",
            "charge_type",
            "source_dataset",
        ]
        .into_iter()
        .map(|c| computed(c, S))
        .collect(),
    );
    s.columns.push(computed("lines", I));
    s.columns.push(computed("quantity", QUANTITY));
    for c in ["cost", "tax", "total"] {
        s.columns.push(computed(c, AMOUNT));
    }
    s.columns.push(computed("markup_rule", S));
    s.columns.push(computed("markup_percent", FRACTION));
    s.columns.push(computed("markup_fee", AMOUNT));
    // cost (10 digits) × (1 + percent / 100) (12) holds in the usage scale exactly.
    s.columns.push(computed("resale_unrounded", USAGE_TOTAL));
    s.columns.push(computed("resale", AMOUNT));
    s.columns.push(computed("resale_rounding_residue", USAGE_TOTAL));
    s.columns.push(customer_key("customer_id"));
    s.currency_column = Some("billing_currency");
    // The resale columns are null without a markup table: a total of them would be one of nulls.
    s.totals = vec!["cost", "tax", "total"];
    s.built_from = "-";
    s
}

/// `pcrecon diff`: one row per row added or removed, and per column changed, keyed by `row_key`.
pub(super) fn diff_changes() -> DatasetSchema {
    let mut s = dimension(
        Dataset::DiffChanges,
        "What `pcrecon diff` found between two snapshots: rows added or removed (the whole row as JSON in `after` or `before`) and, for rows whose key is in both, each changed column with its text before and after",
        "one added or removed row, or one changed column of a row",
        "pcrecon diff",
        vec!["dataset", "row_key", "column"],
        ["dataset", "change", "row_key", "column", "before", "after"].into_iter().map(|c| computed(c, S)).collect(),
    );
    // Which invoice, customer and billing month the row is of, without a join back to it.
    for c in ["invoice_id", "customer_key", "period"] {
        s.columns.push(computed(c, S));
    }
    s.version += 1;
    s.built_from = "-";
    s
}

/// `pcrecon diff`: the change of each control total per dataset, currency and customer.
pub(super) fn diff_totals() -> DatasetSchema {
    let mut s = dimension(
        Dataset::DiffTotals,
        "The change of each control-total column between two snapshots, per dataset, currency and customer (after − before; rows that did not change contribute nothing)",
        "one dataset × currency × customer × control-total column that changed",
        "pcrecon diff",
        vec!["dataset", "billing_currency", "customer_key", "column"],
        ["dataset", "billing_currency", "customer_key", "column"].into_iter().map(|c| computed(c, S)).collect(),
    );
    s.columns.push(computed("rows_delta", I));
    s.columns.push(computed("delta", USAGE_TOTAL));
    // The same change in the reporting currency, where the dataset converts that column.
    s.columns.push(computed("reporting_currency", S));
    s.columns.push(computed("delta_reporting", super::REPORTING));
    s.version += 2;
    s.built_from = "-";
    s
}

/// Records that could not be decoded, when `[output] rejects = true` keeps a run going.
pub(super) fn rejects() -> DatasetSchema {
    let text = |name: &str| Column { name: name.into(), source: Source::Field(vec![]), ty: S, nullable: false };
    let number = |name: &str| Column { name: name.into(), source: Source::Field(vec![]), ty: I, nullable: false };
    DatasetSchema {
        name: Dataset::Rejects,
        version: 1,
        description: "Records that could not be decoded, with the reason (only with [output] rejects = true)",
        grain: "one rejected record",
        api: "any",
        keys: vec!["dataset", "scope", "page", "record"],
        partition: Partition::None,
        currency_column: None,
        totals: vec![],
        explode: None,
        fx: None,
        built_from: "-",
        columns: vec![
            text("dataset"),
            text("scope"),
            number("page"),
            number("record"),
            text("field"),
            text("column"),
            text("reason"),
            text("item"),
        ],
    }
}
