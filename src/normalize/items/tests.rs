//! The decoder on quirky, bad and exploded items.

use super::*;
use crate::tabular::Cell;
use crate::tabular::batch::rows_of;
use crate::tabular::text::cell_text;

/// The rows of items as one page decodes them, or its first error.
fn decode_texts(
    schema: &DatasetSchema,
    texts: &[&[u8]],
    origin: Origin<'_>,
    rows: &mut Vec<Vec<Cell>>,
) -> Result<(), Box<RowError>> {
    let mut body = Vec::new();
    let mut spans = Vec::new();
    for text in texts {
        spans.push(body.len()..body.len() + text.len());
        body.extend_from_slice(text);
    }
    let mut page = decode_page(schema, &body, &spans, origin, None).unwrap();
    if !page.errors.is_empty() {
        return Err(page.errors.remove(0).1);
    }
    rows.extend(rows_of(&page.batch));
    Ok(())
}

/// One item's notes and rows.
fn decode_one(
    schema: &DatasetSchema,
    text: &[u8],
    origin: Origin<'_>,
    record: usize,
    checks: Option<Checks<'_>>,
) -> Result<(ItemNotes, Vec<Vec<Cell>>), Box<RowError>> {
    let mut out = BatchBuilder::new(schema, 1);
    let paths = ColumnPaths::of(schema);
    let notes = decode_item(&paths, text, origin, record, checks, &mut Vec::new(), &mut out)?;
    Ok((notes, rows_of(&out.finish().unwrap())))
}

#[test]
fn quirky_items_decode_into_rows_and_bad_values_are_located() {
    let schema = Dataset::BilledRecon.schema().unwrap();
    let page: serde_json::Value = serde_json::from_slice(
        &std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/samples/quirks/onetime-line-items.json")).unwrap(),
    )
    .unwrap();
    let texts: Vec<String> = page["items"].as_array().unwrap().iter().map(|v| v.to_string()).collect();
    let texts: Vec<&[u8]> = texts.iter().map(|t| t.as_bytes()).collect();
    let mut rows = Vec::new();
    decode_texts(schema, &texts, Origin { scope: "G000773581", page: 1 }, &mut rows).unwrap();
    assert_eq!(rows.len(), 4);
    let rate = schema.column("pc_to_bc_exchange_rate").unwrap();
    let ty = schema.columns[rate].ty;
    assert_eq!(cell_text(&rows[1][rate], ty), "0.891200000000");
    assert_eq!(cell_text(&rows[2][rate], ty), "0.891200000000");

    // Prorated prices carry more digits than the price column keeps: rounded half-even, with
    // the number as served beside them.
    let price = schema.column("effective_unit_price").unwrap();
    let exact = schema.column("exact_values").unwrap();
    let served =
        |row: &[Cell]| -> serde_json::Value { serde_json::from_str(&cell_text(&row[exact], ColType::Json)).unwrap() };
    assert_eq!(cell_text(&rows[0][price], schema.columns[price].ty), "0.183543143007");
    assert_eq!(served(&rows[0])["effective_unit_price"], "0.1835431430074643112595");
    assert_eq!(cell_text(&rows[1][price], schema.columns[price].ty), "-4.451612903226");
    assert_eq!(served(&rows[1])["effective_unit_price"], "-4.4516129032258064516129032258");
    assert!(matches!(rows[3][exact], Cell::Null), "a row whose values all fit keeps none");

    let bad = r#"{"subtotal":"12.345678901234","currency":"EUR"}"#;
    let err = decode_texts(schema, &[bad.as_bytes()], Origin { scope: "G1", page: 3 }, &mut rows).unwrap_err();
    let text = err.to_string();
    for part in [
        "dataset billed_recon_line_items",
        "scope G1",
        "page 3",
        "record 0",
        "field subtotal",
        "column subtotal",
        "12.345678901234",
    ] {
        assert!(text.contains(part), "{part:?} missing from {text}");
    }
}

#[test]
fn pricing_prices_are_converted_with_the_lines_own_rate_and_truncated() {
    let schema = Dataset::BilledRecon.schema().unwrap();
    let item = r#"{"unitPrice":"16","effectiveUnitPrice":0.1835431430074643112595,"pcToBCExchangeRate":0.8912,"currency":"EUR"}"#;
    let mut rows = Vec::new();
    decode_texts(schema, &[item.as_bytes()], Origin { scope: "G1", page: 1 }, &mut rows).unwrap();
    let text = |c: &str| cell_text(&rows[0][schema.column(c).unwrap()], ColType::decimal(10));
    assert_eq!(text("unit_price_billing"), "14.2500000000", "16 × 0.8912 = 14.2592 → 14.25");
    assert_eq!(text("effective_unit_price_billing"), "0.1600000000", "0.16357… → 0.16");

    // The billing price is the price as served × rate, not its rounded column × rate:
    // 1.0049999999999999 rounds to 1.005 (× 10 = 10.05), but × 10 truncates to 10.04.
    let item =
        r#"{"unitPrice":"1","effectiveUnitPrice":"1.0049999999999999","pcToBCExchangeRate":10,"currency":"EUR"}"#;
    let mut rows = Vec::new();
    decode_texts(schema, &[item.as_bytes()], Origin { scope: "G1", page: 1 }, &mut rows).unwrap();
    let text = |c: &str| {
        let i = schema.column(c).unwrap();
        cell_text(&rows[0][i], schema.columns[i].ty)
    };
    assert_eq!(text("effective_unit_price"), "1.005000000000");
    assert_eq!(text("effective_unit_price_billing"), "10.0400000000");
}

#[test]
fn v2_percentages_become_fractions_only_when_whole_and_rates_stay_between_0_and_1() {
    let schema = Dataset::BilledUsage.schema().unwrap();
    let pec = schema.column("rate_of_partner_earned_credit").unwrap();
    let credit = schema.column("rate_of_credit").unwrap();
    let decode_one = |item: &str| {
        let mut rows = Vec::new();
        decode_texts(schema, &[item.as_bytes()], Origin { scope: "G1", page: 2 }, &mut rows).map(|()| rows.remove(0))
    };
    let row = decode_one(r#"{"PartnerEarnedCreditPercentage":15,"CreditPercentage":"100"}"#).unwrap();
    assert_eq!(cell_text(&row[pec], ColType::decimal(10)), "0.1500000000");
    assert_eq!(cell_text(&row[credit], ColType::decimal(10)), "1.0000000000");
    let row = decode_one(r#"{"rateOfPartnerEarnedCredit":0.15,"PartnerEarnedCreditPercentage":15}"#).unwrap();
    assert_eq!(cell_text(&row[pec], ColType::decimal(10)), "0.1500000000", "the fraction wins");
    for (item, field, says) in [
        (r#"{"PartnerEarnedCreditPercentage":0.15}"#, "partnerEarnedCreditPercentage", "not a whole percentage"),
        (r#"{"CreditPercentage":150}"#, "creditPercentage", "not a rate between 0 and 1"),
        (r#"{"rateOfCredit":15}"#, "rateOfCredit", "not a rate between 0 and 1"),
        (r#"{"rateOfPartnerEarnedCredit":-0.1}"#, "rateOfPartnerEarnedCredit", "not a rate between 0 and 1"),
    ] {
        let error = decode_one(item).unwrap_err();
        assert_eq!(error.field, field, "{item}");
        assert!(error.reason.contains(says), "{item}: {}", error.reason);
        assert_eq!((error.page, error.record), (2, 0));
    }
}

#[test]
fn unread_members_are_found_and_kept_only_when_asked() {
    let schema = Dataset::Subscriptions.schema().unwrap();
    let item =
        br#"{"id":"s1","offerId":"o","newField":{"a":1},"attributes":{"objectType":"Subscription"},"AnotherOne":2}"#;
    let origin = Origin { scope: "c1", page: 1 };
    let known = KnownFields::of(Dataset::Subscriptions, false);
    let checks = |known| Some(Checks { known, promised: &["OfferId", "Missing"], names_invoice: false });
    let (notes, rows) = decode_one(schema, item, origin, 0, checks(&known)).unwrap();
    assert_eq!(notes.missing, ["Missing"], "a promised attribute is looked for in any case");
    assert_eq!(notes.unknown, ["AnotherOne", "newField"]);
    let at = schema.column("unknown_fields").unwrap();
    assert_eq!(rows[0][at], Cell::Null);
    let keep = KnownFields::of(Dataset::Subscriptions, true);
    let (_, kept) = decode_one(schema, item, origin, 0, checks(&keep)).unwrap();
    assert_eq!(kept[0][at], Cell::Str(r#"{"AnotherOne":2,"newField":{"a":1}}"#.into()));
    assert!(decode_one(schema, item, origin, 0, None).unwrap().0.unknown.is_empty());
}

#[test]
fn an_item_without_a_known_member_or_a_v2_line_without_its_invoice_is_an_error() {
    let origin = Origin { scope: "G1", page: 4 };
    let schema = Dataset::BilledUsage.schema().unwrap();
    let known = KnownFields::of(Dataset::BilledUsage, false);
    let checks = |names_invoice| Some(Checks { known: &known, promised: &[], names_invoice });
    let stranger = decode_one(schema, br#"{"foo":1}"#, origin, 2, checks(false)).unwrap_err();
    assert!(stranger.reason.contains("no member of the item"), "{stranger}");
    assert!(decode_one(schema, b"{}", origin, 2, checks(false)).is_err(), "an empty object is no line either");
    let line = br#"{"CustomerId":"c1","Quantity":"2"}"#;
    assert!(decode_one(schema, line, origin, 0, checks(false)).is_ok());
    let unnamed = decode_one(schema, line, origin, 0, checks(true)).unwrap_err();
    assert_eq!((unnamed.field.as_str(), unnamed.record), ("invoiceNumber", 0), "{unnamed}");
    let named = br#"{"InvoiceNumber":"G1","CustomerId":"c1","Quantity":"2"}"#;
    assert!(decode_one(schema, named, origin, 0, checks(true)).is_ok());
}

#[test]
fn order_lines_are_exploded_with_their_order_id() {
    let schema = Dataset::OrderLineItems.schema().unwrap();
    let order = r#"{"id":"o1","lineItems":[{"lineItemNumber":0,"offerId":"A"},{"lineItemNumber":1,"offerId":"B"}]}"#;
    let mut rows = Vec::new();
    decode_texts(schema, &[order.as_bytes()], Origin { scope: "c1", page: 1 }, &mut rows).unwrap();
    assert_eq!(rows.len(), 2);
    let order_id = schema.column("order_id").unwrap();
    assert_eq!(rows[1][order_id], Cell::Str("o1".into()));
    assert_eq!(rows[1][schema.column("customer_id").unwrap()], Cell::Str("c1".into()));
    assert_eq!(rows[1][schema.column("line_item_number").unwrap()], Cell::Int(1));
}

#[test]
fn an_item_that_is_not_utf_8_is_located_by_the_parser() {
    let schema = Dataset::BilledUsage.schema().unwrap();
    let item = b"{\"customerName\":\"M\xfcller\"}";
    let error = decode_one(schema, item, Origin { scope: "G1", page: 2 }, 5, None).unwrap_err();
    assert_eq!((error.page, error.record), (2, 5));
    assert!(error.reason.starts_with("not JSON: invalid unicode code point at line 1"), "{}", error.reason);
    let not_object = decode_one(schema, b"[\xff]", Origin { scope: "G1", page: 2 }, 0, None).unwrap_err();
    assert_eq!(not_object.reason, "not a JSON object");
}
