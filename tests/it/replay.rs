//! `pcrecon run --from-raw`: a snapshot rebuilt from a raw archive, without the API.

use crate::helpers::{Emulator, V1_ONLY, data, latest, pcrecon, samples, write_config};

#[test]
fn a_snapshot_rebuilt_from_its_raw_archive_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    let config = {
        // Restarted sequences and retried pages end up in the archive too.
        let emulator = Emulator::start(&[
            "--world",
            samples().to_str().unwrap(),
            "--page-size",
            "40",
            "--faults",
            "expired_continuation=0.1,500=0.05",
        ]);
        let config = write_config(&emulator, dir.path(), V1_ONLY);
        let run = pcrecon(&["run", "--config", config.to_str().unwrap(), "--keep-raw", raw.to_str().unwrap()], &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        config
    };
    let index = std::fs::read_to_string(raw.join("index.jsonl")).unwrap();
    assert!(index.contains("\"event\":\"restart\""), "the faults restarted a sequence");
    // The emulator is gone: a replay that called the API would fail.
    let text = std::fs::read_to_string(&config).unwrap().replace("[api]", "[output]\ndir = \"replayed\"\n[api]");
    std::fs::write(&config, text).unwrap();
    let replay = pcrecon(&["run", "--config", config.to_str().unwrap(), "--from-raw", raw.to_str().unwrap()], &[]);
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    assert_eq!(data(&latest(&dir.path().join("replayed"))), data(&latest(&dir.path().join("out"))));

    // A page that is not what was archived fails the replay, naming the index line.
    let page = index.lines().find(|l| l.contains("billed_recon_line_items") && l.contains("\"page\"")).unwrap();
    let file: serde_json::Value = serde_json::from_str(page).unwrap();
    let path = raw.join(file["file"].as_str().unwrap());
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, b"{\"items\":[]}").unwrap();
    gz.finish().unwrap();
    let bad = pcrecon(&["run", "--config", config.to_str().unwrap(), "--from-raw", raw.to_str().unwrap()], &[]);
    assert_eq!(bad.code, 5, "{}", bad.stderr);
    assert!(bad.stderr.contains("index.jsonl line") && bad.stderr.contains("SHA-256"), "{}", bad.stderr);
}
