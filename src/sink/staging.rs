//! The one atomic publish: everything is written into a hidden staging folder beside its target,
//! fsynced, and put in place by rename, so a reader sees the previous folder or the new one,
//! never half of one.
//!
//! In: a target folder. Out: that folder, published. A [`Staging`] dropped before it is
//! published is removed. Replacing a folder takes two renames (old aside, new in place); a crash
//! between them is repaired by the next staging of the same target, which puts the old folder
//! back. It does not decide what goes inside (the writers do), and it imports nothing of the
//! crate but its crash points: the emulator's world generator publishes through it as well.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// A hidden folder that becomes its target when everything in it is written.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    target: PathBuf,
    published: bool,
}

fn hidden(parent: &Path, name: &str, kind: &str) -> PathBuf {
    parent.join(format!(".{name}.{kind}-{}", std::process::id()))
}

fn parent_of(target: &Path) -> &Path {
    target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

fn name_of(target: &Path) -> String {
    target.file_name().map_or_else(|| "output".to_owned(), |n| n.to_string_lossy().into_owned())
}

impl Staging {
    /// A fresh staging folder for `target` (`.<name>.tmp-<pid>` beside it). A target that a
    /// crash left moved aside (`.<name>.old-<pid>`) is put back first.
    pub fn beside(target: &Path) -> io::Result<Staging> {
        let parent = parent_of(target);
        fs::create_dir_all(parent)?;
        let name = name_of(target);
        if !target.exists() {
            let aside = format!(".{name}.old-");
            for entry in fs::read_dir(parent)?.flatten() {
                if entry.file_name().to_string_lossy().starts_with(&aside) {
                    fs::rename(entry.path(), target)?;
                    break;
                }
            }
        }
        let own = format!(".{name}.tmp-");
        for entry in fs::read_dir(parent)?.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.starts_with(&own) && is_abandoned(&file) {
                fs::remove_dir_all(entry.path())?;
            }
        }
        let dir = hidden(parent, &name, "tmp");
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(&dir)?;
        Ok(Staging { dir, target: target.to_path_buf(), published: false })
    }

    /// The folder to write into.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Makes every file and folder inside durable, then puts the folder in place (an existing
    /// target is moved aside first and removed once the new one is in place); returns the target.
    pub fn publish(mut self) -> io::Result<PathBuf> {
        sync_tree(&self.dir)?;
        let parent = parent_of(&self.target).to_path_buf();
        let aside = hidden(&parent, &name_of(&self.target), "old");
        let replacing = self.target.exists();
        if replacing {
            fs::rename(&self.target, &aside)?;
        }
        crate::failpoint::hit("swap");
        fs::rename(&self.dir, &self.target)?;
        self.published = true;
        sync_dir(&parent)?;
        if replacing {
            fs::remove_dir_all(&aside)?;
        }
        Ok(self.target.clone())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Whether a folder name is a staging folder (`.<name>.tmp-<pid>`) of a process that is gone.
pub fn is_abandoned(name: &str) -> bool {
    match name.strip_prefix('.').and_then(|n| n.rsplit_once(".tmp-")) {
        Some((_, pid)) => !pid.parse::<u32>().is_ok_and(super::lock::process_alive),
        None => false,
    }
}

/// Points `out/LATEST` at `id`: written beside, fsynced, renamed into place, the folder fsynced.
pub fn point_latest(out: &Path, id: &str) -> io::Result<()> {
    let latest = out.join(".LATEST.tmp");
    fs::write(&latest, format!("{id}\n"))?;
    fs::File::open(&latest)?.sync_all()?;
    fs::rename(&latest, out.join("LATEST"))?;
    sync_dir(out)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// fsyncs every file below `dir`, then every folder, deepest first.
fn sync_tree(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            sync_tree(&path)?;
        } else {
            fs::File::open(&path)?.sync_all()?;
        }
    }
    sync_dir(dir)
}

/// Replaces the file `path` with `bytes` whole: written beside it (`.<name>.tmp-<pid>`) with
/// permissions `mode` from its creation, synced, renamed over it, and the folder synced. A reader
/// finds the old file or the new one, never half of one; a failure leaves the old file and no
/// stray copy.
pub fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = parent_of(path);
    let beside = hidden(dir, &name_of(path), "tmp");
    let written = (|| {
        let _ = fs::remove_file(&beside);
        let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&beside)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&beside, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&beside);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_is_replaced_whole_and_an_unpublished_one_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let first = Staging::beside(&target).unwrap();
        fs::write(first.path().join("a"), "1").unwrap();
        first.publish().unwrap();
        let second = Staging::beside(&target).unwrap();
        fs::write(second.path().join("b"), "2").unwrap();
        second.publish().unwrap();
        assert!(!target.join("a").exists() && target.join("b").exists());
        let dropped = Staging::beside(&target).unwrap();
        let staged = dropped.path().to_path_buf();
        drop(dropped);
        assert!(!staged.exists());
        let names: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["out"], "nothing hidden is left beside it");
    }

    #[test]
    fn a_target_left_aside_by_a_crash_is_put_back() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("diff");
        fs::create_dir_all(dir.path().join(".diff.old-4242")).unwrap();
        fs::write(dir.path().join(".diff.old-4242/kept"), "previous").unwrap();
        let staging = Staging::beside(&target).unwrap();
        assert_eq!(fs::read_to_string(target.join("kept")).unwrap(), "previous");
        drop(staging);
    }
}
