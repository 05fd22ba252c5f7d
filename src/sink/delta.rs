//! Delta Lake tables: each dataset of a published snapshot also as a table under
//! `<destination>/delta/<dataset>/`, one commit per run, for readers that speak Delta (Spark,
//! Fabric, Databricks, Synapse, Power BI Direct Lake, delta-rs, DuckDB).
//!
//! In: the snapshot as published (its folder and manifest), the run's id, the manifest's SHA-256,
//! and the destination as a [`Store`] (a local folder or an object store). Out: per dataset one
//! new table version whose files hold exactly the snapshot's rows.
//!
//! The protocol subset: reader version 1, writer version 2 (no table features, so every reader
//! opens the tables), a JSON log without checkpoints, partitioned by `period` where the dataset
//! is. Each data file is the snapshot's Parquet file, re-encoded only because Delta's `timestamp`
//! is microseconds: a nanosecond instant keeps its microseconds (floored), the snapshot keeps
//! the rest. A commit replaces what the run covered: for line items partitioned by invoice,
//! the files of the invoices the snapshot holds (an invoice another run published and this one
//! did not ask for stays); for every other dataset, the whole table. A file whose snapshot
//! SHA-256 equals the one of the file the table has for it is kept, not rewritten, so a quiet
//! night's commit removes and adds nothing. A dataset whose schema changed (a new schema
//! version) gets its schema replaced and its whole table rewritten. A table another writer
//! upgraded (a newer protocol, table features, deletion vectors) is refused, not written over.
//! Data files go first and the log entry last, as a
//! conditional create of `_delta_log/<version>.json`, so a reader sees the previous version or
//! the new one; files of a commit that never landed are referenced by no version.
//!
//! It does not decide what a dataset holds (the writers do); it reads the snapshot's files back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampMicrosecondType, TimestampNanosecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, Utc};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};

use super::manifest::Manifest;
use super::store::{Store, StoreError};
use super::writer::parquet_properties;
use crate::tabular::batch::arrow_schema;
use crate::tabular::{ColType, Dataset, DatasetSchema, Partition, ScopeKind};

/// The folder below the destination that holds the tables.
pub const TABLES: &str = "delta";
/// The partition column of the tables of partitioned datasets.
pub const PARTITION_COLUMN: &str = "period";
/// The file tags that tie a table's file to the snapshot file it was made from.
const SOURCE_TAG: &str = "pcrecon.source";
const SHA_TAG: &str = "pcrecon.sha256";

/// What went wrong writing a table.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    /// The destination failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A snapshot file could not be read back or re-encoded.
    #[error("{file}: {message}")]
    File {
        /// The snapshot file.
        file: String,
        /// Why.
        message: String,
    },
    /// A table's log is not one this writer reads.
    #[error("the Delta table {table}: {message}")]
    Log {
        /// The table's folder.
        table: String,
        /// Why.
        message: String,
    },
}

/// One commit: a table's new version and what it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCommit {
    /// The dataset.
    pub dataset: String,
    /// The version written.
    pub version: u64,
    /// Files added.
    pub added: usize,
    /// Files removed.
    pub removed: usize,
    /// Files kept as they were.
    pub kept: usize,
}

/// Which run a commit records (in its `commitInfo.userMetadata`).
#[derive(Debug, Clone)]
pub struct RunMark<'a> {
    /// The run id (the snapshot's folder name).
    pub run_id: &'a str,
    /// The SHA-256 of the snapshot's `manifest.json`.
    pub manifest_sha256: String,
    /// When the commit is made.
    pub at: DateTime<Utc>,
}

/// A file a table's current version holds.
#[derive(Debug, Clone)]
struct Active {
    source: Option<String>,
    sha256: Option<String>,
    partition: Option<String>,
    size: u64,
    tags: Value,
}

/// A table's version (the newest, or one asked for), from its log.
#[derive(Debug, Default)]
struct TableState {
    version: Option<u64>,
    table_id: Option<String>,
    schema_string: Option<String>,
    files: BTreeMap<String, Active>,
    /// The table's properties (`metaData.configuration`), kept when the schema is replaced.
    configuration: Value,
    /// The run id each version up to this one records.
    runs: BTreeMap<u64, String>,
}

/// A snapshot file that belongs in the table.
#[derive(Debug)]
struct Wanted<'a> {
    /// The snapshot file, relative to the snapshot.
    path: &'a str,
    /// Relative to the dataset's folder: the table's source tag.
    source: String,
    partition: Option<String>,
    sha256: &'a str,
    rows: u64,
}

/// Commits every dataset of the snapshot at `snapshot` (described by `manifest`) to its table
/// below `store`'s [`TABLES`]; `scratch` is a local folder for the re-encoded files.
pub fn commit_snapshot(
    store: &Store,
    snapshot: &Path,
    manifest: &Manifest,
    run: &RunMark<'_>,
    scratch: &Path,
) -> Result<Vec<TableCommit>, DeltaError> {
    let mut commits = Vec::new();
    for name in manifest.datasets.keys() {
        let Some(schema) = Dataset::from_name(name).and_then(Dataset::schema) else { continue };
        let prefix = format!("{name}/");
        let wanted: Vec<Wanted<'_>> = manifest
            .files
            .iter()
            .filter(|f| f.path.ends_with(".parquet"))
            .filter_map(|f| {
                let source = f.path.strip_prefix(&prefix)?.to_owned();
                let partition =
                    source.split_once('/').and_then(|(dir, _)| dir.strip_prefix("period=")).map(str::to_owned);
                Some(Wanted { path: &f.path, source, partition, sha256: &f.sha256, rows: f.rows })
            })
            .collect();
        commits.push(commit_table(store, snapshot, schema, &wanted, run, scratch)?);
    }
    Ok(commits)
}

fn commit_table(
    store: &Store,
    snapshot: &Path,
    schema: &DatasetSchema,
    wanted: &[Wanted<'_>],
    run: &RunMark<'_>,
    scratch: &Path,
) -> Result<TableCommit, DeltaError> {
    let table = format!("{TABLES}/{}", schema.name);
    let state = read_state(store, &table, None)?;
    let partitioned = schema.partition != Partition::None;
    let table_schema = delta_schema(schema, partitioned);
    let schema_string = table_schema.to_string();
    // Compared as JSON, not as text: another writer may order the keys otherwise.
    let recorded = state.schema_string.as_deref().and_then(|s| serde_json::from_str::<Value>(s).ok());
    let new_schema = recorded.as_ref() != Some(&table_schema);
    // Data files are named by their source's SHA-256 and the table schema they are written in:
    // a path once written always holds the same bytes, and no commit removes and adds one path.
    let schema_tag = &crate::model::hex(&<sha2::Sha256 as sha2::Digest>::digest(schema_string.as_bytes()))[..8];
    // Files of one invoice (line items by invoice, and the parts made of them): this run covers
    // the invoices it holds; the other files (open charges, master data) it replaces whole.
    let of_one_invoice = |source: &str| {
        !new_schema
            && (schema.partition == Partition::Invoice
                || crate::sink::layout::part_source(source).is_some_and(|d| d.scope_kind() == ScopeKind::Invoice))
    };
    let by_source: BTreeMap<&str, &Wanted<'_>> = wanted.iter().map(|w| (w.source.as_str(), w)).collect();
    let now_ms = run.at.timestamp_millis();
    let mut actions: Vec<Value> = Vec::new();
    let mut kept_sources = BTreeSet::new();
    let mut removed = 0;
    for (path, file) in &state.files {
        let covered = match file.source.as_deref() {
            Some(source) => by_source.contains_key(source) || !of_one_invoice(source),
            None => new_schema || schema.partition != Partition::Invoice,
        };
        let same = file
            .source
            .as_deref()
            .and_then(|s| by_source.get(s))
            .is_some_and(|w| file.sha256.as_deref() == Some(w.sha256));
        if same && !new_schema {
            kept_sources.insert(file.source.clone().unwrap_or_default());
        } else if covered {
            actions.push(json!({"remove": {
                "path": path,
                "deletionTimestamp": now_ms,
                "dataChange": true,
                "extendedFileMetadata": true,
                "partitionValues": partition_values(partitioned, file.partition.as_deref()),
                "size": file.size,
                "tags": file.tags,
            }}));
            removed += 1;
        }
    }
    let mut added = 0;
    for want in wanted.iter().filter(|w| !kept_sources.contains(&w.source)) {
        let stem = want.source.trim_end_matches(".parquet");
        let data_path = format!("{stem}-{}-{schema_tag}.parquet", &want.sha256[..16.min(want.sha256.len())]);
        let local = scratch.join(format!("{}-{}", schema.name, data_path.replace('/', "_")));
        let truncated = reencode(&snapshot.join(want.path), schema, &local)?;
        if truncated > 0 {
            tracing::info!(event = "delta_timestamps_floored", dataset = %schema.name, file = want.path, values = truncated);
        }
        let object = format!("{table}/{data_path}");
        // A file an earlier commit wrote (then removed) comes back as it was: never overwritten.
        let size = match store.size_of(&object)? {
            Some(size) => size,
            None => store.upload_file(&local, &object)?,
        };
        let _ = std::fs::remove_file(&local);
        actions.push(json!({"add": {
            "path": data_path,
            "partitionValues": partition_values(partitioned, want.partition.as_deref()),
            "size": size,
            "modificationTime": now_ms,
            "dataChange": true,
            "stats": json!({"numRecords": want.rows}).to_string(),
            "tags": {SOURCE_TAG: want.source, SHA_TAG: want.sha256},
        }}));
        added += 1;
    }
    let version = state.version.map_or(0, |v| v + 1);
    let mut lines: Vec<Value> = Vec::new();
    lines.push(json!({"commitInfo": {
        "timestamp": now_ms,
        "operation": "WRITE",
        "operationParameters": {
            "mode": "Overwrite",
            "partitionBy": serde_json::to_string(&partition_columns(partitioned)).unwrap_or_default(),
        },
        "engineInfo": concat!("pcrecon/", env!("CARGO_PKG_VERSION")),
        "isBlindAppend": false,
        "userMetadata": json!({"run_id": run.run_id, "manifest_sha256": run.manifest_sha256}).to_string(),
    }}));
    if state.version.is_none() {
        lines.push(json!({"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}));
    }
    if new_schema {
        let id = state.table_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        lines.push(json!({"metaData": {
            "id": id,
            "name": schema.name.name(),
            "description": schema.description,
            "format": {"provider": "parquet", "options": {}},
            "schemaString": schema_string,
            "partitionColumns": partition_columns(partitioned),
            "configuration": if state.configuration.is_object() { state.configuration.clone() } else { json!({}) },
            "createdTime": now_ms,
        }}));
    }
    lines.extend(actions);
    let mut log = String::new();
    for line in &lines {
        log.push_str(&line.to_string());
        log.push('\n');
    }
    let entry = format!("{table}/_delta_log/{version:020}.json");
    if !store.put_new(&entry, log.into_bytes())? {
        return Err(DeltaError::Log {
            table: store.url().join(&table),
            message: format!(
                "version {version} was written by another writer meanwhile; this run's commit is not made"
            ),
        });
    }
    let kept = kept_sources.len();
    tracing::info!(event = "delta_committed", table = %store.url().join(&table), version, added, removed, kept);
    Ok(TableCommit { dataset: schema.name.to_string(), version, added, removed, kept })
}

fn partition_columns(partitioned: bool) -> Vec<&'static str> {
    if partitioned { vec![PARTITION_COLUMN] } else { Vec::new() }
}

fn partition_values(partitioned: bool, value: Option<&str>) -> Value {
    if partitioned { json!({ PARTITION_COLUMN: value }) } else { json!({}) }
}

/// Replays a table's JSON log up to `upto` (default: its newest version): the version, its id
/// and schema, the files it holds, and the run each version records.
fn read_state(store: &Store, table: &str, upto: Option<u64>) -> Result<TableState, DeltaError> {
    let log = format!("{table}/_delta_log");
    let bad = |message: String| DeltaError::Log { table: store.url().join(table), message };
    let mut versions: Vec<u64> =
        store.list(&log)?.iter().filter_map(|n| n.strip_suffix(".json")?.parse().ok()).collect();
    versions.sort_unstable();
    versions.retain(|v| upto.is_none_or(|u| *v <= u));
    let mut state = TableState::default();
    for (expected, version) in versions.iter().enumerate() {
        if *version != expected as u64 {
            return Err(bad(format!(
                "its log has no version {expected} (a checkpoint of another writer replaced the start of it); pcrecon replays a whole JSON log"
            )));
        }
        let bytes = store.read(&format!("{log}/{version:020}.json"))?.unwrap_or_default();
        for line in String::from_utf8_lossy(&bytes).lines().filter(|l| !l.trim().is_empty()) {
            let action: Value = serde_json::from_str(line).map_err(|e| bad(format!("version {version}: {e}")))?;
            if let Some(protocol) = action.get("protocol") {
                let reader = protocol["minReaderVersion"].as_u64().unwrap_or(0);
                let writer = protocol["minWriterVersion"].as_u64().unwrap_or(0);
                let features = protocol.get("readerFeatures").or(protocol.get("writerFeatures")).is_some();
                if reader > 1 || writer > 2 || features {
                    return Err(bad(format!(
                        "version {version} asks for reader {reader} / writer {writer}{}; pcrecon writes reader 1 / writer 2 tables only",
                        if features { " with table features" } else { "" }
                    )));
                }
            } else if let Some(add) = action.get("add") {
                if add.get("deletionVector").is_some_and(|d| !d.is_null()) {
                    return Err(bad(format!("version {version} has a deletion vector, which pcrecon does not read")));
                }
                let path = add["path"].as_str().unwrap_or_default().to_owned();
                let tag = |name: &str| add["tags"][name].as_str().map(str::to_owned);
                let partition = add["partitionValues"][PARTITION_COLUMN].as_str().map(str::to_owned);
                let size = add["size"].as_u64().unwrap_or(0);
                let tags = add.get("tags").cloned().unwrap_or(Value::Null);
                let active = Active { source: tag(SOURCE_TAG), sha256: tag(SHA_TAG), partition, size, tags };
                state.files.insert(path, active);
            } else if let Some(remove) = action.get("remove") {
                state.files.remove(remove["path"].as_str().unwrap_or_default());
            } else if let Some(meta) = action.get("metaData") {
                state.table_id = meta["id"].as_str().map(str::to_owned);
                state.schema_string = meta["schemaString"].as_str().map(str::to_owned);
                state.configuration = meta["configuration"].clone();
            } else if let Some(info) = action.get("commitInfo") {
                let mark = info["userMetadata"].as_str().and_then(|m| serde_json::from_str::<Value>(m).ok());
                if let Some(run) = mark.as_ref().and_then(|m| m["run_id"].as_str()) {
                    state.runs.insert(*version, run.to_owned());
                }
            }
        }
        state.version = Some(*version);
    }
    Ok(state)
}

/// Which version of each table to read: a version number, or the version a run committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum At {
    /// This version of every table.
    Version(u64),
    /// In every table, the version this run (its snapshot's id) committed.
    Run(String),
}

impl At {
    /// A version number, or else a run id.
    pub fn parse(text: &str) -> At {
        text.parse().map_or_else(|_| At::Run(text.to_owned()), At::Version)
    }
}

/// What [`rebuild`] made: per dataset, the table version it read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rebuilt {
    /// Dataset → version.
    pub versions: BTreeMap<String, u64>,
    /// Tables that have no such version (or no commit of that run).
    pub missing: Vec<String>,
}

/// Rebuilds into the folder `into` the snapshot a version of the tables holds, as a snapshot
/// folder `pcrecon diff` reads: each table's files in their snapshot places (instants in
/// nanoseconds again, at the microseconds the table keeps) and a `manifest.json` listing them
/// with the SHA-256 of the snapshot files they were made from (so two versions that share a
/// file compare it as identical). Control totals are not in the tables: the rebuilt manifest
/// has none, and `diff` compares rows.
pub fn rebuild(store: &Store, at: &At, into: &Path) -> Result<Rebuilt, DeltaError> {
    let mut rebuilt = Rebuilt::default();
    let mut datasets = BTreeMap::new();
    let mut files = Vec::new();
    for dataset in Dataset::ALL {
        let Some(schema) = dataset.schema() else { continue };
        let table = format!("{TABLES}/{}", dataset.name());
        let newest = read_state(store, &table, None)?;
        let Some(last) = newest.version else { continue };
        let version = match at {
            At::Version(v) if *v <= last => Some(*v),
            At::Version(_) => None,
            At::Run(run) => newest.runs.iter().find(|(_, r)| *r == run).map(|(v, _)| *v),
        };
        let Some(version) = version else {
            rebuilt.missing.push(dataset.name().to_owned());
            continue;
        };
        let state = read_state(store, &table, Some(version))?;
        let mut entry = super::manifest::DatasetEntry::of(schema);
        for (path, file) in &state.files {
            let source = file.source.clone().unwrap_or_else(|| path.clone());
            let rel = format!("{}/{source}", dataset.name());
            let bytes = store.read(&format!("{table}/{path}"))?.ok_or_else(|| DeltaError::Log {
                table: store.url().join(&table),
                message: format!("version {version} names {path}, which is not there"),
            })?;
            let target = into.join(&rel);
            let rows =
                restore(&bytes, schema, &target).map_err(|message| DeltaError::File { file: rel.clone(), message })?;
            entry.rows += rows;
            let bytes_written = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
            let sha256 = file.sha256.clone().unwrap_or_else(|| path.clone());
            files.push(super::writer::FileReport { path: rel, rows, bytes: bytes_written, sha256 });
        }
        datasets.insert(dataset.name().to_owned(), entry);
        rebuilt.versions.insert(dataset.name().to_owned(), version);
    }
    let described = match at {
        At::Version(v) => format!("Delta table version {v} of {}", store.url()),
        At::Run(run) => format!("Delta table versions of run {run} in {}", store.url()),
    };
    let manifest = Manifest {
        format: super::manifest::MANIFEST_FORMAT,
        source: [("delta".to_owned(), described)].into_iter().collect(),
        provenance: super::manifest::Provenance::default(),
        datasets,
        checks: BTreeMap::new(),
        files,
        lineage: BTreeMap::new(),
        exports: BTreeMap::new(),
        operations: BTreeMap::new(),
        not_ready: BTreeMap::new(),
        schema_drift: BTreeMap::new(),
    };
    let text = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| DeltaError::File { file: "manifest.json".into(), message: e.to_string() })?;
    std::fs::write(into.join("manifest.json"), text).map_err(|e| DeltaError::File {
        file: into.join("manifest.json").display().to_string(),
        message: e.to_string(),
    })?;
    Ok(rebuilt)
}

/// Writes a table data file back in the snapshot's schema (instants in nanoseconds); its rows.
fn restore(bytes: &[u8], schema: &DatasetSchema, to: &Path) -> Result<u64, String> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    rewrite(bytes::Bytes::copy_from_slice(bytes), arrow_schema(schema), to, |column, field| {
        match (column.data_type(), field.data_type()) {
            (DataType::Timestamp(TimeUnit::Microsecond, _), DataType::Timestamp(TimeUnit::Nanosecond, tz)) => {
                let micros = column.as_primitive::<TimestampMicrosecondType>();
                let nanos = micros.unary::<_, TimestampNanosecondType>(|v| v.saturating_mul(1000));
                Arc::new(nanos.with_timezone_opt(tz.clone())) as ArrayRef
            }
            _ => column.clone(),
        }
    })
}

/// Copies the Parquet rows of `input` into a new file `to` written in `target`, each column
/// passed through `convert` (with the target's field); the rows written.
fn rewrite<R: parquet::file::reader::ChunkReader + 'static>(
    input: R,
    target: Arc<Schema>,
    to: &Path,
    mut convert: impl FnMut(&ArrayRef, &Field) -> ArrayRef,
) -> Result<u64, String> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(input)
        .and_then(|b| b.with_batch_size(8192).build())
        .map_err(|e| e.to_string())?;
    let file = std::fs::File::create(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let props = parquet_properties().map_err(|e| e.to_string())?;
    let mut writer = ArrowWriter::try_new(file, target.clone(), Some(props)).map_err(|e| e.to_string())?;
    let mut rows = 0;
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let columns: Vec<ArrayRef> =
            batch.columns().iter().zip(target.fields()).map(|(column, field)| convert(column, field)).collect();
        let batch = RecordBatch::try_new(target.clone(), columns).map_err(|e| e.to_string())?;
        rows += batch.num_rows() as u64;
        writer.write(&batch).map_err(|e| e.to_string())?;
    }
    writer.close().map_err(|e| e.to_string())?;
    Ok(rows)
}

/// The Delta type of a column.
fn delta_type(ty: ColType) -> String {
    match ty {
        ColType::Utf8 | ColType::Json => "string".into(),
        ColType::Decimal { scale, .. } => format!("decimal(38,{scale})"),
        ColType::Int64 => "long".into(),
        ColType::Bool => "boolean".into(),
        ColType::Timestamp | ColType::TimestampMicros => "timestamp".into(),
        ColType::Date => "date".into(),
    }
}

/// A dataset's table schema (Delta's JSON form), with the partition column last.
fn delta_schema(schema: &DatasetSchema, partitioned: bool) -> Value {
    let mut fields: Vec<Value> = schema
        .columns
        .iter()
        .map(|c| json!({"name": c.name, "type": delta_type(c.ty), "nullable": c.nullable, "metadata": {}}))
        .collect();
    if partitioned {
        fields.push(json!({"name": PARTITION_COLUMN, "type": "string", "nullable": true, "metadata": {}}));
    }
    json!({"type": "struct", "fields": fields})
}

/// The table's Arrow schema of a dataset's data files: the snapshot's, nanoseconds made micro.
fn table_arrow_schema(schema: &DatasetSchema) -> Arc<Schema> {
    let fields: Vec<Field> = arrow_schema(schema)
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Timestamp(TimeUnit::Nanosecond, tz) => {
                Field::new(f.name(), DataType::Timestamp(TimeUnit::Microsecond, tz.clone()), f.is_nullable())
            }
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Writes the snapshot file `from` again as a table data file at `to`; returns how many
/// nanosecond instants lost digits below the microsecond.
fn reencode(from: &Path, schema: &DatasetSchema, to: &Path) -> Result<u64, DeltaError> {
    let fail = |message: String| DeltaError::File { file: from.display().to_string(), message };
    let input = std::fs::File::open(from).map_err(|e| fail(e.to_string()))?;
    let mut floored = 0u64;
    rewrite(input, table_arrow_schema(schema), to, |column, _| match column.data_type() {
        DataType::Timestamp(TimeUnit::Nanosecond, tz) => {
            let nanos = column.as_primitive::<TimestampNanosecondType>();
            floored += nanos.iter().flatten().filter(|v| v % 1000 != 0).count() as u64;
            let micros = nanos.unary::<_, TimestampMicrosecondType>(|v| v.div_euclid(1000));
            Arc::new(micros.with_timezone_opt(tz.clone())) as ArrayRef
        }
        _ => column.clone(),
    })
    .map_err(fail)?;
    Ok(floored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_type_has_a_delta_type_readers_know() {
        let recon = Dataset::BilledRecon.schema().unwrap();
        let schema = delta_schema(recon, true);
        let fields = schema["fields"].as_array().unwrap();
        assert_eq!(fields.len(), recon.columns.len() + 1);
        assert_eq!(fields.last().unwrap()["name"], "period");
        let amount = fields.iter().find(|f| f["name"] == "total_for_customer").unwrap();
        assert_eq!(amount["type"], "decimal(38,10)", "amounts keep their scale");
        assert_eq!(At::parse("3"), At::Version(3));
        assert_eq!(At::parse("20261201T020000Z"), At::Run("20261201T020000Z".into()));
        assert!(
            table_arrow_schema(recon)
                .fields()
                .iter()
                .all(|f| !matches!(f.data_type(), DataType::Timestamp(TimeUnit::Nanosecond, _)))
        );
    }
}
