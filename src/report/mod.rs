//! `report.html`: one self-contained page per snapshot for the people who read it rather than
//! query it. The tie-out per invoice and summary with the reasons, the FOCUS tie-outs (those that
//! are not ok listed), the exceptions by reason with
//! their money, each customer's charges by month in the reporting currency (a table and a
//! chart), and the invoices restated since the previous snapshot.
//!
//! In: a written snapshot folder (its manifest and the Parquet files it lists), the invoices
//! restated since the previous snapshot. Out: the page's bytes. No script, no stylesheet or font
//! from elsewhere, no clock, not even the snapshot's name: the same data gives the same page. Figures are shown rounded to
//! two decimals (half to even) for reading; each cell's title holds the exact value.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use crate::sink::manifest::Manifest;
use crate::sink::read::for_each_row;
use crate::tabular::text::fixed_point;
use crate::tabular::{Cell, Dataset, DatasetSchema};

/// The page's name inside a snapshot.
pub const REPORT_FILE: &str = "report.html";

/// One row of the `reconciliation` dataset, as the page shows it.
struct TieOut {
    id: String,
    kind: String,
    currency: String,
    stated: Option<i128>,
    lines_total: Option<i128>,
    difference: Option<i128>,
    status: String,
    classification: String,
}

/// Σ of exceptions of one reason and currency.
#[derive(Default)]
struct AtRisk {
    lines: u64,
    amount: i128,
}

/// Everything the page shows, read from the snapshot.
struct Facts {
    tie_outs: Vec<TieOut>,
    /// The FOCUS tie-outs (kinds `focus_invoice`, `focus_currency`), shown apart.
    focus: Vec<TieOut>,
    /// Scale of the reconciliation amounts.
    tie_out_scale: u32,
    at_risk: BTreeMap<(String, String), AtRisk>,
    at_risk_scale: u32,
    /// (customer name or key, month) → Σ reporting amount; and its scale and currency.
    by_customer: BTreeMap<String, BTreeMap<String, i128>>,
    months: BTreeSet<String>,
    reporting_scale: u32,
    reporting_currency: Option<String>,
}

/// Why the page could not be made.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct ReportError {
    /// The file that could not be read or written.
    pub path: String,
    /// The cause.
    pub source: std::io::Error,
}

/// Writes [`REPORT_FILE`] into the snapshot folder `root`, whose manifest is `manifest`.
pub fn write(root: &Path, manifest: &Manifest, restated: &[String]) -> Result<(), ReportError> {
    let facts = read_facts(root, manifest)?;
    let page = render(manifest, &facts, restated);
    let path = root.join(REPORT_FILE);
    std::fs::write(&path, page).map_err(|source| ReportError { path: path.display().to_string(), source })
}

/// The Parquet files the manifest lists for a dataset, with the month of their partition.
fn parquet_files(manifest: &Manifest, dataset: Dataset) -> impl Iterator<Item = (&str, Option<&str>)> {
    let prefix = format!("{}/", dataset.name());
    manifest.files.iter().filter(move |f| f.path.starts_with(&prefix) && f.path.ends_with(".parquet")).map(|f| {
        let month = f.path.split('/').find_map(|part| part.strip_prefix("period="));
        (f.path.as_str(), month)
    })
}

/// Reads every row of a dataset's files: `each(row, month of its partition)`.
fn rows_of(
    root: &Path,
    manifest: &Manifest,
    dataset: Dataset,
    mut each: impl FnMut(&DatasetSchema, &[Cell], Option<&str>),
) -> Result<(), ReportError> {
    let Some(schema) = dataset.schema() else { return Ok(()) };
    for (path, month) in parquet_files(manifest, dataset) {
        let full = root.join(path);
        for_each_row(&full, schema, |row| each(schema, &row, month))
            .map_err(|source| ReportError { path: full.display().to_string(), source })?;
    }
    Ok(())
}

fn text(schema: &DatasetSchema, row: &[Cell], column: &str) -> Option<String> {
    match schema.column(column).map(|i| &row[i]) {
        Some(Cell::Str(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn decimal(schema: &DatasetSchema, row: &[Cell], column: &str) -> Option<i128> {
    match schema.column(column).map(|i| &row[i]) {
        Some(Cell::Dec(d)) => Some(*d),
        _ => None,
    }
}

fn scale_of(dataset: Dataset, column: &str) -> u32 {
    dataset.schema().and_then(|s| s.column(column).map(|i| s.columns[i].ty)).map_or(0, |ty| ty.scale())
}

fn read_facts(root: &Path, manifest: &Manifest) -> Result<Facts, ReportError> {
    let (mut tie_outs, mut focus) = (Vec::new(), Vec::new());
    rows_of(root, manifest, Dataset::Reconciliation, |s, row, _| {
        let kind = text(s, row, "kind").unwrap_or_default();
        let focus_check = crate::reconcile::CheckGroup::of_kind(&kind) == crate::reconcile::CheckGroup::Focus;
        let into = if focus_check { &mut focus } else { &mut tie_outs };
        into.push(TieOut {
            id: text(s, row, "invoice_id").unwrap_or_default(),
            kind,
            currency: text(s, row, "billing_currency").unwrap_or_default(),
            stated: decimal(s, row, "stated_total"),
            lines_total: decimal(s, row, "lines_total"),
            difference: decimal(s, row, "difference"),
            status: text(s, row, "status").unwrap_or_default(),
            classification: text(s, row, "classification").unwrap_or_default(),
        });
    })?;
    let mut at_risk: BTreeMap<(String, String), AtRisk> = BTreeMap::new();
    rows_of(root, manifest, Dataset::MatchExceptions, |s, row, _| {
        let key = (text(s, row, "reason").unwrap_or_default(), text(s, row, "billing_currency").unwrap_or_default());
        let sum = at_risk.entry(key).or_default();
        sum.lines += 1;
        sum.amount += decimal(s, row, "amount").unwrap_or(0);
    })?;
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    rows_of(root, manifest, Dataset::Customers, |s, row, _| {
        if let (Some(key), Some(name)) = (text(s, row, "customer_key"), text(s, row, "company_name")) {
            names.insert(key, name);
        }
    })?;
    let mut by_customer: BTreeMap<String, BTreeMap<String, i128>> = BTreeMap::new();
    let mut months = BTreeSet::new();
    let mut reporting_currency = None;
    rows_of(root, manifest, Dataset::BilledRecon, |s, row, month| {
        let duplicate = s.column("is_duplicate").is_some_and(|i| row[i] == Cell::Bool(true));
        let (Some(amount), Some(month), false) = (decimal(s, row, "total_for_customer_reporting"), month, duplicate)
        else {
            return;
        };
        let key = text(s, row, "customer_key").unwrap_or_else(|| "(no customer)".into());
        let customer = names.get(&key).cloned().unwrap_or(key);
        *by_customer.entry(customer).or_default().entry(month.to_owned()).or_default() += amount;
        months.insert(month.to_owned());
        if reporting_currency.is_none() {
            reporting_currency = text(s, row, "reporting_currency");
        }
    })?;
    Ok(Facts {
        tie_outs,
        focus,
        tie_out_scale: scale_of(Dataset::Reconciliation, "difference"),
        at_risk,
        at_risk_scale: scale_of(Dataset::MatchExceptions, "amount"),
        by_customer,
        months,
        reporting_scale: scale_of(Dataset::BilledRecon, "total_for_customer_reporting"),
        reporting_currency,
    })
}

/// `unscaled` at `scale`, rounded half to even to two decimals, with thousands separated.
fn shown(unscaled: i128, scale: u32) -> String {
    let cents = if scale <= 2 {
        unscaled * 10i128.pow(2 - scale)
    } else {
        let unit = 10i128.pow(scale - 2);
        let (q, r) = (unscaled.div_euclid(unit), unscaled.rem_euclid(unit));
        match (2 * r).cmp(&unit) {
            std::cmp::Ordering::Less => q,
            std::cmp::Ordering::Greater => q + 1,
            std::cmp::Ordering::Equal => q + (q & 1),
        }
    };
    let digits = cents.unsigned_abs().to_string();
    let digits = format!("{digits:0>3}");
    let (whole, fraction) = digits.split_at(digits.len() - 2);
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{}{grouped}.{fraction}", if cents < 0 { "−" } else { "" })
}

/// A table cell of an amount: rounded to read, exact in its title.
fn amount_cell(value: Option<i128>, scale: u32) -> String {
    match value {
        Some(v) => format!("<td class=\"n\" title=\"{}\">{}</td>", fixed_point(v, scale), shown(v, scale)),
        None => "<td class=\"n\">—</td>".into(),
    }
}

/// Text made safe for HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#1b1b1b}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}\
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:3px 8px}\
th{background:#f2f2f2;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}\
tr.mismatch td{background:#fde2e1}.big{font-size:1.3em;font-weight:600}\
.ok{color:#186a3b}.bad{color:#b03a2e}figure{margin:1em 0}figcaption{color:#555}";

/// Colours of the chart's customers, in turn.
const PALETTE: [&str; 12] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
    "#1b9e77", "#7570b3",
];

fn render(manifest: &Manifest, facts: &Facts, restated: &[String]) -> String {
    let p = &manifest.provenance;
    let mismatches: Vec<&TieOut> = facts.tie_outs.iter().filter(|t| t.status == "mismatch").collect();
    let periods = match (facts.months.first(), facts.months.last()) {
        (Some(first), Some(last)) if first != last => format!("{first} to {last}"),
        (Some(only), _) => only.clone(),
        _ => "no billed period".to_owned(),
    };
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>pcrecon: billing of {tenant}, {periods}</title>\
<style>{STYLE}</style></head><body>\n<h1>Billing of {tenant}, {periods}</h1>\n<p>pcrecon {version} · reporting currency {reporting}</p>\n",
        periods = escape(&periods),
        tenant = escape(&p.tenant_id),
        version = escape(&p.pcrecon_version),
        reporting = escape(p.reporting_currency.as_deref().unwrap_or("none")),
    );
    let (class, verdict) = match mismatches.len() {
        0 => ("ok", "Every document ties out.".to_owned()),
        1 => ("bad", "1 mismatch".to_owned()),
        n => ("bad", format!("{n} mismatches")),
    };
    let _ = writeln!(
        html,
        "<p class=\"big {class}\" id=\"verdict\">{verdict}</p><p>{} checks: {}.</p>",
        facts.tie_outs.len(),
        status_counts(&facts.tie_outs)
    );

    html.push_str("<h2>Tie-out</h2>\n<table id=\"tie-out\"><tr><th>document</th><th>check</th><th>currency</th><th>stated</th><th>lines</th><th>difference</th><th>status</th><th>reason</th></tr>\n");
    let mut ordered: Vec<&TieOut> = facts.tie_outs.iter().collect();
    // Mismatches first, then as the tie-out lists them.
    ordered.sort_by_key(|t| t.status != "mismatch");
    for t in ordered {
        let _ = writeln!(
            html,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td>{}{}{}<td>{}</td><td>{}</td></tr>",
            if t.status == "mismatch" { "mismatch" } else { "" },
            escape(&t.id),
            escape(&t.kind),
            escape(&t.currency),
            amount_cell(t.stated, facts.tie_out_scale),
            amount_cell(t.lines_total, facts.tie_out_scale),
            amount_cell(t.difference, facts.tie_out_scale),
            escape(&t.status),
            escape(&t.classification),
        );
    }
    html.push_str("</table>\n");

    html.push_str("<h2>FOCUS</h2>\n");
    let focus_off: Vec<&TieOut> = facts.focus.iter().filter(|t| t.status != "ok").collect();
    let _ = writeln!(
        html,
        "<p id=\"focus\">Σ BilledCost of the focus rows against each document's total and each currency's charge lines: {} checks, {}.</p>",
        facts.focus.len(),
        status_counts(&facts.focus)
    );
    if !focus_off.is_empty() {
        html.push_str("<table id=\"focus-tie-out\"><tr><th>document</th><th>check</th><th>currency</th><th>stated</th><th>BilledCost</th><th>difference</th><th>status</th><th>reason</th></tr>\n");
        for t in focus_off {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td>{}{}{}<td>{}</td><td>{}</td></tr>",
                escape(&t.id),
                escape(&t.kind),
                escape(&t.currency),
                amount_cell(t.stated, facts.tie_out_scale),
                amount_cell(t.lines_total, facts.tie_out_scale),
                amount_cell(t.difference, facts.tie_out_scale),
                escape(&t.status),
                escape(&t.classification),
            );
        }
        html.push_str("</table>\n");
    }

    html.push_str("<h2>Exceptions by reason</h2>\n");
    if facts.at_risk.is_empty() {
        html.push_str("<p>Every line matched what was sold.</p>\n");
    } else {
        html.push_str(
            "<table id=\"exceptions\"><tr><th>reason</th><th>currency</th><th>lines</th><th>money at risk</th></tr>\n",
        );
        for ((reason, currency), sum) in &facts.at_risk {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td>{}</tr>",
                escape(reason),
                escape(currency),
                sum.lines,
                amount_cell(Some(sum.amount), facts.at_risk_scale)
            );
        }
        html.push_str("</table>\n");
    }

    let currency = facts.reporting_currency.as_deref().unwrap_or("billing currency");
    let _ = writeln!(html, "<h2>Charges per customer and month ({})</h2>", escape(currency));
    if facts.by_customer.is_empty() {
        html.push_str("<p>No billed charges converted to a reporting currency.</p>\n");
    } else {
        html.push_str(&chart(facts));
        html.push_str("<table id=\"customers\"><tr><th>customer</th>");
        for month in &facts.months {
            let _ = write!(html, "<th>{}</th>", escape(month));
        }
        html.push_str("</tr>\n");
        for (customer, by_month) in &facts.by_customer {
            let _ = write!(html, "<tr><td>{}</td>", escape(customer));
            for month in &facts.months {
                html.push_str(&amount_cell(by_month.get(month).copied(), facts.reporting_scale));
            }
            html.push_str("</tr>\n");
        }
        html.push_str("</table>\n");
    }

    html.push_str("<h2>Restated since the previous snapshot</h2>\n");
    if restated.is_empty() {
        html.push_str("<p id=\"restated\">No invoice was restated.</p>\n");
    } else {
        let list: Vec<String> = restated.iter().map(|i| format!("<li>{}</li>", escape(i))).collect();
        let _ = writeln!(html, "<ul id=\"restated\">{}</ul>", list.concat());
    }
    html.push_str("</body></html>\n");
    html
}

fn status_counts(tie_outs: &[TieOut]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for t in tie_outs {
        *counts.entry(t.status.as_str()).or_default() += 1;
    }
    counts.iter().map(|(s, n)| format!("{n} {}", escape(s))).collect::<Vec<_>>().join(", ")
}

/// A bar chart, as inline SVG: per month, one bar per customer (below the axis for credits).
fn chart(facts: &Facts) -> String {
    let customers: Vec<&String> = facts.by_customer.keys().collect();
    let (bar, gap, height, top) = (10i64, 24i64, 220i64, 10i64);
    let values = facts.by_customer.values().flat_map(|m| m.values().copied());
    let (max, min) = values.fold((0i128, 0i128), |(hi, lo), v| (hi.max(v), lo.min(v)));
    let span = (max - min).max(1);
    let axis = top + i64::try_from(max * i128::from(height) / span).unwrap_or(0);
    let group = bar * customers.len() as i64;
    let width = 60 + (group + gap) * facts.months.len() as i64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" role=\"img\" aria-label=\"charges per customer and month\">",
        height + top + 30
    );
    let _ = write!(svg, "<line x1=\"50\" y1=\"{axis}\" x2=\"{width}\" y2=\"{axis}\" stroke=\"#333\"/>");
    for (m, month) in facts.months.iter().enumerate() {
        let x0 = 60 + (group + gap) * m as i64;
        for (c, customer) in customers.iter().enumerate() {
            let value = facts.by_customer[*customer].get(month).copied().unwrap_or(0);
            let size = i64::try_from(value.abs() * i128::from(height) / span).unwrap_or(0);
            let y = if value >= 0 { axis - size } else { axis };
            let _ = write!(
                svg,
                "<rect x=\"{}\" y=\"{y}\" width=\"{}\" height=\"{size}\" fill=\"{}\"><title>{} {}: {}</title></rect>",
                x0 + bar * c as i64,
                bar - 1,
                PALETTE[c % PALETTE.len()],
                escape(customer),
                escape(month),
                shown(value, facts.reporting_scale)
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">{}</text>",
            x0 + group / 2,
            height + top + 22,
            escape(month)
        );
    }
    svg.push_str("</svg><figcaption>");
    for (c, customer) in customers.iter().enumerate() {
        let _ = write!(svg, "<span style=\"color:{}\">■</span> {} ", PALETTE[c % PALETTE.len()], escape(customer));
    }
    svg.push_str("</figcaption></figure>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_shown_rounded_half_to_even_with_thousands_apart() {
        assert_eq!(shown(2_286_824_000, 5), "22,868.24");
        assert_eq!(shown(125, 3), "0.12");
        assert_eq!(shown(135, 3), "0.14");
        assert_eq!(shown(-77_346, 2), "−773.46");
        assert_eq!(shown(5, 0), "5.00");
        assert_eq!(shown(1_000_000_000, 2), "10,000,000.00");
    }

    #[test]
    fn text_cannot_become_markup() {
        assert_eq!(escape("<b>\"R&D\"</b>"), "&lt;b&gt;&quot;R&amp;D&quot;&lt;/b&gt;");
    }
}
