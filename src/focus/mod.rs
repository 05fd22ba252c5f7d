//! FOCUS 1.2: every distinct billed and open charge line as cost and usage rows of the FinOps
//! Open Cost and Usage Specification, so that a partner's Microsoft CSP costs land in the same
//! tables as the rest of its cloud costs.
//!
//! Each distinct line (a later copy of a line served twice gives none) of new-commerce
//! reconciliation (billed and unbilled), legacy licence and legacy Azure charges gives one row,
//! and one `Tax` row when its tax is not zero; daily rated usage gives none (it is the detail
//! behind the metered recon lines, which bill it). BilledCost is what the line bills before
//! tax, and the tax row its tax: a document's rows add up to what its lines do. Lines of a
//! credit, adjustment or void note are corrections of an invoiced period (`ChargeClass =
//! Correction`). Nothing is amortized: EffectiveCost is BilledCost. List and contracted costs
//! are their unit price times the pricing quantity, exactly. How each column is filled, and
//! why, is `schemas/focus-mapping.md`.
//!
//! In: the batches of line items as written (after matching), the `invoices` rows. Out: the
//! `focus` batch of each, and what its rows add up to per invoice. It fetches and writes
//! nothing.

pub mod service;

use std::collections::{BTreeMap, HashMap};

use arrow_array::RecordBatch;

use crate::model::document::DocumentKind;
use crate::normalize::fx::day_of;
use crate::tabular::batch::{BatchBuilder, Columns};
use crate::tabular::{Cell, ColType, Dataset, DatasetSchema, Row, Value};

/// Why a line cannot be written as FOCUS rows.
#[derive(Debug, thiserror::Error)]
#[error("focus: {0}")]
pub struct FocusError(String);

/// What a run says of the billing account that FOCUS names on every row.
#[derive(Debug, Clone, Default)]
pub struct FocusOptions {
    /// `BillingAccountName` (`[focus] billing_account_name`; none: null).
    pub billing_account_name: Option<String>,
    /// `BillingAccountId` of a line without a partner id: the configured tenant.
    pub tenant_id: String,
}

/// `ChargeCategory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    Usage,
    Purchase,
    Tax,
    Credit,
    Adjustment,
}

impl Category {
    fn name(self) -> &'static str {
        match self {
            Category::Usage => "Usage",
            Category::Purchase => "Purchase",
            Category::Tax => "Tax",
            Category::Credit => "Credit",
            Category::Adjustment => "Adjustment",
        }
    }

    /// Usage and purchases carry unit prices and a pricing quantity; tax, credits and
    /// adjustments are amounts only.
    fn is_priced(self) -> bool {
        matches!(self, Category::Usage | Category::Purchase)
    }
}

/// `ChargeFrequency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frequency {
    OneTime,
    Recurring,
    UsageBased,
}

impl Frequency {
    fn name(self) -> &'static str {
        match self {
            Frequency::OneTime => "One-Time",
            Frequency::Recurring => "Recurring",
            Frequency::UsageBased => "Usage-Based",
        }
    }
}

/// Partner Center's new-commerce charge types of a purchase (spec §8: new, renew, cycleCharge,
/// addQuantity, removeQuantity, moveQuantity, cancelImmediate, convert, changeBillingPlan,
/// extendTerm; the docs also show Purchase, Refund, Cancel). Compared without case.
const PURCHASES: [&str; 13] = [
    "new",
    "renew",
    "cyclecharge",
    "addquantity",
    "removequantity",
    "movequantity",
    "cancelimmediate",
    "cancel",
    "convert",
    "changebillingplan",
    "extendterm",
    "purchase",
    "refund",
];

/// The charge type of an Azure credit (`customerCredit`, spec §10.3).
const CREDIT: &str = "customercredit";

/// Which kind of charge line a dataset holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// New commerce: prices in the pricing currency, converted by `pcToBCExchangeRate`.
    Recon,
    /// Legacy licences: billing-currency prices, no units.
    LegacyOffice,
    /// Legacy Azure: every line is metered.
    LegacyAzure,
}

/// Where one dataset keeps what FOCUS asks for (`""`: it has none).
struct Fields {
    shape: Shape,
    cost: &'static str,
    tax: &'static str,
    list_price: &'static str,
    contracted_price: &'static str,
    pricing_list_price: &'static str,
    pricing_contracted_price: &'static str,
    pricing_quantity: &'static str,
    consumed_quantity: &'static str,
    unit: &'static str,
    product_id: &'static str,
    sku_id: &'static str,
    product_name: &'static str,
    sku_name: &'static str,
    customer_name: &'static str,
    domain: &'static str,
    country: &'static str,
    reseller: &'static str,
}

/// The charge datasets FOCUS rows are made of, and their fields.
fn fields(dataset: Dataset) -> Option<Fields> {
    Some(match dataset {
        Dataset::BilledRecon | Dataset::UnbilledRecon => Fields {
            shape: Shape::Recon,
            cost: "subtotal",
            tax: "tax_total",
            list_price: "unit_price_billing",
            contracted_price: "effective_unit_price_billing",
            pricing_list_price: "unit_price",
            pricing_contracted_price: "effective_unit_price",
            pricing_quantity: "billable_quantity",
            consumed_quantity: "quantity",
            unit: "unit_type",
            product_id: "product_id",
            sku_id: "sku_id",
            product_name: "product_name",
            sku_name: "sku_name",
            customer_name: "customer_name",
            domain: "customer_domain_name",
            country: "customer_country",
            reseller: "reseller_mpn_id",
        },
        Dataset::LegacyOffice => Fields {
            shape: Shape::LegacyOffice,
            cost: "subtotal",
            tax: "tax",
            list_price: "unit_price",
            contracted_price: "unit_price",
            pricing_list_price: "unit_price",
            pricing_contracted_price: "unit_price",
            pricing_quantity: "quantity",
            consumed_quantity: "",
            unit: "",
            product_id: "offer_id",
            sku_id: "",
            product_name: "offer_name",
            sku_name: "offer_name",
            customer_name: "customer_name",
            domain: "domain_name",
            country: "",
            reseller: "tier2_mpn_id",
        },
        Dataset::LegacyAzure => Fields {
            shape: Shape::LegacyAzure,
            cost: "pretax_charges",
            tax: "tax_amount",
            list_price: "list_price",
            contracted_price: "consumption_price",
            pricing_list_price: "list_price",
            pricing_contracted_price: "consumption_price",
            pricing_quantity: "overage_quantity",
            consumed_quantity: "consumed_quantity",
            unit: "unit",
            product_id: "resource_guid",
            sku_id: "",
            product_name: "service_name",
            sku_name: "service_type",
            customer_name: "customer_company_name",
            domain: "domain_name",
            country: "",
            reseller: "tier2_mpn_id",
        },
        _ => None?,
    })
}

/// The scope of the `focus` part a charge sequence's rows go to (`dataset/scope`: one part per
/// sequence, as its lines have).
pub fn part_scope(dataset: Dataset, scope: &str) -> String {
    format!("{dataset}/{scope}")
}

/// Whether a dataset's lines become FOCUS rows.
pub fn is_source(dataset: Dataset) -> bool {
    fields(dataset).is_some()
}

/// One day in microseconds.
const DAY_MICROS: i64 = 86_400_000_000;

/// What FOCUS needs of a document: its billing period and whether it is a note.
#[derive(Debug, Clone, Copy)]
struct Document {
    /// Midnight UTC of the first day, and of the day after the last, in microseconds.
    period: Option<(i64, i64)>,
    note: bool,
}

/// What FOCUS rows add up to per upper-case `InvoiceId`: its currency, Σ `BilledCost` (at its
/// column's scale) and the rows.
pub type InvoiceSums = BTreeMap<String, (String, i128, u64)>;

/// The FOCUS rows of a run, sequence by sequence.
#[derive(Debug, Default)]
pub struct Focus {
    options: FocusOptions,
    /// By upper-case document id, read once from the `invoices` rows (which come first).
    documents: Option<HashMap<String, Document>>,
    /// The billing period of an open sequence: the month of its first line's charge start.
    open_periods: HashMap<(Dataset, String), (i64, i64)>,
    /// Per sequence, in order: the sums of every sequence are merged in the same order each run.
    sums: BTreeMap<(Dataset, String), InvoiceSums>,
}

/// A decimal at `from` fractional digits, at `to` (never dropping a digit).
fn rescale(value: i128, from: u32, to: u32) -> Option<i128> {
    if to >= from {
        value.checked_mul(10i128.checked_pow(to - from)?)
    } else {
        let factor = 10i128.checked_pow(from - to)?;
        (value % factor == 0).then_some(value / factor)
    }
}

/// Midnight UTC of a date or timestamp value's day, in microseconds.
fn day_start(value: &Value<'_>, ty: ColType) -> Option<i64> {
    Some(day_of(value, ty)?.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros())
}

/// The first day of the month of `micros` and of the month after, in microseconds.
fn month_bounds(micros: i64) -> Option<(i64, i64)> {
    use chrono::Datelike;
    let day = chrono::DateTime::from_timestamp_micros(micros)?.date_naive();
    let first = day.with_day(1)?;
    let next = first.checked_add_months(chrono::Months::new(1))?;
    let at = |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_micros());
    Some((at(first)?, at(next)?))
}

impl Focus {
    /// No rows yet.
    pub fn new(options: FocusOptions) -> Focus {
        Focus { options, ..Focus::default() }
    }

    /// Whether the documents are known (from the `invoices` rows, read once).
    pub fn knows_documents(&self) -> bool {
        self.documents.is_some()
    }

    /// Reads each document's billing period and kind from the `invoices` rows.
    pub fn learn_documents<'a>(&mut self, invoices: impl Iterator<Item = &'a Vec<Cell>>) {
        let mut documents = HashMap::new();
        if let Some(schema) = Dataset::Invoices.schema()
            && let (Some(id), Some(start), Some(end), Some(kind)) = (
                schema.column("id"),
                schema.column("billing_period_start_date"),
                schema.column("billing_period_end_date"),
                schema.column("document_type"),
            )
        {
            for row in invoices {
                let Cell::Str(identifier) = &row[id] else { continue };
                let day = |i: usize| day_start(&row[i].value(), schema.columns[i].ty);
                let period = day(start).zip(day(end)).map(|(s, e)| (s, e + DAY_MICROS));
                let document_type = match &row[kind] {
                    Cell::Str(s) => Some(s.as_str()),
                    _ => None,
                };
                let note = DocumentKind::from_wire(document_type).is_note();
                documents.insert(identifier.to_uppercase(), Document { period, note });
            }
        }
        self.documents = Some(documents);
    }

    /// Forgets what a sequence gave (it restarts from its first page).
    pub fn restart(&mut self, dataset: Dataset, scope: &str) {
        self.open_periods.remove(&(dataset, scope.to_owned()));
        self.sums.remove(&(dataset, scope.to_owned()));
    }

    /// What the rows of every sequence add up to per invoice (upper-case id): currency,
    /// Σ BilledCost (at its column's scale) and rows.
    pub fn invoice_sums(&self) -> Result<InvoiceSums, FocusError> {
        let mut all = InvoiceSums::new();
        for sums in self.sums.values() {
            for (invoice, (currency, sum, rows)) in sums {
                let entry = all.entry(invoice.clone()).or_insert_with(|| (currency.clone(), 0, 0));
                entry.1 = entry
                    .1
                    .checked_add(*sum)
                    .ok_or_else(|| FocusError(format!("invoice {invoice}: Σ BilledCost overflows")))?;
                entry.2 += rows;
            }
        }
        Ok(all)
    }

    /// The FOCUS rows of one batch of a charge dataset's sequence (`scope`), or none when the
    /// dataset gives none or every line was a copy.
    pub fn rows(
        &mut self,
        schema: &DatasetSchema,
        scope: &str,
        batch: &RecordBatch,
    ) -> Result<Option<RecordBatch>, FocusError> {
        let Some(f) = fields(schema.name) else { return Ok(None) };
        let Some(out) = Dataset::Focus.schema() else { return Ok(None) };
        let billed = schema.name.scope_kind() == crate::tabular::ScopeKind::Invoice;
        let columns = Columns::of(batch);
        let at = |name: &str| if name.is_empty() { None } else { schema.column(name) };
        let duplicate = at("is_duplicate");
        let target_scale = |name: &str| out.column(name).map_or(0, |i| out.columns[i].ty.scale());
        let mut builder = BatchBuilder::new(out, columns.rows());
        let documents = self.documents.get_or_insert_with(HashMap::new);
        let key = (schema.name, scope.to_owned());
        let sums = self.sums.entry(key.clone()).or_default();
        for r in 0..columns.rows() {
            let row = columns.row(r);
            if duplicate.is_some_and(|i| matches!(row.value(i), Value::Bool(true))) {
                continue;
            }
            let fail = |column: &str, what: &str| {
                FocusError(format!("{} {scope}, row {}, {column}: {what}", schema.name, r + 1))
            };
            let text = |name: &str| -> Option<String> {
                match at(name).map(|i| row.value(i)) {
                    Some(Value::Str(s)) if !s.trim().is_empty() => Some(s.into_owned()),
                    _ => None,
                }
            };
            // A decimal of the line, at the scale of the FOCUS column it fills.
            let decimal = |name: &str, into: &str| -> Result<Option<i128>, FocusError> {
                let Some(i) = at(name) else { return Ok(None) };
                match row.value(i) {
                    Value::Dec(v) => rescale(v, schema.columns[i].ty.scale(), target_scale(into))
                        .map(Some)
                        .ok_or_else(|| fail(name, &format!("{v} does not fit {into} exactly"))),
                    _ => Ok(None),
                }
            };
            let date = |name: &str| at(name).and_then(|i| day_start(&row.value(i), schema.columns[i].ty));

            let charge_type = text("charge_type");
            let folded = charge_type.as_deref().unwrap_or_default().to_lowercase();
            let metered = f.shape == Shape::LegacyAzure || text("meter_description").is_some();
            let category = if folded == CREDIT {
                Category::Credit
            } else if metered {
                Category::Usage
            } else if f.shape == Shape::LegacyOffice || PURCHASES.contains(&folded.as_str()) {
                Category::Purchase
            } else {
                Category::Adjustment
            };
            let frequency = match category {
                Category::Usage => Frequency::UsageBased,
                Category::Credit | Category::Adjustment | Category::Tax => Frequency::OneTime,
                Category::Purchase => {
                    let cycle = text("billing_frequency").unwrap_or_default().to_lowercase();
                    let term = text("term_and_billing_cycle").unwrap_or_default().to_lowercase();
                    let once = term.contains("perpetual")
                        || (cycle.is_empty() || cycle == "onetime") && text("reservation_order_id").is_some();
                    if once { Frequency::OneTime } else { Frequency::Recurring }
                }
            };

            let invoice = billed.then(|| text("invoice_id").unwrap_or_else(|| scope.to_owned()));
            let document = invoice.as_ref().and_then(|id| documents.get(&id.to_uppercase())).copied();
            let correction = document.is_some_and(|d| d.note);
            let period = match document.and_then(|d| d.period) {
                Some(period) => period,
                None => {
                    let first = date("charge_start_date").or_else(|| date("charge_end_date"));
                    match self.open_periods.get(&key) {
                        Some(period) => *period,
                        None => {
                            let period = first
                                .and_then(month_bounds)
                                .ok_or_else(|| fail("charge_start_date", "no billing period for the line"))?;
                            self.open_periods.insert(key.clone(), period);
                            period
                        }
                    }
                }
            };
            let charge_start = date("charge_start_date").unwrap_or(period.0);
            let charge_end = date("charge_end_date").map_or(period.1, |d| d + DAY_MICROS).max(charge_start);

            let currency = text(schema.currency_column.unwrap_or_default()).unwrap_or_default().trim().to_uppercase();
            if currency.is_empty() {
                return Err(fail(schema.currency_column.unwrap_or("billing_currency"), "no billing currency"));
            }
            let cost = decimal(f.cost, "BilledCost")?.unwrap_or(0);
            let tax = decimal(f.tax, "BilledCost")?.unwrap_or(0);
            let names = [text(f.product_name), text(f.sku_name)];
            let description = match f.shape {
                Shape::Recon => {
                    let [product, sku] = &names;
                    match (product, sku) {
                        (Some(p), Some(s)) if p != s => Some(format!("{p}, {s}")),
                        (Some(p), _) => Some(p.clone()),
                        (None, s) => s.clone(),
                    }
                }
                Shape::LegacyOffice => names[0].clone(),
                Shape::LegacyAzure => names.iter().flatten().cloned().reduce(|a, b| format!("{a} {b}")),
            };
            let service_name = match (metered, f.shape) {
                (true, Shape::Recon) => text("meter_description"),
                _ => names[0].clone(),
            }
            .or_else(|| description.clone())
            .unwrap_or_else(|| "Microsoft".to_owned());
            let service = service::of(&service_name);
            let sku_id = match f.shape {
                Shape::Recon => text(f.product_id).map(|p| format!("{p}:{}", text(f.sku_id).unwrap_or_default())),
                _ => text(f.product_id),
            };
            let sku_price_id = match f.shape {
                Shape::Recon => {
                    sku_id.as_ref().map(|s| text("availability_id").map_or_else(|| s.clone(), |a| format!("{s}:{a}")))
                }
                _ => sku_id.clone(),
            };
            let sku_meter = match (metered, f.shape) {
                (true, Shape::Recon) => text("meter_description"),
                _ => names[1].clone(),
            };
            let unit = match f.shape {
                Shape::LegacyOffice => Some("Licenses".to_owned()),
                _ => text(f.unit),
            }
            .unwrap_or_else(|| "Units".to_owned());
            let customer = text("customer_id");
            let region = text("region");
            let pricing_currency = match f.shape {
                Shape::Recon => text("pricing_currency").map(|c| c.trim().to_uppercase()),
                _ => None,
            }
            .unwrap_or_else(|| currency.clone());

            let mut push = |category: Category, billed_cost: i128| -> Result<(), FocusError> {
                let priced = category.is_priced();
                let price = |name: &str, into: &str| if priced { decimal(name, into) } else { Ok(None) };
                let list_price = price(f.list_price, "ListUnitPrice")?;
                let contracted_price = price(f.contracted_price, "ContractedUnitPrice")?;
                let pricing_list = price(f.pricing_list_price, "PricingCurrencyListUnitPrice")?;
                let pricing_contracted = price(f.pricing_contracted_price, "PricingCurrencyContractedUnitPrice")?;
                let quantity = price(f.pricing_quantity, "PricingQuantity")?;
                // FOCUS unit prices are never negative: a refund Partner Center states as a
                // negative price is a negative quantity at the positive price (same product).
                // (The quantity takes the contracted price's sign; every price is its magnitude.)
                let refund = contracted_price.or(list_price).is_some_and(|p| p < 0);
                let abs = |p: Option<i128>| p.map(i128::abs);
                let (list_price, contracted_price) = (abs(list_price), abs(contracted_price));
                let (pricing_list, pricing_contracted) = (abs(pricing_list), abs(pricing_contracted));
                let quantity = if refund { quantity.map(|q| -q) } else { quantity };
                let consumed = match category {
                    Category::Usage => decimal(f.consumed_quantity, "ConsumedQuantity")?,
                    _ => None,
                };
                // Costs are kept at 22 digits: a 12-digit price times a 10-digit quantity, exactly.
                let wide = |value: i128| rescale(value, target_scale("BilledCost"), target_scale("ListCost"));
                // A unit price times the pricing quantity, at the cost column's scale (exactly).
                let times = |p: Option<i128>, price: &str, what: &str| -> Result<i128, FocusError> {
                    match p.zip(quantity) {
                        Some((p, q)) => p
                            .checked_mul(q)
                            .and_then(|v| {
                                rescale(v, target_scale(price) + target_scale("PricingQuantity"), target_scale(what))
                            })
                            .ok_or_else(|| fail(what, "price × quantity does not fit exactly")),
                        None => wide(billed_cost).ok_or_else(|| fail(what, "the cost does not fit")),
                    }
                };
                let list_cost = times(list_price, "ListUnitPrice", "ListCost")?;
                let contracted_cost = times(contracted_price, "ContractedUnitPrice", "ContractedCost")?;
                let pricing_cost = match (f.shape, priced) {
                    (Shape::Recon, true) => {
                        times(pricing_contracted, "PricingCurrencyContractedUnitPrice", "PricingCurrencyEffectiveCost")?
                    }
                    _ => wide(billed_cost).ok_or_else(|| fail("PricingCurrencyEffectiveCost", "does not fit"))?,
                };
                let tax_row = category == Category::Tax;
                let s = |v: Option<&str>| v.map_or(Cell::Null, |t| Cell::Str(t.to_owned()));
                let d = |v: Option<i128>| v.map_or(Cell::Null, Cell::Dec);
                let cells = [
                    Cell::Null,             // AvailabilityZone
                    Cell::Dec(billed_cost), // BilledCost
                    Cell::Str(text("partner_id").unwrap_or_else(|| self.options.tenant_id.clone())),
                    s(self.options.billing_account_name.as_deref()), // BillingAccountName
                    Cell::Str("CSP Partner".into()),                 // BillingAccountType
                    Cell::Str(currency.clone()),                     // BillingCurrency
                    Cell::Timestamp(period.1),                       // BillingPeriodEnd
                    Cell::Timestamp(period.0),                       // BillingPeriodStart
                    Cell::Null,                                      // CapacityReservationId
                    Cell::Null,                                      // CapacityReservationStatus
                    Cell::Str(category.name().into()),               // ChargeCategory
                    s(correction.then_some("Correction")),           // ChargeClass
                    s(description.as_ref().map(|d| if tax_row { format!("Tax: {d}") } else { d.clone() }).as_deref()),
                    Cell::Str(frequency.name().into()), // ChargeFrequency
                    Cell::Timestamp(charge_end),        // ChargePeriodEnd
                    Cell::Timestamp(charge_start),      // ChargePeriodStart
                    Cell::Null,                         // CommitmentDiscountCategory
                    Cell::Null,                         // CommitmentDiscountId
                    Cell::Null,                         // CommitmentDiscountName
                    Cell::Null,                         // CommitmentDiscountQuantity
                    Cell::Null,                         // CommitmentDiscountStatus
                    Cell::Null,                         // CommitmentDiscountType
                    Cell::Null,                         // CommitmentDiscountUnit
                    d(consumed),                        // ConsumedQuantity
                    s(consumed.map(|_| unit.as_str())), // ConsumedUnit
                    Cell::Dec(contracted_cost),         // ContractedCost
                    d(contracted_price),                // ContractedUnitPrice
                    Cell::Dec(billed_cost),             // EffectiveCost
                    s(invoice.as_deref()),              // InvoiceId
                    Cell::Str("Microsoft".into()),      // InvoiceIssuerName
                    Cell::Dec(list_cost),               // ListCost
                    d(list_price),                      // ListUnitPrice
                    s(priced.then_some("Standard")),    // PricingCategory
                    Cell::Str(if priced { pricing_currency.clone() } else { currency.clone() }),
                    d(pricing_contracted),              // PricingCurrencyContractedUnitPrice
                    Cell::Dec(pricing_cost),            // PricingCurrencyEffectiveCost
                    d(pricing_list),                    // PricingCurrencyListUnitPrice
                    d(quantity),                        // PricingQuantity
                    s(quantity.map(|_| unit.as_str())), // PricingUnit
                    Cell::Str("Microsoft".into()),      // ProviderName
                    Cell::Str(text("publisher_name").unwrap_or_else(|| "Microsoft".into())),
                    s(region.as_deref()),                      // RegionId
                    s(region.as_deref()),                      // RegionName
                    Cell::Null,                                // ResourceId
                    Cell::Null,                                // ResourceName
                    Cell::Null,                                // ResourceType
                    Cell::Str(service.category.into()),        // ServiceCategory
                    Cell::Str(service_name.clone()),           // ServiceName
                    Cell::Str(service.subcategory.into()),     // ServiceSubcategory
                    s(sku_id.as_deref().filter(|_| !tax_row)), // SkuId
                    s(sku_meter.as_deref().filter(|_| !tax_row && sku_id.is_some())),
                    Cell::Null,                                      // SkuPriceDetails
                    s(sku_price_id.as_deref().filter(|_| !tax_row)), // SkuPriceId
                    s(customer.as_deref()),                          // SubAccountId
                    s(customer.as_ref().map(|id| text(f.customer_name).unwrap_or_else(|| id.clone())).as_deref()),
                    s(customer.as_ref().map(|_| "Customer")), // SubAccountType
                    Cell::Null,                               // Tags
                    Cell::Str(schema.name.name().to_owned()), // x_SourceDataset
                    s(text("row_key").as_deref()),            // x_RowKey
                    s(charge_type.as_deref()),                // x_ChargeType
                    s(text("customer_key").as_deref()),       // x_CustomerKey
                    s(text(f.domain).as_deref()),             // x_CustomerDomainName
                    s(text(f.country).as_deref()),            // x_CustomerCountry
                    s(text("mpn_id").as_deref()),             // x_PartnerMpnId
                    s(text(f.reseller).as_deref()),           // x_ResellerMpnId
                    s(text("order_id").as_deref()),           // x_OrderId
                    s(text("subscription_id").as_deref()),    // x_SubscriptionId
                    s(text("match_status").as_deref()),       // x_MatchStatus
                    d(decimal("pc_to_bc_exchange_rate", "x_ExchangeRate")?),
                ];
                if cells.len() != out.columns.len() {
                    return Err(FocusError(format!("{} cells for {} columns", cells.len(), out.columns.len())));
                }
                builder.push_cells(&cells);
                if let Some(invoice) = &invoice {
                    let entry = sums.entry(invoice.to_uppercase()).or_insert_with(|| (currency.clone(), 0, 0));
                    entry.1 =
                        entry.1.checked_add(billed_cost).ok_or_else(|| fail("BilledCost", "the sum overflows"))?;
                    entry.2 += 1;
                }
                Ok(())
            };
            push(category, cost)?;
            if tax != 0 {
                push(Category::Tax, tax)?;
            }
        }
        if builder.is_empty() {
            return Ok(None);
        }
        builder.finish().map(Some).map_err(|e| FocusError(format!("{} {scope}: {e}", schema.name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_change_without_losing_a_digit_and_months_have_bounds() {
        assert_eq!(rescale(1234, 2, 4), Some(123_400));
        assert_eq!(rescale(123_400, 4, 2), Some(1234));
        assert_eq!(rescale(123_401, 4, 2), None);
        let jan_15 = chrono::NaiveDate::from_ymd_opt(2025, 1, 15).unwrap().and_hms_opt(13, 0, 0).unwrap();
        let (start, end) = month_bounds(jan_15.and_utc().timestamp_micros()).unwrap();
        let text = |m: i64| chrono::DateTime::from_timestamp_micros(m).unwrap().to_rfc3339();
        assert_eq!((text(start), text(end)), ("2025-01-01T00:00:00+00:00".into(), "2025-02-01T00:00:00+00:00".into()));
        assert_eq!(day_start(&Value::Date(1), ColType::Date), Some(DAY_MICROS));
        assert_eq!(day_start(&Value::Timestamp(DAY_MICROS * 1000 + 5), ColType::Timestamp), Some(DAY_MICROS));
    }
}
