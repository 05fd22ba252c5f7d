//! Walks every endpoint of spec §8 to its last page, by the spec alone, and checks that what
//! comes back is exactly the world: counts and decimal control totals equal truth.json.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rust_decimal::Decimal;
use serde_json::Value;

use crate::helpers::{Client, Emulator, Totals, add, dec, field, generate, samples, truth, truth_served_totals};

/// What a full walk saw.
#[derive(Default)]
struct Walked {
    counts: BTreeMap<String, u64>,
    totals: Totals,
    invoice_totals: BTreeMap<String, Decimal>,
    invoice_lines: BTreeMap<String, BTreeMap<String, u64>>,
    unbilled_lines: BTreeMap<(String, String), BTreeMap<String, u64>>,
    pages: usize,
}

impl Walked {
    fn count(&mut self, dataset: &str, n: usize) {
        *self.counts.entry(dataset.to_owned()).or_default() += n as u64;
    }
}

const RECON_FIELDS: &[&str] = &["subtotal", "taxTotal", "totalForCustomer"];
const USAGE_FIELDS: &[&str] = &["quantity", "pricingPreTaxTotal", "billingPreTaxTotal"];

async fn walk(client: &Client, unbilled_currencies: &BTreeSet<String>) -> Walked {
    let mut w = Walked::default();

    let (invoices, pages) = client.all_items("/v1/invoices?size=1").await;
    w.pages += pages;
    w.count("invoices", invoices.len());
    for inv in &invoices {
        let id = inv["id"].as_str().unwrap().to_owned();
        let currency = inv["currencyCode"].as_str().unwrap().to_owned();
        assert_eq!(inv["attributes"]["objectType"], "Invoice");
        add(&mut w.totals, "invoices", &currency, inv, &["totalCharges", "paidAmount"]);
        // A payment is negative once received (Microsoft's invoice resource).
        assert!(dec(&inv["paidAmount"]) <= rust_decimal::Decimal::ZERO, "{id}: paidAmount {}", inv["paidAmount"]);
        w.invoice_totals.insert(id.clone(), dec(&inv["totalCharges"]));

        let by_id = client.json(&format!("/v1/invoices/{id}")).await;
        assert_eq!(by_id["id"], id.as_str());
        assert!(by_id["billingPeriodStartDate"].is_string(), "by-id invoices carry their billing period");
        let pdf = client.get(&format!("/v1/invoices/{id}/documents/statement"), &[("Accept", "application/pdf")]).await;
        assert_eq!(pdf.status, 200);
        assert_eq!(pdf.headers["content-type"], "application/pdf");
        assert!(pdf.body.starts_with(b"%PDF-1.") && pdf.body.ends_with(b"%%EOF\n"));

        let mut lines = BTreeMap::new();
        let calls: Vec<(String, &str, &[&str])> = if id.starts_with('G') {
            vec![
                (
                    format!(
                        "/v1/invoices/{id}/lineitems?provider=onetime&invoicelineitemtype=billinglineitems&size=2000"
                    ),
                    "billed_recon_line_items",
                    RECON_FIELDS,
                ),
                (
                    format!(
                        "/v1/invoices/{id}/lineitems?provider=onetime&invoicelineitemtype=usagelineitems&currencycode={currency}&period=previous&size=2000"
                    ),
                    "billed_consumption_line_items",
                    USAGE_FIELDS,
                ),
            ]
        } else {
            vec![
                (
                    format!(
                        "/v1/invoices/{id}/lineitems?provider=office&invoicelineitemtype=billinglineitems&size=2&offset=0"
                    ),
                    "legacy_office_line_items",
                    &["amount", "tax", "totalForCustomer"],
                ),
                (
                    format!("/v1/invoices/{id}/lineitems/Azure/BillingLineItems?size=4"),
                    "legacy_azure_line_items",
                    &["pretaxCharges", "postTaxTotal"],
                ),
                (
                    format!(
                        "/v1/invoices/{id}/lineitems?provider=azure&invoicelineitemtype=usagelineitems&size=100&offset=0"
                    ),
                    "legacy_azure_usage_line_items",
                    &["consumedQuantity"],
                ),
            ]
        };
        for (url, dataset, fields) in calls {
            let (items, pages) = client.all_items(&url).await;
            w.pages += pages;
            for item in &items {
                let line_currency = field(item, "currency")
                    .or_else(|| field(item, "billingCurrency"))
                    .and_then(Value::as_str)
                    .unwrap_or("USD");
                assert_eq!(line_currency, currency, "every line of an invoice is in its currency");
                add(&mut w.totals, dataset, line_currency, item, fields);
            }
            w.count(dataset, items.len());
            lines.insert(dataset.to_owned(), items.len() as u64);
        }
        w.invoice_lines.insert(id, lines);
    }

    let summaries = client.json("/v1/invoices/summaries").await;
    w.count("invoice_summaries", summaries["items"].as_array().unwrap().len());
    for s in summaries["items"].as_array().unwrap() {
        assert_eq!(s["attributes"]["objectType"], "InvoiceSummary");
        let currency = s["currencyCode"].as_str().unwrap();
        add(&mut w.totals, "invoice_summaries", currency, s, &["balanceAmount"]);
        let links =
            client.json(&format!("/v1/invoices/estimates/links?currencycode={}", currency.to_lowercase())).await;
        assert_eq!(links["items"].as_array().unwrap().len(), 4, "four estimate links per currency");
    }
    assert_eq!(client.json("/v1/invoices/summary").await["attributes"]["objectType"], "InvoiceSummary");

    for currency in unbilled_currencies {
        for period in ["current", "previous"] {
            let mut lines = BTreeMap::new();
            for (kind, dataset, fields) in [
                ("billinglineitems", "unbilled_recon_line_items", RECON_FIELDS),
                ("usagelineitems", "unbilled_consumption_line_items", USAGE_FIELDS),
            ] {
                let url = format!(
                    "/v1/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype={kind}&currencycode={currency}&period={period}&size=2000"
                );
                let (items, pages) = client.all_items(&url).await;
                w.pages += pages;
                for item in &items {
                    assert_eq!(
                        field(item, "invoiceNumber").and_then(Value::as_str),
                        Some(""),
                        "unbilled lines have no invoice number"
                    );
                    add(&mut w.totals, dataset, currency, item, fields);
                }
                w.count(dataset, items.len());
                lines.insert(dataset.to_owned(), items.len() as u64);
            }
            w.unbilled_lines.insert((currency.clone(), period.to_owned()), lines);
        }
    }

    let (customers, pages) = client.all_items("/v1/customers?size=5").await;
    w.pages += pages;
    w.count("customers", customers.len());
    for c in &customers {
        let id = c["id"].as_str().unwrap();
        assert!(c["companyProfile"]["companyName"].is_string());
        let full = client.json(&format!("/v1/customers/{}", id.to_uppercase())).await;
        assert!(full["billingProfile"].is_object(), "by-id customers carry their billing profile");
        let orders = client.json(&format!("/v1/customers/{id}/orders")).await;
        let orders = orders["items"].as_array().unwrap();
        w.count("orders", orders.len());
        w.count("order_line_items", orders.iter().map(|o| o["lineItems"].as_array().unwrap().len()).sum());
        for o in orders {
            assert_eq!(o["referenceCustomerId"], id);
            let one = client.json(&format!("/v1/customers/{id}/orders/{}", o["id"].as_str().unwrap())).await;
            assert_eq!(one["id"], o["id"]);
        }
        let subs = client.json(&format!("/v1/customers/{id}/subscriptions")).await;
        w.count("subscriptions", subs["items"].as_array().unwrap().len());
        let ents = client.json(&format!("/v1/customers/{id}/entitlements?showExpiry=true")).await;
        let ents = ents["items"].as_array().unwrap();
        w.count("entitlements", ents.len());
        for e in ents {
            if e["entitlementType"] == "reservedinstance" {
                assert!(e["expiryDate"].is_string(), "showExpiry=true shows reservation expiry");
            }
        }
    }
    w
}

fn unbilled_currencies(truth: &Value) -> BTreeSet<String> {
    truth["unbilled"].as_array().unwrap().iter().map(|u| u["currency"].as_str().unwrap().to_owned()).collect()
}

async fn check_world(world: &Path, page_size: usize) -> usize {
    let truth = truth(world);
    let emulator = Emulator::start(&["--world", world.to_str().unwrap(), "--page-size", &page_size.to_string()]);
    let client = emulator.client().await;
    let served = client.http.get(format!("{}/_emulator/truth.json", client.base)).send().await.unwrap();
    let served: Value = serde_json::from_slice(&served.bytes().await.unwrap()).unwrap();
    assert_eq!(served, truth, "the server hands out the truth of the world it serves");
    let w = walk(&client, &unbilled_currencies(&truth)).await;

    let expected_counts: BTreeMap<String, u64> =
        truth["datasets"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect();
    assert_eq!(w.counts, expected_counts, "row counts per dataset");
    assert_eq!(w.totals, truth_served_totals(&truth), "decimal control totals per dataset and currency");
    for inv in truth["invoices"].as_array().unwrap() {
        let id = inv["invoice_id"].as_str().unwrap();
        assert_eq!(w.invoice_totals[id], dec(&inv["stated_total"]), "stated total of {id}");
        for (dataset, n) in inv["lines"].as_object().unwrap() {
            assert_eq!(w.invoice_lines[id][dataset], n.as_u64().unwrap(), "{dataset} lines of {id}");
        }
    }
    for u in truth["unbilled"].as_array().unwrap() {
        let key = (u["currency"].as_str().unwrap().to_owned(), u["period"].as_str().unwrap().to_owned());
        for (dataset, n) in u["lines"].as_object().unwrap() {
            assert_eq!(w.unbilled_lines[&key][dataset], n.as_u64().unwrap(), "{dataset} of unbilled {key:?}");
        }
    }
    w.pages
}

#[tokio::test]
async fn every_endpoint_of_the_sample_world_returns_exactly_its_truth() {
    let pages = check_world(&samples(), 100).await;
    assert!(pages > 60, "small pages force real paging ({pages} pages)");
}

#[tokio::test]
async fn a_generated_world_of_100k_usage_rows_returns_exactly_its_truth() {
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("world");
    generate(&world, &["--seed", "42", "--customers", "40", "--months", "3", "--usage-rows-per-month", "34000"]);
    let truth = truth(&world);
    let usage = truth["datasets"]["billed_consumption_line_items"].as_u64().unwrap();
    assert!(usage >= 100_000, "{usage} billed usage rows");
    let pages = check_world(&world, 2000).await;
    assert!(pages > 50);
}

#[tokio::test]
async fn serving_from_generator_flags_hands_out_that_worlds_truth() {
    let emulator = Emulator::start(&[
        "--seed",
        "5",
        "--customers",
        "3",
        "--months",
        "1",
        "--usage-rows-per-month",
        "150",
        "--documents",
        "none",
    ]);
    let client = emulator.client().await;
    let truth = client.http.get(format!("{}/_emulator/truth.json", client.base)).send().await.unwrap();
    let truth: Value = serde_json::from_slice(&truth.bytes().await.unwrap()).unwrap();
    assert_eq!(truth["seed"], 5);
    assert_eq!(truth["generator"]["customers"], "3");
    let (customers, _) = client.all_items("/v1/customers").await;
    assert_eq!(customers.len(), 3);
    let usage = truth["datasets"]["billed_consumption_line_items"].as_u64().unwrap();
    assert!((150..160).contains(&usage), "{usage}");
}
