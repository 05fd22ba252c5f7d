//! `pcrecon verify`: checks a snapshot against its `manifest.json` without trusting it. Every
//! file is re-hashed (bytes and SHA-256); every Parquet file is read back, and its rows counted
//! and summed into the control totals by the writer's rule; every CSV file's records are
//! counted, and the rows of each status are counted into the tie-out's and matching's checks.
//! It lists every file that is missing, differs, is not in the manifest, or is listed
//! at a path outside the snapshot (never opened), every row count and every control total that
//! is not what the files hold. The tie-out is recomputed from the line items, documents and
//! summaries by the pipeline's own rules, and every `reconciliation` row must be what it gives
//! (`tie_out`). An output folder is verified snapshot by snapshot: one that
//! cannot be verified is reported, and the others are still checked. With a public key, each
//! manifest's minisign signature must be valid for it; the columns each manifest records must be
//! those its files hold. A raw archive (`--keep-raw`) is checked on its own terms: its index
//! complete, every page there with the size and SHA-256 the index records, nothing unlisted.

use crate::reconcile::CheckGroup;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

mod tie_out;

use super::{AuditError, outside, read_manifest};
use crate::model::hex;
use crate::report::REPORT_FILE;
use crate::sink::manifest::{DatasetEntry, Manifest};
use crate::sink::signature::{PublicKey, SIGNATURE_FILE, signature_of};
use crate::sink::totals::{TotalColumns, Totals, control_totals};
use crate::tabular::{Cell, Dataset, DatasetSchema};

/// Files of a snapshot its manifest does not list: the manifest itself, its signature, and the
/// run's record and report, which are readings of the listed files rather than data.
const NOT_LISTED: [&str; 4] = ["manifest.json", SIGNATURE_FILE, "run.json", REPORT_FILE];

/// What a value the manifest claims is shown as when it claims none.
const NONE: &str = "none";

/// What is wrong with one file, one dataset or one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Listed in the manifest, not on disk.
    Missing(String),
    /// On disk with other bytes than the manifest says.
    Differs {
        /// The file.
        path: String,
        /// What the manifest says.
        expected: String,
        /// What the file is.
        found: String,
    },
    /// On disk, not in the manifest.
    Extra(String),
    /// Listed at a path that is absolute, climbs out with `..`, or resolves outside the
    /// snapshot: the file is not read.
    Outside {
        /// The path as the manifest lists it.
        path: String,
        /// Why it is refused.
        why: &'static str,
    },
    /// A listed file whose bytes match the manifest but that cannot be read (or read back).
    Unreadable {
        /// The file.
        path: String,
        /// The cause.
        reason: String,
    },
    /// A file or a dataset does not have the rows the manifest says.
    Rows {
        /// `<path>` or `dataset <name>`.
        what: String,
        /// Rows the manifest says.
        claimed: u64,
        /// Rows found.
        found: u64,
    },
    /// A control total that is not the sum of its dataset's Parquet files.
    Total {
        /// The dataset.
        dataset: String,
        /// The currency (`-` for rows without one).
        currency: String,
        /// The control-total column.
        column: String,
        /// What the manifest says.
        claimed: String,
        /// The sum of the files.
        recomputed: String,
    },
    /// A count of the manifest's checks (`tie_out`, `match:<dataset>`) that is not the number of
    /// rows of that status in the files.
    Check {
        /// The check.
        check: String,
        /// The status.
        status: String,
        /// What the manifest says.
        claimed: u64,
        /// Rows of that status in the files.
        found: u64,
    },
    /// A published tie-out row that is not what the tie-out recomputed from the snapshot's
    /// line items, documents and summaries gives (or one side has a row the other lacks).
    TieOut {
        /// The document (or `summary CCY`) and the kind of check.
        check: String,
        /// Each differing column: the published value, then the files'.
        differences: String,
    },
    /// A dataset's columns as the manifest records them are not those its files hold.
    Columns {
        /// The dataset.
        dataset: String,
    },
    /// A page of a raw archive that is missing, unreadable, or not what its index records, or a
    /// file the index does not list.
    Archive(String),
    /// The manifest's signature is missing, made by another key, or does not match the
    /// manifest's bytes.
    Signature(String),
    /// The snapshot could not be verified at all (its manifest cannot be read), or `LATEST`
    /// names no published snapshot.
    Unverifiable(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Missing(path) => write!(f, "missing  {path}"),
            Problem::Differs { path, expected, found } => {
                write!(f, "differs  {path}: manifest says {expected}, the file is {found}")
            }
            Problem::Extra(path) => write!(f, "extra    {path}: not in the manifest"),
            Problem::Outside { path, why } => write!(f, "outside  {path}: {why}; not read"),
            Problem::Unreadable { path, reason } => write!(f, "unreadable {path}: {reason}"),
            Problem::Rows { what, claimed, found } => {
                write!(f, "rows     {what}: manifest says {claimed} rows, found {found}")
            }
            Problem::Total { dataset, currency, column, claimed, recomputed } => write!(
                f,
                "total    {dataset} {currency} {column}: manifest says {claimed}, the files sum to {recomputed}"
            ),
            Problem::Check { check, status, claimed, found } => {
                write!(f, "check    {check} {status}: manifest says {claimed}, the files hold {found}")
            }
            Problem::TieOut { check, differences } => {
                write!(f, "tie-out  {check}: reconciliation says {differences}")
            }
            Problem::Columns { dataset } => {
                write!(f, "columns  {dataset}: the manifest records other columns than its files hold")
            }
            Problem::Signature(reason) => write!(f, "signature {reason}"),
            Problem::Archive(what) => write!(f, "archive  {what}"),
            Problem::Unverifiable(reason) => write!(f, "cannot verify: {reason}"),
        }
    }
}

/// The verification of one snapshot.
#[derive(Debug)]
pub struct Verified {
    /// The snapshot.
    pub snapshot: PathBuf,
    /// Files the manifest lists.
    pub files: usize,
    /// Bytes hashed.
    pub bytes: u64,
    /// Everything that does not match.
    pub problems: Vec<Problem>,
    /// What could not be recomputed, and why (a dataset of another schema version than this
    /// pcrecon reads): not a problem, but not verified beyond its bytes either.
    pub notes: Vec<String>,
    /// The id of the key whose signature of the manifest was checked.
    pub signed_by: Option<String>,
}

impl Verified {
    fn failed(snapshot: &Path, reason: String) -> Verified {
        Verified {
            snapshot: snapshot.to_path_buf(),
            files: 0,
            bytes: 0,
            problems: vec![Problem::Unverifiable(reason)],
            notes: Vec::new(),
            signed_by: None,
        }
    }
}

/// What reading a file found: its SHA-256 and size as on disk, and the line ends outside double
/// quotes of its text (the records of a CSV file, its header included; of a `.csv.gz` file, the
/// text inside, or none when it does not inflate).
struct Scan {
    hasher: Sha256,
    bytes: u64,
    lines: Option<u64>,
}

/// Counts the line ends outside double quotes of what passes through.
#[derive(Default)]
struct Lines {
    quoted: bool,
    lines: u64,
}

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for at in memchr::memchr2_iter(b'"', b'\n', buf) {
            if buf[at] == b'"' {
                self.quoted = !self.quoted;
            } else if !self.quoted {
                self.lines += 1;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Hashes and counts the bytes read through it.
struct Hashed<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: io::Read> io::Read for Hashed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

fn scan_file(path: &Path) -> io::Result<Scan> {
    let mut file = Hashed { inner: std::fs::File::open(path)?, hasher: Sha256::new(), bytes: 0 };
    let mut lines = Lines::default();
    let inflated = match path.extension().is_some_and(|e| e == "gz") {
        true => io::copy(&mut flate2::read::GzDecoder::new(&mut file), &mut lines).is_ok(),
        false => io::copy(&mut file, &mut lines).map(|_| true)?,
    };
    // What follows the gzip stream, or the rest after a stream that does not inflate.
    io::copy(&mut file, &mut io::sink())?;
    Ok(Scan { hasher: file.hasher, bytes: file.bytes, lines: inflated.then_some(lines.lines) })
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(root, &path, out)?;
        } else if let Ok(relative) = path.strip_prefix(root) {
            out.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

/// The dataset of a Parquet data file (`<dataset>/…parquet`; CSV copies are under `csv/`).
fn parquet_dataset(path: &str) -> Option<&str> {
    let dataset = path.split('/').next().filter(|d| !matches!(*d, "" | "." | ".."))?;
    (path.ends_with(".parquet") && dataset != "csv").then_some(dataset)
}

/// What checking one listed file found.
struct Checked {
    bytes: u64,
    problems: Vec<Problem>,
    /// What a Parquet file whose bytes match the manifest holds.
    read: Option<ReadBack>,
}

/// A Parquet file's rows, control totals, and rows per check of the manifest's `checks` and
/// status.
struct ReadBack {
    rows: u64,
    totals: Totals,
    statuses: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Where a dataset's rows say which check of the manifest's `checks` they are counted in, and
/// with which status: `reconciliation` rows in the tie-out's or the FOCUS tie-out's (by their
/// kind), each line dataset's in its matching's.
struct StatusColumns {
    status: usize,
    /// The `kind` column of `reconciliation`.
    kind: Option<usize>,
    /// The check of a line dataset's rows.
    check: String,
}

impl StatusColumns {
    fn of(schema: &DatasetSchema) -> Option<StatusColumns> {
        if schema.name == Dataset::Reconciliation {
            let (status, kind) = (schema.column("status")?, schema.column("kind")?);
            return Some(StatusColumns { status, kind: Some(kind), check: String::new() });
        }
        let status = schema.column("match_status")?;
        Some(StatusColumns { status, kind: None, check: format!("match:{}", schema.name) })
    }

    /// The checks a dataset's rows may be counted in.
    fn checks(&self) -> Vec<String> {
        match self.kind {
            Some(_) => CheckGroup::ALL.iter().map(|g| g.name().to_owned()).collect(),
            None => vec![self.check.clone()],
        }
    }

    /// A row's check and status.
    fn of_row<'r>(&self, row: &'r [Cell]) -> Option<(&str, &'r str)> {
        let Cell::Str(status) = &row[self.status] else { return None };
        match self.kind.map(|k| &row[k]) {
            Some(Cell::Str(kind)) => Some((CheckGroup::of_kind(kind).name(), status)),
            Some(_) => None,
            None => Some((&self.check, status)),
        }
    }
}

/// Hashes one listed file and, when its bytes are the manifest's, counts and sums its rows.
fn check_file(
    snapshot: &Path,
    real_root: &Path,
    file: &crate::sink::writer::FileReport,
    readable: &HashMap<&str, &'static DatasetSchema>,
) -> Checked {
    let mut checked = Checked { bytes: 0, problems: Vec::new(), read: None };
    if let Some(why) = outside(snapshot, real_root, &file.path) {
        checked.problems.push(Problem::Outside { path: file.path.clone(), why });
        return checked;
    }
    let path = snapshot.join(&file.path);
    let scan = match scan_file(&path) {
        Ok(scan) => scan,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            checked.problems.push(Problem::Missing(file.path.clone()));
            return checked;
        }
        Err(e) => {
            checked.problems.push(Problem::Unreadable { path: file.path.clone(), reason: e.to_string() });
            return checked;
        }
    };
    checked.bytes = scan.bytes;
    let sha = hex(&scan.hasher.finalize());
    if sha != file.sha256 || scan.bytes != file.bytes {
        checked.problems.push(Problem::Differs {
            path: file.path.clone(),
            expected: format!("{} bytes, SHA-256 {}", file.bytes, file.sha256),
            found: format!("{} bytes, SHA-256 {sha}", scan.bytes),
        });
        return checked;
    }
    let rows_differ = |found: u64| Problem::Rows { what: file.path.clone(), claimed: file.rows, found };
    if file.path.starts_with("csv/") && (file.path.ends_with(".csv") || file.path.ends_with(".csv.gz")) {
        match scan.lines {
            // Every record ends with a line end, the header's too.
            Some(lines) if lines.saturating_sub(1) != file.rows => {
                checked.problems.push(rows_differ(lines.saturating_sub(1)))
            }
            Some(_) => {}
            None => checked
                .problems
                .push(Problem::Unreadable { path: file.path.clone(), reason: "not a gzip stream".into() }),
        }
    }
    let Some(schema) = parquet_dataset(&file.path).and_then(|d| readable.get(d)) else { return checked };
    let columns = TotalColumns::of(schema);
    let status_columns = StatusColumns::of(schema);
    let mut statuses: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let (mut rows, mut totals, mut overflow) = (0u64, Totals::new(), None);
    let read = crate::sink::read::for_each_row(&path, schema, |row| {
        rows += 1;
        if let Err(e) = columns.add(&row, &mut totals) {
            overflow.get_or_insert(e.to_string());
        }
        if let Some((check, status)) = status_columns.as_ref().and_then(|s| s.of_row(&row)) {
            *statuses.entry(check.to_owned()).or_default().entry(status.to_owned()).or_insert(0u64) += 1;
        }
    });
    match (read, overflow) {
        (Err(e), _) => {
            let text = e.to_string();
            let reason = text.strip_prefix(&format!("{}: ", path.display())).unwrap_or(&text).to_owned();
            checked.problems.push(Problem::Unreadable { path: file.path.clone(), reason });
        }
        (Ok(()), Some(reason)) => checked.problems.push(Problem::Unreadable { path: file.path.clone(), reason }),
        (Ok(()), None) => {
            if rows != file.rows {
                checked.problems.push(rows_differ(rows));
            }
            checked.read = Some(ReadBack { rows, totals, statuses });
        }
    }
    checked
}

/// What a dataset's files hold, as its manifest entry would state it.
fn recomputed_entry(schema: &DatasetSchema, rows: u64, totals: &Totals) -> DatasetEntry {
    DatasetEntry {
        rows,
        control_totals: control_totals(schema, &totals.distinct),
        served_twice_rows: totals.served_twice_rows,
        served_twice_totals: control_totals(schema, &totals.served_twice),
        ..DatasetEntry::of(schema)
    }
}

/// Compares what a dataset's entry claims with what its files hold.
fn compare_dataset(name: &str, claimed: &DatasetEntry, recomputed: &DatasetEntry, problems: &mut Vec<Problem>) {
    if claimed.rows != recomputed.rows {
        problems.push(Problem::Rows { what: format!("dataset {name}"), claimed: claimed.rows, found: recomputed.rows });
    }
    if claimed.served_twice_rows != recomputed.served_twice_rows {
        problems.push(Problem::Rows {
            what: format!("served twice in dataset {name}"),
            claimed: claimed.served_twice_rows,
            found: recomputed.served_twice_rows,
        });
    }
    // A manifest that records its columns says what the files hold (older ones record none).
    if !claimed.columns.is_empty() && claimed.columns != recomputed.columns {
        problems.push(Problem::Columns { dataset: name.to_owned() });
    }
    compare_totals(name, "", &claimed.control_totals, &recomputed.control_totals, problems);
    compare_totals(name, "served twice ", &claimed.served_twice_totals, &recomputed.served_twice_totals, problems);
}

/// Compares control totals as the manifest states them, column by column; `what` tells the
/// served-twice sums from the others.
fn compare_totals(
    name: &str,
    what: &str,
    claimed: &BTreeMap<String, BTreeMap<String, String>>,
    recomputed: &BTreeMap<String, BTreeMap<String, String>>,
    problems: &mut Vec<Problem>,
) {
    let currencies: BTreeSet<&String> = claimed.keys().chain(recomputed.keys()).collect();
    for currency in currencies {
        let (said, summed) = (claimed.get(currency), recomputed.get(currency));
        let columns: BTreeSet<&String> = said.into_iter().chain(summed).flat_map(BTreeMap::keys).collect();
        for column in columns {
            let value = |side: Option<&BTreeMap<String, String>>| {
                side.and_then(|c| c.get(column)).map_or_else(|| NONE.to_owned(), String::clone)
            };
            let (claimed, recomputed) = (value(said), value(summed));
            if claimed != recomputed {
                problems.push(Problem::Total {
                    dataset: name.to_owned(),
                    currency: currency.clone(),
                    column: format!("{what}{column}"),
                    claimed,
                    recomputed,
                });
            }
        }
    }
}

/// Checks the manifest's signature with `key`; without a key, notes a signature left unchecked.
fn check_signature(snapshot: &Path, key: Option<&PublicKey>, verified: &mut Verified) {
    let manifest = snapshot.join("manifest.json");
    let signed = signature_of(&manifest).exists();
    match key {
        Some(_) if !signed => verified.problems.push(Problem::Signature(format!("missing: no {SIGNATURE_FILE}"))),
        Some(key) => match key.check(&manifest) {
            Ok(()) => verified.signed_by = Some(key.id()),
            Err(e) => {
                verified.problems.push(Problem::Signature(format!("not valid for key {}: {}", key.id(), e.reason)))
            }
        },
        None if signed => verified.notes.push(format!("{SIGNATURE_FILE} not checked: give --public-key to check it")),
        None => {}
    }
}

/// Verifies one snapshot folder: its files, its numbers, and with `key` its signature.
pub fn verify_snapshot(snapshot: &Path, key: Option<&PublicKey>) -> Result<Verified, AuditError> {
    let mut verified = verify_contents(snapshot)?;
    check_signature(snapshot, key, &mut verified);
    Ok(verified)
}

/// Verifies a raw archive (`--keep-raw`): its index complete, every page as it records.
fn verify_archive(dir: &Path) -> Verified {
    match crate::extract::raw::check_archive(dir) {
        Ok(check) => Verified {
            snapshot: dir.to_path_buf(),
            files: check.pages as usize,
            bytes: check.bytes,
            problems: check.problems.into_iter().map(Problem::Archive).collect(),
            notes: vec![format!("a raw archive: {} pages of {} sequences", check.pages, check.sequences)],
            signed_by: None,
        },
        Err(reason) => Verified::failed(dir, reason),
    }
}

/// Verifies one snapshot folder's files against its manifest.
fn verify_contents(snapshot: &Path) -> Result<Verified, AuditError> {
    let manifest: Manifest = read_manifest(snapshot)?;
    let real_root =
        snapshot.canonicalize().map_err(|e| AuditError::NotASnapshot(format!("{}: {e}", snapshot.display())))?;
    let mut notes = Vec::new();
    // The datasets whose Parquet files this pcrecon reads back: known, and of its schema version.
    let mut readable: HashMap<&str, &'static DatasetSchema> = HashMap::new();
    let with_files: BTreeSet<&str> = manifest.files.iter().filter_map(|f| parquet_dataset(&f.path)).collect();
    for &name in &with_files {
        let claimed = manifest.datasets.get(name).map(|d| d.schema_version);
        match Dataset::from_name(name).and_then(Dataset::schema) {
            Some(schema) if claimed.is_none_or(|v| v == schema.version) => {
                readable.insert(name, schema);
            }
            Some(schema) => notes.push(format!(
                "{name}: schema version {}, this pcrecon reads version {}: rows and control totals not recomputed",
                claimed.unwrap_or_default(),
                schema.version
            )),
            None => {
                notes.push(format!("{name}: not a dataset this pcrecon knows: rows and control totals not recomputed"))
            }
        }
    }
    let checked: Vec<Checked> =
        manifest.files.par_iter().map(|file| check_file(snapshot, &real_root, file, &readable)).collect();

    let mut problems = Vec::new();
    let mut bytes = 0;
    // Per dataset: rows, totals, and whether every one of its files was read back.
    let mut sums: BTreeMap<&str, (u64, Totals, bool)> = BTreeMap::new();
    // Per check of the manifest: rows per status, over the files read back.
    let mut statuses: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    // Per dataset of files kept as served (statements, rate files): files, and whether all are clean.
    let mut kept: BTreeMap<&str, (u64, bool)> = BTreeMap::new();
    let mut overflowed = BTreeSet::new();
    for (file, result) in manifest.files.iter().zip(checked) {
        bytes += result.bytes;
        let clean = result.problems.is_empty();
        problems.extend(result.problems);
        if let Some(dataset) = crate::sink::layout::kept_dataset(&file.path) {
            let entry = kept.entry(dataset.name()).or_insert((0, true));
            entry.0 += 1;
            entry.1 &= clean;
        }
        let Some(name) = parquet_dataset(&file.path) else { continue };
        let entry = sums.entry(name).or_insert_with(|| (0, Totals::new(), true));
        // Read back only when its bytes are the manifest's (else reported, and its dataset's
        // sums would be short).
        let Some(ReadBack { rows, totals, statuses: counted }) = result.read else {
            entry.2 = false;
            continue;
        };
        for (check, counts) in counted {
            let sums = statuses.entry(check).or_default();
            for (status, n) in counts {
                *sums.entry(status).or_default() += n;
            }
        }
        entry.0 += rows;
        if entry.1.merge(totals).is_err() {
            entry.2 = false;
            overflowed.insert(name);
        }
    }
    problems.extend(overflowed.into_iter().map(|name| Problem::Unreadable {
        path: format!("dataset {name}"),
        reason: "its control totals do not fit Decimal128".into(),
    }));
    // A check is recomputed when every file of its dataset was read back.
    for (name, (_, _, complete)) in &sums {
        let Some(columns) = readable.get(name).and_then(|s| StatusColumns::of(s)) else { continue };
        if !*complete {
            continue;
        }
        for check in columns.checks() {
            let (empty, none) = (BTreeMap::new(), BTreeMap::new());
            let found = statuses.get(&check).unwrap_or(&empty);
            let claimed = manifest.checks.get(&check).unwrap_or(&none);
            let all: BTreeSet<&String> = claimed.keys().chain(found.keys()).collect();
            for status in all {
                let (said, held) = (claimed.get(status).copied().unwrap_or(0), found.get(status).copied().unwrap_or(0));
                if said != held {
                    problems.push(Problem::Check {
                        check: check.clone(),
                        status: status.clone(),
                        claimed: said,
                        found: held,
                    });
                }
            }
        }
    }
    // The tie-out, recomputed when every file it reads was read back.
    let whole = |d: Dataset| readable.contains_key(d.name()) && sums.get(d.name()).is_some_and(|s| s.2);
    let absent = |d: Dataset| !with_files.contains(d.name());
    if tie_out::READ.iter().all(|d| whole(*d) || (absent(*d) && *d != Dataset::Reconciliation)) {
        match tie_out::recheck(snapshot, &manifest) {
            Ok(found) => problems.extend(found),
            Err(why) => notes.push(format!("tie-out not recomputed: {why}")),
        }
    } else if !absent(Dataset::Reconciliation) {
        notes.push("tie-out not recomputed: not every file it reads was read back".into());
    }
    let empty = DatasetEntry::new(0);
    let names: BTreeSet<&str> =
        manifest.datasets.keys().map(String::as_str).chain(with_files.iter().copied()).collect();
    for name in names {
        let claimed = manifest.datasets.get(name).unwrap_or(&empty);
        if Dataset::from_name(name).is_some_and(|d| d.kind() == crate::tabular::Kind::File) {
            let (files, clean) = kept.get(name).copied().unwrap_or((0, true));
            if clean {
                compare_dataset(name, claimed, &DatasetEntry { rows: files, ..DatasetEntry::new(0) }, &mut problems);
            }
            continue;
        }
        let Some(schema) = Dataset::from_name(name).and_then(Dataset::schema) else {
            if !with_files.contains(name) {
                notes.push(format!("{name}: not a dataset this pcrecon knows: rows and control totals not recomputed"));
            }
            continue;
        };
        match sums.get(name) {
            Some((rows, totals, true)) if readable.contains_key(name) => {
                compare_dataset(name, claimed, &recomputed_entry(schema, *rows, totals), &mut problems)
            }
            // Not read back: noted above, or its files' problems are reported.
            Some(_) => {}
            // Claimed without any file.
            None => compare_dataset(name, claimed, &DatasetEntry::new(0), &mut problems),
        }
    }

    let listed: BTreeSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    let mut present = Vec::new();
    walk(snapshot, snapshot, &mut present)
        .map_err(|e| AuditError::NotASnapshot(format!("cannot list {}: {e}", snapshot.display())))?;
    present.sort();
    problems.extend(
        present
            .into_iter()
            .filter(|p| !listed.contains(p.as_str()) && !NOT_LISTED.contains(&p.as_str()))
            .map(Problem::Extra),
    );
    Ok(Verified {
        snapshot: snapshot.to_path_buf(),
        files: manifest.files.len(),
        bytes,
        problems,
        notes,
        signed_by: None,
    })
}

/// Verifies a snapshot, or every snapshot of an output folder: a snapshot that cannot be
/// verified (its manifest unreadable), a `LATEST` that names no published snapshot, and a
/// snapshot folder without a manifest are reported among the others, which are all checked.
pub fn verify(dir: &Path, key: Option<&PublicKey>) -> Result<Vec<Verified>, AuditError> {
    if dir.join("manifest.json").exists() {
        return Ok(vec![verify_snapshot(dir, key)?]);
    }
    if dir.join("index.jsonl").exists() {
        return Ok(vec![verify_archive(dir)]);
    }
    let snapshots = crate::sink::retention::snapshots(dir);
    if snapshots.is_empty() {
        return Err(AuditError::NotASnapshot(format!(
            "{} has no manifest.json and no published snapshots",
            dir.display()
        )));
    }
    let mut verified: Vec<Verified> = snapshots
        .iter()
        .map(|(_, path)| verify_snapshot(path, key).unwrap_or_else(|e| Verified::failed(path, e.to_string())))
        .collect();
    let mut unpublished: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| AuditError::NotASnapshot(format!("cannot list {}: {e}", dir.display())))?
        .flatten()
        .filter(|e| e.path().is_dir() && !e.path().join("manifest.json").exists())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|name| crate::sink::retention::run_time(name).is_some())
        .collect();
    unpublished.sort();
    for name in unpublished {
        verified.push(Verified::failed(&dir.join(name), "a snapshot folder without manifest.json".into()));
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("LATEST")) {
        let id = text.trim();
        if !snapshots.iter().any(|(name, _)| name == id) {
            let reason = format!("LATEST names {id:?}, which is not a published snapshot of {}", dir.display());
            verified.push(Verified::failed(&dir.join("LATEST"), reason));
        }
    }
    Ok(verified)
}

/// The report for people: one line per problem and per note, one summary line per snapshot.
pub fn render(verified: &[Verified]) -> String {
    let mut text = String::new();
    for v in verified {
        for p in &v.problems {
            text.push_str(&format!("{}: {p}\n", v.snapshot.display()));
        }
        for note in &v.notes {
            text.push_str(&format!("{}: note     {note}\n", v.snapshot.display()));
        }
        let verdict = match v.problems.as_slice() {
            [] => "ok".to_owned(),
            [Problem::Unverifiable(_)] => "not verified".to_owned(),
            problems => format!("{} problems", problems.len()),
        };
        let signed = v.signed_by.as_ref().map_or_else(String::new, |id| format!(", signed by key {id}"));
        text.push_str(&format!(
            "{}: {verdict} ({} files, {} bytes hashed{signed})\n",
            v.snapshot.display(),
            v.files,
            v.bytes
        ));
    }
    text
}

#[cfg(test)]
mod tests;
