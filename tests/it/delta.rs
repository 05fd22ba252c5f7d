//! The Delta Lake tables, read back with an independent reader (the `deltalake` Python package,
//! delta-rs's own reader, into pyarrow): nightly versions, time travel across a restatement,
//! exact decimal sums equal to each snapshot's manifest, and the commit's record of its run.

use std::path::Path;
use std::process::Command;

use arrow_array::Array;
use serde_json::Value;

use crate::helpers::{Emulator, latest, pcrecon, restated_worlds, run, test_python, write_config};

/// Prints, for each table below sys.argv[1] (storage options as JSON in argv[2]), per version
/// asked (argv[3], JSON list): rows, the exact sums per currency of the manifest's control-total
/// columns (lines served twice apart, as the manifest keeps them), the row keys and a digest of
/// each row; and the table's history.
const READ: &str = r#"
import decimal, hashlib, json, sys
from deltalake import DeltaTable
decimal.getcontext().prec = 100
root, options, versions, schemas_dir = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
names = json.loads(sys.argv[5])
out = {}
for name in names:
    schema = json.load(open(f"{schemas_dir}/{name}.json"))
    ccy = schema.get("currency_column")
    dup = any(c["name"] == "is_duplicate" for c in schema["columns"])
    uri = f"{root}/delta/{name}"
    table = DeltaTable(uri, storage_options=options)
    entry = {"version": table.version(), "history": [h.get("userMetadata") for h in table.history()], "versions": {}}
    protocol = table.protocol()
    entry["protocol"] = [protocol.min_reader_version, protocol.min_writer_version]
    entry["partitions"] = table.metadata().partition_columns
    for v in versions:
        t = DeltaTable(uri, version=v, storage_options=options).to_pyarrow_table()
        rows = t.to_pylist()
        sums = {}
        for row in rows:
            if dup and row["is_duplicate"]:
                continue
            currency = (row[ccy] or "-").upper() if ccy else "-"
            for col in schema["totals"]:
                value = row[col]
                if value is None:
                    continue
                assert isinstance(value, decimal.Decimal), (name, col, type(value))
                sums.setdefault(currency, {}).setdefault(col, decimal.Decimal(0))
                sums[currency][col] += value
        digests = {}
        if "row_key" in t.column_names:
            for row in rows:
                text = json.dumps({k: str(v) for k, v in row.items()}, sort_keys=True)
                digests[row["row_key"]] = hashlib.sha256(text.encode()).hexdigest()
        entry["versions"][str(v)] = {
            "rows": len(rows),
            "sums": {c: {k: str(v) for k, v in cols.items()} for c, cols in sums.items()},
            "digests": digests,
        }
    out[name] = entry
print(json.dumps(out), flush=True)
# The reader's native threads can abort the interpreter's teardown ("terminate called without
# an active exception"): everything is read and printed by now, so leave without one.
import os
os._exit(0)
"#;

/// Reads the tables of `names` below `root` at `versions` with the Python reader.
pub fn read_tables(root: &str, options: &Value, versions: &[u64], names: &[&str]) -> Value {
    let schemas = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let read = Command::new(test_python())
        .args(["-c", READ, root, &options.to_string(), &serde_json::to_string(versions).unwrap()])
        .arg(&schemas)
        .arg(serde_json::to_string(names).unwrap())
        .output()
        .unwrap();
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    serde_json::from_slice(&read.stdout).unwrap()
}

pub fn manifest(snapshot: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(snapshot.join("manifest.json")).unwrap()).unwrap()
}

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// The manifest's control totals of a dataset equal the sums the reader made, as decimals: every
/// total the manifest states (a zero one too, which the table may lack when no row has a value),
/// and no sum the manifest does not state.
pub fn assert_sums_equal(name: &str, manifest: &Value, sums: &Value) {
    let expected = &manifest["datasets"][name]["control_totals"];
    let as_map = |v: &Value| -> std::collections::BTreeMap<(String, String), rust_decimal::Decimal> {
        let mut out = std::collections::BTreeMap::new();
        for (currency, columns) in v.as_object().into_iter().flatten() {
            for (column, value) in columns.as_object().unwrap() {
                let d: rust_decimal::Decimal = value.as_str().unwrap().parse().unwrap();
                out.insert((currency.clone(), column.clone()), d.normalize());
            }
        }
        out
    };
    let (stated, summed) = (as_map(expected), as_map(sums));
    assert!(!stated.is_empty() || summed.is_empty(), "{name}: sums without stated totals: {summed:?}");
    for (key, total) in &stated {
        let sum = summed.get(key).copied().unwrap_or_default();
        assert_eq!(sum, *total, "{name} {key:?}: the table's exact sum is the manifest's");
    }
    for (key, sum) in &summed {
        assert!(stated.contains_key(key), "{name} {key:?}: a sum {sum} the manifest does not state");
    }
}

#[test]
fn two_nights_with_a_restatement_give_two_table_versions_that_differ_by_exactly_the_restated_line() {
    let dir = tempfile::tempdir().unwrap();
    let (before_world, after_world, restatement) = restated_worlds(dir.path());
    let delta = "[output]\ndelta = true\n";
    let night = |world: &Path| {
        let emulator = Emulator::start(&["--world", world.to_str().unwrap()]);
        let finished = run(&write_config(&emulator, dir.path(), delta), &[], &[]);
        assert_eq!(finished.code, 0, "{}\n{}", finished.stdout, finished.stderr);
        finished
    };
    let out = dir.path().join("out");
    night(&before_world);
    let first = latest(&out);
    let second_night = night(&after_world);
    let second = latest(&out);
    assert!(!second_night.summary()["delta_tables"].as_array().unwrap().is_empty(), "{}", second_night.stdout);
    let quiet = night(&after_world);
    let third = latest(&out);
    let tables = quiet.summary()["delta_tables"].as_array().unwrap().clone();
    let changed: u64 = tables.iter().map(|t| t["added"].as_u64().unwrap() + t["removed"].as_u64().unwrap()).sum();
    assert!(!tables.is_empty() && changed == 0, "a quiet night rewrites nothing: {}", quiet.stdout);

    let names = [
        "billed_recon_line_items",
        "billed_consumption_line_items",
        "invoices",
        "customers",
        "reconciliation",
        "unbilled_consumption_line_items",
    ];
    let tables = read_tables(out.to_str().unwrap(), &serde_json::json!({}), &[0, 1, 2], &names);
    let snapshots = [&first, &second, &third];
    for name in names {
        let table = &tables[name];
        assert_eq!(table["version"], 2, "{name}: one version per night");
        assert_eq!(table["protocol"], serde_json::json!([1, 2]), "{name}: readable without table features");
        let partitioned = name != "customers" && name != "reconciliation";
        assert_eq!(
            table["partitions"] == serde_json::json!(["period"]),
            partitioned,
            "{name}: {}",
            table["partitions"]
        );
        // Newest first: each commit names its run and its manifest.
        let history: Vec<Value> = table["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| serde_json::from_str(h.as_str().unwrap()).unwrap())
            .collect();
        for (version, snapshot) in snapshots.iter().enumerate() {
            let mark = &history[2 - version];
            assert_eq!(mark["run_id"], snapshot.file_name().unwrap().to_str().unwrap(), "{name} v{version}");
            assert_eq!(mark["manifest_sha256"], sha256(&snapshot.join("manifest.json")), "{name} v{version}");
            let read = &table["versions"][version.to_string()];
            let manifest = manifest(snapshot);
            assert_eq!(read["rows"], manifest["datasets"][name]["rows"], "{name} v{version}: rows");
            assert_sums_equal(name, &manifest, &read["sums"]);
        }
    }
    // Version 0 to 1 changed exactly the restated line among the line items; 1 to 2 nothing.
    let digests = |version: &str, name: &str| tables[name]["versions"][version]["digests"].as_object().unwrap().clone();
    for name in ["billed_recon_line_items", "billed_consumption_line_items"] {
        let (v0, v1, v2) = (digests("0", name), digests("1", name), digests("2", name));
        assert_eq!(v0.keys().collect::<Vec<_>>(), v1.keys().collect::<Vec<_>>(), "{name}: no row added or removed");
        let changed: Vec<&String> = v0.iter().filter(|(k, d)| v1[k.as_str()] != **d).map(|(k, _)| k).collect();
        assert_eq!(
            changed.len(),
            usize::from(name == "billed_recon_line_items"),
            "{name}: {changed:?} ({restatement})"
        );
        assert_eq!(v1, v2, "{name}: the quiet night changed nothing");
    }
    // The restated line is the one `pcrecon diff` names.
    let diff_out = dir.path().join("diff");
    let diffed =
        pcrecon(&["diff", first.to_str().unwrap(), second.to_str().unwrap(), "--out", diff_out.to_str().unwrap()], &[]);
    assert_eq!(diffed.code, 1, "{}", diffed.stderr);
    let (v0, v1) = (digests("0", "billed_recon_line_items"), digests("1", "billed_recon_line_items"));
    let changed_key = v0.iter().find(|(k, d)| v1[k.as_str()] != **d).map(|(k, _)| k.clone()).unwrap();
    let changes = crate::helpers::batches(&diff_out, "diff_changes");
    let keys: Vec<String> = changes
        .iter()
        .flat_map(|b| {
            let column = b.column_by_name("row_key").unwrap();
            let strings = arrow_array::cast::AsArray::as_string::<i32>(column);
            (0..strings.len()).map(|i| strings.value(i).to_owned()).collect::<Vec<_>>()
        })
        .collect();
    assert!(keys.contains(&changed_key), "{changed_key} not among {keys:?}");

    // The tables' versions compared as snapshots are: the same rows change, by version or by run.
    let line_keys = |out: &Path| -> std::collections::BTreeSet<String> {
        let changes = crate::helpers::batches(out, "diff_changes");
        let mut keys = std::collections::BTreeSet::new();
        for b in &changes {
            let dataset = arrow_array::cast::AsArray::as_string::<i32>(b.column_by_name("dataset").unwrap());
            let key = arrow_array::cast::AsArray::as_string::<i32>(b.column_by_name("row_key").unwrap());
            for i in 0..b.num_rows() {
                if dataset.value(i) == "billed_recon_line_items" {
                    keys.insert(key.value(i).to_owned());
                }
            }
        }
        keys
    };
    assert_eq!(line_keys(&diff_out), [changed_key.clone()].into_iter().collect());
    let run_id = |s: &Path| s.file_name().unwrap().to_str().unwrap().to_owned();
    for (a, b, name) in [("0".to_owned(), "1".to_owned(), "versions"), (run_id(&first), run_id(&second), "runs")] {
        let out_dir = dir.path().join(format!("delta-diff-{name}"));
        let diffed =
            pcrecon(&["diff", "--delta", out.to_str().unwrap(), &a, &b, "--out", out_dir.to_str().unwrap()], &[]);
        assert_eq!(diffed.code, 1, "{name}: {}\n{}", diffed.stdout, diffed.stderr);
        assert_eq!(line_keys(&out_dir), [changed_key.clone()].into_iter().collect(), "{name}");
    }
    let quiet_diff = dir.path().join("delta-diff-quiet");
    let same =
        pcrecon(&["diff", "--delta", out.to_str().unwrap(), "1", "2", "--out", quiet_diff.to_str().unwrap()], &[]);
    assert_eq!(same.code, 0, "versions 1 and 2 hold the same rows: {}\n{}", same.stdout, same.stderr);
}
