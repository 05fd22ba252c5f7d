//! `report.html` as a person reads it: rendered by headless Chromium (`.ci/run` installs it),
//! its text read from the page Chromium built. The mismatches the sample world plants are there
//! with their invoice and difference, and the page asks nothing of the network.

use std::path::Path;
use std::process::Command;

use rust_decimal::Decimal;

use crate::helpers::{dec, demo_snapshot, samples, truth};

/// The page as Chromium rendered it (its DOM after parsing, layout and no script), and a
/// screenshot of it.
fn rendered(page: &Path, screenshot: &Path, profile: &Path) -> String {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("headless Chromium is installed (.ci/run installs it)");
    let common =
        ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--window-size=1280,2400"];
    let url = format!("file://{}", page.display());
    let run = |extra: &str| {
        let output = Command::new(chromium)
            .args(common)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(extra)
            .arg(&url)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        output.stdout
    };
    run(&format!("--screenshot={}", screenshot.display()));
    String::from_utf8(run("--dump-dom")).unwrap()
}

/// What a reader sees of some markup: its text, tags dropped, entities of the page decoded.
fn visible(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The figure a reader sees for an amount: two decimals, thousands apart, a true minus sign.
fn as_shown(value: Decimal) -> String {
    let rounded = value.round_dp(2);
    let text = format!("{:.2}", rounded.abs());
    let (whole, fraction) = text.split_once('.').unwrap();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{}{grouped}.{fraction}", if rounded.is_sign_negative() { "−" } else { "" })
}

#[test]
fn the_report_shows_a_reader_each_mismatch_with_its_invoice_and_difference() {
    let dir = tempfile::tempdir().unwrap();
    let page = demo_snapshot(dir.path()).join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    for remote in ["http://", "https://", "<script", "<link", "@import", "url("] {
        let outside = html.replace("http://www.w3.org/2000/svg", "");
        assert!(!outside.contains(remote), "the page reaches outside itself: {remote}");
    }

    let dom = rendered(&page, &dir.path().join("report.png"), &dir.path().join("profile"));
    let text = visible(&dom);
    let truth = truth(&samples());
    let planted: Vec<&serde_json::Value> =
        truth["anomalies"].as_array().unwrap().iter().filter(|a| a["kind"] == "invoice_total_mismatch").collect();
    assert!(!planted.is_empty());
    assert!(text.contains(&format!("{} mismatches", planted.len())), "{text}");
    for anomaly in planted {
        let invoice = anomaly["invoice_id"].as_str().unwrap();
        let difference = dec(&anomaly["line"]["stated_total"]) - dec(&anomaly["line"]["lines_total"]);
        // The invoice's row, as the reader sees it: id, check, currency, stated, lines, difference.
        let row = dom
            .split("<tr")
            .find(|r| r.contains("class=\"mismatch\"") && r.contains(invoice))
            .unwrap_or_else(|| panic!("no mismatch row for {invoice}"));
        let row = visible(&format!("<tr{row}"));
        let expected = format!(
            "{invoice} invoice {} {} {} {} mismatch",
            anomaly["currency"].as_str().unwrap(),
            as_shown(dec(&anomaly["line"]["stated_total"])),
            as_shown(dec(&anomaly["line"]["lines_total"])),
            as_shown(difference)
        );
        assert!(row.starts_with(&expected), "{row:?} is not {expected:?}");
    }
    // Money at risk by reason, and each customer's charges by month.
    assert!(text.contains("Exceptions by reason") && text.contains("duplicate_line"), "{text}");
    assert!(text.contains("Charges per customer and month (EUR)") && text.contains("Contoso Ltd"), "{text}");
    assert!(text.contains("No invoice was restated"), "a first snapshot has none");
    let png = std::fs::read(dir.path().join("report.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a screenshot of the page");

    // The same snapshot gives the same page.
    let again = dir.path().join("again");
    let other = std::fs::read_to_string(demo_snapshot(&again).join("report.html")).unwrap();
    assert_eq!(other, html);
}
