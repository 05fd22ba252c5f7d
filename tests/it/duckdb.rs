//! The published snapshot read by DuckDB, as an analyst would: every Parquet and CSV file, every
//! control-total column summed per currency as DECIMAL, equal to the manifest to the last digit
//! (the copies of lines served twice apart, as the manifest keeps them).
//! The README's analyst queries, run as written, give the answers the sample world implies, and
//! a quantity times a unit price, like every decimal column, sums without a cast.
//! Needs a Python with the `duckdb` package named by PCRECON_TEST_PYTHON (`.ci/run` installs it).

use std::process::Command;

use crate::helpers::{demo_snapshot, test_python};

const CHECK: &str = r#"
import duckdb, json, sys
snap = sys.argv[1]
m = json.load(open(snap + "/manifest.json"))
schemas = {}
import glob, os
for path in glob.glob(sys.argv[2] + "/*.json"):
    s = json.load(open(path))
    schemas[s["name"]] = s
con = duckdb.connect()
checked = 0
for name, entry in m["datasets"].items():
    if name == "documents":
        continue
    s = schemas[name]
    pq = f"read_parquet('{snap}/{name}/**/*.parquet', hive_partitioning=true, union_by_name=true)"
    if not glob.glob(f"{snap}/{name}/**/*.parquet", recursive=True):
        pq = f"read_parquet('{snap}/{name}/*.parquet')"
    csv_glob = f"{snap}/csv/{name}/**/*.csv" if glob.glob(f"{snap}/csv/{name}/**/*.csv", recursive=True) else f"{snap}/csv/{name}/*.csv"
    csv = f"read_csv('{csv_glob}', all_varchar=true, header=true)"
    rows = con.execute(f"select count(*) from {pq}").fetchone()[0]
    assert rows == entry["rows"], (name, rows, entry["rows"])
    assert con.execute(f"select count(*) from {csv}").fetchone()[0] == rows, name
    ccy = s.get("currency_column")
    has_duplicates = any(c["name"] == "is_duplicate" for c in s["columns"])
    for col in s["totals"]:
        scale = [c for c in s["columns"] if c["name"] == col][0]["scale"]
        group = ccy if ccy else "'-'"
        for source, expr, flag in [(pq, col, "is_duplicate"), (csv, f"cast({col} as decimal(38,{scale}))", "is_duplicate = 'true'")]:
            parts = [("control_totals", f"not ({flag})"), ("served_twice_totals", flag)] if has_duplicates else [("control_totals", "true")]
            for part, where in parts:
                sums = dict(con.execute(f"select coalesce(upper({group}), '-'), sum({expr})::varchar from {source} where {where} group by 1").fetchall())
                for currency, columns in entry.get(part, {}).items():
                    assert sums[currency] == columns[col], (name, part, currency, col, sums[currency], columns[col])
                    checked += 1
print(checked)
"#;

/// Runs a check script over a fresh demo snapshot and `schemas/`: what it counted as checked.
fn check_demo_snapshot(script: &str) -> u32 {
    let python = test_python();
    let dir = tempfile::tempdir().unwrap();
    let snapshot = demo_snapshot(dir.path());
    let schemas = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let check = Command::new(python).arg("-c").arg(script).arg(&snapshot).arg(&schemas).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    String::from_utf8_lossy(&check.stdout).trim().parse().unwrap()
}

#[test]
fn duckdb_reads_every_file_and_sums_to_the_manifest() {
    let checked = check_demo_snapshot(CHECK);
    assert!(checked > 60, "{checked} sums compared");
}

#[test]
fn the_readme_answers_the_three_analyst_questions_with_one_query_each() {
    let python = test_python();
    let dir = tempfile::tempdir().unwrap();
    let snapshot = demo_snapshot(dir.path());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let check = Command::new(python)
        .arg(root.join("tests/it/analyst_questions.py"))
        .arg(&snapshot)
        .arg(root.join("README.md"))
        .arg(root.join("samples/world"))
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let checked: u32 = String::from_utf8_lossy(&check.stdout).trim().parse().unwrap();
    assert!(checked > 30, "{checked} answers compared");
}

/// Every product of a quantity and a unit price of the same line, and every decimal column,
/// summed by DuckDB with no cast: the product's type is `DECIMAL(38,22)` and its sum is the exact
/// sum Python's `decimal` gives from the same values; no sum keeps more than 22 fractional
/// digits (16 integer digits left for a year of charges).
const ARITHMETIC: &str = r#"
import duckdb, json, glob, sys
from decimal import Decimal, getcontext
getcontext().prec = 80
snap, schemas = sys.argv[1], sys.argv[2]
con = duckdb.connect()
checked = 0
for path in sorted(glob.glob(schemas + "/*.json")):
    s = json.load(open(path))
    name = s["name"]
    files = glob.glob(f"{snap}/{name}/**/*.parquet", recursive=True)
    if not files:
        continue
    pq = f"read_parquet('{snap}/{name}/**/*.parquet', hive_partitioning=true)"
    decimals = [c for c in s["columns"] if c["type"].startswith("Decimal")]
    for c in decimals:
        (kind,) = con.execute(f"select typeof(sum({c['name']})) from {pq}").fetchone()
        scale = int(kind.rstrip(")").split(",")[1])
        assert scale <= 22, (name, c["name"], kind)
        checked += 1
    quantities = [c["name"] for c in decimals if c["name"].endswith("quantity")]
    prices = [c["name"] for c in decimals if c["name"].endswith("price")]
    for q in quantities:
        for p in prices:
            kind = con.execute(f"select typeof({q} * {p}) from {pq} limit 1").fetchone()[0]
            total = con.execute(f"select sum({q} * {p})::varchar from {pq}").fetchone()[0]
            assert kind == "DECIMAL(38,22)", (name, q, p, kind)
            pairs = con.execute(f"select {q}::varchar, {p}::varchar from {pq} where {q} is not null and {p} is not null").fetchall()
            exact = sum((Decimal(a) * Decimal(b) for a, b in pairs), Decimal(0))
            assert (total is None and not pairs) or Decimal(total) == exact, (name, q, p, total, exact)
            checked += 1
print(checked)
"#;

#[test]
fn quantity_times_price_and_every_sum_fit_duckdbs_decimals_without_a_cast() {
    let checked = check_demo_snapshot(ARITHMETIC);
    assert!(checked > 100, "{checked} columns and products summed");
}
