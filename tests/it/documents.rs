//! Documents that amend invoices and the signs of payments, end to end: a world with paid,
//! part-paid and unpaid invoices, credit notes, adjustment notes and void notes with their
//! rebills, run under `auto`, ties out every document, every invoice with its notes and every
//! summary exactly as `truth.json` says; and a v2 export that is not ready is reported, not
//! papered over with a retired v1 call.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::helpers::{Emulator, dec, generate, latest, run, run_case, truth, write_config};

type Row = BTreeMap<String, String>;

fn rows(snapshot: &Path, dataset: &str) -> Vec<Row> {
    let mut out = Vec::new();
    let mut stack = vec![snapshot.join("csv").join(dataset)];
    let mut files = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() { stack.push(path) } else { files.push(path) }
        }
    }
    files.sort();
    for file in files {
        let mut reader = csv::Reader::from_path(&file).unwrap();
        let headers = reader.headers().unwrap().clone();
        for record in reader.records() {
            let record = record.unwrap();
            out.push(headers.iter().map(str::to_owned).zip(record.iter().map(str::to_owned)).collect());
        }
    }
    out
}

fn find<'a>(rows: &'a [Row], id: &str, kind: &str) -> &'a Row {
    rows.iter().find(|r| r["invoice_id"] == id && r["kind"] == kind).unwrap_or_else(|| panic!("no {kind} row for {id}"))
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

#[test]
fn every_document_and_summary_ties_out_as_truth_says() {
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("world");
    generate(
        &world,
        &[
            "--seed",
            "21",
            "--customers",
            "10",
            "--months",
            "3",
            "--usage-rows-per-month",
            "600",
            "--documents",
            "credit_note=0.3,adjustment_note=0.3,void_note=0.3",
        ],
    );
    let truth = truth(&world);
    let documents = truth["invoices"].as_array().unwrap();
    let kinds: std::collections::BTreeSet<&str> =
        documents.iter().map(|d| d["document_type"].as_str().unwrap()).collect();
    for kind in ["invoice", "credit_note", "adjustment_note", "void_note"] {
        assert!(kinds.contains(kind), "the world has no {kind}");
    }
    let paid = |d: &&Value| dec(&d["paid_amount"]);
    let invoices: Vec<&Value> = documents.iter().filter(|d| d["document_type"] == "invoice").collect();
    assert!(invoices.iter().any(|d| paid(d).is_zero()), "unpaid invoices");
    assert!(invoices.iter().any(|d| paid(d) == -dec(&d["stated_total"]) && !paid(d).is_zero()), "paid invoices");
    assert!(invoices.iter().any(|d| !paid(d).is_zero() && paid(d) != -dec(&d["stated_total"])), "part-paid");

    // v1 serves none of these periods any more: a routing mistake fails the run.
    let emulator = Emulator::start(&["--world", world.to_str().unwrap(), "--v1-retired"]);
    let (finished, out) = run_case(&emulator, dir.path(), "auto", "", &[]);
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    let snapshot = latest(&out);
    let reconciliation = rows(&snapshot, "reconciliation");
    let published = rows(&snapshot, "invoices");

    for doc in documents {
        let id = doc["invoice_id"].as_str().unwrap();
        let kind = doc["document_type"].as_str().unwrap();
        let row = find(&reconciliation, id, kind);
        assert_eq!(row["status"], text(&doc["tie_out"]), "{id} {kind}: {row:?}");
        let invoice = published.iter().find(|r| r["id"] == id).unwrap_or_else(|| panic!("{id} not published"));
        assert_eq!(invoice["document_type"], kind, "{id}");
        assert_eq!(invoice["status"], text(&doc["status"]), "{id}");
        assert_eq!(invoice["amends_of"], doc.get("amends_of").map(text).unwrap_or_default(), "{id}");
        assert_eq!(dec(&Value::String(invoice["paid_amount"].clone())), dec(&doc["paid_amount"]), "{id}");
        match doc.get("net") {
            Some(net) => {
                let row = find(&reconciliation, id, "net");
                assert_eq!(row["status"], text(&net["tie_out"]), "{id} net: {row:?}");
                assert_eq!(dec(&Value::String(row["stated_total"].clone())), dec(&net["stated_total"]), "{id}");
                assert_eq!(dec(&Value::String(row["lines_total"].clone())), dec(&net["lines_total"]), "{id}");
                for note in doc["amendments"].as_array().unwrap() {
                    assert!(row["related_documents"].contains(note.as_str().unwrap()), "{id}: {row:?}");
                }
            }
            None => assert!(!reconciliation.iter().any(|r| r["invoice_id"] == id && r["kind"] == "net"), "{id}"),
        }
    }
    for summary in truth["summaries"].as_array().unwrap() {
        let currency = summary["currency"].as_str().unwrap();
        let row = find(&reconciliation, &format!("summary {currency}"), "summary");
        assert_eq!(row["status"], "ok", "{currency}: {row:?}");
        assert_eq!(dec(&Value::String(row["stated_total"].clone())), dec(&summary["balance"]), "{currency}");
    }
    // A voided invoice is void, its rebill ties out on its own.
    let rebill = documents.iter().find(|d| d.get("rebill_of").is_some()).unwrap();
    assert_eq!(find(&reconciliation, rebill["invoice_id"].as_str().unwrap(), "invoice")["status"], "ok");
    let voided = rebill["rebill_of"].as_str().unwrap();
    assert_eq!(find(&reconciliation, voided, "invoice")["classification"], "voided");
}

#[test]
fn an_export_that_is_not_ready_is_reported_and_the_rest_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let world = crate::helpers::samples();
    let truth = truth(&world);
    let late = truth["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["commerce"] == "new" && d["document_type"] == "invoice" && d["status"] == "active")
        .map(|d| d["invoice_id"].as_str().unwrap().to_owned())
        .next_back()
        .unwrap();
    let late_emulator = Emulator::start(&[
        "--world",
        world.to_str().unwrap(),
        "--v1-retired",
        "--export-retry-after",
        "0",
        "--export-unavailable",
        &late,
    ]);
    let case = dir.path().join("late");
    std::fs::create_dir_all(&case).unwrap();
    let config = write_config(&late_emulator, &case, "\n[extract.v2]\nexport_timeout_secs = 3\n");
    let finished = run(&config, &[], &[]);
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    assert!(finished.stderr.contains("\"event\":\"export_not_ready\""), "{}", finished.stderr);
    assert!(!finished.stderr.contains("export_no_data_v1_fallback"), "no retired v1 call: {}", finished.stderr);
    assert!(!finished.summary()["not_ready"].as_object().unwrap().is_empty(), "{}", finished.stdout);
    let snapshot = latest(&case.join("out"));
    let manifest: Value = serde_json::from_slice(&std::fs::read(snapshot.join("manifest.json")).unwrap()).unwrap();
    let not_ready = manifest["not_ready"].as_object().unwrap();
    for dataset in ["billed_recon_line_items", "billed_consumption_line_items"] {
        let detail = not_ready[&format!("{dataset}/{late}")].as_str().unwrap();
        assert!(detail.contains("5000") && detail.contains("v1 no longer serves"), "{detail}");
    }
    let run_report: Value = serde_json::from_slice(&std::fs::read(snapshot.join("run.json")).unwrap()).unwrap();
    assert_eq!(run_report["not_ready"].as_object().unwrap().len(), 2);
    let reconciliation = rows(&snapshot, "reconciliation");
    assert_eq!(find(&reconciliation, &late, "invoice")["status"], "not_ready");
    let exports: Vec<&Row> = reconciliation.iter().filter(|r| r["kind"] == "export").collect();
    assert_eq!(exports.len(), 2, "{exports:?}");
    assert!(exports.iter().all(|r| r["status"] == "not_ready" && r["invoice_id"] == late));
    // The other documents are published and tie out as the world says.
    let expected = |id: &str| {
        let doc = truth["invoices"].as_array().unwrap().iter().find(|d| d["invoice_id"] == id).unwrap();
        (text(&doc["document_type"]), text(&doc["tie_out"]))
    };
    for doc in truth["invoices"].as_array().unwrap().iter().filter(|d| d["invoice_id"] != late.as_str()) {
        let id = doc["invoice_id"].as_str().unwrap();
        let (kind, status) = expected(id);
        assert_eq!(find(&reconciliation, id, &kind)["status"], status, "{id}");
    }

    // `--fail-on not_ready` lets cron alert on it; a later night, once the export is ready,
    // fetches the invoice (nothing of the not-ready attempt was cached as complete).
    assert_eq!(run(&config, &["--fail-on", "not_ready"], &[]).code, 1);
    assert_eq!(run(&config, &["--fail-on", "mismatch,not_ready"], &[]).code, 1);
    drop(late_emulator);
    let ready = Emulator::start(&["--world", world.to_str().unwrap(), "--v1-retired", "--export-retry-after", "0"]);
    let config = write_config(&ready, &case, "\n[extract.v2]\nexport_timeout_secs = 3\n");
    let finished = run(&config, &["--fail-on", "not_ready"], &[]);
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    let snapshot = latest(&case.join("out"));
    let reconciliation = rows(&snapshot, "reconciliation");
    assert_eq!(find(&reconciliation, &late, "invoice")["status"], expected(&late).1);
    assert!(!reconciliation.iter().any(|r| r["kind"] == "export"));
}
