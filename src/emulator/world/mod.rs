//! The seeded world generator: a partner's customers, what they bought, and every invoice,
//! summary, line item and statement that follows, written as a folder of JSON-lines files the
//! server replays byte for byte, with `truth.json` beside them.
//!
//! In: a [`WorldSpec`] (seed and sizes). Out: a world folder, published atomically. Same spec,
//! byte-identical folder. It does not serve anything (see `emulator::server`).
//!
//! Layout of a world folder:
//! ```text
//! world.json                              partner, dates, currencies, generator arguments
//! rates.csv                               daily exchange rates between its currencies
//! fxrates/<YYYYMM>.csv                    Partner Center's monthly rates (USD per unit), as served
//! truth.json                              counts, control totals, invoices, planted anomalies
//! customers.jsonl                         one Customer (by-id shape) per line
//! customers/<id>/{orders,subscriptions,entitlements}.jsonl
//! invoices.jsonl                          one Invoice (by-id shape) per line, newest first
//! invoice_summaries.jsonl                 one InvoiceSummary per currency
//! invoices/<id>/statement.pdf
//! invoices/<id>/<provider>-<type>.jsonl   onetime-billinglineitems, onetime-usagelineitems,
//!                                         office-billinglineitems, azure-{billing,usage}lineitems
//! unbilled/<CCY>/<current|previous>/{billinglineitems,usagelineitems}.jsonl
//! ```

pub mod billing;
pub mod catalog;
pub mod dice;
pub mod dims;
pub mod documents;
pub mod json;
pub mod pdf;
pub mod plan;
pub mod quirks;
pub mod records;
pub mod timeline;
pub mod truth;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use rayon::prelude::*;
use rust_decimal::Decimal;

use billing::{Period, Slot, SlotOutput, generate_slot};
use dice::{Dice, Ppm};
use dims::{AmendmentDoc, InvoiceDoc, SummaryDoc};
use documents::NoteRates;
use timeline::{Month, Timeline};
use truth::{SummaryTruth, Tally, Truth, dataset};

use crate::model::money::Currency;

/// The layout of a world folder (`world.json`'s `format`): 2 added Partner Center's monthly
/// exchange rates (`fxrates/`).
pub const WORLD_FORMAT: u32 = 2;

/// Kinds of anomaly the generator can plant.
pub const ANOMALY_KINDS: [&str; 7] = [
    "order_not_found",
    "subscription_not_found",
    "entitlement_not_found",
    "entitlement_expired",
    "customer_mismatch",
    "invoice_total_mismatch",
    "duplicate_line",
];

/// Probability per eligible line (per invoice for `invoice_total_mismatch`) of each anomaly kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnomalyRates(BTreeMap<&'static str, Ppm>);

impl AnomalyRates {
    /// No anomalies at all.
    pub fn none() -> AnomalyRates {
        AnomalyRates(ANOMALY_KINDS.iter().map(|k| (*k, Ppm(0))).collect())
    }

    /// The rate of one kind.
    pub fn rate(&self, kind: &str) -> Ppm {
        self.0.get(kind).copied().unwrap_or_default()
    }

    /// Parses `kind=probability,…` over the defaults; `none` turns every kind off.
    pub fn parse(text: &str) -> Result<AnomalyRates, String> {
        let mut rates = AnomalyRates::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "none" {
                rates = AnomalyRates::none();
                continue;
            }
            let (kind, value) = part.split_once('=').ok_or_else(|| format!("{part:?} is not kind=probability"))?;
            let kind = ANOMALY_KINDS
                .iter()
                .find(|k| **k == kind.trim())
                .ok_or_else(|| format!("unknown anomaly kind {kind:?} (known: {})", ANOMALY_KINDS.join(", ")))?;
            rates.0.insert(kind, Ppm::parse(value)?);
        }
        Ok(rates)
    }

    fn describe(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={}", Decimal::new(i64::from(v.0), 6).normalize()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Default for AnomalyRates {
    /// Small rates: enough that a large world has many of each, few enough that they stay anomalies.
    fn default() -> Self {
        let mut rates = AnomalyRates::none();
        for (kind, ppm) in [
            ("order_not_found", 1000),
            ("subscription_not_found", 200),
            ("entitlement_not_found", 2000),
            ("entitlement_expired", 2000),
            ("customer_mismatch", 200),
            ("invoice_total_mismatch", 150_000),
            ("duplicate_line", 100),
        ] {
            rates.0.insert(kind, Ppm(ppm));
        }
        rates
    }
}

/// What world to generate.
#[derive(Debug, Clone)]
pub struct WorldSpec {
    /// Seed of every random draw.
    pub seed: u64,
    /// Number of customers (at least 1).
    pub customers: usize,
    /// Number of invoiced months.
    pub months: u32,
    /// Daily rated usage rows per full month (across all customers).
    pub usage_rows_per_month: u64,
    /// The world's date.
    pub as_of: NaiveDate,
    /// Anomaly rates.
    pub anomalies: AnomalyRates,
    /// Rate of wire quirks per decision.
    pub quirk_rate: Ppm,
    /// Restatements applied on top of the generated world (0: none).
    pub revision: u32,
    /// Rates of credit notes, adjustment notes and void notes (with rebills) per invoice.
    pub notes: NoteRates,
}

impl WorldSpec {
    /// The default date of a world: early in a month, so that both unbilled periods hold data.
    pub fn default_as_of() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 3, 5).unwrap_or(NaiveDate::MIN)
    }

    /// A stable one-line description of the spec and the folder layout (names the world's cache
    /// folder: a world cached by an older layout is not taken for a new one).
    pub fn fingerprint(&self) -> String {
        format!(
            "format={WORLD_FORMAT} seed={} customers={} months={} usage={} as_of={} anomalies={} quirks={} documents={}",
            self.seed,
            self.customers,
            self.months,
            self.usage_rows_per_month,
            self.as_of,
            self.anomalies.describe(),
            self.quirk_rate.0,
            self.notes.describe()
        ) + &if self.revision > 0 { format!(" revision={}", self.revision) } else { String::new() }
    }
}

/// Why a world could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The spec makes no sense.
    #[error("invalid world: {0}")]
    Invalid(String),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl WorldError {
    /// An I/O error on a path.
    pub fn io(path: &Path, source: std::io::Error) -> WorldError {
        WorldError::Io { path: path.to_path_buf(), source }
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), WorldError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| WorldError::io(parent, e))?;
    }
    fs::write(path, bytes).map_err(|e| WorldError::io(path, e))
}

fn jsonl<T>(items: &[T], mut write: impl FnMut(&mut String, &T)) -> String {
    let mut out = String::new();
    for item in items {
        write(&mut out, item);
        out.push('\n');
    }
    out
}

/// Generates a world into `out`, replacing what is there only once the new world is complete.
pub fn generate(spec: &WorldSpec, out: &Path) -> Result<Truth, WorldError> {
    if spec.customers == 0 || spec.months == 0 {
        return Err(WorldError::Invalid("a world needs at least one customer and one month".into()));
    }
    let staging = crate::sink::staging::Staging::beside(out).map_err(|e| WorldError::io(out, e))?;
    let truth = generate_into(spec, staging.path())?;
    staging.publish().map_err(|e| WorldError::io(out, e))?;
    Ok(truth)
}

fn generate_into(spec: &WorldSpec, dir: &Path) -> Result<Truth, WorldError> {
    let timeline = Timeline::new(spec.as_of, spec.months);
    let plan = plan::plan(spec.seed, spec.customers, &timeline);
    let currencies: Vec<Currency> = {
        let mut c: Vec<Currency> = plan.customers.iter().map(|c| c.currency).collect();
        c.sort();
        c.dedup();
        c
    };

    let mut ids = Dice::new(spec.seed, "invoice-ids");
    let base = ids.int(100_000, 899_999) * 100;
    let mut slots = Vec::new();
    for (i, month) in timeline.billed.iter().enumerate() {
        let number = |offset: i64, j: usize| format!("G{:09}", base + offset + (i as i64) * 16 + j as i64);
        let invoice_ids = currencies.iter().enumerate().map(|(j, c)| (*c, number(0, j))).collect();
        let legacy = format!("D{:04}{}", 2005 + i, ids.token(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 5));
        let mut note_dice = Dice::new(spec.seed, &format!("documents-{}", month.label()));
        let amendments = documents::plan_month(
            &spec.notes,
            &mut note_dice,
            i == 0,
            &invoice_ids,
            |j| number(50_000_000, j),
            |j| number(60_000_000, j),
        );
        slots.push(Slot {
            month: *month,
            unbilled: None,
            cutoff: month.last_day(),
            invoice_ids,
            legacy_invoice_id: Some(legacy),
            showcase: i == 0,
            amendments,
        });
    }
    if let Some(previous) = timeline.previous_unbilled {
        slots.push(unbilled_slot(previous, Period::Previous, previous.last_day()));
    }
    slots.push(unbilled_slot(timeline.current, Period::Current, timeline.last_usage_day()));

    fs::create_dir_all(dir).map_err(|e| WorldError::io(dir, e))?;
    let outputs: Vec<SlotOutput> =
        slots.par_iter().map(|slot| generate_slot(&plan, spec, slot, dir)).collect::<Result<_, _>>()?;

    let mut tally = Tally::default();
    let mut invoices = Vec::new();
    let mut unbilled = Vec::new();
    let mut anomalies = Vec::new();
    let mut restated = Vec::new();
    for o in outputs {
        tally.merge(o.tally);
        invoices.extend(o.invoices);
        unbilled.extend(o.unbilled);
        anomalies.extend(o.anomalies);
        restated.extend(o.restated);
    }
    restated.sort_by_key(|r: &truth::Restatement| r.revision);
    write_dimensions(&plan, dir, &mut tally)?;
    let summaries = write_invoices(&plan, &mut invoices, dir, &mut tally)?;
    // Unbilled periods without any data still exist as (empty) endpoints.
    for u in &unbilled {
        let folder = dir.join("unbilled").join(u.currency.code()).join(u.period);
        fs::create_dir_all(&folder).map_err(|e| WorldError::io(&folder, e))?;
    }

    let mut generator = BTreeMap::new();
    generator.insert("seed", spec.seed.to_string());
    generator.insert("customers", spec.customers.to_string());
    generator.insert("months", spec.months.to_string());
    generator.insert("usage_rows_per_month", spec.usage_rows_per_month.to_string());
    generator.insert("as_of", spec.as_of.to_string());
    generator.insert("anomalies", spec.anomalies.describe());
    generator.insert("quirk_rate", Decimal::new(i64::from(spec.quirk_rate.0), 6).normalize().to_string());
    if spec.revision > 0 {
        generator.insert("revision", spec.revision.to_string());
    }
    generator.insert("documents", spec.notes.describe());
    let truth = Truth {
        seed: spec.seed,
        partner_tenant_id: plan.partner.tenant_id.clone(),
        as_of: spec.as_of.to_string(),
        generator,
        datasets: tally.counts.clone(),
        control_totals: tally.totals.clone(),
        served_twice_rows: tally.served_twice_rows.clone(),
        served_twice_totals: tally.served_twice.clone(),
        invoices,
        summaries,
        unbilled,
        anomalies,
        restated,
    };
    let world = serde_json::json!({
        "format": WORLD_FORMAT,
        "seed": spec.seed,
        "as_of": spec.as_of.to_string(),
        "partner": { "tenant_id": plan.partner.tenant_id, "name": plan.partner.name, "mpn_id": plan.partner.mpn_id },
        "currencies": currencies.iter().map(|c| c.code()).collect::<Vec<_>>(),
        "billed_months": timeline.billed.iter().map(|m| m.label()).collect::<Vec<_>>(),
        "unbilled": {
            "previous": timeline.previous_unbilled.map(Month::label),
            "current": timeline.current.label(),
        },
    });
    let pretty = |v: &dyn erased::Json| -> Result<Vec<u8>, WorldError> {
        let mut bytes = v.to_pretty().map_err(|_| WorldError::Internal("json"))?;
        bytes.push(b'\n');
        Ok(bytes)
    };
    write_file(&dir.join("rates.csv"), rate_table(spec.seed, &currencies, &timeline).as_bytes())?;
    let mut month = timeline.billed.first().copied().unwrap_or(timeline.current).prev();
    while month <= timeline.current {
        let name = format!("{:04}{:02}.csv", month.year, month.month);
        write_file(&dir.join("fxrates").join(name), partner_center_rates(spec.seed, month).as_bytes())?;
        month = month.next();
    }
    write_file(&dir.join("world.json"), &pretty(&world)?)?;
    write_file(&dir.join("truth.json"), &pretty(&truth)?)?;
    Ok(truth)
}

mod erased {
    /// Pretty JSON of anything serialisable, behind one object-safe trait.
    pub trait Json {
        fn to_pretty(&self) -> Result<Vec<u8>, serde_json::Error>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_pretty(&self) -> Result<Vec<u8>, serde_json::Error> {
            serde_json::to_vec_pretty(self)
        }
    }
}

/// The rate table a finance team would supply for this world (`date,from,to,rate`): every day
/// of its months, every pair of its currencies, each month at the cross rate of the USD rates
/// its line items carry, to ten decimals.
fn rate_table(seed: u64, currencies: &[Currency], timeline: &Timeline) -> String {
    let mut text = String::from("date,from,to,rate\n");
    let first = timeline.billed.first().copied().unwrap_or(timeline.current);
    let mut month = first;
    while month <= timeline.current {
        let usd: Vec<(Currency, Decimal)> =
            currencies.iter().map(|c| (*c, billing::exchange_rate(seed, *c, month).0)).collect();
        for day in 1..=month.days() {
            let date = month.day(day);
            for (from, from_rate) in &usd {
                for (to, to_rate) in &usd {
                    if from != to {
                        let rate = (*to_rate / *from_rate).round_dp(10).normalize();
                        text.push_str(&format!("{date},{from},{to},{rate}\n"));
                    }
                }
            }
        }
        month = month.next();
    }
    text
}

/// What Partner Center's foreign exchange rates file says for a month: every quoted, one line
/// per currency its catalogue prices or bills in, the rate in US dollars per one unit of the
/// currency, to 17 fractional digits as Microsoft's example has it. It is the reciprocal of the
/// month's USD → currency rate the world's line items carry as `pcToBCExchangeRate`.
fn partner_center_rates(seed: u64, month: Month) -> String {
    let label = format!("{:04}{:02}", month.year, month.month);
    let mut text = String::from("\"CurrencyCode\",\"USDPerUnit\",\"Month\"\r\n");
    for currency in Currency::ALL {
        let per_usd = billing::exchange_rate(seed, currency, month).0;
        let usd_per_unit = (Decimal::ONE / per_usd).round_dp(17).normalize();
        text.push_str(&format!("\"{}\",\"{usd_per_unit}\",\"{label}\"\r\n", currency.code()));
    }
    text
}

fn unbilled_slot(month: Month, period: Period, cutoff: NaiveDate) -> Slot {
    Slot {
        month,
        unbilled: Some(period),
        cutoff,
        invoice_ids: BTreeMap::new(),
        legacy_invoice_id: None,
        showcase: false,
        amendments: BTreeMap::new(),
    }
}

fn write_dimensions(plan: &plan::Plan, dir: &Path, tally: &mut Tally) -> Result<(), WorldError> {
    write_file(&dir.join("customers.jsonl"), jsonl(&plan.customers, dims::write_customer).as_bytes())?;
    for (index, customer) in plan.customers.iter().enumerate() {
        tally.row(dataset::CUSTOMERS);
        let folder = dir.join("customers").join(&customer.id);
        let orders: Vec<_> = plan.orders.iter().filter(|o| o.customer == index).collect();
        let subscriptions: Vec<_> = plan.subscriptions.iter().filter(|s| s.customer == index).collect();
        let entitlements: Vec<_> = plan.entitlements.iter().filter(|e| e.customer == index).collect();
        write_file(&folder.join("orders.jsonl"), jsonl(&orders, |out, o| dims::write_order(out, o, plan)).as_bytes())?;
        write_file(
            &folder.join("subscriptions.jsonl"),
            jsonl(&subscriptions, |out, s| dims::write_subscription(out, s, plan)).as_bytes(),
        )?;
        write_file(
            &folder.join("entitlements.jsonl"),
            jsonl(&entitlements, |out, e| dims::write_entitlement(out, e, plan)).as_bytes(),
        )?;
        for order in &orders {
            tally.row(dataset::ORDERS);
            for _ in &order.lines {
                tally.row(dataset::ORDER_LINE_ITEMS);
            }
        }
        for _ in &subscriptions {
            tally.row(dataset::SUBSCRIPTIONS);
        }
        for _ in &entitlements {
            tally.row(dataset::ENTITLEMENTS);
        }
    }
    Ok(())
}

/// Writes the invoice list (every document: invoices, notes, rebills), each document's
/// statement and the summaries, and fills in each document's payment. A payment is written as
/// Microsoft does, negative (spec §17.1): documents of the latest billed month are unpaid, those
/// of the month before paid in full or, every other currency, half; older ones paid. Notes are
/// never paid (they reduce what is owed), nor is a voided invoice. Each summary's balance is the
/// unpaid total, Σ `totalCharges + paidAmount` of its currency's documents.
fn write_invoices(
    plan: &plan::Plan,
    invoices: &mut [truth::InvoiceTruth],
    dir: &Path,
    tally: &mut Tally,
) -> Result<Vec<SummaryTruth>, WorldError> {
    let months = &plan.timeline.billed;
    let issue_time = NaiveTime::from_hms_nano_opt(10, 12, 33, 123_456_700).unwrap_or(NaiveTime::MIN);
    let month_of = |label: &str| months.iter().position(|m| m.label() == label);
    let currencies: Vec<Currency> = {
        let mut c: Vec<Currency> = invoices.iter().map(|i| i.currency).collect();
        c.sort();
        c.dedup();
        c
    };
    let mut docs: Vec<(usize, Month, NaiveDateTime)> = Vec::new();
    for (index, inv) in invoices.iter_mut().enumerate() {
        let Some(at) = month_of(&inv.billing_period) else { continue };
        let month = months[at];
        let age = months.len() - 1 - at;
        let payable = inv.document_type == "invoice" && inv.status == "active" && inv.stated_total > Decimal::ZERO;
        let half = currencies.iter().position(|c| *c == inv.currency).unwrap_or(0) % 2 == 1;
        let paid = match (payable, age) {
            (false, _) | (true, 0) => Decimal::ZERO,
            (true, 1) if half && inv.commerce != "legacy" => {
                -inv.currency.fixed(inv.currency.truncate_minor(inv.stated_total / Decimal::TWO))
            }
            (true, _) => -inv.stated_total,
        };
        inv.paid_amount = paid;
        inv.owed = inv.stated_total + paid;
        let days_after = match (inv.amends_of.is_some(), inv.rebill_of.is_some()) {
            (true, _) => 10,
            (_, true) => 12,
            _ => 0,
        };
        let date = timeline::add_days(timeline::Timeline::invoice_date(month), days_after).and_time(issue_time);
        docs.push((index, month, date));
        tally.row(dataset::INVOICES);
        tally.add(dataset::INVOICES, inv.currency, "totalCharges", inv.stated_total);
        tally.add(dataset::INVOICES, inv.currency, "paidAmount", paid);
        let title = match inv.document_type {
            "credit_note" => "credit note",
            "adjustment_note" => "adjustment note",
            "void_note" => "void note",
            _ => "invoice",
        };
        let mut text = vec![
            format!("Microsoft {title} {}", inv.invoice_id),
            format!("Billed to: {}", plan.partner.name),
            format!("Billing period: {} to {}", month.first_day(), month.last_day()),
            format!("Total charges ({}): {}", inv.currency, inv.stated_total),
        ];
        if let Some(amended) = &inv.amends_of {
            text.push(format!("Amends invoice {amended}"));
        }
        write_file(&dir.join("invoices").join(&inv.invoice_id).join("statement.pdf"), &pdf::statement(&text))?;
    }
    // Newest first, as the invoice list is served.
    docs.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| invoices[a.0].invoice_id.cmp(&invoices[b.0].invoice_id)));
    let date_of: BTreeMap<&str, NaiveDateTime> =
        docs.iter().map(|(i, _, date)| (invoices[*i].invoice_id.as_str(), *date)).collect();
    let mut text = String::new();
    for (index, month, date) in &docs {
        let inv = &invoices[*index];
        let amendments: Vec<AmendmentDoc<'_>> = inv
            .amendments
            .iter()
            .filter_map(|id| invoices.iter().find(|d| &d.invoice_id == id))
            .map(|note| AmendmentDoc {
                id: &note.invoice_id,
                date: date_of.get(note.invoice_id.as_str()).copied().unwrap_or(*date),
                total: note.stated_total,
                paid: note.paid_amount,
                currency: note.currency,
                document_type: note.document_type,
                amends_of: &inv.invoice_id,
            })
            .collect();
        dims::write_invoice(
            &mut text,
            &InvoiceDoc {
                id: &inv.invoice_id,
                legacy: inv.commerce == "legacy",
                date: *date,
                period_start: month.first_day(),
                period_end: month.last_day(),
                total: inv.stated_total,
                paid: inv.paid_amount,
                currency: inv.currency,
                document_type: inv.document_type,
                status: inv.status,
                amends_of: inv.amends_of.as_deref(),
                amendments,
            },
        );
        text.push('\n');
    }
    write_file(&dir.join("invoices.jsonl"), text.as_bytes())?;

    let mut summaries = String::new();
    let mut truths = Vec::new();
    let accounting = plan.timeline.as_of.and_time(NaiveTime::MIN);
    for currency in currencies {
        let mine: Vec<_> = docs.iter().filter(|d| invoices[d.0].currency == currency).collect();
        let dates: Vec<_> = mine.iter().map(|d| d.2).collect();
        let owed = |legacy: bool| -> Decimal {
            mine.iter().map(|d| &invoices[d.0]).filter(|i| (i.commerce == "legacy") == legacy).map(|i| i.owed).sum()
        };
        let last_paid = mine.iter().filter(|d| invoices[d.0].paid_amount != Decimal::ZERO).max_by_key(|d| d.2);
        let mut balances = vec![("OneTime", owed(false))];
        if mine.iter().any(|d| invoices[d.0].commerce == "legacy") {
            balances.insert(0, ("Recurring", owed(true)));
        }
        let balance = balances.iter().map(|(_, b)| *b).sum();
        dims::write_summary(
            &mut summaries,
            &SummaryDoc {
                currency,
                balance: balances,
                first_invoice: dates.iter().min().copied().unwrap_or(accounting),
                latest_invoice: dates.iter().max().copied().unwrap_or(accounting),
                // The payment received, as an amount.
                last_payment: last_paid
                    .map(|d| (timeline::add_days(d.2.date(), 20).and_time(NaiveTime::MIN), -invoices[d.0].paid_amount)),
                accounting_date: accounting,
            },
        );
        summaries.push('\n');
        tally.row(dataset::INVOICE_SUMMARIES);
        tally.add(dataset::INVOICE_SUMMARIES, currency, "balanceAmount", balance);
        truths.push(SummaryTruth { currency, balance, documents: mine.len() as u64, tie_out: "ok" });
    }
    let mut f = fs::File::create(dir.join("invoice_summaries.jsonl")).map_err(|e| WorldError::io(dir, e))?;
    f.write_all(summaries.as_bytes()).map_err(|e| WorldError::io(dir, e))?;
    Ok(truths)
}
