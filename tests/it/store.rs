//! Publishing to object storage, as a reader of the store sees it: Azurite (Azure Blob) and moto
//! (S3), started on loopback port 0, read back through the stores' own Python SDKs rather than
//! through pcrecon's client. Both run under `.ci/run`; nothing here needs a cloud account.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{
    Emulator, Finished, Service, bin, data, latest, pcrecon, run, run_case, test_python, write_config,
};

const SDK: &str = include_str!("object_stores.py");

/// A container (Azurite) or bucket (moto) made for one test.
struct Bucket {
    service: Service,
    kind: &'static str,
    name: &'static str,
}

impl Bucket {
    fn azure() -> Bucket {
        Bucket::made(Service::azurite(), "azure")
    }

    fn s3() -> Bucket {
        Bucket::made(Service::moto(), "s3")
    }

    fn made(service: Service, kind: &'static str) -> Bucket {
        let bucket = Bucket { service, kind, name: "finance" };
        let created = bucket.sdk(&["create"], None);
        assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
        bucket
    }

    /// The destination URL of `prefix` in this bucket.
    fn url(&self, prefix: &str) -> String {
        match self.kind {
            "azure" => format!("az://{}/{prefix}", self.name),
            _ => format!("s3://{}/{prefix}", self.name),
        }
    }

    /// The environment a pcrecon process finds the store's credentials in, named as each SDK names them.
    fn env(&self) -> Vec<(&'static str, String)> {
        match self.kind {
            "azure" => vec![
                ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
                ("AZURITE_BLOB_STORAGE_URL", self.service.endpoint.clone()),
            ],
            _ => vec![
                ("AWS_ENDPOINT_URL", self.service.endpoint.clone()),
                ("AWS_ALLOW_HTTP", "true".into()),
                ("AWS_ACCESS_KEY_ID", "testing".into()),
                ("AWS_SECRET_ACCESS_KEY", "testing".into()),
                ("AWS_REGION", "us-east-1".into()),
            ],
        }
    }

    fn sdk(&self, args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
        let mut child = Command::new(test_python())
            .args(["-c", SDK, self.kind, &self.service.endpoint, self.name])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(bytes) = stdin {
            std::io::Write::write_all(&mut input, bytes).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// SHA-256 of every object below `prefix`, by name relative to it.
    fn tree(&self, prefix: &str) -> BTreeMap<String, String> {
        let listed = self.sdk(&["tree", prefix], None);
        assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
        serde_json::from_slice(&listed.stdout).unwrap()
    }

    fn get(&self, name: &str) -> Option<Vec<u8>> {
        let got = self.sdk(&["get", name], None);
        got.status.success().then_some(got.stdout)
    }

    fn put(&self, name: &str, bytes: &[u8]) {
        let put = self.sdk(&["put", name], Some(bytes));
        assert!(put.status.success(), "{}", String::from_utf8_lossy(&put.stderr));
    }

    /// The run id `<prefix>/LATEST` names.
    fn latest(&self, prefix: &str) -> String {
        let bytes = self.get(&format!("{prefix}/LATEST")).expect("LATEST");
        String::from_utf8(bytes).unwrap().trim().to_owned()
    }

    /// `pcrecon ARGS` with this store's credentials in the environment.
    fn pcrecon(&self, args: &[&str]) -> Finished {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        pcrecon(args, &env)
    }

    /// `pcrecon run --config CONFIG --out URL EXTRA`, with `more` in the environment.
    fn run(&self, config: &Path, url: &str, more: &[(&'static str, String)]) -> Finished {
        let mut env = self.env();
        env.extend(more.iter().cloned());
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run(config, &["--out", url], &env)
    }
}

/// A case folder with a config for `emulator` (its cache in `DIR/pcrecon-cache`, the default).
fn case(emulator: &Emulator, dir: &Path, name: &str) -> PathBuf {
    let case = dir.join(name);
    std::fs::create_dir_all(&case).unwrap();
    write_config(emulator, &case, "")
}

fn ok(finished: &Finished, what: &str) {
    assert_eq!(finished.code, 0, "{what}: {}\n{}", finished.stdout, finished.stderr);
}

#[test]
fn the_sample_world_published_to_azurite_and_to_s3_is_byte_for_byte_its_local_publish() {
    let emulator = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (local, out) = run_case(&emulator, dir.path(), "local", "", &[]);
    ok(&local, "local run");
    let expected = data(&latest(&out));
    assert!(expected.contains_key("manifest.json") && expected.len() > 50, "{expected:?}");
    for bucket in [Bucket::azure(), Bucket::s3()] {
        let config = case(&emulator, dir.path(), bucket.kind);
        let url = bucket.url("billing/nightly");
        let published = bucket.run(&config, &url, &[]);
        ok(&published, bucket.kind);
        let id = bucket.latest("billing/nightly");
        assert_eq!(published.summary()["published"], format!("{url}/{id}"), "{}", published.stdout);
        let mut stored = bucket.tree(&format!("billing/nightly/{id}"));
        assert!(stored.remove("run.json").is_some());
        assert_eq!(stored, expected, "{}: the store holds the local publish, byte for byte", bucket.kind);
        let everything = bucket.tree("billing/nightly");
        let outside: Vec<&String> =
            everything.keys().filter(|k| *k != "LATEST" && !k.starts_with(&format!("{id}/"))).collect();
        assert!(
            outside.is_empty(),
            "{}: nothing but the snapshot and LATEST (the lock is released): {outside:?}",
            bucket.kind
        );
        // An auditor verifies the store's copy, prefix or snapshot, without downloading it by hand.
        for target in [url.clone(), format!("{url}/{id}")] {
            let verified = bucket.pcrecon(&["verify", &target]);
            ok(&verified, &format!("verify {target}"));
        }
        if bucket.kind == "azure" {
            // ADLS Gen2's form of the same account and container.
            let adls = format!("abfss://{}@devstoreaccount1.dfs.core.windows.net/adls/nightly", bucket.name);
            ok(&bucket.run(&config, &adls, &[]), "abfss");
            let id = bucket.latest("adls/nightly");
            let mut stored = bucket.tree(&format!("adls/nightly/{id}"));
            stored.remove("run.json");
            assert_eq!(stored, expected, "abfss: the same bytes");
        }
        // A file altered in the store fails verify.
        let csv = format!("billing/nightly/{id}/csv/customers/part-00000.csv");
        let mut bytes = bucket.get(&csv).expect("customers CSV");
        bytes.extend_from_slice(b"\n");
        bucket.put(&csv, &bytes);
        let tampered = bucket.pcrecon(&["verify", &url]);
        assert_eq!(tampered.code, 1, "{}: {}{}", bucket.kind, tampered.stdout, tampered.stderr);
        assert!(tampered.stdout.contains("customers/part-00000.csv"), "{}", tampered.stdout);
    }
}

#[test]
fn a_run_killed_mid_upload_leaves_latest_alone_and_the_next_run_publishes_cleanly() {
    let emulator = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let bucket = Bucket::azure();
    let config = case(&emulator, dir.path(), "nightly");
    let url = bucket.url("nightly");
    ok(&bucket.run(&config, &url, &[]), "first night");
    let first = bucket.latest("nightly");
    let published = bucket.tree(&format!("nightly/{first}"));

    let killed = bucket.run(&config, &url, &[("PCRECON_ABORT_AT", "upload:12".into())]);
    assert_ne!(killed.code, 0, "the second night was killed mid-upload");
    assert_eq!(bucket.latest("nightly"), first, "LATEST still names the first night");
    let left = bucket.tree("nightly");
    let partial: Vec<&String> =
        left.keys().filter(|k| !k.starts_with(&format!("{first}/")) && *k != "LATEST").collect();
    assert!(partial.iter().any(|k| k.ends_with(".parquet") || k.ends_with(".csv")), "{partial:?}");
    assert!(!partial.iter().any(|k| k.ends_with("/manifest.json")), "no manifest: not a snapshot: {partial:?}");
    assert!(left.contains_key(".pcrecon.lock"), "the killed run's lock is left behind");

    let next = bucket.run(&config, &url, &[]);
    ok(&next, "the night after");
    assert!(next.stderr.contains("stale_lock_taken_over"), "{}", next.stderr);
    assert!(next.stderr.contains("orphaned_upload_removed"), "{}", next.stderr);
    let third = bucket.latest("nightly");
    assert_ne!(third, first);
    let after = bucket.tree("nightly");
    let runs: std::collections::BTreeSet<&str> =
        after.keys().filter_map(|k| k.split_once('/').map(|(id, _)| id)).collect();
    assert_eq!(runs, [first.as_str(), third.as_str()].into_iter().collect(), "the partial upload is gone");
    let strip = |tree: BTreeMap<String, String>| -> BTreeMap<String, String> {
        tree.into_iter().filter(|(k, _)| k != "run.json").collect()
    };
    assert_eq!(strip(bucket.tree(&format!("nightly/{third}"))), strip(published), "a rerun gives the same data");
    ok(&bucket.pcrecon(&["verify", &url]), "verify after the rerun");
    // The last two nights compared straight from the store: nothing changed.
    let diff_out = dir.path().join("diff");
    let diffed = bucket.pcrecon(&["diff", "--previous", &url, "--out", diff_out.to_str().unwrap()]);
    ok(&diffed, "diff --previous on the store");
    assert!(diff_out.join("diff_totals").exists(), "{}", diffed.stdout);
}

#[test]
fn two_runs_on_one_prefix_at_once_one_refuses_and_a_dead_runs_lock_expires() {
    // Every request slowed, so that the first run is still extracting when the second starts.
    let emulator = Emulator::start(&["--faults", "slow=1", "--slow-ms", "150"]);
    let dir = tempfile::tempdir().unwrap();
    let bucket = Bucket::s3();
    let url = bucket.url("nightly");
    let first_config = case(&emulator, dir.path(), "first");
    let second_config = case(&emulator, dir.path(), "second");
    let mut first = Command::new(bin());
    first
        .args(["run", "--config", first_config.to_str().unwrap(), "--out", &url])
        .env("PCRECON_CLIENT_SECRET", "test-secret")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in bucket.env() {
        first.env(k, v);
    }
    let mut first = first.spawn().unwrap();
    let started = Instant::now();
    while bucket.get("nightly/.pcrecon.lock").is_none() {
        assert!(started.elapsed() < Duration::from_secs(60), "the first run never took the lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = bucket.run(&second_config, &url, &[]);
    assert_eq!(second.code, 7, "{}{}", second.stdout, second.stderr);
    assert!(second.stderr.contains(&format!("another pcrecon run holds {url}/.pcrecon.lock")), "{}", second.stderr);
    assert!(first.wait().unwrap().success(), "the first run publishes");
    let published = bucket.latest("nightly");
    assert!(bucket.get("nightly/.pcrecon.lock").is_none(), "released");

    // A lock another host holds is respected until it expires, then taken over.
    let held = |expires: &str| {
        format!(
            r#"{{"run_id":"20261201T020000Z","pid":4242,"host":"cron-02","since":"2026-12-01T02:00:00Z","expires_at":"{expires}"}}"#
        )
    };
    bucket.put("nightly/.pcrecon.lock", held("2999-01-01T00:00:00Z").as_bytes());
    let refused = bucket.run(&second_config, &url, &[]);
    assert_eq!(refused.code, 7, "{}", refused.stderr);
    assert!(refused.stderr.contains("pid 4242 on cron-02"), "{}", refused.stderr);
    bucket.put("nightly/.pcrecon.lock", held("2026-12-01T08:00:00Z").as_bytes());
    let taken = bucket.run(&second_config, &url, &[]);
    ok(&taken, "an expired lock is taken over");
    assert!(taken.stderr.contains("stale_lock_taken_over"), "{}", taken.stderr);
    assert_ne!(bucket.latest("nightly"), published);
}

#[test]
fn an_unknown_scheme_or_a_credential_in_the_url_is_refused_before_anything_runs() {
    let emulator = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = case(&emulator, dir.path(), "c");
    for (url, says) in [
        ("ftp://host/out", "not a supported destination"),
        ("az://finance/x?sv=2024-01-01&sig=abcdefSECRET", "credentials belong in the environment"),
    ] {
        let refused = run(&config, &["--out", url], &[]);
        assert_eq!(refused.code, 2, "{url}: {}", refused.stderr);
        assert!(refused.stderr.contains(says) && !refused.stderr.contains("SECRET"), "{}", refused.stderr);
    }
    assert!(!dir.path().join("c/ftp:").exists() && !dir.path().join("ftp:").exists(), "no folder named after a scheme");
}

#[test]
fn delta_tables_published_to_s3_open_in_the_delta_reader_with_the_manifests_exact_sums() {
    let emulator = Emulator::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let bucket = Bucket::s3();
    let case = dir.path().join("nightly");
    std::fs::create_dir_all(&case).unwrap();
    let config = write_config(&emulator, &case, "[output]\ndir = \"s3://finance/nightly\"\ndelta = true\n");
    let env = bucket.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let published = run(&config, &[], &env);
    ok(&published, "run with delta to S3");
    let id = bucket.latest("nightly");
    let stored = bucket.tree("nightly");
    assert!(stored.keys().any(|k| k.starts_with("delta/billed_recon_line_items/_delta_log/00000000000000000000.json")));
    let manifest: serde_json::Value =
        serde_json::from_slice(&bucket.get(&format!("nightly/{id}/manifest.json")).unwrap()).unwrap();
    let options = serde_json::json!({
        "AWS_ENDPOINT_URL": bucket.service.endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    });
    let names = ["billed_recon_line_items", "invoices", "subscriptions"];
    let tables = crate::delta::read_tables("s3://finance/nightly", &options, &[0], &names);
    for name in names {
        assert_eq!(tables[name]["version"], 0, "{name}");
        assert_eq!(tables[name]["versions"]["0"]["rows"], manifest["datasets"][name]["rows"], "{name}");
        crate::delta::assert_sums_equal(name, &manifest, &tables[name]["versions"]["0"]["sums"]);
    }
}

#[test]
fn files_larger_than_a_part_go_up_in_parts_and_verify_against_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("world");
    crate::helpers::generate(
        &world,
        &["--seed", "5", "--customers", "3", "--months", "1", "--usage-rows-per-month", "60000"],
    );
    let emulator = Emulator::start(&["--world", world.to_str().unwrap()]);
    for bucket in [Bucket::azure(), Bucket::s3()] {
        let config = case(&emulator, dir.path(), bucket.kind);
        let url = bucket.url("large");
        ok(&bucket.run(&config, &url, &[]), bucket.kind);
        let id = bucket.latest("large");
        let manifest: serde_json::Value =
            serde_json::from_slice(&bucket.get(&format!("large/{id}/manifest.json")).unwrap()).unwrap();
        let largest = manifest["files"].as_array().unwrap().iter().map(|f| f["bytes"].as_u64().unwrap()).max();
        assert!(
            largest.unwrap() > 16 * 1024 * 1024,
            "{}: a file above the multipart threshold: {largest:?}",
            bucket.kind
        );
        let stored = bucket.tree(&format!("large/{id}"));
        for file in manifest["files"].as_array().unwrap() {
            let path = file["path"].as_str().unwrap();
            assert_eq!(stored.get(path).map(String::as_str), file["sha256"].as_str(), "{}: {path}", bucket.kind);
        }
        ok(&bucket.pcrecon(&["verify", &url]), &format!("{} verify", bucket.kind));
    }
}

#[test]
fn a_raw_archive_in_a_store_rebuilds_the_snapshot_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    let config = {
        let emulator = Emulator::start(&[]);
        let config = case(&emulator, dir.path(), "nightly");
        ok(&run(&config, &["--keep-raw", raw.to_str().unwrap()], &[]), "run keeping raw pages");
        config
    };
    let bucket = Bucket::azure();
    for (rel, _) in crate::helpers::digest_tree(&raw) {
        bucket.put(&format!("archive/raw/{rel}"), &std::fs::read(raw.join(&rel)).unwrap());
    }
    let replayed = dir.path().join("replayed");
    let env = bucket.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let rebuilt = run(&config, &["--from-raw", &bucket.url("archive/raw"), "--out", replayed.to_str().unwrap()], &env);
    ok(&rebuilt, "replay from the store");
    let original = latest(&dir.path().join("nightly/out"));
    assert_eq!(data(&latest(&replayed)), data(&original), "the same snapshot, byte for byte");
}
