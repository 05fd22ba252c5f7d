//! Currency normalisation: billing currency → the company's reporting currency, with a rate
//! table the finance team supplies (`date,from,to,rate`) and a configured date rule.
//!
//! Conversion is exact: `amount × rate` is kept unrounded (usage totals, which carry 22
//! fractional digits themselves, to the column's 22, half-even) and, beside it, rounded once to
//! the reporting currency's ISO 4217 minor units with the configured mode. A missing rate does not stop the rows: every
//! missing (currency, date) is collected, and the run fails listing them all at once.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use arrow_array::RecordBatch;

use super::decode::{from_decimal128, to_decimal128};
use crate::model::money::{Currency, RoundingMode};
use crate::tabular::batch::{ColumnBuilder, Columns, with_columns};
use crate::tabular::{ColType, DatasetSchema, FxColumn, Row, Source, Value};

/// Which day's rate converts a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateDateRule {
    /// The invoice's date (unbilled rows, which have none, use the month end).
    InvoiceDate,
    /// The row's charge end (usage: its usage date).
    ChargeEnd,
    /// The last day of the row's billing period; the default.
    #[default]
    MonthEnd,
}

impl RateDateRule {
    /// The name used in configuration and in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            RateDateRule::InvoiceDate => "invoice_date",
            RateDateRule::ChargeEnd => "charge_end",
            RateDateRule::MonthEnd => "month_end",
        }
    }
}

/// Why rates cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FxError {
    /// The rate table cannot be read.
    #[error("cannot read the rate table {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A line of the rate table is wrong.
    #[error("rate table {path}, line {line}: {reason}")]
    Line {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Exchange rates by (date, from, to).
#[derive(Debug, Clone, Default)]
pub struct RateTable {
    rates: BTreeMap<(NaiveDate, Currency, Currency), Decimal>,
    /// File name, recorded on every converted row as its rate source.
    pub source: String,
}

impl RateTable {
    /// Reads a CSV with the header `date,from,to,rate`.
    pub fn load(path: &Path) -> Result<RateTable, FxError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| FxError::Read { path: name.clone(), source })?;
        let source = path.file_name().map_or_else(|| name.clone(), |n| n.to_string_lossy().into_owned());
        RateTable::parse(&text, &name, source)
    }

    /// Parses rate-table text; `path` names it in errors.
    pub fn parse(text: &str, path: &str, source: String) -> Result<RateTable, FxError> {
        let fail = |line: usize, reason: String| FxError::Line { path: path.to_owned(), line, reason };
        let mut rates = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = line.trim();
            if line.is_empty() || (i == 0 && line.to_ascii_lowercase().replace(' ', "") == "date,from,to,rate") {
                continue;
            }
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let [date, from, to, rate] = fields.as_slice() else {
                return Err(fail(line_no, format!("expected date,from,to,rate, found {line:?}")));
            };
            let date = NaiveDate::from_str(date).map_err(|_| fail(line_no, format!("{date:?} is not a date")))?;
            let from = Currency::from_str(from).map_err(|e| fail(line_no, e.to_string()))?;
            let to = Currency::from_str(to).map_err(|e| fail(line_no, e.to_string()))?;
            let rate = Decimal::from_str_exact(rate)
                .map_err(|_| fail(line_no, format!("{rate:?} is not an exact decimal")))?;
            if rate <= Decimal::ZERO {
                return Err(fail(line_no, format!("rate {rate} is not positive")));
            }
            let kept = crate::tabular::RATE.scale();
            if rate.normalize().scale() > kept {
                return Err(fail(
                    line_no,
                    format!("rate {rate} has more than the {kept} fractional digits a rate keeps"),
                ));
            }
            if rates.insert((date, from, to), rate).is_some() {
                return Err(fail(line_no, format!("a second rate for {from}→{to} on {date}")));
            }
        }
        Ok(RateTable { rates, source })
    }
}

/// Facts of an invoice the date rules need.
#[derive(Debug, Clone, Copy)]
pub struct InvoiceDates {
    /// `invoiceDate` (UTC day).
    pub invoice_date: Option<NaiveDate>,
    /// Last day of the billing period.
    pub period_end: Option<NaiveDate>,
}

/// Converts amounts into the reporting currency.
#[derive(Debug)]
pub struct Normalizer {
    reporting: Currency,
    table: RateTable,
    rule: RateDateRule,
    mode: RoundingMode,
    missing: BTreeSet<(String, NaiveDate)>,
}

/// The UTC day of a date or timestamp value of a column type.
pub fn day_of(value: &Value<'_>, ty: ColType) -> Option<NaiveDate> {
    let epoch = NaiveDate::default();
    match (value, ty) {
        (Value::Date(days), _) => epoch.checked_add_signed(chrono::Duration::days(i64::from(*days))),
        (Value::Timestamp(micros), ColType::TimestampMicros) => {
            chrono::DateTime::from_timestamp_micros(*micros).map(|t| t.date_naive())
        }
        (Value::Timestamp(nanos), _) => Some(chrono::DateTime::from_timestamp_nanos(*nanos).date_naive()),
        _ => None,
    }
}

/// The rate that converts one row: its day, the rate and where it came from.
#[derive(Debug, Clone, PartialEq)]
struct Found {
    date: NaiveDate,
    rate: Decimal,
    source: String,
}

fn month_end(day: NaiveDate) -> NaiveDate {
    let first_of_next = if day.month() == 12 {
        NaiveDate::from_ymd_opt(day.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(day.year(), day.month() + 1, 1)
    };
    first_of_next.and_then(|d| d.pred_opt()).unwrap_or(day)
}

impl Normalizer {
    /// A normaliser into `reporting` with a rate table, date rule and rounding mode.
    pub fn new(reporting: Currency, table: RateTable, rule: RateDateRule, mode: RoundingMode) -> Normalizer {
        Normalizer { reporting, table, rule, mode, missing: BTreeSet::new() }
    }

    /// Every (currency, date) that had no rate, in order.
    pub fn missing(&self) -> &BTreeSet<(String, NaiveDate)> {
        &self.missing
    }

    fn rate_date(&self, dates: &DateColumns, row: &impl Row, invoice: Option<InvoiceDates>) -> Option<NaiveDate> {
        let column = |at: Option<(usize, ColType)>| at.and_then(|(i, ty)| day_of(&row.value(i), ty));
        let month_end_of_row = || invoice.and_then(|i| i.period_end).or_else(|| column(dates.period).map(month_end));
        match self.rule {
            RateDateRule::InvoiceDate => {
                invoice.and_then(|i| i.invoice_date).or_else(|| column(dates.invoice_date)).or_else(month_end_of_row)
            }
            RateDateRule::ChargeEnd => column(dates.charge_end).or_else(month_end_of_row),
            RateDateRule::MonthEnd => month_end_of_row(),
        }
    }

    /// The rate of `code` on `date`, or `None` when the table has none (then the pair is kept for
    /// the run's error).
    fn rate_on(&mut self, code: &str, date: NaiveDate) -> Option<Found> {
        let code = code.trim().to_uppercase();
        let found = match Currency::from_str(&code).ok() {
            Some(c) if c == self.reporting => Some((Decimal::ONE, "identity".to_owned())),
            Some(c) => self.table.rates.get(&(date, c, self.reporting)).map(|r| (*r, self.table.source.clone())),
            None => None,
        };
        match found {
            Some((rate, source)) => Some(Found { date, rate, source }),
            None => {
                self.missing.insert((code, date));
                None
            }
        }
    }

    /// The value of one FX column of a row converted at `found`.
    fn fx_value<'f>(&self, row: &impl Row, target: &Target<'_>, found: &'f Found) -> Result<Value<'f>, String> {
        let Target { fx, ty, name, amount, .. } = *target;
        Ok(match fx {
            FxColumn::ReportingCurrency => Value::Str(Cow::Borrowed(self.reporting.code())),
            FxColumn::Rate => Value::Dec(to_decimal128(found.rate, ty.scale()).map_err(|e| e.0)?),
            FxColumn::RateDate => Value::Date(
                i32::try_from(found.date.signed_duration_since(NaiveDate::default()).num_days()).unwrap_or(0),
            ),
            FxColumn::RateSource => Value::Str(Cow::Borrowed(&found.source)),
            FxColumn::Unrounded(column) | FxColumn::Rounded(column) => {
                let Some((at, scale)) = amount else { return Ok(Value::Null) };
                let Value::Dec(unscaled) = row.value(at) else { return Ok(Value::Null) };
                let value = from_decimal128(unscaled, scale)
                    .ok_or_else(|| format!("{column} {unscaled} cannot be converted"))?;
                let rate = found.rate;
                let product = exact_product(value, rate).ok_or_else(|| {
                    format!("{column} {value} × rate {rate} has more digits than an exact product can hold")
                })?;
                let converted = match fx {
                    FxColumn::Rounded(_) => self.reporting.round(product, self.mode),
                    // Exact for every amount (10 digits) at any rate (12); a usage total carries 22
                    // digits itself, and its product keeps the column's 22, half-even.
                    _ => {
                        product.round_dp_with_strategy(ty.scale(), rust_decimal::RoundingStrategy::MidpointNearestEven)
                    }
                };
                Value::Dec(to_decimal128(converted, ty.scale()).map_err(|e| format!("{name}: {}", e.0))?)
            }
        })
    }

    /// `batch` with its FX columns filled: each row converted at its own rate; a row without a
    /// currency, a day or a rate keeps them null. `invoice` is the rows' invoice, when they have
    /// one.
    pub fn apply(
        &mut self,
        schema: &DatasetSchema,
        batch: &RecordBatch,
        invoice: Option<InvoiceDates>,
    ) -> Result<RecordBatch, String> {
        let Some(currency_at) = schema.currency_column.and_then(|c| schema.column(c)) else { return Ok(batch.clone()) };
        let Some(fx) = schema.fx.as_ref() else { return Ok(batch.clone()) };
        let at = |name: &str| schema.column(name).map(|i| (i, schema.columns[i].ty));
        let dates = DateColumns {
            invoice_date: at(fx.invoice_date_column),
            charge_end: at(fx.charge_end_column),
            period: at(fx.period_column),
        };
        let targets: Vec<Target<'_>> = schema
            .columns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match &c.source {
                Source::Fx(fx) => {
                    let amount = match fx {
                        FxColumn::Unrounded(a) | FxColumn::Rounded(a) => at(a).map(|(i, ty)| (i, ty.scale())),
                        _ => None,
                    };
                    Some(Target { at: i, fx, ty: c.ty, name: &c.name, amount })
                }
                _ => None,
            })
            .collect();
        if targets.is_empty() {
            return Ok(batch.clone());
        }
        let columns = Columns::of(batch);
        let mut builders: Vec<ColumnBuilder> =
            targets.iter().map(|t| ColumnBuilder::new(t.ty, batch.num_rows())).collect();
        // Rows of a page mostly share their currency and rate day: the last lookup is kept.
        let mut last: Option<(String, NaiveDate, Option<Found>)> = None;
        for r in 0..columns.rows() {
            let row = columns.row(r);
            let code = row.value(currency_at);
            let (Value::Str(code), Some(date)) = (code, self.rate_date(&dates, &row, invoice)) else {
                builders.iter_mut().for_each(ColumnBuilder::append_null);
                continue;
            };
            if !matches!(&last, Some((c, d, _)) if *c == code && *d == date) {
                let found = self.rate_on(&code, date);
                last = Some((code.into_owned(), date, found));
            }
            let Some((_, _, Some(found))) = &last else {
                builders.iter_mut().for_each(ColumnBuilder::append_null);
                continue;
            };
            for (builder, target) in builders.iter_mut().zip(&targets) {
                builder.append(&self.fx_value(&row, target, found)?);
            }
        }
        let mut replaced = Vec::with_capacity(targets.len());
        for (builder, target) in builders.iter_mut().zip(&targets) {
            replaced.push((target.at, builder.finish().map_err(|e| e.to_string())?));
        }
        with_columns(batch, replaced).map_err(|e| e.to_string())
    }
}

/// The date columns the rate date rules read, found once per batch.
struct DateColumns {
    invoice_date: Option<(usize, ColType)>,
    charge_end: Option<(usize, ColType)>,
    period: Option<(usize, ColType)>,
}

/// One FX column to fill, and the amount column it converts.
#[derive(Clone, Copy)]
struct Target<'s> {
    at: usize,
    fx: &'s FxColumn,
    ty: ColType,
    name: &'s str,
    amount: Option<(usize, u32)>,
}

/// `a × b` only when no digit is lost: the mantissas are multiplied in i128, and the product
/// is accepted only if a Decimal holds it as it is (at most 28 fractional digits, 96 bits).
fn exact_product(a: Decimal, b: Decimal) -> Option<Decimal> {
    let (a, b) = (a.normalize(), b.normalize());
    let mantissa = a.mantissa().checked_mul(b.mantissa())?;
    Decimal::try_from_i128_with_scale(mantissa, a.scale() + b.scale()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn rate_tables_are_read_exactly_and_bad_lines_are_located() {
        let t = RateTable::parse("date,from,to,rate\n2025-01-31,DKK,EUR,0.134074\n", "r.csv", "r.csv".into()).unwrap();
        assert_eq!(
            t.rates[&(NaiveDate::from_ymd_opt(2025, 1, 31).unwrap(), Currency::Dkk, Currency::Eur)],
            d("0.134074")
        );
        let e = RateTable::parse("date,from,to,rate\n2025-01-31,DKK,EUR,abc\n", "r.csv", String::new()).unwrap_err();
        assert_eq!(e.to_string(), "rate table r.csv, line 2: \"abc\" is not an exact decimal");
        assert!(RateTable::parse("2025-01-31,XXX,EUR,1\n", "r", String::new()).is_err());
        assert!(RateTable::parse("2025-01-31,DKK,EUR,1\n2025-01-31,DKK,EUR,2\n", "r", String::new()).is_err());
    }

    #[test]
    fn month_ends_cross_years_and_leap_days() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(month_end(d(2024, 2, 10)), d(2024, 2, 29));
        assert_eq!(month_end(d(2024, 12, 31)), d(2024, 12, 31));
        assert_eq!(month_end(d(2025, 11, 1)), d(2025, 11, 30));
    }

    #[test]
    fn days_follow_the_unit_of_their_column() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 4).unwrap();
        assert_eq!(day_of(&Value::Timestamp(1_772_582_400_000_000), ColType::TimestampMicros), Some(day));
        assert_eq!(day_of(&Value::Timestamp(1_772_582_400_000_000_000), ColType::Timestamp), Some(day));
        assert_eq!(day_of(&Value::Date(20516), ColType::Date), Some(day));
    }

    #[test]
    fn products_are_exact_or_refused() {
        assert_eq!(exact_product(d("244820.21"), d("0.134074")), Some(d("32824.02483554")));
        assert_eq!(exact_product(d("-26.470000"), d("1")), Some(d("-26.47")));
        assert_eq!(
            exact_product(d("0.1835431430074643112595"), d("0.891234")),
            Some(d("0.1635798895151144479810492230")),
            "28 fractional digits: exact"
        );
        assert_eq!(exact_product(d("0.1835431430074643112595"), d("0.8912345")), None, "29 would be rounded: refused");
    }
}
