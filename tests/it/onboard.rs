//! A new operator's road, from the repository alone: install the binary, run the demo outside
//! the repository, sign in for the App+User refresh token (the emulator's device-code flow),
//! write a tenant config, run two nights, then one after a restatement that `--fail-on
//! restated` turns into exit 1. Every log line of all of it is JSON, as cron and log shippers
//! get it; every summary is one JSON document.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{Finished, digest_tree, http_client, latest, restated_worlds};

/// Every stderr line the operator's commands printed, checked at the end.
#[derive(Default)]
struct Logs(Vec<String>);

impl Logs {
    fn run(&mut self, command: &mut Command) -> Finished {
        let output = command.output().expect("run the installed pcrecon");
        let finished = Finished {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        self.0.extend(finished.stderr.lines().map(str::to_owned));
        finished
    }
}

/// `cargo install --path . --root ROOT`, reusing this build's artifacts (`--debug`: the
/// profile the tests were built with; `--offline`: nothing is fetched).
fn install(root: &Path) -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| manifest_dir.join("target"), PathBuf::from);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let installed = Command::new(cargo)
        .args(["install", "--path"])
        .arg(manifest_dir)
        .arg("--root")
        .arg(root)
        .args(["--debug", "--locked", "--offline", "--quiet"])
        .env("CARGO_TARGET_DIR", target)
        .output()
        .unwrap();
    assert!(installed.status.success(), "cargo install: {}", String::from_utf8_lossy(&installed.stderr));
    root.join("bin").join("pcrecon")
}

/// An emulator of the installed binary, with the `[api]` block its banner printed.
struct Served {
    child: Child,
    base: String,
    api_block: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(pcrecon: &Path, world: &Path, log: &Path) -> Served {
    let mut child = Command::new(pcrecon)
        .args(["emulator", "serve", "--listen", "127.0.0.1:0", "--require-mfa", "--require-app-user"])
        .args(["--device-poll-secs", "1", "--client-id", "contoso-billing", "--world"])
        .arg(world)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let last = line.starts_with("# refresh_token_file");
            lines.push(line);
            if last {
                break;
            }
        }
        let _ = tx.send(lines);
    });
    let lines = rx.recv_timeout(Duration::from_secs(120)).expect("the emulator did not start");
    let base = lines[0].strip_prefix("listening on ").expect("the first line says where").to_owned();
    let api_block = lines[1..].join("\n");
    Served { child, base, api_block }
}

/// `pcrecon auth login`, answered at the emulator's verification page as a person at a browser
/// would: the code from the log line, a sign-in with MFA.
fn login(logs: &mut Logs, pcrecon: &Path, config: &Path, served: &Served) {
    let mut child = Command::new(pcrecon)
        .args(["auth", "login", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["fields"]["event"] == "device_code_issued"
            {
                let _ = tx.send(Some(v));
            }
            all.push(line);
        }
        let _ = tx.send(None);
        all
    });
    let issued = rx.recv_timeout(Duration::from_secs(60)).unwrap().expect("a device_code_issued event");
    let code = issued["fields"]["user_code"].as_str().unwrap().to_owned();
    let page = issued["fields"]["verification_uri"].as_str().unwrap().to_owned();
    assert_eq!(page, format!("{}/devicelogin", served.base));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let signed = runtime.block_on(async {
        let http = http_client();
        let wrong = http.post(&page).form(&[("user_code", "NOTACODE1"), ("mfa", "true")]).send().await.unwrap();
        assert_eq!(wrong.status(), 400, "a code nobody was given is refused");
        http.post(&page).form(&[("user_code", code.as_str()), ("mfa", "true")]).send().await.unwrap().status()
    });
    assert_eq!(signed, 200);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "auth login: {}", String::from_utf8_lossy(&output.stdout));
    // The reader thread has everything once the process is gone.
    while rx.recv_timeout(Duration::from_secs(10)).ok().flatten().is_some() {}
    logs.0.push(issued.to_string());
}

/// Bytes of the files of `snapshot` that share no inode with a file of `before` (a folder that
/// does not exist: all of them).
fn new_bytes(snapshot: &Path, before: &Path) -> u64 {
    let inodes = |dir: &Path| -> Vec<(u64, u64)> {
        digest_tree(dir)
            .keys()
            .map(|p| {
                let meta = std::fs::metadata(dir.join(p)).unwrap();
                (meta.ino(), meta.len())
            })
            .collect()
    };
    let old: std::collections::HashSet<u64> = match before.exists() {
        true => inodes(before).iter().map(|(i, _)| *i).collect(),
        false => Default::default(),
    };
    inodes(snapshot).iter().filter(|(i, _)| !old.contains(i)).map(|(_, n)| n).sum()
}

#[test]
fn a_new_operator_goes_from_install_to_nightly_runs_with_json_logs_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut logs = Logs::default();
    let pcrecon = install(&dir.path().join("install"));

    // The demo, from the installed binary, far from the repository: it makes the sample world
    // from its seed, and publishes what a demo in the repository publishes.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(elsewhere.join("tmp")).unwrap();
    let demo =
        logs.run(Command::new(&pcrecon).args(["demo"]).current_dir(&elsewhere).env("TMPDIR", elsewhere.join("tmp")));
    assert_eq!(demo.code, 0, "{}", demo.stderr);
    assert_eq!(demo.summary()["exit_code"], 0);
    let in_repo = dir.path().join("in-repo");
    let bundled =
        logs.run(Command::new(&pcrecon).args(["demo", "--out"]).arg(&in_repo).current_dir(env!("CARGO_MANIFEST_DIR")));
    assert_eq!(bundled.code, 0, "{}", bundled.stderr);
    let data = |snapshot: &Path| {
        let mut tree = digest_tree(snapshot);
        tree.remove("run.json");
        tree
    };
    assert_eq!(
        data(&latest(&elsewhere.join("pcrecon-demo"))),
        data(&latest(&in_repo)),
        "the same world, the same data"
    );

    // A tenant rehearsal: the emulator refuses app-only tokens where App+User is required, and
    // App+User tokens without MFA, as Partner Center does.
    let (before_world, after_world, restatement) = restated_worlds(&dir.path().join("worlds"));
    let tenant = dir.path().join("tenant");
    std::fs::create_dir_all(&tenant).unwrap();
    let served = serve(&pcrecon, &before_world, &dir.path().join("emulator-1.log"));
    assert!(served.api_block.contains(&format!("base_url = \"{}\"", served.base)), "{}", served.api_block);
    let config = tenant.join("pcrecon.toml");
    let output = "\n[output]\ndir = \"out\"\nformats = [\"parquet\", \"csv\"]\ncsv_compression = \"gzip\"\n";
    std::fs::write(&config, format!("{}{output}", served.api_block)).unwrap();
    let cfg = config.to_str().unwrap();
    let secret = [("PCRECON_CLIENT_SECRET", "any-secret")];

    // Without the refresh token, the App+User call says what to do.
    let refused = logs.run(Command::new(&pcrecon).args(["run", "--config", cfg]).envs(secret));
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    let failed: Value = serde_json::from_str(refused.stderr.lines().last().unwrap()).unwrap();
    assert_eq!(failed["fields"]["event"], "run_failed");
    assert_eq!(failed["fields"]["exit_code"], 3);
    let message = failed["fields"]["message"].as_str().unwrap();
    assert!(message.contains("pcrecon auth login") && message.contains("api.refresh_token_file"), "{message}");
    assert!(refused.stdout.is_empty(), "no summary for a failed run: {}", refused.stdout);

    // Named but not there yet: the configuration says how to get it.
    let api = served.api_block.replace("# refresh_token_file", "refresh_token_file");
    std::fs::write(&config, format!("{api}{output}")).unwrap();
    let missing = logs.run(Command::new(&pcrecon).args(["run", "--config", cfg]).envs(secret));
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("does not exist: `pcrecon auth login` signs in and writes it"),
        "{}",
        missing.stderr
    );

    login(&mut logs, &pcrecon, &config, &served);
    let token_file = tenant.join("refresh_token");
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the refresh token is the owner's alone");
    let first_token = std::fs::read_to_string(&token_file).unwrap();

    let checked = logs.run(Command::new(&pcrecon).args(["auth", "check", "--config", cfg]).envs(secret));
    assert_eq!(checked.code, 0, "{}{}", checked.stdout, checked.stderr);
    assert_eq!(checked.stdout.lines().filter(|l| l.starts_with("ok ")).count(), 3, "{}", checked.stdout);

    // Two nights: the second adds next to nothing to the disk, and both verify.
    let first = logs.run(Command::new(&pcrecon).args(["run", "--config", cfg]).envs(secret));
    assert_eq!(first.code, 0, "{}", first.stderr);
    let first_snapshot = latest(&tenant.join("out"));
    let rotated = std::fs::read_to_string(&token_file).unwrap();
    assert_ne!(rotated, first_token, "the token the endpoint rotated is the one kept");
    assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    std::thread::sleep(Duration::from_millis(1100));
    let second = logs.run(Command::new(&pcrecon).args(["run", "--config", cfg]).envs(secret));
    assert_eq!(second.code, 0, "{}", second.stderr);
    let second_snapshot = latest(&tenant.join("out"));
    assert_ne!(first_snapshot, second_snapshot);
    let summary = second.summary();
    assert!(summary["shared_files"].as_u64().unwrap() > 0, "{summary}");
    let added = new_bytes(&second_snapshot, &first_snapshot);
    let first_total = new_bytes(&first_snapshot, &second_snapshot.join("none"));
    assert!(added * 10 < first_total, "the second night added {added} of {first_total} bytes");
    assert!(digest_tree(&second_snapshot).keys().any(|p| p.ends_with(".csv.gz")), "CSV is gzipped");
    for snapshot in [&first_snapshot, &second_snapshot] {
        let verified = logs.run(Command::new(&pcrecon).arg("verify").arg(snapshot));
        assert_eq!(verified.code, 0, "{}", verified.stdout);
    }
    drop(served);

    // The month is restated; the emulator's tokens die with it, so the operator signs in again.
    let served = serve(&pcrecon, &after_world, &dir.path().join("emulator-2.log"));
    let text = std::fs::read_to_string(&config).unwrap();
    let old_base = text.lines().find_map(|l| l.strip_prefix("base_url = ")).unwrap().trim_matches('"').to_owned();
    std::fs::write(&config, text.replace(&old_base, &served.base)).unwrap();
    login(&mut logs, &pcrecon, &config, &served);
    let third = logs.run(Command::new(&pcrecon).args(["run", "--config", cfg, "--fail-on", "restated"]).envs(secret));
    assert_eq!(third.code, 1, "{}", third.stderr);
    let summary = third.summary();
    assert_eq!(summary["restated_invoices"], serde_json::json!([restatement["invoice_id"]]), "{summary}");
    assert_eq!(summary["exit_code"], 1);
    drop(served);

    for log in ["emulator-1.log", "emulator-2.log"] {
        logs.0.extend(std::fs::read_to_string(dir.path().join(log)).unwrap().lines().map(str::to_owned));
    }
    assert!(logs.0.len() > 20, "{} log lines", logs.0.len());
    for line in &logs.0 {
        let parsed: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(parsed["level"].is_string() && parsed["fields"].is_object(), "{line}");
    }
}
