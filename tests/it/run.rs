//! `pcrecon run` and `pcrecon demo`: every dataset as Parquet and CSV with a manifest, amounts
//! exact to the last digit, byte-identical reruns, and nothing visible after a failure.

use std::collections::BTreeMap;
use std::path::Path;

use arrow_array::{Array, BooleanArray, Decimal128Array, StringArray};
use rust_decimal::Decimal;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::{
    Emulator, batches, bin, dec, digest_tree, latest, pcrecon, samples, truth, visible_tree, write_config,
};

fn demo(out: &Path) -> String {
    demo_with(out, "")
}

fn demo_with(out: &Path, faults: &str) -> String {
    demo_env(out, faults, &[])
}

fn demo_env(out: &Path, faults: &str, env: &[(&str, &str)]) -> String {
    let mut command = std::process::Command::new(bin());
    // The table a person reads on a terminal (a pipe gets JSON by default).
    command.args(["demo", "--summary", "text", "--faults", faults, "--out"]).arg(out);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn manifest(snapshot: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(snapshot.join("manifest.json")).unwrap()).unwrap()
}

/// truth.json field name → output column name.
fn column_of(field: &str) -> String {
    pcrecon::tabular::snake(field)
}

fn decimals(batch: &arrow_array::RecordBatch, column: &str) -> Decimal128Array {
    batch.column_by_name(column).unwrap().as_any().downcast_ref::<Decimal128Array>().unwrap().clone()
}

/// The value of a Decimal128 cell.
fn decimal_at(array: &Decimal128Array, i: usize) -> Decimal {
    pcrecon::normalize::decode::from_decimal128(array.value(i), array.scale() as u32).unwrap().normalize()
}

/// Σ of a decimal column per currency over every Parquet file of a dataset, a line served twice
/// counted once.
fn parquet_sums(snapshot: &Path, dataset: &str, column: &str, currency: &str) -> BTreeMap<String, Decimal> {
    let mut sums = BTreeMap::new();
    for batch in batches(snapshot, dataset) {
        let values = decimals(&batch, column);
        let currencies =
            batch.column_by_name(currency).unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
        let duplicate =
            batch.column_by_name("is_duplicate").unwrap().as_any().downcast_ref::<BooleanArray>().unwrap().clone();
        for i in (0..batch.num_rows()).filter(|i| !values.is_null(*i) && !duplicate.value(*i)) {
            *sums.entry(currencies.value(i).to_owned()).or_default() += decimal_at(&values, i);
        }
    }
    sums
}

/// Σ of a column per currency over every CSV file of a dataset, a line served twice counted once.
fn csv_sums(snapshot: &Path, dataset: &str, column: &str, currency: &str) -> BTreeMap<String, Decimal> {
    let mut sums = BTreeMap::new();
    let root = snapshot.join("csv").join(dataset);
    for (file, _) in digest_tree(&root) {
        let mut reader = csv::Reader::from_path(root.join(&file)).unwrap();
        let headers = reader.headers().unwrap().clone();
        let at = headers.iter().position(|h| h == column).unwrap();
        let ccy = headers.iter().position(|h| h == currency).unwrap();
        let duplicate = headers.iter().position(|h| h == "is_duplicate").unwrap();
        for record in reader.records() {
            let record = record.unwrap();
            if !record[at].is_empty() && &record[duplicate] == "false" {
                *sums.entry(record[ccy].to_owned()).or_default() += record[at].parse::<Decimal>().unwrap();
            }
        }
    }
    sums
}

#[test]
fn the_demo_publishes_every_dataset_exact_to_the_last_digit() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let stdout = demo(&out);
    assert!(stdout.contains("billed_recon_line_items") && stdout.contains("control totals"), "{stdout}");
    let snapshot = latest(&out);
    let manifest = manifest(&snapshot);
    let truth = truth(&samples());

    for (dataset, rows) in truth["datasets"].as_object().unwrap() {
        assert_eq!(manifest["datasets"][dataset]["rows"], *rows, "{dataset} rows");
    }
    assert_eq!(manifest["datasets"]["documents"]["rows"], truth["datasets"]["invoices"]);

    // Control totals equal the world's, per dataset, currency and field, to the last digit.
    let mut checked = 0;
    for (dataset, by_currency) in truth["control_totals"].as_object().unwrap() {
        for (currency, fields) in by_currency.as_object().unwrap() {
            for (field, value) in fields.as_object().unwrap() {
                let key = if manifest["datasets"][dataset]["control_totals"].get(currency).is_some() {
                    currency.as_str()
                } else {
                    "-"
                };
                let got = &manifest["datasets"][dataset]["control_totals"][key][column_of(field)];
                assert_eq!(dec(got), dec(value), "{dataset} {currency} {field}");
                checked += 1;
            }
        }
    }
    assert!(checked > 40, "{checked}");

    // The copies of lines served twice are summed beside the totals, never in them.
    let mut copies = 0;
    for (dataset, rows) in truth["served_twice_rows"].as_object().unwrap() {
        let entry = &manifest["datasets"][dataset];
        assert_eq!(entry["served_twice_rows"], *rows, "{dataset} served twice");
        for (currency, fields) in truth["served_twice_totals"][dataset].as_object().unwrap() {
            for (field, value) in fields.as_object().unwrap() {
                let got = &entry["served_twice_totals"][currency][column_of(field)];
                assert_eq!(dec(got), dec(value), "{dataset} {currency} {field} served twice");
                copies += 1;
            }
        }
    }
    assert!(copies > 3, "{copies}");

    // Every file is what the manifest says it is.
    for f in manifest["files"].as_array().unwrap() {
        let bytes = std::fs::read(snapshot.join(f["path"].as_str().unwrap())).unwrap();
        assert_eq!(bytes.len() as u64, f["bytes"].as_u64().unwrap());
        assert_eq!(format!("{:x}", Sha256::digest(&bytes)), f["sha256"].as_str().unwrap());
    }
    assert!(!digest_tree(&snapshot).keys().any(|p| p.ends_with(".partial") || p.contains("_parts")));

    // Parquet and CSV read back to the same exact sums.
    for (dataset, column, currency) in [
        ("billed_recon_line_items", "total_for_customer", "billing_currency"),
        ("billed_consumption_line_items", "billing_pre_tax_total", "billing_currency"),
        ("unbilled_consumption_line_items", "pricing_pre_tax_total", "billing_currency"),
    ] {
        let from_parquet = parquet_sums(&snapshot, dataset, column, currency);
        assert_eq!(from_parquet, csv_sums(&snapshot, dataset, column, currency), "{dataset}.{column}");
        for (ccy, sum) in &from_parquet {
            assert_eq!(*sum, dec(&manifest["datasets"][dataset]["control_totals"][ccy][column]), "{dataset} {ccy}");
        }
    }
}

#[test]
fn billing_prices_follow_the_licence_rule_of_the_invoices() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    demo(&out);
    let snapshot = latest(&out);
    let mut checked = 0;
    for batch in batches(&snapshot, "billed_recon_line_items") {
        let (subtotal, price, quantity) = (
            decimals(&batch, "subtotal"),
            decimals(&batch, "effective_unit_price_billing"),
            decimals(&batch, "billable_quantity"),
        );
        let meter =
            batch.column_by_name("meter_description").unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
        // Licence and one-time lines (no meter): subtotal = truncate(eff × rate) × billable quantity.
        for i in (0..batch.num_rows()).filter(|i| meter.is_null(*i)) {
            assert_eq!(decimal_at(&price, i) * decimal_at(&quantity, i), decimal_at(&subtotal, i));
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked}");
}

#[test]
fn a_rerun_gives_byte_identical_data_files_and_manifest_whatever_the_zone_or_threads() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    demo(&out);
    let first = latest(&out);
    // Another time zone, locale and thread count change nothing.
    demo_env(&out, "", &[("TZ", "Pacific/Chatham"), ("LC_ALL", "de_DE.UTF-8"), ("RAYON_NUM_THREADS", "1")]);
    let second = latest(&out);
    assert_ne!(first, second, "each run is its own snapshot");
    let mut a = digest_tree(&first);
    let mut b = digest_tree(&second);
    assert!(a.remove("run.json").is_some() && b.remove("run.json").is_some());
    assert_eq!(a, b, "data files and manifest are a pure function of the input");
    assert!(a.keys().any(|p| p.starts_with("csv/")) && a.keys().any(|p| p.ends_with(".parquet")));
}

#[test]
fn a_failed_run_leaves_nothing_new_in_view() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(&["--world", samples().to_str().unwrap()]);
    let write = |extra: &str| write_config(&emulator, dir.path(), extra);
    let run = || pcrecon(&["run", "--config", dir.path().join("pcrecon.toml").to_str().unwrap()], &[]);
    write("");
    // What a run killed mid-way left behind (its process, pid 4194304, cannot exist).
    let abandoned = dir.path().join("out/.20250101T000000Z.tmp-4194304");
    std::fs::create_dir_all(abandoned.join("invoices")).unwrap();
    assert_eq!(run().code, 0);
    assert!(!abandoned.exists(), "the next run removes a dead run's staging folder");
    let out = dir.path().join("out");
    let before = visible_tree(&out);
    write("[extract]\ninvoice_ids = [\"G999999999\"]\n");
    let failed = run();
    assert_eq!(failed.code, 4, "{}", failed.stderr);
    assert_eq!(visible_tree(&out), before, "no new snapshot, no staging folder, LATEST unchanged");
    let entries: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    assert_eq!(entries.len(), 2, "one snapshot and LATEST: {entries:?}");
}

#[test]
fn faults_change_nothing_in_the_published_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    demo(&dir.path().join("clean"));
    let stdout = demo_with(
        &dir.path().join("faulty"),
        "429=0.03,500=0.02,503=0.01,reset=0.01,truncate=0.01,malformed_next=0.05",
    );
    assert!(stdout.contains("throttled"), "{stdout}");
    let mut clean = digest_tree(&latest(&dir.path().join("clean")));
    let mut faulty = digest_tree(&latest(&dir.path().join("faulty")));
    clean.remove("run.json");
    faulty.remove("run.json");
    assert_eq!(clean, faulty);
}

/// Every converted amount of a dataset: (amount, rate, unrounded, rounded) read back from Parquet.
fn conversions(snapshot: &Path, dataset: &str, amount: &str) -> Vec<(Decimal, Decimal, Decimal, Decimal)> {
    let mut out = Vec::new();
    for batch in batches(snapshot, dataset) {
        let (a, r) = (decimals(&batch, amount), decimals(&batch, "fx_rate"));
        let (u, o) = (
            decimals(&batch, &format!("{amount}_reporting")),
            decimals(&batch, &format!("{amount}_reporting_rounded")),
        );
        for i in (0..batch.num_rows()).filter(|i| !a.is_null(*i)) {
            out.push((decimal_at(&a, i), decimal_at(&r, i), decimal_at(&u, i), decimal_at(&o, i)));
        }
    }
    out
}

#[test]
fn amounts_are_converted_into_the_reporting_currency_exactly_and_rounded_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    demo(&out);
    let snapshot = latest(&out);
    for (dataset, amount) in [
        ("billed_recon_line_items", "total_for_customer"),
        ("billed_consumption_line_items", "billing_pre_tax_total"),
        ("invoices", "total_charges"),
        ("legacy_office_line_items", "amount"),
    ] {
        let rows = conversions(&snapshot, dataset, amount);
        assert!(!rows.is_empty(), "{dataset}");
        for (a, rate, unrounded, rounded) in rows {
            assert_eq!(a * rate, unrounded, "{dataset}: {a} × {rate}");
            assert_eq!(
                unrounded.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointNearestEven),
                rounded
            );
        }
    }
}

#[test]
fn a_missing_rate_fails_the_run_listing_every_missing_pair() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(&["--world", samples().to_str().unwrap()]);
    let rates: String = std::fs::read_to_string(samples().join("rates.csv"))
        .unwrap()
        .lines()
        .filter(|l| !l.contains(",DKK,EUR,"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.path().join("rates.csv"), rates).unwrap();
    let config = write_config(
        &emulator,
        dir.path(),
        "[normalize]\nreporting_currency = \"EUR\"\nrates_file = \"rates.csv\"\nrate_date = \"month_end\"\nrounding = \"half_up\"",
    );
    let output = pcrecon(&["run", "--config", config.to_str().unwrap()], &[]);
    assert_eq!(output.code, 5);
    let message = output.stderr.lines().last().unwrap();
    for month_end in
        ["DKK on 2024-11-30", "DKK on 2024-12-31", "DKK on 2025-01-31", "DKK on 2025-02-28", "DKK on 2025-03-31"]
    {
        assert!(message.contains(month_end), "{month_end} missing from {message}");
    }
    assert!(!message.contains("GBP on"), "only the missing pairs are listed: {message}");
    let published = visible_tree(&dir.path().join("out"));
    assert!(published.is_empty(), "nothing is published: {published:?}");
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_value_too_large_for_its_column_fails_the_run_or_goes_to_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("world");
    copy_tree(&samples(), &world);
    // One usage amount with 26 fractional digits, where the column keeps 22.
    let invoice = truth(&samples())["invoices"][0]["invoice_id"].as_str().unwrap().to_owned();
    let file = world.join("invoices").join(&invoice).join("onetime-usagelineitems.jsonl");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let line = &mut lines[3];
    let start = line.find("\"billingPreTaxTotal\":").unwrap() + "\"billingPreTaxTotal\":".len();
    let end = start + line[start..].find(',').unwrap();
    line.replace_range(start..end, "0.12345678901234567890123456");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();

    let emulator = Emulator::start(&["--world", world.to_str().unwrap(), "--page-size", "2"]);
    let run = |rejects: bool| {
        let extra = format!(
            "[output]\nrejects = {rejects}\n[extract]\napi_version = \"v1\"\ndatasets = [\"billed_consumption_line_items\"]"
        );
        let config = write_config(&emulator, dir.path(), &extra);
        pcrecon(&["run", "--config", config.to_str().unwrap()], &[])
    };

    let failed = run(false);
    assert_eq!(failed.code, 5, "{}", failed.stderr);
    let message = failed.stderr.lines().last().unwrap();
    for part in [
        "dataset billed_consumption_line_items",
        &format!("scope {invoice}"),
        "page 2",
        "record 1",
        "field billingPreTaxTotal",
        "26 fractional digits",
    ] {
        assert!(message.contains(part), "{part:?} missing from {message}");
    }
    assert!(!dir.path().join("out/LATEST").exists(), "nothing is published");

    let kept = run(true);
    assert_eq!(kept.code, 1, "published with exceptions: {}", kept.stderr);
    let snapshot = latest(&dir.path().join("out"));
    let manifest = manifest(&snapshot);
    assert_eq!(manifest["datasets"]["rejects"]["rows"], 1);
    let usage_rows = truth(&samples())["datasets"]["billed_consumption_line_items"].as_u64().unwrap();
    assert_eq!(manifest["datasets"]["billed_consumption_line_items"]["rows"].as_u64(), Some(usage_rows - 1));
    let mut reader = csv::Reader::from_path(snapshot.join("csv/rejects/part-00000.csv")).unwrap();
    let record = reader.records().next().unwrap().unwrap();
    assert_eq!(&record[0], "billed_consumption_line_items");
    assert_eq!(&record[4], "billingPreTaxTotal");
    assert!(record[7].contains("0.12345678901234567890123456"), "the raw record is kept");
}

#[test]
fn a_run_reads_the_time_from_its_clock() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T08:00:00Z").unwrap().with_timezone(&chrono::Utc);
    let clock = pcrecon::clock::Clock::fixed(at);
    for expected in ["20260301T080000Z", "20260301T080000Z-2"] {
        let location = pcrecon::sink::store::Location::Local(out.clone());
        let summary = pcrecon::demo::run(&samples(), &location, "", None, &clock).unwrap();
        assert_eq!(summary.snapshot, out.join(expected), "the run id is the clock's time");
        let run: Value = serde_json::from_slice(&std::fs::read(summary.snapshot.join("run.json")).unwrap()).unwrap();
        assert_eq!(run["run_id"], expected);
        assert_eq!(run["started_at"], "2026-03-01T08:00:00+00:00");
        assert_eq!(run["finished_at"], "2026-03-01T08:00:00+00:00", "the clock stood still");
    }
    assert_eq!(std::fs::read_to_string(out.join("LATEST")).unwrap().trim(), "20260301T080000Z-2");
}
