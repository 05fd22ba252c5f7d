//! The `focus` dataset's columns: the 57 columns of FOCUS 1.2 (the FinOps Open Cost and Usage
//! Specification, Cost and Usage dataset) in the specification's alphabetical order, with the
//! types and nullability it gives them, then the Partner Center columns FOCUS lets a provider
//! add under the `x_` prefix. How each is filled is `crate::focus`'s; `focus-mapping.md`, beside
//! this file, says it for readers (`pcrecon schemas` writes it to `schemas/`).
//!
//! In: nothing. Out: the schema. Its rows are built by `crate::focus`.

use super::*;

/// FOCUS Date/Time: UTC instants, written `YYYY-MM-DDTHH:MM:SSZ` in CSV.
const DATE_TIME: ColType = TSU;

/// A FOCUS column: `nullable` as FOCUS 1.2 allows nulls in it.
fn column(name: &str, ty: ColType, nullable: bool) -> Column {
    Column { name: name.into(), source: Source::Field(vec![]), ty, nullable }
}

/// The FOCUS 1.2 columns, alphabetically, and whether each may be null.
const FOCUS_COLUMNS: [(&str, ColType, bool); 57] = [
    ("AvailabilityZone", S, true),
    ("BilledCost", AMOUNT, false),
    ("BillingAccountId", S, false),
    ("BillingAccountName", S, true),
    ("BillingAccountType", S, false),
    ("BillingCurrency", S, false),
    ("BillingPeriodEnd", DATE_TIME, false),
    ("BillingPeriodStart", DATE_TIME, false),
    ("CapacityReservationId", S, true),
    ("CapacityReservationStatus", S, true),
    ("ChargeCategory", S, false),
    ("ChargeClass", S, true),
    ("ChargeDescription", S, true),
    ("ChargeFrequency", S, false),
    ("ChargePeriodEnd", DATE_TIME, false),
    ("ChargePeriodStart", DATE_TIME, false),
    ("CommitmentDiscountCategory", S, true),
    ("CommitmentDiscountId", S, true),
    ("CommitmentDiscountName", S, true),
    ("CommitmentDiscountQuantity", QUANTITY, true),
    ("CommitmentDiscountStatus", S, true),
    ("CommitmentDiscountType", S, true),
    ("CommitmentDiscountUnit", S, true),
    ("ConsumedQuantity", QUANTITY, true),
    ("ConsumedUnit", S, true),
    ("ContractedCost", USAGE_TOTAL, false),
    ("ContractedUnitPrice", PRICE, true),
    ("EffectiveCost", AMOUNT, false),
    ("InvoiceId", S, true),
    ("InvoiceIssuerName", S, false),
    ("ListCost", USAGE_TOTAL, false),
    ("ListUnitPrice", PRICE, true),
    ("PricingCategory", S, true),
    ("PricingCurrency", S, false),
    ("PricingCurrencyContractedUnitPrice", PRICE, true),
    ("PricingCurrencyEffectiveCost", USAGE_TOTAL, false),
    ("PricingCurrencyListUnitPrice", PRICE, true),
    ("PricingQuantity", QUANTITY, true),
    ("PricingUnit", S, true),
    ("ProviderName", S, false),
    ("PublisherName", S, false),
    ("RegionId", S, true),
    ("RegionName", S, true),
    ("ResourceId", S, true),
    ("ResourceName", S, true),
    ("ResourceType", S, true),
    ("ServiceCategory", S, false),
    ("ServiceName", S, false),
    ("ServiceSubcategory", S, false),
    ("SkuId", S, true),
    ("SkuMeter", S, true),
    ("SkuPriceDetails", J, true),
    ("SkuPriceId", S, true),
    ("SubAccountId", S, true),
    ("SubAccountName", S, true),
    ("SubAccountType", S, true),
    ("Tags", J, true),
];

/// The Partner Center columns after them: where each row comes from and whom it is for.
const CUSTOM_COLUMNS: [(&str, ColType); 12] = [
    ("x_SourceDataset", S),
    ("x_RowKey", S),
    ("x_ChargeType", S),
    ("x_CustomerKey", S),
    ("x_CustomerDomainName", S),
    ("x_CustomerCountry", S),
    ("x_PartnerMpnId", S),
    ("x_ResellerMpnId", S),
    ("x_OrderId", S),
    ("x_SubscriptionId", S),
    ("x_MatchStatus", S),
    ("x_ExchangeRate", RATE),
];

/// Every billed and open charge line as FOCUS 1.2 rows.
pub(super) fn focus() -> DatasetSchema {
    let mut columns: Vec<Column> =
        FOCUS_COLUMNS.iter().map(|&(name, ty, nullable)| column(name, ty, nullable)).collect();
    columns.extend(CUSTOM_COLUMNS.iter().map(|&(name, ty)| column(name, ty, true)));
    DatasetSchema {
        name: Dataset::Focus,
        version: 1,
        description: "Every distinct billed and open charge (new commerce and legacy, credit documents included) as FOCUS 1.2 cost and usage rows: one row per charge line and one Tax row per line with tax, then Partner Center's own columns under x_",
        grain: "one charge line, or the tax of one charge line",
        api: "computed",
        keys: vec!["x_SourceDataset", "x_RowKey", "ChargeCategory"],
        partition: Partition::ScopeMonth("BillingPeriodStart"),
        currency_column: Some("BillingCurrency"),
        totals: vec!["BilledCost", "EffectiveCost"],
        explode: None,
        fx: None,
        built_from: "-",
        columns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_is_documented_in_the_mapping() {
        let mapping = include_str!("focus-mapping.md");
        for column in &focus().columns {
            assert!(mapping.contains(&format!("| `{}` |", column.name)), "{} is not in focus-mapping.md", column.name);
        }
        assert_eq!(focus().columns.len(), 57 + CUSTOM_COLUMNS.len());
        assert!(focus().columns.iter().skip(57).all(|c| c.name.starts_with("x_")), "custom columns come last");
    }
}
