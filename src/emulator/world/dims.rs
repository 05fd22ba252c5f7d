//! JSON of the world's small resources: customers, orders, subscriptions, entitlements,
//! invoices and invoice summaries (spec §9.1-§9.2, §9.9-§9.12).

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;

use super::json::{DateStyle, Obj, midnight};
use super::plan::{Customer, Entitlement, EntitlementKind, Order, Plan, Subscription, SubscriptionKind};
use crate::model::money::Currency;

/// Writes a customer as `GET /v1/customers/{id}` returns it.
pub fn write_customer(out: &mut String, c: &Customer) {
    let mut o = Obj::new(out);
    o.str("id", &c.id).str("commerceId", &c.commerce_id);
    o.obj("companyProfile", |p| {
        p.str("tenantId", &c.id)
            .str("domain", &c.domain)
            .str("companyName", &c.name)
            .link_self(&format!("/customers/{}/profiles/company", c.id))
            .attributes("CustomerCompanyProfile");
    });
    o.obj("billingProfile", |b| {
        b.str("id", &c.commerce_id)
            .str("firstName", "Alex")
            .str("lastName", "Example")
            .str("email", &format!("billing@{}", c.domain))
            .str("culture", "en-US")
            .str("language", "en")
            .str("companyName", &c.name);
        b.obj("defaultAddress", |a| {
            a.str("country", c.country)
                .str("city", "Example City")
                .str("addressLine1", "1 Example Way")
                .str("postalCode", "10001");
        });
        b.link_self(&format!("/customers/{}/profiles/billing", c.id));
        b.obj("attributes", |a| {
            a.str("etag", "\"1\"").str("objectType", "CustomerBillingProfile");
        });
    });
    o.str("relationshipToPartner", "reseller")
        .bool("allowDelegatedAccess", true)
        .link_self(&format!("/customers/{}", c.id))
        .attributes("Customer");
    o.end();
}

/// Writes an order as `GET /v1/customers/{c}/orders` returns it.
pub fn write_order(out: &mut String, order: &Order, plan: &Plan) {
    let customer = &plan.customers[order.customer];
    let mut o = Obj::new(out);
    o.str("id", &order.id)
        .str("alternateId", &order.alternate_id)
        .str("referenceCustomerId", &customer.id)
        .str("billingCycle", order.billing_cycle)
        .str("transactionType", "UserPurchase")
        .str("currencyCode", order.currency.code())
        .str("currencySymbol", order.currency.symbol());
    o.key_array("lineItems", order.lines.len(), |i, o| {
        let line = &order.lines[i];
        o.int("lineItemNumber", i as i64).str("offerId", &line.offer_id);
        if let Some(sub) = &line.subscription_id {
            o.str("subscriptionId", sub);
        }
        if let Some(term) = line.term {
            o.str("termDuration", term);
        }
        o.str("transactionType", line.transaction_type)
            .str("friendlyName", &line.friendly_name)
            .int("quantity", line.quantity)
            .str("partnerIdOnRecord", "");
        o.obj("provisioningContext", |p| {
            if let Some(r) = &line.reservation_order_id {
                p.str("reservationOrderId", r).str("scope", "shared").str("duration", line.term.unwrap_or(""));
            }
        });
        o.obj("links", |l| {
            l.link(
                "provisioningStatus",
                &format!("/customers/{}/orders/{}/lineitems/{i}/provisioningstatus", customer.id, order.id),
            );
        });
    });
    o.datetime("creationDate", order.created, DateStyle::Fraction7).str("status", "completed");
    o.obj("links", |l| {
        l.link("self", &format!("/customers/{}/orders/{}", customer.id, order.id))
            .link("provisioningStatus", &format!("/customers/{}/orders/{}/provisioningstatus", customer.id, order.id));
    });
    o.obj("attributes", |a| {
        a.str("etag", &format!("\"{}\"", &order.alternate_id[..8])).str("objectType", "Order");
    });
    o.end();
}

/// Writes a subscription as `GET /v1/customers/{c}/subscriptions` returns it.
pub fn write_subscription(out: &mut String, s: &Subscription, plan: &Plan) {
    let customer = &plan.customers[s.customer];
    let order = &plan.orders[s.order];
    let (product_type, display, unit_type, billing_type) = match s.kind {
        SubscriptionKind::Seats => ("OnlineServicesNCE", "OnlineServicesNCE", "Licenses", "license"),
        SubscriptionKind::AzurePlan => ("Azure", "Azure", "Usage-based", "usage"),
        SubscriptionKind::LegacyOffice => ("OnlineServices", "Online Services", "Licenses", "license"),
        SubscriptionKind::LegacyAzure => ("Azure", "Microsoft Azure", "Usage-based", "usage"),
    };
    let mut o = Obj::new(out);
    o.str("id", &s.id);
    match (&s.entitlement_id, s.kind) {
        (Some(e), SubscriptionKind::AzurePlan) => o.str("entitlementId", e),
        _ => o.str("entitlementId", &s.id),
    };
    o.str("offerId", &s.offer_id)
        .str("offerName", &s.offer_name)
        .str("friendlyName", &s.offer_name)
        .obj("productType", |p| {
            p.str("id", product_type).str("displayName", display);
        })
        .int("quantity", s.quantity)
        .str("unitType", unit_type)
        .datetime("creationDate", order.created, DateStyle::Fraction7)
        .date("effectiveStartDate", s.start, DateStyle::Zulu)
        .date("commitmentEndDate", s.end, DateStyle::Zulu)
        .str("commitmentEndDateTime", &format!("{}T23:59:59Z", s.end))
        .str("status", s.status)
        .bool("autoRenewEnabled", s.status == "active" && s.kind == SubscriptionKind::Seats)
        .str("billingType", billing_type)
        .str("billingCycle", s.billing_cycle)
        .bool("hasPurchasableAddons", false)
        .bool("isTrial", false)
        .str_array("actions", if s.status == "active" { &["edit", "cancel"] } else { &[] });
    if let Some(term) = s.term {
        o.str("termDuration", term);
    }
    o.str("renewalTermDuration", "")
        .raw("refundOptions", "[]")
        .bool("isMicrosoftProduct", true)
        .str("partnerId", "")
        .str("contractType", "subscription")
        .str("orderId", &order.id)
        .str("publisherName", "Microsoft Corporation");
    o.obj("links", |l| {
        l.link("offer", &format!("/offers/{}", s.offer_id))
            .link("self", &format!("/customers/{}/subscriptions/{}", customer.id, s.id));
    });
    o.obj("attributes", |a| {
        a.str("etag", &format!("\"{}\"", &s.id[..8])).str("objectType", "Subscription");
    });
    o.end();
}

/// Writes an entitlement as `GET /v1/customers/{c}/entitlements?showExpiry=true` returns it
/// (the server drops `expiryDate` unless asked for it).
pub fn write_entitlement(out: &mut String, e: &Entitlement, plan: &Plan) {
    let customer = &plan.customers[e.customer];
    let order = &plan.orders[e.order];
    let mut o = Obj::new(out);
    o.obj("referenceOrder", |r| {
        r.str("id", &order.id).str("lineItemId", "0").str("alternateId", &order.alternate_id);
    });
    o.str("productId", e.product_id)
        .str("skuId", e.sku_id)
        .int("quantity", e.quantity)
        .raw("quantityDetails", &format!("[{{\"quantity\":{},\"status\":\"Active\"}}]", e.quantity))
        .str(
            "entitlementType",
            match e.kind {
                EntitlementKind::Software => "software",
                EntitlementKind::ReservedInstance => "reservedinstance",
            },
        )
        .str("fulfillmentState", "Fulfilled");
    match (&e.reservation_order_id, e.kind) {
        (Some(reservation), EntitlementKind::ReservedInstance) => {
            let uri = format!(
                "/customers/{}/artifacts/reservedinstance/groups/{}/lineitems/0/resource/{reservation}",
                customer.id, order.alternate_id
            );
            o.raw(
                "entitledArtifacts",
                &format!(
                    "[{{\"artifactType\":\"reservedinstance\",\"link\":{{\"uri\":\"{uri}\",\"method\":\"GET\",\"headers\":[]}},\"resourceId\":\"{reservation}\",\"dynamicAttributes\":{{\"reservationType\":\"virtualmachines\"}}}}]"
                ),
            );
        }
        _ => {
            o.raw("entitledArtifacts", "[]");
        }
    }
    o.raw("includedEntitlements", "[]");
    if let Some(expiry) = e.expiry {
        o.datetime("expiryDate", midnight(expiry), DateStyle::Zulu);
    }
    o.end();
}

/// An invoice document to write.
pub struct InvoiceDoc<'a> {
    /// Invoice id.
    pub id: &'a str,
    /// Legacy (`D`) rather than new commerce (`G`).
    pub legacy: bool,
    /// Issue time.
    pub date: NaiveDateTime,
    /// Billing period start.
    pub period_start: NaiveDate,
    /// Billing period end.
    pub period_end: NaiveDate,
    /// `totalCharges`.
    pub total: Decimal,
    /// `paidAmount`.
    pub paid: Decimal,
    /// Currency.
    pub currency: Currency,
    /// `documentType`: `invoice`, `credit_note`, `adjustment_note`, `void_note`.
    pub document_type: &'a str,
    /// `status`: `active` or `void`.
    pub status: &'a str,
    /// `amendsOf`, on a note.
    pub amends_of: Option<&'a str>,
    /// The notes amending this invoice, as `amendments` lists them.
    pub amendments: Vec<AmendmentDoc<'a>>,
}

/// A note as an invoice's `amendments` array shows it (the list shape, without line-item links).
pub struct AmendmentDoc<'a> {
    /// Note id.
    pub id: &'a str,
    /// Issue time.
    pub date: NaiveDateTime,
    /// `totalCharges` (negative).
    pub total: Decimal,
    /// `paidAmount`.
    pub paid: Decimal,
    /// Currency.
    pub currency: Currency,
    /// `documentType`.
    pub document_type: &'a str,
    /// The invoice it amends.
    pub amends_of: &'a str,
}

/// Writes an invoice as `GET /v1/invoices/{id}` returns it.
pub fn write_invoice(out: &mut String, inv: &InvoiceDoc<'_>) {
    let (type_prefix, provider_path) = if inv.legacy { ("Recurring", "Office") } else { ("OneTime", "OneTime") };
    let mut o = Obj::new(out);
    o.str("id", inv.id)
        .datetime("invoiceDate", inv.date, DateStyle::Fraction7)
        .date("billingPeriodStartDate", inv.period_start, DateStyle::Zulu)
        .date("billingPeriodEndDate", inv.period_end, DateStyle::Zulu)
        .dec("totalCharges", inv.total, false)
        .dec("paidAmount", inv.paid, false)
        .str("currencyCode", inv.currency.code())
        .str("currencySymbol", inv.currency.symbol())
        .str("pdfDownloadLink", &format!("/invoices/{}/documents/statement", inv.id))
        .raw("taxReceipts", "[]");
    let details: &[(&str, &str, &str, &str)] = if inv.legacy {
        &[
            ("billing_line_items", "office", "Office", "BillingLineItems"),
            ("billing_line_items", "azure", "Azure", "BillingLineItems"),
            ("usage_line_items", "azure", "Azure", "UsageLineItems"),
        ]
    } else {
        &[("billing_line_items", "one_time", provider_path, "BillingLineItems")]
    };
    o.key_array("invoiceDetails", details.len(), |i, d| {
        let (item_type, provider, path_provider, path_type) = details[i];
        d.str("invoiceLineItemType", item_type).str("billingProvider", provider).obj("links", |l| {
            l.link("self", &format!("/invoices/{type_prefix}-{}/lineitems/{path_provider}/{path_type}", inv.id));
        });
        d.attributes("InvoiceDetail");
    });
    o.key_array("amendments", inv.amendments.len(), |i, a| {
        let note = &inv.amendments[i];
        a.str("id", note.id)
            .datetime("invoiceDate", note.date, DateStyle::Fraction7)
            .dec("totalCharges", note.total, false)
            .dec("paidAmount", note.paid, false)
            .str("currencyCode", note.currency.code())
            .str("currencySymbol", note.currency.symbol())
            .str("documentType", note.document_type)
            .str("amendsOf", note.amends_of)
            .str("invoiceType", type_prefix)
            .attributes("Invoice");
    });
    if let Some(amended) = inv.amends_of {
        o.str("amendsOf", amended);
    }
    o.str("documentType", inv.document_type)
        .str("status", inv.status)
        .str("invoiceType", type_prefix)
        .obj("links", |l| {
            l.link("self", &format!("/invoices/{type_prefix}-{}", inv.id));
        })
        .attributes("Invoice");
    o.end();
}

/// One currency's balance for the invoice summaries.
pub struct SummaryDoc {
    /// Currency.
    pub currency: Currency,
    /// Unpaid balance, per invoice type (`Recurring`, `OneTime`).
    pub balance: Vec<(&'static str, Decimal)>,
    /// Date of the first invoice.
    pub first_invoice: NaiveDateTime,
    /// Date of the latest invoice.
    pub latest_invoice: NaiveDateTime,
    /// Last payment (date, amount), if any.
    pub last_payment: Option<(NaiveDateTime, Decimal)>,
    /// When the balance was computed.
    pub accounting_date: NaiveDateTime,
}

fn summary_body(o: &mut Obj<'_>, s: &SummaryDoc, balance: Decimal) {
    o.dec("balanceAmount", balance, false)
        .str("currencyCode", s.currency.code())
        .str("currencySymbol", s.currency.symbol())
        .datetime("accountingDate", s.accounting_date, DateStyle::Fraction7)
        .datetime("firstInvoiceCreationDate", s.first_invoice, DateStyle::Fraction7);
    match s.last_payment {
        Some((date, amount)) => {
            o.datetime("lastPaymentDate", date, DateStyle::Zulu).dec("lastPaymentAmount", amount, false);
        }
        None => {
            o.str("lastPaymentDate", "0001-01-01T00:00:00").int("lastPaymentAmount", 0);
        }
    }
    o.datetime("latestInvoiceDate", s.latest_invoice, DateStyle::Fraction7);
}

/// Writes one item of `GET /v1/invoices/summaries`.
pub fn write_summary(out: &mut String, s: &SummaryDoc) {
    let total: Decimal = s.balance.iter().map(|(_, b)| *b).sum();
    let mut o = Obj::new(out);
    summary_body(&mut o, s, total);
    o.key_array("details", s.balance.len(), |i, d| {
        let (invoice_type, balance) = s.balance[i];
        d.str("invoiceType", invoice_type).obj("summary", |inner| {
            summary_body(inner, s, balance);
            inner.attributes("InvoiceSummary");
        });
    });
    o.link_self("/invoices/summary").attributes("InvoiceSummary");
    o.end();
}
