//! `pcrecon emulator generate`: deterministic, coherent, and the checked-in samples are exactly
//! what it makes.

use rust_decimal::Decimal;
use std::collections::BTreeMap;

use crate::helpers::{dec, digest_tree, generate, samples, truth};

#[test]
fn the_same_arguments_give_byte_identical_worlds() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--seed", "11", "--customers", "9", "--months", "2", "--usage-rows-per-month", "3000"];
    generate(&dir.path().join("a"), &args);
    generate(&dir.path().join("b"), &args);
    let a = digest_tree(&dir.path().join("a"));
    assert!(a.len() > 40, "{} files", a.len());
    assert_eq!(a, digest_tree(&dir.path().join("b")));
    generate(
        &dir.path().join("c"),
        &["--seed", "12", "--customers", "9", "--months", "2", "--usage-rows-per-month", "3000"],
    );
    assert_ne!(
        a.get("truth.json"),
        digest_tree(&dir.path().join("c")).get("truth.json"),
        "another seed, another world"
    );
}

#[test]
fn the_sample_world_is_exactly_what_the_generator_makes() {
    let t = truth(&samples());
    let g = &t["generator"];
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("world");
    let arg = |k: &str| g[k].as_str().unwrap().to_owned();
    let args = [
        "--seed".to_owned(),
        arg("seed"),
        "--customers".to_owned(),
        arg("customers"),
        "--months".to_owned(),
        arg("months"),
        "--usage-rows-per-month".to_owned(),
        arg("usage_rows_per_month"),
        "--as-of".to_owned(),
        arg("as_of"),
        "--anomalies".to_owned(),
        arg("anomalies"),
        "--quirk-rate".to_owned(),
        arg("quirk_rate"),
    ];
    generate(&out, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        digest_tree(&samples()),
        digest_tree(&out),
        "regenerate samples/world with the arguments in its truth.json"
    );
}

#[test]
fn regenerating_into_an_existing_folder_replaces_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("world");
    generate(&out, &["--seed", "1", "--customers", "30", "--months", "4", "--usage-rows-per-month", "100"]);
    std::fs::write(out.join("stray.txt"), "left over").unwrap();
    generate(&out, &["--seed", "1", "--customers", "3", "--months", "1", "--usage-rows-per-month", "100"]);
    assert!(!out.join("stray.txt").exists());
    assert_eq!(truth(&out)["generator"]["customers"], "3");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "no staging folders left behind: {leftovers:?}");
}

#[test]
fn the_sample_world_is_coherent_and_plants_every_anomaly_kind() {
    let t = truth(&samples());
    let kinds: std::collections::BTreeSet<&str> =
        t["anomalies"].as_array().unwrap().iter().map(|a| a["kind"].as_str().unwrap()).collect();
    for kind in [
        "order_not_found",
        "subscription_not_found",
        "entitlement_not_found",
        "entitlement_expired",
        "customer_mismatch",
        "invoice_total_mismatch",
        "duplicate_line",
    ] {
        assert!(kinds.contains(kind), "no {kind} planted");
    }
    let currencies: std::collections::BTreeSet<&str> =
        t["invoices"].as_array().unwrap().iter().map(|i| i["currency"].as_str().unwrap()).collect();
    for c in ["USD", "EUR", "GBP", "JPY", "DKK"] {
        assert!(currencies.contains(c), "no {c} invoice");
    }
    assert!(
        t["invoices"].as_array().unwrap().iter().any(|i| i["invoice_id"].as_str().unwrap().starts_with('D')),
        "a legacy invoice"
    );

    let mismatched: std::collections::BTreeSet<&str> = t["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "invoice_total_mismatch")
        .map(|a| a["invoice_id"].as_str().unwrap())
        .collect();
    for inv in t["invoices"].as_array().unwrap() {
        let stated = dec(&inv["stated_total"]);
        let lines = dec(&inv["lines_total"]);
        let id = inv["invoice_id"].as_str().unwrap();
        if mismatched.contains(id) {
            let diff = (stated - lines).abs();
            assert!(
                diff > Decimal::ZERO && diff <= Decimal::new(5, 2).max(Decimal::from(5)),
                "{id}: small difference {diff}"
            );
        } else {
            assert_eq!(stated, lines, "{id}: the stated total follows from its lines");
        }
    }
}

#[test]
fn invoice_totals_follow_the_rounding_rules_line_by_line() {
    // Every billed recon line of the samples: subtotal has the currency's minor units,
    // total = subtotal + tax, and tax is the truncated rate × subtotal.
    let world = samples();
    let rates: BTreeMap<&str, Decimal> =
        [("USD", "0"), ("EUR", "0.19"), ("GBP", "0.20"), ("JPY", "0.10"), ("DKK", "0.25")]
            .into_iter()
            .map(|(c, r)| (c, r.parse().unwrap()))
            .collect();
    let mut checked = 0;
    for inv in truth(&world)["invoices"].as_array().unwrap() {
        let id = inv["invoice_id"].as_str().unwrap();
        let path = world.join("invoices").join(id).join("onetime-billinglineitems.jsonl");
        let Ok(text) = std::fs::read_to_string(path) else { continue };
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let currency = v["currency"].as_str().unwrap();
            let minor = if currency == "JPY" { 0 } else { 2 };
            let subtotal = dec(&v["subtotal"]);
            let tax = dec(&v["taxTotal"]);
            assert_eq!(subtotal.scale(), minor, "{line}");
            assert_eq!(dec(&v["totalForCustomer"]), subtotal + tax);
            let expected_tax =
                (subtotal * rates[currency]).round_dp_with_strategy(minor, rust_decimal::RoundingStrategy::ToZero);
            assert_eq!(tax, expected_tax, "{line}");
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked} lines");
}

#[test]
fn the_schema_files_are_what_the_code_declares() {
    let dir = tempfile::tempdir().unwrap();
    let status =
        std::process::Command::new(crate::helpers::bin()).args(["schemas", "--out"]).arg(dir.path()).status().unwrap();
    assert!(status.success());
    let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    assert_eq!(
        digest_tree(dir.path()),
        digest_tree(&committed),
        "run `pcrecon schemas --out schemas` and commit the result"
    );
    let readme = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(readme.contains("schemas/README.md"), "the README points at the generated column reference");
}
