//! `pcrecon run --from-raw`: a snapshot rebuilt from a raw archive, without the API.

use crate::helpers::{Replayed, V1_ONLY, data, latest, run, run_then_replay, samples};

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
