//! The output datasets and the types of their cells: for each, its columns (snake_case name, type, decimal scale,
//! nullability, the API field it comes from), its key columns, how it is partitioned and which
//! columns make its control totals. `schemas/<dataset>.json` is written from these tables
//! (`pcrecon schemas --out schemas`), and a test fails when the files and the code disagree.

use serde::Serialize;

/// Types a column can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    /// Text (JSON-in-string fields stay text).
    Utf8,
    /// An exact decimal with a fixed number of fractional digits: Decimal128(38, scale).
    Decimal {
        /// Fractional digits.
        scale: u32,
    },
    /// A whole number.
    Int64,
    /// A boolean.
    Bool,
    /// An instant, UTC, nanoseconds: the API's seven fractional digits survive; the range is
    /// 1677-2262, so far-future sentinels belong in [`ColType::Date`] columns.
    Timestamp,
    /// An instant, UTC, microseconds: for far-future ends (`9999-12-31T23:59:59Z`); a value
    /// with sub-microsecond digits is an error.
    TimestampMicros,
    /// A calendar day (the value must be midnight UTC); holds `9999-12-31`.
    Date,
    /// Any JSON value kept as its compact text (arrays such as `productQualifiers`).
    Json,
}

/// One decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// No value.
    Null,
    /// Text.
    Str(String),
    /// Exact decimal as Decimal128: the unscaled value at its column's scale.
    Dec(i128),
    /// Whole number.
    Int(i64),
    /// Boolean.
    Bool(bool),
    /// Nanoseconds (or, in a [`ColType::TimestampMicros`] column, microseconds) since
    /// 1970-01-01T00:00:00Z.
    Timestamp(i64),
    /// Days since 1970-01-01.
    Date(i32),
}

/// Fractional digits of amounts in a billing currency (subtotals, totals, taxes).
pub const AMOUNT: ColType = ColType::Decimal { scale: 10 };
/// Fractional digits of unit prices (prorated prices have 28 significant digits).
pub const PRICE: ColType = ColType::Decimal { scale: 28 };
/// Fractional digits of quantities.
pub const QUANTITY: ColType = ColType::Decimal { scale: 18 };
/// Fractional digits of exchange rates.
pub const RATE: ColType = ColType::Decimal { scale: 18 };
/// Fractional digits of daily-rated-usage totals (unrounded products of quantity, price, rate).
pub const USAGE_TOTAL: ColType = ColType::Decimal { scale: 22 };
/// Fractional digits of credit rates (0.15, 1).
pub const FRACTION: ColType = ColType::Decimal { scale: 10 };

const S: ColType = ColType::Utf8;
const J: ColType = ColType::Json;
const TS: ColType = ColType::Timestamp;
const TSU: ColType = ColType::TimestampMicros;
const D: ColType = ColType::Date;
const I: ColType = ColType::Int64;
const B: ColType = ColType::Bool;

/// Where a column's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// An API field by path; later paths are aliases tried in order.
    Field(Vec<&'static str>),
    /// A fraction (`rateOfCredit`: 0.15), or else the same rate as a percentage (`creditPercentage`:
    /// 15, as the v2 export files write it) divided by 100, exactly.
    Percent {
        /// The fraction's field.
        field: &'static str,
        /// The percentage's field.
        percent: &'static str,
    },
    /// An API field, or when the item does not carry it (the v2 export files never do), what
    /// the request implies.
    Implied {
        /// The field.
        field: &'static str,
        /// What stands in for it.
        otherwise: Implied,
    },
    /// The scope of the request that returned the item (customer id for customer resources,
    /// invoice id for legacy lines, which do not carry it).
    Scope,
    /// A field of the parent resource (order line items take their order's id).
    Parent(&'static str),
    /// The row's stable key: SHA-256 of the key columns and the ordinal among exact duplicates.
    RowKey,
    /// Derived by currency normalisation.
    Fx(FxColumn),
    /// Decided by matching (see `matching`).
    Match(MatchColumn),
    /// The item's members that no column reads, as one JSON object (sorted by name), kept only
    /// with `[output] keep_unknown_fields = true`; counted and reported either way.
    Unread,
    /// A pricing-currency price in the billing currency: `price × rate`, truncated to the
    /// billing currency's minor units, as Partner Center's licence rule does (spec §9.4).
    BillingPrice {
        /// Price column (pricing currency).
        price: &'static str,
        /// `pc_to_bc_exchange_rate` column.
        rate: &'static str,
        /// Billing-currency column.
        currency: &'static str,
    },
}

/// What stands in for a field an item does not carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Implied {
    /// A constant: the value every item of the dataset has.
    Text(&'static str),
    /// Whether a decimal column (decoded before this one) is above zero.
    Positive(&'static str),
}

/// A column of the reporting-currency conversion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FxColumn {
    /// The reporting currency.
    ReportingCurrency,
    /// Billing → reporting rate used.
    Rate,
    /// Day of that rate.
    RateDate,
    /// Where the rate came from (the rate table's file name, or `identity`).
    RateSource,
    /// The amount × rate, exact and unrounded.
    Unrounded(&'static str),
    /// The amount × rate, rounded to the reporting currency's minor units.
    Rounded(&'static str),
}

/// A column of the match of a line item to what was sold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchColumn {
    /// `matched`, `order_not_found`, `subscription_not_found`, `entitlement_not_found`,
    /// `entitlement_expired`, `customer_mismatch`, `not_applicable`.
    Status,
    /// The rule that decided the status.
    Rule,
    /// The matched order id.
    Order,
    /// The matched subscription id.
    Subscription,
    /// The matched or named entitlement key.
    Entitlement,
}

/// Which amounts of a dataset are converted, and the dates its rate date rules read.
#[derive(Debug, Clone, Serialize)]
pub struct FxSpec {
    /// Amount columns in the billing currency.
    pub amounts: Vec<&'static str>,
    /// Column giving the `charge_end` rule's day.
    pub charge_end_column: &'static str,
    /// Column whose month gives the billing period when no invoice does.
    pub period_column: &'static str,
    /// Column giving the invoice date, in the invoices dataset itself.
    pub invoice_date_column: &'static str,
}

/// One column.
#[derive(Debug, Clone)]
pub struct Column {
    /// snake_case name.
    pub name: String,
    /// Where the value comes from.
    pub source: Source,
    /// Type.
    pub ty: ColType,
    /// Whether the value may be absent.
    pub nullable: bool,
}

impl Serialize for Column {
    /// `{name, type, precision?, scale?, nullable, source}` as the schema files show it.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("name", &self.name)?;
        map.serialize_entry("type", &arrow_type(self.ty))?;
        if let ColType::Decimal { scale } = self.ty {
            map.serialize_entry("precision", &38)?;
            map.serialize_entry("scale", &scale)?;
        }
        map.serialize_entry("nullable", &self.nullable)?;
        map.serialize_entry("source", &self.source)?;
        map.end()
    }
}

/// The Arrow type of a column type, as the schema files name it.
pub fn arrow_type(ty: ColType) -> String {
    match ty {
        ColType::Utf8 | ColType::Json => "Utf8".into(),
        ColType::Decimal { scale } => format!("Decimal128(38, {scale})"),
        ColType::Int64 => "Int64".into(),
        ColType::Bool => "Boolean".into(),
        ColType::Timestamp => "Timestamp(Nanosecond, UTC)".into(),
        ColType::TimestampMicros => "Timestamp(Microsecond, UTC)".into(),
        ColType::Date => "Date32".into(),
    }
}

/// How a dataset's files are partitioned by billing period (`period=YYYY-MM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Partition {
    /// Not partitioned (master data).
    None,
    /// By the month of each row's own date column.
    RowMonth(&'static str),
    /// By the billing period of the invoice the scope names.
    Invoice,
    /// By the month of a date column of the scope's rows (unbilled periods).
    ScopeMonth(&'static str),
}

/// One output dataset.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetSchema {
    /// Name, as DESIGN.md gives it.
    pub name: &'static str,
    /// Version of the column list; bumped on any change.
    pub version: u32,
    /// One line.
    pub description: &'static str,
    /// What one row is.
    pub grain: &'static str,
    /// The API call(s) it comes from.
    pub api: &'static str,
    /// Natural key columns (the input of `row_key`).
    pub keys: Vec<&'static str>,
    /// Partitioning.
    pub partition: Partition,
    /// Column holding the currency control totals are grouped by.
    pub currency_column: Option<&'static str>,
    /// Decimal columns summed into control totals.
    pub totals: Vec<&'static str>,
    /// Rows are the elements of this array of each item (order line items).
    pub explode: Option<&'static str>,
    /// Reporting-currency conversion, where the dataset has amounts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fx: Option<FxSpec>,
    /// The extracted dataset whose pages the rows come from, when it is not the dataset itself
    /// (`orders` for order lines); empty otherwise.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub from: &'static str,
    /// Columns in order.
    pub columns: Vec<Column>,
}

impl DatasetSchema {
    /// The extracted dataset this one is built from.
    pub fn source_dataset(&self) -> &'static str {
        if self.from.is_empty() { self.name } else { self.from }
    }

    /// Index of a column by name.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// snake_case of a camelCase wire name (`pcToBCExchangeRate` → `pc_to_bc_exchange_rate`).
pub fn snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
            if boundary {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c == '.' {
            out.push('_');
        } else {
            out.push(c);
        }
    }
    out
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
fn line_item_partition(name: &str) -> Partition {
    if name.starts_with("billed") { Partition::Invoice } else { Partition::ScopeMonth("charge_start_date") }
}

fn recon(name: &'static str, description: &'static str, api: &'static str) -> DatasetSchema {
    let columns = vec![
        f("partnerId", S),
        f("customerId", S),
        f("customerName", S),
        f("customerDomainName", S),
        f("customerCountry", S),
        f("invoiceNumber", S),
        f("mpnId", S),
        named("reseller_mpn_id", &["resellerMpnId", "tier2MpnId"], S),
        f("orderId", S),
        f("orderDate", TS),
        f("productId", S),
        f("skuId", S),
        f("availabilityId", S),
        f("productName", S),
        f("skuName", S),
        f("productQualifiers", J),
        f("chargeType", S),
        f("unitPrice", PRICE),
        f("effectiveUnitPrice", PRICE),
        f("unitType", S),
        f("quantity", QUANTITY),
        f("subtotal", AMOUNT),
        f("taxTotal", AMOUNT),
        named("total_for_customer", &["totalForCustomer", "total"], AMOUNT),
        f("currency", S),
        f("publisherName", S),
        f("publisherId", S),
        f("subscriptionDescription", S),
        f("subscriptionId", S),
        f("subscriptionStartDate", TS),
        f("subscriptionEndDate", TS),
        f("chargeStartDate", TS),
        f("chargeEndDate", TS),
        f("termAndBillingCycle", S),
        f("alternateId", S),
        f("referenceId", S),
        f("priceAdjustmentDescription", S),
        f("discountDetails", S),
        f("pricingCurrency", S),
        f("pcToBCExchangeRate", RATE),
        f("pcToBCExchangeRateDate", TS),
        f("billableQuantity", QUANTITY),
        f("meterDescription", S),
        f("billingFrequency", S),
        f("reservationOrderId", S),
        f("creditReasonCode", S),
        f("promotionId", S),
        // Only the v2 export's files carry it (spec §17.5); v1 rows leave it empty.
        f("productCategory", S),
        implied("invoiceLineItemType", Implied::Text("billing_line_items"), S),
        implied("billingProvider", Implied::Text("one_time"), S),
        billing_price("unit_price", "currency"),
        billing_price("effective_unit_price", "currency"),
        row_key(),
    ];
    DatasetSchema {
        name,
        version: 2,
        description,
        grain: "one charge",
        api,
        keys: vec![
            "invoice_number",
            "order_id",
            "subscription_id",
            "product_id",
            "sku_id",
            "availability_id",
            "charge_type",
            "charge_start_date",
            "charge_end_date",
            "reference_id",
            "meter_description",
            "reservation_order_id",
            "credit_reason_code",
        ],
        partition: line_item_partition(name),
        currency_column: Some("currency"),
        totals: vec!["subtotal", "tax_total", "total_for_customer"],
        explode: None,
        from: "",
        fx: None,
        columns,
    }
}

fn usage(name: &'static str, description: &'static str, api: &'static str) -> DatasetSchema {
    let columns = vec![
        f("partnerId", S),
        f("partnerName", S),
        f("customerId", S),
        f("customerName", S),
        f("customerDomainName", S),
        f("customerCountry", S),
        f("mpnId", S),
        named("reseller_mpn_id", &["resellerMpnId", "tier2MpnId"], S),
        f("invoiceNumber", S),
        f("productId", S),
        f("skuId", S),
        f("availabilityId", S),
        f("skuName", S),
        f("productName", S),
        f("publisherName", S),
        f("publisherId", S),
        f("subscriptionId", S),
        f("subscriptionDescription", S),
        f("chargeStartDate", TS),
        f("chargeEndDate", TS),
        f("usageDate", TS),
        f("meterType", S),
        f("meterCategory", S),
        f("meterId", S),
        f("meterSubCategory", S),
        f("meterName", S),
        f("meterRegion", S),
        named("unit_of_measure", &["unitOfMeasure", "unit"], S),
        f("resourceLocation", S),
        f("consumedService", S),
        f("resourceGroup", S),
        named("resource_uri", &["resourceUri"], S),
        f("tags", S),
        f("additionalInfo", S),
        named("service_info_1", &["serviceInfo1"], S),
        named("service_info_2", &["serviceInfo2"], S),
        f("chargeType", S),
        f("unitPrice", PRICE),
        f("quantity", QUANTITY),
        f("unitType", S),
        f("billingPreTaxTotal", USAGE_TOTAL),
        f("billingCurrency", S),
        f("pricingPreTaxTotal", USAGE_TOTAL),
        f("pricingCurrency", S),
        f("entitlementId", S),
        f("entitlementDescription", S),
        f("pcToBCExchangeRate", RATE),
        f("pcToBCExchangeRateDate", TS),
        f("effectiveUnitPrice", PRICE),
        percent("rateOfPartnerEarnedCredit", "partnerEarnedCreditPercentage"),
        implied("hasPartnerEarnedCredit", Implied::Positive("rate_of_partner_earned_credit"), B),
        percent("rateOfCredit", "creditPercentage"),
        f("creditType", S),
        f("benefitOrderId", S),
        f("benefitId", S),
        f("benefitType", S),
        implied("invoiceLineItemType", Implied::Text("usage_line_items"), S),
        implied("billingProvider", Implied::Text("marketplace"), S),
        billing_price("unit_price", "billing_currency"),
        billing_price("effective_unit_price", "billing_currency"),
        row_key(),
    ];
    DatasetSchema {
        name,
        version: 1,
        description,
        grain: "one day of one meter on one resource",
        api,
        keys: vec![
            "invoice_number",
            "subscription_id",
            "entitlement_id",
            "usage_date",
            "meter_id",
            "resource_uri",
            "charge_type",
            "benefit_order_id",
        ],
        partition: line_item_partition(name),
        currency_column: Some("billing_currency"),
        totals: vec!["quantity", "pricing_pre_tax_total", "billing_pre_tax_total"],
        explode: None,
        from: "",
        fx: None,
        columns,
    }
}

fn legacy_azure_base() -> Vec<Column> {
    vec![
        scope("invoice_id"),
        f("partnerId", S),
        f("partnerName", S),
        f("partnerBillableAccountId", S),
        f("customerId", S),
        f("customerCompanyName", S),
        f("mpnId", S),
        f("tier2MpnId", S),
        f("invoiceNumber", S),
        f("domainName", S),
        f("billingCycleType", S),
        f("subscriptionId", S),
        f("subscriptionName", S),
        f("subscriptionDescription", S),
        f("orderId", S),
        f("serviceName", S),
        f("serviceType", S),
        f("resourceGuid", S),
        f("resourceName", S),
        f("region", S),
        f("consumedQuantity", QUANTITY),
        f("chargeStartDate", D),
        f("chargeEndDate", D),
        f("unit", S),
    ]
}

/// Fractional digits of unrounded reporting-currency amounts (usage rows carry more digits).
const REPORTING: ColType = ColType::Decimal { scale: 24 };
const REPORTING_USAGE: ColType = ColType::Decimal { scale: 28 };
/// Rounded reporting amounts: up to three minor digits (KWD).
const REPORTING_ROUNDED: ColType = ColType::Decimal { scale: 3 };

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

/// Adds the match columns to a line-item dataset.
fn with_match(mut schema: DatasetSchema) -> DatasetSchema {
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

/// Datasets whose rows are line items (matched, deduplicated, tied out).
pub const LINE_ITEMS: [&str; 7] = [
    "billed_recon_line_items",
    "unbilled_recon_line_items",
    "billed_consumption_line_items",
    "unbilled_consumption_line_items",
    "legacy_office_line_items",
    "legacy_azure_line_items",
    "legacy_azure_usage_line_items",
];

/// Adds `unknown_fields` to a dataset read from API items (not to the rows of exploded arrays).
fn with_unread(mut schema: DatasetSchema) -> DatasetSchema {
    if schema.explode.is_none() {
        schema.columns.push(Column { name: "unknown_fields".into(), source: Source::Unread, ty: J, nullable: true });
        schema.version += 1;
    }
    schema
}

/// Every output dataset, in a fixed order, with the match columns of line items and the
/// reporting-currency columns of those that carry amounts.
pub fn all() -> Vec<DatasetSchema> {
    base()
        .into_iter()
        .map(with_unread)
        .map(|s| if LINE_ITEMS.contains(&s.name) { with_match(s) } else { s })
        .map(|s| {
            let recon =
                fx(&["subtotal", "tax_total", "total_for_customer"], "charge_end_date", "charge_start_date", "");
            match s.name {
                "invoices" => with_fx(
                    s,
                    fx(
                        &["total_charges", "paid_amount"],
                        "billing_period_end_date",
                        "billing_period_start_date",
                        "invoice_date",
                    ),
                    REPORTING,
                ),
                "invoice_summaries" => {
                    with_fx(s, fx(&["balance_amount"], "accounting_date", "accounting_date", ""), REPORTING)
                }
                "billed_recon_line_items" | "unbilled_recon_line_items" => with_fx(s, recon, REPORTING),
                "billed_consumption_line_items" | "unbilled_consumption_line_items" => {
                    with_fx(s, fx(&["billing_pre_tax_total"], "usage_date", "charge_start_date", ""), REPORTING_USAGE)
                }
                "legacy_office_line_items" => with_fx(
                    s,
                    fx(&["amount", "tax", "total_for_customer"], "charge_end_date", "charge_start_date", ""),
                    REPORTING,
                ),
                "legacy_azure_line_items" => with_fx(
                    s,
                    fx(&["pretax_charges", "tax_amount", "post_tax_total"], "charge_end_date", "charge_start_date", ""),
                    REPORTING,
                ),
                _ => s,
            }
        })
        .chain([match_exceptions(), reconciliation(), rejects()])
        .collect()
}

fn computed(name: &str, ty: ColType) -> Column {
    Column { name: name.into(), source: Source::Field(vec![]), ty, nullable: true }
}

/// Every line item that is not matched (or is served twice), with the reason and the keys.
pub fn match_exceptions() -> DatasetSchema {
    let mut s = dimension(
        "match_exceptions",
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
    s.from = "-";
    s
}

/// Each invoice's stated total against the sum of its lines.
pub fn reconciliation() -> DatasetSchema {
    let mut s = dimension(
        "reconciliation",
        "Each document's stated total against the sum of its distinct lines by Partner Center's rules, each invoice with the notes amending it, its metered charges against its daily rated usage, each currency's summary balance against its documents, and each sequence the v2 export could not serve yet",
        "one document (kind invoice, credit_note, adjustment_note, void_note), one invoice with its notes (kind net), one invoice's usage (kind usage), one billing currency (kind summary), or one sequence not ready (kind export)",
        "computed",
        vec!["invoice_id", "currency", "kind"],
        vec![computed("invoice_id", S), computed("currency", S)],
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
    s.version = 2;
    // No control totals: its rows are of different kinds (invoice, usage, summary) whose sums
    // would mean nothing.
    s.from = "-";
    s
}

/// A master-data dataset: not partitioned, no amounts.
fn dimension(
    name: &'static str,
    description: &'static str,
    grain: &'static str,
    api: &'static str,
    keys: Vec<&'static str>,
    columns: Vec<Column>,
) -> DatasetSchema {
    DatasetSchema {
        name,
        version: 1,
        description,
        grain,
        api,
        keys,
        partition: Partition::None,
        currency_column: None,
        totals: vec![],
        explode: None,
        from: "",
        fx: None,
        columns,
    }
}

/// `pcrecon diff`: one row per row added or removed, and per column changed, keyed by `row_key`.
pub fn diff_changes() -> DatasetSchema {
    let mut s = dimension(
        "diff_changes",
        "What `pcrecon diff` found between two snapshots: rows added or removed (the whole row as JSON in `after` or `before`) and, for rows whose key is in both, each changed column with its text before and after",
        "one added or removed row, or one changed column of a row",
        "pcrecon diff",
        vec!["dataset", "row_key", "column"],
        ["dataset", "change", "row_key", "column", "before", "after"].into_iter().map(|c| computed(c, S)).collect(),
    );
    s.from = "-";
    s
}

/// `pcrecon diff`: the change of each control total per dataset, currency and customer.
pub fn diff_totals() -> DatasetSchema {
    let mut s = dimension(
        "diff_totals",
        "The change of each control-total column between two snapshots, per dataset, currency and customer (after − before; rows that did not change contribute nothing)",
        "one dataset × currency × customer × control-total column that changed",
        "pcrecon diff",
        vec!["dataset", "currency", "customer_id", "column"],
        ["dataset", "currency", "customer_id", "column"].into_iter().map(|c| computed(c, S)).collect(),
    );
    s.columns.push(computed("rows_delta", I));
    s.columns.push(computed("delta", USAGE_TOTAL));
    s.from = "-";
    s
}

/// Records that could not be decoded, when `[output] rejects = true` keeps a run going.
pub fn rejects() -> DatasetSchema {
    let text = |name: &str| Column { name: name.into(), source: Source::Field(vec![]), ty: S, nullable: false };
    let number = |name: &str| Column { name: name.into(), source: Source::Field(vec![]), ty: I, nullable: false };
    DatasetSchema {
        name: "rejects",
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
        from: "-",
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

/// The datasets with their API columns only.
fn base() -> Vec<DatasetSchema> {
    let mut legacy_azure = legacy_azure_base();
    legacy_azure.extend([
        f("detailLineItemId", I),
        f("sku", S),
        f("includedQuantity", QUANTITY),
        f("overageQuantity", QUANTITY),
        f("listPrice", PRICE),
        f("consumptionPrice", PRICE),
        f("consumptionDiscount", PRICE),
        f("currency", S),
        // `pretaxCharges` in the SDK and JSON, `preTaxCharges` in the docs: one field.
        f("pretaxCharges", AMOUNT),
        f("taxAmount", AMOUNT),
        f("postTaxTotal", AMOUNT),
        f("pretaxEffectiveRate", PRICE),
        f("postTaxEffectiveRate", PRICE),
        f("chargeType", S),
        f("invoiceLineItemType", S),
        f("billingProvider", S),
        row_key(),
    ]);
    let mut legacy_usage = legacy_azure_base();
    legacy_usage.extend([
        f("customerBillableAccount", S),
        f("usageDate", TS),
        f("meteredService", S),
        f("meteredServiceType", S),
        f("meteredRegion", S),
        f("project", S),
        f("serviceInfo", S),
        f("invoiceLineItemType", S),
        f("billingProvider", S),
        row_key(),
    ]);
    vec![
        DatasetSchema {
            name: "invoices",
            version: 2,
            description: "Invoices and credit documents, as GET /v1/invoices/{id} returns them",
            grain: "one invoice",
            api: "GET /v1/invoices/{id}",
            keys: vec!["id"],
            partition: Partition::RowMonth("billing_period_start_date"),
            currency_column: Some("currency_code"),
            totals: vec!["total_charges", "paid_amount"],
            explode: None,
            from: "",
            fx: None,
            columns: vec![
                required(f("id", S)),
                f("invoiceDate", TS),
                // Instants, as sent: Microsoft's own example carries a time of day.
                f("billingPeriodStartDate", TS),
                f("billingPeriodEndDate", TS),
                f("totalCharges", AMOUNT),
                f("paidAmount", AMOUNT),
                f("currencyCode", S),
                f("currencySymbol", S),
                f("documentType", S),
                f("invoiceType", S),
                f("amendsOf", S),
                f("status", S),
                f("pdfDownloadLink", S),
                f("invoiceDetails", J),
                f("amendments", J),
                f("taxReceipts", J),
            ],
        },
        DatasetSchema {
            name: "invoice_summaries",
            version: 1,
            description: "The partner's balance in one billing currency",
            grain: "one currency",
            api: "GET /v1/invoices/summaries",
            keys: vec!["currency_code"],
            partition: Partition::None,
            currency_column: Some("currency_code"),
            totals: vec!["balance_amount"],
            explode: None,
            from: "",
            fx: None,
            columns: vec![
                required(f("currencyCode", S)),
                f("currencySymbol", S),
                f("balanceAmount", AMOUNT),
                f("accountingDate", TS),
                f("firstInvoiceCreationDate", TS),
                f("lastPaymentDate", TS),
                f("lastPaymentAmount", AMOUNT),
                f("latestInvoiceDate", TS),
                f("details", J),
            ],
        },
        recon(
            "billed_recon_line_items",
            "Billed new-commerce charges of an invoice (OneTimeInvoiceLineItem)",
            "GET /v1/invoices/{id}/lineitems?provider=onetime&invoicelineitemtype=billinglineitems",
        ),
        recon(
            "unbilled_recon_line_items",
            "Open new-commerce charges not invoiced yet (OneTimeInvoiceLineItem)",
            "GET /v1/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=billinglineitems",
        ),
        usage(
            "billed_consumption_line_items",
            "Billed daily rated usage of an invoice (DailyRatedUsageLineItem)",
            "GET /v1/invoices/{id}/lineitems?provider=onetime&invoicelineitemtype=usagelineitems",
        ),
        usage(
            "unbilled_consumption_line_items",
            "Open daily rated usage not invoiced yet (DailyRatedUsageLineItem)",
            "GET /v1/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=usagelineitems",
        ),
        DatasetSchema {
            name: "legacy_office_line_items",
            version: 1,
            description: "Legacy licence-based charges of a D- invoice (LicenseBasedLineItem)",
            grain: "one legacy licence charge",
            api: "GET /v1/invoices/{id}/lineitems?provider=office&invoicelineitemtype=billinglineitems",
            keys: vec![
                "invoice_id",
                "order_id",
                "subscription_id",
                "charge_type",
                "charge_start_date",
                "charge_end_date",
            ],
            partition: Partition::Invoice,
            currency_column: Some("currency"),
            totals: vec!["amount", "tax", "total_for_customer"],
            explode: None,
            from: "",
            fx: None,
            columns: vec![
                scope("invoice_id"),
                f("partnerId", S),
                f("customerId", S),
                f("customerName", S),
                f("mpnId", S),
                f("tier2MpnId", S),
                f("orderId", S),
                f("subscriptionId", S),
                f("syndicationPartnerSubscriptionNumber", S),
                f("offerId", S),
                f("durableOfferId", S),
                f("offerName", S),
                f("domainName", S),
                f("billingCycleType", S),
                f("subscriptionName", S),
                f("subscriptionDescription", S),
                f("subscriptionStartDate", D),
                f("subscriptionEndDate", D),
                f("chargeStartDate", D),
                f("chargeEndDate", D),
                f("chargeType", S),
                f("unitPrice", PRICE),
                f("quantity", QUANTITY),
                f("amount", AMOUNT),
                f("totalOtherDiscount", AMOUNT),
                f("subtotal", AMOUNT),
                f("tax", AMOUNT),
                f("totalForCustomer", AMOUNT),
                f("currency", S),
                f("invoiceLineItemType", S),
                f("billingProvider", S),
                row_key(),
            ],
        },
        DatasetSchema {
            name: "legacy_azure_line_items",
            version: 1,
            description: "Legacy Azure (MS-AZR-0145P) charges of a D- invoice (UsageBasedLineItem)",
            grain: "one meter of one subscription in one cycle",
            api: "GET /v1/invoices/{id}/lineitems?provider=azure&invoicelineitemtype=billinglineitems",
            keys: vec!["invoice_id", "subscription_id", "resource_guid", "detail_line_item_id", "charge_start_date"],
            partition: Partition::Invoice,
            currency_column: Some("currency"),
            totals: vec!["pretax_charges", "tax_amount", "post_tax_total"],
            explode: None,
            from: "",
            fx: None,
            columns: legacy_azure,
        },
        DatasetSchema {
            name: "legacy_azure_usage_line_items",
            version: 1,
            description: "Legacy Azure daily usage quantities of a D- invoice (DailyUsageLineItem)",
            grain: "one day of one meter of one subscription",
            api: "GET /v1/invoices/{id}/lineitems?provider=azure&invoicelineitemtype=usagelineitems",
            keys: vec!["invoice_id", "subscription_id", "resource_guid", "usage_date"],
            partition: Partition::Invoice,
            currency_column: None,
            totals: vec!["consumed_quantity"],
            explode: None,
            from: "",
            fx: None,
            columns: legacy_usage,
        },
        dimension(
            "customers",
            "Customer tenants of the partner",
            "one customer",
            "GET /v1/customers",
            vec!["id"],
            vec![
                required(f("id", S)),
                named("tenant_id", &["companyProfile.tenantId"], S),
                named("company_name", &["companyProfile.companyName"], S),
                named("domain", &["companyProfile.domain"], S),
                f("relationshipToPartner", S),
                f("commerceId", S),
                f("allowDelegatedAccess", B),
                f("billingProfile", J),
                f("customDomains", J),
            ],
        ),
        dimension(
            "orders",
            "Orders of a customer",
            "one order",
            "GET /v1/customers/{id}/orders",
            vec!["id"],
            vec![
                scope("customer_id"),
                required(f("id", S)),
                f("alternateId", S),
                f("referenceCustomerId", S),
                f("billingCycle", S),
                f("transactionType", S),
                f("currencyCode", S),
                f("currencySymbol", S),
                f("creationDate", TS),
                f("status", S),
            ],
        ),
        DatasetSchema {
            name: "order_line_items",
            version: 1,
            description: "Lines of an order: what was bought, and the subscription it made",
            grain: "one order line",
            api: "GET /v1/customers/{id}/orders (lineItems)",
            keys: vec!["order_id", "line_item_number"],
            partition: Partition::None,
            currency_column: None,
            totals: vec![],
            explode: Some("lineItems"),
            from: "orders",
            fx: None,
            columns: vec![
                scope("customer_id"),
                Column { name: "order_id".into(), source: Source::Parent("id"), ty: S, nullable: false },
                f("lineItemNumber", I),
                f("offerId", S),
                f("subscriptionId", S),
                f("parentSubscriptionId", S),
                f("termDuration", S),
                f("transactionType", S),
                f("friendlyName", S),
                f("quantity", QUANTITY),
                f("partnerIdOnRecord", S),
                f("provisioningContext", J),
            ],
        },
        dimension(
            "subscriptions",
            "Subscriptions of a customer",
            "one subscription",
            "GET /v1/customers/{id}/subscriptions",
            vec!["id"],
            vec![
                scope("customer_id"),
                required(f("id", S)),
                f("entitlementId", S),
                f("offerId", S),
                f("offerName", S),
                f("friendlyName", S),
                named("product_type_id", &["productType.id"], S),
                f("quantity", QUANTITY),
                f("unitType", S),
                f("parentSubscriptionId", S),
                f("creationDate", TS),
                f("effectiveStartDate", TS),
                // An instant: Microsoft's examples give it a time of day, and 9999 for none.
                f("commitmentEndDate", TSU),
                f("commitmentEndDateTime", TSU),
                f("cancellationAllowedUntilDate", TSU),
                f("billingCycleEndDate", TSU),
                f("status", S),
                f("autoRenewEnabled", B),
                f("billingType", S),
                f("billingCycle", S),
                f("termDuration", S),
                f("renewalTermDuration", S),
                f("isTrial", B),
                f("contractType", S),
                f("orderId", S),
                f("partnerId", S),
                f("publisherName", S),
                f("promotionId", S),
                f("hasPurchasableAddons", B),
                f("isMicrosoftProduct", B),
                f("attentionNeeded", B),
                f("actionTaken", B),
                f("refundableQuantity", J),
                f("refundOptions", J),
                f("actions", J),
            ],
        ),
        dimension(
            "entitlements",
            "Entitlements (software, reservations) of a customer",
            "one entitlement",
            "GET /v1/customers/{id}/entitlements?showExpiry=true",
            vec!["customer_id", "reference_order_id", "reference_order_line_item_id", "product_id", "sku_id"],
            vec![
                scope("customer_id"),
                named("reference_order_id", &["referenceOrder.id"], S),
                named("reference_order_line_item_id", &["referenceOrder.lineItemId"], S),
                named("reference_order_alternate_id", &["referenceOrder.alternateId"], S),
                f("productId", S),
                named("sku_id", &["skuId", "skuID"], S),
                f("quantity", QUANTITY),
                f("entitlementType", S),
                f("fulfillmentState", S),
                f("expiryDate", TSU),
                named("reservation_order_id", &["entitledArtifacts.0.resourceId"], S),
                f("entitledArtifacts", J),
                f("includedEntitlements", J),
                f("dynamicAttributes", J),
                f("quantityDetails", J),
            ],
        ),
    ]
}

/// The dataset files of `schemas/`: one `<dataset>.json` per dataset and a `README.md` column
/// reference (with `v2-mapping.md`, [`crate::model::schema_files`] gives the whole folder).
pub fn files() -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut doc = String::from(
        "# Output datasets\n\nGenerated by `pcrecon schemas --out schemas` from the code; a test fails when they differ.\n",
    );
    for s in all().into_iter().chain([diff_changes(), diff_totals()]) {
        let json = serde_json::to_string_pretty(&s).unwrap_or_default();
        files.push((format!("{}.json", s.name), format!("{json}\n")));
        doc.push_str(&format!(
            "\n## `{}` (version {})\n\n{}. One row: {}. From `{}`.\n\n",
            s.name, s.version, s.description, s.grain, s.api
        ));
        doc.push_str(&format!("Key: `{}`. ", s.keys.join("`, `")));
        doc.push_str(match s.partition {
            Partition::None => "Not partitioned.\n\n",
            _ => "Partitioned by billing period (`period=YYYY-MM`).\n\n",
        });
        doc.push_str("| column | type | null | from |\n| --- | --- | --- | --- |\n");
        for c in &s.columns {
            let from = match &c.source {
                Source::Field(paths) => paths.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(" or "),
                Source::Percent { field, percent } => format!("`{field}`, or `{percent}` ÷ 100"),
                Source::Implied { field, otherwise: Implied::Text(value) } => {
                    format!("`{field}`, or `{value}` where the item lacks it (v2 export)")
                }
                Source::Implied { field, otherwise: Implied::Positive(column) } => {
                    format!("`{field}`, or `{column}` > 0 where the item lacks it (v2 export)")
                }
                Source::Scope => "the request's scope".into(),
                Source::Parent(p) => format!("parent `{p}`"),
                Source::RowKey => "SHA-256 of the key + ordinal".into(),
                Source::Fx(FxColumn::Unrounded(a)) => format!("`{a}` × `fx_rate`, exact"),
                Source::Fx(FxColumn::Rounded(a)) => format!("`{a}` × `fx_rate`, rounded to the reporting currency"),
                Source::Fx(_) => "currency normalisation".into(),
                Source::Match(_) => "matching".into(),
                Source::Unread => "members no column reads, as JSON (`keep_unknown_fields`)".into(),
                Source::BillingPrice { price, rate, .. } => {
                    format!("`{price}` × `{rate}`, truncated to the billing currency's minor units")
                }
            };
            let null = if c.nullable { "yes" } else { "no" };
            doc.push_str(&format!("| `{}` | {} | {null} | {from} |\n", c.name, arrow_type(c.ty)));
        }
    }
    files.push(("README.md".into(), doc));
    files
}

/// One dataset by name.
pub fn find(name: &str) -> Option<DatasetSchema> {
    all().into_iter().find(|s| s.name == name)
}

/// Every dataset, built once for the life of the process.
pub fn registry() -> &'static [DatasetSchema] {
    static ALL: std::sync::OnceLock<Vec<DatasetSchema>> = std::sync::OnceLock::new();
    ALL.get_or_init(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_become_snake_case() {
        assert_eq!(snake("pcToBCExchangeRate"), "pc_to_bc_exchange_rate");
        assert_eq!(snake("resourceURI"), "resource_uri");
        assert_eq!(snake("billingPreTaxTotal"), "billing_pre_tax_total");
        assert_eq!(snake("id"), "id");
        assert_eq!(snake("serviceInfo1"), "service_info1");
    }

    #[test]
    fn keys_totals_and_partitions_name_real_columns() {
        for s in all() {
            let mut names = std::collections::BTreeSet::new();
            for c in &s.columns {
                assert!(names.insert(c.name.as_str()), "{}: duplicate column {}", s.name, c.name);
            }
            for k in s.keys.iter().chain(&s.totals).chain(s.currency_column.iter()) {
                assert!(s.column(k).is_some(), "{}: {k} is not a column", s.name);
            }
            if let Some(fx) = &s.fx {
                for c in fx.amounts.iter().chain([&fx.charge_end_column, &fx.period_column]) {
                    assert!(s.column(c).is_some(), "{}: fx column {c}", s.name);
                }
            }
            for t in &s.totals {
                assert!(matches!(s.columns[s.column(t).unwrap()].ty, ColType::Decimal { .. }), "{}: {t}", s.name);
            }
            if let Partition::RowMonth(c) | Partition::ScopeMonth(c) = s.partition {
                assert!(s.column(c).is_some(), "{}: partition column {c}", s.name);
            }
        }
    }
}
