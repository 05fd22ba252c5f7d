//! `customer_charges`: every customer's billed charges per billing period, currency, product and
//! charge type, which add up to the invoice lines, and with a markup table the resale amounts
//! its most specific row gives.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};

use crate::helpers::{Emulator, digest_tree, latest, run, samples, write_config};

/// The rows of every CSV file of a dataset, with the `period=` folder each came from.
fn rows(snapshot: &Path, dataset: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let root = snapshot.join("csv").join(dataset);
    let mut out = Vec::new();
    for file in digest_tree(&root).keys() {
        let period = file.split('/').find_map(|p| p.strip_prefix("period=")).unwrap_or("").to_owned();
        let mut reader = csv::Reader::from_path(root.join(file)).unwrap();
        let headers = reader.headers().unwrap().clone();
        for record in reader.records() {
            let record = record.unwrap();
            out.push((
                period.clone(),
                headers.iter().map(str::to_owned).zip(record.iter().map(str::to_owned)).collect(),
            ));
        }
    }
    out
}

fn dec(text: &str) -> Decimal {
    if text.is_empty() { Decimal::ZERO } else { Decimal::from_str(text).unwrap() }
}

/// ISO 4217 minor units of the currencies the samples bill in.
fn minor_units(currency: &str) -> u32 {
    match currency {
        "JPY" => 0,
        "KWD" => 3,
        _ => 2,
    }
}

#[test]
fn customer_charges_add_up_to_the_invoice_lines_and_resell_at_the_most_specific_markup() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(&["--world", samples().to_str().unwrap()]);
    let (customer, product) = ("346ff5c4-2e95-4d4d-ad05-0e7168ce3a91", "CFQ7TTC0L3PB");
    // Everyone 10 %; this customer 25 % and a 2.50 fee; this product at cost; the customer's
    // own price for this product 3.333 %.
    let markup = format!(
        "customer,product,percent,fee\n*,*,10,\n{customer},*,25,2.50\n*,{product},0,\nORG:{},{product},3.333,\n",
        customer.to_uppercase()
    );
    std::fs::write(dir.path().join("markup.csv"), markup).unwrap();
    let config = write_config(
        &emulator,
        dir.path(),
        "[rebill]\nmarkup_file = \"markup.csv\"\nrounding = \"half_up\"\nstatements = true\n",
    );
    let finished = run(&config, &[], &[]);
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    let snapshot = latest(&dir.path().join("out"));
    let charges = rows(&snapshot, "customer_charges");
    assert!(charges.len() > 20, "{} rows", charges.len());

    // Per billing currency and period: the charges' totals are the distinct billed lines'.
    let mut from_lines: BTreeMap<(String, String), (Decimal, Decimal, u64)> = BTreeMap::new();
    for (dataset, cost, total) in [
        ("billed_recon_line_items", "subtotal", "total_for_customer"),
        ("legacy_office_line_items", "subtotal", "total_for_customer"),
        ("legacy_azure_line_items", "pretax_charges", "post_tax_total"),
    ] {
        for (period, row) in rows(&snapshot, dataset) {
            if row["is_duplicate"] == "true" {
                continue;
            }
            let sums = from_lines.entry((row["billing_currency"].to_uppercase(), period)).or_default();
            sums.0 += dec(&row[cost]);
            sums.1 += dec(&row[total]);
            sums.2 += 1;
        }
    }
    let mut from_charges: BTreeMap<(String, String), (Decimal, Decimal, u64)> = BTreeMap::new();
    for (_, row) in &charges {
        let sums = from_charges.entry((row["billing_currency"].clone(), row["billing_period"].clone())).or_default();
        sums.0 += dec(&row["cost"]);
        sums.1 += dec(&row["total"]);
        sums.2 += row["lines"].parse::<u64>().unwrap();
    }
    assert_eq!(from_charges, from_lines, "to the last digit, line for line");
    assert!(from_lines.len() >= 6, "several currencies and periods: {:?}", from_lines.keys());

    // Each row resold at the rule the documentation says wins, rounded once, the residue kept.
    let mut seen = BTreeMap::new();
    for (_, row) in &charges {
        let (is_customer, is_product) = (row["customer_key"] == customer, row["product_id"] == product);
        let (rule, percent, fee) = match (is_customer, is_product) {
            (true, true) => (format!("{customer},{}", product.to_lowercase()), "3.333", "0"),
            (true, false) => (format!("{customer},*"), "25", "2.50"),
            (false, true) => (format!("*,{}", product.to_lowercase()), "0", "0"),
            (false, false) => ("*,*".to_owned(), "10", "0"),
        };
        assert_eq!(row["markup_rule"], rule, "{row:?}");
        let cost = dec(&row["cost"]);
        let unrounded = cost * (Decimal::ONE + dec(percent) / Decimal::from(100)) + dec(fee);
        let resale = unrounded
            .round_dp_with_strategy(minor_units(&row["billing_currency"]), RoundingStrategy::MidpointAwayFromZero);
        assert_eq!(dec(&row["resale_unrounded"]), unrounded, "{row:?}");
        assert_eq!(dec(&row["resale"]), resale, "{row:?}");
        assert_eq!(dec(&row["resale_rounding_residue"]), unrounded - resale, "{row:?}");
        *seen.entry(rule).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 4, "every kind of rule applied somewhere: {seen:?}");

    // One statement per customer and billing period: the documented header, one line per
    // customer_charges row of that customer and period, the amount to bill (the resale) and the
    // cost, each file listed in the manifest with its digest.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(snapshot.join("manifest.json")).unwrap()).unwrap();
    let listed: BTreeMap<String, String> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap().to_owned(), f["sha256"].as_str().unwrap().to_owned()))
        .collect();
    let mut expected: BTreeMap<(String, String), (Decimal, Decimal, usize)> = BTreeMap::new();
    for (_, row) in &charges {
        let sums = expected.entry((row["customer_key"].clone(), row["billing_period"].clone())).or_default();
        sums.0 += dec(&row["resale"]);
        sums.1 += dec(&row["cost"]);
        sums.2 += 1;
    }
    let files = digest_tree(&snapshot.join("statements"));
    assert_eq!(files.len(), expected.len(), "one statement per customer and period");
    assert_eq!(manifest["datasets"]["statements"]["rows"], serde_json::json!(files.len()));
    let header = "customer_id,customer_name,billing_period,currency,item_id,sku_id,description,charge_type,quantity,amount,cost,tax,markup_rule";
    for ((customer, period), (resale, cost, lines)) in &expected {
        let path = format!("statements/{customer}/{period}.csv");
        let text = std::fs::read_to_string(snapshot.join(&path)).unwrap();
        assert_eq!(text.lines().next(), Some(header), "{path}");
        assert_eq!(listed.get(&path), files.get(&format!("{customer}/{period}.csv")), "{path} in the manifest");
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), *lines, "{path}");
        let column = |name: &str| header.split(',').position(|h| h == name).unwrap();
        let sum = |name: &str| records.iter().map(|r| dec(&r[column(name)])).sum::<Decimal>();
        assert_eq!((sum("amount"), sum("cost")), (*resale, *cost), "{path}: amounts to bill and costs");
        assert!(records.iter().all(|r| r[column("billing_period")] == *period), "{path}");
    }

    // The manifest's control totals of the dataset are its files' sums, and each statement's
    // digest holds.
    let verified = crate::helpers::pcrecon(&["verify", snapshot.to_str().unwrap()], &[]);
    assert_eq!(verified.code, 0, "{}", verified.stdout);
}
