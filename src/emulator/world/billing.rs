//! Line items of one billing slot (an invoiced month, or an unbilled period), priced by the
//! rules of spec §9.4 and §10 and written straight to the world's files.
//!
//! Seat and one-time charges follow the licence rule `truncate(effectiveUnitPrice × rate) ×
//! billableQuantity`; Azure plan charges aggregate the month's daily rated usage per meter with the
//! usage rule `truncate(truncate2(effectiveUnitPrice × Σquantity) × rate)`; tax is truncated per
//! line; the invoice total is Σ `totalForCustomer` (legacy: Σ `totalForCustomer` + Σ `postTaxTotal`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use super::catalog::{self, LEGACY_AZURE_METERS, LEGACY_OFFERS, METERS, REGIONS};
use super::dice::{Dice, Ppm};
use super::documents::{Amendment, NoteKind};
use super::plan::{AzurePlan, Plan, SeatPlan};
use super::quirks::Quirks;
use super::records::{
    LegacyAzureBase, LegacyOfficeLine, PartnerFields, ReconLine, UsageRow, write_legacy_azure_line,
    write_legacy_office_line, write_legacy_usage_line, write_recon_line, write_usage_row,
};
use super::timeline::{Month, add_days};
use super::truth::{Anomaly, InvoiceTruth, Restatement, Tally, UnbilledTruth, dataset};
use super::{AnomalyRates, WorldError, WorldSpec};
use crate::model::money::{Currency, truncate_dp};

/// Which unbilled period a slot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// The month in progress.
    Current,
    /// The month before, not invoiced yet.
    Previous,
}

impl Period {
    /// The v1 `period` query value.
    pub fn name(self) -> &'static str {
        match self {
            Period::Current => "current",
            Period::Previous => "previous",
        }
    }
}

/// A billing slot.
#[derive(Debug, Clone)]
pub struct Slot {
    /// The month.
    pub month: Month,
    /// `None` when invoiced, else the unbilled period.
    pub unbilled: Option<Period>,
    /// Last day with charges (inclusive).
    pub cutoff: NaiveDate,
    /// Invoice id per currency (billed slots).
    pub invoice_ids: BTreeMap<Currency, String>,
    /// The legacy invoice of the month (billed slots).
    pub legacy_invoice_id: Option<String>,
    /// Whether this slot must plant one of every anomaly kind it can (the first billed month).
    pub showcase: bool,
    /// The document amending each currency's invoice, if any (billed slots).
    pub amendments: BTreeMap<Currency, Amendment>,
}

/// What a slot produced.
#[derive(Debug, Default)]
pub struct SlotOutput {
    /// Rows and control totals.
    pub tally: Tally,
    /// Planted anomalies.
    pub anomalies: Vec<Anomaly>,
    /// Invoices of the slot (billed slots).
    pub invoices: Vec<InvoiceTruth>,
    /// Unbilled periods of the slot.
    pub unbilled: Vec<UnbilledTruth>,
    /// Lines this slot re-priced for a world revision.
    pub restated: Vec<Restatement>,
}

/// A document written beside an invoice of the slot: a note amending it, or its rebill.
#[derive(Debug, Clone)]
struct Written {
    id: String,
    document_type: &'static str,
    amends_of: Option<String>,
    rebill_of: Option<String>,
    /// Σ `totalForCustomer` of its distinct lines, and of every line served.
    distinct: Decimal,
    served: Decimal,
    recon_rows: u64,
    usage_rows: u64,
}

/// Counts `copies` served recon rows of a line in the tally.
fn tally_recon(tally: &mut Tally, dataset: &'static str, copies: u32, l: &ReconLine) {
    let amounts = [("subtotal", l.subtotal), ("taxTotal", l.tax), ("totalForCustomer", l.total)];
    tally.line(dataset, l.currency, copies, &amounts);
}

/// Counts `copies` served usage rows in the tally: quantity, pricing and billing totals.
fn tally_usage(tally: &mut Tally, dataset: &'static str, currency: Currency, copies: u32, amounts: [Decimal; 3]) {
    let [quantity, pricing, billing] = amounts;
    let amounts = [("quantity", quantity), ("pricingPreTaxTotal", pricing), ("billingPreTaxTotal", billing)];
    tally.line(dataset, currency, copies, &amounts);
}

/// The quoted JSON text of an id, as it appears in a written line.
fn quoted(id: &str) -> String {
    format!("\"{id}\"")
}

/// Mid-market USD → currency rate of a month (what `pcToBCExchangeRate` carries), and its date.
pub fn exchange_rate(seed: u64, currency: Currency, month: Month) -> (Decimal, NaiveDate) {
    let date = add_days(month.prev().last_day(), 0).pred_opt().and_then(|d| d.pred_opt()).unwrap_or(month.first_day());
    let base = match currency {
        Currency::Usd => return (Decimal::ONE, date),
        Currency::Eur => Decimal::new(92, 2),
        Currency::Gbp => Decimal::new(79, 2),
        Currency::Jpy => Decimal::new(1495, 1),
        Currency::Dkk => Decimal::new(687, 2),
        Currency::Chf => Decimal::new(88, 2),
        Currency::Kwd => Decimal::new(3075, 4),
    };
    let drift = Dice::new(seed, &format!("fx-{currency}-{}", month.label())).int(-25, 25);
    let rate = base * Decimal::from(1000 + drift) / Decimal::from(1000);
    let dp = if currency == Currency::Jpy { 4 } else { 6 };
    (rate.round_dp(dp).normalize(), date)
}

/// Tax rate on the partner's invoice in a billing currency.
pub fn tax_rate(currency: Currency) -> Decimal {
    match currency {
        Currency::Usd | Currency::Kwd => Decimal::ZERO,
        Currency::Eur => Decimal::new(19, 2),
        Currency::Gbp => Decimal::new(20, 2),
        Currency::Jpy => Decimal::new(10, 2),
        Currency::Dkk => Decimal::new(25, 2),
        Currency::Chf => Decimal::new(81, 3),
    }
}

/// Decides which lines carry a planted anomaly.
struct Planter<'a> {
    rates: &'a AnomalyRates,
    dice: Dice,
    showcase: bool,
    planted: BTreeSet<(&'static str, &'static str)>,
}

impl Planter<'_> {
    fn decide(&mut self, dataset: &'static str, kind: &'static str) -> bool {
        let rate = self.rates.rate(kind);
        if rate == Ppm(0) {
            return false;
        }
        let forced = self.showcase && !self.planted.contains(&(dataset, kind));
        if forced || self.dice.chance(rate) {
            self.planted.insert((dataset, kind));
            return true;
        }
        false
    }
}

/// A file of JSON lines being written.
struct Lines {
    out: BufWriter<File>,
    buf: String,
    rows: u64,
}

impl Lines {
    fn create(path: PathBuf) -> Result<Lines, WorldError> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| WorldError::io(parent, e))?;
        }
        let file = File::create(&path).map_err(|e| WorldError::io(&path, e))?;
        Ok(Lines { out: BufWriter::with_capacity(1 << 20, file), buf: String::with_capacity(4096), rows: 0 })
    }

    /// Writes what is in `buf` as one line, `copies` times.
    fn flush_record(&mut self, copies: u32) -> Result<(), std::io::Error> {
        self.buf.push('\n');
        for _ in 0..copies {
            self.out.write_all(self.buf.as_bytes())?;
            self.rows += 1;
        }
        self.buf.clear();
        Ok(())
    }

    fn finish(mut self, path: &Path) -> Result<u64, WorldError> {
        self.out.flush().map_err(|e| WorldError::io(path, e))?;
        Ok(self.rows)
    }
}

struct SlotGen<'a> {
    plan: &'a Plan,
    spec: &'a WorldSpec,
    slot: &'a Slot,
    dir: &'a Path,
    dice: Dice,
    quirks: Quirks,
    planter: Planter<'a>,
    out: SlotOutput,
    partner_mpn: String,
    /// Whether a customer credit line was issued in this slot.
    credited: bool,
    /// Notes and rebills written beside each currency's invoice.
    written: BTreeMap<Currency, Vec<Written>>,
    /// Usage rows written for each currency's rebill.
    rebill_usage: BTreeMap<Currency, u64>,
}

const PEC_NOTE: &str = "[\"15.0% Partner earned credit for services managed\"]";

impl<'a> SlotGen<'a> {
    fn invoice_number(&self, currency: Currency) -> String {
        self.slot.invoice_ids.get(&currency).cloned().unwrap_or_default()
    }

    fn base_line(&mut self, customer: usize, order: usize) -> ReconLine {
        let c = &self.plan.customers[customer];
        let o = &self.plan.orders[order];
        let (rate, rate_date) = exchange_rate(self.spec.seed, c.currency, self.slot.month);
        ReconLine {
            customer,
            customer_id: c.line_id(),
            customer_name: c.name.clone(),
            customer_domain: c.domain.clone(),
            customer_country: c.country,
            invoice_number: self.invoice_number(c.currency),
            order_id: o.id.clone(),
            alternate_id: o.alternate_id.clone(),
            order_date: o.created,
            product_id: "",
            sku_id: "",
            availability_id: "",
            product_name: "",
            sku_name: "",
            qualifiers: &[],
            charge_type: "new",
            unit_price: Decimal::ZERO,
            effective_unit_price: Decimal::ZERO,
            unit_type: "",
            quantity: 1,
            billable_quantity: Decimal::ONE,
            subtotal: Decimal::ZERO,
            tax: Decimal::ZERO,
            total: Decimal::ZERO,
            currency: c.currency,
            publisher_name: "Microsoft Corporation",
            subscription_description: "",
            subscription_id: String::new(),
            subscription_start: None,
            subscription_end: None,
            charge_start: self.slot.month.first_day(),
            charge_end: self.slot.month.last_day(),
            term_and_billing: "",
            reference_id: super::dice::hex(&self.dice.bytes16()),
            price_adjustment: "",
            // USD lines carry no rate date: the API sends 0001-01-01 for them.
            rate,
            rate_date: (c.currency != Currency::Usd).then_some(rate_date),
            meter_description: "",
            billing_frequency: "",
            reservation_order_id: String::new(),
            credit_reason: "",
            promotion_id: None,
        }
    }

    /// Prices a licence or one-time line: truncate(eff × rate) × billable quantity.
    fn price_licence(&self, line: &mut ReconLine) {
        line.subtotal = line.currency.truncate_minor(line.effective_unit_price * line.rate) * line.billable_quantity;
        self.add_tax(line);
    }

    /// Prices an Azure consumption line: truncate(truncate2(eff × quantity) × rate).
    fn price_usage(&self, line: &mut ReconLine) {
        let pricing = truncate_dp(line.effective_unit_price * line.billable_quantity, 2);
        line.subtotal = line.currency.truncate_minor(pricing * line.rate);
        self.add_tax(line);
    }

    fn add_tax(&self, line: &mut ReconLine) {
        line.tax = if self.slot.unbilled.is_some() {
            Decimal::ZERO
        } else {
            line.currency.truncate_minor(line.subtotal * tax_rate(line.currency))
        };
        line.subtotal = line.currency.fixed(line.subtotal);
        line.tax = line.currency.fixed(line.tax);
        line.total = line.subtotal + line.tax;
    }

    fn seat_lines(&mut self, seat: &SeatPlan, lines: &mut Vec<ReconLine>) {
        let month = self.slot.month;
        let cutoff = self.slot.cutoff;
        let sub = &self.plan.subscriptions[seat.subscription];
        let product = &catalog::SEATS[seat.product];
        if seat.start > cutoff || seat.cancelled.is_some_and(|d| d < month.first_day()) {
            return;
        }
        let frequency = if self.slot.unbilled.is_some() {
            ""
        } else if seat.annual_billing {
            "Annual"
        } else {
            "Monthly"
        };
        let term_and_billing = match (seat.annual_term, seat.annual_billing) {
            (false, _) => "One-Month commitment for monthly billing",
            (true, false) => "One-Year commitment for monthly billing",
            (true, true) => "One-Year commitment for yearly billing",
        };
        let unit = seat.monthly_price();
        let days = Decimal::from(month.days());
        let mut make = |this: &mut Self,
                        order: usize,
                        charge_type: &'static str,
                        eff: Decimal,
                        qty: i64,
                        from: NaiveDate,
                        to: NaiveDate| {
            let mut l = this.base_line(sub.customer, order);
            l.set_product(product.ids);
            l.qualifiers = product.qualifiers;
            l.charge_type = charge_type;
            l.unit_price = if seat.annual_billing { unit * Decimal::from(12) } else { unit };
            l.effective_unit_price = eff;
            l.unit_type = "Licenses";
            l.quantity = qty;
            l.billable_quantity = Decimal::from(qty);
            l.subscription_description = product.ids.product_name;
            l.subscription_id = sub.id.clone();
            l.subscription_start = Some(sub.start);
            l.subscription_end = Some(sub.end);
            l.charge_start = from;
            l.charge_end = to;
            l.term_and_billing = term_and_billing;
            l.billing_frequency = frequency;
            l.promotion_id = seat.promotion.clone();
            this.price_licence(&mut l);
            lines.push(l);
        };
        let order = sub.order;
        if seat.annual_billing {
            let mut k = 0;
            loop {
                let anniversary = Month::of(seat.start).plus(12 * k).day(seat.start.day());
                if anniversary > cutoff {
                    break;
                }
                if Month::of(anniversary) == month {
                    let charge = if k == 0 { "new" } else { "renew" };
                    let end = super::timeline::term_end(anniversary, 1);
                    make(self, order, charge, unit * Decimal::from(12), seat.seats_on(anniversary), anniversary, end);
                }
                k += 1;
            }
            return;
        }
        if Month::of(seat.start) == month {
            let used = Decimal::from(month.days() - seat.start.day() + 1);
            make(self, order, "new", unit * used / days, seat.quantity, seat.start, month.last_day());
        } else if Month::of(seat.start) < month {
            make(
                self,
                order,
                "cycleCharge",
                unit,
                seat.seats_on(month.first_day()),
                month.first_day(),
                month.last_day(),
            );
        }
        if let Some((when, extra, add_order)) = seat.added
            && Month::of(when) == month
            && when <= cutoff
        {
            {
                let used = Decimal::from(month.days() - when.day() + 1);
                make(self, add_order, "addQuantity", unit * used / days, extra, when, month.last_day());
            }
        }
        if let Some(when) = seat.cancelled {
            let unused = month.days() - when.day();
            if Month::of(when) == month && when <= cutoff && unused > 0 {
                let eff = -(unit * Decimal::from(unused) / days);
                make(self, order, "cancelImmediate", eff, seat.seats_on(when), add_days(when, 1), month.last_day());
            }
        }
    }

    fn one_time_lines(&mut self, lines: &mut Vec<ReconLine>) {
        let month = self.slot.month;
        let cutoff = self.slot.cutoff;
        for r in &self.plan.reservations {
            let e = &self.plan.entitlements[r.entitlement];
            let p = &catalog::RESERVATIONS[r.product];
            let expiry = e.expiry.unwrap_or(e.start);
            let price = Decimal::new(p.price_cents, 2);
            let charge = if r.upfront {
                (Month::of(e.start) == month && e.start <= cutoff).then_some(("new", price, e.start, expiry))
            } else {
                let day = month.day(e.start.day());
                let instalment = price / Decimal::from(12 * p.term_years);
                let first = Month::of(e.start) == month;
                (day >= e.start && day <= cutoff && day <= expiry).then(|| {
                    let next = add_days(month.next().day(e.start.day()), 0).pred_opt().unwrap_or(day);
                    (if first { "new" } else { "cycleCharge" }, instalment, day, next.min(expiry))
                })
            };
            let Some((charge_type, eff, from, to)) = charge else { continue };
            let mut l = self.base_line(e.customer, e.order);
            l.set_product(p.ids);
            l.charge_type = charge_type;
            l.unit_price = eff;
            l.effective_unit_price = eff;
            l.subscription_description = p.ids.sku_name;
            l.charge_start = from;
            l.charge_end = to;
            l.subscription_start = Some(e.start);
            l.subscription_end = Some(expiry);
            l.term_and_billing = if p.term_years == 1 { "1 Year Reservation" } else { "3 Years Reservation" };
            l.billing_frequency = if self.slot.unbilled.is_some() || r.upfront { "" } else { "Monthly" };
            l.reservation_order_id = e.reservation_order_id.clone().unwrap_or_default();
            self.price_licence(&mut l);
            lines.push(l);
        }
        for s in &self.plan.software {
            let e = &self.plan.entitlements[s.entitlement];
            if Month::of(e.start) != month || e.start > cutoff {
                continue;
            }
            let p = &catalog::SOFTWARE[s.product];
            let mut l = self.base_line(e.customer, e.order);
            l.set_product(p.ids);
            l.unit_price = Decimal::new(p.price_cents, 2);
            l.effective_unit_price = l.unit_price;
            l.quantity = e.quantity;
            l.billable_quantity = Decimal::from(e.quantity);
            l.subscription_description = p.ids.product_name;
            l.charge_start = e.start;
            l.charge_end = e.start;
            l.term_and_billing = "Perpetual";
            self.price_licence(&mut l);
            lines.push(l);
        }
    }

    fn invoice_dir(&self, id: &str) -> PathBuf {
        self.dir.join("invoices").join(id)
    }

    fn usage_path(&self, currency: Currency) -> PathBuf {
        match self.slot.unbilled {
            None => self.dir.join("invoices").join(self.invoice_number(currency)).join("onetime-usagelineitems.jsonl"),
            Some(p) => self.dir.join("unbilled").join(currency.code()).join(p.name()).join("usagelineitems.jsonl"),
        }
    }

    fn recon_path(&self, currency: Currency) -> PathBuf {
        match self.slot.unbilled {
            None => {
                self.dir.join("invoices").join(self.invoice_number(currency)).join("onetime-billinglineitems.jsonl")
            }
            Some(p) => self.dir.join("unbilled").join(currency.code()).join(p.name()).join("billinglineitems.jsonl"),
        }
    }

    fn usage_dataset(&self) -> &'static str {
        if self.slot.unbilled.is_some() { dataset::UNBILLED_USAGE } else { dataset::BILLED_USAGE }
    }

    fn recon_dataset(&self) -> &'static str {
        if self.slot.unbilled.is_some() { dataset::UNBILLED_RECON } else { dataset::BILLED_RECON }
    }

    /// Streams the slot's daily rated usage to one file per currency and returns the Azure plan
    /// recon lines that bill it.
    fn usage(&mut self, lines: &mut Vec<ReconLine>) -> Result<BTreeMap<Currency, u64>, WorldError> {
        let month = self.slot.month;
        let days_used = self.slot.cutoff.signed_duration_since(month.first_day()).num_days() + 1;
        let days_used = u64::try_from(days_used.max(0)).unwrap_or(0);
        let rows_in_slot = self.spec.usage_rows_per_month * days_used / u64::from(month.days());
        let plans = &self.plan.azure;
        let weights: u64 = plans.iter().map(|p| p.weight).sum();
        let mut files: BTreeMap<Currency, Lines> = BTreeMap::new();
        let mut counts = BTreeMap::new();
        if weights == 0 || days_used == 0 {
            return Ok(counts);
        }
        // Largest-remainder split of the slot's rows by plan weight, so the total is exact.
        let mut shares: Vec<u64> = plans.iter().map(|p| rows_in_slot * p.weight / weights).collect();
        let mut left = rows_in_slot - shares.iter().sum::<u64>();
        for share in shares.iter_mut() {
            if left == 0 {
                break;
            }
            *share += 1;
            left -= 1;
        }
        let usage_dataset = self.usage_dataset();
        let partner = &self.plan.partner;
        let partner_fields = PartnerFields { id: &partner.tenant_id, name: &partner.name, mpn_id: &partner.mpn_id };
        let charge_end = month.next().first_day();
        // A rebilled invoice's usage is billed again, line for line, on its rebill.
        let mut rebills: BTreeMap<Currency, (String, PathBuf, Lines)> = BTreeMap::new();
        for (currency, amendment) in &self.slot.amendments {
            if let Some(rebill) = &amendment.rebill_id {
                let path = self.invoice_dir(rebill).join("onetime-usagelineitems.jsonl");
                rebills.insert(*currency, (rebill.clone(), path.clone(), Lines::create(path)?));
            }
        }
        for (plan_index, (azure, rows)) in plans.iter().zip(shares).enumerate() {
            if rows == 0 {
                continue;
            }
            let sub = &self.plan.subscriptions[azure.subscription];
            let customer = &self.plan.customers[sub.customer];
            let currency = customer.currency;
            let (rate, rate_date) = exchange_rate(self.spec.seed, currency, month);
            let invoice_number = self.invoice_number(currency);
            let customer_line_id = customer.line_id();
            let azure_sub = sub.entitlement_id.as_deref().unwrap_or_default();
            let entitlement_description = format!("{} Production", customer.name);
            let active = azure.reservation.map(|r| &self.plan.entitlements[self.plan.reservations[r].entitlement]);
            let expired =
                azure.expired_reservation.map(|r| &self.plan.entitlements[self.plan.reservations[r].entitlement]);
            let mut billed_quantity: BTreeMap<usize, Decimal> = BTreeMap::new();
            if let std::collections::btree_map::Entry::Vacant(slot) = files.entry(currency) {
                slot.insert(Lines::create(self.usage_path(currency))?);
            }
            for k in 0..rows {
                let day = month.day(1 + u32::try_from(k * days_used / rows).unwrap_or(0));
                // Daily rated usage has one row per resource, meter and day: a plan with more rows
                // than resources on a day has more resources (`…-01-2`, `…-01-3`, …).
                let resource = &azure.resources[(k as usize) % azure.resources.len()];
                let copy = (k as usize) / azure.resources.len();
                let resource_uri =
                    if copy == 0 { resource.uri.clone() } else { format!("{}-{}", resource.uri, copy + 1) };
                let meter = &METERS[resource.meter];
                let quantity = self.dice.decimal(Decimal::new(1, 4), Decimal::from(24), 6);
                let unit_price: Decimal = meter.unit_price.parse().unwrap_or_default();
                let pec = customer.pec && meter.pec;
                let covered = resource.meter == catalog::RESERVED_METER
                    && active.is_some_and(|e| day >= e.start && Some(day) <= e.expiry)
                    && self.dice.percent(40);
                let mut benefit_order = active.and_then(|e| e.reservation_order_id.clone()).filter(|_| covered);
                let effective = if covered {
                    Decimal::ZERO
                } else if pec {
                    unit_price * Decimal::new(85, 2)
                } else {
                    unit_price
                };
                if !covered {
                    *billed_quantity.entry(resource.meter).or_default() += quantity;
                }
                let pricing_total = (quantity * effective).normalize();
                let billing_total = (pricing_total * rate).normalize();

                let mut kind = None;
                let mut customer_id = customer_line_id.as_str();
                let other;
                let mut subscription_id = sub.id.as_str();
                let fake_sub;
                if self.planter.decide(usage_dataset, "subscription_not_found") {
                    fake_sub = self.dice.guid();
                    subscription_id = &fake_sub;
                    kind = Some("subscription_not_found");
                } else if self.plan.customers.len() > 1 && self.planter.decide(usage_dataset, "customer_mismatch") {
                    other = &self.plan.customers[(sub.customer + 1) % self.plan.customers.len()];
                    customer_id = &other.id;
                    kind = Some("customer_mismatch");
                } else if covered && self.planter.decide(usage_dataset, "entitlement_not_found") {
                    benefit_order = Some(self.dice.guid());
                    kind = Some("entitlement_not_found");
                } else if covered && expired.is_some() && self.planter.decide(usage_dataset, "entitlement_expired") {
                    benefit_order = expired.and_then(|e| e.reservation_order_id.clone());
                    kind = Some("entitlement_expired");
                } else if self.planter.decide(usage_dataset, "duplicate_line") {
                    kind = Some("duplicate_line");
                }
                let reservation_id = benefit_order.as_deref().map(|o| format!("{}{}", &o[..24], &azure_sub[24..]));
                let row = UsageRow {
                    customer_id,
                    customer_name: &customer.name,
                    customer_domain: &customer.domain,
                    customer_country: customer.country,
                    invoice_number: &invoice_number,
                    meter,
                    region: REGIONS[resource.region],
                    resource_group: &resource.group,
                    resource_uri: &resource_uri,
                    tags: &resource.tags,
                    subscription_id,
                    entitlement_id: azure_sub,
                    entitlement_description: &entitlement_description,
                    usage_date: day,
                    charge_start: month.first_day(),
                    charge_end,
                    quantity,
                    unit_price,
                    effective_unit_price: effective,
                    pricing_total,
                    billing_total,
                    currency,
                    rate,
                    rate_date,
                    pec: pec && !covered,
                    benefit: benefit_order.as_deref().zip(reservation_id.as_deref()),
                };
                let file = files.get_mut(&currency).ok_or(WorldError::Internal("usage file"))?;
                write_usage_row(&mut file.buf, &row, &partner_fields, &mut self.quirks);
                let copies = if kind == Some("duplicate_line") { 2 } else { 1 };
                let position = file.rows + u64::from(copies) - 1;
                let rebill = match rebills.get_mut(&currency) {
                    Some((id, path, lines)) => {
                        lines.buf = file.buf.replace(&quoted(&invoice_number), &quoted(id));
                        lines.flush_record(copies).map_err(|e| WorldError::io(path, e))?;
                        let amounts = [quantity, pricing_total, billing_total];
                        tally_usage(&mut self.out.tally, usage_dataset, currency, copies, amounts);
                        Some(id.clone())
                    }
                    None => None,
                };
                if let Some(kind) = kind {
                    let mut line = BTreeMap::new();
                    line.insert("usageDate", day.to_string());
                    line.insert("meterId", meter.meter_id.to_owned());
                    line.insert("resourceUri", resource_uri.clone());
                    line.insert("entitlementId", azure_sub.to_owned());
                    line.insert("quantity", quantity.to_string());
                    line.insert("billingPreTaxTotal", billing_total.to_string());
                    self.out.anomalies.push(Anomaly {
                        kind,
                        dataset: usage_dataset,
                        invoice_id: invoice_number.clone(),
                        currency,
                        customer_id: customer_id.to_owned(),
                        order_id: None,
                        subscription_id: Some(subscription_id.to_owned()),
                        entitlement_id: benefit_order.clone(),
                        position: Some(position),
                        line,
                    });
                    if let Some(rebill) = rebill {
                        let mut copy = self.out.anomalies[self.out.anomalies.len() - 1].clone();
                        copy.invoice_id = rebill;
                        self.out.anomalies.push(copy);
                    }
                }
                file.flush_record(copies).map_err(|e| WorldError::io(&self.usage_path(currency), e))?;
                let amounts = [quantity, pricing_total, billing_total];
                tally_usage(&mut self.out.tally, usage_dataset, currency, copies, amounts);
            }
            self.azure_recon_lines(azure, billed_quantity, plan_index, lines);
        }
        for (currency, file) in files {
            let path = self.usage_path(currency);
            counts.insert(currency, file.finish(&path)?);
        }
        for (currency, (_, path, lines)) in rebills {
            self.rebill_usage.insert(currency, lines.finish(&path)?);
        }
        Ok(counts)
    }

    fn azure_recon_lines(
        &mut self,
        azure: &AzurePlan,
        quantities: BTreeMap<usize, Decimal>,
        _plan: usize,
        lines: &mut Vec<ReconLine>,
    ) {
        let sub = &self.plan.subscriptions[azure.subscription];
        let customer = &self.plan.customers[sub.customer];
        for (meter_index, quantity) in quantities {
            let meter = &METERS[meter_index];
            let unit_price: Decimal = meter.unit_price.parse().unwrap_or_default();
            let pec = customer.pec && meter.pec;
            let mut l = self.base_line(sub.customer, sub.order);
            l.product_id = meter.product_id;
            l.sku_id = meter.sku_id;
            l.product_name = meter.product_name;
            l.sku_name = meter.name;
            l.unit_price = unit_price;
            l.effective_unit_price = if pec { unit_price * Decimal::new(85, 2) } else { unit_price };
            l.unit_type = meter.unit;
            l.billable_quantity = quantity;
            l.subscription_description = "Azure plan";
            l.subscription_id = sub.id.clone();
            l.charge_end = self.slot.cutoff;
            l.price_adjustment = if pec { PEC_NOTE } else { "[]" };
            l.meter_description = meter.category;
            l.publisher_name = meter.publisher;
            self.price_usage(&mut l);
            // Azure credit offers: a few per month, and always one in the showcase month.
            let give_credit =
                self.slot.unbilled.is_none() && ((self.slot.showcase && !self.credited) || self.dice.percent(3));
            self.credited |= give_credit;
            let credit = give_credit.then(|| {
                let mut c = l.clone();
                c.charge_type = "customerCredit";
                c.effective_unit_price = -l.effective_unit_price;
                c.credit_reason = "Azure Credit Offer";
                c.reference_id = super::dice::hex(&self.dice.bytes16());
                self.price_usage(&mut c);
                c
            });
            lines.push(l);
            lines.extend(credit);
        }
    }

    /// Plants anomalies on recon lines, writes them, and returns Σ totals per currency:
    /// (distinct lines, served lines).
    fn write_recon(
        &mut self,
        mut lines: Vec<ReconLine>,
    ) -> Result<BTreeMap<Currency, (Decimal, Decimal, u64)>, WorldError> {
        self.restate(&mut lines);
        let recon_dataset = self.recon_dataset();
        let mut by_currency: BTreeMap<Currency, Vec<ReconLine>> = BTreeMap::new();
        for l in lines.drain(..) {
            by_currency.entry(l.currency).or_default().push(l);
        }
        let partner = &self.plan.partner;
        let partner_fields = PartnerFields { id: &partner.tenant_id, name: &partner.name, mpn_id: &partner.mpn_id };
        let mut totals = BTreeMap::new();
        for (currency, lines) in by_currency {
            let path = self.recon_path(currency);
            let mut file = Lines::create(path.clone())?;
            let mut distinct = Decimal::ZERO;
            let mut served = Decimal::ZERO;
            let amendment = self.slot.amendments.get(&currency).cloned();
            let mut rebill = match amendment.as_ref().and_then(|a| a.rebill_id.clone()) {
                Some(id) => {
                    let rebill_path = self.invoice_dir(&id).join("onetime-billinglineitems.jsonl");
                    Some((id, rebill_path.clone(), Lines::create(rebill_path)?))
                }
                None => None,
            };
            // The invoice's distinct lines as written, with the anomaly each carries.
            let mut kept: Vec<(ReconLine, Option<&'static str>)> = Vec::new();
            for mut l in lines {
                let kind = self.plant_on_recon(&mut l, recon_dataset);
                write_recon_line(&mut file.buf, &l, &partner_fields, &mut self.quirks);
                let copies = if kind == Some("duplicate_line") { 2 } else { 1 };
                let position = file.rows + u64::from(copies) - 1;
                if let Some((id, rebill_path, lines)) = rebill.as_mut() {
                    lines.buf = file.buf.replace(&quoted(&l.invoice_number), &quoted(id));
                    lines.flush_record(copies).map_err(|e| WorldError::io(rebill_path, e))?;
                    tally_recon(&mut self.out.tally, recon_dataset, copies, &l);
                }
                if amendment.is_some() {
                    kept.push((l.clone(), kind));
                }
                if let Some(kind) = kind {
                    let mut line = BTreeMap::new();
                    line.insert("productId", l.product_id.to_owned());
                    line.insert("skuId", l.sku_id.to_owned());
                    line.insert("chargeType", l.charge_type.to_owned());
                    line.insert("chargeStartDate", l.charge_start.to_string());
                    line.insert("chargeEndDate", l.charge_end.to_string());
                    line.insert("referenceId", l.reference_id.clone());
                    line.insert("totalForCustomer", l.total.to_string());
                    self.out.anomalies.push(Anomaly {
                        kind,
                        dataset: recon_dataset,
                        invoice_id: l.invoice_number.clone(),
                        currency,
                        customer_id: l.customer_id.clone(),
                        order_id: Some(l.order_id.clone()),
                        subscription_id: Some(l.subscription_id.clone()).filter(|s| !s.is_empty()),
                        entitlement_id: Some(l.reservation_order_id.clone()).filter(|s| !s.is_empty()),
                        position: Some(position),
                        line,
                    });
                    if let Some((id, _, _)) = &rebill {
                        let mut copy = self.out.anomalies[self.out.anomalies.len() - 1].clone();
                        copy.invoice_id = id.clone();
                        self.out.anomalies.push(copy);
                    }
                }
                file.flush_record(copies).map_err(|e| WorldError::io(&path, e))?;
                distinct += l.total;
                served += l.total * Decimal::from(copies);
                tally_recon(&mut self.out.tally, recon_dataset, copies, &l);
            }
            let rows = file.finish(&path)?;
            totals.insert(currency, (distinct, served, rows));
            if let Some((id, rebill_path, lines)) = rebill {
                let recon_rows = lines.finish(&rebill_path)?;
                let invoice = self.invoice_number(currency);
                self.written.entry(currency).or_default().push(Written {
                    id,
                    document_type: "invoice",
                    amends_of: None,
                    rebill_of: Some(invoice),
                    distinct,
                    served,
                    recon_rows,
                    usage_rows: self.rebill_usage.get(&currency).copied().unwrap_or(0),
                });
            }
            if let Some(amendment) = amendment {
                let note = self.write_note(currency, &amendment, &kept, &partner_fields)?;
                self.written.entry(currency).or_default().push(note);
            }
        }
        Ok(totals)
    }

    /// Writes the note amending a currency's invoice from the invoice's distinct lines: a void
    /// note reverses every one of them (anomalies and all), a credit note credits back up to two
    /// licence lines, an adjustment note a tenth of the price of one.
    fn write_note(
        &mut self,
        currency: Currency,
        amendment: &Amendment,
        kept: &[(ReconLine, Option<&'static str>)],
        partner: &PartnerFields<'_>,
    ) -> Result<Written, WorldError> {
        let invoice = self.invoice_number(currency);
        let note_id = &amendment.note_id;
        let clean: Vec<&ReconLine> = kept
            .iter()
            .filter(|(l, kind)| kind.is_none() && l.meter_description.is_empty() && l.total > Decimal::ZERO)
            .map(|(l, _)| l)
            .collect();
        // Each note line, the anomaly it repeats, and the reference of the line it amends.
        let mut lines: Vec<(ReconLine, Option<&'static str>, String)> = Vec::new();
        match amendment.kind {
            NoteKind::VoidNote => {
                for (l, kind) in kept {
                    let reversed = self.reversed(l, note_id);
                    lines.push((reversed, kind.filter(|k| *k != "duplicate_line"), l.reference_id.clone()));
                }
            }
            NoteKind::CreditNote => {
                let wanted = 1 + self.dice.index(2);
                for l in clean.iter().take(wanted) {
                    let mut credit = self.reversed(l, note_id);
                    credit.charge_type = "cancel";
                    lines.push((credit, None, l.reference_id.clone()));
                }
            }
            NoteKind::AdjustmentNote => {
                if let Some(l) = clean.first() {
                    let mut adjusted = self.reversed(l, note_id);
                    adjusted.charge_type = "priceAdjustment";
                    adjusted.price_adjustment = "[\"Price correction after invoicing\"]";
                    adjusted.effective_unit_price = (l.effective_unit_price * Decimal::new(1, 1)).round_dp(4);
                    adjusted.billable_quantity = -l.billable_quantity;
                    self.price_licence(&mut adjusted);
                    lines.push((adjusted, None, l.reference_id.clone()));
                }
            }
        }
        let dataset = self.recon_dataset();
        let path = self.invoice_dir(note_id).join("onetime-billinglineitems.jsonl");
        let mut file = Lines::create(path.clone())?;
        let mut total = Decimal::ZERO;
        for (l, kind, source) in &lines {
            write_recon_line(&mut file.buf, l, partner, &mut self.quirks);
            let position = file.rows;
            file.flush_record(1).map_err(|e| WorldError::io(&path, e))?;
            total += l.total;
            tally_recon(&mut self.out.tally, dataset, 1, l);
            // The void note repeats what was wrong with the lines it reverses.
            if let Some(kind) = kind
                && let Some(original) = self.out.anomalies.iter().find(|a| {
                    a.invoice_id == invoice
                        && a.dataset == dataset
                        && a.kind == *kind
                        && a.line.get("referenceId") == Some(source)
                })
            {
                let mut copy = original.clone();
                copy.invoice_id = note_id.clone();
                copy.position = Some(position);
                copy.line.insert("referenceId", l.reference_id.clone());
                copy.line.insert("totalForCustomer", l.total.to_string());
                copy.customer_id = l.customer_id.clone();
                self.out.anomalies.push(copy);
            }
        }
        let recon_rows = file.finish(&path)?;
        // A note carries no daily rated usage of its own: its usage endpoint is empty.
        Lines::create(self.invoice_dir(note_id).join("onetime-usagelineitems.jsonl"))?
            .finish(&self.invoice_dir(note_id))?;
        Ok(Written {
            id: note_id.clone(),
            document_type: amendment.kind.document_type(),
            amends_of: Some(invoice),
            rebill_of: None,
            distinct: total,
            served: total,
            recon_rows,
            usage_rows: 0,
        })
    }

    /// A line of an invoice reversed on a note: quantities and amounts negated, a reference of
    /// its own.
    fn reversed(&mut self, l: &ReconLine, note: &str) -> ReconLine {
        let mut n = l.clone();
        n.invoice_number = note.to_owned();
        n.quantity = -l.quantity;
        n.billable_quantity = -l.billable_quantity;
        n.subtotal = -l.subtotal;
        n.tax = -l.tax;
        n.total = -l.total;
        n.reference_id = super::dice::hex(&self.dice.bytes16());
        n
    }

    /// Applies the world's revisions that fall on this billed slot: revision `k` re-prices one
    /// licence line (its effective unit price −10 %) of a month drawn for `k`.
    fn restate(&mut self, lines: &mut [ReconLine]) {
        let months = &self.plan.timeline.billed;
        let Some(index) = months.iter().position(|m| *m == self.slot.month).filter(|_| self.slot.unbilled.is_none())
        else {
            return;
        };
        for k in 1..=self.spec.revision {
            let mut dice = Dice::new(self.spec.seed, &format!("restatement-{k}"));
            let month = usize::try_from(dice.int(0, months.len() as i64 - 1)).unwrap_or(0);
            let pick = usize::try_from(dice.int(0, 1_000_000)).unwrap_or(0);
            if month != index {
                continue;
            }
            let candidates: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].meter_description.is_empty() && lines[i].total > Decimal::ZERO)
                .collect();
            let Some(&at) = candidates.get(pick % candidates.len().max(1)) else { continue };
            let line = &mut lines[at];
            let before = line.total;
            line.effective_unit_price = (line.effective_unit_price * Decimal::new(9, 1)).round_dp(4);
            let mut repriced = line.clone();
            self.price_licence(&mut repriced);
            let after = repriced.total;
            lines[at] = repriced;
            self.out.restated.push(Restatement {
                revision: k,
                invoice_id: lines[at].invoice_number.clone(),
                reference_id: lines[at].reference_id.clone(),
                total_before: before,
                total_after: after,
            });
        }
    }

    fn plant_on_recon(&mut self, l: &mut ReconLine, ds: &'static str) -> Option<&'static str> {
        let is_reservation = !l.reservation_order_id.is_empty();
        let expired = self
            .plan
            .azure
            .iter()
            .find(|a| self.plan.subscriptions[a.subscription].customer == l.customer)
            .and_then(|a| a.expired_reservation)
            .map(|r| &self.plan.entitlements[self.plan.reservations[r].entitlement]);
        if is_reservation && self.planter.decide(ds, "entitlement_not_found") {
            l.reservation_order_id = self.dice.guid();
            return Some("entitlement_not_found");
        }
        if is_reservation && expired.is_some() && self.planter.decide(ds, "entitlement_expired") {
            if let Some(e) = expired {
                let o = &self.plan.orders[e.order];
                l.order_id = o.id.clone();
                l.alternate_id = o.alternate_id.clone();
                l.reservation_order_id = e.reservation_order_id.clone().unwrap_or_default();
            }
            return Some("entitlement_expired");
        }
        if self.planter.decide(ds, "order_not_found") {
            l.order_id = self.dice.token(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 32);
            l.alternate_id = self.dice.token(b"0123456789abcdef", 12);
            return Some("order_not_found");
        }
        if !l.subscription_id.is_empty() && self.planter.decide(ds, "subscription_not_found") {
            l.subscription_id = self.dice.guid();
            return Some("subscription_not_found");
        }
        if self.plan.customers.len() > 1 && self.planter.decide(ds, "customer_mismatch") {
            let other = &self.plan.customers[(l.customer + 1) % self.plan.customers.len()];
            l.customer_id = other.line_id();
            l.customer_name = other.name.clone();
            l.customer_domain = other.domain.clone();
            l.customer_country = other.country;
            return Some("customer_mismatch");
        }
        if self.planter.decide(ds, "duplicate_line") {
            return Some("duplicate_line");
        }
        None
    }

    fn legacy(&mut self) -> Result<Option<InvoiceTruth>, WorldError> {
        let Some(invoice_id) = self.slot.legacy_invoice_id.clone() else { return Ok(None) };
        if self.plan.legacy_office.is_empty() && self.plan.legacy_azure.is_empty() {
            return Ok(None);
        }
        let month = self.slot.month;
        let dir = self.dir.join("invoices").join(&invoice_id);
        let partner = &self.plan.partner;
        let partner_fields = PartnerFields { id: &partner.tenant_id, name: &partner.name, mpn_id: &partner.mpn_id };
        let mpn: i64 = self.partner_mpn.parse().unwrap_or(0);
        let usd = Currency::Usd;
        let mut total = Decimal::ZERO;
        let mut lines_by_dataset = BTreeMap::new();

        let path = dir.join("office-billinglineitems.jsonl");
        let mut office = Lines::create(path.clone())?;
        for &(sub_index, offer) in &self.plan.legacy_office {
            let sub = &self.plan.subscriptions[sub_index];
            let c = &self.plan.customers[sub.customer];
            let (_, durable, _, cents) = LEGACY_OFFERS[offer];
            let unit_price = Decimal::new(cents, 2);
            let amount = unit_price * Decimal::from(sub.quantity);
            let tax = usd.fixed(usd.truncate_minor(amount * tax_rate(usd)));
            let line = LegacyOfficeLine {
                customer_id: c.id.to_uppercase(),
                customer_name: &c.name,
                domain: &c.domain,
                order_id: &self.plan.orders[sub.order].id,
                subscription_id: sub.entitlement_id.as_deref().unwrap_or_default(),
                syndication_id: &sub.id,
                offer_id: &sub.offer_id,
                durable_offer_id: durable,
                offer_name: &sub.offer_name,
                subscription_start: sub.start,
                subscription_end: sub.end,
                charge_start: month.first_day(),
                charge_end: month.last_day(),
                unit_price,
                quantity: sub.quantity,
                amount: usd.fixed(amount),
                tax,
                total: usd.fixed(amount) + tax,
                currency: usd,
            };
            write_legacy_office_line(&mut office.buf, &line, &partner_fields, mpn);
            office.flush_record(1).map_err(|e| WorldError::io(&path, e))?;
            total += line.total;
            let t = &mut self.out.tally;
            t.row(dataset::LEGACY_OFFICE);
            t.add(dataset::LEGACY_OFFICE, usd, "amount", line.amount);
            t.add(dataset::LEGACY_OFFICE, usd, "tax", line.tax);
            t.add(dataset::LEGACY_OFFICE, usd, "totalForCustomer", line.total);
        }
        lines_by_dataset.insert(dataset::LEGACY_OFFICE, office.finish(&path)?);

        let billing_path = dir.join("azure-billinglineitems.jsonl");
        let usage_path = dir.join("azure-usagelineitems.jsonl");
        let mut billing = Lines::create(billing_path.clone())?;
        let mut usage = Lines::create(usage_path.clone())?;
        for &sub_index in &self.plan.legacy_azure {
            let sub = &self.plan.subscriptions[sub_index];
            let c = &self.plan.customers[sub.customer];
            let customer_id = c.id.to_uppercase();
            for (service, service_type, resource, price) in LEGACY_AZURE_METERS {
                let resource_guid = self.dice.guid();
                let price: Decimal = price.parse().unwrap_or_default();
                let mut consumed = Decimal::ZERO;
                let mut base = LegacyAzureBase {
                    customer_id: &customer_id,
                    customer_name: &c.name,
                    domain: &c.domain,
                    invoice_number: &invoice_id,
                    subscription_id: &sub.id,
                    order_id: &self.plan.orders[sub.order].id,
                    service_name: service,
                    service_type,
                    resource_guid: &resource_guid,
                    resource_name: resource,
                    region: "US East",
                    consumed_quantity: Decimal::ZERO,
                    charge_start: month.first_day(),
                    charge_end: month.last_day(),
                };
                for day in 1..=month.days() {
                    let quantity = self.dice.decimal(Decimal::ZERO, Decimal::from(48), 4);
                    consumed += quantity;
                    base.consumed_quantity = quantity;
                    write_legacy_usage_line(&mut usage.buf, &base, month.day(day), &partner_fields, mpn);
                    usage.flush_record(1).map_err(|e| WorldError::io(&usage_path, e))?;
                    self.out.tally.row(dataset::LEGACY_AZURE_USAGE);
                    self.out.tally.add(dataset::LEGACY_AZURE_USAGE, usd, "consumedQuantity", quantity);
                }
                base.consumed_quantity = consumed;
                let pretax = usd.fixed(usd.truncate_minor(consumed * price));
                write_legacy_azure_line(&mut billing.buf, &base, price, pretax, &partner_fields, mpn);
                billing.flush_record(1).map_err(|e| WorldError::io(&billing_path, e))?;
                total += pretax;
                let t = &mut self.out.tally;
                t.row(dataset::LEGACY_AZURE);
                t.add(dataset::LEGACY_AZURE, usd, "pretaxCharges", pretax);
                t.add(dataset::LEGACY_AZURE, usd, "postTaxTotal", pretax);
            }
        }
        lines_by_dataset.insert(dataset::LEGACY_AZURE, billing.finish(&billing_path)?);
        lines_by_dataset.insert(dataset::LEGACY_AZURE_USAGE, usage.finish(&usage_path)?);
        Ok(Some(InvoiceTruth {
            invoice_id,
            document_type: "invoice",
            commerce: "legacy",
            currency: usd,
            billing_period: month.label(),
            status: "active",
            amends_of: None,
            amendments: Vec::new(),
            rebill_of: None,
            rebilled_by: None,
            stated_total: total,
            paid_amount: Decimal::ZERO,
            owed: total,
            lines_total: total,
            served_lines_total: total,
            lines: lines_by_dataset,
            tie_out: "ok",
            net: None,
        }))
    }
}

/// Generates and writes one slot's line items.
pub fn generate_slot(plan: &Plan, spec: &WorldSpec, slot: &Slot, dir: &Path) -> Result<SlotOutput, WorldError> {
    let stream = format!("{}-{}", slot.month.label(), slot.unbilled.map_or("billed", Period::name));
    let mut g = SlotGen {
        plan,
        spec,
        slot,
        dir,
        dice: Dice::new(spec.seed, &format!("slot-{stream}")),
        quirks: Quirks::new(spec.seed, &format!("quirks-{stream}"), spec.quirk_rate),
        planter: Planter {
            rates: &spec.anomalies,
            dice: Dice::new(spec.seed, &format!("anomalies-{stream}")),
            showcase: slot.showcase,
            planted: BTreeSet::new(),
        },
        out: SlotOutput::default(),
        partner_mpn: plan.partner.mpn_id.clone(),
        credited: false,
        written: BTreeMap::new(),
        rebill_usage: BTreeMap::new(),
    };
    if slot.unbilled.is_some() {
        // Unbilled data is an estimate that nothing is reconciled against yet: no anomalies.
        g.planter.showcase = false;
        g.planter.rates = &NO_ANOMALIES;
    }
    let mut lines = Vec::new();
    for seat in &plan.seats {
        g.seat_lines(seat, &mut lines);
    }
    g.one_time_lines(&mut lines);
    let usage_rows = g.usage(&mut lines)?;
    let recon = g.write_recon(lines)?;

    let currencies: BTreeSet<Currency> = recon.keys().chain(usage_rows.keys()).copied().collect();
    match slot.unbilled {
        Some(period) => {
            for currency in plan.customers.iter().map(|c| c.currency).collect::<BTreeSet<_>>() {
                let mut lines = BTreeMap::new();
                lines.insert(dataset::UNBILLED_RECON, recon.get(&currency).map_or(0, |r| r.2));
                lines.insert(dataset::UNBILLED_USAGE, usage_rows.get(&currency).copied().unwrap_or(0));
                g.out.unbilled.push(UnbilledTruth {
                    currency,
                    period: period.name(),
                    billing_period: slot.month.label(),
                    lines,
                });
            }
        }
        None => {
            let mut mismatch_dice = Dice::new(spec.seed, &format!("invoice-mismatch-{stream}"));
            for currency in currencies {
                let (distinct, served, recon_rows) = recon.get(&currency).copied().unwrap_or_default();
                let mut stated = distinct;
                let invoice_id = g.invoice_number(currency);
                let showcase_first = slot.showcase && g.out.invoices.is_empty();
                let rate = spec.anomalies.rate("invoice_total_mismatch");
                if rate != Ppm(0) && (showcase_first || mismatch_dice.chance(rate)) {
                    let cents = mismatch_dice.int(1, 5) * if mismatch_dice.percent(50) { 1 } else { -1 };
                    stated += Decimal::new(cents, currency.minor_units());
                    let mut line = BTreeMap::new();
                    line.insert("stated_total", stated.to_string());
                    line.insert("lines_total", distinct.to_string());
                    g.out.anomalies.push(Anomaly {
                        kind: "invoice_total_mismatch",
                        dataset: dataset::INVOICES,
                        invoice_id: invoice_id.clone(),
                        currency,
                        customer_id: String::new(),
                        order_id: None,
                        subscription_id: None,
                        entitlement_id: None,
                        position: None,
                        line,
                    });
                }
                let mut lines = BTreeMap::new();
                lines.insert(dataset::BILLED_RECON, recon_rows);
                lines.insert(dataset::BILLED_USAGE, usage_rows.get(&currency).copied().unwrap_or(0));
                let mut invoice = InvoiceTruth {
                    invoice_id,
                    document_type: "invoice",
                    commerce: "new",
                    currency,
                    billing_period: slot.month.label(),
                    status: "active",
                    amends_of: None,
                    amendments: Vec::new(),
                    rebill_of: None,
                    rebilled_by: None,
                    stated_total: stated,
                    paid_amount: Decimal::ZERO,
                    owed: stated,
                    lines_total: distinct,
                    served_lines_total: served,
                    lines,
                    tie_out: if stated == distinct { "ok" } else { "mismatch" },
                    net: None,
                };
                let mut documents = Vec::new();
                for w in g.written.remove(&currency).unwrap_or_default() {
                    let mut lines = BTreeMap::new();
                    lines.insert(dataset::BILLED_RECON, w.recon_rows);
                    lines.insert(dataset::BILLED_USAGE, w.usage_rows);
                    if w.amends_of.is_some() {
                        invoice.amendments.push(w.id.clone());
                    }
                    if w.document_type == NoteKind::VoidNote.document_type() {
                        invoice.status = "void";
                        invoice.tie_out = "void";
                    }
                    if w.rebill_of.is_some() {
                        invoice.rebilled_by = Some(w.id.clone());
                    }
                    documents.push(InvoiceTruth {
                        invoice_id: w.id,
                        document_type: w.document_type,
                        commerce: "new",
                        currency,
                        billing_period: slot.month.label(),
                        status: "active",
                        amends_of: w.amends_of,
                        amendments: Vec::new(),
                        rebill_of: w.rebill_of,
                        rebilled_by: None,
                        stated_total: w.distinct,
                        paid_amount: Decimal::ZERO,
                        owed: w.distinct,
                        lines_total: w.distinct,
                        served_lines_total: w.served,
                        lines,
                        tie_out: "ok",
                        net: None,
                    });
                }
                let notes: Vec<&InvoiceTruth> = documents.iter().filter(|d| d.amends_of.is_some()).collect();
                if !notes.is_empty() {
                    let stated_total = invoice.stated_total + notes.iter().map(|n| n.stated_total).sum::<Decimal>();
                    let lines_total = invoice.lines_total + notes.iter().map(|n| n.lines_total).sum::<Decimal>();
                    // A voided invoice and its void note net to nothing when the note reverses it
                    // exactly; a stated total the lines do not carry stays a mismatch.
                    let tie_out = match (invoice.status, stated_total == lines_total) {
                        ("void", true) => "void",
                        (_, true) => "ok",
                        (_, false) => "mismatch",
                    };
                    invoice.net = Some(super::truth::NetTruth { stated_total, lines_total, tie_out });
                }
                g.out.invoices.push(invoice);
                g.out.invoices.extend(documents);
            }
            if let Some(legacy) = g.legacy()? {
                g.out.invoices.push(legacy);
            }
        }
    }
    Ok(g.out)
}

static NO_ANOMALIES: std::sync::LazyLock<AnomalyRates> = std::sync::LazyLock::new(AnomalyRates::none);
