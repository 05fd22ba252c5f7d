//! One run per output folder: an exclusive advisory lock (`flock`) on `OUT/.pcrecon.lock`
//! (an object-store prefix has a lock object of the same name: see `store`).
//!
//! The kernel drops the lock when its process dies, however it dies, so a lock left by a killed
//! run is never a stale obstacle; the file still names the last holder, which is how a run that
//! takes over after a dead one says so in its log.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside the output folder.
pub const LOCK_FILE: &str = ".pcrecon.lock";

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// A live process holds it.
    #[error("another pcrecon run holds {at} ({holder}); try again when it has finished")]
    Busy {
        /// The lock file or object.
        at: String,
        /// What the file says of its holder.
        holder: String,
    },
    /// An object store refused or failed the lock's requests.
    #[error("cannot lock {object}: {message}")]
    Store {
        /// The lock object's URL.
        object: String,
        /// The store's answer.
        message: String,
    },
    /// The file could not be opened or written.
    #[error("cannot lock {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// Held for the whole run; dropping it releases the lock.
#[derive(Debug)]
pub struct OutputLock {
    file: File,
    path: PathBuf,
}

impl OutputLock {
    /// Takes the lock of `out` without waiting. The file then names this process.
    pub fn acquire(out: &Path, now: chrono::DateTime<chrono::Utc>) -> Result<OutputLock, LockError> {
        let path = out.join(LOCK_FILE);
        let io_err = |source| LockError::Io { path: path.clone(), source };
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io_err)?;
        let mut previous = String::new();
        let _ = file.read_to_string(&mut previous);
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = previous.trim();
                let holder = if holder.is_empty() { "holder unknown".to_owned() } else { holder.to_owned() };
                return Err(LockError::Busy { at: path.display().to_string(), holder });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(e)),
        }
        let holder = previous.trim();
        if !holder.is_empty() {
            // The previous holder is gone (the kernel released its lock), but it did not clear
            // the file: it was killed or crashed.
            tracing::warn!(event = "stale_lock_taken_over", lock = %path.display(), previous_holder = %holder);
        }
        let me = format!(
            "pid {} on {} since {}",
            std::process::id(),
            hostname(),
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        file.set_len(0).map_err(io_err)?;
        file.rewind().map_err(io_err)?;
        file.write_all(me.as_bytes()).map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
        Ok(OutputLock { file, path })
    }
}

impl Drop for OutputLock {
    /// A clean exit empties the file, so the next run knows nobody was killed holding it.
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
        tracing::debug!(event = "lock_released", lock = %self.path.display());
    }
}

/// Whether a process of this machine (this PID namespace) with this id is alive. Where `/proc`
/// cannot tell (not Linux), every process counts as alive: nothing is taken from a live run.
pub fn process_alive(pid: u32) -> bool {
    !Path::new("/proc/self").exists() || Path::new("/proc").join(pid.to_string()).exists()
}

/// This machine's name, as a lock names its holder.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this host".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = OutputLock::acquire(dir.path(), chrono::Utc::now()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert!(text.starts_with(&format!("pid {}", std::process::id())), "{text}");
        match OutputLock::acquire(dir.path(), chrono::Utc::now()) {
            Err(LockError::Busy { holder, .. }) => assert_eq!(holder, text),
            other => panic!("expected Busy, got {other:?}"),
        }
        drop(first);
        assert_eq!(std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap(), "");
        OutputLock::acquire(dir.path(), chrono::Utc::now()).unwrap();
    }

    #[test]
    fn a_dead_holders_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), "pid 999999 on elsewhere since 2026-01-01T02:00:00Z").unwrap();
        let lock = OutputLock::acquire(dir.path(), chrono::Utc::now()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert!(text.starts_with(&format!("pid {}", std::process::id())));
        drop(lock);
    }
}
