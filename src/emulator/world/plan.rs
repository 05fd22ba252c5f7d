//! The world's master data, decided before any line item: the partner, its customers, and what
//! each customer bought (catalog product → SKU → availability → order), with the subscriptions
//! and entitlements those orders created.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use rust_decimal::Decimal;

use super::catalog::{self, COMPANY_NAMES, COUNTRIES, LEGACY_OFFERS, METERS, REGIONS};
use super::dice::Dice;
use super::timeline::{Month, Timeline, add_days, term_end};
use crate::model::money::Currency;

/// The partner whose Partner Center the world is.
#[derive(Debug, Clone)]
pub struct Partner {
    /// Partner tenant id.
    pub tenant_id: String,
    /// Partner name.
    pub name: String,
    /// MPN / PartnerID.
    pub mpn_id: String,
}

/// How a customer's id is spelled on its new-commerce line items (spec §4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineIdStyle {
    /// As the customers endpoint spells it (lower case).
    Plain,
    /// Upper-case GUID.
    Upper,
    /// Prefixed with `org:`.
    OrgPrefix,
}

/// A customer tenant.
#[derive(Debug, Clone)]
pub struct Customer {
    /// Tenant id, lower case.
    pub id: String,
    /// Company name (may be non-ASCII).
    pub name: String,
    /// Primary domain.
    pub domain: String,
    /// ISO country code.
    pub country: &'static str,
    /// The currency the partner is billed in for this customer's new-commerce purchases.
    pub currency: Currency,
    /// Spelling of the id on line items.
    pub line_id_style: LineIdStyle,
    /// Commerce id (by-id only).
    pub commerce_id: String,
    /// Whether partner earned credit applies to its Azure usage.
    pub pec: bool,
}

impl Customer {
    /// The id as this customer's line items spell it.
    pub fn line_id(&self) -> String {
        match self.line_id_style {
            LineIdStyle::Plain => self.id.clone(),
            LineIdStyle::Upper => self.id.to_uppercase(),
            LineIdStyle::OrgPrefix => format!("org:{}", self.id),
        }
    }
}

/// One line of an order.
#[derive(Debug, Clone)]
pub struct OrderLine {
    /// `product:sku:availability`, or a legacy offer GUID.
    pub offer_id: String,
    /// Subscription the line created or changed (absent for one-time purchases).
    pub subscription_id: Option<String>,
    /// `P1M`, `P1Y`, `P3Y` where the offer has a term.
    pub term: Option<&'static str>,
    /// Seats or units.
    pub quantity: i64,
    /// `new`, `addQuantity`, …
    pub transaction_type: &'static str,
    /// Nickname.
    pub friendly_name: String,
    /// Reservation order id for Azure reservations (`provisioningContext`).
    pub reservation_order_id: Option<String>,
}

/// An order, the result of a checked-out cart.
#[derive(Debug, Clone)]
pub struct Order {
    /// Long opaque id.
    pub id: String,
    /// Short 12-hex id.
    pub alternate_id: String,
    /// Index of the customer.
    pub customer: usize,
    /// Creation time (UTC).
    pub created: NaiveDateTime,
    /// `monthly`, `annual`, `one_time`, `none`.
    pub billing_cycle: &'static str,
    /// Order currency.
    pub currency: Currency,
    /// Lines of the order.
    pub lines: Vec<OrderLine>,
}

/// What kind of thing a subscription is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionKind {
    /// New-commerce seats.
    Seats,
    /// Azure plan (usage-based).
    AzurePlan,
    /// Legacy licence-based (Office).
    LegacyOffice,
    /// Legacy Azure (MS-AZR-0145P).
    LegacyAzure,
}

/// A subscription.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Partner Center subscription id (GUID).
    pub id: String,
    /// Index of the customer.
    pub customer: usize,
    /// Index of the order that created it.
    pub order: usize,
    /// What it is.
    pub kind: SubscriptionKind,
    /// Offer id.
    pub offer_id: String,
    /// Offer name.
    pub offer_name: String,
    /// Current quantity.
    pub quantity: i64,
    /// Term (`P1M`, `P1Y`) for new commerce.
    pub term: Option<&'static str>,
    /// `monthly`, `annual`, `none`.
    pub billing_cycle: &'static str,
    /// First day of service.
    pub start: NaiveDate,
    /// Last day of the current term (or of service, once cancelled).
    pub end: NaiveDate,
    /// `active`, `deleted`.
    pub status: &'static str,
    /// Azure subscription id (Azure plan), or legacy short subscription id.
    pub entitlement_id: Option<String>,
}

/// Kind of an entitlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntitlementKind {
    /// Perpetual software.
    Software,
    /// An Azure reservation.
    ReservedInstance,
}

/// An entitlement granted by a one-time purchase.
#[derive(Debug, Clone)]
pub struct Entitlement {
    /// Index of the customer.
    pub customer: usize,
    /// Index of the order.
    pub order: usize,
    /// Product.
    pub product_id: &'static str,
    /// SKU.
    pub sku_id: &'static str,
    /// Quantity.
    pub quantity: i64,
    /// Kind.
    pub kind: EntitlementKind,
    /// Reservation order id (reservations).
    pub reservation_order_id: Option<String>,
    /// First day of the reservation term.
    pub start: NaiveDate,
    /// Last day of the reservation term.
    pub expiry: Option<NaiveDate>,
}

/// A licence subscription's billing plan.
#[derive(Debug, Clone)]
pub struct SeatPlan {
    /// Index of the subscription.
    pub subscription: usize,
    /// Index into [`catalog::SEATS`].
    pub product: usize,
    /// Annual term (else monthly).
    pub annual_term: bool,
    /// Billed once a year up front (else monthly).
    pub annual_billing: bool,
    /// Purchase date.
    pub start: NaiveDate,
    /// Seats bought.
    pub quantity: i64,
    /// A later seat increase: (date, seats added, index of its order).
    pub added: Option<(NaiveDate, i64, usize)>,
    /// Cancellation date.
    pub cancelled: Option<NaiveDate>,
    /// Promotion applied (`promotionId`).
    pub promotion: Option<String>,
}

impl SeatPlan {
    /// Seats held on a date.
    pub fn seats_on(&self, date: NaiveDate) -> i64 {
        match self.added {
            Some((when, extra, _)) if date >= when => self.quantity + extra,
            _ => self.quantity,
        }
    }

    /// USD list price per seat for one month of service.
    pub fn monthly_price(&self) -> Decimal {
        let cents = catalog::SEATS[self.product].annual_term_cents;
        // Monthly terms cost 20 % more than annual ones, as in the new-commerce price list.
        let cents = if self.annual_term { cents } else { cents * 6 / 5 };
        Decimal::new(cents, 2)
    }
}

/// A reservation's billing plan.
#[derive(Debug, Clone)]
pub struct ReservationPlan {
    /// Index of the entitlement.
    pub entitlement: usize,
    /// Index into [`catalog::RESERVATIONS`].
    pub product: usize,
    /// Paid up front (else in equal monthly instalments).
    pub upfront: bool,
}

/// A perpetual software purchase.
#[derive(Debug, Clone)]
pub struct SoftwarePlan {
    /// Index of the entitlement.
    pub entitlement: usize,
    /// Index into [`catalog::SOFTWARE`].
    pub product: usize,
}

/// An Azure resource that produces usage.
#[derive(Debug, Clone)]
pub struct Resource {
    /// Index into [`catalog::METERS`].
    pub meter: usize,
    /// Index into [`catalog::REGIONS`].
    pub region: usize,
    /// Resource group.
    pub group: String,
    /// Full ARM resource id.
    pub uri: String,
    /// Resource tags as the API sends them (a JSON object in a string).
    pub tags: String,
}

/// An Azure plan and the resources under its Azure subscription.
#[derive(Debug, Clone)]
pub struct AzurePlan {
    /// Index of the subscription.
    pub subscription: usize,
    /// Relative share of the world's usage rows.
    pub weight: u64,
    /// Resources that produce usage.
    pub resources: Vec<Resource>,
    /// Index of the customer's active reservation, if any (it covers part of the VM usage).
    pub reservation: Option<usize>,
    /// Index of the customer's expired reservation, if any.
    pub expired_reservation: Option<usize>,
}

/// The world's master data and purchase plans.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The partner.
    pub partner: Partner,
    /// The calendar.
    pub timeline: Timeline,
    /// Customers.
    pub customers: Vec<Customer>,
    /// Orders.
    pub orders: Vec<Order>,
    /// Subscriptions.
    pub subscriptions: Vec<Subscription>,
    /// Entitlements.
    pub entitlements: Vec<Entitlement>,
    /// Licence subscriptions.
    pub seats: Vec<SeatPlan>,
    /// Reservations.
    pub reservations: Vec<ReservationPlan>,
    /// Software.
    pub software: Vec<SoftwarePlan>,
    /// Azure plans.
    pub azure: Vec<AzurePlan>,
    /// Legacy Office subscriptions: (subscription, index into [`catalog::LEGACY_OFFERS`]).
    pub legacy_office: Vec<(usize, usize)>,
    /// Legacy Azure subscriptions.
    pub legacy_azure: Vec<usize>,
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const ID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const HEX: &[u8] = b"0123456789abcdef";

fn slug(name: &str, index: usize) -> String {
    let ascii: String =
        name.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).take(16).collect();
    let base = if ascii.is_empty() { "customer".to_owned() } else { ascii };
    format!("{base}{index}")
}

fn at(date: NaiveDate, dice: &mut Dice) -> NaiveDateTime {
    let time = NaiveTime::from_hms_opt(dice.int(6, 20) as u32, dice.int(0, 59) as u32, dice.int(0, 59) as u32)
        .unwrap_or(NaiveTime::MIN);
    let micros = dice.int(0, 999_999);
    date.and_time(time) + chrono::Duration::microseconds(micros)
}

/// A random day in `[from, to]`.
fn day_between(dice: &mut Dice, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    let span = (to - from).num_days().max(0);
    add_days(from, dice.int(0, span) as u64)
}

struct Builder<'a> {
    plan: Plan,
    dice: Dice,
    timeline: &'a Timeline,
}

impl Builder<'_> {
    fn order(
        &mut self,
        customer: usize,
        created: NaiveDateTime,
        billing_cycle: &'static str,
        lines: Vec<OrderLine>,
    ) -> usize {
        let id = self.dice.token(ID_CHARS, 32);
        let alternate_id = self.dice.token(HEX, 12);
        let currency = self.plan.customers[customer].currency;
        self.plan.orders.push(Order { id, alternate_id, customer, created, billing_cycle, currency, lines });
        self.plan.orders.len() - 1
    }

    /// A licence subscription. `showcase` picks one of three fixed shapes that together show
    /// every charge type in the first billed month: 0 = monthly term cancelled that month,
    /// 1 = annual term with seats added that month, 2 = annual term billed yearly, bought that month.
    fn seats(&mut self, customer: usize, showcase: Option<usize>) {
        let product = self.dice.index(catalog::SEATS.len());
        let p = &catalog::SEATS[product];
        let first_billed = self.timeline.billed.first().map_or(self.timeline.current, |m| *m);
        let (annual_term, annual_billing, start) = match showcase {
            Some(0) => (false, false, first_billed.plus(-3).day(9)),
            Some(1) => (true, false, first_billed.plus(-2).day(20)),
            Some(_) => (true, true, first_billed.day(12)),
            None => {
                let annual_term = self.dice.percent(50);
                let annual_billing = annual_term && self.dice.percent(30);
                (
                    annual_term,
                    annual_billing,
                    day_between(&mut self.dice, self.timeline.history_start, self.timeline.last_usage_day()),
                )
            }
        };
        let quantity = *self.dice.pick(&[1, 2, 5, 10, 12, 25, 40, 50, 120, 300]);
        let term = if annual_term { "P1Y" } else { "P1M" };
        let sub_id = self.dice.guid();
        let offer_id = format!("{}:{}:{}", p.ids.product_id, p.ids.sku_id, p.ids.availability_id);
        let created = at(start, &mut self.dice);
        let billing_cycle = if annual_billing { "annual" } else { "monthly" };
        let line = OrderLine {
            offer_id: offer_id.clone(),
            subscription_id: Some(sub_id.clone()),
            term: Some(term),
            quantity,
            transaction_type: "new",
            friendly_name: p.ids.sku_name.to_owned(),
            reservation_order_id: None,
        };
        let order = self.order(customer, created, billing_cycle, vec![line]);

        let mut added = None;
        let mut cancelled = None;
        let first_change = add_days(start, 20);
        if !annual_billing && first_change < self.timeline.last_usage_day() {
            if showcase == Some(1) || (showcase.is_none() && self.dice.percent(15)) {
                let when = match showcase {
                    Some(_) => first_billed.day(10),
                    None => day_between(&mut self.dice, first_change, self.timeline.last_usage_day()),
                };
                let extra = self.dice.int(1, 20);
                let line = OrderLine {
                    offer_id: offer_id.clone(),
                    subscription_id: Some(sub_id.clone()),
                    term: Some(term),
                    quantity: extra,
                    transaction_type: "addQuantity",
                    friendly_name: p.ids.sku_name.to_owned(),
                    reservation_order_id: None,
                };
                let created = at(when, &mut self.dice);
                let add_order = self.order(customer, created, billing_cycle, vec![line]);
                added = Some((when, extra, add_order));
            }
            if showcase == Some(0) {
                cancelled = Some(first_billed.day(15));
            } else if showcase.is_none() && !annual_term && self.dice.percent(8) {
                let from = added.map_or(first_change, |(when, _, _)| add_days(when, 1));
                if from < self.timeline.last_usage_day() {
                    cancelled = Some(day_between(&mut self.dice, from, self.timeline.last_usage_day()));
                }
            }
        }
        let promotion = (self.dice.percent(10))
            .then(|| format!("{}:{}:{}", self.dice.token(ALNUM, 12), p.ids.sku_id, self.dice.token(ALNUM, 12)));
        let end = match (cancelled, annual_term) {
            (Some(day), _) => Month::of(day).last_day(),
            (None, true) => {
                let mut end = term_end(start, 1);
                while end < self.timeline.as_of {
                    end = term_end(add_days(end, 1), 1);
                }
                end
            }
            (None, false) => self.timeline.current.last_day(),
        };
        let quantity_now = quantity + added.map_or(0, |(_, extra, _)| extra);
        self.plan.subscriptions.push(Subscription {
            id: sub_id,
            customer,
            order,
            kind: SubscriptionKind::Seats,
            offer_id,
            offer_name: p.ids.product_name.to_owned(),
            quantity: quantity_now,
            term: Some(term),
            billing_cycle,
            start,
            end,
            status: if cancelled.is_some() { "deleted" } else { "active" },
            entitlement_id: None,
        });
        let subscription = self.plan.subscriptions.len() - 1;
        self.plan.seats.push(SeatPlan {
            subscription,
            product,
            annual_term,
            annual_billing,
            start,
            quantity,
            added,
            cancelled,
            promotion,
        });
    }

    fn reservation(&mut self, customer: usize, start: NaiveDate, upfront: bool) -> usize {
        let product = self.dice.index(catalog::RESERVATIONS.len());
        let p = &catalog::RESERVATIONS[product];
        let reservation_order_id = self.dice.guid();
        let line = OrderLine {
            offer_id: format!("{}:{}:{}", p.ids.product_id, p.ids.sku_id, p.ids.availability_id),
            subscription_id: None,
            term: Some(if p.term_years == 1 { "P1Y" } else { "P3Y" }),
            quantity: 1,
            transaction_type: "new",
            friendly_name: p.ids.sku_name.to_owned(),
            reservation_order_id: Some(reservation_order_id.clone()),
        };
        let created = at(start, &mut self.dice);
        let order = self.order(customer, created, "one_time", vec![line]);
        self.plan.entitlements.push(Entitlement {
            customer,
            order,
            product_id: p.ids.product_id,
            sku_id: p.ids.sku_id,
            quantity: 1,
            kind: EntitlementKind::ReservedInstance,
            reservation_order_id: Some(reservation_order_id),
            start,
            expiry: Some(term_end(start, p.term_years)),
        });
        let entitlement = self.plan.entitlements.len() - 1;
        self.plan.reservations.push(ReservationPlan { entitlement, product, upfront });
        self.plan.reservations.len() - 1
    }

    fn software(&mut self, customer: usize) {
        let product = self.dice.index(catalog::SOFTWARE.len());
        let p = &catalog::SOFTWARE[product];
        let first_billed = self.timeline.billed.first().map_or(self.timeline.current, |m| *m);
        let day = day_between(&mut self.dice, first_billed.first_day(), self.timeline.last_usage_day());
        let quantity = self.dice.int(1, 4);
        let line = OrderLine {
            offer_id: format!("{}:{}:{}", p.ids.product_id, p.ids.sku_id, p.ids.availability_id),
            subscription_id: None,
            term: None,
            quantity,
            transaction_type: "new",
            friendly_name: p.ids.sku_name.to_owned(),
            reservation_order_id: None,
        };
        let created = at(day, &mut self.dice);
        let order = self.order(customer, created, "one_time", vec![line]);
        self.plan.entitlements.push(Entitlement {
            customer,
            order,
            product_id: p.ids.product_id,
            sku_id: p.ids.sku_id,
            quantity,
            kind: EntitlementKind::Software,
            reservation_order_id: None,
            start: day,
            expiry: None,
        });
        let entitlement = self.plan.entitlements.len() - 1;
        self.plan.software.push(SoftwarePlan { entitlement, product });
    }

    fn azure_plan(&mut self, customer: usize, showcase: bool) {
        let (product_id, sku_id, availability_id) = catalog::AZURE_PLAN;
        let sub_id = self.dice.guid();
        let azure_sub = self.dice.guid();
        let start =
            day_between(&mut self.dice, self.timeline.history_start, add_days(self.timeline.history_start, 200));
        let offer_id = format!("{product_id}:{sku_id}:{availability_id}");
        let line = OrderLine {
            offer_id: offer_id.clone(),
            subscription_id: Some(sub_id.clone()),
            term: None,
            quantity: 1,
            transaction_type: "new",
            friendly_name: "Azure plan".to_owned(),
            reservation_order_id: None,
        };
        let created = at(start, &mut self.dice);
        let order = self.order(customer, created, "none", vec![line]);
        self.plan.subscriptions.push(Subscription {
            id: sub_id,
            customer,
            order,
            kind: SubscriptionKind::AzurePlan,
            offer_id,
            offer_name: "Azure plan".to_owned(),
            quantity: 1,
            term: None,
            billing_cycle: "monthly",
            start,
            end: NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX),
            status: "active",
            entitlement_id: Some(azure_sub.clone()),
        });
        let subscription = self.plan.subscriptions.len() - 1;

        let count = self.dice.int(3, 8) as usize;
        let slug = slug(&self.plan.customers[customer].name, customer);
        let mut resources = Vec::with_capacity(count + 1);
        for r in 0..count {
            // The first resource of a plan is always the reserved VM size, so reservations cover something.
            let meter = if r == 0 { catalog::RESERVED_METER } else { self.dice.index(METERS.len()) };
            resources.push(self.resource(&azure_sub, &slug, meter, r));
        }
        let weight = self.dice.int(1, 10) as u64;

        let mut reservation = None;
        let mut expired_reservation = None;
        if showcase || self.dice.percent(25) {
            let first_billed = self.timeline.billed.first().map_or(self.timeline.current, |m| *m);
            let old_start =
                day_between(&mut self.dice, first_billed.plus(-20).first_day(), first_billed.plus(-14).first_day());
            expired_reservation = Some(self.reservation_with(customer, old_start, true, 0));
            let new_start = day_between(&mut self.dice, first_billed.plus(-6).first_day(), first_billed.first_day());
            let upfront = !showcase && self.dice.percent(50);
            reservation = Some(self.reservation(customer, new_start, upfront));
            if showcase {
                // A second reservation billed monthly, so the first month has more than one
                // reservation line to plant entitlement anomalies on.
                self.reservation(customer, new_start, false);
            }
        }
        self.plan.azure.push(AzurePlan { subscription, weight, resources, reservation, expired_reservation });
    }

    fn reservation_with(&mut self, customer: usize, start: NaiveDate, upfront: bool, product: usize) -> usize {
        let index = self.reservation(customer, start, upfront);
        // A one-year reservation, so that it has expired before the billed months begin.
        let p = &catalog::RESERVATIONS[product];
        let entitlement = self.plan.reservations[index].entitlement;
        self.plan.reservations[index].product = product;
        self.plan.entitlements[entitlement].product_id = p.ids.product_id;
        self.plan.entitlements[entitlement].sku_id = p.ids.sku_id;
        self.plan.entitlements[entitlement].expiry = Some(term_end(start, p.term_years));
        index
    }

    fn resource(&mut self, azure_sub: &str, slug: &str, meter: usize, n: usize) -> Resource {
        let m = &METERS[meter];
        let region = self.dice.index(REGIONS.len());
        let env = *self.dice.pick(&["prod", "test", "dev"]);
        let group = format!("rg-{slug}-{env}");
        let provider = m.consumed_service;
        let uri = format!(
            "/subscriptions/{azure_sub}/resourceGroups/{group}/providers/{provider}/{}/{slug}-{}-{n:02}",
            m.resource_type,
            m.resource_type.to_lowercase()
        );
        let cost_center = self.dice.int(1000, 9999);
        let tags =
            format!("{{\"env\":\"{env}\",\"costCenter\":\"CC-{cost_center}\",\"owner\":\"ops@{slug}.example\"}}");
        Resource { meter, region, group, uri, tags }
    }

    fn legacy(&mut self, customer: usize) {
        let first_billed = self.timeline.billed.first().map_or(self.timeline.current, |m| *m);
        let start = day_between(&mut self.dice, first_billed.plus(-30).first_day(), first_billed.plus(-13).first_day());
        let offer = self.dice.index(LEGACY_OFFERS.len());
        let (offer_id, _, offer_name, _) = LEGACY_OFFERS[offer];
        let quantity = self.dice.int(5, 80);
        let sub_id = self.dice.guid().to_uppercase();
        let line = OrderLine {
            offer_id: offer_id.to_uppercase(),
            subscription_id: Some(sub_id.clone()),
            term: None,
            quantity,
            transaction_type: "new",
            friendly_name: offer_name.to_owned(),
            reservation_order_id: None,
        };
        let created = at(start, &mut self.dice);
        let order = self.order(customer, created, "monthly", vec![line]);
        let short_id = self.dice.token(ID_CHARS, 16);
        self.plan.subscriptions.push(Subscription {
            id: sub_id,
            customer,
            order,
            kind: SubscriptionKind::LegacyOffice,
            offer_id: offer_id.to_uppercase(),
            offer_name: offer_name.to_owned(),
            quantity,
            term: None,
            billing_cycle: "monthly",
            start,
            end: term_end(start, 3),
            status: "active",
            entitlement_id: Some(short_id),
        });
        self.plan.legacy_office.push((self.plan.subscriptions.len() - 1, offer));

        let sub_id = self.dice.guid();
        let line = OrderLine {
            offer_id: "MS-AZR-0145P".to_owned(),
            subscription_id: Some(sub_id.clone()),
            term: None,
            quantity: 1,
            transaction_type: "new",
            friendly_name: "Microsoft Azure".to_owned(),
            reservation_order_id: None,
        };
        let created = at(start, &mut self.dice);
        let order = self.order(customer, created, "monthly", vec![line]);
        self.plan.subscriptions.push(Subscription {
            id: sub_id,
            customer,
            order,
            kind: SubscriptionKind::LegacyAzure,
            offer_id: "MS-AZR-0145P".to_owned(),
            offer_name: "Microsoft Azure".to_owned(),
            quantity: 1,
            term: None,
            billing_cycle: "monthly",
            start,
            end: NaiveDate::from_ymd_opt(9999, 12, 14).unwrap_or(NaiveDate::MAX),
            status: "active",
            entitlement_id: None,
        });
        self.plan.legacy_azure.push(self.plan.subscriptions.len() - 1);
    }
}

/// Decides the world's master data for a seed.
pub fn plan(seed: u64, customers: usize, timeline: &Timeline) -> Plan {
    let mut dice = Dice::new(seed, "plan");
    let partner = Partner {
        tenant_id: dice.guid(),
        name: "Contoso Cloud Solutions (Emulated)".to_owned(),
        mpn_id: dice.int(4_000_000, 6_999_999).to_string(),
    };
    let mut list = Vec::with_capacity(customers);
    for i in 0..customers {
        let base = COMPANY_NAMES[i % COMPANY_NAMES.len()];
        let name =
            if i < COMPANY_NAMES.len() { base.to_owned() } else { format!("{base} {}", i / COMPANY_NAMES.len() + 1) };
        // The first customers cover every billing currency; later ones are drawn.
        let (country, currency) = if i < 5 { COUNTRIES[i] } else { *dice.pick(COUNTRIES) };
        let line_id_style = match (i, dice.int(0, 9)) {
            (0, _) => LineIdStyle::Plain,
            (1, _) => LineIdStyle::OrgPrefix,
            (2, _) => LineIdStyle::Upper,
            (_, 0) => LineIdStyle::OrgPrefix,
            (_, 1 | 2) => LineIdStyle::Upper,
            _ => LineIdStyle::Plain,
        };
        list.push(Customer {
            id: dice.guid(),
            domain: format!("{}.onmicrosoft.com", slug(&name, i)),
            name,
            country,
            currency,
            line_id_style,
            commerce_id: dice.guid(),
            pec: dice.percent(70),
        });
    }
    let mut b = Builder {
        plan: Plan {
            partner,
            timeline: timeline.clone(),
            customers: list,
            orders: Vec::new(),
            subscriptions: Vec::new(),
            entitlements: Vec::new(),
            seats: Vec::new(),
            reservations: Vec::new(),
            software: Vec::new(),
            azure: Vec::new(),
            legacy_office: Vec::new(),
            legacy_azure: Vec::new(),
        },
        dice,
        timeline,
    };
    for c in 0..customers {
        // Customer 0 buys one of everything, so every kind of line exists in any world.
        let showcase = c == 0;
        let seat_count = if showcase { 3 } else { b.dice.int(1, 4) };
        for k in 0..seat_count {
            b.seats(c, showcase.then_some(k as usize));
        }
        if showcase || b.dice.percent(60) {
            b.azure_plan(c, showcase);
        }
        if showcase || b.dice.percent(10) {
            b.software(c);
        }
        if c < 2 {
            b.legacy(c);
        }
    }
    b.plan
}
