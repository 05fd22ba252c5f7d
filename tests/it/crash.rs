//! `kill -9` from outside: `pcrecon run` is killed with SIGKILL at seeded random instants spread
//! over a run's duration, each run in the same output folder picking up what the killed ones
//! left. Whatever instant it dies at, no partial snapshot is in view, and the run after the last
//! kill publishes the bytes of an uninterrupted run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::helpers::{Emulator, bin, data, latest, pcrecon, run, samples, write_config};

/// The kill instants are drawn from this seed: a failure names its kill and delay, and the same
/// seed draws the same delays again.
const SEED: u64 = 0x6b69_6c6c_2d39;

/// Kills, each at a delay drawn from the duration of a clean run.
const KILLS: usize = 12;

/// What readers of `out` see: every visible entry is `LATEST` or a snapshot folder, `pcrecon
/// verify` finds every snapshot folder whole, and `LATEST` names one of them.
fn assert_no_partial_snapshot(out: &Path, context: &str) {
    if !out.exists() {
        return;
    }
    let mut visible: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && n != "LATEST")
        .collect();
    visible.sort();
    for name in &visible {
        assert!(out.join(name).join("manifest.json").is_file(), "{context}: {name} is in view without a manifest");
    }
    if let Ok(text) = std::fs::read_to_string(out.join("LATEST")) {
        let id = text.trim();
        assert!(visible.iter().any(|v| v == id), "{context}: LATEST names {id:?}, not a snapshot in view: {visible:?}");
    }
    if visible.is_empty() {
        return;
    }
    let verified = pcrecon(&["verify", out.to_str().unwrap()], &[]);
    assert_eq!(
        verified.code, 0,
        "{context}: a snapshot in view does not verify:\n{}{}",
        verified.stdout, verified.stderr
    );
    for name in &visible {
        let ok = format!("{}: ok (", out.join(name).display());
        assert!(verified.stdout.contains(&ok), "{context}: {name} was verified: {}", verified.stdout);
    }
}

#[test]
fn a_run_killed_with_sigkill_at_random_instants_shows_no_partial_snapshot_and_reruns_to_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    // The v2 export answers at once, so the run's time is spent working rather than waiting.
    let emulator =
        Emulator::start(&["--world", samples().to_str().unwrap(), "--export-retry-after", "0", "--export-polls", "0"]);
    let extra = "[output]\nkeep_snapshots = 3\n";

    // A clean run in a fresh folder: what every run must publish, and how long one takes.
    let clean_dir = dir.path().join("clean");
    std::fs::create_dir_all(&clean_dir).unwrap();
    let clean_config = write_config(&emulator, &clean_dir, extra);
    let started = Instant::now();
    let clean = run(&clean_config, &[], &[]);
    let took = started.elapsed();
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    let reference = data(&latest(&clean_dir.join("out")));

    let case = dir.path().join("killed");
    std::fs::create_dir_all(&case).unwrap();
    let config = write_config(&emulator, &case, extra);
    let out = case.join("out");
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let longest = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
    for kill in 0..KILLS {
        let delay = Duration::from_millis(rng.random_range(0..=longest));
        // Every other run fetches billed invoices again rather than carrying them from the cache.
        let mut args = vec!["run", "--config", config.to_str().unwrap()];
        if kill % 2 == 1 {
            args.push("--refresh");
        }
        let mut child = Command::new(bin())
            .args(&args)
            .env("PCRECON_CLIENT_SECRET", "test-secret")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        // SIGKILL: no destructor, no flush, no unlock but the kernel's. A run that already
        // finished is reaped as it is.
        let _ = child.kill();
        let _ = child.wait();
        assert_no_partial_snapshot(&out, &format!("kill {kill} after {delay:?} (seed {SEED:#x})"));
    }

    let rerun = run(&config, &[], &[]);
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    assert_no_partial_snapshot(&out, "the rerun");
    assert_eq!(data(&latest(&out)), reference, "the rerun publishes the bytes of an uninterrupted run");
}
