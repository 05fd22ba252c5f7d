//! Crash points for testing crash safety: `PCRECON_ABORT_AT=<point>[:<n>]` aborts the process
//! (as `kill -9` would: no destructor, no flush) the `n`-th time (default: first) a run passes
//! `<point>`. Unset, a point costs one load of an initialised `OnceLock`.
//!
//! Points: `page` (after the snapshot took a page), `sequence` (after a fetched sequence is
//! decoded and complete in the page cache), `blob` (after a v2 export file arrived, before it is checked and
//! used), `finish` (before the snapshot's final writes), `manifest` (after
//! `manifest.json`), `publish` (after the snapshot folder is renamed into place, before `LATEST`),
//! `latest` (after `LATEST`, before the cache and retention are tidied), `swap` (a folder being
//! replaced is moved aside, the new one not in place yet), `diff` (`pcrecon diff` has written
//! one of its datasets), `upload` (a file of the snapshot is in the object store),
//! `store_latest` (the object store's `LATEST` is written, before its prefix is tidied).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

struct Armed {
    point: String,
    at: u64,
    seen: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let text = std::env::var("PCRECON_ABORT_AT").ok()?;
            let (point, at) = match text.split_once(':') {
                Some((p, n)) => (p.to_owned(), n.parse().ok()?),
                None => (text, 1),
            };
            Some(Armed { point, at, seen: AtomicU64::new(0) })
        })
        .as_ref()
}

/// Passes a crash point.
pub fn hit(point: &str) {
    if let Some(armed) = armed().filter(|a| a.point == point)
        && armed.seen.fetch_add(1, Ordering::SeqCst) + 1 == armed.at
    {
        eprintln!("pcrecon: aborting at {point} ({}), as PCRECON_ABORT_AT asks", armed.at);
        std::process::abort();
    }
}
