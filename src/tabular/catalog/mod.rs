//! The columns of every dataset, written out once: [`registry`] builds each table's
//! [`DatasetSchema`] from its API columns (`lines`, `master`), adds what pcrecon derives
//! (`unknown_fields`, the match columns of line items, the reporting-currency columns of those
//! with amounts), and holds the computed tables (`computed`).
//!
//! In: [`Dataset`]. Out: its schema. It decodes nothing and writes nothing.

mod computed;
mod focus;
mod lines;
mod master;

use super::column::*;
use super::dataset::{Dataset, ScopeKind};

const S: ColType = ColType::Utf8;
const J: ColType = ColType::Json;
const TS: ColType = ColType::Timestamp;
const TSU: ColType = ColType::TimestampMicros;
const D: ColType = ColType::Date;
const I: ColType = ColType::Int64;
const B: ColType = ColType::Bool;

/// Every table's schema, in [`Dataset::ALL`]'s order, built once for the life of the process.
pub fn registry() -> &'static [DatasetSchema] {
    static ALL: std::sync::OnceLock<Vec<DatasetSchema>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| Dataset::ALL.into_iter().filter_map(build).collect())
}

impl Dataset {
    /// Its schema: every table has one; documents and the invoice list are not tables.
    pub fn schema(self) -> Option<&'static DatasetSchema> {
        registry().iter().find(|s| s.name == self)
    }

    /// The tables a fetched dataset's pages fill (itself, and what is built from its items).
    pub fn tables_filled(self) -> impl Iterator<Item = &'static DatasetSchema> {
        registry().iter().filter(move |s| s.name.source().unwrap_or(s.name) == self)
    }
}

/// A dataset's schema: its API columns, then `unknown_fields`, the match columns of line items
/// and the reporting-currency columns of the datasets with amounts, in that order.
fn build(dataset: Dataset) -> Option<DatasetSchema> {
    let fetched = match dataset {
        Dataset::Invoices => master::invoices(),
        Dataset::InvoiceSummaries => master::invoice_summaries(),
        Dataset::BilledRecon => lines::recon(
            dataset,
            "Billed new-commerce charges of an invoice (OneTimeInvoiceLineItem)",
            "GET /v1/invoices/{id}/lineitems?provider=onetime&invoicelineitemtype=billinglineitems",
        ),
        Dataset::UnbilledRecon => lines::recon(
            dataset,
            "Open new-commerce charges not invoiced yet (OneTimeInvoiceLineItem)",
            "GET /v1/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=billinglineitems",
        ),
        Dataset::BilledUsage => lines::usage(
            dataset,
            "Billed daily rated usage of an invoice (DailyRatedUsageLineItem)",
            "GET /v1/invoices/{id}/lineitems?provider=onetime&invoicelineitemtype=usagelineitems",
        ),
        Dataset::UnbilledUsage => lines::usage(
            dataset,
            "Open daily rated usage not invoiced yet (DailyRatedUsageLineItem)",
            "GET /v1/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=usagelineitems",
        ),
        Dataset::LegacyOffice => lines::legacy_office(),
        Dataset::LegacyAzure => lines::legacy_azure(),
        Dataset::LegacyAzureUsage => lines::legacy_azure_usage(),
        Dataset::Customers => master::customers(),
        Dataset::Orders => master::orders(),
        Dataset::OrderLineItems => master::order_line_items(),
        Dataset::Subscriptions => master::subscriptions(),
        Dataset::Entitlements => master::entitlements(),
        Dataset::Documents | Dataset::InvoiceList | Dataset::FxRates | Dataset::Statements => return None,
        Dataset::MatchExceptions => return Some(computed::match_exceptions()),
        Dataset::Reconciliation => return Some(computed::reconciliation()),
        Dataset::Rejects => return Some(computed::rejects()),
        Dataset::CustomerCharges => return Some(computed::customer_charges()),
        Dataset::Focus => return Some(focus::focus()),
        Dataset::DiffChanges => return Some(computed::diff_changes()),
        Dataset::DiffTotals => return Some(computed::diff_totals()),
    };
    let mut schema = with_customer_key(with_exact_values(with_unread(fetched)));
    if dataset.is_line_item() {
        schema = with_match(schema);
    }
    if let Some((spec, unrounded)) = fx_of(dataset) {
        schema = with_fx(schema, spec, unrounded);
    }
    schema.built_from = dataset.source().map_or("", Dataset::name);
    Some(schema)
}

/// The amounts a dataset converts to the reporting currency, the date columns its rate rules
/// read, and the scale of the unrounded results.
fn fx_of(dataset: Dataset) -> Option<(FxSpec, ColType)> {
    let recon = || fx(&["subtotal", "tax_total", "total_for_customer"], "charge_end_date", "charge_start_date", "");
    Some(match dataset {
        Dataset::Invoices => (
            fx(
                &["total_charges", "paid_amount"],
                "billing_period_end_date",
                "billing_period_start_date",
                "invoice_date",
            ),
            REPORTING,
        ),
        Dataset::InvoiceSummaries => (fx(&["balance_amount"], "accounting_date", "accounting_date", ""), REPORTING),
        Dataset::BilledRecon | Dataset::UnbilledRecon => (recon(), REPORTING),
        Dataset::BilledUsage | Dataset::UnbilledUsage => {
            (fx(&["billing_pre_tax_total"], "usage_date", "charge_start_date", ""), REPORTING)
        }
        Dataset::LegacyOffice => {
            (fx(&["amount", "tax", "total_for_customer"], "charge_end_date", "charge_start_date", ""), REPORTING)
        }
        Dataset::LegacyAzure => (
            fx(&["pretax_charges", "tax_amount", "post_tax_total"], "charge_end_date", "charge_start_date", ""),
            REPORTING,
        ),
        _ => return None,
    })
}

fn f(path: &'static str, ty: ColType) -> Column {
    Column { name: snake(path), source: Source::Field(vec![path]), ty, nullable: true }
}

fn named(name: &str, paths: &[&'static str], ty: ColType) -> Column {
    Column { name: name.to_owned(), source: Source::Field(paths.to_vec()), ty, nullable: true }
}

fn implied(path: &'static str, otherwise: Implied, ty: ColType) -> Column {
    Column { name: snake(path), source: Source::Implied { field: path, otherwise }, ty, nullable: true }
}

fn percent(field: &'static str, percent: &'static str) -> Column {
    Column { name: snake(field), source: Source::Percent { field, percent }, ty: FRACTION, nullable: true }
}

fn required(mut c: Column) -> Column {
    c.nullable = false;
    c
}

fn scope(name: &str) -> Column {
    Column { name: name.to_owned(), source: Source::Scope, ty: S, nullable: false }
}

/// `<price>_billing`: a pricing-currency price converted with the line's own exchange rate.
fn billing_price(price: &'static str, currency: &'static str) -> Column {
    Column {
        name: format!("{price}_billing"),
        source: Source::BillingPrice { price, rate: "pc_to_bc_exchange_rate", currency },
        ty: AMOUNT,
        nullable: true,
    }
}

fn row_key() -> Column {
    Column { name: "row_key".into(), source: Source::RowKey, ty: S, nullable: false }
}

/// Billed lines go with their invoice's period; unbilled ones with the month they are charged in.
fn line_item_partition(dataset: Dataset) -> Partition {
    match dataset.scope_kind() {
        ScopeKind::Invoice => Partition::Invoice,
        _ => Partition::ScopeMonth("charge_start_date"),
    }
}

/// Fractional digits of unrounded reporting-currency amounts: an amount (10) × a rate (12) is
/// exact; a usage total (22) × a rate is rounded half-even to 22.
pub(crate) const REPORTING: ColType = ColType::decimal(22);
/// Rounded reporting amounts: up to three minor digits (KWD).
const REPORTING_ROUNDED: ColType = ColType::decimal(3);

fn fx_column(name: String, fx: FxColumn, ty: ColType) -> Column {
    Column { name, source: Source::Fx(fx), ty, nullable: true }
}

/// Adds the reporting-currency columns of `spec` to a dataset.
fn with_fx(mut schema: DatasetSchema, spec: FxSpec, unrounded: ColType) -> DatasetSchema {
    schema.columns.push(fx_column("reporting_currency".into(), FxColumn::ReportingCurrency, S));
    schema.columns.push(fx_column("fx_rate".into(), FxColumn::Rate, RATE));
    schema.columns.push(fx_column("fx_rate_date".into(), FxColumn::RateDate, D));
    schema.columns.push(fx_column("fx_rate_source".into(), FxColumn::RateSource, S));
    for amount in &spec.amounts {
        schema.columns.push(fx_column(format!("{amount}_reporting"), FxColumn::Unrounded(amount), unrounded));
        schema.columns.push(fx_column(
            format!("{amount}_reporting_rounded"),
            FxColumn::Rounded(amount),
            REPORTING_ROUNDED,
        ));
    }
    schema.fx = Some(spec);
    schema
}

fn fx(amounts: &[&'static str], charge_end: &'static str, period: &'static str, invoice_date: &'static str) -> FxSpec {
    FxSpec {
        amounts: amounts.to_vec(),
        charge_end_column: charge_end,
        period_column: period,
        invoice_date_column: invoice_date,
    }
}

/// Adds `customer_key` to a dataset that names a customer (its `customer_id`, or a customer's
/// own `id`).
fn with_customer_key(mut schema: DatasetSchema) -> DatasetSchema {
    let id = if schema.name == Dataset::Customers { "id" } else { "customer_id" };
    if schema.column(id).is_some() {
        schema.columns.push(customer_key(id));
        schema.version += 1;
    }
    schema
}

fn customer_key(id: &'static str) -> Column {
    Column { name: "customer_key".into(), source: Source::CustomerKey(id), ty: S, nullable: true }
}

/// Adds the duplicate and match columns to a line-item dataset.
fn with_match(mut schema: DatasetSchema) -> DatasetSchema {
    schema.columns.push(Column {
        name: "is_duplicate".into(),
        source: Source::Duplicate(Duplicate::Flag),
        ty: B,
        nullable: false,
    });
    schema.columns.push(Column {
        name: "duplicate_of".into(),
        source: Source::Duplicate(Duplicate::FirstCopy),
        ty: S,
        nullable: true,
    });
    schema.version += 1;
    for (name, column) in [
        ("match_status", MatchColumn::Status),
        ("match_rule", MatchColumn::Rule),
        ("matched_order_id", MatchColumn::Order),
        ("matched_subscription_id", MatchColumn::Subscription),
        ("matched_entitlement_id", MatchColumn::Entitlement),
    ] {
        schema.columns.push(Column { name: name.into(), source: Source::Match(column), ty: S, nullable: true });
    }
    schema
}

/// Adds `exact_values` to a dataset with a measure column, which may round what it is served.
fn with_exact_values(mut schema: DatasetSchema) -> DatasetSchema {
    let rounds = |c: &Column| matches!(c.ty, ColType::Decimal { excess: Excess::RoundKeepingServed, .. });
    if schema.columns.iter().any(rounds) {
        schema.columns.push(Column { name: "exact_values".into(), source: Source::ExactValues, ty: J, nullable: true });
        schema.version += 1;
    }
    schema
}

/// Adds `unknown_fields` to a dataset read from API items (not to the rows of exploded arrays).
fn with_unread(mut schema: DatasetSchema) -> DatasetSchema {
    if schema.explode.is_none() {
        schema.columns.push(Column { name: "unknown_fields".into(), source: Source::Unread, ty: J, nullable: true });
        schema.version += 1;
    }
    schema
}
