//! `pcrecon run --from-raw`: a snapshot rebuilt from a raw archive, without the API.

use crate::helpers::{Replayed, V1_ONLY, bin, data, latest, pcrecon, run, run_then_replay, samples};

#[test]
fn a_snapshot_rebuilt_from_its_raw_archive_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let world = samples();
    // Restarted sequences and retried pages end up in the archive too.
    let args =
        ["--world", world.to_str().unwrap(), "--page-size", "40", "--faults", "expired_continuation=0.1,500=0.05"];
    let Replayed { config, raw, first, replay } = run_then_replay(dir.path(), &args, V1_ONLY);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let index = std::fs::read_to_string(raw.join("index.jsonl")).unwrap();
    assert!(index.contains("\"event\":\"restart\""), "the faults restarted a sequence");
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    assert_eq!(data(&latest(&dir.path().join("replayed"))), data(&latest(&dir.path().join("out"))));

    // A page that is not what was archived fails the replay, naming the index line.
    let page = index.lines().find(|l| l.contains("billed_recon_line_items") && l.contains("\"page\"")).unwrap();
    let file: serde_json::Value = serde_json::from_str(page).unwrap();
    let path = raw.join(file["file"].as_str().unwrap());
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, b"{\"items\":[]}").unwrap();
    gz.finish().unwrap();
    let bad = run(&config, &["--from-raw", raw.to_str().unwrap()], &[]);
    assert_eq!(bad.code, 5, "{}", bad.stderr);
    assert!(bad.stderr.contains("index.jsonl line") && bad.stderr.contains("SHA-256"), "{}", bad.stderr);
}

#[test]
fn an_auditor_checks_a_raw_archive_and_rebuilds_from_it_without_a_secret_or_the_operators_folder() {
    let dir = tempfile::tempdir().unwrap();
    let world = samples();
    let Replayed { config, raw, first, replay } =
        run_then_replay(dir.path(), &["--world", world.to_str().unwrap()], V1_ONLY);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    let operator = dir.path().join("replayed");
    let before = crate::helpers::digest_tree(&operator);

    // The archive verifies as it is, without rebuilding anything.
    let checked = pcrecon(&["verify", raw.to_str().unwrap()], &[]);
    assert_eq!(checked.code, 0, "{}{}", checked.stdout, checked.stderr);
    assert!(checked.stdout.contains("a raw archive:") && checked.stdout.contains(": ok ("), "{}", checked.stdout);

    // A rebuild needs no secret, and --out keeps it out of the configured folder.
    let audit = dir.path().join("audit");
    let rebuilt = std::process::Command::new(bin())
        .args(["run", "--config", config.to_str().unwrap(), "--from-raw", raw.to_str().unwrap(), "--out"])
        .arg(&audit)
        .env_remove("PCRECON_CLIENT_SECRET")
        .output()
        .unwrap();
    assert!(rebuilt.status.success(), "{}", String::from_utf8_lossy(&rebuilt.stderr));
    assert_eq!(data(&latest(&audit)), data(&latest(&operator)), "the same snapshot");
    assert_eq!(crate::helpers::digest_tree(&operator), before, "the operator's folder and LATEST are untouched");
    // A run that calls the API still needs its secret.
    let fetching = std::process::Command::new(bin())
        .args(["run", "--config", config.to_str().unwrap(), "--out"])
        .arg(&audit)
        .env_remove("PCRECON_CLIENT_SECRET")
        .output()
        .unwrap();
    assert_eq!(fetching.status.code(), Some(2), "{}", String::from_utf8_lossy(&fetching.stderr));

    // A page changed, a page removed, a file slipped in: each is named.
    let index = std::fs::read_to_string(raw.join("index.jsonl")).unwrap();
    let pages: Vec<String> = index
        .lines()
        .filter(|l| l.contains("\"event\":\"page\""))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["file"].as_str().unwrap().to_owned())
        .collect();
    let (changed, removed) = (&pages[0], &pages[1]);
    let mut gz =
        flate2::write::GzEncoder::new(std::fs::File::create(raw.join(changed)).unwrap(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, b"{\"items\":[]}").unwrap();
    gz.finish().unwrap();
    std::fs::remove_file(raw.join(removed)).unwrap();
    std::fs::write(raw.join("pages/stray.json.gz"), b"x").unwrap();
    let tampered = pcrecon(&["verify", raw.to_str().unwrap()], &[]);
    assert_eq!(tampered.code, 1, "{}", tampered.stdout);
    for expected in [
        format!("archive  {changed}: SHA-256"),
        format!("archive  {removed}: "),
        "archive  pages/stray.json.gz: not in the index".to_owned(),
    ] {
        assert!(tampered.stdout.contains(&expected), "{expected}\n{}", tampered.stdout);
    }
    // An index cut short is not the record of a finished run.
    let cut: String = index.lines().take(3).map(|l| format!("{l}\n")).collect();
    std::fs::write(raw.join("index.jsonl"), cut).unwrap();
    let incomplete = pcrecon(&["verify", raw.to_str().unwrap()], &[]);
    assert_eq!(incomplete.code, 1, "{}", incomplete.stdout);
    assert!(incomplete.stdout.contains("incomplete"), "{}", incomplete.stdout);
}
