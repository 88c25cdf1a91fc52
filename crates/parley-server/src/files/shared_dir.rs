//! What a file store needs when several processes (a cluster's nodes)
//! share its directory: a lock every node takes around every change, and
//! a temp directory of each node's own. It never decides what a change
//! means: `storage` does, holding this lock.

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
        let file =
            fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(root.join(LOCK_FILE))?;
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
