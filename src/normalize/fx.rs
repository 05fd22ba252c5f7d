//! Currency normalisation: billing currency → the company's reporting currency, with a rate
//! table the finance team supplies (`date,from,to,rate`) or Partner Center's own monthly rates
//! ([`RateTable::add_partner_center_month`]), and a configured date rule.
//!
//! Partner Center publishes, per month, how many US dollars one unit of each currency is worth
//! (`USDPerUnit`, the `fxrates` file). The rate from a currency to the reporting currency is
//! then `USDPerUnit(from) / USDPerUnit(reporting)` (`USDPerUnit(from)` itself when reporting in
//! US dollars), rounded half-even once to the 12 fractional digits a rate keeps, and it holds
//! for every day of that month; each converted row names its month (`partner_center:YYYYMM`).
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
use crate::model::money::{Currency, RoundingMode, exact_product};
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
    /// A rate file is wrong as a whole (not text, not the month asked for).
    #[error("rate table {path}: {reason}")]
    File {
        /// The file, or the request that served it.
        path: String,
        /// What is wrong.
        reason: String,
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

/// Exchange rates by (date, from, to), each with where it came from (recorded on every row it
/// converts: the rate table's file name, or `partner_center:YYYYMM`).
#[derive(Debug, Clone, Default)]
pub struct RateTable {
    rates: BTreeMap<(NaiveDate, Currency, Currency), (Decimal, std::sync::Arc<str>)>,
    /// Whether the rates are Partner Center's monthly ones (then missing ones are told by month).
    pub partner_center: bool,
}

impl RateTable {
    /// An empty table for Partner Center's monthly rates, filled as the months arrive
    /// ([`RateTable::add_partner_center_month`]).
    pub fn partner_center() -> RateTable {
        RateTable { rates: BTreeMap::new(), partner_center: true }
    }

    /// Reads a CSV with the header `date,from,to,rate`.
    pub fn load(path: &Path) -> Result<RateTable, FxError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| FxError::Read { path: name.clone(), source })?;
        let source = path.file_name().map_or_else(|| name.clone(), |n| n.to_string_lossy().into_owned());
        RateTable::parse(&text, &name, source)
    }

    /// Parses rate-table text; `path` names it in errors, `source` is recorded on the rows.
    pub fn parse(text: &str, path: &str, source: String) -> Result<RateTable, FxError> {
        let source: std::sync::Arc<str> = source.into();
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
            if rates.insert((date, from, to), (rate, source.clone())).is_some() {
                return Err(fail(line_no, format!("a second rate for {from}→{to} on {date}")));
            }
        }
        Ok(RateTable { rates, partner_center: false })
    }

    /// Adds Partner Center's rates of `month` (`YYYYMM`) into `reporting`, from the month's
    /// `fxrates` file (`"CurrencyCode","USDPerUnit","Month"`, fields quoted or not): for every
    /// currency pcrecon knows that the file lists, the cross rate to `reporting` on every day of
    /// the month. A file that does not list the reporting currency gives no rate (rows in the
    /// month are then reported missing).
    pub fn add_partner_center_month(&mut self, month: &str, csv: &[u8], reporting: Currency) -> Result<(), FxError> {
        let path = format!("fxrates(Month='{month}')");
        let fail = |line: usize, reason: String| FxError::Line { path: path.clone(), line, reason };
        let whole = |reason: String| FxError::File { path: path.clone(), reason };
        let first_day = NaiveDate::parse_from_str(&format!("{month}01"), "%Y%m%d")
            .map_err(|_| whole(format!("{month:?} is not a month (YYYYMM)")))?;
        let text = std::str::from_utf8(csv).map_err(|_| whole("not UTF-8 text".into()))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut reader = csv::ReaderBuilder::new().has_headers(true).trim(csv::Trim::All).from_reader(text.as_bytes());
        let headers = reader.headers().map_err(|e| fail(1, e.to_string()))?.clone();
        let column = |name: &str| {
            headers
                .iter()
                .position(|h| h.eq_ignore_ascii_case(name))
                .ok_or_else(|| fail(1, format!("no {name} column")))
        };
        let (code_at, rate_at, month_at) = (column("CurrencyCode")?, column("USDPerUnit")?, column("Month")?);
        let mut usd_per_unit = BTreeMap::new();
        for record in reader.records() {
            let record = record.map_err(|e| fail(crate::tabular::text::csv_line(text, e.position()), e.to_string()))?;
            let line = crate::tabular::text::csv_line(text, record.position());
            let field = |at: usize| record.get(at).unwrap_or("");
            let said = field(month_at).replace('-', "");
            if said != month {
                return Err(fail(line, format!("Month {:?} is not the month asked for ({month})", field(month_at))));
            }
            // Microsoft lists every currency it trades in; pcrecon converts those it knows
            // (rows in another are reported as missing a rate).
            let Ok(currency) = Currency::from_str(field(code_at)) else { continue };
            let rate = Decimal::from_str_exact(field(rate_at))
                .map_err(|_| fail(line, format!("USDPerUnit {:?} is not an exact decimal", field(rate_at))))?;
            if rate <= Decimal::ZERO {
                return Err(fail(line, format!("USDPerUnit {rate} is not positive")));
            }
            if currency == Currency::Usd && rate != Decimal::ONE {
                return Err(fail(line, format!("USDPerUnit of USD is {rate}, not 1")));
            }
            if usd_per_unit.insert(currency, rate).is_some() {
                return Err(fail(line, format!("a second rate for {currency}")));
            }
        }
        // A dollar is a dollar, listed or not.
        usd_per_unit.entry(Currency::Usd).or_insert(Decimal::ONE);
        let Some(to) = usd_per_unit.get(&reporting).copied() else { return Ok(()) };
        let source: std::sync::Arc<str> = format!("partner_center:{month}").into();
        let days = month_end(first_day).day();
        for (from, from_usd) in usd_per_unit.iter().filter(|(c, _)| **c != reporting) {
            let cross = from_usd
                .checked_div(to)
                .ok_or_else(|| whole(format!("{from} → {reporting}: the cross rate overflows")))?
                .round_dp_with_strategy(
                    crate::tabular::RATE.scale(),
                    rust_decimal::RoundingStrategy::MidpointNearestEven,
                );
            for day in 0..days {
                let date = first_day + chrono::Duration::days(i64::from(day));
                self.rates.insert((date, *from, reporting), (cross, source.clone()));
            }
        }
        Ok(())
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

    /// Adds Partner Center's rates of a month ([`RateTable::add_partner_center_month`]), when
    /// they are this run's rate source (a replay of such an archive with a rate table keeps the
    /// table's rates alone).
    pub fn add_partner_center_month(&mut self, month: &str, csv: &[u8]) -> Result<(), FxError> {
        match self.table.partner_center {
            true => self.table.add_partner_center_month(month, csv, self.reporting),
            false => Ok(()),
        }
    }

    /// What the run fails with when rows had no rate: every missing (currency, date), or with
    /// Partner Center's rates every missing (currency, month); `None` when none was missing.
    pub fn missing_rates(&self) -> Option<String> {
        if self.missing.is_empty() {
            return None;
        }
        let reporting = self.reporting;
        Some(match self.table.partner_center {
            true => {
                let months: BTreeSet<(String, String)> =
                    self.missing.iter().map(|(c, d)| (c.clone(), d.format("%Y%m").to_string())).collect();
                let list: Vec<String> = months.iter().map(|(c, m)| format!("{c} in {m}")).collect();
                format!(
                    "Partner Center's exchange rates (fxrates) give no rate into {reporting} for {} (currency, month) pairs: {}",
                    list.len(),
                    list.join(", ")
                )
            }
            false => {
                let list: Vec<String> = self.missing.iter().map(|(c, d)| format!("{c} on {d}")).collect();
                format!(
                    "the rate table has no rate into the reporting currency for {} (currency, date) pairs: {}",
                    list.len(),
                    list.join(", ")
                )
            }
        })
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
            Some(c) => self.table.rates.get(&(date, c, self.reporting)).map(|(r, s)| (*r, s.to_string())),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn rate_tables_are_read_exactly_and_bad_lines_are_located() {
        let t = RateTable::parse("date,from,to,rate\n2025-01-31,DKK,EUR,0.134074\n", "r.csv", "r.csv".into()).unwrap();
        let (rate, source) = &t.rates[&(NaiveDate::from_ymd_opt(2025, 1, 31).unwrap(), Currency::Dkk, Currency::Eur)];
        assert_eq!((*rate, &**source), (d("0.134074"), "r.csv"));
        let e = RateTable::parse("date,from,to,rate\n2025-01-31,DKK,EUR,abc\n", "r.csv", String::new()).unwrap_err();
        assert_eq!(e.to_string(), "rate table r.csv, line 2: \"abc\" is not an exact decimal");
        assert!(RateTable::parse("2025-01-31,XXX,EUR,1\n", "r", String::new()).is_err());
        assert!(RateTable::parse("2025-01-31,DKK,EUR,1\n2025-01-31,DKK,EUR,2\n", "r", String::new()).is_err());
    }

    #[test]
    fn partner_center_months_give_cross_rates_on_every_day_named_by_their_month() {
        let file = "\"CurrencyCode\",\"USDPerUnit\",\"Month\"\r\n\"DKK\",\"0.14599840277747361\",\"202402\"\r\n\
                    \"EUR\",\"1.10463061152350654\",\"202402\"\r\n\"XAF\",\"0.0016\",\"202402\"\r\n\"USD\",\"1\",\"202402\"\r\n";
        let mut t = RateTable::partner_center();
        t.add_partner_center_month("202402", file.as_bytes(), Currency::Eur).unwrap();
        let on = |day: u32, from| t.rates.get(&(NaiveDate::from_ymd_opt(2024, 2, day).unwrap(), from, Currency::Eur));
        // 0.14599840277747361 / 1.10463061152350654, half-even at 12 digits.
        let (dkk, source) = on(29, Currency::Dkk).unwrap();
        assert_eq!((*dkk, &**source), (d("0.132169434066"), "partner_center:202402"));
        assert_eq!(on(1, Currency::Usd).unwrap().0, d("0.905280000000"), "1 / 1.10463061152350654");
        assert_eq!(on(1, Currency::Eur), None, "no rate from the reporting currency to itself");
        assert_eq!(
            t.rates.len(),
            2 * 29,
            "every day of a leap February, for DKK and USD; XAF is not a currency pcrecon knows"
        );
        // Into USD: the file's own number, at twelve digits.
        let mut usd = RateTable::partner_center();
        usd.add_partner_center_month("202402", file.as_bytes(), Currency::Usd).unwrap();
        let dkk = &usd.rates[&(NaiveDate::from_ymd_opt(2024, 2, 3).unwrap(), Currency::Dkk, Currency::Usd)];
        assert_eq!(dkk.0, d("0.145998402777"));
        // A file of another month, or an unreadable rate, is refused with its place.
        let e = t.add_partner_center_month("202403", file.as_bytes(), Currency::Eur).unwrap_err().to_string();
        assert!(e.contains("fxrates(Month='202403'), line 2") && e.contains("not the month asked for"), "{e}");
        let bad = "CurrencyCode,USDPerUnit,Month\nDKK,0.14.5,202402\n";
        let e = t.add_partner_center_month("202402", bad.as_bytes(), Currency::Eur).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("not an exact decimal"), "{e}");
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
