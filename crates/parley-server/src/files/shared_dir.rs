//! What a file store needs when several processes (a cluster's nodes)
//! share its directory: a lock every node takes around every change, and
//! the entries read back from disk, which are then the truth (each node's
//! in-memory index is only a cache of them). It never decides what a
//! change means: `storage` does, holding this lock.

use super::storage::Entry;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// The lock file in the store's root. `flock` on it: local file systems
/// and NFS (Linux emulates `flock` with NFS byte-range locks) both hold it
/// across processes.
const LOCK_FILE: &str = "lock";

/// The store's cross-process lock. Taken while the index mutex is held,
/// so one process's threads never meet here (a `flock` is shared by every
/// thread of the process that holds it).
pub struct DirLock {
    file: File,
}

/// Held: released when dropped.
pub struct DirGuard<'a>(&'a File);

impl Drop for DirGuard<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl DirLock {
    pub fn open(root: &Path) -> io::Result<DirLock> {
        let file = fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(root.join(LOCK_FILE))?;
        Ok(DirLock { file })
    }

    /// Waits for the other processes' changes to end, then holds the lock.
    pub fn hold(&self) -> io::Result<DirGuard<'_>> {
        self.file.lock()?;
        Ok(DirGuard(&self.file))
    }
}

/// This node's own temp directory under `tmp/`: its uploads in progress,
/// which no other node may clean up.
pub fn node_tmp(root: &Path, node: &str) -> PathBuf {
    root.join("tmp").join(node)
}

/// The entry stored under meta file `path`, if it is one for `name` (any
/// name when `None`) with a well-formed digest. A meta file appears and
/// changes only by rename, so a read sees one whole version.
pub fn read_entry(path: &Path, meta_name: &str) -> Option<Entry> {
    let bytes = fs::read(path).ok()?;
    let e: Entry = serde_json::from_slice(&bytes).ok()?;
    let ok = super::storage::meta_file_name(&e.name) == meta_name
        && e.sha256.len() == 64
        && e.sha256.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(e)
}

/// Every entry in `meta/`, as the directory holds them now.
pub fn read_all(root: &Path) -> io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for item in fs::read_dir(root.join("meta"))? {
        let item = item?;
        let name = item.file_name().to_string_lossy().to_string();
        if let Some(e) = read_entry(&item.path(), &name) {
            out.push(e);
        }
    }
    Ok(out)
}
