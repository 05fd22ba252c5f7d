//! `pcrecon diff A B`: what changed between two snapshots, row by row.
//!
//! Files whose SHA-256 is the same in both manifests are identical and skipped; the rows of the
//! others are keyed by `row_key` (the natural key where a dataset has none) and compared column
//! by column. Out: `diff_changes` and `diff_totals` as Parquet and CSV (published atomically) and
//! a summary for people. A snapshot that cannot be read back (a corrupt or truncated Parquet
//! file, a manifest path outside the snapshot) is bad input (exit 5, naming the file); only what
//! `diff` writes fails as output. Before it writes, it removes the staging folders that killed
//! diffs left beside its destination.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::{AuditError, outside, read_manifest, unreadable};
use crate::sink::manifest::Manifest;
use crate::sink::part::PartWriter;
use crate::sink::read::for_each_row;
use crate::sink::staging::Staging;
use crate::sink::writer::CsvFormat;
use crate::tabular::text::cell_text;
use crate::tabular::{Cell, ColType, Dataset, DatasetSchema, Source};

/// The scale of `diff_totals.delta`: the finest of any control-total column.
const DELTA_SCALE: u32 = 22;

/// Rows added, removed and changed in one dataset.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DatasetDiff {
    /// Rows only in B.
    pub added: u64,
    /// Rows only in A.
    pub removed: u64,
    /// Rows in both whose columns differ.
    pub changed: u64,
    /// Data files that differ (and were compared row by row).
    pub files_compared: usize,
    /// Data files identical in both.
    pub files_identical: usize,
}

/// What `diff` found.
#[derive(Debug)]
pub struct DiffReport {
    /// The earlier snapshot.
    pub a: PathBuf,
    /// The later snapshot.
    pub b: PathBuf,
    /// Where `diff_changes` and `diff_totals` were written.
    pub out: PathBuf,
    /// Per dataset.
    pub datasets: BTreeMap<String, DatasetDiff>,
    /// Statements added, removed or changed.
    pub documents: Vec<String>,
    /// Control totals per dataset and currency that differ: (before, after) per column.
    pub control_totals: BTreeMap<(String, String), BTreeMap<String, (String, String)>>,
    /// The rows of `diff_totals`: dataset, currency, customer, column, rows delta, delta.
    pub deltas: Vec<Vec<Cell>>,
}

impl DiffReport {
    /// Whether the snapshots differ in any data.
    pub fn differs(&self) -> bool {
        self.datasets.values().any(|d| d.added + d.removed + d.changed > 0) || !self.documents.is_empty()
    }

    /// The summary for people.
    pub fn render(&self) -> String {
        let mut text = format!("diff {} → {}\n", self.a.display(), self.b.display());
        if !self.differs() {
            text.push_str("  no differences\n");
        }
        for (name, d) in self.datasets.iter().filter(|(_, d)| d.added + d.removed + d.changed > 0) {
            text.push_str(&format!(
                "  {name:<34} +{} added  -{} removed  ~{} changed  ({} files compared, {} identical)\n",
                d.added, d.removed, d.changed, d.files_compared, d.files_identical
            ));
        }
        for doc in &self.documents {
            text.push_str(&format!("  {doc}\n"));
        }
        for ((dataset, currency), columns) in &self.control_totals {
            for (column, (before, after)) in columns {
                text.push_str(&format!("  total {dataset} {currency} {column}: {before} → {after}\n"));
            }
        }
        let shown = 20;
        for row in self.deltas.iter().take(shown) {
            let t = |i: usize| cell_text(&row[i], ColType::Utf8);
            let delta = cell_text(&row[5], ColType::decimal(DELTA_SCALE));
            let reporting = match &row[7] {
                Cell::Null => String::new(),
                value => {
                    let value = cell_text(value, ColType::decimal(DELTA_REPORTING_SCALE));
                    format!(" = {} {}", trim_zeros(&value), t(6))
                }
            };
            text.push_str(&format!(
                "  delta {} {} customer {} {}: {}{reporting} ({} rows)\n",
                t(0),
                t(1),
                t(2),
                t(3),
                trim_zeros(&delta),
                t(4)
            ));
        }
        if self.deltas.len() > shown {
            text.push_str(&format!("  … {} more deltas in diff_totals\n", self.deltas.len() - shown));
        }
        text.push_str(&format!("  written to {}\n", self.out.display()));
        text
    }
}

/// `1.5000` → `1.5`, `2.000` → `2`.
fn trim_zeros(text: &str) -> String {
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text.to_owned() }
}

/// Parquet data files per path, with their SHA-256, by dataset.
fn data_files(manifest: &Manifest) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut by_dataset: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for f in manifest.files.iter().filter(|f| f.path.ends_with(".parquet") && !f.path.starts_with("csv/")) {
        let dataset = f.path.split('/').next().unwrap_or_default().to_owned();
        by_dataset.entry(dataset).or_default().insert(f.path.clone(), f.sha256.clone());
    }
    by_dataset
}

/// The files kept as served (statements, rate files), by path, with their SHA-256.
fn documents(manifest: &Manifest) -> BTreeMap<&str, &str> {
    let kept = |path: &str| crate::sink::layout::kept_dataset(path).is_some();
    manifest.files.iter().filter(|f| kept(&f.path)).map(|f| (f.path.as_str(), f.sha256.as_str())).collect()
}

/// A row as a JSON object of its columns' text (for added and removed rows).
fn row_json(schema: &DatasetSchema, row: &[Cell]) -> String {
    let object: serde_json::Map<String, serde_json::Value> = schema
        .columns
        .iter()
        .zip(row)
        .filter(|(_, cell)| **cell != Cell::Null)
        .map(|(c, cell)| (c.name.clone(), serde_json::Value::String(cell_text(cell, c.ty).into_owned())))
        .collect();
    serde_json::Value::Object(object).to_string()
}

/// How rows of a dataset are told apart: `row_key`, else the natural key, else the whole row.
fn key_columns(schema: &DatasetSchema) -> Vec<usize> {
    if let Some(at) = schema.columns.iter().position(|c| c.source == Source::RowKey) {
        return vec![at];
    }
    let keys: Vec<usize> = schema.keys.iter().filter_map(|k| schema.column(k)).collect();
    if keys.is_empty() { (0..schema.columns.len()).collect() } else { keys }
}

/// Keys rows, numbering repeats of a key in file order.
struct Keyer {
    columns: Vec<usize>,
    seen: HashMap<String, u32>,
}

impl Keyer {
    fn key(&mut self, schema: &DatasetSchema, row: &[Cell]) -> String {
        let base: Vec<String> =
            self.columns.iter().map(|&i| cell_text(&row[i], schema.columns[i].ty).into_owned()).collect();
        let base = base.join("\u{1f}");
        let n = self.seen.entry(base.clone()).or_insert(0);
        *n += 1;
        if *n == 1 { base } else { format!("{base}#{n}") }
    }
}

/// The scale of `diff_totals.delta_reporting`: the finest of any reporting column.
const DELTA_REPORTING_SCALE: u32 = 22;

/// Σ of control-total columns per (currency, customer key, reporting currency), at
/// [`DELTA_SCALE`] (and their reporting columns at [`DELTA_REPORTING_SCALE`]), with row counts.
#[derive(Default)]
struct Sums(BTreeMap<SumKey, (i64, Vec<Delta>)>);

/// Billing currency, customer key, reporting currency.
type SumKey = (String, String, String);

/// The change of one control total, and of its reporting column where the dataset has one.
type Delta = (i128, Option<i128>);

/// An unscaled decimal cell brought to `to` (a finer or equal scale).
fn rescaled(schema: &DatasetSchema, row: &[Cell], column: &str, to: u32) -> Result<Option<i128>, String> {
    let Some(i) = schema.column(column) else { return Ok(None) };
    let (Cell::Dec(v), ColType::Decimal { scale, .. }) = (&row[i], schema.columns[i].ty) else { return Ok(None) };
    let factor = 10i128.checked_pow(to.saturating_sub(scale)).unwrap_or(i128::MAX);
    v.checked_mul(factor).map(Some).ok_or_else(|| format!("{}.{column}: {v} does not fit", schema.name))
}

impl Sums {
    fn add(&mut self, schema: &DatasetSchema, row: &[Cell], sign: i128) -> Result<(), String> {
        if schema.totals.is_empty() {
            return Ok(());
        }
        let text = |column: Option<&str>, upper: bool| match column.and_then(|c| schema.column(c)).map(|i| &row[i]) {
            Some(Cell::Str(s)) if upper => s.to_uppercase(),
            Some(Cell::Str(s)) => s.clone(),
            _ => "-".to_owned(),
        };
        let key = (
            text(schema.currency_column, true),
            text(Some("customer_key"), false),
            text(Some("reporting_currency"), true),
        );
        let entry = self.0.entry(key).or_insert_with(|| (0, vec![(0, None); schema.totals.len()]));
        entry.0 += if sign > 0 { 1 } else { -1 };
        for ((sum, reporting), column) in entry.1.iter_mut().zip(&schema.totals) {
            if let Some(v) = rescaled(schema, row, column, DELTA_SCALE)? {
                *sum += sign * v;
            }
            if let Some(v) = rescaled(schema, row, &format!("{column}_reporting"), DELTA_REPORTING_SCALE)? {
                *reporting = Some(reporting.unwrap_or(0) + sign * v);
            }
        }
        Ok(())
    }
}

/// The invoice, customer and billing month of a row of `schema` read from `file`: what a change
/// row carries so that it needs no join back.
fn context(schema: &DatasetSchema, row: &[Cell], file: &str) -> [Cell; 3] {
    let invoice_column = match schema.name {
        Dataset::Invoices => Some("id"),
        _ => schema.column("invoice_id").map(|_| "invoice_id"),
    };
    let text = |column: Option<&str>| match column.and_then(|c| schema.column(c)).map(|i| &row[i]) {
        Some(Cell::Str(s)) if !s.is_empty() => Cell::Str(s.clone()),
        _ => Cell::Null,
    };
    let period =
        file.split('/').find_map(|part| part.strip_prefix("period=")).map_or(Cell::Null, |m| Cell::Str(m.into()));
    [text(invoice_column), text(Some("customer_key")), period]
}

/// Compares one dataset's differing files.
fn diff_dataset(
    schema: &DatasetSchema,
    (a, b): (&Path, &Path),
    (a_files, b_files): (&[&String], &[&String]),
    changes: &mut Vec<Vec<Cell>>,
    deltas: &mut Vec<Vec<Cell>>,
) -> Result<DatasetDiff, AuditError> {
    let mut diff = DatasetDiff::default();
    let mut before: HashMap<String, (Vec<Cell>, [Cell; 3])> = HashMap::new();
    let mut sums = Sums::default();
    let mut failure: Option<String> = None;
    let mut keyer = Keyer { columns: key_columns(schema), seen: HashMap::new() };
    for file in a_files {
        let path = a.join(file);
        for_each_row(&path, schema, |row| {
            if let Err(e) = sums.add(schema, &row, -1) {
                failure.get_or_insert(e);
            }
            let context = context(schema, &row, file);
            before.insert(keyer.key(schema, &row), (row, context));
        })
        .map_err(unreadable(&path))?;
    }
    let mut keyer = Keyer { columns: key_columns(schema), seen: HashMap::new() };
    let name = |s: &str| Cell::Str(s.to_owned());
    let row_key_of = |key: &str| Cell::Str(key.replace('\u{1f}', "|"));
    for file in b_files {
        let path = b.join(file);
        for_each_row(&path, schema, |row| {
            if let Err(e) = sums.add(schema, &row, 1) {
                failure.get_or_insert(e);
            }
            let key = keyer.key(schema, &row);
            match before.remove(&key) {
                Some((old, _)) if old == row => {}
                Some((old, _)) => {
                    diff.changed += 1;
                    let context = context(schema, &row, file);
                    for (i, column) in schema.columns.iter().enumerate().filter(|(i, _)| old[*i] != row[*i]) {
                        let mut change = vec![
                            name(schema.name.name()),
                            name("changed"),
                            row_key_of(&key),
                            name(&column.name),
                            Cell::Str(cell_text(&old[i], column.ty).into_owned()),
                            Cell::Str(cell_text(&row[i], column.ty).into_owned()),
                        ];
                        change.extend(context.clone());
                        changes.push(change);
                    }
                }
                None => {
                    diff.added += 1;
                    let mut change = vec![
                        name(schema.name.name()),
                        name("added"),
                        row_key_of(&key),
                        Cell::Null,
                        Cell::Null,
                        Cell::Str(row_json(schema, &row)),
                    ];
                    change.extend(context(schema, &row, file));
                    changes.push(change);
                }
            }
        })
        .map_err(unreadable(&path))?;
    }
    for (key, (row, context)) in before {
        diff.removed += 1;
        let mut change = vec![
            name(schema.name.name()),
            name("removed"),
            row_key_of(&key),
            Cell::Null,
            Cell::Str(row_json(schema, &row)),
            Cell::Null,
        ];
        change.extend(context);
        changes.push(change);
    }
    if let Some(e) = failure {
        return Err(AuditError::NotASnapshot(e));
    }
    for ((currency, customer, reporting_currency), (rows, values)) in sums.0 {
        for (column, (value, reporting)) in schema.totals.iter().zip(values) {
            if value != 0 || rows != 0 {
                let (reporting_currency, reporting) = match reporting {
                    Some(v) => (Cell::Str(reporting_currency.clone()), Cell::Dec(v)),
                    None => (Cell::Null, Cell::Null),
                };
                deltas.push(vec![
                    name(schema.name.name()),
                    Cell::Str(currency.clone()),
                    Cell::Str(customer.clone()),
                    name(column),
                    Cell::Int(rows),
                    Cell::Dec(value),
                    reporting_currency,
                    reporting,
                ]);
            }
        }
    }
    Ok(diff)
}

/// Compares snapshot `a` with the later snapshot `b` and writes the result into `out`.
pub fn diff(a: &Path, b: &Path, out: &Path) -> Result<DiffReport, AuditError> {
    let (ma, mb) = (read_manifest(a)?, read_manifest(b)?);
    inside(a, &ma)?;
    inside(b, &mb)?;
    let (fa, fb) = (data_files(&ma), data_files(&mb));
    let mut datasets = BTreeMap::new();
    let mut changes = Vec::new();
    let mut deltas = Vec::new();
    let names: std::collections::BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
    let empty = BTreeMap::new();
    for name in names {
        let Some(schema) = Dataset::from_name(name).and_then(Dataset::schema) else { continue };
        let (in_a, in_b) = (fa.get(name).unwrap_or(&empty), fb.get(name).unwrap_or(&empty));
        let differs = |path: &String, other: &BTreeMap<String, String>, sha: &String| other.get(path) != Some(sha);
        let a_files: Vec<&String> = in_a.iter().filter(|(p, s)| differs(p, in_b, s)).map(|(p, _)| p).collect();
        let b_files: Vec<&String> = in_b.iter().filter(|(p, s)| differs(p, in_a, s)).map(|(p, _)| p).collect();
        let identical = in_b.len() - b_files.len();
        let mut d = diff_dataset(schema, (a, b), (&a_files, &b_files), &mut changes, &mut deltas)?;
        d.files_compared = a_files.len().max(b_files.len());
        d.files_identical = identical;
        datasets.insert(name.clone(), d);
    }
    let (da, db) = (documents(&ma), documents(&mb));
    let mut docs: Vec<String> = Vec::new();
    for (path, sha) in &db {
        match da.get(path) {
            None => docs.push(format!("added   {path}")),
            Some(old) if old != sha => docs.push(format!("changed {path}")),
            Some(_) => {}
        }
    }
    docs.extend(da.keys().filter(|p| !db.contains_key(*p)).map(|p| format!("removed {p}")));
    let mut control_totals = BTreeMap::new();
    let names: std::collections::BTreeSet<&String> = ma.datasets.keys().chain(mb.datasets.keys()).collect();
    for name in names {
        let totals = |m: &Manifest| m.datasets.get(name).map(|d| d.control_totals.clone()).unwrap_or_default();
        let (ta, tb) = (totals(&ma), totals(&mb));
        let currencies: std::collections::BTreeSet<&String> = ta.keys().chain(tb.keys()).collect();
        for currency in currencies {
            let columns: std::collections::BTreeSet<&String> =
                ta.get(currency).into_iter().chain(tb.get(currency)).flat_map(|c| c.keys()).collect();
            for column in columns {
                let value = |t: &BTreeMap<String, BTreeMap<String, String>>| {
                    t.get(currency).and_then(|c| c.get(column)).cloned().unwrap_or_else(|| "-".into())
                };
                let (before, after) = (value(&ta), value(&tb));
                if before != after {
                    control_totals
                        .entry((name.clone(), currency.clone()))
                        .or_insert_with(BTreeMap::new)
                        .insert(column.clone(), (before, after));
                }
            }
        }
    }
    // Keys are built once per row, not once per comparison.
    let text_key = |r: &Vec<Cell>, columns: &[usize]| {
        columns.iter().map(|&i| cell_text(&r[i], ColType::Utf8).into_owned()).collect::<Vec<_>>()
    };
    changes.sort_by_cached_key(|r| text_key(r, &[0, 2, 3]));
    deltas.sort_by_cached_key(|r| text_key(r, &[0, 1, 2, 3]));
    write(out, &changes, &deltas)?;
    Ok(DiffReport {
        a: a.to_path_buf(),
        b: b.to_path_buf(),
        out: out.to_path_buf(),
        datasets,
        documents: docs,
        control_totals,
        deltas,
    })
}

/// Refuses a manifest that lists a file outside its snapshot: `diff` opens none of them.
fn inside(snapshot: &Path, manifest: &Manifest) -> Result<(), AuditError> {
    let real = snapshot.canonicalize().map_err(unreadable(snapshot))?;
    for file in &manifest.files {
        if let Some(why) = outside(snapshot, &real, &file.path) {
            return Err(AuditError::NotASnapshot(format!(
                "{}: manifest.json lists {:?}: {why}",
                snapshot.display(),
                file.path
            )));
        }
    }
    Ok(())
}

/// Whether `name` is a staging folder a killed diff left beside `out`: `.<A>-to-<B>.tmp-<pid>`
/// (the default destinations, whatever pair) or `.<out's name>.tmp-<pid>`, of a process that
/// is gone, or whose pid is now this process's (a killed diff in another container, say: this
/// process has no staging folder yet).
fn left_by_a_killed_diff(name: &str, own: &str) -> bool {
    let Some((target, pid)) = name.strip_prefix('.').and_then(|n| n.rsplit_once(".tmp-")) else { return false };
    let run_id = |id: &str| crate::sink::retention::run_time(id).is_some();
    let a_diff = target == own || target.split_once("-to-").is_some_and(|(a, b)| run_id(a) && run_id(b));
    let gone = crate::sink::staging::is_abandoned(name) || pid.parse::<u32>().is_ok_and(|p| p == std::process::id());
    a_diff && gone
}

/// Removes what killed diffs left beside `out`; a diff into another destination of the same
/// folder (the next night's `diffs/<B>-to-<C>`) clears them too.
fn remove_abandoned(out: &Path) -> Result<(), AuditError> {
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let own = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let Ok(entries) = std::fs::read_dir(parent) else { return Ok(()) };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if left_by_a_killed_diff(&name, &own) && entry.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir_all(entry.path()).map_err(AuditError::io(&entry.path()))?;
            tracing::info!(event = "abandoned_staging_removed", path = %entry.path().display());
        }
    }
    Ok(())
}

/// Writes both datasets into a hidden folder beside `out`, then puts it in place.
fn write(out: &Path, changes: &[Vec<Cell>], deltas: &[Vec<Cell>]) -> Result<(), AuditError> {
    remove_abandoned(out)?;
    let staging = Staging::beside(out).map_err(AuditError::io(out))?;
    for (dataset, rows) in [(Dataset::DiffChanges, changes), (Dataset::DiffTotals, deltas)] {
        let Some(schema) = dataset.schema() else { continue };
        let parquet = staging.path().join(dataset.name()).join("part-00000.parquet");
        let csv = staging.path().join("csv").join(dataset.name()).join("part-00000.csv");
        let mut writer = PartWriter::create(schema, &parquet, Some((&csv, CsvFormat::default())))
            .map_err(AuditError::io(&parquet))?;
        for row in rows {
            writer.push(row.clone()).map_err(AuditError::io(&parquet))?;
        }
        writer.finish().map_err(AuditError::io(&parquet))?;
        crate::failpoint::hit("diff");
    }
    staging.publish().map(|_| ()).map_err(AuditError::io(out))
}

/// The last two snapshots of an output folder: the one before `LATEST`, and `LATEST`.
pub fn previous_pair(out: &Path) -> Result<(PathBuf, PathBuf), AuditError> {
    let all = crate::sink::retention::snapshots(out);
    let latest = crate::sink::retention::latest(out).map(|(id, _)| id);
    let at = match latest {
        Some(id) => all.iter().position(|(i, _)| *i == id),
        None => all.len().checked_sub(1),
    };
    match at {
        Some(i) if i >= 1 => Ok((all[i - 1].1.clone(), all[i].1.clone())),
        _ => Err(AuditError::NotASnapshot(format!("{} has fewer than two published snapshots", out.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_folders_of_killed_diffs_are_told_from_everything_else() {
        let own = "20261121T020000Z-to-20261122T020000Z";
        let me = std::process::id();
        // pid 1 is alive: a staging folder of a running process stays.
        assert!(!left_by_a_killed_diff(&format!(".{own}.tmp-1"), own));
        assert!(left_by_a_killed_diff(&format!(".{own}.tmp-{me}"), own), "this process has no staging yet");
        let gone = u32::MAX;
        assert!(left_by_a_killed_diff(&format!(".{own}.tmp-{gone}"), own));
        assert!(left_by_a_killed_diff(&format!(".20261120T020000Z-2-to-20261121T020000Z.tmp-{gone}"), own));
        assert!(left_by_a_killed_diff(&format!(".mine.tmp-{gone}"), "mine"), "its own destination");
        // Not a diff's: a snapshot's staging, another folder's, not staging at all.
        assert!(!left_by_a_killed_diff(&format!(".20261122T020000Z.tmp-{gone}"), own));
        assert!(!left_by_a_killed_diff(&format!(".photos.tmp-{gone}"), own));
        assert!(!left_by_a_killed_diff(&format!(".{own}.old-{gone}"), own));
        assert!(!left_by_a_killed_diff(own, own));
    }
}
