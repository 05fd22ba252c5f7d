//! Re-billing: what each customer was billed, and what the partner resells it for.
//!
//! [`Charges`] sums the distinct billed lines of every invoice (new commerce and legacy; a line
//! served twice is counted once) per customer, billing period, billing currency, product, SKU,
//! charge type and source dataset — memory holds one sum per such group, never the lines. With
//! a [`Markup`] table (`[rebill] markup_file`: `customer,product,percent,fee`, `*` for any; the
//! most specific row wins: customer and product, then customer, then product, then `*,*`) each
//! group's resale amount is `cost × (1 + percent / 100) + fee`, kept exactly and rounded once to
//! the currency's minor units with the configured mode, the residue beside it.
//!
//! Customers are grouped and matched by `customer_key` (the id as every join compares it: `org:`
//! stripped, trimmed, lower case), products by their id without regard to case.
//!
//! In: line batches as written (after matching: `is_duplicate` is known), with their invoice's
//! billing month. Out: the `customer_charges` rows. It fetches and writes nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use arrow_array::RecordBatch;
use rust_decimal::Decimal;

use crate::model::money::{Currency, RoundingMode};
use crate::normalize::decode::normalize_key;
use crate::tabular::batch::Columns;
use crate::tabular::{Cell, ColType, Dataset, DatasetSchema, Row, Value};

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
    /// A sum or a resale amount does not fit its column.
    #[error("customer_charges: {0}")]
    Overflow(String),
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
        let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
        let headers = reader.headers().map_err(|e| fail(1, e.to_string()))?.clone();
        let at = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
        let (Some(customer_at), Some(product_at), Some(percent_at)) = (at("customer"), at("product"), at("percent"))
        else {
            return Err(fail(1, "expected the header customer,product,percent[,fee]".into()));
        };
        let fee_at = at("fee");
        let mut rules = BTreeMap::new();
        for (i, record) in reader.records().enumerate() {
            let line = i + 2;
            let record = record.map_err(|e| fail(line, e.to_string()))?;
            let field = |at: usize| record.get(at).unwrap_or("").to_owned();
            let exact = |text: &str, what: &str| {
                Decimal::from_str_exact(text)
                    .map_err(|_| fail(line, format!("{what} {text:?} is not an exact decimal")))
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
    period: String,
    currency: String,
    product_id: String,
    sku_id: String,
    charge_type: String,
    dataset: Dataset,
}

/// The sums of one group.
#[derive(Debug, Clone, Default)]
struct Sum {
    customer_id: String,
    customer_name: String,
    product_name: String,
    lines: i64,
    quantity: Decimal,
    cost: Decimal,
    tax: Decimal,
    total: Decimal,
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

fn decimal(value: Value<'_>, ty: ColType) -> Option<Decimal> {
    match value {
        Value::Dec(unscaled) => Decimal::try_from_i128_with_scale(unscaled, ty.scale()).ok(),
        _ => None,
    }
}

fn text(value: Value<'_>) -> String {
    match value {
        Value::Str(s) => s.into_owned(),
        _ => String::new(),
    }
}

impl Charges {
    /// Adds the distinct lines of a batch of a billed dataset's sequence `scope`, billed in
    /// `period` (`YYYY-MM`).
    pub fn observe(
        &mut self,
        schema: &DatasetSchema,
        scope: &str,
        batch: &RecordBatch,
        period: &str,
    ) -> Result<(), RebillError> {
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
            let get_dec = |name: &str| at(name).and_then(|(i, ty)| decimal(row.value(i), ty)).unwrap_or_default();
            let group = Group {
                customer_key: normalize_key(&get_text(f.customer_id)),
                period: period.to_owned(),
                currency: currency.map(|(i, _)| text(row.value(i)).to_uppercase()).unwrap_or_default(),
                product_id: get_text(f.product_id),
                sku_id: get_text(f.sku_id),
                charge_type: get_text("charge_type"),
                dataset: schema.name,
            };
            let sum = sums.entry(group).or_default();
            if sum.lines == 0 {
                sum.customer_id = get_text(f.customer_id);
                sum.customer_name = get_text(f.customer_name);
                sum.product_name = get_text(f.product_name);
            }
            let add = |total: &mut Decimal, value: Decimal, what: &str| {
                *total = total
                    .checked_add(value)
                    .ok_or_else(|| RebillError::Overflow(format!("the sum of {what} overflows")))?;
                Ok::<_, RebillError>(())
            };
            sum.lines += 1;
            add(&mut sum.quantity, get_dec(f.quantity), f.quantity)?;
            add(&mut sum.cost, get_dec(f.cost), f.cost)?;
            add(&mut sum.tax, get_dec(f.tax), f.tax)?;
            add(&mut sum.total, get_dec(f.total), f.total)?;
        }
        Ok(())
    }

    /// Forgets what a sequence added (it restarts from its first page).
    pub fn restart(&mut self, dataset: Dataset, scope: &str) {
        self.by_sequence.remove(&(dataset, scope.to_owned()));
    }

    /// The rows of `customer_charges` (its schema's columns), in group order, with the resale
    /// amounts of `markup` if given.
    pub fn rows(&self, schema: &DatasetSchema, markup: Option<&Markup>) -> Result<Vec<Vec<Cell>>, RebillError> {
        let mut merged: BTreeMap<&Group, Sum> = BTreeMap::new();
        for sums in self.by_sequence.values() {
            for (group, sum) in sums {
                let into = merged.entry(group).or_insert_with(|| Sum {
                    customer_id: sum.customer_id.clone(),
                    customer_name: sum.customer_name.clone(),
                    product_name: sum.product_name.clone(),
                    ..Sum::default()
                });
                let overflow = || RebillError::Overflow(format!("the sums of customer {}", group.customer_key));
                into.lines += sum.lines;
                into.quantity = into.quantity.checked_add(sum.quantity).ok_or_else(overflow)?;
                into.cost = into.cost.checked_add(sum.cost).ok_or_else(overflow)?;
                into.tax = into.tax.checked_add(sum.tax).ok_or_else(overflow)?;
                into.total = into.total.checked_add(sum.total).ok_or_else(overflow)?;
            }
        }
        let scale_of = |name: &str| schema.column(name).map_or(0, |i| schema.columns[i].ty.scale());
        let cell = |value: Decimal, name: &str| -> Result<Cell, RebillError> {
            let scale = scale_of(name);
            let mut v = value;
            v.rescale(scale);
            if v != value {
                return Err(RebillError::Overflow(format!("{name} {value} has more than {scale} fractional digits")));
            }
            Ok(Cell::Dec(v.mantissa()))
        };
        let mut rows = Vec::with_capacity(merged.len());
        for (group, sum) in merged {
            let resale = match markup.and_then(|m| m.rule_for(&group.customer_key, &group.product_id).map(|r| (m, r))) {
                Some((markup, (name, rule))) => {
                    let overflow = || RebillError::Overflow(format!("the resale of customer {}", group.customer_key));
                    let factor = Decimal::ONE + rule.percent / Decimal::ONE_HUNDRED;
                    let unrounded =
                        sum.cost.checked_mul(factor).and_then(|v| v.checked_add(rule.fee)).ok_or_else(overflow)?;
                    let currency =
                        Currency::from_str(&group.currency).map_err(|e| RebillError::Overflow(e.to_string()))?;
                    let rounded = currency.round(unrounded, markup.rounding);
                    Some((name, rule, unrounded, rounded))
                }
                None => None,
            };
            let mut row = vec![
                Cell::Str(sum.customer_id),
                Cell::Str(sum.customer_name),
                Cell::Str(group.period.clone()),
                Cell::Str(group.currency.clone()),
                Cell::Str(group.product_id.clone()),
                Cell::Str(group.sku_id.clone()),
                Cell::Str(sum.product_name),
                Cell::Str(group.charge_type.clone()),
                Cell::Str(group.dataset.name().to_owned()),
                Cell::Int(sum.lines),
                cell(sum.quantity, "quantity")?,
                cell(sum.cost, "cost")?,
                cell(sum.tax, "tax")?,
                cell(sum.total, "total")?,
            ];
            match resale {
                Some((name, rule, unrounded, rounded)) => row.extend([
                    Cell::Str(name),
                    cell(rule.percent, "markup_percent")?,
                    cell(rule.fee, "markup_fee")?,
                    cell(unrounded, "resale_unrounded")?,
                    cell(rounded, "resale")?,
                    cell(unrounded - rounded, "resale_rounding_residue")?,
                ]),
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
    fn bad_markup_lines_are_located() {
        for (table, says) in [
            ("customer,product,percent\nc1,p1,ten\n", "line 2: percent \"ten\" is not an exact decimal"),
            ("customer,product,percent\nc1,p1,1\nC1,P1,2\n", "line 3: a second markup"),
            ("customer,percent\nc1,1\n", "line 1: expected the header"),
            ("customer,product,percent,fee\nc1,,1,\n", "line 2: customer and product must be given"),
        ] {
            let e = Markup::parse(table, "m.csv", RoundingMode::HalfEven).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains("m.csv"), "{table}: {e}");
        }
    }
}
