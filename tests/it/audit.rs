//! `verify` and `diff` against snapshots that were tampered with, corrupted, or left behind by
//! a killed diff: each test is named after the defect it pins.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{Emulator, digest_tree, latest, pcrecon, run, samples, write_config};

/// The sample world, its v2 export answering at once (no `Retry-After` to wait out).
fn emulator() -> Emulator {
    Emulator::start(&["--world", samples().to_str().unwrap(), "--export-retry-after", "0", "--export-polls", "0"])
}

/// Runs `pcrecon run` `n` times in `case` (output `case/out`); the snapshots, oldest first.
fn published(emulator: &Emulator, case: &Path, extra: &str, n: usize) -> Vec<PathBuf> {
    std::fs::create_dir_all(case).unwrap();
    let config = write_config(emulator, case, extra);
    (0..n)
        .map(|_| {
            let finished = run(&config, &[], &[]);
            assert_eq!(finished.code, 0, "{}", finished.stderr);
            latest(&case.join("out"))
        })
        .collect()
}

fn manifest(snapshot: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(snapshot.join("manifest.json")).unwrap()).unwrap()
}

fn write_manifest(snapshot: &Path, manifest: &Value) {
    std::fs::write(snapshot.join("manifest.json"), serde_json::to_vec_pretty(manifest).unwrap()).unwrap();
}

/// Changes the first control total of the manifest: (dataset, currency, column, what the
/// files hold, what the manifest now says).
fn edit_a_control_total(snapshot: &Path) -> (String, String, String, String, String) {
    let mut m = manifest(snapshot);
    let (dataset, currency, column, value) = m["datasets"]
        .as_object()
        .unwrap()
        .iter()
        .find_map(|(dataset, entry)| {
            let (currency, columns) = entry["control_totals"].as_object().unwrap().iter().next()?;
            let (column, value) = columns.as_object().unwrap().iter().next()?;
            Some((dataset.clone(), currency.clone(), column.clone(), value.as_str().unwrap().to_owned()))
        })
        .expect("a dataset with control totals");
    // Another value at the same scale (the text is compared, as the manifest states it).
    let raised = match value.strip_prefix('-') {
        Some(positive) => positive.to_owned(),
        None => format!("1{value}"),
    };
    m["datasets"][&dataset]["control_totals"][&currency][&column] = json!(raised);
    write_manifest(snapshot, &m);
    (dataset, currency, column, value, raised)
}

/// Lines of a `verify` report that are not a snapshot's verdict.
fn problems(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| !l.contains(": ok (") && !l.contains(" problems (") && !l.contains(": not verified ("))
        .collect()
}

#[test]
fn verify_trusts_the_manifest_an_edited_control_total_passes() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = emulator();
    let snapshot = published(&emulator, dir.path(), "", 1).remove(0);
    let clean = pcrecon(&["verify", snapshot.to_str().unwrap()], &[]);
    assert_eq!(clean.code, 0, "the control totals of a run are its files' sums: {}", clean.stdout);

    let (dataset, currency, column, summed, raised) = edit_a_control_total(&snapshot);
    let mut m = manifest(&snapshot);
    let rows = m["datasets"]["invoices"]["rows"].as_u64().unwrap();
    m["datasets"]["invoices"]["rows"] = json!(rows + 1);
    write_manifest(&snapshot, &m);

    let edited = pcrecon(&["verify", snapshot.to_str().unwrap()], &[]);
    assert_eq!(edited.code, 1, "{}\n{}", edited.stdout, edited.stderr);
    let found = problems(&edited.stdout);
    assert_eq!(found.len(), 2, "{}", edited.stdout);
    let total = format!("total    {dataset} {currency} {column}: manifest says {raised}, the files sum to {summed}");
    assert!(edited.stdout.contains(&total), "names dataset, currency, column and both values: {}", edited.stdout);
    let counted = format!("rows     dataset invoices: manifest says {} rows, found {rows}", rows + 1);
    assert!(edited.stdout.contains(&counted), "{}", edited.stdout);
}

#[test]
fn verify_trusts_the_manifest_a_path_outside_the_snapshot_is_hashed_and_reported_ok() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = emulator();
    let snapshot = published(&emulator, dir.path(), "", 1).remove(0);
    // A file beside the output folder, as /etc/hostname is beside every snapshot.
    let secret = dir.path().join("hostname");
    std::fs::write(&secret, "build-host\n").unwrap();
    let real = std::fs::read(&secret).unwrap();
    let listed = |path: &str| json!({"path": path, "rows": 0, "bytes": real.len(), "sha256": format!("{:x}", Sha256::digest(&real))});
    // `snapshot` is dir/out/<id>.
    let climbing = "../../hostname";
    let absolute = secret.to_str().unwrap().to_owned();
    let linked = "documents/hostname.pdf";
    std::os::unix::fs::symlink(&secret, snapshot.join(linked)).unwrap();
    let mut m = manifest(&snapshot);
    let files = m["files"].as_array_mut().unwrap();
    files.extend([listed(climbing), listed(&absolute), listed(linked)]);
    write_manifest(&snapshot, &m);

    let verified = pcrecon(&["verify", snapshot.to_str().unwrap()], &[]);
    assert_eq!(verified.code, 1, "a manifest that lists files outside its snapshot fails: {}", verified.stdout);
    assert!(!verified.stdout.contains(": ok ("), "{}", verified.stdout);
    let found = problems(&verified.stdout);
    assert_eq!(found.len(), 3, "{}", verified.stdout);
    for (path, why) in [
        (climbing, "it climbs out of the snapshot with `..`"),
        (absolute.as_str(), "an absolute path"),
        (linked, "it resolves outside the snapshot"),
    ] {
        assert!(verified.stdout.contains(&format!("outside  {path}: {why}; not read")), "{path}: {}", verified.stdout);
    }
}

#[test]
fn verify_of_an_output_folder_stops_at_the_first_unreadable_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = emulator();
    let snapshots = published(&emulator, dir.path(), "", 3);
    let out = dir.path().join("out");
    std::fs::write(snapshots[0].join("manifest.json"), "{ not a manifest").unwrap();
    let (dataset, currency, column, _, _) = edit_a_control_total(&snapshots[2]);
    // A folder named like a snapshot, in view without a manifest.
    let bare = out.join("20990101T000000Z");
    std::fs::create_dir_all(bare.join("invoices")).unwrap();

    let verified = pcrecon(&["verify", out.to_str().unwrap()], &[]);
    assert_eq!(verified.code, 1, "{}\n{}", verified.stdout, verified.stderr);
    let at = |snapshot: &Path, text: &str| format!("{}: {text}", snapshot.display());
    assert!(verified.stdout.contains(&at(&snapshots[0], "cannot verify: ")), "{}", verified.stdout);
    assert!(verified.stdout.contains(&at(&snapshots[0], "not verified (")), "{}", verified.stdout);
    assert!(verified.stdout.contains(&at(&snapshots[1], "ok (")), "the next snapshot is verified: {}", verified.stdout);
    assert!(
        verified.stdout.contains(&at(&snapshots[2], &format!("total    {dataset} {currency} {column}: "))),
        "and the one after it: {}",
        verified.stdout
    );
    assert!(
        verified.stdout.contains(&at(&bare, "cannot verify: a snapshot folder without manifest.json")),
        "{}",
        verified.stdout
    );
    assert_eq!(problems(&verified.stdout).len(), 3, "{}", verified.stdout);
}

/// Hidden entries of a folder (staging folders).
fn hidden(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    names.sort();
    names
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn a_killed_diff_leaves_a_hidden_staging_folder_that_later_diffs_never_remove() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = emulator();
    let mut snapshots = published(&emulator, dir.path(), "", 2);
    let out = dir.path().join("out");
    let diffs = out.join("diffs");
    let previous = ["diff", "--previous", out.to_str().unwrap()];

    let killed = pcrecon(&previous, &[("PCRECON_ABORT_AT", "diff")]);
    assert_eq!(killed.code, -1, "{}", killed.stderr);
    assert!(killed.stderr.contains("aborting at diff"), "{}", killed.stderr);
    let first = format!("{}-to-{}", name(&snapshots[0]), name(&snapshots[1]));
    let left = hidden(&diffs);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with(&format!(".{first}.tmp-")), "{left:?}");
    assert!(!diffs.join(&first).exists(), "nothing half-written in view");

    // The next night: another snapshot, another pair, the same diffs folder.
    snapshots.extend(published(&emulator, dir.path(), "", 1));
    let next = pcrecon(&previous, &[]);
    assert_eq!(next.code, 0, "{}\n{}", next.stdout, next.stderr);
    let second = format!("{}-to-{}", name(&snapshots[1]), name(&snapshots[2]));
    assert!(diffs.join(&second).join("diff_changes/part-00000.parquet").is_file());
    assert_eq!(hidden(&diffs), Vec::<String>::new(), "the killed diff's staging folder is gone");

    // Killed again into the same destination, then run again: nothing left, and the same bytes
    // as a clean diff of the same pair.
    let killed = pcrecon(&previous, &[("PCRECON_ABORT_AT", "diff")]);
    assert_eq!(killed.code, -1, "{}", killed.stderr);
    assert_eq!(hidden(&diffs).len(), 1);
    assert_eq!(pcrecon(&previous, &[]).code, 0);
    assert_eq!(hidden(&diffs), Vec::<String>::new());
    let clean = dir.path().join("clean");
    let args =
        ["diff", snapshots[1].to_str().unwrap(), snapshots[2].to_str().unwrap(), "--out", clean.to_str().unwrap()];
    assert_eq!(pcrecon(&args, &[]).code, 0);
    assert_eq!(digest_tree(&diffs.join(&second)), digest_tree(&clean));
}

#[test]
fn diff_on_a_corrupt_parquet_exits_6_instead_of_5() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = emulator();
    // A snapshot of the invoices alone, then one of everything: every line-item file is new.
    let before = published(&emulator, &dir.path().join("a"), "[extract]\ndatasets = [\"invoices\"]\n", 1).remove(0);
    let after = published(&emulator, &dir.path().join("b"), "", 1).remove(0);
    let m = manifest(&after);
    let corrupt = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .find(|p| p.starts_with("billed_recon_line_items/") && p.ends_with(".parquet"))
        .unwrap()
        .to_owned();
    let path = after.join(&corrupt);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();

    let diff_out = dir.path().join("diff");
    let args = ["diff", before.to_str().unwrap(), after.to_str().unwrap(), "--out", diff_out.to_str().unwrap()];
    let diff = pcrecon(&args, &[]);
    assert_eq!(diff.code, 5, "unreadable input is bad data: {}", diff.stderr);
    assert!(diff.stderr.contains(&path.display().to_string()), "names the file: {}", diff.stderr);
    assert!(!diff_out.exists(), "nothing is published");
}

/// A minisign key pair made by minisign itself (`-W`: no password): (secret, public).
fn minisign_keys(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (secret, public) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.pub")));
    let made = std::process::Command::new("minisign")
        .args(["-G", "-W", "-f", "-p"])
        .arg(&public)
        .arg("-s")
        .arg(&secret)
        .output()
        .expect("minisign is installed (.ci/run installs it)");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    (secret, public)
}

/// `minisign -Vm manifest.json -p KEY`: whether minisign accepts the snapshot's signature.
fn minisign_accepts(snapshot: &Path, public: &Path) -> bool {
    let checked = std::process::Command::new("minisign")
        .args(["-V", "-q", "-m"])
        .arg(snapshot.join("manifest.json"))
        .arg("-p")
        .arg(public)
        .output()
        .unwrap();
    checked.status.success()
}

#[test]
fn an_unsigned_manifest_could_be_forged_a_signed_one_checks_with_its_key_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = minisign_keys(dir.path(), "ours");
    let (_, other) = minisign_keys(dir.path(), "theirs");
    let emulator = emulator();
    let extra = format!("[output]\nsigning_key_file = {:?}\n", secret.to_str().unwrap());
    let snapshot = published(&emulator, &dir.path().join("case"), &extra, 1).remove(0);
    assert!(snapshot.join("manifest.json.minisig").is_file());
    assert!(minisign_accepts(&snapshot, &public), "minisign itself checks the signature");
    assert!(!minisign_accepts(&snapshot, &other));

    let ours = pcrecon(&["verify", snapshot.to_str().unwrap(), "--public-key", public.to_str().unwrap()], &[]);
    assert_eq!(ours.code, 0, "{}{}", ours.stdout, ours.stderr);
    assert!(ours.stdout.contains("signed by key"), "{}", ours.stdout);
    let theirs = pcrecon(&["verify", snapshot.to_str().unwrap(), "--public-key", other.to_str().unwrap()], &[]);
    assert_eq!(theirs.code, 1, "{}", theirs.stdout);
    assert!(problems(&theirs.stdout).iter().any(|l| l.contains("signature not valid for key")), "{}", theirs.stdout);
    let unchecked = pcrecon(&["verify", snapshot.to_str().unwrap()], &[]);
    assert_eq!(unchecked.code, 0);
    assert!(unchecked.stdout.contains("not checked: give --public-key"), "{}", unchecked.stdout);

    // The manifest records what made it and what each dataset's files hold.
    let m = manifest(&snapshot);
    assert_eq!(m["provenance"]["tenant_id"], "partner-tenant");
    assert_eq!(m["provenance"]["pcrecon_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(m["provenance"]["routing"]["billed_recon_line_items"], "auto");
    let columns = m["datasets"]["billed_recon_line_items"]["columns"].as_array().unwrap();
    assert!(columns.iter().any(|c| c["name"] == "is_duplicate" && c["type"] == "Boolean"), "{columns:?}");

    // An edited control total breaks the signature as well as the sums; so does re-signing with
    // another key.
    edit_a_control_total(&snapshot);
    assert!(!minisign_accepts(&snapshot, &public));
    let edited = pcrecon(&["verify", snapshot.to_str().unwrap(), "--public-key", public.to_str().unwrap()], &[]);
    assert_eq!(edited.code, 1);
    let found = problems(&edited.stdout);
    assert!(found.iter().any(|l| l.contains("signature not valid")), "{}", edited.stdout);
    assert!(found.iter().any(|l| l.contains("total ")), "{}", edited.stdout);

    // A snapshot without a signature fails a check that asks for one.
    std::fs::remove_file(snapshot.join("manifest.json.minisig")).unwrap();
    let unsigned = pcrecon(&["verify", snapshot.to_str().unwrap(), "--public-key", public.to_str().unwrap()], &[]);
    assert!(problems(&unsigned.stdout).iter().any(|l| l.contains("signature missing")), "{}", unsigned.stdout);
}

#[test]
fn a_signing_key_that_cannot_be_read_stops_the_run_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = emulator();
    let case = dir.path().join("case");
    std::fs::create_dir_all(&case).unwrap();
    std::fs::write(case.join("bad.key"), "untrusted comment: not a key\nAAAA\n").unwrap();
    let config = write_config(&emulator, &case, "[output]\nsigning_key_file = \"bad.key\"\n");
    let finished = run(&config, &[], &[]);
    assert_eq!(finished.code, 2, "a configuration error: {}", finished.stderr);
    assert!(finished.stderr.contains("output.signing_key_file") && finished.stderr.contains("bad.key"));
    assert!(!finished.stderr.contains("AAAA"), "no key material in the message");
    assert!(!case.join("out").join("LATEST").exists(), "nothing published");
}

#[test]
fn verify_trusts_the_manifest_a_tie_out_with_its_mismatches_counted_as_ok_passes() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = emulator();
    let snapshot = published(&emulator, dir.path(), "", 1).remove(0);
    let mut m = manifest(&snapshot);
    let mismatches = m["checks"]["tie_out"]["mismatch"].as_u64().expect("the sample world plants mismatches");
    let ok = m["checks"]["tie_out"]["ok"].as_u64().unwrap();
    m["checks"]["tie_out"]["mismatch"] = json!(0);
    m["checks"]["tie_out"]["ok"] = json!(ok + mismatches);
    let matched = m["checks"]["match:billed_recon_line_items"]["matched"].as_u64().unwrap();
    m["checks"]["match:billed_recon_line_items"]["matched"] = json!(matched + 1);
    write_manifest(&snapshot, &m);
    let verified = pcrecon(&["verify", snapshot.to_str().unwrap()], &[]);
    assert_eq!(verified.code, 1, "{}", verified.stdout);
    let found = problems(&verified.stdout);
    for expected in [
        format!("check    tie_out mismatch: manifest says 0, the files hold {mismatches}"),
        format!("check    tie_out ok: manifest says {}, the files hold {ok}", ok + mismatches),
        format!(
            "check    match:billed_recon_line_items matched: manifest says {}, the files hold {matched}",
            matched + 1
        ),
    ] {
        assert!(found.iter().any(|l| l.ends_with(&expected)), "{expected}\n{}", verified.stdout);
    }
    assert_eq!(found.len(), 3, "{}", verified.stdout);
}

/// Adds `delta` (unscaled) to `column` of the first row of the first Parquet file of `dataset`
/// whose `is_duplicate` is false, rewrites the file, and makes the manifest agree with it: the
/// file's bytes and SHA-256, and the dataset's control total. Returns that row's invoice.
fn rewrite_a_line(snapshot: &Path, dataset: &str, column: &str, delta: i128) -> String {
    use arrow_array::{Array, ArrayRef, BooleanArray, Decimal128Array, RecordBatch, StringArray};
    use std::sync::Arc;
    let mut m = manifest(snapshot);
    let files = m["files"].as_array_mut().unwrap();
    let entry = files
        .iter_mut()
        .find(|f| f["path"].as_str().unwrap().starts_with(&format!("{dataset}/")))
        .expect("a Parquet file of the dataset");
    let path = snapshot.join(entry["path"].as_str().unwrap());
    let file = std::fs::File::open(&path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    let (mut edited, mut invoice, mut currency, mut scale) = (Vec::new(), String::new(), String::new(), 0);
    for batch in batches {
        let at = batch.schema().index_of(column).unwrap();
        let flags: &BooleanArray = batch.column_by_name("is_duplicate").unwrap().as_any().downcast_ref().unwrap();
        let amounts: &Decimal128Array = batch.column(at).as_any().downcast_ref().unwrap();
        let target = (0..batch.num_rows()).find(|&i| invoice.is_empty() && !flags.value(i) && !amounts.is_null(i));
        let Some(i) = target else {
            edited.push(batch);
            continue;
        };
        let text = |name: &str| {
            let a: &StringArray = batch.column_by_name(name).unwrap().as_any().downcast_ref().unwrap();
            a.value(i).to_owned()
        };
        (invoice, currency, scale) = (text("invoice_id"), text("billing_currency"), amounts.scale());
        let values: Decimal128Array = (0..amounts.len())
            .map(|r| (!amounts.is_null(r)).then(|| amounts.value(r) + if r == i { delta } else { 0 }))
            .collect::<Decimal128Array>()
            .with_precision_and_scale(amounts.precision(), amounts.scale())
            .unwrap();
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        columns[at] = Arc::new(values);
        edited.push(RecordBatch::try_new(batch.schema(), columns).unwrap());
    }
    let out = std::fs::File::create(&path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(out, edited[0].schema(), None).unwrap();
    for batch in &edited {
        writer.write(batch).unwrap();
    }
    writer.close().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    entry["bytes"] = json!(bytes.len());
    entry["sha256"] = json!(format!("{:x}", Sha256::digest(&bytes)));
    let total = &mut m["datasets"][dataset]["control_totals"][&currency][column];
    let claimed: rust_decimal::Decimal = total.as_str().unwrap().parse().unwrap();
    let raised = claimed + rust_decimal::Decimal::from_i128_with_scale(delta, scale as u32);
    *total = json!(raised.to_string());
    write_manifest(snapshot, &m);
    invoice
}

#[test]
fn a_line_amount_edited_with_its_file_hash_and_control_total_made_to_agree_fails_the_recomputed_tie_out() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = emulator();
    let snapshot = published(&emulator, dir.path(), "", 1).remove(0);
    let clean = pcrecon(&["verify", snapshot.to_str().unwrap()], &[]);
    assert_eq!(clean.code, 0, "the untouched snapshot verifies, its tie-out recomputed: {}", clean.stdout);
    assert!(!clean.stdout.contains("tie-out not recomputed"), "{}", clean.stdout);

    // One minor unit of a two-digit currency, at the amount scale (10): 10^8.
    let invoice = rewrite_a_line(&snapshot, "billed_recon_line_items", "total_for_customer", 100_000_000);
    let verified = pcrecon(&["verify", snapshot.to_str().unwrap()], &[]);
    assert_eq!(verified.code, 1, "{}", verified.stdout);
    let found = problems(&verified.stdout);
    assert!(
        !found.is_empty() && found.iter().all(|l| l.contains("tie-out  ")),
        "only the tie-out: {}",
        verified.stdout
    );
    let line = found
        .iter()
        .find(|l| l.contains(&format!("tie-out  {} invoice: reconciliation says", invoice.to_uppercase())))
        .unwrap_or_else(|| panic!("names the invoice {invoice}: {}", verified.stdout));
    assert!(line.contains("lines_total") && line.contains("difference"), "{line}");
}
