//! The master-data tables: invoices and credit documents, summaries, and the customer-scoped
//! resources lines are matched against (customers, orders and their lines, subscriptions,
//! entitlements).
//!
//! In: the dataset. Out: its API columns and keys; `catalog` adds the derived columns.

use super::*;

/// Invoices and credit documents.
pub(super) fn invoices() -> DatasetSchema {
    DatasetSchema {
        name: Dataset::Invoices,
        version: 3,
        description: "Invoices and credit documents, as GET /v1/invoices/{id} returns them",
        grain: "one invoice",
        api: "GET /v1/invoices/{id}",
        keys: vec!["id"],
        partition: Partition::RowMonth("billing_period_start_date"),
        currency_column: Some("billing_currency"),
        totals: vec!["total_charges", "paid_amount"],
        explode: None,
        built_from: "",
        fx: None,
        columns: vec![
            required(f("id", S)),
            f("invoiceDate", TS),
            // Instants, as sent: Microsoft's own example carries a time of day.
            f("billingPeriodStartDate", TS),
            f("billingPeriodEndDate", TS),
            f("totalCharges", AMOUNT),
            f("paidAmount", AMOUNT),
            named("billing_currency", &["currencyCode"], S),
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
    }
}

/// One balance per billing currency.
pub(super) fn invoice_summaries() -> DatasetSchema {
    DatasetSchema {
        name: Dataset::InvoiceSummaries,
        version: 2,
        description: "The partner's balance in one billing currency",
        grain: "one currency",
        api: "GET /v1/invoices/summaries",
        keys: vec!["billing_currency"],
        partition: Partition::None,
        currency_column: Some("billing_currency"),
        totals: vec!["balance_amount"],
        explode: None,
        built_from: "",
        fx: None,
        columns: vec![
            required(named("billing_currency", &["currencyCode"], S)),
            f("currencySymbol", S),
            f("balanceAmount", AMOUNT),
            f("accountingDate", TS),
            f("firstInvoiceCreationDate", TS),
            f("lastPaymentDate", TS),
            f("lastPaymentAmount", AMOUNT),
            f("latestInvoiceDate", TS),
            f("details", J),
        ],
    }
}

/// Customers.
pub(super) fn customers() -> DatasetSchema {
    dimension(
        Dataset::Customers,
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
    )
}

/// Orders.
pub(super) fn orders() -> DatasetSchema {
    let mut schema = dimension(
        Dataset::Orders,
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
            named("billing_currency", &["currencyCode"], S),
            f("currencySymbol", S),
            f("creationDate", TS),
            f("status", S),
        ],
    );
    schema.version += 1;
    schema
}

/// The lines of each order.
pub(super) fn order_line_items() -> DatasetSchema {
    DatasetSchema {
        name: Dataset::OrderLineItems,
        version: 2,
        description: "Lines of an order: what was bought, and the subscription it made",
        grain: "one order line",
        api: "GET /v1/customers/{id}/orders (lineItems)",
        keys: vec!["order_id", "line_item_number"],
        partition: Partition::None,
        currency_column: None,
        totals: vec![],
        explode: Some("lineItems"),
        built_from: "",
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
            f("quantity", UNITS),
            f("partnerIdOnRecord", S),
            f("provisioningContext", J),
        ],
    }
}

/// Subscriptions.
pub(super) fn subscriptions() -> DatasetSchema {
    let mut schema = dimension(
        Dataset::Subscriptions,
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
            f("quantity", UNITS),
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
    );
    schema.version += 1;
    schema
}

/// Entitlements.
pub(super) fn entitlements() -> DatasetSchema {
    let mut schema = dimension(
        Dataset::Entitlements,
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
            f("quantity", UNITS),
            f("entitlementType", S),
            f("fulfillmentState", S),
            f("expiryDate", TSU),
            named("reservation_order_id", &["entitledArtifacts.0.resourceId"], S),
            f("entitledArtifacts", J),
            f("includedEntitlements", J),
            f("dynamicAttributes", J),
            f("quantityDetails", J),
        ],
    );
    schema.version += 1;
    schema
}

/// A master-data dataset: not partitioned, no amounts.
pub(super) fn dimension(
    name: Dataset,
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
        built_from: "",
        fx: None,
        columns,
    }
}
