//! The published snapshots of an output folder, and which of them retention removes.
//!
//! A snapshot is a folder named by its run id (`YYYYMMDDTHHMMSSZ`, `-2`… on a clash) holding a
//! `manifest.json`. Removal first renames it to a hidden `.<id>.deleting`, so a snapshot is never
//! seen half-deleted; a removal cut short is finished by the next run.

use std::io;
use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;

/// Which published snapshots are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The newest this many (at least two, so that the last change can always be diffed).
    pub keep_snapshots: usize,
    /// Also remove snapshots older than this many days (the newest two aside).
    pub keep_days: Option<u32>,
}

/// When a run id says its run started, if it is one.
pub fn run_time(id: &str) -> Option<NaiveDateTime> {
    let stamp = id.get(..16)?;
    let rest = &id[16..];
    if !(rest.is_empty() || rest.strip_prefix('-').is_some_and(|n| n.parse::<u32>().is_ok())) {
        return None;
    }
    NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").ok()
}

/// The order of run ids: by the time they name, then by their clash suffix (`-2` after none).
pub fn run_order(id: &str) -> Option<(NaiveDateTime, u32)> {
    Some((run_time(id)?, id.get(17..).and_then(|n| n.parse().ok()).unwrap_or(1)))
}

/// The published snapshots of `out`, oldest first.
pub fn snapshots(out: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(out) else { return Vec::new() };
    let mut found: Vec<(NaiveDateTime, u32, String, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_owned();
            let (time, clash) = run_order(&name)?;
            e.path().join("manifest.json").is_file().then(|| (time, clash, name, e.path()))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, _, name, path)| (name, path)).collect()
}

/// The snapshot `LATEST` names, if it names one that exists.
pub fn latest(out: &Path) -> Option<(String, PathBuf)> {
    let id = std::fs::read_to_string(out.join("LATEST")).ok()?.trim().to_owned();
    let path = out.join(&id);
    path.join("manifest.json").is_file().then_some((id, path))
}

/// Why retention removes a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// More snapshots than `keep_snapshots`.
    Count,
    /// Older than `keep_days`.
    Age,
}

impl Reason {
    /// The reason as logged.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Count => "count",
            Reason::Age => "age",
        }
    }
}

/// Which of the published snapshots `ids` (oldest first) retention removes, and why; never the
/// newest two, nor `keep` itself. The one rule for a local folder and an object-store prefix.
pub fn doomed<'a>(ids: &'a [String], retention: Retention, keep: &str, now: NaiveDateTime) -> Vec<(&'a str, Reason)> {
    let protected = ids.len().saturating_sub(retention.keep_snapshots.max(2));
    let newest_two = ids.len().saturating_sub(2);
    let mut doomed = Vec::new();
    for (index, id) in ids.iter().enumerate() {
        if id == keep || index >= newest_two {
            continue;
        }
        let too_old =
            retention.keep_days.zip(run_time(id)).is_some_and(|(days, at)| (now - at).num_days() > i64::from(days));
        if index < protected {
            doomed.push((id.as_str(), Reason::Count));
        } else if too_old {
            doomed.push((id.as_str(), Reason::Age));
        }
    }
    doomed
}

/// Removes the snapshots retention no longer keeps (see [`doomed`]). Returns the ids removed.
pub fn apply(out: &Path, retention: Retention, keep: &str, now: NaiveDateTime) -> io::Result<Vec<String>> {
    let ids: Vec<String> = snapshots(out).into_iter().map(|(id, _)| id).collect();
    let mut removed = Vec::new();
    for (id, reason) in doomed(&ids, retention, keep, now) {
        let hidden = out.join(format!(".{id}.deleting"));
        std::fs::rename(out.join(id), &hidden)?;
        std::fs::remove_dir_all(&hidden)?;
        tracing::info!(event = "snapshot_removed", snapshot = %id, reason = reason.name());
        removed.push(id.to_owned());
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(out: &Path, id: &str) {
        std::fs::create_dir_all(out.join(id)).unwrap();
        std::fs::write(out.join(id).join("manifest.json"), "{}").unwrap();
    }

    #[test]
    fn run_ids_are_recognised() {
        assert!(run_time("20261121T020000Z").is_some());
        assert!(run_time("20261121T020000Z-2").is_some());
        assert!(run_time("20261121T020000Z-x").is_none());
        assert!(run_time("diffs").is_none());
    }

    #[test]
    fn the_oldest_go_first_and_the_newest_two_stay() {
        let dir = tempfile::tempdir().unwrap();
        let ids =
            ["20261118T020000Z", "20261119T020000Z", "20261120T020000Z", "20261120T020000Z-2", "20261121T020000Z"];
        for id in ids {
            snapshot(dir.path(), id);
        }
        std::fs::create_dir_all(dir.path().join("20261101T020000Z")).unwrap(); // no manifest: not a snapshot
        let now = run_time("20261121T030000Z").unwrap();
        let by_count = Retention { keep_snapshots: 3, keep_days: None };
        let removed = apply(dir.path(), by_count, "20261121T020000Z", now).unwrap();
        assert_eq!(removed, ["20261118T020000Z", "20261119T020000Z"]);
        let by_age = Retention { keep_snapshots: 10, keep_days: Some(0) };
        let removed = apply(dir.path(), by_age, "20261121T020000Z", now).unwrap();
        assert_eq!(removed, ["20261120T020000Z"], "older than a day, and the newest two always stay");
        let left: Vec<String> = snapshots(dir.path()).into_iter().map(|(id, _)| id).collect();
        assert_eq!(left, ["20261120T020000Z-2", "20261121T020000Z"]);
        assert!(dir.path().join("20261101T020000Z").exists());
    }
}
