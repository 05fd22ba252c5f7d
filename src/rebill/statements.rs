//! Statements: one CSV file per customer and billing period (`statements/<customer>/<period>.csv`,
//! with `[rebill] statements = true`), in the shape a PSA or ERP invoice import takes: one line per
//! product, SKU and charge type the customer was billed for, with the amount to bill them.
//!
//! ```text
//! customer_id,customer_name,billing_period,currency,item_id,sku_id,description,charge_type,quantity,amount,cost,tax,markup_rule
//! ```
//!
//! `amount` is what the partner bills: the row's `resale` when a markup rule applies, else its
//! cost. `cost` (the partner's pre-tax cost) and `tax` (Microsoft's tax on it) are exact;
//! `quantity` and the amounts are written without trailing zeros, keeping at least the
//! currency's minor units, `.` as the decimal separator, comma-separated UTF-8 without a
//! byte-order mark, one header line. `<customer>` is the customer's `customer_key`
//! (`sink::layout::statement_file` says where each goes).
//!
//! In: the `customer_charges` rows, as [`super::Charges::rows`] gives them. Out: each statement's
//! customer, period and bytes. It writes nothing itself.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::model::money::iso_minor_units;
use crate::normalize::decode::from_decimal128;
use crate::tabular::{Cell, DatasetSchema};

/// The header of every statement.
const HEADER: [&str; 13] = [
    "customer_id",
    "customer_name",
    "billing_period",
    "currency",
    "item_id",
    "sku_id",
    "description",
    "charge_type",
    "quantity",
    "amount",
    "cost",
    "tax",
    "markup_rule",
];

/// A decimal as a statement writes it: no trailing zeros, at least `minor` fractional digits.
fn amount_text(value: Decimal, minor: u32) -> String {
    let mut value = value.normalize();
    if value.scale() < minor {
        value.rescale(minor);
    }
    value.to_string()
}

/// One statement: whose, of which billing period, and its bytes.
pub struct Statement {
    /// The customer's `customer_key`.
    pub customer_key: String,
    /// `YYYY-MM`.
    pub period: String,
    /// The CSV file.
    pub bytes: Vec<u8>,
}

/// The statements of `customer_charges` rows, in customer and period order.
pub fn statements(schema: &DatasetSchema, rows: &[Vec<Cell>]) -> Result<Vec<Statement>, super::RebillError> {
    let at = |name: &str| {
        schema.column(name).ok_or_else(|| super::RebillError::Value(format!("customer_charges has no {name}")))
    };
    let text = |row: &[Cell], name: &str| -> Result<String, super::RebillError> {
        Ok(match &row[at(name)?] {
            Cell::Str(s) => s.clone(),
            _ => String::new(),
        })
    };
    let decimal = |row: &[Cell], name: &str| -> Result<Option<Decimal>, super::RebillError> {
        let i = at(name)?;
        match &row[i] {
            Cell::Dec(v) => from_decimal128(*v, schema.columns[i].ty.scale())
                .map(Some)
                .ok_or_else(|| super::RebillError::Value(format!("{name}: {v} has no exact decimal"))),
            _ => Ok(None),
        }
    };
    let mut by_file: BTreeMap<(String, String), csv::Writer<Vec<u8>>> = BTreeMap::new();
    for row in rows {
        let (customer, period) = (text(row, "customer_key")?, text(row, "billing_period")?);
        // Lines that name no customer still bill someone: their statement says so.
        let customer = if customer.is_empty() { "unknown".to_owned() } else { customer };
        let currency = text(row, "billing_currency")?;
        let minor = iso_minor_units(&currency).unwrap_or(2);
        let cost = decimal(row, "cost")?.unwrap_or_default();
        let amount = decimal(row, "resale")?.unwrap_or(cost);
        let writer = match by_file.entry((customer.clone(), period.clone())) {
            std::collections::btree_map::Entry::Occupied(w) => w.into_mut(),
            std::collections::btree_map::Entry::Vacant(slot) => {
                let mut writer = csv::Writer::from_writer(Vec::new());
                writer.write_record(HEADER).map_err(|e| super::RebillError::Value(e.to_string()))?;
                slot.insert(writer)
            }
        };
        let record = [
            text(row, "customer_id")?,
            text(row, "customer_name")?,
            period,
            currency,
            text(row, "product_id")?,
            text(row, "sku_id")?,
            text(row, "product_name")?,
            text(row, "charge_type")?,
            amount_text(decimal(row, "quantity")?.unwrap_or_default(), 0),
            amount_text(amount, minor),
            amount_text(cost, minor),
            amount_text(decimal(row, "tax")?.unwrap_or_default(), minor),
            text(row, "markup_rule")?,
        ];
        writer.write_record(&record).map_err(|e| super::RebillError::Value(e.to_string()))?;
    }
    by_file
        .into_iter()
        .map(|((customer, period), writer)| {
            let bytes = writer.into_inner().map_err(|e| super::RebillError::Value(e.to_string()))?;
            Ok(Statement { customer_key: customer, period, bytes })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn amounts_keep_their_minor_units_and_lose_trailing_zeros() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(amount_text(d("12.3400000000"), 2), "12.34");
        assert_eq!(amount_text(d("12.0000000000"), 2), "12.00");
        assert_eq!(amount_text(d("0.1234500000"), 2), "0.12345");
        assert_eq!(amount_text(d("-5"), 3), "-5.000");
        assert_eq!(amount_text(d("3.0000000000"), 0), "3");
        assert_eq!(amount_text(d("1500"), 0), "1500");
    }
}
