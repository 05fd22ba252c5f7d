//! Re-billing: what each customer was billed, and what the partner resells it for.
//!
//! [`Charges`] sums the distinct billed lines of every invoice (new commerce and legacy; a line
//! served twice is counted once) per customer, billing period, billing currency, product, SKU,
//! charge type and source dataset — memory holds one sum per such group, never the lines. With
//! a [`Markup`] table (`[rebill] markup_file`: `customer,product,percent,fee`, `*` for any; the
//! most specific row wins: customer and product, then customer, then product, then `*,*`) each
//! group's resale amount is `cost × (1 + percent / 100) + fee`, kept exactly and rounded once to
//! the currency's ISO 4217 minor units with the configured mode, the residue beside it.
//!
//! Customers are grouped and matched by `customer_key` (the id as every join compares it: `org:`
//! stripped, trimmed, lower case), products by their id without regard to case. A group's
//! billing period is its invoice's, as the line files' `period=` partition gives it. The fee is
//! added once per row (customer × period × currency × product × SKU × charge type × source
//! dataset), in the row's billing currency, credits included.
//!
//! In: line batches as written (after matching: `is_duplicate` is known); at the end, each
//! invoice's billing month. Out: the `customer_charges` rows. It fetches and writes nothing.

mod statements;

pub use statements::{Statement, statements};

use std::collections::BTreeMap;
use std::path::Path;

use arrow_array::RecordBatch;
use rust_decimal::Decimal;

use crate::model::money::{RoundingMode, exact_product, round_to_minor_units};
use crate::normalize::decode::{from_decimal128, normalize_key, to_decimal128};
use crate::tabular::batch::Columns;
use crate::tabular::text::csv_line;
use crate::tabular::{Cell, Dataset, DatasetSchema, Row, Value};

/// Why a markup table or a sum cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RebillError {
    /// The markup table cannot be read.
    #[error("cannot read the markup table {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A line of the markup table is wrong.
    #[error("markup table {path}, line {line}: {reason}")]
    Line {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A sum or a resale amount does not fit its column, or a line's value cannot be read.
    #[error("customer_charges: {0}")]
    Value(String),
}

/// One markup: a percentage of the cost, and a fixed fee in the billing currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rule {
    percent: Decimal,
    fee: Decimal,
}

/// The partner's markup table: `(customer or *, product or *)` → percent and fee.
#[derive(Debug, Clone, Default)]
pub struct Markup {
    rules: BTreeMap<(String, String), Rule>,
    rounding: RoundingMode,
}

/// Any customer, or any product, in a markup row.
const ANY: &str = "*";

/// Fractional digits a markup's percent and fee keep (those of their columns).
const MARKUP_DIGITS: u32 = 10;

/// The columns of a markup table.
const MARKUP_COLUMNS: [&str; 4] = ["customer", "product", "percent", "fee"];

impl Markup {
    /// Reads a CSV with the header `customer,product,percent[,fee]`.
    pub fn load(path: &Path, rounding: RoundingMode) -> Result<Markup, RebillError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RebillError::Read { path: name.clone(), source })?;
        Markup::parse(&text, &name, rounding)
    }

    /// Parses markup-table text; `path` names it in errors.
    pub fn parse(text: &str, path: &str, rounding: RoundingMode) -> Result<Markup, RebillError> {
        let fail = |line: usize, reason: String| RebillError::Line { path: path.to_owned(), line, reason };
        // A spreadsheet saves its byte-order mark in front of the header.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
        let headers = reader.headers().map_err(|e| fail(1, e.to_string()))?.clone();
        let at = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
        let (Some(customer_at), Some(product_at), Some(percent_at)) = (at("customer"), at("product"), at("percent"))
        else {
            return Err(fail(1, "expected the header customer,product,percent[,fee]".into()));
        };
        if let Some(other) = headers.iter().find(|h| !MARKUP_COLUMNS.iter().any(|k| h.eq_ignore_ascii_case(k))) {
            return Err(fail(1, format!("unknown column {other:?}: the columns are customer,product,percent[,fee]")));
        }
        let fee_at = at("fee");
        let mut rules = BTreeMap::new();
        for record in reader.records() {
            let record = record.map_err(|e| fail(csv_line(text, e.position()), e.to_string()))?;
            let line = csv_line(text, record.position());
            let field = |at: usize| record.get(at).unwrap_or("").to_owned();
            // Held to the columns they are published in: no digit is ever dropped.
            let exact = |text: &str, what: &str| {
                let value = Decimal::from_str_exact(text)
                    .map_err(|_| fail(line, format!("{what} {text:?} is not an exact decimal")))?;
                to_decimal128(value, MARKUP_DIGITS).map_err(|e| fail(line, format!("{what}: {}", e.0)))?;
                Ok::<_, RebillError>(value)
            };
            let percent = exact(&field(percent_at), "percent")?;
            let fee = match fee_at.map(field).filter(|f| !f.is_empty()) {
                Some(fee) => exact(&fee, "fee")?,
                None => Decimal::ZERO,
            };
            let (customer, product) = (field(customer_at), field(product_at));
            if customer.is_empty() || product.is_empty() {
                return Err(fail(line, "customer and product must be given (`*` for any)".into()));
            }
            let normalized = if customer == ANY { customer.clone() } else { normalize_key(&customer) };
            let key = (normalized, product.to_lowercase());
            if rules.insert(key, Rule { percent, fee }).is_some() {
                return Err(fail(line, format!("a second markup for customer {customer}, product {product}")));
            }
        }
        Ok(Markup { rules, rounding })
    }

    /// The rule for a customer and product, the most specific first, and how it is named.
    fn rule_for(&self, customer_key: &str, product: &str) -> Option<(String, Rule)> {
        let (customer, product) = (normalize_key(customer_key), product.to_lowercase());
        [(customer.as_str(), product.as_str()), (customer.as_str(), ANY), (ANY, product.as_str()), (ANY, ANY)]
            .into_iter()
            .find_map(|(c, p)| self.rules.get(&(c.to_owned(), p.to_owned())).map(|r| (format!("{c},{p}"), *r)))
    }
}

/// What identifies one row of `customer_charges`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Group {
    customer_key: String,
    /// The invoice (its sequence's scope, upper case), whose billing month is the row's period.
    invoice: String,
    currency: String,
    /// The product id without regard to case.
    product_key: String,
    sku_id: String,
    charge_type: String,
    dataset: Dataset,
}

/// The sums of one group, with the spellings of its first line.
#[derive(Debug, Clone, Default)]
struct Sum {
    customer_id: String,
    customer_name: String,
    product_id: String,
    product_name: String,
    lines: i64,
    quantity: Decimal,
    cost: Decimal,
    tax: Decimal,
    total: Decimal,
}

impl Sum {
    fn add(&mut self, other: &Sum, what: &str) -> Result<(), RebillError> {
        let overflow = || RebillError::Value(format!("the sums of {what} overflow"));
        self.lines += other.lines;
        self.quantity = self.quantity.checked_add(other.quantity).ok_or_else(overflow)?;
        self.cost = self.cost.checked_add(other.cost).ok_or_else(overflow)?;
        self.tax = self.tax.checked_add(other.tax).ok_or_else(overflow)?;
        self.total = self.total.checked_add(other.total).ok_or_else(overflow)?;
        Ok(())
    }
}

/// Where a billed dataset says who, what and how much. Each dataset names them its own way.
struct Fields {
    customer_id: &'static str,
    customer_name: &'static str,
    product_id: &'static str,
    sku_id: &'static str,
    product_name: &'static str,
    quantity: &'static str,
    cost: &'static str,
    tax: &'static str,
    total: &'static str,
}

/// The billed datasets whose lines are charged to customers, and their fields. (Usage rows are
/// not: the metered recon lines already bill them.)
fn fields(dataset: Dataset) -> Option<Fields> {
    Some(match dataset {
        Dataset::BilledRecon => Fields {
            customer_id: "customer_id",
            customer_name: "customer_name",
            product_id: "product_id",
            sku_id: "sku_id",
            product_name: "product_name",
            quantity: "quantity",
            cost: "subtotal",
            tax: "tax_total",
            total: "total_for_customer",
        },
        Dataset::LegacyOffice => Fields {
            customer_id: "customer_id",
            customer_name: "customer_name",
            product_id: "offer_id",
            sku_id: "durable_offer_id",
            product_name: "offer_name",
            quantity: "quantity",
            cost: "subtotal",
            tax: "tax",
            total: "total_for_customer",
        },
        Dataset::LegacyAzure => Fields {
            customer_id: "customer_id",
            customer_name: "customer_company_name",
            product_id: "service_name",
            sku_id: "sku",
            product_name: "service_type",
            quantity: "consumed_quantity",
            cost: "pretax_charges",
            tax: "tax_amount",
            total: "post_tax_total",
        },
        _ => None?,
    })
}

/// Sums billed lines into the groups of `customer_charges`, per sequence (a restarted sequence
/// drops its own sums).
#[derive(Debug, Default)]
pub struct Charges {
    by_sequence: BTreeMap<(Dataset, String), BTreeMap<Group, Sum>>,
}

fn text(value: Value<'_>) -> String {
    match value {
        Value::Str(s) => s.into_owned(),
        _ => String::new(),
    }
}

/// A value in its column of `customer_charges`, or why it does not fit there.
fn cell(schema: &DatasetSchema, value: Decimal, name: &str) -> Result<Cell, RebillError> {
    let scale = schema.column(name).map_or(0, |i| schema.columns[i].ty.scale());
    to_decimal128(value, scale).map(Cell::Dec).map_err(|e| RebillError::Value(format!("{name}: {}", e.0)))
}

impl Charges {
    /// Adds the distinct lines of a batch of a billed dataset's sequence (`scope`: its invoice).
    pub fn observe(&mut self, schema: &DatasetSchema, scope: &str, batch: &RecordBatch) -> Result<(), RebillError> {
        let Some(f) = fields(schema.name) else { return Ok(()) };
        let at = |name: &str| schema.column(name).map(|i| (i, schema.columns[i].ty));
        let currency = schema.currency_column.and_then(at);
        let duplicate = at("is_duplicate");
        let columns = Columns::of(batch);
        let sums = self.by_sequence.entry((schema.name, scope.to_owned())).or_default();
        for r in 0..columns.rows() {
            let row = columns.row(r);
            if duplicate.is_some_and(|(i, _)| matches!(row.value(i), Value::Bool(true))) {
                continue;
            }
            let get_text = |name: &str| at(name).map(|(i, _)| text(row.value(i))).unwrap_or_default();
            let get_dec = |name: &str| -> Result<Decimal, RebillError> {
                let Some((i, ty)) = at(name) else { return Ok(Decimal::ZERO) };
                match row.value(i) {
                    Value::Dec(unscaled) => from_decimal128(unscaled, ty.scale()).ok_or_else(|| {
                        RebillError::Value(format!("{} {scope}, {name}: {unscaled} has no exact decimal", schema.name))
                    }),
                    _ => Ok(Decimal::ZERO),
                }
            };
            let line = Sum {
                customer_id: get_text(f.customer_id),
                customer_name: get_text(f.customer_name),
                product_id: get_text(f.product_id),
                product_name: get_text(f.product_name),
                lines: 1,
                quantity: get_dec(f.quantity)?,
                cost: get_dec(f.cost)?,
                tax: get_dec(f.tax)?,
                total: get_dec(f.total)?,
            };
            let group = Group {
                customer_key: normalize_key(&line.customer_id),
                invoice: scope.to_uppercase(),
                currency: currency.map(|(i, _)| text(row.value(i)).trim().to_uppercase()).unwrap_or_default(),
                product_key: line.product_id.to_lowercase(),
                sku_id: get_text(f.sku_id),
                charge_type: get_text("charge_type"),
                dataset: schema.name,
            };
            let what = format!("{} {scope}", schema.name);
            match sums.get_mut(&group) {
                Some(sum) => sum.add(&line, &what)?,
                None => {
                    sums.insert(group, line);
                }
            }
        }
        Ok(())
    }

    /// Forgets what a sequence added (it restarts from its first page).
    pub fn restart(&mut self, dataset: Dataset, scope: &str) {
        self.by_sequence.remove(&(dataset, scope.to_owned()));
    }

    /// The rows of `customer_charges` (its schema's columns), in group order, each in the
    /// billing month of its invoice (`periods`, by upper-case invoice id, as the line files are
    /// partitioned; `unknown` for an invoice without one), with the resale amounts of `markup`
    /// if given.
    pub fn rows(
        &self,
        schema: &DatasetSchema,
        markup: Option<&Markup>,
        periods: &BTreeMap<String, String>,
    ) -> Result<Vec<Vec<Cell>>, RebillError> {
        // The period replaces the invoice in the key: one row per month.
        let mut merged: BTreeMap<(String, String, Group), Sum> = BTreeMap::new();
        for sums in self.by_sequence.values() {
            for (group, sum) in sums {
                let period = periods.get(&group.invoice).cloned().unwrap_or_else(|| "unknown".into());
                let key = (group.customer_key.clone(), period, Group { invoice: String::new(), ..group.clone() });
                match merged.get_mut(&key) {
                    Some(into) => into.add(sum, &format!("customer {}", group.customer_key))?,
                    None => {
                        merged.insert(key, sum.clone());
                    }
                }
            }
        }
        let mut rows = Vec::with_capacity(merged.len());
        for ((_, period, group), sum) in merged {
            let mut row = vec![
                Cell::Str(sum.customer_id.clone()),
                Cell::Str(sum.customer_name.clone()),
                Cell::Str(period.clone()),
                Cell::Str(group.currency.clone()),
                Cell::Str(sum.product_id.clone()),
                Cell::Str(group.sku_id.clone()),
                Cell::Str(sum.product_name.clone()),
                Cell::Str(group.charge_type.clone()),
                Cell::Str(group.dataset.name().to_owned()),
                Cell::Int(sum.lines),
                cell(schema, sum.quantity, "quantity")?,
                cell(schema, sum.cost, "cost")?,
                cell(schema, sum.tax, "tax")?,
                cell(schema, sum.total, "total")?,
            ];
            match markup.and_then(|m| m.rule_for(&group.customer_key, &group.product_key).map(|r| (m, r))) {
                Some((markup, (name, rule))) => {
                    let at = || {
                        format!(
                            "customer {}, {period}, {}, product {}",
                            group.customer_key, group.currency, sum.product_id
                        )
                    };
                    let factor = Decimal::ONE + rule.percent / Decimal::ONE_HUNDRED;
                    // Exact, or an error: the product keeps every digit, and so does the fee added.
                    let product = exact_product(sum.cost, factor).ok_or_else(|| {
                        RebillError::Value(format!("{}: cost × markup has more digits than it can hold exactly", at()))
                    })?;
                    let unrounded =
                        product.checked_add(rule.fee).filter(|v| *v - rule.fee == product).ok_or_else(|| {
                            RebillError::Value(format!("{}: the resale amount does not hold exactly", at()))
                        })?;
                    let rounded =
                        round_to_minor_units(&group.currency, unrounded, markup.rounding).ok_or_else(|| {
                            RebillError::Value(format!(
                                "{}: {:?} is not a currency code to round to",
                                at(),
                                group.currency
                            ))
                        })?;
                    row.extend([
                        Cell::Str(name),
                        cell(schema, rule.percent, "markup_percent")?,
                        cell(schema, rule.fee, "markup_fee")?,
                        cell(schema, unrounded, "resale_unrounded")?,
                        cell(schema, rounded, "resale")?,
                        cell(schema, unrounded - rounded, "resale_rounding_residue")?,
                    ]);
                }
                None => row.extend([Cell::Null, Cell::Null, Cell::Null, Cell::Null, Cell::Null, Cell::Null]),
            }
            row.push(Cell::Str(group.customer_key.clone()));
            rows.push(row);
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn the_most_specific_markup_wins() {
        let table = "customer,product,percent,fee\n*,*,10,\nc1,*,20,1.50\n*,p1,5,\nc1,p1,0,0\n";
        let m = Markup::parse(table, "m.csv", RoundingMode::HalfEven).unwrap();
        let rule = |c: &str, p: &str| m.rule_for(c, p).map(|(name, r)| (name, r.percent, r.fee));
        assert_eq!(rule("C1", "P1"), Some(("c1,p1".into(), d("0"), d("0"))), "customer and product");
        assert_eq!(rule("c1", "p2"), Some(("c1,*".into(), d("20"), d("1.50"))), "the customer's");
        assert_eq!(rule("c2", "p1"), Some(("*,p1".into(), d("5"), d("0"))), "the product's");
        assert_eq!(rule("c2", "p2"), Some(("*,*".into(), d("10"), d("0"))), "everyone's");
        let none = Markup::parse("customer,product,percent\nc1,p1,3\n", "m.csv", RoundingMode::HalfEven).unwrap();
        assert_eq!(none.rule_for("c2", "p2").map(|r| r.0), None);
    }

    #[test]
    fn a_large_resale_keeps_every_digit_and_an_unknown_code_still_rounds() {
        let schema = Dataset::CustomerCharges.schema().unwrap();
        let big = d("12345678.9012345678");
        let v = cell(schema, big * d("1.03333"), "resale_unrounded").unwrap();
        let Cell::Dec(unscaled) = v else { panic!("{v:?}") };
        assert_eq!(from_decimal128(unscaled, 22).unwrap(), d("12757160.379012715944774"));
        assert!(cell(schema, d("0.12345678901"), "cost").is_err(), "11 digits in a 10-digit column");
        assert_eq!(round_to_minor_units("SEK", d("10.005"), RoundingMode::HalfUp), Some(d("10.01")));
        assert_eq!(round_to_minor_units("KRW", d("10.5"), RoundingMode::HalfEven), Some(d("10")));
        assert_eq!(round_to_minor_units("BHD", d("1.0005"), RoundingMode::HalfUp), Some(d("1.001")));
        assert_eq!(round_to_minor_units("E", d("1"), RoundingMode::HalfUp), None);
    }

    #[test]
    fn bad_markup_lines_are_located() {
        for (table, says) in [
            ("customer,product,percent\nc1,p1,ten\n", "line 2: percent \"ten\" is not an exact decimal"),
            ("customer,product,percent\nc1,p1,1\nC1,P1,2\n", "line 3: a second markup"),
            ("customer,percent\nc1,1\n", "line 1: expected the header"),
            ("customer,product,percent,fee\nc1,,1,\n", "line 2: customer and product must be given"),
            ("customer,product,percent,fees\nc1,p1,1,2\n", "line 1: unknown column \"fees\""),
            ("customer,product,percent\n\nc1,p1,0.00000000001\n", "line 3: percent"),
        ] {
            let e = Markup::parse(table, "m.csv", RoundingMode::HalfEven).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains("m.csv"), "{table}: {e}");
        }
    }
}
