//! `manifest.json`: what an auditor checks a snapshot against. Per file its rows, bytes and
//! SHA-256; per dataset and currency the control totals; the checks' counts; per invoice its
//! lineage; the v2 exports, the sequences not ready, and the schema drift; what made it
//! (provenance) and each dataset's columns.
//!
//! In: nothing (types), and a dataset's schema for its columns. Out: the manifest's serde shape,
//! read back by `verify` and `diff`. It computes nothing.

use std::collections::BTreeMap;

use serde::Serialize;

use super::writer::FileReport;
use crate::tabular::{DatasetSchema, arrow_type};

/// What the API sent that the datasets' columns did not expect, per extracted dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Drift {
    /// Items carrying each member no column reads, by the member's name as sent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unknown: BTreeMap<String, u64>,
    /// v2 export lines lacking each attribute their attribute set promises.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub missing: BTreeMap<String, u64>,
}

impl Drift {
    /// Adds another sequence's drift into this one.
    pub fn add(&mut self, other: &Drift) {
        for (field, n) in &other.unknown {
            *self.unknown.entry(field.clone()).or_default() += n;
        }
        for (field, n) in &other.missing {
            *self.missing.entry(field.clone()).or_default() += n;
        }
    }
}

/// One dataset in the manifest.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct DatasetEntry {
    /// Schema version.
    pub schema_version: u32,
    /// Rows.
    pub rows: u64,
    /// Σ per currency of each control-total column over the distinct rows, fixed-point at the
    /// column's scale.
    pub control_totals: BTreeMap<String, BTreeMap<String, String>>,
    /// Rows that are a later copy of a line the API served twice (in `rows`, not in
    /// `control_totals`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub served_twice_rows: u64,
    /// Σ of those copies, as `control_totals` are given.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub served_twice_totals: BTreeMap<String, BTreeMap<String, String>>,
    /// The columns, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<ColumnEntry>,
}

impl DatasetEntry {
    /// A dataset's entry before its rows are counted: its version and columns.
    pub fn of(schema: &DatasetSchema) -> DatasetEntry {
        let columns = schema
            .columns
            .iter()
            .map(|c| ColumnEntry { name: c.name.to_owned(), ty: arrow_type(c.ty), nullable: c.nullable })
            .collect();
        DatasetEntry { columns, ..DatasetEntry::new(schema.version) }
    }

    /// An entry of a version, without columns (documents, which are files, not a table).
    pub fn new(schema_version: u32) -> DatasetEntry {
        DatasetEntry {
            schema_version,
            rows: 0,
            control_totals: BTreeMap::new(),
            served_twice_rows: 0,
            served_twice_totals: BTreeMap::new(),
            columns: Vec::new(),
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What made a snapshot and the settings that change its numbers; identical runs record
/// identical provenance, and two snapshots that differ only by a setting say which.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Provenance {
    /// The pcrecon that wrote the snapshot.
    pub pcrecon_version: String,
    /// The partner's tenant.
    pub tenant_id: String,
    /// Per dataset both APIs serve: `auto`, `v1` or `v2`.
    pub routing: BTreeMap<String, String>,
    /// Under `auto`, the first billing month each dataset is asked of the v2 export, and the
    /// attribute set asked.
    pub v2: BTreeMap<String, String>,
    /// The reporting currency (none: amounts are not converted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporting_currency: Option<String>,
    /// How reporting amounts are rounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounding: Option<String>,
    /// Which day's rate converts a row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_date: Option<String>,
    /// SHA-256 of the rate table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_table_sha256: Option<String>,
    /// Where the exchange rates came from, when not a rate table (`partner_center`: the month
    /// files under `fxrates/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_source: Option<String>,
    /// The tie-out's tolerance per billing currency (none: differences must be zero).
    pub tolerance: BTreeMap<String, String>,
    /// The run fetched only some documents (by invoice date or id), so the summaries' tie-out
    /// is `partial`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub filtered: bool,
}

/// One column of a dataset as written: its name, its Arrow type, whether it may be null.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ColumnEntry {
    /// The column.
    pub name: String,
    /// Its Arrow type, as `schemas/README.md` writes it.
    #[serde(rename = "type")]
    pub ty: String,
    /// Whether it may be null.
    pub nullable: bool,
}

/// The format of the manifests this version writes.
pub const MANIFEST_FORMAT: u32 = 2;

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Manifest format.
    pub format: u32,
    /// Where the data came from.
    pub source: BTreeMap<String, String>,
    /// What made the snapshot, and with which settings.
    #[serde(default)]
    pub provenance: Provenance,
    /// Per dataset.
    pub datasets: BTreeMap<String, DatasetEntry>,
    /// Line items per match status (`match:<dataset>`) and invoices per tie-out status (`tie_out`).
    pub checks: BTreeMap<String, BTreeMap<String, u64>>,
    /// Every file: path, rows, bytes, SHA-256.
    pub files: Vec<FileReport>,
    /// Per invoice, where its content came from; what tells a restated invoice.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lineage: BTreeMap<String, InvoiceLineage>,
    /// Per `dataset/scope` served by the v2 export: the data it read (eTag, attribute set).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exports: BTreeMap<String, ExportData>,
    /// Per `dataset/scope` served by the v2 export: the operation, manifest and files that served
    /// it. They go to `run.json`, not here: an export renewed after a failure has other ids and
    /// file names for the same data (the same eTag), and the manifest says only what the data is.
    #[serde(skip)]
    pub operations: BTreeMap<String, ExportOperation>,
    /// Per `dataset/scope` the v2 export could not serve yet: what it said. Such a sequence has
    /// no file in the snapshot.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub not_ready: BTreeMap<String, String>,
    /// Per extracted dataset, what the API sent beyond the columns (`unknown`), and what v2
    /// lines lacked of their attribute set (`missing`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub schema_drift: BTreeMap<String, Drift>,
}

/// The data one v2 export served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ExportData {
    /// The data version.
    pub etag: String,
    /// `full` or `basic`.
    pub attribute_set: String,
}

/// The v2 operation, manifest and files that served one export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportOperation {
    /// The export operation.
    pub operation_id: String,
    /// Its manifest.
    pub manifest_id: String,
    /// The files read, in order.
    pub blobs: Vec<String>,
}

/// Where one invoice's content came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct InvoiceLineage {
    /// SHA-256 over its sequences (by-id record, statement, line items), each the SHA-256 of its
    /// items' digests (the first 16 bytes of each item's SHA-256, as served): it changes exactly
    /// when the API serves the invoice differently.
    pub content_sha256: String,
    /// The eTag of each of its datasets the v2 export served: a new eTag is new data.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub etags: BTreeMap<String, String>,
}
