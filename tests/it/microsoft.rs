//! Microsoft's own documented sample responses (`tests/data/microsoft`, sources in its
//! `SOURCES.md`) served as a world and read by a real run: every endpoint's example must decode,
//! billing periods with a time of day stay the instants they are, and fields no column keeps are
//! reported, not dropped in silence.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::helpers::{Emulator, latest, run_case};

fn sample(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/microsoft").join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The items of a documented collection (or the one resource of a by-id example).
fn items(name: &str) -> Vec<Value> {
    let body = sample(name);
    match body.get("items") {
        Some(Value::Array(items)) => items.clone(),
        _ => vec![body],
    }
}

/// The items of two documented pages, in order.
fn both(first: &str, next: &str) -> Vec<Value> {
    [items(first), items(next)].concat()
}

fn write_lines(path: &Path, items: &[Value]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let text: String = items.iter().map(|i| format!("{i}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// A world folder whose every record is one of Microsoft's examples: the documented invoices (the
/// by-id example, the list's legacy invoice and void note, and the note's adjustment), summaries,
/// customers with the documented orders, subscriptions and entitlements, and the documented
/// line-item pages on the invoices and the unbilled USD period.
fn documented_world(dir: &Path) -> PathBuf {
    let world = dir.join("world");
    let by_id = items("get-invoice-by-id.json");
    let listed = items("get-a-collection-of-invoices.json");
    let mut invoices = by_id.clone();
    for invoice in &listed {
        invoices.push(invoice.clone());
        for amendment in invoice["amendments"].as_array().into_iter().flatten() {
            invoices.push(amendment.clone());
        }
    }
    let new_commerce = by_id[0]["id"].as_str().unwrap().to_owned();
    let legacy = listed.iter().find_map(|i| i["id"].as_str().filter(|id| id.starts_with('D'))).unwrap().to_owned();
    // The list example's legacy invoice names only Office lines; the Azure examples are served on
    // a copy of it (the one record here that is not Microsoft's) whose details name them.
    let mut azure = listed.iter().find(|i| i["id"] == legacy.as_str()).unwrap().clone();
    let azure_id = format!("{legacy}AZ");
    azure["id"] = azure_id.clone().into();
    let detail = |provider: &str, kind: &str| serde_json::json!({ "invoiceLineItemType": kind, "billingProvider": provider, "attributes": { "objectType": "InvoiceDetail" } });
    azure["invoiceDetails"] =
        serde_json::json!([detail("azure", "billing_line_items"), detail("azure", "usage_line_items")]);
    invoices.push(azure);
    write_lines(&world.join("invoices.jsonl"), &invoices);
    let inv = world.join("invoices");
    write_lines(
        &inv.join(&new_commerce).join("onetime-billinglineitems.jsonl"),
        &both("onetime-billing-line-items.json", "onetime-billing-line-items-seek-next.json"),
    );
    write_lines(
        &inv.join(&new_commerce).join("onetime-usagelineitems.jsonl"),
        &both("onetime-usage-line-items-billed.json", "onetime-usage-line-items-billed-seek-next.json"),
    );
    write_lines(&inv.join(&legacy).join("office-billinglineitems.jsonl"), &items("office-billing-line-items.json"));
    write_lines(&inv.join(&azure_id).join("azure-billinglineitems.jsonl"), &items("azure-billing-line-items.json"));
    write_lines(&inv.join(&azure_id).join("azure-usagelineitems.jsonl"), &items("azure-usage-line-items.json"));
    let unbilled = world.join("unbilled/USD/current");
    write_lines(
        &unbilled.join("billinglineitems.jsonl"),
        &[
            items("unbilled-recon-line-items.json"),
            items("unbilled-recon-line-items-seek-next.json"),
            items("unbilled-recon-line-items-example3.json"),
        ]
        .concat(),
    );
    write_lines(
        &unbilled.join("usagelineitems.jsonl"),
        &both("unbilled-consumption-line-items.json", "unbilled-consumption-line-items-seek-next.json"),
    );
    write_lines(&world.join("invoice_summaries.jsonl"), &items("get-invoice-summaries.json"));
    let customer = items("customer-by-id.json");
    let customer_id = customer[0]["id"].as_str().unwrap().to_owned();
    write_lines(&world.join("customers.jsonl"), &[items("customers.json"), customer].concat());
    let folder = world.join("customers").join(&customer_id);
    write_lines(&folder.join("orders.jsonl"), &both("orders.json", "order-by-id.json"));
    let subscriptions = [
        items("subscriptions.json"),
        items("subscription-by-id.json"),
        items("subscription-by-id-azure.json"),
        items("subscription-by-id-addon.json"),
    ]
    .concat();
    write_lines(&folder.join("subscriptions.jsonl"), &subscriptions);
    write_lines(
        &folder.join("entitlements.jsonl"),
        &both("entitlements.json", "entitlements-software-showexpiry.json"),
    );
    let world_json = serde_json::json!({
        "format": 1,
        "partner": { "tenant_id": "documented-partner" },
        "currencies": ["USD", "GBP", "CHF", "EUR"],
    });
    std::fs::write(world.join("world.json"), world_json.to_string()).unwrap();
    world
}

fn csv_rows(snapshot: &Path, dataset: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut rows = Vec::new();
    for entry in walk(&snapshot.join("csv").join(dataset)) {
        let mut reader = csv::Reader::from_path(&entry).unwrap();
        let headers = reader.headers().unwrap().clone();
        for record in reader.records() {
            let record = record.unwrap();
            rows.push(headers.iter().map(str::to_owned).zip(record.iter().map(str::to_owned)).collect());
        }
    }
    rows
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[test]
fn microsofts_documented_samples_go_through_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let world = documented_world(dir.path());
    let emulator = Emulator::start(&["--world", world.to_str().unwrap()]);
    // The documents are line-item shapes of v1; statements are not part of the samples.
    let datasets = pcrecon::tabular::Dataset::selectable()
        .filter(|d| d.kind() != pcrecon::tabular::Kind::File)
        .map(|d| format!("\"{d}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let extra = format!(
        "\n[extract]\napi_version = \"v1\"\ncurrencies = [\"USD\"]\nunbilled_periods = [\"current\"]\ndatasets = [{datasets}]\n"
    );
    let (finished, out) = run_case(&emulator, dir.path(), "documented", &extra, &[]);
    assert_eq!(finished.code, 0, "{}\n{}", finished.stdout, finished.stderr);
    let snapshot = latest(&out);
    let manifest: Value = serde_json::from_slice(&std::fs::read(snapshot.join("manifest.json")).unwrap()).unwrap();

    // Every documented record became a row.
    let expected = [
        ("invoices", 5),
        ("invoice_summaries", 3),
        ("billed_recon_line_items", 8),
        ("billed_consumption_line_items", 3),
        ("unbilled_recon_line_items", 11),
        ("unbilled_consumption_line_items", 3),
        ("legacy_office_line_items", 2),
        ("legacy_azure_line_items", 2),
        ("legacy_azure_usage_line_items", 2),
        ("customers", 3),
        ("orders", 3),
        ("subscriptions", 4),
        ("entitlements", 4),
    ];
    for (dataset, rows) in expected {
        assert_eq!(manifest["datasets"][dataset]["rows"], rows, "{dataset}");
    }

    // The by-id example's billing period carries a time of day: kept as that instant, and the
    // invoice filed under the period it starts.
    let invoices = csv_rows(&snapshot, "invoices");
    let by_id = invoices.iter().find(|r| r["id"] == "G000024135").unwrap();
    assert_eq!(by_id["billing_period_start_date"], "2018-02-01T22:40:37.589776700Z");
    assert_eq!(by_id["billing_period_end_date"], "2018-02-28T22:40:37.589776700Z");
    assert!(walk(&snapshot.join("invoices")).iter().any(|p| p.to_string_lossy().contains("period=2018-02")));

    // The documented void note and its adjustment are documents of their own, tied out.
    let void_note = invoices.iter().find(|r| r["document_type"] == "void_note").unwrap();
    let adjustment = invoices.iter().find(|r| r["document_type"] == "adjustment_note").unwrap();
    assert_eq!(adjustment["amends_of"], void_note["id"]);
    let reconciliation = csv_rows(&snapshot, "reconciliation");
    let check = |id: &str, kind: &str| {
        reconciliation
            .iter()
            .find(|r| r["invoice_id"] == id && r["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} check of {id}"))
    };
    // The examples serve no lines for these two: each is a stated total without lines, and the
    // void note with the adjustment note that amends it is tied out together.
    for (id, kind) in [(&void_note["id"], "void_note"), (&adjustment["id"], "adjustment_note")] {
        let row = check(id, kind);
        assert_eq!((row["status"].as_str(), row["classification"].as_str()), ("mismatch", "missing_lines"), "{row:?}");
    }
    let net = check(&void_note["id"], "net");
    assert_eq!(net["related_documents"], adjustment["id"]);
    // The by-id example's lines are its own example's, of another invoice: the difference is
    // reported, not hidden.
    assert_eq!(check("G000024135", "invoice")["status"], "mismatch");

    // Fields the documented examples carry are kept in columns...
    let subscriptions = csv_rows(&snapshot, "subscriptions");
    assert!(
        subscriptions.iter().any(|r| r["has_purchasable_addons"] == "false" && r["is_microsoft_product"] == "true")
    );
    let entitlements = csv_rows(&snapshot, "entitlements");
    assert!(entitlements.iter().any(|r| r["dynamic_attributes"].contains("virtualmachines")));
    assert!(entitlements.iter().all(|r| !r["included_entitlements"].is_empty()));
    // ...and what no column reads is counted per dataset and field, not dropped in silence: the
    // recon examples carry a literal `attributes/objectType` key beside `attributes`.
    let carrying = both("onetime-billing-line-items.json", "onetime-billing-line-items-seek-next.json")
        .iter()
        .filter(|item| item.get("attributes/objectType").is_some())
        .count();
    assert!(carrying > 0);
    let drift = &manifest["schema_drift"]["billed_recon_line_items"]["unknown"];
    assert_eq!(drift["attributes/objectType"], carrying, "{drift}");
    assert!(
        finished.stderr.contains("\"event\":\"unknown_field\"") && finished.stderr.contains("attributes/objectType"),
        "{}",
        finished.stderr
    );
}
