//! Starts the emulator as a real process on 127.0.0.1:0 and talks to it like a client that only
//! knows the spec.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::mpsc;
use std::time::Duration;

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rust_decimal::Decimal;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `pcrecon` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pcrecon")
}

/// The bundled sample world.
pub fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples").join("world")
}

/// Runs `pcrecon emulator generate` into `out`.
pub fn generate(out: &Path, args: &[&str]) {
    let status = Command::new(bin())
        .args(["emulator", "generate", "--out"])
        .arg(out)
        .args(args)
        .stderr(Stdio::null())
        .status()
        .expect("run generate");
    assert!(status.success(), "generate failed");
}

/// An HTTP client for tests (reqwest ships without a default TLS provider: install ring's).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

/// A running emulator process, killed on drop.
pub struct Emulator {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Emulator {
    /// Starts `pcrecon emulator serve --listen 127.0.0.1:0 ARGS`.
    pub fn start(args: &[&str]) -> Emulator {
        Self::start_with_env(args, &[])
    }

    /// Starts the server with extra environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Emulator {
        let mut command = Command::new(bin());
        command
            .args(["emulator", "serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn emulator");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(120)).expect("emulator did not start");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        Emulator { child, base }
    }

    /// An HTTP client for this server with a fresh access token.
    pub async fn client(&self) -> Client {
        let http = http_client();
        let response = http
            .post(format!("{}/my-tenant/oauth2/v2.0/token", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&client_id=test-client&client_secret=test-secret&scope=https%3A%2F%2Fapi.partnercenter.microsoft.com%2F.default")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        Client { http, base: self.base.clone(), token: body["access_token"].as_str().unwrap().to_owned() }
    }
}

impl Emulator {
    /// Moves the clock of a server started with `--fixed-clock` on by `secs` seconds.
    pub async fn advance_clock(&self, secs: u64) {
        let url = format!("{}/_emulator/clock/advance?secs={secs}", self.base);
        let response = http_client().post(url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response, read whole.
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (numbers kept exact).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// A client that knows only the spec.
pub struct Client {
    /// The HTTP client.
    pub http: reqwest::Client,
    /// Server root.
    pub base: String,
    /// Bearer token.
    pub token: String,
}

impl Client {
    /// Resolves a link the way spec §1.1 says: prepend `/v1` unless it is there.
    pub fn resolve(&self, uri: &str) -> String {
        if uri.starts_with("/v1") { format!("{}{uri}", self.base) } else { format!("{}/v1{uri}", self.base) }
    }

    /// GET a path (or a resolved link) with the bearer token and optional extra headers.
    pub async fn get(&self, url: &str, headers: &[(&str, &str)]) -> Reply {
        let url = if url.starts_with("http") { url.to_owned() } else { format!("{}{url}", self.base) };
        let mut request =
            self.http.get(&url).bearer_auth(&self.token).header("MS-RequestId", "5c7e2a7e-0000-4000-8000-000000000001");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap_or_else(|e| panic!("GET {url} body: {e}")).to_vec();
        Reply { status, headers, body }
    }

    /// GET expecting 200 JSON.
    pub async fn json(&self, url: &str) -> Value {
        let reply = self.get(url, &[]).await;
        assert_eq!(reply.status, 200, "GET {url}: {}", String::from_utf8_lossy(&reply.body));
        reply.json()
    }

    /// Every item of a paged collection, following `links.next` with the headers it names.
    pub async fn all_items(&self, first: &str) -> (Vec<Value>, usize) {
        let mut items = Vec::new();
        let mut pages = 0;
        let mut reply = self.get(first, &[]).await;
        loop {
            assert_eq!(reply.status, 200, "{first}: {}", String::from_utf8_lossy(&reply.body));
            let page = reply.json();
            pages += 1;
            assert_eq!(page["attributes"]["objectType"], "Collection");
            let page_items = page["items"].as_array().expect("items").clone();
            assert_eq!(page["totalCount"].as_u64(), Some(page_items.len() as u64));
            items.extend(page_items);
            let Some(next) = page["links"].get("next") else { break };
            let uri = next["uri"].as_str().expect("next uri");
            let headers: Vec<(String, String)> = next["headers"]
                .as_array()
                .map(|h| {
                    h.iter()
                        .map(|kv| (kv["key"].as_str().unwrap().to_owned(), kv["value"].as_str().unwrap().to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            reply = self.get(&self.resolve(uri), &refs).await;
        }
        (items, pages)
    }
}

/// An exact decimal from a JSON number or string.
pub fn dec(value: &Value) -> Decimal {
    match value {
        Value::Number(n) => Decimal::from_str(&n.to_string()).unwrap_or_else(|e| panic!("{n}: {e}")),
        Value::String(s) => Decimal::from_str(s).unwrap_or_else(|e| panic!("{s:?}: {e}")),
        Value::Null => Decimal::ZERO,
        other => panic!("not a number: {other}"),
    }
}

/// A field by case-insensitive name.
pub fn field<'a>(item: &'a Value, name: &str) -> Option<&'a Value> {
    item.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// Σ per (dataset, currency, field), as truth.json keeps it.
pub type Totals = BTreeMap<String, BTreeMap<String, BTreeMap<String, Decimal>>>;

/// Adds `item[field]` into the totals.
pub fn add(totals: &mut Totals, dataset: &str, currency: &str, item: &Value, fields: &[&str]) {
    for f in fields {
        let v = field(item, f).map_or(Decimal::ZERO, dec);
        *totals
            .entry(dataset.to_owned())
            .or_default()
            .entry(currency.to_owned())
            .or_default()
            .entry((*f).to_owned())
            .or_default() += v;
    }
}

/// truth.json of a world.
pub fn truth(world: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(world.join("truth.json")).unwrap()).unwrap()
}

/// Σ over every row truth.json says was served: its control totals (each distinct line once)
/// plus the copies served twice.
pub fn truth_served_totals(truth: &Value) -> Totals {
    let mut out = Totals::new();
    for part in ["control_totals", "served_twice_totals"] {
        for (dataset, by_currency) in truth[part].as_object().into_iter().flatten() {
            for (currency, fields) in by_currency.as_object().unwrap() {
                for (f, v) in fields.as_object().unwrap() {
                    let sums = out.entry(dataset.clone()).or_default().entry(currency.clone()).or_default();
                    *sums.entry(f.clone()).or_default() += dec(v);
                }
            }
        }
    }
    out
}

/// Every record batch of every Parquet file of a dataset.
pub fn batches(snapshot: &Path, dataset: &str) -> Vec<arrow_array::RecordBatch> {
    let mut out = Vec::new();
    for (file, _) in digest_tree(&snapshot.join(dataset)) {
        let file = File::open(snapshot.join(dataset).join(&file)).unwrap();
        out.extend(ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap().map(Result::unwrap));
    }
    out
}

/// SHA-256 of every file under `root`, by relative path.
pub fn digest_tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                let bytes = std::fs::read(&path).unwrap();
                out.insert(rel, format!("{:x}", Sha256::digest(&bytes)));
            }
        }
    }
    out
}

/// What readers of an output folder see: [`digest_tree`] without hidden entries (`.cache`, the
/// lock file, staging folders).
pub fn visible_tree(root: &Path) -> BTreeMap<String, String> {
    digest_tree(root).into_iter().filter(|(path, _)| !path.split('/').any(|part| part.starts_with('.'))).collect()
}

/// What a finished `pcrecon` process left behind.
pub struct Finished {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error (the logs).
    pub stderr: String,
}

impl Finished {
    /// The run's summary: the one JSON document `run` prints on stdout when it is not a terminal.
    pub fn summary(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("the summary is not JSON ({e}): {}", self.stdout))
    }
}

/// Config text that keeps every line-item dataset on the v1 API (tests of v1 paging).
pub const V1_ONLY: &str = "\n[extract]\napi_version = \"v1\"\n";

/// Writes `pcrecon.toml` in `dir` for an emulator: the `[api]` section, then `extra` (other
/// sections). Output goes to `dir/out`, the default.
pub fn write_config(emulator: &Emulator, dir: &Path, extra: &str) -> PathBuf {
    let config = dir.join("pcrecon.toml");
    let text = format!(
        "[api]\ntenant_id = \"partner-tenant\"\nclient_id = \"pcrecon-app\"\nauthority_url = \"{base}\"\nbase_url = \"{base}\"\ngraph_url = \"{base}/v1.0\"\nmax_in_flight = 3\n{extra}\n",
        base = emulator.base
    );
    std::fs::write(&config, text).unwrap();
    config
}

/// Runs `pcrecon ARGS` with the test secret and extra environment.
pub fn pcrecon(args: &[&str], env: &[(&str, &str)]) -> Finished {
    let mut command = Command::new(bin());
    command.args(args).env("PCRECON_CLIENT_SECRET", "test-secret");
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().expect("run pcrecon");
    Finished {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Writes a config for an emulator and runs `pcrecon extract` against it.
pub fn extract(emulator: &Emulator, dir: &Path, extra_config: &str, env: &[(&str, &str)], args: &[&str]) -> Finished {
    let config = write_config(emulator, dir, extra_config);
    let mut all = vec!["extract", "--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    pcrecon(&all, env)
}

/// Runs `pcrecon run --config CONFIG EXTRA` with extra environment.
pub fn run(config: &Path, extra: &[&str], env: &[(&str, &str)]) -> Finished {
    let mut args = vec!["run", "--config", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    pcrecon(&args, env)
}

/// Writes a config for an emulator in the folder `dir/name` and runs `pcrecon run` there; returns
/// the finished process and its output folder.
pub fn run_case(emulator: &Emulator, dir: &Path, name: &str, extra: &str, env: &[(&str, &str)]) -> (Finished, PathBuf) {
    let case = dir.join(name);
    std::fs::create_dir_all(&case).unwrap();
    let finished = run(&write_config(emulator, &case, extra), &[], env);
    (finished, case.join("out"))
}

/// A run that kept its raw pages, and the replay of them.
pub struct Replayed {
    /// The config both used (the replay's output goes to `dir/replayed`).
    pub config: PathBuf,
    /// The archive.
    pub raw: PathBuf,
    /// The run against the emulator.
    pub first: Finished,
    /// `pcrecon run --from-raw`, once the emulator was gone.
    pub replay: Finished,
}

/// Runs `pcrecon run --keep-raw dir/raw` against an emulator started with `args`, then stops the
/// emulator (a replay that called the API would fail) and replays the archive into `dir/replayed`.
pub fn run_then_replay(dir: &Path, args: &[&str], extra: &str) -> Replayed {
    let raw = dir.join("raw");
    let (config, first) = {
        let emulator = Emulator::start(args);
        let config = write_config(&emulator, dir, extra);
        let first = run(&config, &["--keep-raw", raw.to_str().unwrap()], &[]);
        (config, first)
    };
    let text = std::fs::read_to_string(&config).unwrap().replace("[api]", "[output]\ndir = \"replayed\"\n[api]");
    std::fs::write(&config, text).unwrap();
    let replay = run(&config, &["--from-raw", raw.to_str().unwrap()], &[]);
    Replayed { config, raw, first, replay }
}

/// Runs `pcrecon demo` into `dir/out`; the snapshot it published.
pub fn demo_snapshot(dir: &Path) -> PathBuf {
    let out = dir.join("out");
    let demo = Command::new(bin()).args(["demo", "--out"]).arg(&out).output().unwrap();
    assert!(demo.status.success(), "{}", String::from_utf8_lossy(&demo.stderr));
    latest(&out)
}

/// The snapshot `LATEST` names.
pub fn latest(out: &Path) -> PathBuf {
    out.join(std::fs::read_to_string(out.join("LATEST")).unwrap().trim())
}

/// A snapshot's files without `run.json` (the only file that differs between identical runs).
pub fn data(snapshot: &Path) -> BTreeMap<String, String> {
    let mut tree = digest_tree(snapshot);
    tree.remove("run.json");
    tree
}

/// Paths the emulator was asked for, from its request log.
pub fn requested(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["path"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// The lines of a JSON-lines file (the emulator's request log).
pub fn log_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// What the tests' Python reads with: DuckDB, the stores' SDKs, an S3 emulator, a Delta reader,
/// and another provider's FOCUS 1.2 sample data to union with.
pub const TEST_PYTHON_PACKAGES: [&str; 6] =
    ["duckdb", "moto[server]", "azure-storage-blob", "deltalake", "pyarrow", "focus-data-toolkit==0.14.1"];

/// A Python with [`TEST_PYTHON_PACKAGES`]: `PCRECON_TEST_PYTHON` (`.ci/run` sets it), or a virtual
/// environment the tests make once under the target folder, installing them from PyPI. Fails
/// loudly when neither can be had: no check is ever skipped.
pub fn test_python() -> PathBuf {
    if let Ok(python) = std::env::var("PCRECON_TEST_PYTHON") {
        return python.into();
    }
    static MADE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    MADE.get_or_init(|| {
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-venv");
        let python = venv.join("bin").join("python");
        let ready = |p: &Path| {
            Command::new(p)
                .args(["-c", "import duckdb, moto, azure.storage.blob, deltalake, pyarrow, focus_data_toolkit"])
                .status()
                .is_ok_and(|s| s.success())
        };
        if !ready(&python) {
            let made = Command::new("python3").args(["-m", "venv"]).arg(&venv).status();
            assert!(made.is_ok_and(|s| s.success()), "cannot make a virtual environment at {}", venv.display());
            let pip = venv.join("bin").join("pip");
            let installed = Command::new(&pip)
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .args(TEST_PYTHON_PACKAGES)
                .status();
            assert!(installed.is_ok_and(|s| s.success()), "cannot install the test packages with {}", pip.display());
        }
        assert!(ready(&python), "{} lacks one of {TEST_PYTHON_PACKAGES:?}", python.display());
        python
    })
    .clone()
}

/// A server a test started on 127.0.0.1 port 0 (Azurite, moto), killed on drop.
pub struct Service {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl Service {
    /// Starts `command` and waits for the first `http://127.0.0.1:PORT` it prints, on either stream.
    fn start(mut command: Command, what: &str) -> Service {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        let (tx, rx) = mpsc::channel::<String>();
        let streams: [Box<dyn std::io::Read + Send>; 2] =
            [Box::new(child.stdout.take().unwrap()), Box::new(child.stderr.take().unwrap())];
        for stream in streams {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(at) = line.find("http://127.0.0.1:") {
                        let url: String = line[at..].chars().take_while(|c| !c.is_whitespace()).collect();
                        let _ = tx.send(url.trim_end_matches('/').to_owned());
                    }
                }
            });
        }
        let endpoint = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("{what} did not start"));
        Service { child, endpoint }
    }

    /// Azurite's Blob service, in memory: `PCRECON_TEST_AZURITE` (`.ci/run` sets it), else
    /// `azurite-blob` on the PATH, else one the tests install once with npm.
    pub fn azurite() -> Service {
        // Resolved once per test binary: tests start Azurite concurrently, npm must install once.
        static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
        let binary = BINARY.get_or_init(|| {
            if let Ok(binary) = std::env::var("PCRECON_TEST_AZURITE") {
                return PathBuf::from(binary);
            }
            let on_path = Command::new("azurite-blob").arg("--version").output().is_ok_and(|o| o.status.success());
            if on_path {
                return PathBuf::from("azurite-blob");
            }
            let prefix = Path::new(env!("CARGO_TARGET_TMPDIR")).join("azurite");
            let binary = prefix.join("node_modules/.bin/azurite-blob");
            if !binary.exists() {
                let installed = Command::new("npm")
                    .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
                    .arg(&prefix)
                    .arg("azurite@3")
                    .status();
                assert!(installed.is_ok_and(|s| s.success()), "cannot install Azurite with npm");
            }
            binary
        });
        let mut command = Command::new(binary);
        command.args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            "0",
            "--inMemoryPersistence",
            "--disableTelemetry",
            "--loose",
            "--skipApiVersionCheck",
        ]);
        Service::start(command, "Azurite")
    }

    /// moto's S3 server, from the tests' Python.
    pub fn moto() -> Service {
        let mut command = Command::new(test_python());
        command.args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"]);
        Service::start(command, "moto")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small world and its first revision, which re-prices one billed line: both folders, and
/// the revision's account of that restatement.
pub fn restated_worlds(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, Value) {
    let (before_world, after_world) = (dir.join("rev0"), dir.join("rev1"));
    let args = ["--seed", "11", "--customers", "4", "--months", "2", "--usage-rows-per-month", "200"];
    generate(&before_world, &args);
    generate(&after_world, &[&args[..], &["--revision", "1"]].concat());
    let restatement = truth(&after_world)["restated"][0].clone();
    (before_world, after_world, restatement)
}
