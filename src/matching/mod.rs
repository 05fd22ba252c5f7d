//! Joins line items to what was sold: an index of orders, subscriptions and entitlements built
//! once from the master data, and named rules applied in a fixed order to every line.
//!
//! In: master-data rows (typed), then line-item rows. Out: a [`Match`] per line: its status, the
//! rule that decided it, and the matched ids. Keys are normalised once (`org:` stripped, trimmed,
//! lower case). It does not fetch (the extraction brings master data first) and writes nothing.
//!
//! Rules, in order (the first that fails decides the status):
//! 1. `order_id`: the line's order id (or alternate id) names an order → else `order_not_found`.
//! 2. `subscription_id`: the line's subscription (legacy licence lines: the syndication number)
//!    exists → else `subscription_not_found`.
//! 3. `entitlement`: a reservation the line names (`reservation_order_id`, usage `benefit_order_id`)
//!    exists → else `entitlement_not_found`; and was not expired before the charge → else
//!    `entitlement_expired`.
//! 4. `customer`: the line's customer is the customer of the matched order or subscription →
//!    else `customer_mismatch`.
//!
//! A line naming none of these keys is `not_applicable`; otherwise it is `matched`.

use std::collections::HashMap;

use chrono::NaiveDate;

use crate::normalize::decode::normalize_key;
use crate::normalize::fx::day_of;
use crate::tabular::{Cell, ColType, Dataset, DatasetSchema, Row, Value};

/// The outcome for one line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Match {
    /// `matched`, `order_not_found`, `subscription_not_found`, `entitlement_not_found`,
    /// `entitlement_expired`, `customer_mismatch`, `not_applicable`.
    pub status: &'static str,
    /// The rule that decided the status.
    pub rule: &'static str,
    /// The matched order id.
    pub order: Option<String>,
    /// The matched subscription id.
    pub subscription: Option<String>,
    /// The matched (or named) entitlement key: reservation order id or Azure subscription id.
    pub entitlement: Option<String>,
    /// The key value that failed, for exceptions.
    pub failed_key: Option<String>,
}

impl Match {
    /// Whether the line is an exception.
    pub fn is_exception(&self) -> bool {
        !matches!(self.status, "matched" | "not_applicable")
    }
}

#[derive(Debug, Clone)]
struct Owned {
    id: String,
    customer: String,
}

#[derive(Debug, Clone)]
struct Subscription {
    id: String,
    customer: String,
    order: Option<String>,
}

#[derive(Debug, Clone)]
struct Entitlement {
    customer: String,
    order: Option<String>,
    expiry: Option<NaiveDate>,
}

/// Orders, subscriptions and entitlements by normalised key.
#[derive(Debug, Default)]
pub struct MatchIndex {
    orders: HashMap<String, Owned>,
    subscriptions: HashMap<String, Subscription>,
    reservations: HashMap<String, Entitlement>,
}

/// A column's text, normalised as a key (`None` when empty).
fn key(schema: &DatasetSchema, row: &(impl Row + ?Sized), column: &str) -> Option<String> {
    key_at(row, schema.column(column))
}

/// The normalised join key in a column of a row, when it has one.
fn key_at(row: &(impl Row + ?Sized), at: Option<usize>) -> Option<String> {
    match at.map(|i| row.value(i)) {
        Some(Value::Str(s)) => Some(normalize_key(&s)).filter(|k| !k.is_empty()),
        _ => None,
    }
}

fn day(schema: &DatasetSchema, row: &(impl Row + ?Sized), column: &str) -> Option<NaiveDate> {
    schema.column(column).and_then(|i| day_of(&row.value(i), schema.columns[i].ty))
}

/// The columns of a line-item dataset the rules read, found once per dataset.
#[derive(Debug, Clone, Copy, Default)]
pub struct LineKeys {
    order: Option<usize>,
    subscription: Option<usize>,
    entitlement: Option<usize>,
    charge_day: Option<(usize, ColType)>,
    customer: Option<usize>,
}

impl LineKeys {
    /// The key columns of `schema`'s lines (none for a dataset that is not a line item).
    pub fn of(schema: &DatasetSchema) -> LineKeys {
        let at = |c: &str| schema.column(c);
        let (order, subscription, entitlement, day) = match schema.name {
            Dataset::BilledRecon | Dataset::UnbilledRecon => {
                (at("order_id"), at("subscription_id"), at("reservation_order_id"), at("charge_start_date"))
            }
            Dataset::BilledUsage | Dataset::UnbilledUsage => {
                (None, at("subscription_id"), at("benefit_order_id"), at("usage_date"))
            }
            Dataset::LegacyOffice => {
                (at("order_id"), at("syndication_partner_subscription_number"), None, at("charge_start_date"))
            }
            Dataset::LegacyAzure | Dataset::LegacyAzureUsage => {
                (at("order_id"), at("subscription_id"), None, at("charge_start_date"))
            }
            _ => return LineKeys::default(),
        };
        LineKeys {
            order,
            subscription,
            entitlement,
            charge_day: day.map(|i| (i, schema.columns[i].ty)),
            customer: at("customer_id"),
        }
    }
}

impl MatchIndex {
    /// Adds master-data rows of one dataset (`orders`, `subscriptions`, `entitlements`).
    pub fn add(&mut self, schema: &DatasetSchema, rows: &[Vec<Cell>]) {
        for row in rows {
            let customer = key(schema, row, "customer_id").unwrap_or_default();
            match schema.name {
                Dataset::Orders => {
                    let Some(id) = key(schema, row, "id") else { continue };
                    let owned = Owned { id: id.clone(), customer };
                    if let Some(alternate) = key(schema, row, "alternate_id") {
                        self.orders.insert(alternate, owned.clone());
                    }
                    self.orders.insert(id, owned);
                }
                Dataset::Subscriptions => {
                    let Some(id) = key(schema, row, "id") else { continue };
                    let order = key(schema, row, "order_id");
                    self.subscriptions.insert(id.clone(), Subscription { id, customer, order });
                }
                Dataset::Entitlements => {
                    if let Some(reservation) = key(schema, row, "reservation_order_id") {
                        let order = key(schema, row, "reference_order_id");
                        let expiry = day(schema, row, "expiry_date");
                        self.reservations.insert(reservation, Entitlement { customer, order, expiry });
                    }
                }
                _ => {}
            }
        }
    }

    /// Matches one line-item row, its columns found by `keys`.
    pub fn match_row(&self, keys: &LineKeys, row: &(impl Row + ?Sized)) -> Match {
        let get = |at: Option<usize>| key_at(row, at);
        let order_key = get(keys.order);
        let subscription_key = get(keys.subscription);
        let entitlement_key = get(keys.entitlement);
        let charge_day = keys.charge_day.and_then(|(i, ty)| day_of(&row.value(i), ty));
        if order_key.is_none() && subscription_key.is_none() && entitlement_key.is_none() {
            return Match { status: "not_applicable", rule: "none", ..Match::default() };
        }
        let mut m = Match { status: "matched", rule: "order_id", ..Match::default() };
        let fail = |mut m: Match, status, rule, failed: &Option<String>| {
            m.status = status;
            m.rule = rule;
            m.failed_key = failed.clone();
            m
        };
        let order = match &order_key {
            Some(k) => match self.orders.get(k) {
                Some(o) => Some(o),
                None => return fail(m, "order_not_found", "order_id", &order_key),
            },
            None => None,
        };
        let subscription = match &subscription_key {
            Some(k) => match self.subscriptions.get(k) {
                Some(s) => Some(s),
                None => return fail(m, "subscription_not_found", "subscription_id", &subscription_key),
            },
            None => None,
        };
        if order.is_none() {
            m.rule = "subscription_id";
        }
        let order = order
            .cloned()
            .or_else(|| subscription.and_then(|s| s.order.as_ref()).and_then(|o| self.orders.get(o)).cloned());
        m.order = order.as_ref().map(|o| o.id.clone());
        m.subscription = subscription.map(|s| s.id.clone());
        m.entitlement = entitlement_key.clone();
        let mut owner = order.as_ref().map(|o| o.customer.clone()).or_else(|| subscription.map(|s| s.customer.clone()));
        if let Some(k) = &entitlement_key {
            let Some(e) = self.reservations.get(k) else {
                return fail(m, "entitlement_not_found", "entitlement", &entitlement_key);
            };
            if let (Some(expiry), Some(charged)) = (e.expiry, charge_day)
                && charged > expiry
            {
                return fail(m, "entitlement_expired", "entitlement", &entitlement_key);
            }
            if m.order.is_none() {
                m.order = e.order.clone();
            }
            owner = owner.or_else(|| Some(e.customer.clone()));
        }
        let line_customer = get(keys.customer);
        if let (Some(line), Some(owner)) = (&line_customer, &owner)
            && line != owner
        {
            return fail(m, "customer_mismatch", "customer", &line_customer);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(schema: &DatasetSchema, values: &[(&str, &str)]) -> Vec<Cell> {
        let mut row = vec![Cell::Null; schema.columns.len()];
        for (c, v) in values {
            row[schema.column(c).unwrap()] = Cell::Str((*v).into());
        }
        row
    }

    fn index() -> MatchIndex {
        let mut index = MatchIndex::default();
        let orders = Dataset::Orders.schema().unwrap();
        index.add(orders, &[row(orders, &[("customer_id", "c1"), ("id", "O1"), ("alternate_id", "a1")])]);
        let subs = Dataset::Subscriptions.schema().unwrap();
        index.add(subs, &[row(subs, &[("customer_id", "c1"), ("id", "S1"), ("order_id", "O1")])]);
        index
    }

    #[test]
    fn rules_apply_in_their_documented_order() {
        let recon = Dataset::BilledRecon.schema().unwrap();
        let index = index();
        let status = |values: &[(&str, &str)]| index.match_row(&LineKeys::of(recon), &row(recon, values)).status;
        assert_eq!(status(&[("order_id", "o1"), ("subscription_id", "s1"), ("customer_id", "org:C1")]), "matched");
        assert_eq!(status(&[("order_id", "A1"), ("customer_id", "c1")]), "matched", "alternate ids match");
        assert_eq!(status(&[("order_id", "nope"), ("subscription_id", "nope")]), "order_not_found");
        assert_eq!(status(&[("order_id", "O1"), ("subscription_id", "nope")]), "subscription_not_found");
        assert_eq!(status(&[("order_id", "O1"), ("reservation_order_id", "r9")]), "entitlement_not_found");
        assert_eq!(status(&[("order_id", "O1"), ("customer_id", "c2")]), "customer_mismatch");
        assert_eq!(status(&[("customer_id", "c1")]), "not_applicable");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn key_normalisation_is_idempotent(raw in "[ ]{0,2}(org:|ORG:)?[0-9a-fA-F-]{0,36}[ ]{0,2}") {
                let once = normalize_key(&raw);
                prop_assert_eq!(normalize_key(&once), once.clone());
                prop_assert_eq!(once.clone(), once.to_lowercase());
                prop_assert!(!once.starts_with("org:"));
            }

            #[test]
            fn every_line_gets_exactly_one_status_and_order_changes_nothing(
                lines in proptest::collection::vec((0usize..4, 0usize..4, 0usize..3), 1..60),
                seed in any::<u64>(),
            ) {
                let recon = Dataset::BilledRecon.schema().unwrap();
                let index = index();
                let orders = ["O1", "a1", "nope", ""];
                let subs = ["S1", "s1", "missing", ""];
                let customers = ["c1", "org:C1", "c2"];
                let rows: Vec<Vec<Cell>> = lines
                    .iter()
                    .map(|&(o, s, c)| {
                        let mut values = vec![("customer_id", customers[c])];
                        if !orders[o].is_empty() { values.push(("order_id", orders[o])); }
                        if !subs[s].is_empty() { values.push(("subscription_id", subs[s])); }
                        row(recon, &values)
                    })
                    .collect();
                let results: Vec<Match> = rows.iter().map(|r| index.match_row(&LineKeys::of(recon), r)).collect();
                let exceptions = results.iter().filter(|m| m.is_exception()).count();
                let fine = results.iter().filter(|m| !m.is_exception()).count();
                prop_assert_eq!(exceptions + fine, rows.len());
                // Any order of the same lines gives each line the same result.
                let mut order: Vec<usize> = (0..rows.len()).collect();
                let mut state = seed | 1;
                for i in (1..order.len()).rev() {
                    state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                    order.swap(i, (state % (i as u64 + 1)) as usize);
                }
                for &i in &order {
                    prop_assert_eq!(&index.match_row(&LineKeys::of(recon), &rows[i]), &results[i]);
                }
            }
        }
    }
}
