//! The v2 reconciliation export on Microsoft Graph (spec §11-§12, §17.5-§17.8): the emulated
//! endpoints walked by the spec alone against truth.json, and `pcrecon run` routed through them:
//! the same data files as through v1, under faults (answered in Graph's error shape), after a kill
//! mid-download, within its polling deadline, and whichever documented variant of the operation
//! and manifest the service answers with.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{
    Emulator, Replayed, Totals, V1_ONLY, add, data, generate, http_client, latest, log_lines, run, run_case,
    run_then_replay, samples, truth, truth_served_totals, write_config,
};

/// A client of the Graph export that knows only the spec.
struct Graph {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// What one finished export gave.
struct Exported {
    location: String,
    statuses: Vec<String>,
    operation: Value,
    manifest: Option<Value>,
}

impl Graph {
    async fn connect(emulator: &Emulator) -> Graph {
        let http = http_client();
        let response = http
            .post(format!("{}/partner/oauth2/v2.0/token", emulator.base))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "walker"),
                ("client_secret", "s"),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        Graph { http, base: emulator.base.clone(), token: body["access_token"].as_str().unwrap().to_owned() }
    }

    async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/v1.0/reports/partners/billing/{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        request.send().await.unwrap()
    }

    async fn get(&self, url: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let response = self.http.get(url).bearer_auth(&self.token).send().await.unwrap();
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        (status, headers, response.bytes().await.unwrap().to_vec())
    }

    /// POST, then poll the `Location` (honouring `Retry-After`) to a terminal state, then read
    /// the manifest of a successful export.
    async fn export(&self, path: &str, body: Value) -> Exported {
        let response = self.post(path, &body, Some(&self.token)).await;
        assert_eq!(response.status(), 202, "POST {path} {body}");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(&format!("{}/v1.0/reports/partners/billing/operations/", self.base)));
        let mut statuses = Vec::new();
        loop {
            let (status, headers, bytes) = self.get(&location).await;
            assert_eq!(status, 200);
            let operation: Value = serde_json::from_slice(&bytes).unwrap();
            statuses.push(operation["status"].as_str().unwrap().to_owned());
            match operation["@odata.type"].as_str().unwrap() {
                "#microsoft.graph.partners.billing.runningOperation" => {
                    let wait = headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap();
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                }
                "#microsoft.graph.partners.billing.exportSuccessOperation" => {
                    // The manifest is linked, or embedded under `resourceLocation`.
                    let manifest = match operation["resourceLocation@odata.navigationLink"].as_str() {
                        Some(link) => {
                            let (status, _, bytes) = self.get(link).await;
                            assert_eq!(status, 200);
                            serde_json::from_slice(&bytes).unwrap()
                        }
                        None => operation["resourceLocation"].clone(),
                    };
                    assert!(manifest["blobs"].is_array(), "a manifest: {manifest}");
                    return Exported { location, statuses, operation, manifest: Some(manifest) };
                }
                "#microsoft.graph.partners.billing.failedOperation" => {
                    return Exported { location, statuses, operation, manifest: None };
                }
                other => panic!("unknown operation type {other}"),
            }
        }
    }

    /// Every line of every file of a manifest, downloaded with its shared-access signature.
    async fn lines(&self, manifest: &Value) -> Vec<Value> {
        let root = manifest["rootDirectory"].as_str().unwrap();
        let sas = manifest["sasToken"].as_str().unwrap();
        let blobs = manifest["blobs"].as_array().unwrap();
        assert_eq!(manifest["blobCount"].as_u64(), Some(blobs.len() as u64));
        let mut lines = Vec::new();
        for blob in blobs {
            let url = format!("{root}/{}?{sas}", blob["name"].as_str().unwrap());
            let response = self.http.get(&url).send().await.unwrap();
            assert_eq!(response.status(), 200, "{url}");
            let gz = response.bytes().await.unwrap();
            let mut text = String::new();
            flate2::read::MultiGzDecoder::new(&gz[..]).read_to_string(&mut text).unwrap();
            let before = lines.len();
            lines.extend(
                text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str::<Value>(l).unwrap()),
            );
            // Only a manifest with counts (Microsoft's sample model) says how many lines to expect.
            if let Some(count) = blob.get("itemCount") {
                assert_eq!(count.as_u64(), Some((lines.len() - before) as u64), "{}", blob["name"]);
                assert_eq!(blob["sizeInBytes"].as_u64(), Some(gz.len() as u64), "{}", blob["name"]);
            }
        }
        lines
    }
}

/// Totals of export lines under the v1 field names truth.json uses.
fn add_lines(totals: &mut Totals, dataset: &str, lines: &[Value]) {
    let usage = dataset.ends_with("consumption_line_items");
    let (currency, fields): (&str, &[(&str, &str)]) = if usage {
        (
            "BillingCurrency",
            &[
                ("Quantity", "quantity"),
                ("PricingPreTaxTotal", "pricingPreTaxTotal"),
                ("BillingPreTaxTotal", "billingPreTaxTotal"),
            ],
        )
    } else {
        ("Currency", &[("Subtotal", "subtotal"), ("TaxTotal", "taxTotal"), ("Total", "totalForCustomer")])
    };
    for line in lines {
        let mut renamed = serde_json::Map::new();
        for (v2, v1) in fields {
            renamed.insert((*v1).to_owned(), line[*v2].clone());
        }
        let item = Value::Object(renamed);
        let v1_names: Vec<&str> = fields.iter().map(|(_, v1)| *v1).collect();
        add(totals, dataset, line[currency].as_str().unwrap(), &item, &v1_names);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulated_export_serves_the_world_by_the_spec() {
    let world = samples();
    let truth = truth(&world);
    let emulator =
        Emulator::start(&["--world", world.to_str().unwrap(), "--blob-lines", "50", "--export-retry-after", "0"]);
    let graph = Graph::connect(&emulator).await;

    // Only a Graph token opens the export; a Partner Center token is for another audience.
    let body = serde_json::json!({ "invoiceId": "G018242900", "attributeSet": "full" });
    assert_eq!(graph.post("usage/billed/export", &body, None).await.status(), 401);
    let partner_center = emulator.client().await.token;
    assert_eq!(graph.post("usage/billed/export", &body, Some(&partner_center)).await.status(), 401);
    let no_invoice = serde_json::json!({ "attributeSet": "full" });
    assert_eq!(graph.post("usage/billed/export", &no_invoice, Some(&graph.token)).await.status(), 400);

    let mut totals = Totals::new();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for invoice in truth["invoices"].as_array().unwrap() {
        let id = invoice["invoice_id"].as_str().unwrap();
        for (path, dataset) in [
            ("usage/billed/export", "billed_consumption_line_items"),
            ("reconciliation/billed/export", "billed_recon_line_items"),
        ] {
            let exported = graph.export(path, serde_json::json!({ "invoiceId": id, "attributeSet": "full" })).await;
            if invoice["commerce"] == "legacy" {
                // v2 does not serve legacy invoices: the operation fails with code 5000.
                assert_eq!(exported.operation["status"], "failed");
                assert_eq!(exported.operation["error"]["code"], "5000");
                assert!(exported.operation["error"]["message"].as_str().unwrap().contains(id));
                continue;
            }
            assert_eq!(exported.statuses, ["notStarted", "running", "succeeded"], "{id}");
            let manifest = exported.manifest.unwrap();
            for key in [
                "id",
                "schemaVersion",
                "dataFormat",
                "createdDateTime",
                "eTag",
                "partnerTenantId",
                "rootDirectory",
                "sasToken",
                "partitionType",
            ] {
                assert!(manifest.get(key).is_some(), "manifest lacks {key}");
            }
            assert_eq!(manifest["partnerTenantId"], truth["partner_tenant_id"]);
            // As in GA: each file has its name and partition value, and no count or size.
            for blob in manifest["blobs"].as_array().unwrap() {
                let keys: BTreeSet<&str> = blob.as_object().unwrap().keys().map(String::as_str).collect();
                assert_eq!(keys, BTreeSet::from(["name", "partitionValue"]), "{blob}");
            }
            let lines = graph.lines(&manifest).await;
            assert_eq!(lines.len() as u64, invoice["lines"][dataset].as_u64().unwrap_or(0), "{id} {dataset}");
            *counts.entry(dataset.to_owned()).or_default() += lines.len() as u64;
            add_lines(&mut totals, dataset, &lines);
            // The same request for the same data is the same operation, with the same eTag.
            let again = graph.export(path, serde_json::json!({ "invoiceId": id, "attributeSet": "full" })).await;
            assert_eq!(again.location, exported.location);
            assert_eq!(again.manifest.unwrap()["eTag"], manifest["eTag"]);
        }
    }
    for unbilled in truth["unbilled"].as_array().unwrap() {
        let period = if unbilled["period"] == "previous" { "last" } else { "current" };
        let body = serde_json::json!({ "currencyCode": unbilled["currency"], "billingPeriod": period, "attributeSet": "full" });
        for (path, dataset) in [
            ("usage/unbilled/export", "unbilled_consumption_line_items"),
            ("reconciliation/unbilled/export", "unbilled_recon_line_items"),
        ] {
            let manifest = graph.export(path, body.clone()).await.manifest.unwrap();
            let lines = graph.lines(&manifest).await;
            assert_eq!(lines.len() as u64, unbilled["lines"][dataset].as_u64().unwrap_or(0), "{body} {dataset}");
            *counts.entry(dataset.to_owned()).or_default() += lines.len() as u64;
            add_lines(&mut totals, dataset, &lines);
        }
    }
    let expected = truth_served_totals(&truth);
    for dataset in counts.keys() {
        assert_eq!(counts[dataset], truth["datasets"][dataset].as_u64().unwrap(), "{dataset}");
        assert_eq!(totals.get(dataset), expected.get(dataset), "{dataset}: control totals equal truth.json");
    }
    assert_eq!(counts.len(), 4);

    // The basic attribute set carries only its attributes, as Microsoft's list marks them; the
    // files speak PascalCase.
    let basic = graph
        .export("usage/billed/export", serde_json::json!({ "invoiceId": "G018242900", "attributeSet": "basic" }))
        .await;
    let lines = graph.lines(&basic.manifest.unwrap()).await;
    let keys: BTreeSet<&str> = lines.iter().flat_map(|l| l.as_object().unwrap().keys().map(String::as_str)).collect();
    for key in ["PartnerId", "ResourceURI", "UnitType", "AdditionalInfo", "BenefitOrderID"] {
        assert!(keys.contains(key), "basic lacks {key}: {keys:?}");
    }
    for key in ["Unit", "CustomerDomainName", "MeterName", "BenefitID"] {
        assert!(!keys.contains(key), "basic has {key}: {keys:?}");
    }
    let recon = graph
        .export(
            "reconciliation/billed/export",
            serde_json::json!({ "invoiceId": "G018242900", "attributeSet": "full" }),
        )
        .await;
    let lines = graph.lines(&recon.manifest.unwrap()).await;
    assert!(!lines.is_empty());
    for line in &lines {
        for key in ["Tier2MpnId", "Total", "Currency", "ProductCategory"] {
            assert!(line.get(key).is_some(), "a reconciliation line lacks {key}: {line}");
        }
        assert!(line.get("totalForCustomer").is_none() && line.get("resellerMpnId").is_none(), "{line}");
        let category = line["ProductCategory"].as_str().unwrap();
        assert!(["Azure", "OnlineServices", "Software", "Marketplace"].contains(&category), "{category}");
    }

    // A signature that was altered is refused, as blob storage does.
    let manifest = graph.export("usage/billed/export", body).await.manifest.unwrap();
    let blob = manifest["blobs"][0]["name"].as_str().unwrap();
    let sas = manifest["sasToken"].as_str().unwrap().replace("sig=", "sig=0");
    let url = format!("{}/{blob}?{sas}", manifest["rootDirectory"].as_str().unwrap());
    assert_eq!(graph.http.get(&url).send().await.unwrap().status(), 403);
}

/// A generated world with quirks, in files of a few lines.
fn world(dir: &Path) -> std::path::PathBuf {
    let world = dir.join("world");
    generate(&world, &["--seed", "21", "--customers", "8", "--months", "2", "--usage-rows-per-month", "1500"]);
    world
}

const V2: &str = "[extract]\napi_version = \"v2\"\n";

/// File digests by path, and the manifest.
type Comparable = (BTreeMap<String, String>, Value);

/// A snapshot's data files and `manifest.json` without its `exports` (which only v2 has).
fn comparable(out: &Path) -> Comparable {
    let mut files = data(&latest(out));
    files.remove("manifest.json");
    let mut manifest = manifest(out);
    manifest.as_object_mut().unwrap().remove("exports");
    for lineage in manifest["lineage"].as_object_mut().unwrap().values_mut() {
        // Content digests are over items as served: v1 and v2 serve them in other spellings.
        lineage.as_object_mut().unwrap().remove("content_sha256");
        lineage.as_object_mut().unwrap().remove("etags");
    }
    (files, manifest)
}

fn manifest(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(latest(out).join("manifest.json")).unwrap()).unwrap()
}

/// The column only v2 reconciliation files fill: v1 line items have no product category.
const V2_ONLY: &str = "product_category";

/// Whether a snapshot path is a file of a reconciliation dataset (Parquet or CSV).
fn is_recon_file(path: &str) -> bool {
    let path = path.strip_prefix("csv/").unwrap_or(path);
    path.starts_with("billed_recon_line_items/") || path.starts_with("unbilled_recon_line_items/")
}

/// A reconciliation file's content without [`V2_ONLY`], as a digest, and the values it held.
fn without_product_category(file: &Path) -> (String, Vec<Option<String>>) {
    use arrow_array::{Array, StringArray};
    use sha2::{Digest, Sha256};
    let mut values = Vec::new();
    let mut rest = String::new();
    if file.extension().is_some_and(|e| e == "csv") {
        let mut reader = csv::Reader::from_path(file).unwrap();
        let headers = reader.headers().unwrap().clone();
        let at = headers.iter().position(|h| h == V2_ONLY).expect("a product_category column");
        let keep = |record: &csv::StringRecord| {
            record.iter().enumerate().filter(|(i, _)| *i != at).map(|(_, v)| v).collect::<Vec<_>>().join("\u{1f}")
        };
        rest.push_str(&keep(&headers));
        for record in reader.records() {
            let record = record.unwrap();
            values.push(Some(record[at].to_owned()).filter(|v| !v.is_empty()));
            rest.push('\n');
            rest.push_str(&keep(&record));
        }
    } else {
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file).unwrap())
                .unwrap()
                .build()
                .unwrap();
        for batch in reader {
            let mut batch = batch.unwrap();
            let at = batch.schema().index_of(V2_ONLY).expect("a product_category column");
            let column = batch.remove_column(at);
            let strings = column.as_any().downcast_ref::<StringArray>().unwrap();
            values.extend((0..strings.len()).map(|i| strings.is_valid(i).then(|| strings.value(i).to_owned())));
            rest.push_str(&format!("{batch:?}"));
        }
    }
    (format!("{:x}", Sha256::digest(rest.as_bytes())), values)
}

/// [`comparable`] for comparing a v1 run with a v2 run: every file and every column as they are,
/// except [`V2_ONLY`] in the reconciliation files (and so those files' bytes and SHA-256 in the
/// manifest), whose values are returned instead, and the manifest's record of the routing.
fn comparable_across_apis(out: &Path) -> (Comparable, Vec<Option<String>>) {
    let (mut files, mut manifest) = comparable(out);
    let snapshot = latest(out);
    let mut categories = Vec::new();
    for (path, digest) in files.iter_mut().filter(|(p, _)| is_recon_file(p)) {
        let (rest, values) = without_product_category(&snapshot.join(path));
        *digest = rest;
        if path.ends_with(".parquet") {
            categories.extend(values);
        }
    }
    for file in manifest["files"].as_array_mut().unwrap() {
        if is_recon_file(file["path"].as_str().unwrap()) {
            let file = file.as_object_mut().unwrap();
            file.remove("bytes");
            file.remove("sha256");
        }
    }
    // The routing is what differs, and the manifest says so.
    let routing = manifest["provenance"].as_object_mut().unwrap().remove("routing").unwrap();
    assert!(routing.as_object().unwrap().values().all(|v| v == "v1" || v == "v2"), "{routing}");
    ((files, manifest), categories)
}

#[test]
fn one_world_through_v1_and_through_v2_gives_identical_data_files() {
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path());
    let emulator =
        Emulator::start(&["--world", world.to_str().unwrap(), "--blob-lines", "97", "--export-retry-after", "0"]);
    let mut outs = Vec::new();
    for (name, extra) in [("v1", V1_ONLY), ("v2", V2)] {
        let (finished, out) = run_case(&emulator, dir.path(), name, extra, &[]);
        assert!(finished.code == 0 || finished.code == 1, "{name}: {}", finished.stderr);
        outs.push(out);
    }
    // The reconciliation files differ in one column only: v2's files carry `ProductCategory`,
    // which v1 line items do not have. Every other column, every other file, and every control
    // total and check are the same.
    let (v1, v1_categories) = comparable_across_apis(&outs[0]);
    let (v2, v2_categories) = comparable_across_apis(&outs[1]);
    assert!(v1.0.keys().any(|f| f.starts_with("billed_consumption_line_items/")));
    assert!(v1.0.keys().any(|f| f.starts_with("billed_recon_line_items/")));
    assert_eq!(v1.0, v2.0, "every data file is the same, byte for byte outside product_category");
    assert_eq!(v1.1, v2.1, "and so are the manifest's files, totals and checks");
    assert!(v1_categories.iter().all(Option::is_none), "v1 has no product category");
    assert_eq!(v1_categories.len(), v2_categories.len());
    let seen: BTreeSet<&str> = v2_categories.iter().map(|c| c.as_deref().expect("every v2 line has one")).collect();
    assert!(seen.is_subset(&BTreeSet::from(["Azure", "OnlineServices", "Software", "Marketplace"])), "{seen:?}");
    assert!(seen.contains("OnlineServices") && seen.contains("Azure"), "{seen:?}");

    // v2's lineage names every export it read; v1 has none.
    assert!(manifest(&outs[0]).get("exports").is_none());
    let exports = manifest(&outs[1])["exports"].as_object().unwrap().clone();
    let truth = truth(&world);
    let new_commerce = truth["invoices"].as_array().unwrap().iter().filter(|i| i["commerce"] == "new").count();
    let billed = exports.keys().filter(|k| k.starts_with("billed_")).count();
    assert_eq!(billed, 2 * new_commerce, "{:?}", exports.keys());
    assert!(exports.keys().any(|k| k.starts_with("unbilled_consumption_line_items/")));
    let legacy = |k: &&String| k.starts_with("billed_") && k.split('/').nth(1).is_some_and(|s| s.starts_with('D'));
    assert!(!exports.keys().any(|k| legacy(&k)), "legacy invoices are not exported");
    // The operations that served them are in run.json: a renewed export has other ids for the same data.
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(latest(&outs[1]).join("run.json")).unwrap()).unwrap();
    let operations = run["exports"].as_object().unwrap();
    assert_eq!(operations.keys().collect::<Vec<_>>(), exports.keys().collect::<Vec<_>>());
    for (key, export) in &exports {
        for field in ["etag", "attribute_set"] {
            assert!(!export[field].as_str().unwrap().is_empty(), "{key} {field}");
        }
        assert!(export.get("operation_id").is_none() && export.get("blobs").is_none(), "{key}");
        for field in ["operation_id", "manifest_id"] {
            assert!(!operations[key][field].as_str().unwrap().is_empty(), "{key} {field}");
        }
        let blobs = operations[key]["blobs"].as_array().unwrap();
        assert!(blobs.iter().all(|b| b.as_str().unwrap().ends_with(".json.gz")));
    }
    let lineage = manifest(&outs[1])["lineage"].as_object().unwrap().clone();
    assert!(lineage.values().filter(|l| l.get("etags").is_some()).count() == new_commerce);
}

#[test]
fn legacy_invoices_stay_on_v1_and_the_plan_shows_each_api() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let emulator = Emulator::start(&[
        "--world",
        samples().to_str().unwrap(),
        "--export-retry-after",
        "0",
        "--request-log",
        log.to_str().unwrap(),
    ]);
    let config = write_config(&emulator, dir.path(), V2);
    let dry = run(&config, &["--dry-run"], &[]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    let plan_line = |dataset: &str, api: &str| {
        dry.stdout.lines().any(|l| l.trim_start().starts_with(dataset) && l.split_whitespace().any(|w| w == api))
    };
    assert!(plan_line("billed_consumption_line_items", "v2"), "{}", dry.stdout);
    assert!(plan_line("unbilled_recon_line_items", "v2"), "{}", dry.stdout);
    assert!(plan_line("legacy_office_line_items", "v1"), "{}", dry.stdout);
    assert!(!plan_line("billed_consumption_line_items", "v1"), "{}", dry.stdout);

    let finished = run(&config, &[], &[]);
    assert!(finished.code == 0 || finished.code == 1, "{}", finished.stderr);
    let paths: Vec<String> = log_lines(&log).iter().map(|l| l["path"].as_str().unwrap().to_owned()).collect();
    assert!(paths.iter().any(|p| p.starts_with("/v1/invoices/D") && p.contains("/lineitems")), "legacy lines via v1");
    assert!(!paths.iter().any(|p| p.contains("/lineitems") && p.contains("provider=onetime")), "no v1 onetime call");
    assert!(paths.iter().any(|p| p.ends_with("/usage/billed/export")));
    let report = manifest(&dir.path().join("out"));
    assert!(report["datasets"]["legacy_office_line_items"]["rows"].as_u64().unwrap() > 0);
    assert!(!finished.stderr.contains("sig="), "a shared-access signature reached the logs");
}

#[test]
fn v2_faults_give_the_output_of_a_fault_free_run() {
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path());
    let log = dir.path().join("requests.jsonl");
    let common = ["--world", world.to_str().unwrap(), "--blob-lines", "60", "--export-retry-after", "0"];
    let clean = Emulator::start(&common);
    let faults = "slow_operation=0.3,expired_operation=0.03,sas_expiry=0.05,blob_error=0.08,truncated_blob=0.12,429=0.02,500=0.02,reset=0.01";
    let mut args = common.to_vec();
    args.extend([
        "--faults",
        faults,
        "--fault-seed",
        "5",
        "--max-retry-after",
        "1",
        "--request-log",
        log.to_str().unwrap(),
    ]);
    let faulty = Emulator::start(&args);
    let mut outs = Vec::new();
    for (name, emulator) in [("clean", &clean), ("faulty", &faulty)] {
        let (finished, out) = run_case(emulator, dir.path(), name, V2, &[]);
        assert!(finished.code == 0 || finished.code == 1, "{name}: {}", finished.stderr);
        assert!(!finished.stderr.contains("sig="), "a shared-access signature reached the logs");
        if name == "faulty" {
            for event in ["blob_refetch", "export_renewed"] {
                assert!(finished.stderr.contains(event), "the run logged no {event}");
            }
        }
        outs.push(out);
    }
    let met: BTreeSet<String> = log_lines(&log).iter().filter_map(|l| l["fault"].as_str().map(str::to_owned)).collect();
    for fault in ["slow_operation", "expired_operation", "sas_expiry", "blob_error", "truncated_blob"] {
        assert!(met.contains(fault), "the run met no {fault}: {met:?}");
    }
    // Throttling and server errors on Graph routes come in Graph's shape, and are retried as well.
    let graph_errors = log_lines(&log)
        .iter()
        .filter(|l| matches!(l["fault"].as_str(), Some("429" | "500")))
        .filter(|l| l["path"].as_str().unwrap().starts_with("/v1.0/"))
        .count();
    assert!(graph_errors > 0, "the run met no 429 or 500 on a Graph route");
    // Every file but run.json, the manifest included: renewed exports change no byte of it.
    assert_eq!(data(&latest(&outs[0])), data(&latest(&outs[1])), "the snapshot equals a fault-free run's");
}

#[test]
fn a_run_killed_mid_download_reruns_to_the_bytes_of_a_clean_run() {
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path());
    let emulator =
        Emulator::start(&["--world", world.to_str().unwrap(), "--blob-lines", "40", "--export-retry-after", "0"]);
    let (clean, clean_out) = run_case(&emulator, dir.path(), "clean", V2, &[]);
    assert!(clean.code <= 1, "{}", clean.stderr);
    let reference = data(&latest(&clean_out));
    assert!(reference.contains_key("manifest.json"));
    for point in ["blob:3", "blob:40"] {
        let case = dir.path().join(point.replace(':', "-"));
        std::fs::create_dir_all(&case).unwrap();
        let config = write_config(&emulator, &case, V2);
        let killed = run(&config, &[], &[("PCRECON_ABORT_AT", point)]);
        assert_eq!(killed.code, -1, "{point}: the run was aborted: {}", killed.stderr);
        assert!(!case.join("out/LATEST").exists(), "{point}: nothing was published");
        let rerun = run(&config, &[], &[]);
        assert!(rerun.code <= 1, "{point}: {}", rerun.stderr);
        assert_eq!(
            data(&latest(&case.join("out"))),
            reference,
            "{point}: the rerun equals a clean run, manifest included"
        );
        let spool = case.join("out/.cache/spool");
        assert!(!spool.exists() || std::fs::read_dir(&spool).unwrap().next().is_none(), "no spooled file is left");
    }
}

#[test]
fn polling_honours_retry_after_and_stops_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let emulator = Emulator::start(&[
        "--world",
        samples().to_str().unwrap(),
        "--export-polls",
        "1000",
        "--export-retry-after",
        "1",
        "--request-log",
        log.to_str().unwrap(),
    ]);
    let extra = "[extract]\napi_version = \"v2\"\ndatasets = [\"billed_consumption_line_items\"]\ninvoice_ids = [\"G018242900\"]\n[extract.v2]\nexport_timeout_secs = 3\n";
    let started = Instant::now();
    let finished = run(&write_config(&emulator, dir.path(), extra), &[], &[]);
    assert_eq!(finished.code, 4, "{}", finished.stderr);
    assert!(started.elapsed() < Duration::from_secs(30));
    let message = finished.stderr.lines().last().unwrap();
    for part in ["billed_consumption_line_items", "G018242900", "still", "export_timeout_secs"] {
        assert!(message.contains(part), "{part:?} missing from {message}");
    }
    let polls: Vec<chrono::DateTime<chrono::Utc>> = log_lines(&log)
        .iter()
        .filter(|l| l["path"].as_str().unwrap().contains("/operations/"))
        .map(|l| l["time"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!((2..=4).contains(&polls.len()), "{} polls in 3 s at Retry-After: 1", polls.len());
    for pair in polls.windows(2) {
        assert!(pair[1] - pair[0] >= chrono::Duration::milliseconds(950), "polled before Retry-After");
    }
    assert!(!dir.path().join("out/LATEST").exists());
}

#[test]
fn a_v2_run_is_rebuilt_from_its_raw_archive_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let world = samples();
    let args = [
        "--world",
        world.to_str().unwrap(),
        "--blob-lines",
        "30",
        "--export-retry-after",
        "0",
        "--faults",
        "truncated_blob=0.1,sas_expiry=0.05",
    ];
    let Replayed { raw, first, replay, .. } = run_then_replay(dir.path(), &args, V2);
    assert!(first.code <= 1, "{}", first.stderr);
    let index = std::fs::read_to_string(raw.join("index.jsonl")).unwrap();
    assert!(index.contains("\"paging\":\"lines\"") && index.contains("\"etag\""), "pages and exports are archived");
    assert!(replay.code <= 1, "{}", replay.stderr);
    assert_eq!(data(&latest(&dir.path().join("replayed"))), data(&latest(&dir.path().join("out"))));
}

#[test]
fn an_export_without_data_falls_back_to_v1_only_where_v1_still_serves_the_period() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    // Billing periods of 2022: v1 still serves their daily rated usage (retired from September
    // 2022 on), so a code 5000 may fall back to it; `usage_from` routes them to v2 first.
    let world = dir.path().join("world");
    generate(
        &world,
        &["--seed", "4", "--customers", "4", "--months", "2", "--as-of", "2022-06-05", "--usage-rows-per-month", "200"],
    );
    let invoice = truth(&world)["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["commerce"] == "new" && d["lines"]["billed_consumption_line_items"].as_u64() > Some(0))
        .map(|d| d["invoice_id"].as_str().unwrap().to_owned())
        .unwrap();
    let emulator = Emulator::start(&[
        "--world",
        world.to_str().unwrap(),
        "--v1-retired",
        "--export-retry-after",
        "0",
        "--export-unavailable",
        &invoice,
        "--request-log",
        log.to_str().unwrap(),
    ]);
    let datasets = "datasets = [\"billed_consumption_line_items\"]";
    let early = "[extract.v2]\nusage_from = \"2022-01\"\nexport_timeout_secs = 1\n";
    let mut outs = Vec::new();
    for (name, extra) in [
        ("auto", format!("[extract]\n{datasets}\n{early}")),
        ("v1", format!("[extract]\napi_version = \"v1\"\n{datasets}\n")),
    ] {
        let (finished, out) = run_case(&emulator, dir.path(), name, &extra, &[]);
        assert!(finished.code <= 1, "{name}: {}", finished.stderr);
        if name == "auto" {
            assert!(finished.stderr.contains("export_no_data_v1_fallback"), "{}", finished.stderr);
        }
        outs.push(out);
    }
    let paths: Vec<String> = log_lines(&log).iter().map(|l| l["path"].as_str().unwrap().to_owned()).collect();
    let v1_call = format!("/v1/invoices/{invoice}/lineitems");
    assert!(paths.iter().any(|p| p.starts_with(&v1_call)), "the invoice's lines came through v1");
    let (auto, v1) = (comparable(&outs[0]), comparable(&outs[1]));
    assert_eq!(auto.0, v1.0, "the fallback gives v1's data files");
    let exports = manifest(&outs[0])["exports"].as_object().unwrap().clone();
    assert!(!exports.contains_key(&format!("billed_consumption_line_items/{invoice}")));
    assert!(exports.keys().any(|k| k.starts_with("billed_consumption_line_items/G")), "the others came through v2");

    // Asked for v2 only, the same answer means "not ready yet": reported, the rest published.
    let forced_config = format!("{V2}{datasets}\n{early}");
    let (forced, out) = run_case(&emulator, dir.path(), "v2", &forced_config, &[]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert!(forced.stderr.contains("export_not_ready") && !forced.stderr.contains("export_no_data_v1_fallback"));
    let not_ready = manifest(&out)["not_ready"].clone();
    let detail = not_ready[format!("billed_consumption_line_items/{invoice}")].as_str().unwrap();
    assert!(detail.contains("failed with code 5000") && detail.contains(&invoice), "{detail}");
}

#[test]
fn a_renewed_export_with_other_files_restarts_its_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let world = samples();
    let common = ["--world", world.to_str().unwrap(), "--blob-lines", "30", "--export-retry-after", "0"];
    let clean = Emulator::start(&common);
    // An expired signature comes with an expired operation: the next export has other files.
    let mut args = common.to_vec();
    args.extend(["--faults", "sas_expiry=0.1", "--fault-seed", "9"]);
    let faulty = Emulator::start(&args);
    let extra = format!("{V2}datasets = [\"billed_consumption_line_items\"]\n");
    let mut outs = Vec::new();
    for (name, emulator) in [("clean", &clean), ("faulty", &faulty)] {
        let (finished, out) = run_case(emulator, dir.path(), name, &extra, &[]);
        assert!(finished.code <= 1, "{name}: {}", finished.stderr);
        if name == "faulty" {
            assert!(finished.stderr.contains("export_restart"), "no sequence started over");
        }
        outs.push(out);
    }
    assert_eq!(
        data(&latest(&outs[0])),
        data(&latest(&outs[1])),
        "lines sent before the restart were dropped, none twice"
    );
    // run.json names the files each export read: the renewed ones are other files.
    let operations = |out: &Path| -> Value {
        let run: Value = serde_json::from_slice(&std::fs::read(latest(out).join("run.json")).unwrap()).unwrap();
        run["exports"].clone()
    };
    let (first, renewed) = (operations(&outs[0]), operations(&outs[1]));
    let renewed = renewed.as_object().unwrap();
    assert!(renewed.iter().any(|(k, e)| e["blobs"] != first[k]["blobs"]), "the lineage names the files used");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_period_takes_current_or_last_and_refuses_others_as_graph_does() {
    let emulator = Emulator::start(&["--world", samples().to_str().unwrap(), "--export-retry-after", "0"]);
    let graph = Graph::connect(&emulator).await;
    let body =
        |period: &str| serde_json::json!({ "currencyCode": "USD", "billingPeriod": period, "attributeSet": "full" });
    for period in ["current", "last"] {
        assert_eq!(
            graph.post("usage/unbilled/export", &body(period), Some(&graph.token)).await.status(),
            202,
            "{period}"
        );
    }
    // v1's `previous` is not a Graph value; `unknownFutureValue` is the enumeration's sentinel.
    for (period, says) in [("previous", "current or last"), ("unknownFutureValue", "not supported")] {
        let response = graph.post("reconciliation/unbilled/export", &body(period), Some(&graph.token)).await;
        assert_eq!(response.status(), 400, "{period}");
        let error: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(error["error"]["code"], "BadRequest", "{error}");
        assert!(error["error"]["message"].as_str().unwrap().contains(says), "{error}");
        assert!(error["error"]["innerError"]["request-id"].is_string(), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_errors_on_graph_routes_have_graphs_shape_and_partner_centers_keep_theirs() {
    for (fault, status, code) in
        [("429", 429, "TooManyRequests"), ("500", 500, "generalException"), ("503", 503, "serviceNotAvailable")]
    {
        let spec = format!("{fault}=1");
        let emulator = Emulator::start(&["--world", samples().to_str().unwrap(), "--faults", &spec]);
        // Token calls are not faulted: both tokens are at hand.
        let graph = Graph::connect(&emulator).await;
        let partner_center = emulator.client().await;
        let body = serde_json::json!({ "invoiceId": "G018242900", "attributeSet": "full" });
        let response = graph
            .http
            .post(format!("{}/v1.0/reports/partners/billing/usage/billed/export", emulator.base))
            .bearer_auth(&graph.token)
            .header("client-request-id", "11111111-2222-4333-8444-555555555555")
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{fault}");
        if status != 500 {
            assert!(response.headers().get("retry-after").is_some(), "{fault}: Retry-After");
        }
        let error: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(error["error"]["code"], code, "{error}");
        assert!(!error["error"]["message"].as_str().unwrap().is_empty(), "{error}");
        let inner = &error["error"]["innerError"];
        assert_eq!(inner["client-request-id"], "11111111-2222-4333-8444-555555555555", "{error}");
        assert!(inner["request-id"].is_string() && inner["date"].is_string(), "{error}");
        assert!(error.get("statusCode").is_none(), "no Partner Center body on a Graph route: {error}");

        let v1 = partner_center.get("/v1/invoices", &[]).await;
        assert_eq!(v1.status, status, "{fault}");
        let v1 = v1.json();
        assert!(v1.get("error").is_none(), "Partner Center keeps its own shape: {v1}");
        if status == 429 {
            assert_eq!(v1["statusCode"], 429, "{v1}");
        } else {
            assert!(v1["code"].is_string() && v1["description"].is_string(), "{v1}");
        }
    }
}

/// Runs the samples world through v2 against an emulator started with `extra` flags; returns the
/// output folder and the paths the emulator was asked for.
fn v2_run(dir: &Path, name: &str, extra: &[&str]) -> (std::path::PathBuf, Vec<String>) {
    let case = dir.join(name);
    std::fs::create_dir_all(&case).unwrap();
    let log = case.join("requests.jsonl");
    let world = samples();
    let mut args = vec![
        "--world",
        world.to_str().unwrap(),
        "--blob-lines",
        "25",
        "--export-retry-after",
        "0",
        "--request-log",
        log.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let emulator = Emulator::start(&args);
    let finished = run(&write_config(&emulator, &case, V2), &[], &[]);
    assert!(finished.code <= 1, "{name}: {}", finished.stderr);
    let paths = log_lines(&log).iter().map(|l| l["path"].as_str().unwrap().to_owned()).collect();
    (case.join("out"), paths)
}

#[test]
fn every_documented_shape_of_operation_and_manifest_gives_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let (reference, paths) = v2_run(dir.path(), "ga", &[]);
    assert!(paths.iter().any(|p| p.contains("/manifests/")), "GA links its manifest");
    let reference = comparable(&reference);
    for (name, extra) in [
        // The sample model's counts, checked against what arrives, truncated files among them.
        ("with-counts", &["--export-manifest", "with-counts", "--faults", "truncated_blob=0.2"][..]),
        // GA without counts: a truncated file is caught by its gzip stream and its lines.
        ("ga-truncated", &["--faults", "truncated_blob=0.2", "--fault-seed", "3"][..]),
        ("embedded", &["--export-manifest-location", "embedded"][..]),
        ("completed", &["--export-operation-status", "completed"][..]),
    ] {
        let (out, paths) = v2_run(dir.path(), name, extra);
        assert_eq!(comparable(&out), reference, "{name}: the same files as a GA export's");
        let manifests = paths.iter().filter(|p| p.contains("/manifests/")).count();
        if name == "embedded" {
            assert_eq!(manifests, 0, "the manifest came inside the operation");
        } else {
            assert!(manifests > 0, "{name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_answers_each_documented_shape_it_is_asked_for() {
    let world = samples();
    let emulator = Emulator::start(&[
        "--world",
        world.to_str().unwrap(),
        "--export-retry-after",
        "0",
        "--export-manifest",
        "with-counts",
        "--export-manifest-location",
        "embedded",
        "--export-operation-status",
        "completed",
    ]);
    let graph = Graph::connect(&emulator).await;
    let exported = graph
        .export("usage/billed/export", serde_json::json!({ "invoiceId": "G018242900", "attributeSet": "full" }))
        .await;
    assert_eq!(exported.statuses.last().map(String::as_str), Some("completed"));
    assert!(exported.operation.get("resourceLocation@odata.navigationLink").is_none());
    let manifest = exported.manifest.unwrap();
    assert_eq!(manifest["eTag"], exported.operation["resourceLocation"]["eTag"]);
    let blobs = manifest["blobs"].as_array().unwrap();
    assert!(blobs.iter().all(|b| b["itemCount"].is_u64() && b["sizeInBytes"].is_u64()), "{manifest}");
    // `lines` checks every count and size against what arrives.
    assert!(!graph.lines(&manifest).await.is_empty());
}
