//! Defects an adversarial campaign found, one test each, named after what must hold: the real
//! binary against the emulator, with a mutating proxy (`proxy.rs`) between them where the API has
//! to misbehave. Every run has a kill guard, so that a run that would never end fails the test
//! instead of hanging it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{self, Emulator, Finished, V1_ONLY, bin, data, latest, samples};
use crate::proxy::{self, Decoy, Outcome, Proxy, Reply, Rule, Seen};

// ---------------------------------------------------------------------------------------------
// Shared setup

/// The longest a run may take before the test kills it: generous, only there to catch a hang.
const GUARD: Duration = Duration::from_secs(120);

/// An emulator over the sample world, with more serve flags.
fn emulator(args: &[&str]) -> Emulator {
    let world = samples();
    Emulator::start(&[&["--world", world.to_str().unwrap()], args].concat())
}

/// A fresh folder `root/name`.
fn case(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Reads a pipe to its end on a thread of its own.
fn drain(pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = BufReader::new(pipe).read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Waits for a child for at most [`GUARD`], killing it past that; `None` if it had to be killed.
fn wait_guarded(child: &mut Child) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + GUARD;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `pcrecon ARGS` with the test secret, killed if it outlives [`GUARD`] (then its exit
/// code is -1 and its stderr says so).
fn guarded(args: &[&str], env: &[(&str, &str)]) -> Finished {
    let mut child = Command::new(bin())
        .args(args)
        .env("PCRECON_CLIENT_SECRET", "test-secret")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (stdout, stderr) = (drain(child.stdout.take().unwrap()), drain(child.stderr.take().unwrap()));
    let status = wait_guarded(&mut child);
    let mut stderr = stderr.join().unwrap();
    if status.is_none() {
        stderr.push_str(&format!("\n[the test killed the run after {GUARD:?}: it did not end]"));
    }
    Finished { code: status.and_then(|s| s.code()).unwrap_or(-1), stdout: stdout.join().unwrap(), stderr }
}

/// `pcrecon run --config CONFIG EXTRA`, guarded.
fn run(config: &Path, extra: &[&str]) -> Finished {
    let mut args = vec!["run", "--config", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    guarded(&args, &[])
}

/// The data of a clean run against the emulator itself, in a fresh folder `root/clean`.
fn clean_data(emulator: &Emulator, root: &Path, extra: &str) -> BTreeMap<String, String> {
    let dir = case(root, "clean");
    let clean = run(&helpers::write_config(emulator, &dir, extra), &[]);
    assert_eq!(clean.code, 0, "the clean run: {}", clean.stderr);
    data(&latest(&dir.join("out")))
}

/// The message of the last log line, the `run_failed` event with the error and its causes
/// (empty when there is none).
fn error_line(finished: &Finished) -> String {
    let last = finished.stderr.lines().rev().find_map(|l| serde_json::from_str::<Value>(l).ok());
    match last {
        Some(line) if line["fields"]["event"] == "run_failed" => {
            assert_eq!(line["fields"]["exit_code"], finished.code, "{line}");
            assert!(line["fields"]["causes"].as_array().is_some_and(|c| !c.is_empty()), "{line}");
            line["fields"]["message"].as_str().unwrap_or_default().to_owned()
        }
        _ => String::new(),
    }
}

/// Asserts that a failed run left nothing in view in `out`: no `LATEST`, no snapshot.
fn assert_nothing_published(out: &Path, what: &str) {
    if !out.exists() {
        return;
    }
    let visible: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    assert!(visible.is_empty(), "{what}: nothing may be published, yet {} holds {visible:?}", out.display());
}

/// The JSON log lines of a run's stderr.
fn log_lines(stderr: &str) -> Vec<Value> {
    stderr.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter(Value::is_object).collect()
}

/// How often the proxy saw each request, keyed by `key` (requests it gives `None` not counted).
fn counts(proxy: &Proxy, key: impl Fn(&Seen) -> Option<String>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for seen in proxy.requests() {
        if let Some(k) = key(&seen) {
            *out.entry(k).or_default() += 1;
        }
    }
    out
}

/// A GET of line items whose path starts with `prefix` (`/v1/invoices/G`: new commerce,
/// `/v1/invoices/D`: legacy) and whose query contains `query` (compared in lower case).
fn line_items(seen: &Seen, prefix: &str, query: &str) -> bool {
    seen.method == "GET"
        && seen.path().starts_with(prefix)
        && seen.path().ends_with("/lineitems")
        && seen.path_and_query.to_ascii_lowercase().contains(query)
}

/// The first page of a billed invoice's reconciliation line items (v1, seek paging): the pages
/// the cache keeps from one run to the next.
fn billed_recon_first_page(seen: &Seen) -> bool {
    line_items(seen, "/v1/invoices/G", "invoicelineitemtype=billinglineitems")
        && !seen.path_and_query.to_ascii_lowercase().contains("seekoperation")
}

/// Accepts the first request `first` accepts, then every request for the same path and query
/// (its retries and refetches), and nothing else.
fn pinned(first: impl Fn(&Seen) -> bool + Send + Sync + 'static) -> impl Fn(&Seen) -> bool + Send + Sync + 'static {
    let url: Mutex<Option<String>> = Mutex::new(None);
    move |seen| {
        let mut url = url.lock().unwrap();
        match url.as_deref() {
            Some(pinned) => pinned == seen.path_and_query,
            None if first(seen) => {
                *url = Some(seen.path_and_query.clone());
                true
            }
            None => false,
        }
    }
}

/// The path and query of the first request `first` accepts: what [`pinned`] pinned.
fn pinned_url(proxy: &Proxy, first: impl Fn(&Seen) -> bool) -> String {
    proxy.requests().into_iter().find(|s| first(s)).expect("the pinned request was made").path_and_query
}

/// A 200 answer with its body edited as text (`edit` gives `None` to leave it alone).
fn edit_text(reply: &Reply, edit: impl FnOnce(&str) -> Option<String>) -> Outcome {
    match std::str::from_utf8(&reply.body).ok().filter(|_| reply.status == 200).and_then(edit) {
        Some(text) => Outcome::Replace(reply.with_body(text.into_bytes())),
        None => Outcome::Pass,
    }
}

/// A 200 answer with its body edited as JSON (`edit` returns false to leave it alone).
fn edit_json(reply: &Reply, edit: impl FnOnce(&mut Value) -> bool) -> Outcome {
    let Ok(mut body) = serde_json::from_slice::<Value>(&reply.body) else { return Outcome::Pass };
    if reply.status != 200 || !edit(&mut body) {
        return Outcome::Pass;
    }
    Outcome::Replace(reply.with_body(serde_json::to_vec(&body).unwrap()))
}

/// `text` with the value of its first member `key` replaced by the JSON text `value`.
fn with_value(text: &str, key: &str, value: &str) -> Option<String> {
    let marker = format!("\"{key}\":");
    let start = text.find(&marker)? + marker.len();
    let mut values = serde_json::Deserializer::from_str(&text[start..]).into_iter::<serde::de::IgnoredAny>();
    values.next()?.ok()?;
    let end = start + values.byte_offset();
    Some(format!("{}{value}{}", &text[..start], &text[end..]))
}

/// A rule that edits the first billed reconciliation page (and every refetch of it) as text.
fn on_a_billed_recon_page(edit: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Rule {
    Rule::edit(pinned(billed_recon_first_page), move |_, reply, _| edit_text(reply, &edit))
}

/// A rule that edits the `items` of the first billed reconciliation page (`edit` returns false
/// to leave them alone).
fn on_the_first_items(edit: impl Fn(&mut Value) -> bool + Send + Sync + 'static) -> Rule {
    Rule::edit(pinned(billed_recon_first_page), move |_, reply, _| {
        edit_json(reply, |page| page.get_mut("items").is_some_and(&edit))
    })
}

/// A v1 run through `rule` in a fresh folder fails with exit 5 naming each of `names`.
fn fails_as_bad_data(name: &str, rule: Rule, names: &[&str], what: &str) {
    let root = tempfile::tempdir().unwrap();
    let emulator = emulator(&[]);
    let through = run_through(&emulator, root.path(), name, rule, V1_ONLY);
    assert_failed(&through, 5, names, what);
}

/// Runs once through a proxy applying `rule`, in the fresh folder `root/name` with the config
/// text `extra`; returns the run, its output folder, its config and the proxy.
fn run_through(emulator: &Emulator, root: &Path, name: &str, rule: Rule, extra: &str) -> Through {
    let proxy = Proxy::with_rule(&emulator.base, rule);
    let dir = case(root, name);
    let config = proxy::write_config(&proxy.base, &dir, extra);
    let finished = run(&config, &[]);
    Through { finished, out: dir.join("out"), config, proxy }
}

/// What [`run_through`] gives back.
struct Through {
    finished: Finished,
    out: PathBuf,
    config: PathBuf,
    proxy: Proxy,
}

/// Asserts a run failed with `code`, published nothing, and (if any) that its error line names
/// every one of `words`.
fn assert_failed(through: &Through, code: i32, words: &[&str], what: &str) {
    let f = &through.finished;
    assert_eq!(f.code, code, "{what}: exit code: {}", f.stderr);
    for word in words {
        assert!(error_line(f).contains(word), "{what}: the error names {word:?}: {}", error_line(f));
    }
    assert_nothing_published(&through.out, what);
}

/// Switches the proxy's rule off and runs again in the same folder with the same config: the
/// run must succeed and publish the data of a clean run.
fn assert_healthy_rerun(through: &Through, clean: &BTreeMap<String, String>, what: &str) {
    through.proxy.switch(false);
    let rerun = run(&through.config, &[]);
    assert_eq!(rerun.code, 0, "{what}: the rerun against a healthy server: {}", rerun.stderr);
    assert!(data(&latest(&through.out)) == *clean, "{what}: the rerun publishes the data of a clean run");
}

// ---------------------------------------------------------------------------------------------
// Bad values and bad pages

#[test]
fn a_bad_value_does_not_stick_in_the_cache() {
    let root = tempfile::tempdir().unwrap();
    let emulator = emulator(&[]);
    let clean = clean_data(&emulator, root.path(), V1_ONLY);
    for (name, value) in [("exponent", "1e400"), ("comma", "\"12,50\"")] {
        let rule = on_a_billed_recon_page(move |text| with_value(text, "quantity", value));
        let through = run_through(&emulator, root.path(), name, rule, V1_ONLY);
        assert_failed(&through, 5, &["quantity"], &format!("quantity {value}"));
        assert_healthy_rerun(&through, &clean, &format!("after quantity {value}"));
    }
}

#[test]
fn a_page_without_items_is_an_error_not_an_empty_page() {
    let root = tempfile::tempdir().unwrap();
    let emulator = emulator(&[]);
    let clean = clean_data(&emulator, root.path(), V1_ONLY);
    let rule = Rule::edit(pinned(billed_recon_first_page), |_, reply, _| {
        edit_json(reply, |page| page.as_object_mut().is_some_and(|p| p.remove("items").is_some()))
    });
    let through = run_through(&emulator, root.path(), "no-items", rule, V1_ONLY);
    assert_failed(&through, 5, &["items"], "a page without items");
    assert_healthy_rerun(&through, &clean, "after a page without items");
}

#[test]
fn a_page_whose_items_are_an_object_is_an_error() {
    let rule = on_the_first_items(|items| {
        let first = items.get(0).cloned().unwrap_or_default();
        *items = json!({ "0": first });
        true
    });
    fails_as_bad_data("items-object", rule, &[], "items that are an object");
}

#[test]
fn json_nested_too_deep_is_an_error_not_null() {
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let rule = on_a_billed_recon_page(move |text| with_value(text, "subscriptionDescription", &deep));
    fails_as_bad_data("deep", rule, &["subscriptionDescription"], "200 nested arrays");
}

#[test]
fn a_lone_surrogate_is_an_error_not_null() {
    let rule = on_a_billed_recon_page(|text| with_value(text, "customerName", r#""\ud800""#));
    fails_as_bad_data("surrogate", rule, &[], "a lone surrogate");
}

#[test]
fn an_item_with_no_known_field_is_an_error() {
    let rule = on_the_first_items(|items| match items.as_array_mut() {
        Some(items) if !items.is_empty() => {
            items[0] = json!({ "foo": 1 });
            true
        }
        _ => false,
    });
    fails_as_bad_data("foo", rule, &[], "an item {\"foo\":1}");
}

#[test]
fn duplicate_keys_in_an_item_are_an_error() {
    let rule = on_a_billed_recon_page(|text| {
        let at = text.find("\"quantity\":")?;
        Some(format!("{}\"quantity\":\"7\",{}", &text[..at], &text[at..]))
    });
    fails_as_bad_data("duplicate", rule, &["quantity"], "quantity given twice");
}

// ---------------------------------------------------------------------------------------------
// Raw archives

/// Points the config's output at `root/NAME` (the archive's own run wrote to `out`) and replays
/// the archive there.
fn replay_into(config: &Path, raw: &Path, name: &str) -> Finished {
    let text = std::fs::read_to_string(config).unwrap().replace("[api]", &format!("[output]\ndir = \"{name}\"\n[api]"));
    std::fs::write(config, text).unwrap();
    run(config, &["--from-raw", raw.to_str().unwrap()])
}

#[test]
fn an_incomplete_raw_archive_is_refused() {
    let root = tempfile::tempdir().unwrap();

    // An archive cut to half its index.
    let dir = case(root.path(), "cut");
    let raw = dir.join("raw");
    let config = {
        let emulator = emulator(&[]);
        let config = helpers::write_config(&emulator, &dir, V1_ONLY);
        let archived = run(&config, &["--keep-raw", raw.to_str().unwrap()]);
        assert_eq!(archived.code, 0, "{}", archived.stderr);
        config
    };
    let index = std::fs::read_to_string(raw.join("index.jsonl")).unwrap();
    let lines: Vec<&str> = index.lines().collect();
    assert!(lines.len() > 10, "an archive of a whole run: {} lines", lines.len());
    let half: String = lines[..lines.len() / 2].iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(raw.join("index.jsonl"), half).unwrap();
    let replay = replay_into(&config, &raw, "replayed");
    assert_eq!(replay.code, 5, "a cut index is refused: {}", replay.stderr);
    assert_nothing_published(&dir.join("replayed"), "the replay of a cut index");

    // The archive of a run killed after its third sequence.
    let dir = case(root.path(), "killed");
    let raw = dir.join("raw");
    let config = {
        let emulator = emulator(&[]);
        let config = helpers::write_config(&emulator, &dir, V1_ONLY);
        let killed = guarded(
            &["run", "--config", config.to_str().unwrap(), "--keep-raw", raw.to_str().unwrap()],
            &[("PCRECON_ABORT_AT", "sequence:3")],
        );
        assert_eq!(killed.code, -1, "the run was aborted: {}", killed.stderr);
        assert!(killed.stderr.contains("aborting at sequence"), "{}", killed.stderr);
        config
    };
    assert!(raw.join("index.jsonl").is_file(), "the killed run left an archive behind");
    let replay = replay_into(&config, &raw, "replayed");
    assert_eq!(replay.code, 5, "the archive of a killed run is refused: {}", replay.stderr);
    assert_nothing_published(&dir.join("replayed"), "the replay of a killed run's archive");
}

// ---------------------------------------------------------------------------------------------
// Links and redirects

/// `links.next.uri` of a collection page.
fn next_uri(page: &Value) -> Option<String> {
    page.pointer("/links/next/uri").and_then(Value::as_str).map(str::to_owned)
}

#[test]
fn a_next_link_to_another_host_is_not_followed() {
    let root = tempfile::tempdir().unwrap();
    let emulator = emulator(&["--page-size", "10"]);
    let decoy = Decoy::start();
    let elsewhere = decoy.base.clone();
    let rule = Rule::edit(
        |seen| line_items(seen, "/v1/invoices/", ""),
        move |_, reply, _| {
            edit_json(reply, |page| {
                let Some(uri) = next_uri(page) else { return false };
                let path = if uri.starts_with("/v1/") { uri } else { format!("/v1{uri}") };
                page["links"]["next"]["uri"] = Value::String(format!("{elsewhere}{path}"));
                true
            })
        },
    );
    let through = run_through(&emulator, root.path(), "elsewhere", rule, V1_ONLY);
    let reached: Vec<String> = decoy.requests().into_iter().map(|s| s.path_and_query).collect();
    assert!(reached.is_empty(), "the other host got requests: {reached:?}");
    assert_failed(&through, 5, &["host"], "a next link to another host");
}

#[test]
fn a_redirect_to_another_host_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let emulator = emulator(&[]);
    let decoy = Decoy::start();
    let elsewhere = decoy.base.clone();
    let rule = Rule::answer(pinned(billed_recon_first_page), move |seen, _| {
        let location = format!("{elsewhere}{}", seen.path_and_query);
        Outcome::Replace(Reply::json(302, &json!({})).with_header("location", &location))
    });
    let through = run_through(&emulator, root.path(), "redirect", rule, V1_ONLY);
    let reached = decoy.requests();
    assert!(
        reached.iter().all(|s| s.header("authorization").is_none()),
        "the bearer token went to the other host: {reached:?}"
    );
    let paths: Vec<&str> = reached.iter().map(|s| s.path_and_query.as_str()).collect();
    assert!(paths.is_empty(), "the redirect to another host was followed: {paths:?}");
    assert_failed(&through, 4, &[], "a redirect to another host");
}

#[test]
fn a_next_link_to_its_own_page_is_detected() {
    let root = tempfile::tempdir().unwrap();
    let emulator = emulator(&["--page-size", "10"]);
    // Offset paging (legacy invoices): a link back to the page just fetched is exactly the request
    // that fetched it.
    let rule = Rule::edit(
        |seen| line_items(seen, "/v1/invoices/D", "provider="),
        |seen, reply, _| {
            let itself = seen.path_and_query.clone();
            edit_json(reply, |page| {
                if next_uri(page).is_none() {
                    return false;
                }
                page["links"]["next"]["uri"] = Value::String(itself);
                true
            })
        },
    );
    let through = run_through(&emulator, root.path(), "self-link", rule, V1_ONLY);
    assert_failed(&through, 5, &["already"], "a next link to its own page");
    let seen = counts(&through.proxy, |s| line_items(s, "/v1/invoices/D", "").then(|| s.path_and_query.clone()));
    assert!(!seen.is_empty(), "legacy line items were requested");
    for (url, n) in &seen {
        assert!(*n <= 3, "{url} was requested {n} times");
    }
}

#[test]
fn a_continuation_token_already_followed_is_detected() {
    let root = tempfile::tempdir().unwrap();
    let emulator = emulator(&["--page-size", "10"]);
    // Seek paging: a follow-up page whose next link carries the continuation token its own
    // request carried, in the link's headers and as the top-level `continuationToken`.
    let rule = Rule::edit(
        |seen| line_items(seen, "/v1/invoices/", "provider=onetime") && seen.header("ms-continuationtoken").is_some(),
        |seen, reply, _| {
            let token = seen.header("ms-continuationtoken").unwrap_or_default().to_owned();
            edit_json(reply, |page| {
                let Some(headers) = page.pointer_mut("/links/next/headers").and_then(Value::as_array_mut) else {
                    return false;
                };
                for header in headers.iter_mut() {
                    header["value"] = Value::String(token.clone());
                }
                if page.get("continuationToken").is_some() {
                    page["continuationToken"] = Value::String(token);
                }
                true
            })
        },
    );
    let through = run_through(&emulator, root.path(), "same-token", rule, V1_ONLY);
    assert_failed(&through, 5, &["already"], "a continuation token already followed");
    let seen = counts(&through.proxy, |s| {
        let token = s.header("ms-continuationtoken")?;
        line_items(s, "/v1/invoices/", "provider=onetime").then(|| format!("{} with {token}", s.path_and_query))
    });
    assert!(!seen.is_empty(), "follow-up pages were requested");
    for (request, n) in &seen {
        assert!(*n <= 3, "{request} was requested {n} times");
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets

/// The bearer tokens of every request the proxy saw.
fn bearer_tokens(proxy: &Proxy) -> BTreeSet<String> {
    proxy
        .requests()
        .iter()
        .filter_map(|s| s.header("authorization"))
        .map(|v| v.trim_start_matches("Bearer ").trim_start_matches("bearer ").trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Asserts none of `secrets` is in the run's stdout or stderr.
fn assert_not_in_output(finished: &Finished, secrets: &[String], what: &str) {
    for secret in secrets {
        assert!(!finished.stdout.contains(secret.as_str()), "{what}: {secret:?} reached stdout");
        assert!(!finished.stderr.contains(secret.as_str()), "{what}: {secret:?} reached stderr: {}", finished.stderr);
    }
}

#[test]
fn secrets_echoed_by_a_server_are_redacted() {
    let root = tempfile::tempdir().unwrap();
    let emulator = emulator(&[]);

    // A 400 on a line-item page that echoes the bearer token and continuation tokens.
    let fake: Vec<String> = (0..=70).map(|n| format!("tok-{n}-SECRET")).collect();
    let echoed = fake.clone();
    let rule = Rule::answer(pinned(billed_recon_first_page), move |seen, _| {
        let authorization = seen.header("authorization").unwrap_or_default();
        let data: Vec<Value> =
            echoed[1..].iter().map(|t| json!({ "key": "MS-ContinuationToken", "value": t })).collect();
        let body = json!({
            "code": "400",
            "description": format!("The request is invalid. Authorization: {authorization}; continuationToken={}", echoed[0]),
            "data": data,
            "continuationToken": echoed[0],
            "headers": { "Authorization": authorization },
            "source": "PartnerFD",
        });
        Outcome::Replace(Reply::json(400, &body))
    });
    let through = run_through(&emulator, root.path(), "echo-400", rule, V1_ONLY);
    assert_failed(&through, 4, &[], "a 400 echoing secrets");
    let mut secrets: Vec<String> = bearer_tokens(&through.proxy).into_iter().collect();
    assert!(!secrets.is_empty(), "the requests carried bearer tokens");
    secrets.extend(fake);
    secrets.push("-SECRET".into());
    assert_not_in_output(&through.finished, &secrets, "a 400 echoing secrets");

    // A token endpoint that quotes the posted form back.
    let rule = Rule::answer(
        |seen| seen.method == "POST" && seen.path().contains("/oauth2/"),
        |seen, _| {
            let form = String::from_utf8_lossy(&seen.body).into_owned();
            let body = json!({
                "error": "invalid_request",
                "error_description": format!("AADSTS900144: the request body could not be read: {form}"),
            });
            Outcome::Replace(Reply::json(400, &body))
        },
    );
    let through = run_through(&emulator, root.path(), "echo-token", rule, V1_ONLY);
    assert_failed(&through, 3, &[], "a token endpoint echoing the form");
    let posted = through.proxy.requests().iter().any(|s| String::from_utf8_lossy(&s.body).contains("test-secret"));
    assert!(posted, "the form the endpoint echoed carried the secret");
    assert_not_in_output(&through.finished, &["test-secret".into()], "a token endpoint echoing the form");
}

#[test]
fn a_config_error_does_not_echo_a_secret() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("pcrecon.toml");
    let head = "[api]\ntenant_id = \"partner-tenant\"\nclient_id = \"pcrecon-app\"\n";
    let tail = "base_url = \"http://127.0.0.1:9\"\n";
    for (what, line) in [
        ("a TOML syntax error on the secret's line", "client_secret = \"s3cr3t-XYZ\" oops\n"),
        // Valid TOML, but a key pcrecon does not know (secrets come from the environment or
        // files): its error must not quote the line either.
        ("a secret under a key pcrecon does not know", "client_secret = \"s3cr3t-XYZ\"\n"),
    ] {
        std::fs::write(&config, format!("{head}{line}{tail}")).unwrap();
        let refused = run(&config, &[]);
        assert_eq!(refused.code, 2, "{what}: {}", refused.stderr);
        assert_not_in_output(&refused, &["s3cr3t-XYZ".into()], what);
    }
}

/// The text of every file under `root`, and of each compressed one (gzip, zstd) decompressed.
fn every_byte(root: &Path) -> String {
    let mut text = String::new();
    for (file, _) in helpers::digest_tree(root) {
        let bytes = std::fs::read(root.join(&file)).unwrap();
        text.push_str(&String::from_utf8_lossy(&bytes));
        let mut plain = Vec::new();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let _ = flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_end(&mut plain);
        } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            plain = zstd::stream::decode_all(&bytes[..]).unwrap_or_default();
        }
        text.push_str(&String::from_utf8_lossy(&plain));
    }
    text
}

#[test]
fn a_secrets_sweep_over_a_faulty_run_finds_nothing() {
    let root = tempfile::tempdir().unwrap();
    let faults = "429=0.03,500=0.03,503=0.01,reset=0.02,truncate=0.02,expired_token=0.02,expired_continuation=0.03,malformed_next=0.03";
    let emulator =
        emulator(&["--faults", faults, "--max-retry-after", "1", "--page-size", "100", "--export-polls", "0"]);
    let (refresh_file, refresh) = crate::mfa::consent(&emulator, &case(root.path(), "secrets"), "consent-code");

    // Through a proxy that only records, with the App+User flow, v1 and the v2 export (auto).
    let proxy = Proxy::start(&emulator.base);
    let dir = case(root.path(), "sweep");
    let raw = dir.join("raw");
    let config = proxy::write_config(&proxy.base, &dir, &format!("refresh_token_file = {:?}\n", refresh_file));
    let finished = guarded(
        &["run", "--config", config.to_str().unwrap(), "--keep-raw", raw.to_str().unwrap()],
        &[("PCRECON_LOG", "debug")],
    );
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    let requests = proxy.requests();
    let finished_line = log_lines(&finished.stderr)
        .into_iter()
        .find(|l| l["fields"]["event"] == "extract_finished")
        .expect("the run logged its extraction");
    let troubles: u64 =
        ["retries", "throttled", "unauthorized"].iter().filter_map(|k| finished_line["fields"][k].as_u64()).sum();
    assert!(troubles > 0, "the faults hit the run: {finished_line}");
    assert!(requests.iter().any(|s| s.path().starts_with("/blob/")), "the v2 export's files came through the proxy");

    let mut everywhere: Vec<String> = vec!["test-secret".into(), refresh.clone()];
    everywhere.extend(bearer_tokens(&proxy));
    assert!(everywhere.len() > 2, "the proxy saw bearer tokens");
    for seen in requests.iter().filter(|s| s.path().contains("/oauth2/")) {
        for (k, v) in form_urlencoded::parse(&seen.body) {
            if k == "refresh_token" || k == "client_secret" {
                everywhere.push(v.into_owned());
            }
        }
    }
    let haystack = format!("{}{}{}", finished.stdout, every_byte(&dir.join("out")), every_byte(&raw));
    for secret in &everywhere {
        assert!(!haystack.contains(secret.as_str()), "a secret ({} characters) reached the output", secret.len());
    }
    // Continuation tokens and shared-access signatures are part of archived page bodies; only
    // the logs must never have them.
    let mut in_logs = everywhere;
    for seen in &requests {
        if let Some(token) = seen.header("ms-continuationtoken") {
            in_logs.push(token.to_owned());
        }
        if seen.path().starts_with("/blob/")
            && let Some((_, signature)) = seen.path_and_query.split_once('?')
        {
            in_logs.push(signature.to_owned());
        }
    }
    assert!(in_logs.iter().any(|s| s.contains("sig=")), "signatures were collected");
    assert_not_in_output(&finished, &in_logs, "a faulty run");
}

// ---------------------------------------------------------------------------------------------
// Retry-After and retries

/// The gateway's 429, asking to wait `secs` seconds.
fn throttled(secs: u64) -> Reply {
    let body = json!({ "statusCode": 429, "message": format!("Rate limit is exceeded. Try again in {secs} seconds.") });
    Reply::json(429, &body).with_header("retry-after", &secs.to_string())
}

#[test]
fn an_unbounded_retry_after_is_capped_with_a_warning() {
    let root = tempfile::tempdir().unwrap();
    let emulator = emulator(&[]);
    let rule = Rule::answer(
        |seen| line_items(seen, "/v1/invoices/", ""),
        |_, n| if n == 1 { Outcome::Replace(throttled(86_400)) } else { Outcome::Pass },
    );
    let config = format!("max_retry_after_secs = 2\n{V1_ONLY}");
    let through = run_through(&emulator, root.path(), "capped", rule, &config);
    assert_eq!(through.finished.code, 0, "the run waits 2 s, not a day: {}", through.finished.stderr);
    let warned = log_lines(&through.finished.stderr)
        .into_iter()
        .any(|l| l["level"] == "WARN" && l["fields"]["event"] == "retry_after_capped");
    assert!(warned, "a WARN line with event retry_after_capped: {}", through.finished.stderr);
}

#[test]
fn a_permanent_429_obeys_max_retries() {
    let root = tempfile::tempdir().unwrap();
    let emulator = emulator(&[]);
    let rule = Rule::answer(pinned(billed_recon_first_page), |_, _| Outcome::Replace(throttled(1)));
    let config = format!("max_retries = 2\n{V1_ONLY}");
    let through = run_through(&emulator, root.path(), "throttled", rule, &config);
    assert_failed(&through, 4, &[], "a page answered 429 for ever");
    let url = pinned_url(&through.proxy, billed_recon_first_page);
    let asked = through.proxy.requests().iter().filter(|s| s.path_and_query == url).count();
    assert!((1..=3).contains(&asked), "{url} was requested {asked} times: one call and two retries at most");
}

// ---------------------------------------------------------------------------------------------
// Configuration

#[test]
fn inverted_invoice_dates_are_a_config_error() {
    let root = tempfile::tempdir().unwrap();
    let emulator = emulator(&[]);
    let dir = case(root.path(), "inverted");
    let extra = "\n[extract]\napi_version = \"v1\"\ninvoices_from = 2025-03-01\ninvoices_to = 2025-01-31\n";
    let refused = run(&helpers::write_config(&emulator, &dir, extra), &[]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    for key in ["invoices_from", "invoices_to"] {
        assert!(error_line(&refused).contains(key), "the error names {key}: {}", error_line(&refused));
    }
    assert_nothing_published(&dir.join("out"), "an inverted date range");
}

// ---------------------------------------------------------------------------------------------
// Signals

#[test]
fn sigterm_and_sigint_leave_a_log_line() {
    let root = tempfile::tempdir().unwrap();
    // Every request takes 100 ms: a run lasts seconds, and a signal lands in its middle.
    let emulator = emulator(&["--latency-ms", "100"]);
    let clean = clean_data(&emulator, root.path(), V1_ONLY);
    for (signal, name, code) in [("TERM", "SIGTERM", 143), ("INT", "SIGINT", 130)] {
        let dir = case(root.path(), name);
        let config = helpers::write_config(&emulator, &dir, V1_ONLY);
        let mut child = Command::new(bin())
            .args(["run", "--config", config.to_str().unwrap()])
            .env("PCRECON_CLIENT_SECRET", "test-secret")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = drain(child.stdout.take().unwrap());
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let lines = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(());
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        rx.recv_timeout(GUARD).expect("the run logged a first line");
        // Not a timing assertion: a moment for the run to be well under way.
        std::thread::sleep(Duration::from_millis(300));
        let sent = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap();
        assert!(sent.success(), "kill -{signal}");
        let status = wait_guarded(&mut child);
        let (stderr, _) = (lines.join().unwrap(), stdout.join().unwrap());
        assert!(status.is_some(), "{name}: the run ended within {GUARD:?}: {stderr}");
        assert_eq!(status.and_then(|s| s.code()), Some(code), "{name}: exit code {code}: {stderr}");
        let logged = log_lines(&stderr)
            .into_iter()
            .any(|l| l["fields"]["event"] == "interrupted" && l["fields"]["signal"] == name);
        assert!(logged, "{name}: a log line with event interrupted and signal {name}: {stderr}");
        assert_nothing_published(&dir.join("out"), name);
        let rerun = run(&config, &[]);
        assert_eq!(rerun.code, 0, "{name}: the rerun: {}", rerun.stderr);
        assert!(data(&latest(&dir.join("out"))) == clean, "{name}: the rerun publishes the data of a clean run");
    }
}

// ---------------------------------------------------------------------------------------------
// The v2 export

/// Only billed reconciliation, through the v2 export.
const V2_BILLED_RECON: &str = "\n[extract]\napi_version = \"v2\"\ndatasets = [\"billed_recon_line_items\"]\n";

/// A GET of an export file.
fn export_file(seen: &Seen) -> bool {
    seen.method == "GET" && seen.path().starts_with("/blob/")
}

#[test]
fn a_v2_file_that_never_arrives_usable_names_its_reason_not_only_the_count() {
    let root = tempfile::tempdir().unwrap();
    let emulator = emulator(&["--export-retry-after", "0", "--export-polls", "0"]);
    let rule = Rule::edit(export_file, |_, reply, _| match reply.status {
        200 => Outcome::Replace(reply.with_body(b"this is not a gzip stream".to_vec())),
        _ => Outcome::Pass,
    });
    let through = run_through(&emulator, root.path(), "bad-file", rule, V2_BILLED_RECON);
    assert_failed(&through, 4, &["no usable file", "gzip"], "every export file corrupt");
}

#[test]
fn a_v2_billed_line_without_its_invoice_number_is_an_error() {
    let root = tempfile::tempdir().unwrap();
    let emulator = emulator(&["--export-retry-after", "0", "--export-polls", "0"]);
    let rule = Rule::edit(pinned(export_file), |_, reply, _| {
        if reply.status != 200 {
            return Outcome::Pass;
        }
        let mut lines = String::new();
        flate2::read::MultiGzDecoder::new(&reply.body[..]).read_to_string(&mut lines).unwrap();
        let Some(first) = lines.lines().next().and_then(|l| serde_json::from_str::<Value>(l).ok()) else {
            return Outcome::Pass;
        };
        let mut first = first;
        first.as_object_mut().unwrap().retain(|k, _| !k.eq_ignore_ascii_case("invoiceNumber"));
        let rest: Vec<&str> = lines.lines().skip(1).collect();
        let text = format!("{first}\n{}", rest.iter().map(|l| format!("{l}\n")).collect::<String>());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
        Outcome::Replace(reply.with_body(gz.finish().unwrap()))
    });
    let through = run_through(&emulator, root.path(), "no-invoice", rule, V2_BILLED_RECON);
    assert_failed(&through, 5, &["invoiceNumber", "must name its invoice"], "a v2 line without InvoiceNumber");
}

#[test]
fn an_export_operation_on_another_host_gets_no_bearer_token() {
    let root = tempfile::tempdir().unwrap();
    let emulator = emulator(&["--export-retry-after", "0", "--export-polls", "0"]);
    let decoy = Decoy::start();
    let elsewhere = decoy.base.clone();
    let rule = Rule::edit(
        |seen| seen.method == "POST" && seen.path().ends_with("/export"),
        move |_, reply, _| {
            let mut moved = reply.clone();
            moved.headers.retain(|(name, _)| !name.eq_ignore_ascii_case("location"));
            Outcome::Replace(moved.with_header("location", &format!("{elsewhere}/v1.0/operations/stolen")))
        },
    );
    let through = run_through(&emulator, root.path(), "operation-elsewhere", rule, V2_BILLED_RECON);
    assert!(decoy.requests().is_empty(), "the other host was called: {:?}", decoy.requests());
    assert_failed(&through, 4, &["another host", "Location"], "an operation Location on another host");
}
