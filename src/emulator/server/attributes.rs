//! What the emulated v2 export writes into its files, stated from Microsoft's documentation and
//! independently of the client's reading of it (`crate::model::v2`): were both taken from one
//! table, a wrong entry would be wrong on both sides and every test would still pass.
//!
//! In: a world line item as v1 serves it (camelCase JSON). Out: the same item under the names of
//! the export files.
//!
//! * Daily rated usage follows the GA list of the Graph resource `partners-billing-attributeset`
//!   (<https://learn.microsoft.com/en-us/graph/api/resources/partners-billing-attributeset>,
//!   spec §12.4): `full` carries every attribute, `basic` the ones the page marks as basic. One
//!   attribute beyond that list, `PCToBCExchangeRateDate`, is written too because Microsoft's
//!   sample model and CSV carry it ([`USAGE_BEYOND_THE_LIST`]).
//! * Invoice reconciliation has no published list. Public clients of the real billed
//!   reconciliation export read PascalCase names, `Tier2MpnId` for the reseller's MPN id, `Total`
//!   for the customer total and a `ProductCategory` (spec §17.5), so the emulator writes those.
//!   Which of them `basic` keeps is not documented; the emulator keeps the keys, amounts and
//!   dates a tie-out needs.

use rust_decimal::Decimal;
use serde_json::{Map, Value};

/// Which export a file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    /// Daily rated usage (`usage/{billed|unbilled}/export`).
    Usage,
    /// Invoice reconciliation, new-commerce billing lines (`reconciliation/{billed|unbilled}/export`).
    Reconciliation,
}

impl Export {
    /// The export named by its path segment.
    pub fn from_segment(segment: &str) -> Option<Export> {
        match segment {
            "usage" => Some(Export::Usage),
            "reconciliation" => Some(Export::Reconciliation),
            _ => None,
        }
    }

    /// Its path segment.
    pub fn segment(self) -> &'static str {
        match self {
            Export::Usage => "usage",
            Export::Reconciliation => "reconciliation",
        }
    }

    /// Every attribute its files carry, in the order they are written.
    pub fn attributes(self) -> impl Iterator<Item = &'static Written> {
        let (listed, beyond): (&[Written], &[Written]) = match self {
            Export::Usage => (USAGE, USAGE_BEYOND_THE_LIST),
            Export::Reconciliation => (RECONCILIATION, &[]),
        };
        listed.iter().chain(beyond)
    }
}

/// Where an attribute's value comes from in the world's v1 line item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The v1 field of that name, as it is.
    Field(&'static str),
    /// The v1 field holds a fraction (0.15); the file holds the percentage (15).
    Percent(&'static str),
    /// Not a v1 field: the category of the line's product (see [`product_category`]).
    ProductCategory,
}

/// One attribute as the emulator writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The attribute's name in the file.
    pub name: &'static str,
    /// Whether `attributeSet: basic` keeps it.
    pub basic: bool,
    /// How its value is made.
    pub from: Origin,
}

const fn basic(name: &'static str, v1: &'static str) -> Written {
    Written { name, basic: true, from: Origin::Field(v1) }
}

const fn full(name: &'static str, v1: &'static str) -> Written {
    Written { name, basic: false, from: Origin::Field(v1) }
}

/// Daily rated usage, in the order of Microsoft's attribute list (beta page; the GA page has
/// the same rows sorted by name), spelled as Microsoft spells them (`BenefitOrderID`,
/// `ResourceURI`), with the basic marks of that page.
pub const USAGE: &[Written] = &[
    basic("PartnerId", "partnerId"),
    basic("PartnerName", "partnerName"),
    basic("CustomerId", "customerId"),
    basic("CustomerName", "customerName"),
    full("CustomerDomainName", "customerDomainName"),
    full("CustomerCountry", "customerCountry"),
    full("MpnId", "mpnId"),
    full("Tier2MpnId", "resellerMpnId"),
    basic("InvoiceNumber", "invoiceNumber"),
    basic("ProductId", "productId"),
    basic("SkuId", "skuId"),
    full("AvailabilityId", "availabilityId"),
    basic("SkuName", "skuName"),
    full("ProductName", "productName"),
    basic("PublisherName", "publisherName"),
    full("PublisherId", "publisherId"),
    full("SubscriptionDescription", "subscriptionDescription"),
    basic("SubscriptionId", "subscriptionId"),
    basic("ChargeStartDate", "chargeStartDate"),
    basic("ChargeEndDate", "chargeEndDate"),
    basic("UsageDate", "usageDate"),
    full("MeterType", "meterType"),
    full("MeterCategory", "meterCategory"),
    full("MeterId", "meterId"),
    full("MeterSubCategory", "meterSubCategory"),
    full("MeterName", "meterName"),
    full("MeterRegion", "meterRegion"),
    full("Unit", "unitOfMeasure"),
    full("ResourceLocation", "resourceLocation"),
    full("ConsumedService", "consumedService"),
    full("ResourceGroup", "resourceGroup"),
    basic("ResourceURI", "resourceUri"),
    basic("ChargeType", "chargeType"),
    basic("UnitPrice", "unitPrice"),
    basic("Quantity", "quantity"),
    basic("UnitType", "unitType"),
    basic("BillingPreTaxTotal", "billingPreTaxTotal"),
    basic("BillingCurrency", "billingCurrency"),
    basic("PricingPreTaxTotal", "pricingPreTaxTotal"),
    basic("PricingCurrency", "pricingCurrency"),
    full("ServiceInfo1", "serviceInfo1"),
    full("ServiceInfo2", "serviceInfo2"),
    full("Tags", "tags"),
    basic("AdditionalInfo", "additionalInfo"),
    basic("EffectiveUnitPrice", "effectiveUnitPrice"),
    basic("PCToBCExchangeRate", "pcToBCExchangeRate"),
    basic("EntitlementId", "entitlementId"),
    full("EntitlementDescription", "entitlementDescription"),
    Written { name: "PartnerEarnedCreditPercentage", basic: false, from: Origin::Percent("rateOfPartnerEarnedCredit") },
    Written { name: "CreditPercentage", basic: true, from: Origin::Percent("rateOfCredit") },
    basic("CreditType", "creditType"),
    basic("BenefitOrderID", "benefitOrderId"),
    full("BenefitID", "benefitId"),
    basic("BenefitType", "benefitType"),
];

/// Daily rated usage attributes written beyond Microsoft's list: in the Microsoft sample model
/// (`BilledUsage`) and the CSV, not on the attribute-set page.
pub const USAGE_BEYOND_THE_LIST: &[Written] = &[full("PCToBCExchangeRateDate", "pcToBCExchangeRateDate")];

/// Invoice reconciliation: the OneTime fields of spec §9.4 in PascalCase, with the spellings
/// public clients of the real export read (`Tier2MpnId`, `Total`, `ProductCategory`).
pub const RECONCILIATION: &[Written] = &[
    basic("PartnerId", "partnerId"),
    basic("CustomerId", "customerId"),
    basic("CustomerName", "customerName"),
    full("CustomerDomainName", "customerDomainName"),
    full("CustomerCountry", "customerCountry"),
    basic("InvoiceNumber", "invoiceNumber"),
    full("MpnId", "mpnId"),
    full("Tier2MpnId", "resellerMpnId"),
    basic("OrderId", "orderId"),
    basic("OrderDate", "orderDate"),
    basic("ProductId", "productId"),
    basic("SkuId", "skuId"),
    basic("AvailabilityId", "availabilityId"),
    full("ProductName", "productName"),
    basic("SkuName", "skuName"),
    Written { name: "ProductCategory", basic: false, from: Origin::ProductCategory },
    full("ProductQualifiers", "productQualifiers"),
    basic("ChargeType", "chargeType"),
    basic("UnitPrice", "unitPrice"),
    basic("EffectiveUnitPrice", "effectiveUnitPrice"),
    full("UnitType", "unitType"),
    basic("Quantity", "quantity"),
    basic("Subtotal", "subtotal"),
    basic("TaxTotal", "taxTotal"),
    basic("Total", "totalForCustomer"),
    basic("Currency", "currency"),
    full("PublisherName", "publisherName"),
    full("PublisherId", "publisherId"),
    full("SubscriptionDescription", "subscriptionDescription"),
    basic("SubscriptionId", "subscriptionId"),
    full("SubscriptionStartDate", "subscriptionStartDate"),
    full("SubscriptionEndDate", "subscriptionEndDate"),
    basic("ChargeStartDate", "chargeStartDate"),
    basic("ChargeEndDate", "chargeEndDate"),
    full("TermAndBillingCycle", "termAndBillingCycle"),
    full("AlternateId", "alternateId"),
    basic("ReferenceId", "referenceId"),
    full("PriceAdjustmentDescription", "priceAdjustmentDescription"),
    full("DiscountDetails", "discountDetails"),
    basic("PricingCurrency", "pricingCurrency"),
    basic("PCToBCExchangeRate", "pcToBCExchangeRate"),
    full("PCToBCExchangeRateDate", "pcToBCExchangeRateDate"),
    basic("BillableQuantity", "billableQuantity"),
    basic("MeterDescription", "meterDescription"),
    full("BillingFrequency", "billingFrequency"),
    basic("ReservationOrderId", "reservationOrderId"),
    basic("CreditReasonCode", "creditReasonCode"),
    full("PromotionId", "promotionId"),
];

/// The category of a world line's product, as the reconciliation file names it: `Marketplace`
/// for a third-party publisher, `Azure` for Azure plan products and reservations (`DZH…`),
/// `Software` for perpetual software (`DG7…`), `OnlineServices` for the licence products.
pub fn product_category(item: &Map<String, Value>) -> &'static str {
    let text = |name: &str| item.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.as_str());
    let publisher = text("publisherName").unwrap_or("");
    let product = text("productId").unwrap_or("").to_ascii_uppercase();
    if !publisher.is_empty() && !publisher.starts_with("Microsoft") {
        "Marketplace"
    } else if product.starts_with("DZH") {
        "Azure"
    } else if product.starts_with("DG7") {
        "Software"
    } else {
        "OnlineServices"
    }
}

/// The value an attribute takes for a world line item, if the item has one.
pub fn value_of(item: &Map<String, Value>, from: Origin) -> Option<Value> {
    let field = |name: &str| item.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
    match from {
        Origin::Field(name) => field(name).cloned(),
        Origin::Percent(name) => field(name).map(percent_of),
        Origin::ProductCategory => Some(Value::from(product_category(item))),
    }
}

/// A fraction (number or numeric string) as a percentage number, exactly.
fn percent_of(value: &Value) -> Value {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => return other.clone(),
    };
    match text.trim().parse::<Decimal>().ok().and_then(|d| d.checked_mul(Decimal::ONE_HUNDRED)) {
        Some(p) => serde_json::from_str(&p.normalize().to_string()).unwrap_or_else(|_| value.clone()),
        None => value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Microsoft's published list: `attribute → basic`, from the test data folder.
    fn published() -> BTreeMap<String, bool> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/microsoft/graph-billed-usage-attributes.csv");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut list = BTreeMap::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (name, flag) = line.split_once(',').unwrap_or_else(|| panic!("not `attribute,basic`: {line}"));
            if name.trim().eq_ignore_ascii_case("attribute") {
                continue;
            }
            let basic = match flag.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" | "✓" => true,
                "false" | "no" | "0" | "" => false,
                other => panic!("{name}: basic flag {other:?}"),
            };
            assert!(list.insert(name.trim().to_owned(), basic).is_none(), "{name} listed twice");
        }
        list
    }

    #[test]
    fn usage_files_carry_microsofts_attribute_list_with_its_basic_marks() {
        let published = published();
        let written: BTreeMap<String, bool> = USAGE.iter().map(|a| (a.name.to_owned(), a.basic)).collect();
        assert_eq!(written.len(), USAGE.len(), "an attribute is written twice");
        let names = |m: &BTreeMap<String, bool>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(names(&written), names(&published), "the attribute names are Microsoft's");
        assert_eq!(written, published, "and so is each one's place in the basic set");
        for extra in USAGE_BEYOND_THE_LIST {
            assert!(!published.contains_key(extra.name), "{} is on the list after all", extra.name);
        }
    }

    #[test]
    fn reconciliation_files_use_the_spellings_public_clients_read() {
        let names: Vec<&str> = Export::Reconciliation.attributes().map(|a| a.name).collect();
        for name in ["Tier2MpnId", "Total", "ProductCategory", "PCToBCExchangeRate"] {
            assert!(names.contains(&name), "{name}");
        }
        for name in &names {
            assert!(name.starts_with(|c: char| c.is_ascii_uppercase()), "{name} is not PascalCase");
        }
    }

    #[test]
    fn product_categories_follow_the_product() {
        let item = |product: &str, publisher: &str| {
            let v = serde_json::json!({ "productId": product, "publisherName": publisher });
            v.as_object().unwrap().clone()
        };
        assert_eq!(product_category(&item("CFQ7TTC0LFLX", "Microsoft Corporation")), "OnlineServices");
        assert_eq!(product_category(&item("DZH318Z0BQ4B", "Microsoft Corporation")), "Azure");
        assert_eq!(product_category(&item("DZH318Z0BP9D", "Microsoft")), "Azure");
        assert_eq!(product_category(&item("DG7GMGF0D65N", "Microsoft Corporation")), "Software");
        assert_eq!(product_category(&item("DZH318Z0C1BN", "Contoso Networks")), "Marketplace");
    }
}
