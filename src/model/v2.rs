//! The attributes of the v2 reconciliation export files (Microsoft Graph, spec §12.4) and the v1
//! fields they carry. One table serves the emulator (which writes the files) and the schema
//! tests (which check that every attribute lands in the column of its v1 field).
//!
//! Key casing in the files is not confirmed by Microsoft: daily rated usage follows the
//! PascalCase attribute list of spec §12.4, reconciliation the camelCase API names of spec §9.4.
//! Readers match keys case-insensitively anyway.

/// Which export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    /// Daily rated usage (`usage/{billed|unbilled}/export`).
    Usage,
    /// Invoice reconciliation, new-commerce billing lines (`reconciliation/{billed|unbilled}/export`).
    Reconciliation,
}

/// How a v1 value is written under its v2 attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// As it is.
    Same,
    /// A fraction (0.15) written as a percentage (15).
    Percent,
}

/// One attribute of an export file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute {
    /// The v1 JSON field.
    pub v1: &'static str,
    /// The attribute in the export file.
    pub v2: &'static str,
    /// Whether the `basic` attribute set has it (`full` has all).
    pub basic: bool,
    /// How the value is scaled.
    pub scale: Scale,
}

const fn a(v1: &'static str, v2: &'static str, basic: bool) -> Attribute {
    Attribute { v1, v2, basic, scale: Scale::Same }
}

const fn pct(v1: &'static str, v2: &'static str, basic: bool) -> Attribute {
    Attribute { v1, v2, basic, scale: Scale::Percent }
}

/// Daily rated usage: spec §12.4 (`PCToBCExchangeRateDate` from the Microsoft sample model).
pub const USAGE: &[Attribute] = &[
    a("partnerId", "PartnerId", true),
    a("partnerName", "PartnerName", true),
    a("customerId", "CustomerId", true),
    a("customerName", "CustomerName", true),
    a("customerDomainName", "CustomerDomainName", false),
    a("customerCountry", "CustomerCountry", false),
    a("mpnId", "MpnId", false),
    a("resellerMpnId", "Tier2MpnId", false),
    a("invoiceNumber", "InvoiceNumber", true),
    a("productId", "ProductId", true),
    a("skuId", "SkuId", true),
    a("availabilityId", "AvailabilityId", false),
    a("skuName", "SkuName", true),
    a("productName", "ProductName", false),
    a("publisherName", "PublisherName", true),
    a("publisherId", "PublisherId", false),
    a("subscriptionDescription", "SubscriptionDescription", false),
    a("subscriptionId", "SubscriptionId", true),
    a("chargeStartDate", "ChargeStartDate", true),
    a("chargeEndDate", "ChargeEndDate", true),
    a("usageDate", "UsageDate", true),
    a("meterType", "MeterType", false),
    a("meterCategory", "MeterCategory", false),
    a("meterId", "MeterId", false),
    a("meterSubCategory", "MeterSubCategory", false),
    a("meterName", "MeterName", false),
    a("meterRegion", "MeterRegion", false),
    a("unitOfMeasure", "Unit", true),
    a("resourceLocation", "ResourceLocation", false),
    a("consumedService", "ConsumedService", false),
    a("resourceGroup", "ResourceGroup", false),
    a("resourceUri", "ResourceURI", true),
    a("tags", "Tags", false),
    a("additionalInfo", "AdditionalInfo", false),
    a("serviceInfo1", "ServiceInfo1", false),
    a("serviceInfo2", "ServiceInfo2", false),
    a("chargeType", "ChargeType", true),
    a("unitPrice", "UnitPrice", true),
    a("quantity", "Quantity", true),
    a("unitType", "UnitType", false),
    a("billingPreTaxTotal", "BillingPreTaxTotal", true),
    a("billingCurrency", "BillingCurrency", true),
    a("pricingPreTaxTotal", "PricingPreTaxTotal", true),
    a("pricingCurrency", "PricingCurrency", true),
    a("entitlementId", "EntitlementId", true),
    a("entitlementDescription", "EntitlementDescription", false),
    a("pcToBCExchangeRate", "PCToBCExchangeRate", true),
    a("pcToBCExchangeRateDate", "PCToBCExchangeRateDate", false),
    a("effectiveUnitPrice", "EffectiveUnitPrice", true),
    pct("rateOfPartnerEarnedCredit", "PartnerEarnedCreditPercentage", false),
    pct("rateOfCredit", "CreditPercentage", true),
    a("creditType", "CreditType", true),
    a("benefitOrderId", "BenefitOrderId", true),
    a("benefitId", "BenefitId", false),
    a("benefitType", "BenefitType", true),
];

/// Invoice reconciliation: the OneTime fields of spec §9.4 under their API names. The `basic`
/// subset is not documented; it is taken as the keys, amounts and dates a tie-out needs.
pub const RECONCILIATION: &[Attribute] = &[
    a("partnerId", "partnerId", true),
    a("customerId", "customerId", true),
    a("customerName", "customerName", true),
    a("customerDomainName", "customerDomainName", false),
    a("customerCountry", "customerCountry", false),
    a("invoiceNumber", "invoiceNumber", true),
    a("mpnId", "mpnId", false),
    a("resellerMpnId", "resellerMpnId", false),
    a("orderId", "orderId", true),
    a("orderDate", "orderDate", true),
    a("productId", "productId", true),
    a("skuId", "skuId", true),
    a("availabilityId", "availabilityId", true),
    a("productName", "productName", false),
    a("skuName", "skuName", true),
    a("productQualifiers", "productQualifiers", false),
    a("chargeType", "chargeType", true),
    a("unitPrice", "unitPrice", true),
    a("effectiveUnitPrice", "effectiveUnitPrice", true),
    a("unitType", "unitType", false),
    a("quantity", "quantity", true),
    a("subtotal", "subtotal", true),
    a("taxTotal", "taxTotal", true),
    a("totalForCustomer", "totalForCustomer", true),
    a("currency", "currency", true),
    a("publisherName", "publisherName", false),
    a("publisherId", "publisherId", false),
    a("subscriptionDescription", "subscriptionDescription", false),
    a("subscriptionId", "subscriptionId", true),
    a("subscriptionStartDate", "subscriptionStartDate", false),
    a("subscriptionEndDate", "subscriptionEndDate", false),
    a("chargeStartDate", "chargeStartDate", true),
    a("chargeEndDate", "chargeEndDate", true),
    a("termAndBillingCycle", "termAndBillingCycle", false),
    a("alternateId", "alternateId", false),
    a("referenceId", "referenceId", true),
    a("priceAdjustmentDescription", "priceAdjustmentDescription", false),
    a("discountDetails", "discountDetails", false),
    a("pricingCurrency", "pricingCurrency", true),
    a("pcToBCExchangeRate", "pcToBCExchangeRate", true),
    a("pcToBCExchangeRateDate", "pcToBCExchangeRateDate", false),
    a("billableQuantity", "billableQuantity", true),
    a("meterDescription", "meterDescription", true),
    a("billingFrequency", "billingFrequency", false),
    a("reservationOrderId", "reservationOrderId", true),
    a("creditReasonCode", "creditReasonCode", true),
    a("promotionId", "promotionId", false),
];

impl ExportKind {
    /// The attributes of this export's files.
    pub fn attributes(self) -> &'static [Attribute] {
        match self {
            ExportKind::Usage => USAGE,
            ExportKind::Reconciliation => RECONCILIATION,
        }
    }

    /// The path segment (`usage`, `reconciliation`).
    pub fn segment(self) -> &'static str {
        match self {
            ExportKind::Usage => "usage",
            ExportKind::Reconciliation => "reconciliation",
        }
    }

    /// The export of a line-item dataset, if v2 serves it.
    pub fn of_dataset(dataset: &str) -> Option<(ExportKind, bool)> {
        match dataset {
            "billed_consumption_line_items" => Some((ExportKind::Usage, true)),
            "unbilled_consumption_line_items" => Some((ExportKind::Usage, false)),
            "billed_recon_line_items" => Some((ExportKind::Reconciliation, true)),
            "unbilled_recon_line_items" => Some((ExportKind::Reconciliation, false)),
            _ => None,
        }
    }
}

/// v1 fields the export files do not carry, and what a reader takes for them: the constant the
/// v1 line of the same dataset always has, or a value implied by another attribute.
pub const NOT_IN_EXPORT: &[(&str, &str)] = &[
    ("invoiceLineItemType", "`usage_line_items` (usage) or `billing_line_items` (reconciliation)"),
    ("billingProvider", "`marketplace` (usage) or `one_time` (reconciliation)"),
    ("hasPartnerEarnedCredit", "`true` when the partner-earned-credit rate is above zero"),
    ("attributes.objectType", "not kept in any output column"),
];

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
         (a value with more digits than its column keeps is an error, as everywhere). Key casing inside the \
         export files is not confirmed by Microsoft: usage follows the PascalCase list of the beta \
         documentation, reconciliation the camelCase API names.\n",
    );
    for (title, kind) in [
        ("Daily rated usage (`usage`)", ExportKind::Usage),
        ("Reconciliation (`reconciliation`)", ExportKind::Reconciliation),
    ] {
        doc.push_str(&format!(
            "\n## {title}\n\n| v1 field | v2 attribute | in `basic` | value |\n| --- | --- | --- | --- |\n"
        ));
        for a in kind.attributes() {
            let value = match a.scale {
                Scale::Same => "as is",
                Scale::Percent => "percentage: ÷ 100",
            };
            let basic = if a.basic { "yes" } else { "no" };
            doc.push_str(&format!("| `{}` | `{}` | {basic} | {value} |\n", a.v1, a.v2));
        }
    }
    doc.push_str(
        "\n## v1 fields the export lacks\n\n| v1 field | what the column holds for v2 rows |\n| --- | --- |\n",
    );
    for (field, instead) in NOT_IN_EXPORT {
        doc.push_str(&format!("| `{field}` | {instead} |\n"));
    }
    doc.push_str(
        "\nWith `attribute_set = \"basic\"` the columns of attributes outside the basic set are empty. \
         Where each dataset's rows came from is in `manifest.json`: `exports` names the operation, manifest, \
         eTag and files of every sequence served by v2, and `lineage.<invoice>.etags` the eTag per dataset.\n",
    );
    doc
}
