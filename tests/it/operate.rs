//! Nightly operations: the lock, incremental runs, resume after a crash at any point,
//! restatements, `diff` and `verify`.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use arrow_array::{Array, Decimal128Array, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

use crate::helpers::{
    Emulator, V1_ONLY, bin, data, digest_tree, latest, pcrecon, requested, restated_worlds, run, samples, visible_tree,
    write_config,
};

/// Starts `pcrecon run` in the background (to be killed, or to hold the lock).
fn spawn_run(config: &Path) -> std::process::Child {
    Command::new(bin())
        .args(["run", "--config", config.to_str().unwrap()])
        .env("PCRECON_CLIENT_SECRET", "test-secret")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn run_json(snapshot: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(snapshot.join("run.json")).unwrap()).unwrap()
}

/// Every snapshot in view verifies, and `LATEST` (if any) names one of them: nothing partial is
/// visible.
fn assert_nothing_partial(out: &Path) {
    if !out.exists() {
        return;
    }
    for entry in std::fs::read_dir(out).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "LATEST" {
            continue;
        }
        let verified = pcrecon(&["verify", out.join(&name).to_str().unwrap()], &[]);
        assert_eq!(verified.code, 0, "{name} is in view but does not verify: {}", verified.stdout);
    }
    if out.join("LATEST").exists() {
        assert!(latest(out).join("manifest.json").is_file(), "LATEST names a published snapshot");
    }
}

#[test]
fn a_second_run_carries_billed_invoices_and_fetches_unbilled_data_again() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let emulator = Emulator::start(&["--world", samples().to_str().unwrap(), "--request-log", log.to_str().unwrap()]);
    let config = write_config(&emulator, dir.path(), V1_ONLY);
    let out = dir.path().join("out");
    let first = run(&config, &[], &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let first_snapshot = latest(&out);
    let first_requests = requested(&log);
    let mark = first_requests.len();

    let second = run(&config, &[], &[]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let second_snapshot = latest(&out);
    assert_ne!(first_snapshot, second_snapshot);
    assert_eq!(data(&first_snapshot), data(&second_snapshot), "carried data gives the same bytes");
    let second_requests = requested(&log).split_off(mark);
    let mark = mark + second_requests.len();
    let billed = |p: &&String| {
        p.starts_with("/v1/invoices/") && !p.starts_with("/v1/invoices/unbilled") && p != &"/v1/invoices/summaries"
    };
    assert!(first_requests.iter().filter(billed).count() > 10);
    assert_eq!(
        second_requests.iter().filter(billed).count(),
        0,
        "no billed invoice is fetched again: {second_requests:?}"
    );
    assert!(second_requests.iter().any(|p| p.starts_with("/v1/invoices/unbilled")), "unbilled data is always fetched");
    assert!(second_requests.iter().any(|p| p.ends_with("/subscriptions")), "master data is always fetched");
    let report = run_json(&second_snapshot);
    assert!(report["sequences_carried"].as_u64().unwrap() > 10);
    assert_eq!(report["restated_invoices"], serde_json::json!([]));
    assert_eq!(second.summary()["sequences_carried"], report["sequences_carried"], "{}", second.stdout);

    // --refresh fetches billed invoices again, with the same result.
    let refreshed = run(&config, &["--refresh"], &[]);
    assert_eq!(refreshed.code, 0, "{}", refreshed.stderr);
    let third_requests = requested(&log).split_off(mark);
    assert_eq!(third_requests.iter().filter(billed).count(), first_requests.iter().filter(billed).count());
    assert_eq!(data(&latest(&out)), data(&first_snapshot));
}

#[test]
fn a_run_killed_at_any_point_resumes_to_the_bytes_of_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(&["--world", samples().to_str().unwrap(), "--page-size", "40"]);
    let clean_dir = dir.path().join("clean");
    std::fs::create_dir_all(&clean_dir).unwrap();
    let clean_config = write_config(&emulator, &clean_dir, V1_ONLY);
    assert_eq!(run(&clean_config, &[], &[]).code, 0);
    let reference = data(&latest(&clean_dir.join("out")));

    let points =
        ["page:1", "page:25", "sequence:2", "sequence:40", "page:200", "finish", "manifest", "publish", "latest"];
    for point in points {
        let case = dir.path().join(point.replace(':', "-"));
        std::fs::create_dir_all(&case).unwrap();
        let config = write_config(&emulator, &case, V1_ONLY);
        let out = case.join("out");
        let crashed = run(&config, &[], &[("PCRECON_ABORT_AT", point)]);
        assert_eq!(crashed.code, -1, "{point}: the run was aborted: {}", crashed.stderr);
        assert_nothing_partial(&out);
        let rerun = run(&config, &[], &[]);
        assert_eq!(rerun.code, 0, "{point}: {}", rerun.stderr);
        assert_nothing_partial(&out);
        let snapshot = latest(&out);
        assert_eq!(data(&snapshot), reference, "{point}: the rerun publishes the same bytes");
        let report = run_json(&snapshot);
        if point.starts_with("sequence") || point == "page:200" || point == "finish" || point == "manifest" {
            assert!(report["sequences_resumed"].as_u64().unwrap() > 0, "{point}: what was fetched is reused: {report}");
        }
    }
}

#[test]
fn a_run_killed_at_random_instants_never_shows_a_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(&["--world", samples().to_str().unwrap(), "--latency-ms", "5", "--page-size", "40"]);
    let config = write_config(&emulator, dir.path(), "");
    let out = dir.path().join("out");
    for delay_ms in [150, 400, 800, 1300, 2000] {
        let mut child = spawn_run(&config);
        std::thread::sleep(Duration::from_millis(delay_ms));
        // SIGKILL: no destructor, no flush.
        let _ = child.kill();
        let _ = child.wait();
        assert_nothing_partial(&out);
    }
    let rerun = run(&config, &[], &[]);
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    let clean_dir = dir.path().join("clean");
    std::fs::create_dir_all(&clean_dir).unwrap();
    let clean = run(&write_config(&emulator, &clean_dir, ""), &[], &[]);
    assert_eq!(clean.code, 0);
    assert_eq!(data(&latest(&out)), data(&latest(&clean_dir.join("out"))));
}

#[test]
fn a_second_run_on_the_same_folder_is_refused_while_the_first_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(&["--world", samples().to_str().unwrap(), "--latency-ms", "20"]);
    let config = write_config(&emulator, dir.path(), "");
    let mut first = spawn_run(&config);
    let lock = dir.path().join("out/.pcrecon.lock");
    for _ in 0..200 {
        if std::fs::read_to_string(&lock).is_ok_and(|t| !t.is_empty()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let second = run(&config, &[], &[]);
    assert_eq!(second.code, 7, "{}", second.stderr);
    assert!(second.stderr.contains(&format!("pid {}", first.id())), "names the holder: {}", second.stderr);
    assert!(first.wait().unwrap().success());
    // The lock died with its holder; a run killed holding it does not block the next.
    let mut killed = spawn_run(&config);
    std::thread::sleep(Duration::from_millis(300));
    let _ = killed.kill();
    let _ = killed.wait();
    let after = run(&config, &[], &[]);
    assert_eq!(after.code, 0, "{}", after.stderr);
}

#[test]
fn a_dry_run_prints_the_plan_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(&["--world", samples().to_str().unwrap()]);
    let config = write_config(&emulator, dir.path(), "");
    let out = dir.path().join("out");
    let dry = run(&config, &["--dry-run"], &[]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(!out.exists(), "a dry run writes nothing");
    assert!(dry.stdout.contains("billed_recon_line_items"), "{}", dry.stdout);
    assert!(dry.stdout.contains("billed_recon_line_items/period=*/part-G"), "names output files: {}", dry.stdout);
    assert!(!dry.stdout.contains(" carry "));
    assert_eq!(run(&config, &[], &[]).code, 0);
    let before = digest_tree(&out);
    let dry = run(&config, &["--dry-run"], &[]);
    assert!(dry.stdout.contains(" carry "), "billed invoices come from the cache: {}", dry.stdout);
    assert_eq!(digest_tree(&out), before, "a dry run changes nothing, not even the cache");
}

#[test]
fn verify_catches_a_flipped_byte_a_missing_file_and_an_extra_file() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(&["--world", samples().to_str().unwrap()]);
    let config = write_config(&emulator, dir.path(), "");
    assert_eq!(run(&config, &[], &[]).code, 0);
    let snapshot = latest(&dir.path().join("out"));
    let ok = pcrecon(&["verify", snapshot.to_str().unwrap()], &[]);
    assert_eq!(ok.code, 0, "{}", ok.stdout);
    assert!(ok.stdout.contains(": ok ("), "{}", ok.stdout);

    let parquet = std::fs::read_dir(snapshot.join("invoices")).unwrap().next().unwrap().unwrap().path();
    let parquet = std::fs::read_dir(parquet).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(&parquet).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&parquet, bytes).unwrap();
    std::fs::remove_file(snapshot.join("documents").read_dir().unwrap().next().unwrap().unwrap().path()).unwrap();
    std::fs::write(snapshot.join("csv/notes.txt"), "not published").unwrap();
    let bad = pcrecon(&["verify", dir.path().join("out").to_str().unwrap()], &[]);
    assert_eq!(bad.code, 1, "{}", bad.stdout);
    let problems: Vec<&str> = bad
        .stdout
        .lines()
        .filter(|l| !l.contains(" problems (") && !l.contains(": ok (") && !l.contains(": note "))
        .collect();
    assert_eq!(problems.len(), 3, "{}", bad.stdout);
    assert!(
        bad.stdout.contains("note     tie-out not recomputed: not every file it reads was read back"),
        "{}",
        bad.stdout
    );
    assert!(bad.stdout.contains("differs  invoices/"), "{}", bad.stdout);
    assert!(bad.stdout.contains("missing  documents/"), "{}", bad.stdout);
    assert!(bad.stdout.contains("extra    csv/notes.txt"), "{}", bad.stdout);
}

fn strings(path: &Path, column: &str) -> Vec<Option<String>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap().build().unwrap();
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let array = batch.column_by_name(column).unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
        out.extend((0..array.len()).map(|i| array.is_valid(i).then(|| array.value(i).to_owned())));
    }
    out
}

#[test]
fn a_restated_invoice_is_refetched_reported_and_diffed_row_by_row() {
    let dir = tempfile::tempdir().unwrap();
    let (before_world, after_world, restatement) = restated_worlds(dir.path());
    let invoice = restatement["invoice_id"].as_str().unwrap().to_owned();

    let out = dir.path().join("out");
    let log = dir.path().join("requests.jsonl");
    let first = {
        let emulator = Emulator::start(&["--world", before_world.to_str().unwrap()]);
        run(&write_config(&emulator, dir.path(), ""), &["--fail-on", "restated"], &[])
    };
    assert_eq!(first.code, 0, "nothing to compare with, nothing restated: {}", first.stderr);
    let previous = latest(&out);
    let emulator = Emulator::start(&["--world", after_world.to_str().unwrap(), "--request-log", log.to_str().unwrap()]);
    // Published, then exit 1: the operator asked to hear of restatements.
    let second = run(&write_config(&emulator, dir.path(), ""), &["--fail-on", "restated"], &[]);
    assert_eq!(second.code, 1, "{}", second.stderr);
    let said = format!(
        "published with 1 invoices restated since {} ({invoice})",
        previous.file_name().unwrap().to_str().unwrap()
    );
    assert!(second.stderr.contains(&said), "{}", second.stderr);
    let summary = second.summary();
    assert_eq!(summary["restated_invoices"], serde_json::json!([invoice]), "{}", second.stdout);
    assert_eq!(summary["exit_code"], 1);
    assert!(summary["finding"].as_str().unwrap().contains(&said), "{}", second.stdout);
    assert!(second.stderr.contains("invoice_restated"), "logged");
    assert!(previous.join("manifest.json").is_file(), "the previous snapshot is kept");
    let report = run_json(&latest(&out));
    assert_eq!(report["restated_invoices"], serde_json::json!([invoice]));
    let page = std::fs::read_to_string(latest(&out).join("report.html")).unwrap();
    assert!(page.contains(&format!("<ul id=\"restated\"><li>{invoice}</li></ul>")), "the report lists it");
    let fetched: Vec<String> = requested(&log).into_iter().filter(|p| p.starts_with("/v1/invoices/G")).collect();
    assert!(
        !fetched.is_empty() && fetched.iter().all(|p| p.starts_with(&format!("/v1/invoices/{invoice}"))),
        "only the restated invoice is fetched again: {fetched:?}"
    );
    // Its lines came through the v2 export: the restated reconciliation has a new eTag, and
    // nothing else has.
    let etags = |snapshot: &Path| {
        let manifest: Value = serde_json::from_slice(&std::fs::read(snapshot.join("manifest.json")).unwrap()).unwrap();
        manifest["lineage"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v["etags"].clone()))
            .collect::<Vec<_>>()
    };
    let (before, after) = (etags(&previous), etags(&latest(&out)));
    assert_eq!(before.len(), after.len());
    for ((id, then), (_, now)) in before.iter().zip(&after) {
        let changed = then["billed_recon_line_items"] != now["billed_recon_line_items"];
        assert_eq!(changed, id == &invoice, "{id}: {then} → {now}");
        assert_eq!(then["billed_consumption_line_items"], now["billed_consumption_line_items"], "{id}");
    }
    assert!(after.iter().any(|(_, e)| e.get("billed_recon_line_items").is_some()), "v2 served the lines");

    let diff_out = dir.path().join("diff");
    let diff = pcrecon(&["diff", "--previous", out.to_str().unwrap(), "--out", diff_out.to_str().unwrap()], &[]);
    assert_eq!(diff.code, 1, "different snapshots: {}\n{}", diff.stdout, diff.stderr);
    let changes = diff_out.join("diff_changes/part-00000.parquet");
    let datasets = strings(&changes, "dataset");
    let kinds = strings(&changes, "change");
    assert!(kinds.iter().all(|k| k.as_deref() == Some("changed")), "no row added or removed: {kinds:?}");
    let keys = strings(&changes, "row_key");
    let columns = strings(&changes, "column");
    let befores = strings(&changes, "before");
    let afters = strings(&changes, "after");
    let line_keys: std::collections::BTreeSet<_> = keys
        .iter()
        .zip(&datasets)
        .filter(|(_, d)| d.as_deref() == Some("billed_recon_line_items"))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(line_keys.len(), 1, "exactly one line changed");
    let total_change: Vec<(String, String)> = (0..datasets.len())
        .filter(|&i| {
            datasets[i].as_deref() == Some("billed_recon_line_items")
                && columns[i].as_deref() == Some("total_for_customer")
        })
        .map(|i| (befores[i].clone().unwrap(), afters[i].clone().unwrap()))
        .collect();
    let value = |v: &Value| v.as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap();
    let as_decimal = |s: &str| s.parse::<rust_decimal::Decimal>().unwrap();
    assert_eq!(total_change.len(), 1);
    // Each change row says which invoice, customer and billing month it is of.
    let (invoices, customers, periods) =
        (strings(&changes, "invoice_id"), strings(&changes, "customer_key"), strings(&changes, "period"));
    for i in (0..datasets.len()).filter(|&i| datasets[i].as_deref() == Some("billed_recon_line_items")) {
        assert_eq!(invoices[i].as_deref(), Some(invoice.as_str()));
        assert!(customers[i].as_deref().is_some_and(|c| !c.is_empty() && c == c.to_lowercase()), "{:?}", customers[i]);
        assert!(periods[i].as_deref().is_some_and(|p| p.len() == 7 && p.starts_with("20")), "{:?}", periods[i]);
    }
    assert_eq!(as_decimal(&total_change[0].0), value(&restatement["total_before"]));
    assert_eq!(as_decimal(&total_change[0].1), value(&restatement["total_after"]));
    let invoice_rows: std::collections::BTreeSet<_> =
        keys.iter().zip(&datasets).filter(|(_, d)| d.as_deref() == Some("invoices")).map(|(k, _)| k).collect();
    assert_eq!(invoice_rows.len(), 1, "one invoice row changed");
    for (i, dataset) in datasets.iter().enumerate() {
        let dataset = dataset.as_deref().unwrap();
        if dataset == "match_exceptions" {
            // The restated line is an exception too: only the money it puts at risk moves.
            assert_eq!(columns[i].as_deref(), Some("amount"));
            assert_eq!(as_decimal(befores[i].as_deref().unwrap()), value(&restatement["total_before"]));
            assert_eq!(as_decimal(afters[i].as_deref().unwrap()), value(&restatement["total_after"]));
            continue;
        }
        if dataset == "customer_charges" {
            // The customer's charges for that product move by exactly the line's change.
            let column = columns[i].as_deref().unwrap();
            assert!(["cost", "tax", "total"].contains(&column), "{column}");
            if column == "total" {
                let moved = as_decimal(afters[i].as_deref().unwrap()) - as_decimal(befores[i].as_deref().unwrap());
                assert_eq!(moved, value(&restatement["total_after"]) - value(&restatement["total_before"]));
            }
            continue;
        }
        if dataset == "focus" {
            // The line's FOCUS rows (its charge and its tax) change in their costs only.
            let column = columns[i].as_deref().unwrap();
            assert!(
                [
                    "BilledCost",
                    "EffectiveCost",
                    "ListCost",
                    "ContractedCost",
                    "PricingCurrencyEffectiveCost",
                    "ContractedUnitPrice",
                    "PricingCurrencyContractedUnitPrice",
                    "PricingQuantity",
                    "ConsumedQuantity"
                ]
                .contains(&column),
                "{column}"
            );
            continue;
        }
        assert!(
            ["billed_recon_line_items", "invoices", "invoice_summaries", "reconciliation", "invoice_list"]
                .contains(&dataset),
            "{dataset} should not change"
        );
    }

    // Σ BilledCost of the line's FOCUS rows moves by exactly the line's total.
    let billed_moved: rust_decimal::Decimal = (0..datasets.len())
        .filter(|&i| datasets[i].as_deref() == Some("focus") && columns[i].as_deref() == Some("BilledCost"))
        .map(|i| as_decimal(afters[i].as_deref().unwrap()) - as_decimal(befores[i].as_deref().unwrap()))
        .sum();
    assert_eq!(billed_moved, value(&restatement["total_after"]) - value(&restatement["total_before"]));

    // The totals delta of the line items is the restatement's, for that invoice's customer.
    let totals = diff_out.join("diff_totals/part-00000.parquet");
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&totals).unwrap()).unwrap().build().unwrap();
    let (t_dataset, t_column) = (strings(&totals, "dataset"), strings(&totals, "column"));
    let mut deltas = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let array = batch.column_by_name("delta").unwrap().as_any().downcast_ref::<Decimal128Array>().unwrap().clone();
        deltas.extend((0..array.len()).map(|i| rust_decimal::Decimal::from_i128_with_scale(array.value(i), 22)));
    }
    let line_deltas: Vec<_> = (0..deltas.len())
        .filter(|&i| {
            t_dataset[i].as_deref() == Some("billed_recon_line_items")
                && t_column[i].as_deref() == Some("total_for_customer")
        })
        .map(|i| deltas[i])
        .collect();
    assert_eq!(line_deltas, [value(&restatement["total_after"]) - value(&restatement["total_before"])]);

    // The same snapshots compared with themselves: equal, exit 0.
    let same = pcrecon(
        &[
            "diff",
            previous.to_str().unwrap(),
            previous.to_str().unwrap(),
            "--out",
            dir.path().join("same").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(same.code, 0, "{}", same.stdout);
    assert!(same.stdout.contains("no differences"));
    assert!(visible_tree(&out).keys().all(|p| !p.starts_with("diffs")));

    // A diff killed while it writes, or while it swaps the new folder in, leaves the previous
    // one: in place, or put back by the next diff, which then publishes the same bytes.
    let published = digest_tree(&diff_out);
    let diff_args = ["diff", "--previous", out.to_str().unwrap(), "--out", diff_out.to_str().unwrap()];
    let killed = pcrecon(&diff_args, &[("PCRECON_ABORT_AT", "diff")]);
    assert!(killed.stderr.contains("aborting at diff"), "{}", killed.stderr);
    assert_eq!(digest_tree(&diff_out), published, "the previous diff is intact");
    let swapped = pcrecon(&diff_args, &[("PCRECON_ABORT_AT", "swap")]);
    assert!(swapped.stderr.contains("aborting at swap"), "{}", swapped.stderr);
    assert_eq!(pcrecon(&diff_args, &[]).code, 1);
    assert_eq!(digest_tree(&diff_out), published, "a rerun publishes the same diff");
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".diff."))
        .collect();
    assert!(leftovers.is_empty(), "what the killed diffs left is gone: {leftovers:?}");
}

/// The Decimal128 cells of a column, at their scale.
fn decimals(path: &Path, column: &str) -> Vec<Option<rust_decimal::Decimal>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap().build().unwrap();
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let array = batch.column_by_name(column).unwrap().as_any().downcast_ref::<Decimal128Array>().unwrap().clone();
        let scale = array.scale() as u32;
        out.extend((0..array.len()).map(|i| {
            array
                .is_valid(i)
                .then(|| pcrecon::normalize::decode::from_decimal128(array.value(i), scale).unwrap().normalize())
        }));
    }
    out
}

#[test]
fn a_restatement_is_diffed_in_the_reporting_currency_beside_the_billing_one() {
    let dir = tempfile::tempdir().unwrap();
    let (before_world, after_world, restatement) = restated_worlds(dir.path());
    let rates = before_world.join("rates.csv");
    let normalize = format!("[normalize]\nreporting_currency = \"EUR\"\nrates_file = {:?}\n", rates.to_str().unwrap());
    for world in [&before_world, &after_world] {
        let emulator = Emulator::start(&["--world", world.to_str().unwrap()]);
        let finished = run(&write_config(&emulator, dir.path(), &normalize), &[], &[]);
        assert_eq!(finished.code, 0, "{}", finished.stderr);
    }
    let (out, diff_out) = (dir.path().join("out"), dir.path().join("diff"));
    let diff = pcrecon(&["diff", "--previous", out.to_str().unwrap(), "--out", diff_out.to_str().unwrap()], &[]);
    assert_eq!(diff.code, 1, "{}\n{}", diff.stdout, diff.stderr);
    let totals = diff_out.join("diff_totals/part-00000.parquet");
    let (datasets, columns) = (strings(&totals, "dataset"), strings(&totals, "column"));
    let (currencies, reporting) = (strings(&totals, "billing_currency"), strings(&totals, "reporting_currency"));
    let (deltas, in_reporting) = (decimals(&totals, "delta"), decimals(&totals, "delta_reporting"));
    let line: Vec<usize> = (0..datasets.len())
        .filter(|&i| {
            datasets[i].as_deref() == Some("billed_recon_line_items")
                && columns[i].as_deref() == Some("total_for_customer")
        })
        .collect();
    assert_eq!(line.len(), 1, "one customer's line changed");
    let i = line[0];
    let value = |v: &Value| v.as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap();
    let delta = value(&restatement["total_after"]) - value(&restatement["total_before"]);
    assert_eq!(deltas[i], Some(delta.normalize()));
    assert_eq!(reporting[i].as_deref(), Some("EUR"));
    let converted = in_reporting[i].expect("a reporting delta");
    assert!(
        !converted.is_zero() && converted.is_sign_negative() == delta.is_sign_negative(),
        "{converted} for {delta}"
    );
    if currencies[i].as_deref() == Some("EUR") {
        assert_eq!(converted, delta.normalize(), "EUR reports in EUR at 1");
    }
    assert!(diff.stdout.contains(" EUR ("), "the summary shows it: {}", diff.stdout);
}

#[test]
fn the_systemd_units_and_the_cron_line_in_contrib_parse_and_run_this_binary() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-contrib.sh");
    let checked = Command::new(&script).env("PCRECON_BIN", bin()).output().unwrap();
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "{said}{}", String::from_utf8_lossy(&checked.stderr));
    assert!(said.contains("cron: 1 line(s) parse"), "{said}");
}

#[test]
fn the_readme_documents_every_subcommand_and_flag_as_the_command_line_defines_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let made = Command::new(root.join("scripts/command-reference.sh")).arg(bin()).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let reference = String::from_utf8(made.stdout).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let at = readme.find("## Command reference").expect("a command reference");
    let section = readme[at..].split("\n## ").next().unwrap();
    assert_eq!(
        section.trim_end(),
        reference.trim_end(),
        "regenerate the README's command reference: scripts/command-reference.sh target/debug/pcrecon"
    );
    // Every command the top-level help lists has its entry.
    let help = Command::new(bin()).arg("-h").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let commands = help.split("Commands:").nth(1).unwrap().split("\n\n").next().unwrap();
    for name in commands.lines().filter_map(|l| l.split_whitespace().next()).filter(|n| *n != "help") {
        assert!(reference.contains(&format!("<code>pcrecon {name}")), "{name} is not in the command reference");
    }
}

#[test]
fn completions_and_the_manual_page_are_made_from_the_command_line_itself() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let made = Command::new(bin()).args(["completions", shell]).output().unwrap();
        let script = String::from_utf8(made.stdout).unwrap();
        assert!(made.status.success() && script.contains("fail-on") && script.contains("restated"), "{shell}");
        if shell == "bash" {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("pcrecon.bash");
            std::fs::write(&file, &script).unwrap();
            let parsed = Command::new("bash").arg("-n").arg(&file).status().unwrap();
            assert!(parsed.success(), "bash reads the completion script");
        }
    }
    let man = Command::new(bin()).arg("man").output().unwrap();
    let page = String::from_utf8(man.stdout).unwrap();
    assert!(man.status.success(), "{}", String::from_utf8_lossy(&man.stderr));
    assert!(page.contains(".TH pcrecon 1") && page.contains("verify"), "{page:.400}");
}

/// The samples of a Prometheus text file: metric with labels → value.
fn prometheus_samples(text: &str) -> BTreeMap<String, String> {
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
        let name = series.split('{').next().unwrap();
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && name.starts_with("pcrecon_"), "{line}");
        assert!(series == name || (series.ends_with('}') && series[name.len()..].starts_with('{')), "{line}");
        value.parse::<rust_decimal::Decimal>().unwrap_or_else(|_| panic!("not a number: {line}"));
        samples.insert(series.to_owned(), value.to_owned());
    }
    samples
}

#[test]
fn metrics_for_node_exporter_say_how_each_run_ended_and_warnings_count_the_findings() {
    let emulator = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&emulator, dir.path(), "");
    let metrics = dir.path().join("pcrecon.prom");
    let finished = run(&config, &["--metrics", metrics.to_str().unwrap(), "--fail-on", "mismatch"], &[]);
    let snapshot = latest(&dir.path().join("out"));
    let manifest: Value = serde_json::from_slice(&std::fs::read(snapshot.join("manifest.json")).unwrap()).unwrap();
    let mismatches = manifest["checks"]["tie_out"]["mismatch"].as_u64().unwrap_or(0);
    assert!(mismatches > 0, "the samples plant tie-out mismatches");
    assert_eq!(finished.code, 1, "--fail-on mismatch: {}", finished.stderr);
    let samples = prometheus_samples(&std::fs::read_to_string(&metrics).unwrap());
    assert_eq!(samples["pcrecon_run_published"], "1");
    assert_eq!(samples["pcrecon_exit_code"], "1");
    assert_eq!(samples["pcrecon_tie_out_mismatches"], mismatches.to_string());
    let rows = &manifest["datasets"]["billed_recon_line_items"]["rows"];
    assert_eq!(samples["pcrecon_rows{dataset=\"billed_recon_line_items\"}"], rows.to_string());
    for (currency, columns) in manifest["datasets"]["invoices"]["control_totals"].as_object().unwrap() {
        for (column, value) in columns.as_object().unwrap() {
            let series =
                format!("pcrecon_control_total{{dataset=\"invoices\",currency=\"{currency}\",column=\"{column}\"}}");
            assert_eq!(&samples[&series], value.as_str().unwrap(), "exactly the manifest's");
        }
    }
    let warned = finished
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["level"] == "WARN" && l["fields"]["event"] == "tie_out_mismatches");
    assert_eq!(warned.expect("a WARN line to alert on")["fields"]["count"], mismatches);

    // A run that fails still says so, with its exit code.
    let failed = run(
        &config,
        &["--from-raw", dir.path().join("no-archive").to_str().unwrap(), "--metrics", metrics.to_str().unwrap()],
        &[],
    );
    assert_ne!(failed.code, 0);
    let samples = prometheus_samples(&std::fs::read_to_string(&metrics).unwrap());
    assert_eq!(samples["pcrecon_run_published"], "0");
    assert_eq!(samples["pcrecon_exit_code"], failed.code.to_string());
    assert!(!samples.contains_key("pcrecon_rows{dataset=\"invoices\"}"));
}
