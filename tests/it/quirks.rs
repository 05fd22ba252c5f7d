//! The hand-written quirk records say what their expected values say, and the served world
//! carries every wire quirk of spec §4 and §13.

use std::path::Path;

use rust_decimal::Decimal;
use serde_json::Value;

use crate::helpers::{dec, field, samples};

fn quirks_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples").join("quirks")
}

fn is_absent(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty() || s.starts_with("0001-01-01"),
        Some(_) => false,
    }
}

fn utc(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|d| d.to_utc())
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").map(|n| n.and_utc()))
        .unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn hand_written_records_hold_their_expected_values_exactly() {
    let expected: Vec<Value> =
        serde_json::from_slice(&std::fs::read(quirks_dir().join("expected.json")).unwrap()).unwrap();
    assert!(expected.len() > 40);
    for e in &expected {
        let file = e["file"].as_str().unwrap();
        let doc: Value = serde_json::from_slice(&std::fs::read(quirks_dir().join(file)).unwrap()).unwrap();
        let record = doc.pointer(e["path"].as_str().unwrap()).unwrap_or_else(|| panic!("{e}"));
        let name = e["field"].as_str().unwrap();
        let value = field(record, name);
        let quirk = e["quirk"].as_str().unwrap();
        if let Some(d) = e.get("decimal") {
            let want: Decimal = d.as_str().unwrap().parse().unwrap();
            let got = dec(value.unwrap_or_else(|| panic!("{file} {name} missing ({quirk})")));
            assert_eq!(got, want, "{file} {name}: {quirk}");
            assert_eq!(got.to_string(), d.as_str().unwrap(), "{file} {name}: every digit kept ({quirk})");
        } else if let Some(t) = e.get("text") {
            assert_eq!(value, Some(t), "{file} {name}: {quirk}");
        } else if let Some(k) = e.get("key") {
            let raw = value.and_then(Value::as_str).unwrap();
            assert_eq!(raw.trim().trim_start_matches("org:").to_lowercase(), k.as_str().unwrap(), "{quirk}");
            assert_ne!(raw, k.as_str().unwrap(), "{file} {name}: the raw value shows the quirk");
        } else if let Some(u) = e.get("utc") {
            assert_eq!(utc(value.and_then(Value::as_str).unwrap()), utc(u.as_str().unwrap()), "{file} {name}: {quirk}");
        } else if e.get("absent").is_some() {
            assert!(is_absent(value), "{file} {name}: {quirk}");
        } else if let Some(j) = e.get("json") {
            let inner = match value.unwrap() {
                Value::String(s) => serde_json::from_str::<Value>(s).unwrap(),
                other => other.clone(),
            };
            assert_eq!(&inner, j, "{file} {name}: {quirk}");
        } else {
            panic!("expectation without a value: {e}");
        }
    }
}

#[test]
fn the_served_sample_world_carries_every_wire_quirk() {
    let world = samples();
    let mut text = String::new();
    let mut stack = vec![world.join("invoices"), world.join("unbilled")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "jsonl") {
                text.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    for (needle, quirk) in [
        ("\"pcToBCExchangeRate\":", "canonical rate key"),
        ("\"PCToBCExchangeRate\":", "rate key as in CSV headers"),
        ("\"pCToBCExchangeRate\":", "rate key as naive camel case"),
        ("\"0001-01-01T00:00:00\"", "DateTime.MinValue sentinel"),
        ("-08:00\"", "dates with an offset"),
        ("\"customerId\":\"org:", "org: prefixed customer ids"),
        ("\"unitPrice\":\"", "numbers as strings"),
        ("\"promotionId\":null", "null instead of empty"),
        ("\"reservationOrderId\":null", "null instead of empty"),
        ("\"resellerMpnId\":0,", "number where a string is usual"),
        ("\"resellerMpnId\":\"\"", "empty string"),
        ("\"rateOfCredit\":null", "null numbers"),
        ("\"priceAdjustmentDescription\":\"[\\\"15.0% Partner earned credit", "JSON array in a string"),
        ("\"additionalInfo\":\"{\\\"ReservationOrderId", "JSON object in a string"),
        ("\"meterId\":\"4core\"", "meter ids that are not GUIDs"),
        ("\"chargeType\":\"customerCredit\"", "credit lines"),
        ("\"chargeType\":\"cancelImmediate\"", "refund lines"),
        ("\"billingProvider\":\"marketplace\"", "usage items say marketplace"),
        ("\"billingProvider\":\"one_time\"", "recon items say one_time"),
    ] {
        assert!(text.contains(needle), "no {quirk} ({needle}) in the sample world");
    }
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.iter().any(|l| l.contains("OneTimeInvoiceLineItem") && !l.contains("\"invoiceLineItemType\"")),
        "items without their type"
    );
    assert!(lines.iter().any(|l| l.contains("\"subtotal\":-")), "negative amounts");
    assert!(
        lines.iter().any(|l| l.contains("OneTimeInvoiceLineItem") && !l.contains("\"promotionId\"")),
        "missing keys"
    );
    let seven_digits = lines.iter().any(|l| {
        l.split("\"orderDate\":\"").nth(1).is_some_and(|d| {
            d.get(19..27).is_some_and(|f| f.starts_with('.') && f[1..].bytes().all(|b| b.is_ascii_digit()))
        })
    });
    assert!(seven_digits, "seven fractional digits");
    let long_decimal = lines.iter().any(|l| {
        l.split("\"effectiveUnitPrice\":")
            .nth(1)
            .is_some_and(|v| v.trim_start_matches('"').split([',', '"']).next().unwrap().len() > 20)
    });
    assert!(long_decimal, "decimals a float cannot hold");
    let upper_guid = lines.iter().any(|l| {
        l.split("\"customerId\":\"").nth(1).is_some_and(|id| {
            id.get(..8).is_some_and(|p| p.bytes().any(|b| b.is_ascii_uppercase()) && !p.contains(':'))
        })
    });
    assert!(upper_guid, "upper-case customer GUIDs");
}
