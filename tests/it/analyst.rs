//! What an analyst reads without knowing the API's habits: a line served twice says so and
//! points at its first copy, the manifest counts it once, every line names its customer by the
//! key `customers` publishes, and an exception carries the money it puts at risk.

use std::collections::{BTreeMap, BTreeSet};

use arrow_array::{Array, BooleanArray, Decimal128Array, RecordBatch, StringArray};
use rust_decimal::Decimal;

use crate::helpers::{batches, dec, demo_snapshot, latest, samples, truth};

fn strings<'a>(batch: &'a RecordBatch, column: &str) -> &'a StringArray {
    batch.column_by_name(column).unwrap_or_else(|| panic!("no {column}")).as_any().downcast_ref().unwrap()
}

fn flags<'a>(batch: &'a RecordBatch, column: &str) -> &'a BooleanArray {
    batch.column_by_name(column).unwrap_or_else(|| panic!("no {column}")).as_any().downcast_ref().unwrap()
}

fn decimal(batch: &RecordBatch, column: &str, i: usize) -> Decimal {
    let array: &Decimal128Array = batch.column_by_name(column).unwrap().as_any().downcast_ref().unwrap();
    Decimal::from_i128_with_scale(array.value(i), array.scale() as u32).normalize()
}

/// One row of a line dataset: its key, whether it is a later copy, of which row, its amount.
struct Line {
    row_key: String,
    duplicate: bool,
    duplicate_of: Option<String>,
    amount: Decimal,
    customer_key: Option<String>,
    customer_id: Option<String>,
}

fn lines(snapshot: &std::path::Path, dataset: &str, amount: &str) -> Vec<Line> {
    let mut out = Vec::new();
    for batch in batches(snapshot, dataset) {
        let (keys, dups, of) =
            (strings(&batch, "row_key"), flags(&batch, "is_duplicate"), strings(&batch, "duplicate_of"));
        let (customer_keys, customer_ids) = (strings(&batch, "customer_key"), strings(&batch, "customer_id"));
        let text = |a: &StringArray, i| (!a.is_null(i)).then(|| a.value(i).to_owned());
        for i in 0..batch.num_rows() {
            out.push(Line {
                row_key: keys.value(i).to_owned(),
                duplicate: dups.value(i),
                duplicate_of: text(of, i),
                amount: decimal(&batch, amount, i),
                customer_key: text(customer_keys, i),
                customer_id: text(customer_ids, i),
            });
        }
    }
    out
}

#[test]
fn a_line_served_twice_is_flagged_points_at_its_first_copy_and_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = demo_snapshot(dir.path());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(snapshot.join("manifest.json")).unwrap()).unwrap();
    let truth = truth(&samples());
    let mut flagged = 0;
    for (dataset, amount, field) in [
        ("billed_recon_line_items", "total_for_customer", "totalForCustomer"),
        ("billed_consumption_line_items", "billing_pre_tax_total", "billingPreTaxTotal"),
    ] {
        let lines = lines(&snapshot, dataset, amount);
        let by_key: BTreeMap<&str, &Line> = lines.iter().map(|l| (l.row_key.as_str(), l)).collect();
        assert_eq!(by_key.len(), lines.len(), "{dataset}: row keys are unique");
        let copies: Vec<&Line> = lines.iter().filter(|l| l.duplicate).collect();
        assert_eq!(copies.len() as u64, truth["served_twice_rows"][dataset].as_u64().unwrap(), "{dataset}");
        for copy in &copies {
            let first = by_key[copy.duplicate_of.as_deref().expect("a copy names its first")];
            assert!(!first.duplicate && first.duplicate_of.is_none(), "{dataset}: the first copy is not a copy");
            assert_eq!(first.amount, copy.amount, "{dataset}: the same line");
        }
        assert!(lines.iter().filter(|l| !l.duplicate).all(|l| l.duplicate_of.is_none()), "{dataset}");

        // The distinct rows sum to the manifest's control total; the copies to the amount beside it.
        let entry = &manifest["datasets"][dataset];
        let distinct: Decimal = lines.iter().filter(|l| !l.duplicate).map(|l| l.amount).sum();
        let served_twice: Decimal = copies.iter().map(|l| l.amount).sum();
        let manifest_sum = |part: &str| -> Decimal {
            entry[part].as_object().unwrap().values().map(|columns| dec(&columns[amount])).sum()
        };
        assert_eq!(distinct, manifest_sum("control_totals"), "{dataset}");
        assert_eq!(served_twice, manifest_sum("served_twice_totals"), "{dataset}");
        assert_eq!(entry["served_twice_rows"].as_u64(), Some(copies.len() as u64));
        let truth_twice: Decimal =
            truth["served_twice_totals"][dataset].as_object().unwrap().values().map(|f| dec(&f[field])).sum();
        assert_eq!(served_twice, truth_twice, "{dataset}: what the world served twice");
        flagged += copies.len();
    }
    assert!(flagged >= 2, "{flagged}");
}

#[test]
fn every_line_joins_its_customer_by_customer_key_where_the_raw_id_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = demo_snapshot(dir.path());
    let mut customers = BTreeSet::new();
    for batch in batches(&snapshot, "customers") {
        let keys = strings(&batch, "customer_key");
        customers.extend((0..batch.num_rows()).map(|i| keys.value(i).to_owned()));
    }
    assert!(customers.len() >= 10, "{customers:?}");
    for (dataset, amount) in [
        ("billed_recon_line_items", "total_for_customer"),
        ("unbilled_recon_line_items", "total_for_customer"),
        ("billed_consumption_line_items", "billing_pre_tax_total"),
    ] {
        let lines = lines(&snapshot, dataset, amount);
        let by_key = lines.iter().filter(|l| l.customer_key.as_ref().is_some_and(|k| customers.contains(k))).count();
        let by_id = lines.iter().filter(|l| l.customer_id.as_ref().is_some_and(|k| customers.contains(k))).count();
        assert_eq!(by_key, lines.len(), "{dataset}: every line joins by customer_key");
        if dataset == "billed_recon_line_items" {
            assert!(by_id < by_key, "{dataset}: the API's own spellings do not all join ({by_id} of {by_key})");
        }
    }
}

#[test]
fn an_exception_carries_the_row_it_is_about_and_the_money_at_risk() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = demo_snapshot(dir.path());
    let recon = lines(&snapshot, "billed_recon_line_items", "total_for_customer");
    let by_key: BTreeMap<&str, &Line> = recon.iter().map(|l| (l.row_key.as_str(), l)).collect();
    let mut reasons = BTreeSet::new();
    for batch in batches(&snapshot, "match_exceptions") {
        let (datasets, keys, reasons_of) =
            (strings(&batch, "dataset"), strings(&batch, "row_key"), strings(&batch, "reason"));
        let (columns, currencies) = (strings(&batch, "amount_column"), strings(&batch, "billing_currency"));
        for i in (0..batch.num_rows()).filter(|&i| datasets.value(i) == "billed_recon_line_items") {
            let line = by_key.get(keys.value(i)).unwrap_or_else(|| panic!("no line {}", keys.value(i)));
            assert_eq!(columns.value(i), "total_for_customer");
            assert_eq!(decimal(&batch, "amount", i), line.amount, "{}", keys.value(i));
            assert_eq!(currencies.value(i).len(), 3);
            assert_eq!(strings(&batch, "customer_key").value(i), line.customer_key.as_deref().unwrap());
            reasons.insert(reasons_of.value(i).to_owned());
        }
    }
    for reason in ["duplicate_line", "order_not_found", "customer_mismatch"] {
        assert!(reasons.contains(reason), "{reasons:?}");
    }
}

#[test]
fn a_spreadsheet_of_a_decimal_comma_locale_reads_csv_with_semicolons_to_the_manifests_totals() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = crate::helpers::Emulator::start(&[
        "--world",
        samples().to_str().unwrap(),
        "--export-retry-after",
        "0",
        "--export-polls",
        "0",
    ]);
    let extra = "[output]\ncsv_delimiter = \";\"\ncsv_decimal_separator = \",\"\n";
    let (finished, out) = crate::helpers::run_case(&emulator, dir.path(), "eu", extra, &[]);
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    let snapshot = latest(&out);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(snapshot.join("manifest.json")).unwrap()).unwrap();
    let root = snapshot.join("csv/billed_recon_line_items");
    let mut sums: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut rows = 0;
    for (file, _) in crate::helpers::digest_tree(&root) {
        let mut reader = csv::ReaderBuilder::new().delimiter(b';').from_path(root.join(file)).unwrap();
        let headers = reader.headers().unwrap().clone();
        let at = |name: &str| headers.iter().position(|h| h == name).unwrap();
        let (total, currency, duplicate) = (at("total_for_customer"), at("billing_currency"), at("is_duplicate"));
        for record in reader.records() {
            let record = record.unwrap();
            rows += 1;
            assert!(!record[total].contains('.'), "a decimal comma: {:?}", &record[total]);
            if &record[duplicate] == "false" {
                let amount: Decimal = record[total].replace(',', ".").parse().unwrap();
                *sums.entry(record[currency].to_owned()).or_default() += amount;
            }
        }
    }
    assert_eq!(rows, manifest["datasets"]["billed_recon_line_items"]["rows"].as_u64().unwrap());
    let totals = manifest["datasets"]["billed_recon_line_items"]["control_totals"].as_object().unwrap();
    assert_eq!(sums.len(), totals.len());
    for (currency, columns) in totals {
        assert_eq!(sums[currency], dec(&columns["total_for_customer"]), "{currency}");
    }
}

#[test]
fn a_prorated_price_is_rounded_in_its_column_and_kept_as_served_in_exact_values() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = demo_snapshot(dir.path());
    let mut kept = 0;
    for batch in batches(&snapshot, "billed_recon_line_items") {
        let exact = strings(&batch, "exact_values");
        for i in (0..batch.num_rows()).filter(|&i| !exact.is_null(i)) {
            let served: serde_json::Map<String, serde_json::Value> = serde_json::from_str(exact.value(i)).unwrap();
            assert!(!served.is_empty(), "{}", exact.value(i));
            for (column, text) in served {
                let served: Decimal = text.as_str().unwrap().parse().unwrap();
                let scale = match batch.schema().field_with_name(&column).unwrap().data_type() {
                    arrow_schema::DataType::Decimal128(_, s) => *s as u32,
                    other => panic!("{column} is {other}"),
                };
                assert!(served.scale() > scale, "{column} {served} fitted its column and needed no copy");
                let rounded = served.round_dp_with_strategy(scale, rust_decimal::RoundingStrategy::MidpointNearestEven);
                assert_eq!(decimal(&batch, &column, i), rounded.normalize(), "{column}: half-even of the served value");
                kept += 1;
            }
        }
    }
    assert!(kept > 0, "the sample world prorates seat prices to 28 digits");
}
