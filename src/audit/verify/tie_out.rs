//! The tie-out recomputed from a snapshot's own files by the pipeline's rules
//! ([`crate::reconcile`]): the distinct billed lines of each invoice observed into a ledger
//! (by their `invoice_id`), the documents and summaries read from `invoices` and
//! `invoice_summaries`, the FOCUS checks from the `focus` files and the charge lines, the tolerance and the run's filter from the manifest's provenance. Every
//! recomputed check must be a published `reconciliation` row, cell for cell, and every published
//! row a recomputed check: an edited line amount, stated total or status shows even when the
//! manifest was re-hashed to match. What no file can prove — which sequences the v2 export could
//! not serve yet, and which usage sequences were fetched but empty — is taken from the published
//! `export` and `usage` rows.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use rust_decimal::Decimal;

use super::{Problem, parquet_dataset};
use crate::focus::InvoiceSums;
use crate::reconcile::{CheckGroup, FocusCurrency, Ledger, Observer, Rules, focus_checks, tie_out};
use crate::sink::manifest::Manifest;
use crate::sink::read::for_each_row;
use crate::tabular::text::cell_text;
use crate::tabular::{Cell, Dataset, DatasetSchema};

/// The line datasets the tie-out sums: invoice totals, and daily rated usage.
const BILLED: [Dataset; 4] = [Dataset::BilledRecon, Dataset::LegacyOffice, Dataset::LegacyAzure, Dataset::BilledUsage];

/// The datasets the recomputation reads: every one must have been read back whole.
pub(super) const READ: [Dataset; 9] = [
    Dataset::Reconciliation,
    Dataset::Invoices,
    Dataset::InvoiceSummaries,
    Dataset::BilledRecon,
    Dataset::UnbilledRecon,
    Dataset::LegacyOffice,
    Dataset::LegacyAzure,
    Dataset::BilledUsage,
    Dataset::Focus,
];

/// The problems of the published tie-out against the one recomputed from the files, or why it
/// could not be recomputed.
pub(super) fn recheck(snapshot: &Path, manifest: &Manifest) -> Result<Vec<Problem>, String> {
    let rows_of = |dataset: Dataset| -> Result<Vec<Vec<Cell>>, String> {
        let schema = schema(dataset)?;
        let mut rows = Vec::new();
        for_each_file(snapshot, manifest, dataset, |path| for_each_row(path, schema, |row| rows.push(row)))?;
        Ok(rows)
    };
    let published = rows_of(Dataset::Reconciliation)?;
    let recon = schema(Dataset::Reconciliation)?;
    let at = |name: &str| recon.column(name).ok_or_else(|| format!("reconciliation has no {name}"));
    let (id, kind, related, detail) = (at("invoice_id")?, at("kind")?, at("related_documents")?, at("detail")?);

    let mut ledger = Ledger::default();
    for row in &published {
        match (text(&row[kind]), text(&row[id])) {
            (Some("export"), Some(scope)) => {
                if let Some(dataset) = text(&row[related]).and_then(Dataset::from_name) {
                    ledger.not_ready(dataset, scope, text(&row[detail]).unwrap_or_default());
                }
            }
            // A usage sequence served empty publishes no file, but was fetched: its check sums
            // nothing, and any line found in the files is still added to it.
            (Some("usage"), Some(invoice)) => {
                ledger.sums_mut(Dataset::BilledUsage, invoice);
            }
            _ => {}
        }
    }
    for dataset in BILLED {
        let schema = schema(dataset)?;
        let observer = Observer::of(schema);
        let (Some(invoice), Some(duplicate)) = (schema.column("invoice_id"), schema.column("is_duplicate")) else {
            return Err(format!("{dataset} has no invoice_id or is_duplicate"));
        };
        for_each_file(snapshot, manifest, dataset, |path| {
            for_each_row(path, schema, |row| {
                if let (Some(scope), false) = (text(&row[invoice]), matches!(row[duplicate], Cell::Bool(true))) {
                    observer.observe(ledger.sums_mut(dataset, scope), &row);
                }
            })
        })?;
    }
    let rules = rules(manifest)?;
    let (invoices, summaries) = (rows_of(Dataset::Invoices)?, rows_of(Dataset::InvoiceSummaries)?);
    let mut checks = tie_out(&ledger, invoices.iter(), summaries.iter(), &rules);
    // A snapshot written before the FOCUS tie-outs has none to recompute.
    if manifest.checks.contains_key(CheckGroup::Focus.name()) {
        let (by_invoice, by_currency) = focus_sums(snapshot, manifest)?;
        checks.extend(focus_checks(&ledger, invoices.iter(), &by_invoice, &by_currency, &rules));
    }
    let recomputed: Vec<Vec<Cell>> = checks.iter().map(|c| c.cells()).collect();
    Ok(compare(recon, &published, &recomputed, (id, kind)))
}

/// Σ `BilledCost` of the `focus` files per `InvoiceId` (with its currency and rows), and per
/// billing currency beside Σ of the distinct charge lines it is made of.
fn focus_sums(snapshot: &Path, manifest: &Manifest) -> Result<(InvoiceSums, BTreeMap<String, FocusCurrency>), String> {
    let mut by_invoice = InvoiceSums::new();
    let mut by_currency: BTreeMap<String, FocusCurrency> = BTreeMap::new();
    let mut overflow = false;
    let mut add = |sum: &mut i128, value: i128| match sum.checked_add(value) {
        Some(v) => *sum = v,
        None => overflow = true,
    };
    let focus = schema(Dataset::Focus)?;
    let at = |name: &str| focus.column(name).ok_or_else(|| format!("focus has no {name}"));
    let (invoice, currency, cost) = (at("InvoiceId")?, at("BillingCurrency")?, at("BilledCost")?);
    for_each_file(snapshot, manifest, Dataset::Focus, |path| {
        for_each_row(path, focus, |row| {
            let (Some(ccy), Cell::Dec(amount)) = (text(&row[currency]), &row[cost]) else { return };
            let ccy = ccy.to_uppercase();
            add(&mut by_currency.entry(ccy.clone()).or_default().focus, *amount);
            if let Some(id) = text(&row[invoice]) {
                let entry = by_invoice.entry(id.to_uppercase()).or_insert_with(|| (ccy, 0, 0));
                add(&mut entry.1, *amount);
                entry.2 += 1;
            }
        })
    })?;
    for dataset in Dataset::ALL.into_iter().filter(|d| crate::focus::is_source(*d)) {
        let schema = schema(dataset)?;
        let column = dataset.line_amount_column().and_then(|c| schema.column(c));
        let ccy = schema.currency_column.and_then(|c| schema.column(c));
        let (Some(amount), Some(ccy), Some(duplicate)) = (column, ccy, schema.column("is_duplicate")) else {
            return Err(format!("{dataset} has no line amount, currency or is_duplicate"));
        };
        for_each_file(snapshot, manifest, dataset, |path| {
            for_each_row(path, schema, |row| {
                if let (Some(c), Cell::Dec(v), false) =
                    (text(&row[ccy]), &row[amount], matches!(row[duplicate], Cell::Bool(true)))
                {
                    add(&mut by_currency.entry(c.to_uppercase()).or_default().lines, *v);
                }
            })
        })?;
    }
    if overflow {
        return Err("the FOCUS sums do not fit Decimal128".into());
    }
    Ok((by_invoice, by_currency))
}

/// The published and the recomputed rows of one check.
type Sides<'a> = (Vec<&'a Vec<Cell>>, Vec<&'a Vec<Cell>>);

/// Each row of one side without its equal on the other, matched by (id, kind) in order.
fn compare(
    schema: &DatasetSchema,
    published: &[Vec<Cell>],
    recomputed: &[Vec<Cell>],
    (id, kind): (usize, usize),
) -> Vec<Problem> {
    let key = |row: &Vec<Cell>| {
        (text(&row[id]).unwrap_or_default().to_uppercase(), text(&row[kind]).unwrap_or_default().to_owned())
    };
    let mut by_key: BTreeMap<(String, String), Sides<'_>> = BTreeMap::new();
    for row in published {
        by_key.entry(key(row)).or_default().0.push(row);
    }
    for row in recomputed {
        by_key.entry(key(row)).or_default().1.push(row);
    }
    let mut problems = Vec::new();
    for ((document, kind), (said, found)) in by_key {
        let check = format!("{document} {kind}");
        for i in 0..said.len().max(found.len()) {
            let (published, recomputed) = (said.get(i), found.get(i));
            let differing: Vec<String> = schema
                .columns
                .iter()
                .enumerate()
                .filter(|(c, _)| published.and_then(|r| r.get(*c)) != recomputed.and_then(|r| r.get(*c)))
                .map(|(c, column)| {
                    let show = |row: Option<&&Vec<Cell>>| match row.and_then(|r| r.get(c)) {
                        None => "no row".to_owned(),
                        Some(Cell::Null) => "null".to_owned(),
                        Some(cell) => cell_text(cell, column.ty).into_owned(),
                    };
                    format!("{} {} (files: {})", column.name, show(published), show(recomputed))
                })
                .collect();
            if !differing.is_empty() {
                problems.push(Problem::TieOut { check: check.clone(), differences: differing.join(", ") });
            }
        }
    }
    problems
}

/// The tie-out's rules as the manifest records them.
fn rules(manifest: &Manifest) -> Result<Rules, String> {
    let provenance = &manifest.provenance;
    let mut tolerance = BTreeMap::new();
    for (currency, text) in &provenance.tolerance {
        let value = Decimal::from_str(text)
            .ok()
            .map(|d| d.normalize())
            .filter(|d| d.scale() <= 10)
            .and_then(|d| d.mantissa().checked_mul(10i128.pow(10 - d.scale())))
            .ok_or_else(|| format!("the manifest's tolerance for {currency}, {text:?}, is not an amount"))?;
        tolerance.insert(currency.clone(), value);
    }
    Ok(Rules { tolerance, filtered: provenance.filtered })
}

fn schema(dataset: Dataset) -> Result<&'static DatasetSchema, String> {
    dataset.schema().ok_or_else(|| format!("{dataset} has no schema"))
}

/// Runs `each` on every Parquet file of `dataset` the manifest lists.
fn for_each_file(
    snapshot: &Path,
    manifest: &Manifest,
    dataset: Dataset,
    mut each: impl FnMut(&Path) -> std::io::Result<()>,
) -> Result<(), String> {
    for file in manifest.files.iter().filter(|f| parquet_dataset(&f.path) == Some(dataset.name())) {
        each(&snapshot.join(&file.path)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn text(cell: &Cell) -> Option<&str> {
    match cell {
        Cell::Str(s) if !s.is_empty() => Some(s),
        _ => None,
    }
}
