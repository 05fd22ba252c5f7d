//! Partner Center's own exchange rates as the rate source (`[normalize] rate_source =
//! "partner_center"`): the monthly `fxrates` files of the pricing API, App+User only, give the
//! same conversion as the same rates given as a rate table, every converted row naming its
//! month; a month without rates fails the run listing what is missing.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};

use crate::helpers::{Emulator, digest_tree, latest, pcrecon, run, samples, write_config};
use crate::mfa::consent;

/// The line-item datasets that carry converted amounts.
const CONVERTED: [&str; 4] = [
    "billed_recon_line_items",
    "billed_consumption_line_items",
    "unbilled_recon_line_items",
    "unbilled_consumption_line_items",
];

/// A rate table (`date,from,to,rate`) that says what the month files say: for every day of a
/// file's month, one unit of each currency in EUR is its dollars per unit over the euro's,
/// rounded half-even to the twelve digits a rate column keeps.
fn table_from_month_files(snapshot: &Path) -> String {
    let mut text = String::from("date,from,to,rate\n");
    for entry in std::fs::read_dir(snapshot.join("fxrates")).unwrap() {
        let path = entry.unwrap().path();
        let month = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let body = std::fs::read_to_string(&path).unwrap();
        let usd: BTreeMap<String, Decimal> = body
            .lines()
            .skip(1)
            .map(|line| {
                let fields: Vec<&str> = line.split(',').map(|f| f.trim().trim_matches('"')).collect();
                assert_eq!(fields[2], month, "{line}");
                (fields[0].to_owned(), Decimal::from_str(fields[1]).unwrap())
            })
            .collect();
        let (year, number): (i32, u32) = (month[..4].parse().unwrap(), month[4..].parse().unwrap());
        let first = chrono::NaiveDate::from_ymd_opt(year, number, 1).unwrap();
        for (code, per_unit) in usd.iter().filter(|(c, _)| *c != "EUR") {
            let rate = (per_unit / usd["EUR"]).round_dp_with_strategy(12, RoundingStrategy::MidpointNearestEven);
            let mut day = first;
            while chrono::Datelike::month(&day) == number {
                text.push_str(&format!("{day},{code},EUR,{rate}\n"));
                day = day.succ_opt().unwrap();
            }
        }
    }
    text
}

/// Every column of a dataset's CSV files, by name, over all its files in order.
fn columns(snapshot: &Path, dataset: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let root = snapshot.join("csv").join(dataset);
    for file in digest_tree(&root).keys() {
        let mut reader = csv::Reader::from_path(root.join(file)).unwrap();
        let headers = reader.headers().unwrap().clone();
        for record in reader.records() {
            for (name, value) in headers.iter().zip(record.unwrap().iter()) {
                out.entry(name.to_owned()).or_default().push(value.to_owned());
            }
        }
    }
    out
}

#[test]
fn partner_centers_monthly_rates_convert_as_the_same_rates_given_as_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(&["--world", samples().to_str().unwrap(), "--require-app-user"]);
    let (token_file, _) = consent(&emulator, dir.path(), "mfa-consent");
    let api = format!("refresh_token_file = {:?}\n", token_file.to_str().unwrap());

    let from_partner_center = dir.path().join("partner_center");
    std::fs::create_dir_all(&from_partner_center).unwrap();
    let normalize = "[normalize]\nreporting_currency = \"EUR\"\nrate_source = \"partner_center\"\n";
    let config = write_config(&emulator, &from_partner_center, &format!("{api}{normalize}"));
    let raw = from_partner_center.join("raw");
    let fetched = run(&config, &["--keep-raw", raw.to_str().unwrap()], &[]);
    assert_eq!(fetched.code, 0, "{}", fetched.stderr);
    let a = latest(&from_partner_center.join("out"));
    // The rates are archived with the pages: a replay calls nothing and gives the same snapshot.
    let replayed = from_partner_center.join("replayed");
    let replay = run(&config, &["--from-raw", raw.to_str().unwrap(), "--out", replayed.to_str().unwrap()], &[]);
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    let (mut original, mut again) = (digest_tree(&a), digest_tree(&latest(&replayed)));
    original.remove("run.json");
    again.remove("run.json");
    assert_eq!(original, again);
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(a.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["provenance"]["rate_source"], "partner_center");
    let kept: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["path"].as_str().filter(|p| p.starts_with("fxrates/")))
        .collect();
    assert!(kept.contains(&"fxrates/202411.csv") && kept.contains(&"fxrates/202503.csv"), "{kept:?}");
    let verified = pcrecon(&["verify", a.to_str().unwrap()], &[]);
    assert_eq!(verified.code, 0, "{}", verified.stdout);

    // The pricing API throttles, fails and drops connections like Partner Center: the run
    // retries through it and publishes the same data.
    let faulty_dir = dir.path().join("faulty");
    std::fs::create_dir_all(&faulty_dir).unwrap();
    let log = faulty_dir.join("requests.jsonl");
    let faulty = Emulator::start(&[
        "--world",
        samples().to_str().unwrap(),
        "--require-app-user",
        "--faults",
        "429=0.03,500=0.02,503=0.01,reset=0.01",
        "--max-retry-after",
        "1",
        "--request-log",
        log.to_str().unwrap(),
    ]);
    let (faulty_token, _) = consent(&faulty, &faulty_dir, "mfa-consent");
    let faulty_api = format!("refresh_token_file = {:?}\n", faulty_token.to_str().unwrap());
    let normalize = "[normalize]\nreporting_currency = \"EUR\"\nrate_source = \"partner_center\"\n";
    let config = write_config(&faulty, &faulty_dir, &format!("{faulty_api}{normalize}"));
    let survived = run(&config, &[], &[]);
    assert_eq!(survived.code, 0, "{}", survived.stderr);
    let faults_on_rates = crate::helpers::log_lines(&log)
        .iter()
        .filter(|l| l["path"].as_str().is_some_and(|p| p.starts_with("/partner/v1.0/")) && l.get("fault").is_some())
        .count();
    assert!(faults_on_rates > 0, "no fault reached the pricing API");
    assert_eq!(crate::helpers::data(&latest(&faulty_dir.join("out"))), crate::helpers::data(&a));

    let from_table = dir.path().join("table");
    std::fs::create_dir_all(&from_table).unwrap();
    std::fs::write(from_table.join("rates.csv"), table_from_month_files(&a)).unwrap();
    let normalize = "[normalize]\nreporting_currency = \"EUR\"\nrates_file = \"rates.csv\"\n";
    let config = write_config(&emulator, &from_table, &format!("{api}{normalize}"));
    let given = run(&config, &[], &[]);
    assert_eq!(given.code, 0, "{}", given.stderr);
    let b = latest(&from_table.join("out"));

    let mut converted = 0;
    for dataset in CONVERTED {
        let (mut ours, mut theirs) = (columns(&a, dataset), columns(&b, dataset));
        let (sources, table) = (ours.remove("fx_rate_source").unwrap(), theirs.remove("fx_rate_source").unwrap());
        assert_eq!(ours, theirs, "{dataset}: the same rates, the same conversion");
        let dates = &ours["fx_rate_date"];
        for ((source, date), from_table) in sources.iter().zip(dates).zip(&table) {
            // Rows billed in euros need no rate, whatever the source.
            if date.is_empty() || source == "identity" {
                assert_eq!(source, from_table);
                continue;
            }
            converted += 1;
            let month = date.replace('-', "");
            assert_eq!(source, &format!("partner_center:{}", &month[..6]), "{dataset}: {date}");
            assert_eq!(from_table, "rates.csv");
        }
    }
    assert!(converted > 1000, "{converted} converted rows");
}

#[test]
fn partner_centers_rates_need_app_user_and_every_month_a_row_converts_in() {
    let dir = tempfile::tempdir().unwrap();
    let normalize = "[normalize]\nreporting_currency = \"EUR\"\nrate_source = \"partner_center\"\n";

    // App-only: the pricing API refuses the token, and the run says how to get an App+User one.
    let emulator = Emulator::start(&["--world", samples().to_str().unwrap()]);
    let app_only = dir.path().join("app-only");
    std::fs::create_dir_all(&app_only).unwrap();
    let refused = run(&write_config(&emulator, &app_only, normalize), &[], &[]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(refused.stderr.contains("fxrates") && refused.stderr.contains("pcrecon auth login"), "{}", refused.stderr);
    assert!(!app_only.join("out/LATEST").exists());
    drop(emulator);

    // A world whose rates of one month are not published: the rows of that month have none.
    let world = dir.path().join("world");
    copy_tree(&samples(), &world);
    std::fs::remove_file(world.join("fxrates/202412.csv")).unwrap();
    let emulator = Emulator::start(&["--world", world.to_str().unwrap()]);
    let (token_file, _) = consent(&emulator, dir.path(), "mfa-consent");
    let case = dir.path().join("missing");
    std::fs::create_dir_all(&case).unwrap();
    let api = format!("refresh_token_file = {:?}\n", token_file.to_str().unwrap());
    let missing = run(&write_config(&emulator, &case, &format!("{api}{normalize}")), &[], &[]);
    assert_eq!(missing.code, 5, "{}", missing.stderr);
    assert!(missing.stderr.contains("\"event\":\"fxrates_not_published\""), "{}", missing.stderr);
    for pair in ["USD in 202412", "GBP in 202412"] {
        assert!(missing.stderr.contains(pair), "{pair}: {}", missing.stderr);
    }
    assert!(!missing.stderr.contains("in 202411"), "every other month has its rates: {}", missing.stderr);
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
