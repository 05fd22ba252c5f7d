//! Each injected fault produces its documented response, and the request log says so.

use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::helpers::{Emulator, log_lines, samples};

struct Faulty {
    emulator: Emulator,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn serve(faults: &str, extra: &[&str]) -> Faulty {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let world = samples();
    let mut args = vec!["--world", world.to_str().unwrap(), "--faults", faults, "--request-log", log.to_str().unwrap()];
    args.extend_from_slice(extra);
    let emulator = Emulator::start(&args);
    Faulty { emulator, log, _dir: dir }
}

fn last_api_line(path: &std::path::Path) -> Value {
    log_lines(path)
        .into_iter()
        .rev()
        .find(|l| l["path"].as_str().unwrap().starts_with("/v1/"))
        .expect("an API request was logged")
}

/// Seconds a Retry-After value asks for (delta seconds or an HTTP date).
fn retry_after_secs(value: &str) -> u64 {
    match value.parse::<u64>() {
        Ok(secs) => secs,
        Err(_) => {
            httpdate::parse_http_date(value).unwrap().duration_since(SystemTime::now()).map_or(0, |d| d.as_secs() + 1)
        }
    }
}

const INVOICES: &str = "/v1/invoices";

#[tokio::test]
async fn throttling_answers_429_with_retry_after_and_the_gateway_body() {
    let f = serve("429=1", &["--max-retry-after", "3"]);
    let client = f.emulator.client().await;
    for _ in 0..12 {
        let reply = client.get(INVOICES, &[]).await;
        assert_eq!(reply.status, 429);
        let after = reply.headers["retry-after"].to_str().unwrap().to_owned();
        let secs = retry_after_secs(&after);
        assert!((1..=4).contains(&secs), "{after}");
        let body = reply.json();
        assert_eq!(body["statusCode"], 429);
        assert!(body["message"].as_str().unwrap().starts_with("Rate limit is exceeded."));
        let line = last_api_line(&f.log);
        assert_eq!(line["fault"], "429");
        assert_eq!(line["status"], 429);
        assert_eq!(line["retry_after"].as_str(), Some(after.as_str()));
    }
    let token_lines = log_lines(&f.log).into_iter().filter(|l| l["path"].as_str().unwrap().contains("oauth2")).count();
    assert_eq!(token_lines, 1, "the token endpoint is not faulted");
}

#[tokio::test]
async fn server_errors_answer_500_and_503_with_canonical_bodies() {
    let f = serve("500=1", &[]);
    let reply = f.emulator.client().await.get(INVOICES, &[]).await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json()["code"], "500");
    assert_eq!(last_api_line(&f.log)["fault"], "500");

    let f = serve("503=1", &[]);
    let reply = f.emulator.client().await.get(INVOICES, &[]).await;
    assert_eq!(reply.status, 503);
    assert!(reply.headers.contains_key("retry-after"));
    assert!(reply.json()["description"].is_string());
    assert_eq!(last_api_line(&f.log)["fault"], "503");
}

#[tokio::test]
async fn a_reset_drops_the_connection_without_a_response() {
    let f = serve("reset=1", &[]);
    let client = f.emulator.client().await;
    let err = client.http.get(format!("{}{INVOICES}", client.base)).bearer_auth(&client.token).send().await;
    assert!(err.is_err(), "no response may arrive");
    let line = last_api_line(&f.log);
    assert_eq!(line["fault"], "reset");
    assert!(line["status"].is_null());
}

#[tokio::test]
async fn a_truncated_body_stops_short_of_its_content_length() {
    let f = serve("truncate=1", &[]);
    let client = f.emulator.client().await;
    let response =
        client.http.get(format!("{}{INVOICES}", client.base)).bearer_auth(&client.token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let announced: usize = response.headers()["content-length"].to_str().unwrap().parse().unwrap();
    assert!(announced > 100);
    assert!(response.bytes().await.is_err(), "reading the whole body must fail");
    assert_eq!(last_api_line(&f.log)["fault"], "truncate");
}

#[tokio::test]
async fn a_slow_response_arrives_late_but_whole() {
    let f = serve("slow=1", &["--slow-ms", "400"]);
    let client = f.emulator.client().await;
    let started = Instant::now();
    let reply = client.get(INVOICES, &[]).await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(reply.status, 200);
    assert!(reply.json()["items"].is_array());
    assert_eq!(last_api_line(&f.log)["fault"], "slow");
}

#[tokio::test]
async fn an_expired_access_token_answers_401() {
    let f = serve("expired_token=1", &[]);
    let reply = f.emulator.client().await.get(INVOICES, &[]).await;
    assert_eq!(reply.status, 401);
    assert!(reply.headers.contains_key("www-authenticate"));
    assert!(reply.json()["description"].as_str().unwrap().contains("expired"));
    assert_eq!(last_api_line(&f.log)["fault"], "expired_token");
}

/// A server whose clock stands still until the test moves it.
const FIXED_CLOCK: [&str; 2] = ["--fixed-clock", "2026-03-01T08:00:00Z"];

#[tokio::test]
async fn tokens_really_expire_after_their_lifetime() {
    let f = serve("", &[&FIXED_CLOCK[..], &["--token-lifetime-secs", "60"]].concat());
    let client = f.emulator.client().await;
    assert_eq!(client.get(INVOICES, &[]).await.status, 200);
    f.emulator.advance_clock(59).await;
    assert_eq!(client.get(INVOICES, &[]).await.status, 200, "a second before its end");
    f.emulator.advance_clock(1).await;
    assert_eq!(client.get(INVOICES, &[]).await.status, 401, "at its end");
}

#[tokio::test]
async fn a_server_on_the_system_clock_has_no_clock_to_move() {
    let f = serve("", &[]);
    let url = format!("{}/_emulator/clock/advance?secs=1", f.emulator.base);
    let response = crate::helpers::http_client().post(url).send().await.unwrap();
    assert_eq!(response.status(), 404);
}

const UNBILLED_USAGE: &str = "/v1/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype=usagelineitems&currencycode=EUR&period=previous&size=10";

#[tokio::test]
async fn an_expired_continuation_token_is_refused_mid_sequence() {
    let f = serve("expired_continuation=1", &[]);
    let client = f.emulator.client().await;
    let first = client.get(UNBILLED_USAGE, &[]).await;
    assert_eq!(first.status, 200, "a first page carries no token, so it cannot expire");
    let page = first.json();
    let token = page["links"]["next"]["headers"][0]["value"].as_str().unwrap();
    let next = client
        .get(&client.resolve(page["links"]["next"]["uri"].as_str().unwrap()), &[("MS-ContinuationToken", token)])
        .await;
    assert_eq!(next.status, 400);
    assert!(next.json()["description"].as_str().unwrap().contains("expired"));
    assert_eq!(last_api_line(&f.log)["fault"], "expired_continuation");
}

#[tokio::test]
async fn continuation_tokens_really_expire_after_their_lifetime() {
    let f = serve("", &[&FIXED_CLOCK[..], &["--continuation-ttl-secs", "30"]].concat());
    let client = f.emulator.client().await;
    let page = client.json(UNBILLED_USAGE).await;
    let token = page["links"]["next"]["headers"][0]["value"].as_str().unwrap().to_owned();
    let uri = client.resolve(page["links"]["next"]["uri"].as_str().unwrap());
    assert_eq!(client.get(&uri, &[("MS-ContinuationToken", &token)]).await.status, 200);
    f.emulator.advance_clock(30).await;
    assert_eq!(client.get(&uri, &[("MS-ContinuationToken", &token)]).await.status, 400);
}

#[tokio::test]
async fn malformed_next_links_look_like_the_documentation_example() {
    let f = serve("malformed_next=1", &[]);
    let client = f.emulator.client().await;
    let page = client.json(UNBILLED_USAGE).await;
    let uri = page["links"]["next"]["uri"].as_str().unwrap();
    assert!(uri.ends_with("&size=10?seekOperation=Next"), "{uri}");
    assert!(page["links"]["next"]["headers"][0]["value"].is_string(), "the token still comes");
    let legacy = client.json("/v1/invoices?size=1").await;
    let uri = legacy["links"]["next"]["uri"].as_str().unwrap();
    assert!(uri.ends_with("offset="), "{uri}");
    assert_eq!(last_api_line(&f.log)["fault"], "malformed_next");
}

#[tokio::test]
async fn the_request_log_records_every_request_and_the_in_flight_count() {
    let f = serve("", &["--latency-ms", "300"]);
    let client = f.emulator.client().await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let http = client.http.clone();
        let url = format!("{}{INVOICES}", client.base);
        let token = client.token.clone();
        tasks.push(tokio::spawn(async move {
            http.get(url).bearer_auth(token).header("MS-CorrelationId", "corr-1").send().await.unwrap().status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let lines = log_lines(&f.log);
    let api: Vec<&Value> = lines.iter().filter(|l| l["path"] == INVOICES).collect();
    assert_eq!(api.len(), 6);
    for l in &api {
        assert_eq!(l["method"], "GET");
        assert_eq!(l["status"], 200);
        assert_eq!(l["token"], true);
        assert_eq!(l["correlation_id"], "corr-1");
        assert!(l["time"].as_str().unwrap().ends_with('Z'));
        assert!(l.get("fault").is_none());
    }
    let most = api.iter().map(|l| l["in_flight"].as_u64().unwrap()).max().unwrap();
    assert!(most >= 2, "concurrent requests overlap ({most})");
    let text = std::fs::read_to_string(&f.log).unwrap();
    assert!(!text.contains(&client.token), "tokens never reach the log");
}

#[tokio::test]
async fn the_rate_limit_throttles_customer_resources_per_minute() {
    let f = serve("", &["--rate-limit-per-minute", "3"]);
    let client = f.emulator.client().await;
    for _ in 0..3 {
        assert_eq!(client.get("/v1/customers?size=2", &[]).await.status, 200);
    }
    let reply = client.get("/v1/customers?size=2", &[]).await;
    assert_eq!(reply.status, 429);
    assert!(retry_after_secs(reply.headers["retry-after"].to_str().unwrap()) >= 1);
    assert_eq!(client.get(INVOICES, &[]).await.status, 200, "invoices are not rate limited");
    assert_eq!(last_api_line(&f.log)["path"], INVOICES);
}

#[tokio::test]
async fn faults_are_seeded_and_reproducible() {
    let outcome = |seed: &'static str| async move {
        let f = serve("429=0.3,500=0.2", &["--fault-seed", seed, "--max-retry-after", "1"]);
        let client = f.emulator.client().await;
        let mut statuses = Vec::new();
        for _ in 0..30 {
            statuses.push(client.get(INVOICES, &[]).await.status);
        }
        statuses
    };
    let a = outcome("5").await;
    assert_eq!(a, outcome("5").await);
    assert!(a.contains(&429) && a.contains(&500) && a.contains(&200), "{a:?}");
    assert_ne!(a, outcome("6").await);
}
