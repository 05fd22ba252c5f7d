//! The v2 export files (Microsoft Graph, spec §12) as pcrecon reads them: which attributes they
//! carry, which of them the `basic` attribute set keeps, and which output column each fills.
//!
//! This is the client's own statement of Microsoft's documentation; the emulator states the
//! same facts in its own words, and tests hold each against the published list, so that a
//! mistake on one side cannot hide behind the other.
//!
//! * Daily rated usage: the GA attribute list of the Graph resource `partners-billing-attributeset`
//!   (<https://learn.microsoft.com/en-us/graph/api/resources/partners-billing-attributeset>), with
//!   its basic marks (`AdditionalInfo` and `UnitType` are basic, `Unit` is not), plus
//!   `PCToBCExchangeRateDate`, which Microsoft's sample model and CSV carry although the page
//!   does not list it.
//! * Invoice reconciliation: no list is published. Public clients of the real export read
//!   PascalCase names with `Tier2MpnId`, `Total` and `ProductCategory` (spec §17.5); the `basic`
//!   subset assumed is the keys, amounts and dates a tie-out needs.
//!
//! Keys are read case-insensitively, so `ResourceURI` fills the column of v1's `resourceUri`.

use crate::tabular::{Column, Dataset, Implied, Source};

/// Which export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    /// Daily rated usage (`usage/{billed|unbilled}/export`).
    Usage,
    /// Invoice reconciliation, new-commerce billing lines (`reconciliation/{billed|unbilled}/export`).
    Reconciliation,
}

/// One attribute of an export file and the output column it fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute {
    /// The attribute as Microsoft spells it.
    pub name: &'static str,
    /// Whether `attributeSet: basic` carries it (`full` carries all).
    pub basic: bool,
    /// The column of the dataset it fills.
    pub column: &'static str,
}

const fn b(name: &'static str, column: &'static str) -> Attribute {
    Attribute { name, basic: true, column }
}

const fn f(name: &'static str, column: &'static str) -> Attribute {
    Attribute { name, basic: false, column }
}

/// Daily rated usage, in the order of the consumption datasets' columns: Microsoft's list.
pub const USAGE: &[Attribute] = &[
    b("PartnerId", "partner_id"),
    b("PartnerName", "partner_name"),
    b("CustomerId", "customer_id"),
    b("CustomerName", "customer_name"),
    f("CustomerDomainName", "customer_domain_name"),
    f("CustomerCountry", "customer_country"),
    f("MpnId", "mpn_id"),
    f("Tier2MpnId", "reseller_mpn_id"),
    b("InvoiceNumber", "invoice_id"),
    b("ProductId", "product_id"),
    b("SkuId", "sku_id"),
    f("AvailabilityId", "availability_id"),
    b("SkuName", "sku_name"),
    f("ProductName", "product_name"),
    b("PublisherName", "publisher_name"),
    f("PublisherId", "publisher_id"),
    b("SubscriptionId", "subscription_id"),
    f("SubscriptionDescription", "subscription_description"),
    b("ChargeStartDate", "charge_start_date"),
    b("ChargeEndDate", "charge_end_date"),
    b("UsageDate", "usage_date"),
    f("MeterType", "meter_type"),
    f("MeterCategory", "meter_category"),
    f("MeterId", "meter_id"),
    f("MeterSubCategory", "meter_sub_category"),
    f("MeterName", "meter_name"),
    f("MeterRegion", "meter_region"),
    f("Unit", "unit_of_measure"),
    f("ResourceLocation", "resource_location"),
    f("ConsumedService", "consumed_service"),
    f("ResourceGroup", "resource_group"),
    b("ResourceURI", "resource_uri"),
    f("Tags", "tags"),
    b("AdditionalInfo", "additional_info"),
    f("ServiceInfo1", "service_info_1"),
    f("ServiceInfo2", "service_info_2"),
    b("ChargeType", "charge_type"),
    b("UnitPrice", "unit_price"),
    b("Quantity", "quantity"),
    b("UnitType", "unit_type"),
    b("BillingPreTaxTotal", "billing_pre_tax_total"),
    b("BillingCurrency", "billing_currency"),
    b("PricingPreTaxTotal", "pricing_pre_tax_total"),
    b("PricingCurrency", "pricing_currency"),
    b("EntitlementId", "entitlement_id"),
    f("EntitlementDescription", "entitlement_description"),
    b("PCToBCExchangeRate", "pc_to_bc_exchange_rate"),
    b("EffectiveUnitPrice", "effective_unit_price"),
    f("PartnerEarnedCreditPercentage", "rate_of_partner_earned_credit"),
    b("CreditPercentage", "rate_of_credit"),
    b("CreditType", "credit_type"),
    b("BenefitOrderID", "benefit_order_id"),
    f("BenefitID", "benefit_id"),
    b("BenefitType", "benefit_type"),
];

/// Daily rated usage attributes read when present although Microsoft's list lacks them.
pub const USAGE_UNLISTED: &[Attribute] = &[f("PCToBCExchangeRateDate", "pc_to_bc_exchange_rate_date")];

/// Invoice reconciliation, in the order of the recon datasets' columns.
pub const RECONCILIATION: &[Attribute] = &[
    b("PartnerId", "partner_id"),
    b("CustomerId", "customer_id"),
    b("CustomerName", "customer_name"),
    f("CustomerDomainName", "customer_domain_name"),
    f("CustomerCountry", "customer_country"),
    b("InvoiceNumber", "invoice_id"),
    f("MpnId", "mpn_id"),
    f("Tier2MpnId", "reseller_mpn_id"),
    b("OrderId", "order_id"),
    b("OrderDate", "order_date"),
    b("ProductId", "product_id"),
    b("SkuId", "sku_id"),
    b("AvailabilityId", "availability_id"),
    f("ProductName", "product_name"),
    b("SkuName", "sku_name"),
    f("ProductQualifiers", "product_qualifiers"),
    b("ChargeType", "charge_type"),
    b("UnitPrice", "unit_price"),
    b("EffectiveUnitPrice", "effective_unit_price"),
    f("UnitType", "unit_type"),
    b("Quantity", "quantity"),
    b("Subtotal", "subtotal"),
    b("TaxTotal", "tax_total"),
    b("Total", "total_for_customer"),
    b("Currency", "billing_currency"),
    f("PublisherName", "publisher_name"),
    f("PublisherId", "publisher_id"),
    f("SubscriptionDescription", "subscription_description"),
    b("SubscriptionId", "subscription_id"),
    f("SubscriptionStartDate", "subscription_start_date"),
    f("SubscriptionEndDate", "subscription_end_date"),
    b("ChargeStartDate", "charge_start_date"),
    b("ChargeEndDate", "charge_end_date"),
    f("TermAndBillingCycle", "term_and_billing_cycle"),
    f("AlternateId", "alternate_id"),
    b("ReferenceId", "reference_id"),
    f("PriceAdjustmentDescription", "price_adjustment_description"),
    f("DiscountDetails", "discount_details"),
    b("PricingCurrency", "pricing_currency"),
    b("PCToBCExchangeRate", "pc_to_bc_exchange_rate"),
    f("PCToBCExchangeRateDate", "pc_to_bc_exchange_rate_date"),
    b("BillableQuantity", "billable_quantity"),
    b("MeterDescription", "meter_description"),
    f("BillingFrequency", "billing_frequency"),
    b("ReservationOrderId", "reservation_order_id"),
    b("CreditReasonCode", "credit_reason_code"),
    f("PromotionId", "promotion_id"),
    f("ProductCategory", "product_category"),
];

/// Columns only the v2 files fill: v1 line items have no such field.
pub const V2_ONLY_COLUMNS: &[&str] = &["product_category"];

impl ExportKind {
    /// The attributes this export's files may carry.
    pub fn attributes(self) -> impl Iterator<Item = &'static Attribute> {
        let (listed, unlisted): (&[Attribute], &[Attribute]) = match self {
            ExportKind::Usage => (USAGE, USAGE_UNLISTED),
            ExportKind::Reconciliation => (RECONCILIATION, &[]),
        };
        listed.iter().chain(unlisted)
    }

    /// Both exports.
    pub const ALL: [ExportKind; 2] = [ExportKind::Usage, ExportKind::Reconciliation];

    /// The line-item dataset this export fills, billed or unbilled: `usage` fills daily rated
    /// usage, `reconciliation` the new-commerce billing lines.
    pub const fn dataset(self, billed: bool) -> Dataset {
        match (self, billed) {
            (ExportKind::Usage, true) => Dataset::BilledUsage,
            (ExportKind::Usage, false) => Dataset::UnbilledUsage,
            (ExportKind::Reconciliation, true) => Dataset::BilledRecon,
            (ExportKind::Reconciliation, false) => Dataset::UnbilledRecon,
        }
    }

    /// The datasets this export fills (billed, unbilled).
    pub const fn datasets(self) -> [Dataset; 2] {
        [self.dataset(true), self.dataset(false)]
    }

    /// The export that serves a dataset as well as v1, and whether it is its billed side.
    pub fn of_dataset(dataset: Dataset) -> Option<(ExportKind, bool)> {
        ExportKind::ALL.into_iter().find_map(|kind| {
            let [billed, unbilled] = kind.datasets();
            (dataset == billed || dataset == unbilled).then_some((kind, dataset == billed))
        })
    }

    /// Every dataset both APIs serve, in [`Dataset::ALL`]'s order.
    pub fn served() -> impl Iterator<Item = Dataset> {
        Dataset::ALL.into_iter().filter(|d| ExportKind::of_dataset(*d).is_some())
    }

    /// The path segment (`usage`, `reconciliation`).
    pub fn segment(self) -> &'static str {
        match self {
            ExportKind::Usage => "usage",
            ExportKind::Reconciliation => "reconciliation",
        }
    }
}

/// The v1 field a column reads, and how an export value becomes its value.
fn read_by(column: &Column) -> (String, &'static str) {
    match &column.source {
        Source::Field(paths) => (paths.first().map_or_else(String::new, |p| format!("`{p}`")), "as is"),
        Source::Percent { field, .. } => (format!("`{field}`"), "percentage: ÷ 100"),
        _ => (String::new(), "as is"),
    }
}

/// `schemas/v2-mapping.md`: which export attribute fills which column, and what stands in for
/// the v1 fields the export lacks.
pub fn mapping_doc() -> String {
    let mut doc = String::from(
        "# v1 ↔ v2 attribute mapping\n\nGenerated by `pcrecon schemas --out schemas` from the code; a test fails when they differ.\n\n\
         The v2 export on Microsoft Graph (`reports/partners/billing/{usage|reconciliation}/{billed|unbilled}/export`) \
         writes gzip JSON lines whose attribute names differ from the v1 JSON fields. pcrecon reads every key \
         case-insensitively, so both land in the same column of the same dataset: `usage` exports fill \
         `billed_consumption_line_items` and `unbilled_consumption_line_items`, `reconciliation` exports fill \
         `billed_recon_line_items` and `unbilled_recon_line_items`. Percentages are divided by 100 exactly \
         (a value with more digits than its column keeps is an error, as everywhere).\n\n\
         Daily rated usage follows Microsoft's attribute list for `attributeSet` \
         (<https://learn.microsoft.com/en-us/graph/api/resources/partners-billing-attributeset>), spelled as \
         Microsoft spells it; `PCToBCExchangeRateDate` is not on that list but is in Microsoft's sample model and \
         is read when present. No list is published for reconciliation: its names are the PascalCase ones public \
         clients of the real export read (`Tier2MpnId`, `Total`, `ProductCategory`), and its `basic` subset is \
         assumed to be the keys, amounts and dates a tie-out needs.\n",
    );
    for (title, kind) in [
        ("Daily rated usage (`usage`)", ExportKind::Usage),
        ("Reconciliation (`reconciliation`)", ExportKind::Reconciliation),
    ] {
        let Some(dataset) = kind.dataset(true).schema() else { continue };
        doc.push_str(&format!(
            "\n## {title}\n\n| v2 attribute | in `basic` | column | v1 field | value |\n| --- | --- | --- | --- | --- |\n"
        ));
        for a in kind.attributes() {
            let (v1, value) =
                dataset.column(a.column).map_or((String::new(), "as is"), |i| read_by(&dataset.columns[i]));
            let basic = if a.basic { "yes" } else { "no" };
            let v1 = if v1.is_empty() || V2_ONLY_COLUMNS.contains(&a.column) { "(none)".to_owned() } else { v1 };
            doc.push_str(&format!("| `{}` | {basic} | `{}` | {v1} | {value} |\n", a.name, a.column));
        }
    }
    doc.push_str(
        "\n## v1 fields the export lacks\n\n| export | v1 field | what the column holds for v2 rows |\n| --- | --- | --- |\n",
    );
    for kind in ExportKind::ALL {
        let Some(dataset) = kind.dataset(true).schema() else { continue };
        for column in &dataset.columns {
            let (field, instead) = match &column.source {
                Source::Implied { field, otherwise: Implied::Text(value) } => (field, format!("`{value}`")),
                Source::Implied { field, otherwise: Implied::Positive(other) } => {
                    (field, format!("`true` when `{other}` is above zero"))
                }
                Source::Implied { field, otherwise: Implied::Scope } => (field, "the invoice asked for".to_owned()),
                _ => continue,
            };
            doc.push_str(&format!("| `{}` | `{field}` | {instead} |\n", kind.segment()));
        }
    }
    doc.push_str("| both | `attributes.objectType` | not kept in any output column |\n");
    doc.push_str(
        "\nWith `attribute_set = \"basic\"` the columns of attributes outside the basic set are empty. \
         `product_category` is filled by v2 reconciliation rows only: v1 line items have no such field. \
         Where each dataset's rows came from is in `manifest.json`: `exports` names the operation, manifest, \
         eTag and files of every sequence served by v2, and `lineage.<invoice>.etags` the eTag per dataset.\n",
    );
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// `tests/data/microsoft/graph-billed-usage-attributes.csv`: Microsoft's list, `attribute,basic`.
    fn microsofts_list() -> BTreeMap<String, bool> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join("data")
            .join("microsoft")
            .join("graph-billed-usage-attributes.csv");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut rows = text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
        assert_eq!(rows.next().map(str::trim), Some("attribute,basic"), "the file's header");
        rows.map(|row| {
            let (name, basic) = row.trim().split_once(',').unwrap_or_else(|| panic!("{row}"));
            let basic = basic.parse::<bool>().unwrap_or_else(|e| panic!("{row}: {e}"));
            (name.to_owned(), basic)
        })
        .collect()
    }

    #[test]
    fn usage_attributes_are_microsofts_list_with_its_basic_set() {
        let published = microsofts_list();
        let ours: BTreeMap<String, bool> = USAGE.iter().map(|a| (a.name.to_owned(), a.basic)).collect();
        assert_eq!(ours.len(), USAGE.len(), "no attribute twice");
        let names = |m: &BTreeMap<String, bool>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(names(&ours), names(&published), "the same attribute names");
        let basic =
            |m: &BTreeMap<String, bool>| m.iter().filter(|(_, b)| **b).map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(basic(&ours), basic(&published), "the same basic set");
        for a in USAGE_UNLISTED {
            assert!(!published.contains_key(a.name), "{} is listed after all", a.name);
        }
    }

    #[test]
    fn every_attribute_lands_in_a_column_that_reads_it() {
        for kind in ExportKind::ALL {
            for dataset in kind.datasets() {
                let s = dataset.schema().unwrap();
                for a in kind.attributes() {
                    let i = s.column(a.column).unwrap_or_else(|| panic!("{dataset}: no column {}", a.column));
                    let reads = match &s.columns[i].source {
                        Source::Field(paths) => paths.iter().any(|p| p.eq_ignore_ascii_case(a.name)),
                        Source::Percent { percent, .. } => percent.eq_ignore_ascii_case(a.name),
                        _ => false,
                    };
                    assert!(reads, "{dataset}: column {} does not read {}", a.column, a.name);
                }
            }
        }
    }

    #[test]
    fn every_source_column_has_an_attribute() {
        for kind in ExportKind::ALL {
            for dataset in kind.datasets() {
                let s = dataset.schema().unwrap();
                for c in &s.columns {
                    if matches!(c.source, Source::Field(_) | Source::Percent { .. }) {
                        assert!(
                            kind.attributes().any(|a| a.column == c.name),
                            "{dataset}: {} has no v2 attribute",
                            c.name
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn datasets_route_to_their_export() {
        assert_eq!(ExportKind::of_dataset(Dataset::BilledRecon), Some((ExportKind::Reconciliation, true)));
        assert_eq!(ExportKind::of_dataset(Dataset::UnbilledUsage), Some((ExportKind::Usage, false)));
        assert_eq!(ExportKind::of_dataset(Dataset::Invoices), None);
        for kind in ExportKind::ALL {
            for d in kind.datasets() {
                assert!(d.is_line_item(), "{d}");
            }
        }
    }
}
