//! Line items as typed values and their JSON as the API spells it (spec §9.4-§9.8). The typed
//! values are what truth totals are summed from; the JSON is what the server replays.

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;

use super::json::{DateStyle, Obj, midnight};
use super::quirks::Quirks;
use crate::model::money::Currency;

/// A new-commerce reconciliation line (`OneTimeInvoiceLineItem`), billed or unbilled.
#[derive(Debug, Clone)]
pub struct ReconLine {
    /// Index of the customer whose charge this is.
    pub customer: usize,
    /// `customerId` as written.
    pub customer_id: String,
    /// `customerName`.
    pub customer_name: String,
    /// `customerDomainName`.
    pub customer_domain: String,
    /// `customerCountry`.
    pub customer_country: &'static str,
    /// `invoiceNumber` (`""` when unbilled).
    pub invoice_number: String,
    /// `orderId`.
    pub order_id: String,
    /// `alternateId`.
    pub alternate_id: String,
    /// `orderDate`.
    pub order_date: NaiveDateTime,
    /// `productId`.
    pub product_id: &'static str,
    /// `skuId`.
    pub sku_id: &'static str,
    /// `availabilityId`.
    pub availability_id: &'static str,
    /// `productName`.
    pub product_name: &'static str,
    /// `skuName`.
    pub sku_name: &'static str,
    /// `productQualifiers`.
    pub qualifiers: &'static [&'static str],
    /// `chargeType`.
    pub charge_type: &'static str,
    /// `unitPrice` (pricing currency).
    pub unit_price: Decimal,
    /// `effectiveUnitPrice` (pricing currency).
    pub effective_unit_price: Decimal,
    /// `unitType`.
    pub unit_type: &'static str,
    /// `quantity`.
    pub quantity: i64,
    /// `billableQuantity`.
    pub billable_quantity: Decimal,
    /// `subtotal` (billing currency).
    pub subtotal: Decimal,
    /// `taxTotal`.
    pub tax: Decimal,
    /// `totalForCustomer`.
    pub total: Decimal,
    /// `currency`.
    pub currency: Currency,
    /// `publisherName`.
    pub publisher_name: &'static str,
    /// `subscriptionDescription`.
    pub subscription_description: &'static str,
    /// `subscriptionId` (empty for one-time purchases).
    pub subscription_id: String,
    /// `subscriptionStartDate`.
    pub subscription_start: Option<NaiveDate>,
    /// `subscriptionEndDate`.
    pub subscription_end: Option<NaiveDate>,
    /// `chargeStartDate`.
    pub charge_start: NaiveDate,
    /// `chargeEndDate`.
    pub charge_end: NaiveDate,
    /// `termAndBillingCycle`.
    pub term_and_billing: &'static str,
    /// `referenceId`.
    pub reference_id: String,
    /// `priceAdjustmentDescription` (a JSON array inside a string).
    pub price_adjustment: &'static str,
    /// `pcToBCExchangeRate`.
    pub rate: Decimal,
    /// `pcToBCExchangeRateDate` (`None` is sent as `0001-01-01T00:00:00`).
    pub rate_date: Option<NaiveDate>,
    /// `meterDescription`.
    pub meter_description: &'static str,
    /// `billingFrequency`.
    pub billing_frequency: &'static str,
    /// `reservationOrderId`.
    pub reservation_order_id: String,
    /// `creditReasonCode`.
    pub credit_reason: &'static str,
    /// `promotionId`.
    pub promotion_id: Option<String>,
}

impl ReconLine {
    /// Stamps a catalog product on the line.
    pub fn set_product(&mut self, ids: super::catalog::ProductIds) {
        self.product_id = ids.product_id;
        self.sku_id = ids.sku_id;
        self.availability_id = ids.availability_id;
        self.product_name = ids.product_name;
        self.sku_name = ids.sku_name;
    }
}

/// Partner facts every line repeats.
pub struct PartnerFields<'a> {
    /// `partnerId`.
    pub id: &'a str,
    /// `partnerName`.
    pub name: &'a str,
    /// `mpnId`.
    pub mpn_id: &'a str,
}

const NO_DATE: &str = "0001-01-01T00:00:00";

fn rate_fields(o: &mut Obj<'_>, rate: Decimal, date: Option<NaiveDate>, q: &mut Quirks) {
    let key = q.rate_key();
    let quoted = q.quoted();
    o.dec(key, rate, quoted);
    match date {
        Some(d) => {
            let style = q.date_style();
            o.date(Quirks::rate_date_key(key), d, style);
        }
        None => {
            o.str(Quirks::rate_date_key(key), NO_DATE);
        }
    }
}

/// Writes a reconciliation line as `OneTimeInvoiceLineItem` JSON.
pub fn write_recon_line(out: &mut String, l: &ReconLine, p: &PartnerFields<'_>, q: &mut Quirks) {
    let mut o = Obj::new(out);
    o.str("partnerId", p.id)
        .str("customerId", &l.customer_id)
        .str("customerName", &l.customer_name)
        .str("customerDomainName", &l.customer_domain)
        .str("customerCountry", l.customer_country)
        .str("invoiceNumber", &l.invoice_number)
        .str("mpnId", p.mpn_id);
    match q.no_reseller() {
        Some(text) => o.str("resellerMpnId", text),
        None => o.int("resellerMpnId", 0),
    };
    o.str("orderId", &l.order_id);
    let style = q.timestamp_style();
    o.datetime("orderDate", l.order_date, style)
        .str("productId", l.product_id)
        .str("skuId", l.sku_id)
        .str("availabilityId", l.availability_id)
        .str("skuName", l.sku_name)
        .str("productName", l.product_name);
    if !l.qualifiers.is_empty() {
        o.str_array("productQualifiers", l.qualifiers);
    }
    let quoted = q.quoted();
    o.str("chargeType", l.charge_type).dec("unitPrice", l.unit_price, quoted);
    let quoted = q.quoted();
    o.dec("effectiveUnitPrice", l.effective_unit_price, quoted).str("unitType", l.unit_type);
    if q.quoted() {
        o.str("quantity", &l.quantity.to_string());
    } else {
        o.int("quantity", l.quantity);
    }
    let quoted = q.quoted();
    o.dec("subtotal", l.subtotal, quoted);
    let quoted = q.quoted();
    o.dec("taxTotal", l.tax, quoted);
    let quoted = q.quoted();
    o.dec("totalForCustomer", l.total, quoted)
        .str("currency", l.currency.code())
        .str("publisherName", l.publisher_name)
        .str("publisherId", "")
        .str("subscriptionDescription", l.subscription_description);
    let absent = q.absent();
    o.opt_str("subscriptionId", Some(l.subscription_id.as_str()).filter(|s| !s.is_empty()), absent);
    for (key, date) in [("subscriptionStartDate", l.subscription_start), ("subscriptionEndDate", l.subscription_end)] {
        match date {
            Some(d) => {
                let style = q.date_style();
                o.date(key, d, style);
            }
            None => {
                o.null(key);
            }
        }
    }
    let style = q.date_style();
    o.date("chargeStartDate", l.charge_start, style);
    let style = q.date_style();
    o.date("chargeEndDate", l.charge_end, style)
        .str("termAndBillingCycle", l.term_and_billing)
        .str("alternateId", &l.alternate_id)
        .str("referenceId", &l.reference_id)
        .str("priceAdjustmentDescription", l.price_adjustment)
        .str("discountDetails", "")
        .str("pricingCurrency", Currency::Usd.code());
    rate_fields(&mut o, l.rate, l.rate_date, q);
    let quoted = q.quoted();
    o.dec("billableQuantity", l.billable_quantity, quoted)
        .str("meterDescription", l.meter_description)
        .str("billingFrequency", l.billing_frequency);
    let absent = q.absent();
    o.opt_str("reservationOrderId", Some(l.reservation_order_id.as_str()).filter(|s| !s.is_empty()), absent);
    o.str("creditReasonCode", l.credit_reason);
    let absent = q.absent();
    o.opt_str("promotionId", l.promotion_id.as_deref(), absent);
    if !q.drop_item_type() {
        o.str("invoiceLineItemType", "billing_line_items").str("billingProvider", "one_time");
    }
    o.attributes("OneTimeInvoiceLineItem");
    o.end();
}

/// A daily rated usage row (`DailyRatedUsageLineItem`), billed or unbilled.
pub struct UsageRow<'a> {
    /// `customerId` as written.
    pub customer_id: &'a str,
    /// `customerName`.
    pub customer_name: &'a str,
    /// `customerDomainName`.
    pub customer_domain: &'a str,
    /// `customerCountry`.
    pub customer_country: &'a str,
    /// `invoiceNumber` (`""` when unbilled).
    pub invoice_number: &'a str,
    /// The meter.
    pub meter: &'a super::catalog::Meter,
    /// (meter region, resource location).
    pub region: (&'a str, &'a str),
    /// Resource group.
    pub resource_group: &'a str,
    /// Resource URI.
    pub resource_uri: &'a str,
    /// Tags (JSON in a string).
    pub tags: &'a str,
    /// Azure plan subscription id.
    pub subscription_id: &'a str,
    /// Azure subscription id (`entitlementId`).
    pub entitlement_id: &'a str,
    /// Name of the Azure subscription.
    pub entitlement_description: &'a str,
    /// Day of consumption.
    pub usage_date: NaiveDate,
    /// Billing period start.
    pub charge_start: NaiveDate,
    /// Billing period end (first day of the next month, as the API often sends it).
    pub charge_end: NaiveDate,
    /// Units consumed.
    pub quantity: Decimal,
    /// List price (USD).
    pub unit_price: Decimal,
    /// Price after partner earned credit and benefits (USD).
    pub effective_unit_price: Decimal,
    /// Pre-tax total in USD.
    pub pricing_total: Decimal,
    /// Pre-tax total in the billing currency.
    pub billing_total: Decimal,
    /// Billing currency.
    pub currency: Currency,
    /// Pricing → billing rate.
    pub rate: Decimal,
    /// Date of the rate.
    pub rate_date: NaiveDate,
    /// Partner earned credit applied.
    pub pec: bool,
    /// Reservation benefit: (reservation order id, reservation id).
    pub benefit: Option<(&'a str, &'a str)>,
}

/// Writes a usage row as `DailyRatedUsageLineItem` JSON.
pub fn write_usage_row(out: &mut String, r: &UsageRow<'_>, p: &PartnerFields<'_>, q: &mut Quirks) {
    let m = r.meter;
    let mut o = Obj::new(out);
    o.str("partnerId", p.id)
        .str("partnerName", p.name)
        .str("customerId", r.customer_id)
        .str("customerName", r.customer_name)
        .str("customerDomainName", r.customer_domain)
        .str("customerCountry", r.customer_country)
        .str("mpnId", p.mpn_id);
    match q.no_reseller() {
        Some(text) => o.str("resellerMpnId", text),
        None => o.int("resellerMpnId", 0),
    };
    o.str("invoiceNumber", r.invoice_number)
        .str("productId", m.product_id)
        .str("skuId", m.sku_id)
        .str("availabilityId", "")
        .str("skuName", m.name)
        .str("productName", m.product_name)
        .str("publisherName", m.publisher)
        .str("publisherId", "")
        .str("subscriptionDescription", "Azure plan")
        .str("subscriptionId", r.subscription_id);
    let style = q.date_style();
    o.date("chargeStartDate", r.charge_start, style);
    let style = q.date_style();
    o.date("chargeEndDate", r.charge_end, style);
    let style = q.date_style();
    o.date("usageDate", r.usage_date, style)
        .str("meterType", m.meter_type)
        .str("meterCategory", m.category)
        .str("meterId", m.meter_id)
        .str("meterSubCategory", m.sub_category)
        .str("meterName", m.name)
        .str("meterRegion", r.region.0)
        .str("unitOfMeasure", m.unit)
        .str("resourceLocation", r.region.1)
        .str("consumedService", m.consumed_service)
        .str("resourceGroup", r.resource_group)
        .str("resourceUri", r.resource_uri)
        .str("tags", r.tags);
    match r.benefit {
        Some((order, id)) => {
            let info = format!(
                "{{\"ReservationOrderId\":\"{order}\",\"ReservationId\":\"{id}\",\"ConsumptionMeter\":\"{}\"}}",
                m.meter_id
            );
            o.str("additionalInfo", &info);
        }
        None => {
            o.str("additionalInfo", "");
        }
    }
    o.str("serviceInfo1", "").str("serviceInfo2", "").str("chargeType", "new");
    let quoted = q.quoted();
    o.dec("unitPrice", r.unit_price, quoted);
    let quoted = q.quoted();
    o.dec("quantity", r.quantity, quoted).str("unitType", m.unit);
    let quoted = q.quoted();
    o.dec("billingPreTaxTotal", r.billing_total, quoted).str("billingCurrency", r.currency.code());
    let quoted = q.quoted();
    o.dec("pricingPreTaxTotal", r.pricing_total, quoted)
        .str("pricingCurrency", Currency::Usd.code())
        .str("entitlementId", r.entitlement_id)
        .str("entitlementDescription", r.entitlement_description);
    rate_fields(&mut o, r.rate, Some(r.rate_date), q);
    let quoted = q.quoted();
    o.dec("effectiveUnitPrice", r.effective_unit_price, quoted);
    if r.pec {
        o.dec("rateOfPartnerEarnedCredit", Decimal::new(15, 2), false)
            .bool("hasPartnerEarnedCredit", true)
            .dec("rateOfCredit", Decimal::new(15, 2), false)
            .str("creditType", "Partner Earned Credit Applied");
    } else {
        o.int("rateOfPartnerEarnedCredit", 0).bool("hasPartnerEarnedCredit", false);
        if q.quoted() {
            o.null("rateOfCredit");
        } else {
            o.int("rateOfCredit", 0);
        }
        o.str("creditType", "Credit Not Applied");
    }
    match r.benefit {
        Some((order, id)) => {
            o.str("benefitOrderId", order).str("benefitId", id).str("benefitType", "Reservation");
        }
        None => {
            o.str("benefitOrderId", "").str("benefitId", "").str("benefitType", "");
        }
    }
    if !q.drop_item_type() {
        o.str("invoiceLineItemType", "usage_line_items").str("billingProvider", "marketplace");
    }
    o.attributes("DailyRatedUsageLineItem");
    o.end();
}

/// A legacy licence-based line (`LicenseBasedLineItem`, provider `office`).
pub struct LegacyOfficeLine<'a> {
    /// `customerId` (upper case, as legacy lines spell it).
    pub customer_id: String,
    /// `customerName`.
    pub customer_name: &'a str,
    /// `domainName`.
    pub domain: &'a str,
    /// `orderId`.
    pub order_id: &'a str,
    /// Legacy short subscription id.
    pub subscription_id: &'a str,
    /// Partner Center subscription id.
    pub syndication_id: &'a str,
    /// Offer GUID.
    pub offer_id: &'a str,
    /// Durable offer GUID.
    pub durable_offer_id: &'a str,
    /// Offer name.
    pub offer_name: &'a str,
    /// Subscription term.
    pub subscription_start: NaiveDate,
    /// Subscription term end.
    pub subscription_end: NaiveDate,
    /// Charged interval start.
    pub charge_start: NaiveDate,
    /// Charged interval end.
    pub charge_end: NaiveDate,
    /// Price per licence.
    pub unit_price: Decimal,
    /// Licences.
    pub quantity: i64,
    /// unitPrice × quantity.
    pub amount: Decimal,
    /// Tax.
    pub tax: Decimal,
    /// Amount after tax.
    pub total: Decimal,
    /// Currency.
    pub currency: Currency,
}

/// Writes a legacy licence line.
pub fn write_legacy_office_line(out: &mut String, l: &LegacyOfficeLine<'_>, p: &PartnerFields<'_>, mpn: i64) {
    let mut o = Obj::new(out);
    o.str("partnerId", p.id)
        .str("customerId", &l.customer_id)
        .str("customerName", l.customer_name)
        .int("mpnId", mpn)
        .int("tier2MpnId", -1)
        .str("orderId", l.order_id)
        .str("subscriptionId", l.subscription_id)
        .str("syndicationPartnerSubscriptionNumber", l.syndication_id)
        .str("offerId", l.offer_id)
        .str("durableOfferId", l.durable_offer_id)
        .str("offerName", l.offer_name)
        .str("domainName", l.domain)
        .str("billingCycleType", "MONTHLY")
        .str("subscriptionName", l.offer_name)
        .str("subscriptionDescription", l.offer_name)
        .date("subscriptionStartDate", l.subscription_start, DateStyle::Zulu)
        .date("subscriptionEndDate", l.subscription_end, DateStyle::Zulu)
        .date("chargeStartDate", l.charge_start, DateStyle::Zulu)
        .date("chargeEndDate", l.charge_end, DateStyle::Zulu)
        .str("chargeType", "Cycle fee")
        .dec("unitPrice", l.unit_price, false)
        .int("quantity", l.quantity)
        .dec("amount", l.amount, false)
        .int("totalOtherDiscount", 0)
        .dec("subtotal", l.amount, false)
        .dec("tax", l.tax, false)
        .dec("totalForCustomer", l.total, false)
        .str("currency", l.currency.code())
        .str("invoiceLineItemType", "billing_line_items")
        .str("billingProvider", "office")
        .attributes("LicenseBasedLineItem");
    o.end();
}

/// Base fields shared by legacy Azure billing and usage lines.
pub struct LegacyAzureBase<'a> {
    /// `customerId`.
    pub customer_id: &'a str,
    /// `customerCompanyName`.
    pub customer_name: &'a str,
    /// `domainName`.
    pub domain: &'a str,
    /// `invoiceNumber`.
    pub invoice_number: &'a str,
    /// `subscriptionId`.
    pub subscription_id: &'a str,
    /// `orderId`.
    pub order_id: &'a str,
    /// `serviceName`.
    pub service_name: &'a str,
    /// `serviceType`.
    pub service_type: &'a str,
    /// `resourceGuid`.
    pub resource_guid: &'a str,
    /// `resourceName`.
    pub resource_name: &'a str,
    /// `region`.
    pub region: &'a str,
    /// `consumedQuantity`.
    pub consumed_quantity: Decimal,
    /// Charged interval.
    pub charge_start: NaiveDate,
    /// Charged interval end.
    pub charge_end: NaiveDate,
}

fn legacy_azure_base(o: &mut Obj<'_>, b: &LegacyAzureBase<'_>, p: &PartnerFields<'_>, mpn: i64) {
    o.str("partnerId", p.id)
        .str("partnerName", p.name)
        .str("partnerBillableAccountId", "1234567890")
        .str("customerId", b.customer_id)
        .str("customerCompanyName", b.customer_name)
        .int("mpnId", mpn)
        .int("tier2MpnId", -1)
        .str("invoiceNumber", b.invoice_number)
        .str("domainName", b.domain)
        .str("billingCycleType", "Monthly")
        .str("subscriptionId", b.subscription_id)
        .str("subscriptionName", "Microsoft Azure")
        .str("subscriptionDescription", "Microsoft Azure")
        .str("orderId", b.order_id)
        .str("serviceName", b.service_name)
        .str("serviceType", b.service_type)
        .str("resourceGuid", b.resource_guid)
        .str("resourceName", b.resource_name)
        .str("region", b.region)
        .dec("consumedQuantity", b.consumed_quantity, false)
        .date("chargeStartDate", b.charge_start, DateStyle::Zulu)
        .date("chargeEndDate", b.charge_end, DateStyle::Zulu)
        .str("unit", "");
}

/// Writes a legacy Azure billing line (`UsageBasedLineItem`).
pub fn write_legacy_azure_line(
    out: &mut String,
    b: &LegacyAzureBase<'_>,
    price: Decimal,
    pretax: Decimal,
    p: &PartnerFields<'_>,
    mpn: i64,
) {
    let mut o = Obj::new(out);
    legacy_azure_base(&mut o, b, p, mpn);
    o.int("detailLineItemId", 0)
        .str("sku", "")
        .int("includedQuantity", 0)
        .dec("overageQuantity", b.consumed_quantity, false)
        .dec("listPrice", price, false)
        .dec("consumptionPrice", price, false)
        .int("consumptionDiscount", 0)
        .str("currency", Currency::Usd.code())
        .dec("pretaxCharges", pretax, false)
        .int("taxAmount", 0)
        .dec("postTaxTotal", pretax, false)
        .dec("pretaxEffectiveRate", price, false)
        .dec("postTaxEffectiveRate", price, false)
        .str("chargeType", "Assess usage fee for current cycle")
        .str("invoiceLineItemType", "billing_line_items")
        .str("billingProvider", "azure")
        .attributes("UsageBasedLineItem");
    o.end();
}

/// Writes a legacy Azure daily usage line (`DailyUsageLineItem`): quantities only.
pub fn write_legacy_usage_line(
    out: &mut String,
    b: &LegacyAzureBase<'_>,
    usage_date: NaiveDate,
    p: &PartnerFields<'_>,
    mpn: i64,
) {
    let mut o = Obj::new(out);
    legacy_azure_base(&mut o, b, p, mpn);
    o.str("customerBillableAccount", "1234567890")
        .datetime("usageDate", midnight(usage_date), DateStyle::Zulu)
        .str("meteredService", b.service_name)
        .str("meteredServiceType", b.service_type)
        .str("meteredRegion", b.region)
        .str("project", "")
        .str("serviceInfo", "")
        .str("invoiceLineItemType", "usage_line_items")
        .str("billingProvider", "azure")
        .attributes("DailyUsageLineItem");
    o.end();
}
