//! Every anomaly the generator planted is reported with its kind, and nothing else: match
//! exceptions and the invoice tie-out against `truth.json`.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::helpers::{Emulator, generate, pcrecon, samples, truth, write_config};

type Finding = (String, String, String, Option<u64>);

/// What truth.json planted: (kind, dataset, invoice, position).
fn planted(world: &Path) -> BTreeSet<Finding> {
    truth(world)["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let kind = a["kind"].as_str().unwrap().to_owned();
            let position = if kind == "invoice_total_mismatch" { None } else { a["position"].as_u64() };
            (kind, a["dataset"].as_str().unwrap().to_owned(), a["invoice_id"].as_str().unwrap().to_owned(), position)
        })
        .collect()
}

/// What a snapshot reported: match exceptions, and documents whose tie-out is a mismatch (a voided
/// invoice is `void`, which is what it is, not a finding).
fn reported(snapshot: &Path) -> BTreeSet<Finding> {
    let mut found = BTreeSet::new();
    let mut exceptions = csv::Reader::from_path(snapshot.join("csv/match_exceptions/part-00000.csv")).unwrap();
    for r in exceptions.records() {
        let r = r.unwrap();
        found.insert((r[3].to_owned(), r[0].to_owned(), r[1].to_owned(), Some(r[2].parse().unwrap())));
    }
    let mut tie_out = csv::Reader::from_path(snapshot.join("csv/reconciliation/part-00000.csv")).unwrap();
    for r in tie_out.records() {
        let r = r.unwrap();
        if &r[6] == "mismatch" {
            found.insert(("invoice_total_mismatch".into(), "invoices".into(), r[0].to_owned(), None));
        }
    }
    found
}

fn snapshot_of(out: &Path) -> std::path::PathBuf {
    out.join(std::fs::read_to_string(out.join("LATEST")).unwrap().trim())
}

fn check(world: &Path, dir: &Path) -> usize {
    let emulator = Emulator::start(&["--world", world.to_str().unwrap()]);
    let config = write_config(&emulator, dir, "");
    let run = pcrecon(&["run", "--config", config.to_str().unwrap()], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let snapshot = snapshot_of(&dir.join("out"));
    let (want, got) = (planted(world), reported(&snapshot));
    let missed: Vec<_> = want.difference(&got).collect();
    let false_alarms: Vec<_> = got.difference(&want).collect();
    assert!(missed.is_empty() && false_alarms.is_empty(), "missed {missed:?}\nfalse {false_alarms:?}");

    // matched + unmatched = total, for every line-item dataset.
    let manifest: Value = serde_json::from_slice(&std::fs::read(snapshot.join("manifest.json")).unwrap()).unwrap();
    for (check, counts) in manifest["checks"].as_object().unwrap() {
        let Some(dataset) = check.strip_prefix("match:") else { continue };
        let total: u64 = counts.as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(total, manifest["datasets"][dataset]["rows"].as_u64().unwrap(), "{dataset}");
    }
    assert!(run.summary()["checks"].get("tie_out").is_some(), "the summary shows the tie-out");
    want.len()
}

#[test]
fn every_planted_anomaly_of_the_samples_is_reported_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let kinds = check(&samples(), dir.path());
    assert!(kinds >= 7);
}

#[test]
fn every_planted_anomaly_of_a_100k_world_is_reported_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("world");
    let anomalies = "order_not_found=0.01,subscription_not_found=0.002,customer_mismatch=0.002,entitlement_not_found=0.03,\
                     entitlement_expired=0.03,duplicate_line=0.001,invoice_total_mismatch=0.3";
    generate(
        &world,
        &[
            "--seed",
            "99",
            "--customers",
            "40",
            "--months",
            "3",
            "--usage-rows-per-month",
            "34000",
            "--anomalies",
            anomalies,
        ],
    );
    assert!(truth(&world)["datasets"]["billed_consumption_line_items"].as_u64().unwrap() >= 100_000);
    let found = check(&world, dir.path());
    assert!(found > 100, "{found} anomalies planted and found");
}

#[test]
fn tolerance_and_fail_on_decide_the_tie_out_and_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(&["--world", samples().to_str().unwrap()]);
    let run = |extra: &str, fail_on: &str| {
        let config = write_config(&emulator, dir.path(), extra);
        pcrecon(&["run", "--config", config.to_str().unwrap(), "--fail-on", fail_on], &[])
    };
    let mismatched: Vec<String> =
        planted(&samples()).into_iter().filter(|f| f.0 == "invoice_total_mismatch").map(|f| f.2).collect();
    assert!(!mismatched.is_empty());
    let voided: Vec<String> = truth(&samples())["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "void")
        .map(|i| i["invoice_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!voided.is_empty());

    assert_eq!(run("", "never").code, 0);
    let strict = run("", "mismatch");
    assert_eq!(strict.code, 1, "{}", strict.stderr);
    assert!(strict.stderr.contains("tie-out mismatches"), "{}", strict.stderr);
    assert_eq!(run("", "exception").code, 1);

    // Planted mismatches are 1-5 minor units: a tolerance of 5 minor units accepts them.
    let tolerant = run(
        "[reconcile]\ntolerance = { USD = \"0.05\", EUR = \"0.05\", GBP = \"0.05\", DKK = \"0.05\", JPY = \"5\" }",
        "mismatch",
    );
    assert_eq!(tolerant.code, 0, "{}", tolerant.stderr);
    let snapshot = snapshot_of(&dir.path().join("out"));
    let mut reader = csv::Reader::from_path(snapshot.join("csv/reconciliation/part-00000.csv")).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let statuses: Vec<(String, String, String)> = rows
        .iter()
        .filter(|r| &r[8] == "invoice")
        .map(|r| (r[0].to_owned(), r[6].to_owned(), r[7].to_owned()))
        .collect();
    for (invoice, status, class) in &statuses {
        let expected = if voided.contains(invoice) {
            ("void", "voided")
        } else if mismatched.contains(invoice) {
            ("within_tolerance", "rounding_residue")
        } else {
            ("ok", "none")
        };
        assert_eq!((status.as_str(), class.as_str()), expected, "{invoice}");
    }
    assert!(rows.iter().any(|r| &r[8] == "summary" && &r[6] == "ok"), "summaries are tied out too");
    let usage: Vec<_> = rows.iter().filter(|r| &r[8] == "usage").collect();
    assert!(!usage.is_empty() && usage.iter().all(|r| &r[6] == "ok"), "usage ties to metered charges");
    assert!(usage.iter().any(|r| &r[7] == "rounding_residue"), "the per-meter truncation leaves a residue");
}
