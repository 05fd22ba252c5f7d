//! `pcrecon extract` against the emulator: exact under faults, polite, bounded, and silent about
//! secrets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::helpers::{Emulator, V1_ONLY, digest_tree, extract, log_lines, samples, truth};

fn serve(dir: &Path, name: &str, extra: &[&str]) -> (Emulator, std::path::PathBuf) {
    let log = dir.join(format!("{name}.requests.jsonl"));
    let world = samples();
    let mut args =
        vec!["--world", world.to_str().unwrap(), "--page-size", "20", "--request-log", log.to_str().unwrap()];
    args.extend_from_slice(extra);
    (Emulator::start(&args), log)
}

fn time_of(line: &Value) -> DateTime<Utc> {
    line["time"].as_str().unwrap().parse().unwrap()
}

/// The deadline a 429 or 503 announced, from the time the server logged it.
fn deadline(line: &Value) -> Option<DateTime<Utc>> {
    let after = line["retry_after"].as_str()?;
    let at = time_of(line);
    match after.parse::<i64>() {
        Ok(secs) => Some(at + chrono::Duration::seconds(secs)),
        Err(_) => {
            let when = httpdate::parse_http_date(after).unwrap();
            Some(DateTime::<Utc>::from(when.max(SystemTime::UNIX_EPOCH)))
        }
    }
}

const FAULTS: &str = "429=0.05,500=0.01,503=0.01,reset=0.01,truncate=0.01,expired_continuation=0.03,expired_token=0.02,malformed_next=0.03";

#[test]
fn an_extraction_under_faults_equals_a_fault_free_one_row_for_row() {
    let dir = tempfile::tempdir().unwrap();
    let (clean, _) = serve(dir.path(), "clean", &[]);
    let finished = extract(&clean, dir.path(), V1_ONLY, &[], &["--out", dir.path().join("clean").to_str().unwrap()]);
    assert_eq!(finished.code, 0, "{}", finished.stderr);

    let (faulty, log) = serve(
        dir.path(),
        "faulty",
        &[
            "--faults",
            FAULTS,
            "--fault-seed",
            "3",
            "--token-lifetime-secs",
            "5",
            "--continuation-ttl-secs",
            "10",
            "--max-retry-after",
            "1",
        ],
    );
    let faulty_out = dir.path().join("faulty");
    let finished = extract(&faulty, dir.path(), V1_ONLY, &[], &["--out", faulty_out.to_str().unwrap()]);
    assert_eq!(finished.code, 0, "{}", finished.stderr);

    let clean_tree = digest_tree(&dir.path().join("clean"));
    assert!(clean_tree.len() > 100, "{} files", clean_tree.len());
    assert_eq!(clean_tree, digest_tree(&faulty_out), "every dataset equals the fault-free extraction");

    // And both equal the world.
    let truth = truth(&samples());
    let summary: Value = serde_json::from_slice(&std::fs::read(faulty_out.join("summary.json")).unwrap()).unwrap();
    for (dataset, count) in truth["datasets"].as_object().unwrap() {
        if dataset == "order_line_items" {
            continue;
        }
        assert_eq!(summary["items"][dataset], *count, "{dataset}");
    }

    let lines = log_lines(&log);
    let faults: BTreeSet<&str> = lines.iter().filter_map(|l| l["fault"].as_str()).collect();
    for fault in ["429", "500", "503", "reset", "truncate", "expired_continuation", "expired_token", "malformed_next"] {
        assert!(faults.contains(fault), "the run met no {fault} fault: {faults:?}");
    }
    assert!(lines.len() > 300, "{} requests", lines.len());

    // Never more in flight than the bound (3), token calls included.
    let most = lines.iter().map(|l| l["in_flight"].as_u64().unwrap()).max().unwrap();
    assert!(most <= 3, "{most} requests in flight");

    // Nothing is sent before a Retry-After deadline: not the retry, and (beyond requests already
    // on the wire) nothing else either.
    for throttled in lines.iter().filter(|l| l["status"] == 429 || l["status"] == 503) {
        let Some(until) = deadline(throttled) else { continue };
        let from = time_of(throttled) + chrono::Duration::milliseconds(150);
        for l in &lines {
            let t = time_of(l);
            let same = l["path"] == throttled["path"] && t > time_of(throttled);
            assert!(!(same && t < until), "retried {} before its Retry-After deadline", l["path"]);
            assert!(!(t > from && t < until), "sent {} at {t} during a Retry-After wait until {until}", l["path"]);
        }
    }

    // After the first 401, every request carries a token and the only 401s are the injected ones.
    let first_401 = lines.iter().position(|l| l["status"] == 401).expect("a 401 was injected");
    for l in &lines[first_401..] {
        if l["path"].as_str().unwrap().starts_with("/v1/") {
            assert_eq!(l["token"], true);
        }
        if l["status"] == 401 {
            assert_eq!(l["fault"], "expired_token", "a real 401: {l}");
        }
    }
    assert!(finished.stdout.contains("restarted sequences"), "{}", finished.stdout);
}

#[test]
fn the_in_flight_bound_is_reached_and_never_passed() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, log) = serve(dir.path(), "bound", &["--latency-ms", "20"]);
    let finished = extract(&emulator, dir.path(), "", &[], &[]);
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    let lines = log_lines(&log);
    let most = lines.iter().map(|l| l["in_flight"].as_u64().unwrap()).max().unwrap();
    assert_eq!(most, 3, "requests fan out up to the bound and no further");
    let api: Vec<&Value> = lines.iter().filter(|l| l["path"].as_str().unwrap().starts_with("/v1/")).collect();
    let correlation: BTreeSet<&str> = api.iter().map(|l| l["correlation_id"].as_str().unwrap()).collect();
    assert_eq!(correlation.len(), 1, "one MS-CorrelationId per run");
    let request_ids: BTreeSet<&str> = api.iter().map(|l| l["request_id"].as_str().unwrap()).collect();
    assert_eq!(request_ids.len(), api.len(), "a new MS-RequestId per call");
    assert!(dir.path().join("out/extract/summary.json").is_file(), "published under output.dir by default");
}

#[test]
fn a_known_secret_appears_in_no_log_error_or_output() {
    const SECRET: &str = "k9-Secret-Value-7f3a";
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    let emulator = Emulator::start_with_env(
        &[
            "--world",
            samples().to_str().unwrap(),
            "--client-id",
            "pcrecon-app",
            "--faults",
            "429=0.05,expired_token=0.05",
            "--max-retry-after",
            "1",
        ],
        &[("PCRECON_EMULATOR_CLIENT_SECRET", SECRET)],
    );
    let ok = extract(
        &emulator,
        dir.path(),
        "",
        &[("PCRECON_CLIENT_SECRET", SECRET), ("PCRECON_LOG", "trace")],
        &["--keep-raw", raw.to_str().unwrap()],
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ok.stderr.lines().count() > 50, "trace logging was on");

    let refused = extract(
        &emulator,
        dir.path(),
        "",
        &[("PCRECON_CLIENT_SECRET", "wrong-Secret-Value-1b2c"), ("PCRECON_LOG", "trace")],
        &[],
    );
    assert_eq!(refused.code, 3, "credentials refused exit with the auth code: {}", refused.stderr);
    assert!(refused.stderr.contains("invalid_client"), "{}", refused.stderr);

    let mut haystack = format!("{}{}{}{}", ok.stdout, ok.stderr, refused.stdout, refused.stderr);
    for root in [dir.path().join("out"), raw] {
        for (file, _) in digest_tree(&root) {
            let bytes = std::fs::read(root.join(&file)).unwrap();
            haystack.push_str(&String::from_utf8_lossy(&bytes));
            if file.ends_with(".gz") {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
                    .unwrap_or_default();
                haystack.push_str(&text);
            }
        }
    }
    for needle in [SECRET, "wrong-Secret-Value-1b2c", "Bearer ", "pcemu."] {
        assert!(!haystack.contains(needle), "{needle:?} leaked");
    }
}

#[test]
fn a_refused_request_names_dataset_invoice_page_and_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, log) = serve(dir.path(), "missing", &[]);
    let finished = extract(
        &emulator,
        dir.path(),
        "[extract]\ndatasets = [\"invoices\"]\ninvoice_ids = [\"G999999999\"]",
        &[],
        &[],
    );
    assert_eq!(finished.code, 4, "{}", finished.stderr);
    let lines = log_lines(&log);
    let request = lines.iter().find(|l| l["path"] == "/v1/invoices/G999999999").expect("the invoice was asked for");
    assert_eq!(request["status"], 404);
    let request_id = request["request_id"].as_str().unwrap();
    let message = finished.stderr.lines().last().unwrap();
    for part in ["dataset invoices", "invoice G999999999", "page 1", "HTTP 404", request_id] {
        assert!(message.contains(part), "{part:?} missing from {message:?}");
    }
    let retries = lines.iter().filter(|l| l["path"] == "/v1/invoices/G999999999").count();
    assert_eq!(retries, 1, "a 404 is not retried");
    assert!(!dir.path().join("out/extract").exists(), "nothing is published after a failure");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("out")).map(|d| d.count()).into_iter().collect();
    assert!(leftovers.iter().all(|n| *n == 0), "no staging folder is left behind");
}

#[test]
fn app_user_endpoints_use_the_refresh_token_flow() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, _) = serve(dir.path(), "user", &["--require-app-user"]);

    let app_only = extract(&emulator, dir.path(), "", &[], &[]);
    assert_eq!(app_only.code, 3, "an app-only token is refused where App+User is needed: {}", app_only.stderr);
    assert!(app_only.stderr.contains("HTTP 403"), "{}", app_only.stderr);

    // The partner-consent step, done once by an administrator, yields a refresh token.
    let consent = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let response = crate::helpers::http_client()
            .post(format!("{}/partner-tenant/oauth2/v2.0/token", emulator.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=authorization_code&client_id=pcrecon-app&client_secret=test-secret&code=consent-code")
            .send()
            .await
            .unwrap();
        serde_json::from_slice::<Value>(&response.bytes().await.unwrap()).unwrap()
    });
    let file = dir.path().join("refresh_token");
    std::fs::write(&file, consent["refresh_token"].as_str().unwrap()).unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let user = extract(&emulator, dir.path(), &format!("refresh_token_file = {:?}", file.to_str().unwrap()), &[], &[]);
    assert_eq!(user.code, 0, "{}", user.stderr);
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/extract/summary.json")).unwrap()).unwrap();
    let counts: BTreeMap<String, u64> =
        summary["items"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect();
    assert_eq!(counts["invoices"], truth(&samples())["datasets"]["invoices"].as_u64().unwrap(), "every document");
    assert_eq!(counts["entitlements"], truth(&samples())["datasets"]["entitlements"].as_u64().unwrap());
}

#[test]
fn the_raw_archive_holds_every_page_with_its_request_metadata() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    let (emulator, log) = serve(dir.path(), "raw", &[]);
    let finished = extract(&emulator, dir.path(), V1_ONLY, &[], &["--keep-raw", raw.to_str().unwrap()]);
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    let index: Vec<Value> = std::fs::read_to_string(raw.join("index.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let pages: Vec<&Value> = index.iter().filter(|l| l["event"] == "page").collect();
    let served: BTreeSet<String> = log_lines(&log)
        .iter()
        .filter(|l| l["path"].as_str().unwrap().starts_with("/v1/"))
        .map(|l| l["request_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(pages.len(), served.len(), "one archived page per API response");
    for page in &pages {
        assert!(served.contains(page["request_id"].as_str().unwrap()), "{page}");
        let gz = std::fs::read(raw.join(page["file"].as_str().unwrap())).unwrap();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut body).unwrap();
        assert_eq!(body.len() as u64, page["bytes"].as_u64().unwrap());
        assert_eq!(format!("{:x}", Sha256::digest(&body)), page["sha256"].as_str().unwrap());
    }
    let done = index.iter().filter(|l| l["event"] == "done").count();
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/extract/summary.json")).unwrap()).unwrap();
    let sequences: u64 = summary["sequences"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(done as u64, sequences, "every completed sequence is recorded");
}
