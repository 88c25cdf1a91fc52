//! The file store on disk, all-or-nothing.
//!
//! Layout under the store directory:
//!
//! ```text
//! blobs/<sha256 hex>        file contents, immutable once in place
//! meta/<sha256(name) hex>   one JSON entry per name: which blob, who, when
//! tmp/                      uploads in progress and entries being written
//! ```
//!
//! An upload streams into `tmp/`, is fsynced, then renamed into `blobs/`
//! under its digest; only then is the name's entry written to `tmp/`,
//! fsynced and renamed over `meta/...`. That last rename is the commit: a
//! reader sees the old entry or the new one, never a mix, and a crash at any
//! point leaves either the previous version or the new one. Start-up removes
//! `tmp/` leftovers and blobs no entry points to.
//!
//! User-supplied names never become paths: blobs are named by digest and
//! entries by a hash of the name, so no name can reach outside the store.
//! A download opens the blob an entry named at the time; an overwrite that
//! deletes that blob afterwards does not disturb the open file.
//!
//! Shared by a cluster's nodes ([`Store::open_shared`]), the directory is
//! the truth and the index a cache: every change happens under a lock all
//! nodes take (`shared_dir`), decides on what is on disk, and collects a
//! blob only when no entry on disk names it; a name is read from disk at
//! each request, a listing reads the whole directory, and each node stages
//! in a `tmp/<node>/` of its own, the only part of `tmp/` it cleans.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use thiserror::Error;

use super::shared_dir::{self, DirLock};

/// One stored file as listed by `GET /files`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub size: u64,
    /// Lower-case hex SHA-256 of the contents.
    pub sha256: String,
    pub uploaded_by: String,
    /// Unix seconds.
    pub modified: i64,
    /// The media type the uploader declared, if it was a usable one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The share link of this version, unless revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<ShareLink>,
}

/// A share link as stored: only the SHA-256 of its secret, so the store's
/// files (or a backup of them) do not hold working links.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShareLink {
    /// Lower-case hex SHA-256 of the secret in the URL.
    pub id: String,
    /// Unix seconds after which the link no longer works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
}

impl ShareLink {
    pub fn live_at(&self, now: i64) -> bool {
        self.expires.is_none_or(|t| now < t)
    }
}

/// What an upload says about itself, beside its bytes.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub uploaded_by: String,
    pub modified: i64,
    pub content_type: Option<String>,
    pub share: Option<ShareLink>,
}

/// What must hold at commit time for the upload to take effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// Replace whatever is there.
    None,
    /// Only if no file has this name (`If-None-Match: *`).
    CreateOnly,
    /// Only if the current version has this digest (`If-Match`).
    IfMatch(String),
}

#[derive(Debug, Error)]
pub enum CommitError {
    #[error("precondition failed")]
    Precondition(Option<Box<Entry>>),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// An upload written to `tmp/` and verified, waiting to be committed. The
/// temp file is removed if it is dropped uncommitted.
pub struct Staged {
    path: Option<PathBuf>,
    pub sha256: String,
    pub size: u64,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// A point in a staged upload (see `StagingWriter::checkpoint`).
pub struct Checkpoint {
    size: u64,
    hasher: Sha256,
}

/// Bytes written to a staged file between two starts of its write-back.
const WRITEBACK_STEP: u64 = 8 << 20;

/// Streams bytes into a temp file while hashing them.
pub struct StagingWriter {
    file: File,
    path: Option<PathBuf>,
    hasher: Sha256,
    size: u64,
    /// Bytes whose write to disk has been started (see `write`).
    written_back: u64,
}

impl StagingWriter {
    pub fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        self.file.write_all(chunk)?;
        // The disk starts on what arrived while the rest is still coming,
        // so the `fsync` in `finish` has only the tail left to wait for
        // (docs/BENCHMARKS.md, file transfers). Only a hint: an error
        // here leaves the work to the `fsync`, which reports it.
        if self.size - self.written_back >= WRITEBACK_STEP {
            let _ = crate::sys::start_writeback(&self.file, self.written_back, self.size - self.written_back);
            self.written_back = self.size;
        }
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Where the upload stands now, to come back to if what follows is
    /// refused (a resumable append over a limit).
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint { size: self.size, hasher: self.hasher.clone() }
    }

    /// Forgets everything written since `cp`: the file is cut back and the
    /// digest resumes from there.
    pub fn rollback(&mut self, cp: Checkpoint) -> io::Result<()> {
        self.file.set_len(cp.size)?;
        self.file.seek(SeekFrom::Start(cp.size))?;
        self.size = cp.size;
        self.written_back = self.written_back.min(cp.size);
        self.hasher = cp.hasher;
        Ok(())
    }

    /// Flushes and fsyncs the data; the digest is final.
    pub fn finish(mut self) -> io::Result<(Staged, [u8; 32])> {
        self.file.sync_all()?;
        let digest: [u8; 32] = self.hasher.clone().finalize().into();
        let path = self.path.take().expect("finish runs once");
        Ok((Staged { path: Some(path), sha256: hex::encode(digest), size: self.size }, digest))
    }
}

impl Drop for StagingWriter {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = fs::remove_file(path);
        }
    }
}

#[derive(Default)]
struct Index {
    by_name: HashMap<String, Entry>,
    /// Share link id → name.
    by_share: HashMap<String, String>,
    total_bytes: u64,
}

impl Index {
    fn insert(&mut self, e: Entry) -> Option<Entry> {
        let old = self.by_name.remove(&e.name);
        if let Some(old) = &old {
            self.forget(old);
        }
        if let Some(link) = &e.share {
            self.by_share.insert(link.id.clone(), e.name.clone());
        }
        self.total_bytes += e.size;
        self.by_name.insert(e.name.clone(), e);
        old
    }

    /// Makes `name` hold `entry`, or nothing.
    fn set(&mut self, name: &str, entry: Option<Entry>) {
        match entry {
            Some(e) => {
                if self.by_name.get(name) != Some(&e) {
                    self.insert(e);
                }
            }
            None => {
                if let Some(old) = self.by_name.remove(name) {
                    self.forget(&old);
                }
            }
        }
    }

    /// Drops what `old` added to the counters and the link map (its name
    /// may already hold a newer entry).
    fn forget(&mut self, old: &Entry) {
        self.total_bytes -= old.size;
        if let Some(link) = &old.share {
            self.by_share.remove(&link.id);
        }
    }
}

pub struct Store {
    root: PathBuf,
    /// Where uploads are staged: `tmp/`, or `tmp/<node>/` when shared.
    tmp: PathBuf,
    index: Mutex<Index>,
    /// Set when other processes share the directory.
    shared: Option<Shared>,
}

struct Shared {
    lock: DirLock,
}

fn meta_file_name(name: &str) -> String {
    hex::encode(Sha256::digest(name.as_bytes()))
}

/// The entry stored under meta file `path`, if it is one for `name` (any
/// name when `None`) with a well-formed digest. A meta file appears and
/// changes only by rename, so a read sees one whole version.
fn read_entry(path: &Path, meta_name: &str) -> Option<Entry> {
    let bytes = fs::read(path).ok()?;
    let e: Entry = serde_json::from_slice(&bytes).ok()?;
    let ok =
        meta_file_name(&e.name) == meta_name && e.sha256.len() == 64 && e.sha256.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(e)
}

/// Every entry in `meta/`, as the directory holds them now.
fn read_all(root: &Path) -> io::Result<Vec<Entry>> {
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

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Store {
    /// Opens the store, creating its directories, and cleans up after any
    /// crash: temp files go, entries whose blob is missing go, blobs no
    /// entry uses go.
    pub fn open(root: &Path) -> io::Result<Store> {
        Store::open_in(root, root.join("tmp"), None)
    }

    /// Opens a store whose directory other nodes (processes) share: node
    /// `node` stages in `tmp/<node>/` and cleans only that, and every
    /// change, the start-up clean-up included, holds the directory's lock.
    pub fn open_shared(root: &Path, node: &str) -> io::Result<Store> {
        fs::create_dir_all(root)?;
        let shared = Shared { lock: DirLock::open(root)? };
        Store::open_in(root, shared_dir::node_tmp(root, node), Some(shared))
    }

    fn open_in(root: &Path, tmp: PathBuf, shared: Option<Shared>) -> io::Result<Store> {
        for sub in ["blobs", "meta", "tmp"] {
            fs::create_dir_all(root.join(sub))?;
        }
        fs::create_dir_all(&tmp)?;
        let _held = match &shared {
            Some(s) => Some(s.lock.hold()?),
            None => None,
        };
        for item in fs::read_dir(&tmp)? {
            let item = item?;
            if item.file_type()?.is_file() || item.file_type()?.is_symlink() {
                fs::remove_file(item.path())?;
            }
        }
        let mut index = Index::default();
        for item in fs::read_dir(root.join("meta"))? {
            let item = item?;
            if !item.file_type()?.is_file() {
                continue;
            }
            let entry: Option<Entry> = fs::read(item.path()).ok().and_then(|b| serde_json::from_slice(&b).ok());
            let valid = entry.filter(|e| {
                meta_file_name(&e.name) == item.file_name().to_string_lossy()
                    && e.sha256.len() == 64
                    && e.sha256.bytes().all(|b| b.is_ascii_hexdigit())
                    && fs::symlink_metadata(root.join("blobs").join(&e.sha256))
                        .is_ok_and(|m| m.is_file() && m.len() == e.size)
            });
            match valid {
                Some(e) => {
                    index.insert(e);
                }
                None => {
                    tracing::warn!(path = %item.path().display(), "removing a damaged file-store entry");
                    fs::remove_file(item.path())?;
                }
            }
        }
        for item in fs::read_dir(root.join("blobs"))? {
            let item = item?;
            let name = item.file_name().to_string_lossy().to_string();
            if !index.by_name.values().any(|e| e.sha256 == name) {
                fs::remove_file(item.path())?;
            }
        }
        drop(_held);
        Ok(Store { root: root.to_path_buf(), tmp, index: Mutex::new(index), shared })
    }

    /// Whether other nodes share the directory.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// The directory's lock, when shared; nothing to hold otherwise.
    fn hold(&self) -> io::Result<Option<shared_dir::DirGuard<'_>>> {
        self.shared.as_ref().map(|s| s.lock.hold()).transpose()
    }

    /// `name`'s entry as the directory holds it now.
    fn on_disk(&self, name: &str) -> Option<Entry> {
        let meta_name = meta_file_name(name);
        read_entry(&self.root.join("meta").join(&meta_name), &meta_name).filter(|e| e.name == name)
    }

    /// `name`'s current entry: from disk when shared (brought into the
    /// index too), else from the index.
    fn current(&self, index: &mut Index, name: &str) -> Option<Entry> {
        if self.shared.is_none() {
            return index.by_name.get(name).cloned();
        }
        let now = self.on_disk(name);
        index.set(name, now.clone());
        now
    }

    /// Brings `name` up to date from disk (another node changed it).
    pub fn refresh(&self, name: &str) {
        let mut index = self.lock();
        self.current(&mut index, name);
    }

    /// Reads the whole directory again (a shared store's node that may
    /// have missed other nodes' changes: back in contact after a split).
    pub fn reload(&self) -> io::Result<()> {
        let all = read_all(&self.root)?;
        let mut fresh = Index::default();
        for e in all {
            fresh.insert(e);
        }
        *self.lock() = fresh;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, name: &str) -> Option<Entry> {
        let mut index = self.lock();
        self.current(&mut index, name)
    }

    /// Every entry, sorted by name (shared: as the directory holds them).
    pub fn list(&self) -> Vec<Entry> {
        if self.shared.is_some() {
            if let Err(e) = self.reload() {
                tracing::warn!(error = %e, "reading the shared file store's entries");
            }
        }
        let mut v: Vec<Entry> = self.lock().by_name.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The entry a share link id points to, live or not.
    pub fn by_share(&self, id: &str) -> Option<Entry> {
        let index = self.lock();
        index.by_share.get(id).and_then(|name| index.by_name.get(name)).cloned()
    }

    /// The entry of `name` if share link `id` is its link (live or not):
    /// shared, as the directory holds it, so a link made or revoked on
    /// another node a moment ago counts already.
    pub fn by_link(&self, id: &str, name: &str) -> Option<Entry> {
        if self.shared.is_some() {
            return self.get(name).filter(|e| e.share.as_ref().is_some_and(|s| s.id == id));
        }
        self.by_share(id).filter(|e| e.name == name)
    }

    pub fn total_bytes(&self) -> u64 {
        self.lock().total_bytes
    }

    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.root.join("blobs").join(sha256)
    }

    /// Free bytes on the store's file system for an unprivileged writer.
    pub fn free_bytes(&self) -> io::Result<u64> {
        crate::sys::free_bytes(&self.root)
    }

    /// A new temp file in `tmp/` to stream an upload into.
    pub fn stage(&self) -> io::Result<StagingWriter> {
        let suffix: u64 = rand::random();
        let path = self.tmp.join(format!("upload-{suffix:016x}.part"));
        let file = fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
        Ok(StagingWriter { file, path: Some(path), hasher: Sha256::new(), size: 0, written_back: 0 })
    }

    /// Makes a staged upload the current version of `name`, if
    /// `precondition` holds now. Returns the new entry and the one it
    /// replaced. Blocking: call from a blocking context.
    pub fn commit(
        &self,
        mut staged: Staged,
        name: &str,
        new: NewEntry,
        precondition: &Precondition,
    ) -> Result<(Entry, Option<Entry>), CommitError> {
        let mut index = self.lock();
        let _held = self.hold()?;
        let current = self.current(&mut index, name);
        let ok = match (precondition, &current) {
            (Precondition::None, _) => true,
            (Precondition::CreateOnly, existing) => existing.is_none(),
            (Precondition::IfMatch(sha), Some(e)) => e.sha256 == *sha,
            (Precondition::IfMatch(_), None) => false,
        };
        if !ok {
            return Err(CommitError::Precondition(current.map(Box::new)));
        }
        let blob = self.blob_path(&staged.sha256);
        let staged_path = staged.path.take().expect("a staged upload has its file until commit");
        if blob.exists() {
            // Same content already stored: keep the one copy.
            fs::remove_file(&staged_path)?;
        } else if let Err(e) = fs::rename(&staged_path, &blob).and_then(|_| sync_dir(&self.root.join("blobs"))) {
            let _ = fs::remove_file(&staged_path);
            return Err(e.into());
        }
        let entry = Entry {
            name: name.to_string(),
            size: staged.size,
            sha256: staged.sha256.clone(),
            uploaded_by: new.uploaded_by,
            modified: new.modified,
            content_type: new.content_type,
            share: new.share,
        };
        self.write_entry(&entry)?;
        index.insert(entry.clone());
        if let Some(old) = &current {
            self.drop_blob_if_unused(&index, &old.sha256);
        }
        Ok((entry, current))
    }

    /// Writes `entry` to `tmp/`, fsyncs it and renames it over its name's
    /// meta file: the one step that makes it current.
    fn write_entry(&self, entry: &Entry) -> io::Result<()> {
        let meta_name = meta_file_name(&entry.name);
        let tmp = self.tmp.join(format!("{meta_name}.entry"));
        {
            let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
            f.write_all(&serde_json::to_vec(entry).map_err(io::Error::other)?)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, self.root.join("meta").join(&meta_name))?;
        sync_dir(&self.root.join("meta"))
    }

    /// Gives the version of `name` with digest `sha256` a new share link,
    /// or none (`None` revokes). Returns the updated entry, or `None` if
    /// that version is no longer current. Blocking.
    pub fn set_share(&self, name: &str, sha256: &str, share: Option<ShareLink>) -> io::Result<Option<Entry>> {
        let mut index = self.lock();
        let _held = self.hold()?;
        let Some(current) = self.current(&mut index, name).filter(|e| e.sha256 == sha256) else {
            return Ok(None);
        };
        let updated = Entry { share, ..current };
        self.write_entry(&updated)?;
        index.insert(updated.clone());
        Ok(Some(updated))
    }

    /// Removes `name`. Blocking.
    pub fn delete(&self, name: &str) -> io::Result<Option<Entry>> {
        let mut index = self.lock();
        let _held = self.hold()?;
        let Some(old) = self.current(&mut index, name) else {
            return Ok(None);
        };
        fs::remove_file(self.root.join("meta").join(meta_file_name(name)))?;
        sync_dir(&self.root.join("meta"))?;
        index.set(name, None);
        self.drop_blob_if_unused(&index, &old.sha256);
        Ok(Some(old))
    }

    /// Removes blob `sha256` if no entry names it: shared, no entry on
    /// disk (another node's names count too; the caller holds the lock).
    fn drop_blob_if_unused(&self, index: &Index, sha256: &str) {
        let used = match &self.shared {
            None => index.by_name.values().any(|e| e.sha256 == sha256),
            Some(_) => match read_all(&self.root) {
                Ok(all) => all.iter().any(|e| e.sha256 == sha256),
                Err(_) => true, // unsure: keep it
            },
        };
        if !used {
            let _ = fs::remove_file(self.blob_path(sha256));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by(who: &str, modified: i64) -> NewEntry {
        NewEntry { uploaded_by: who.into(), modified, content_type: None, share: None }
    }

    fn upload(store: &Store, bytes: &[u8]) -> Staged {
        let mut w = store.stage().unwrap();
        w.write(bytes).unwrap();
        w.finish().unwrap().0
    }

    #[test]
    fn commit_then_overwrite_keeps_one_blob_and_counts_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (e, old) =
            store.commit(upload(&store, b"one"), "a.txt", by("alice", 1), &Precondition::CreateOnly).unwrap();
        assert!(old.is_none());
        assert_eq!(fs::read(store.blob_path(&e.sha256)).unwrap(), b"one");
        let refused = store.commit(upload(&store, b"two"), "a.txt", by("bob", 2), &Precondition::CreateOnly);
        assert!(matches!(refused, Err(CommitError::Precondition(Some(_)))));
        let (e2, old) = store
            .commit(upload(&store, b"two!"), "a.txt", by("bob", 3), &Precondition::IfMatch(e.sha256.clone()))
            .unwrap();
        assert_eq!(old.unwrap().sha256, e.sha256);
        assert!(!store.blob_path(&e.sha256).exists(), "old blob is gone");
        assert_eq!(store.total_bytes(), 4);
        assert_eq!(store.get("a.txt").unwrap(), e2);
        // Nothing left behind in tmp/.
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn reopening_cleans_leftovers_and_keeps_committed_files() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.commit(upload(&store, b"keep"), "k", by("a", 1), &Precondition::None).unwrap();
            // A crash mid-upload: a temp file and an orphan blob stay behind.
            let mut w = store.stage().unwrap();
            w.write(b"half").unwrap();
            std::mem::forget(w);
            fs::write(dir.path().join("blobs").join("0".repeat(64)), b"orphan").unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.list().len(), 1);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert_eq!(fs::read_dir(dir.path().join("blobs")).unwrap().count(), 1);
        assert_eq!(fs::read(store.blob_path(&store.get("k").unwrap().sha256)).unwrap(), b"keep");
    }

    #[test]
    fn dropping_an_unfinished_upload_removes_its_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut w = store.stage().unwrap();
        w.write(b"partial").unwrap();
        drop(w);
        let staged = upload(&store, b"x");
        drop(staged);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn identical_contents_share_a_blob_until_both_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, _) = store.commit(upload(&store, b"same"), "a", by("x", 1), &Precondition::None).unwrap();
        store.commit(upload(&store, b"same"), "b", by("x", 1), &Precondition::None).unwrap();
        store.delete("a").unwrap();
        assert!(store.blob_path(&a.sha256).exists());
        store.delete("b").unwrap();
        assert!(!store.blob_path(&a.sha256).exists());
    }

    #[test]
    fn share_links_are_found_by_id_until_revoked_replaced_or_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let link = |id: &str| Some(ShareLink { id: id.into(), expires: None });
        let new = NewEntry { share: link("one"), ..by("alice", 1) };
        let (e, _) = store.commit(upload(&store, b"v1"), "a", new, &Precondition::None).unwrap();
        assert_eq!(store.by_share("one").unwrap().name, "a");
        // A link survives a restart.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.by_share("one").unwrap().sha256, e.sha256);
        // Revoked: gone at once, and for good.
        store.set_share("a", &e.sha256, None).unwrap().unwrap();
        assert!(store.by_share("one").is_none());
        assert!(Store::open(dir.path()).unwrap().by_share("one").is_none());
        // A new link for the same version; then a new version drops it.
        store.set_share("a", &e.sha256, link("two")).unwrap().unwrap();
        assert!(store.by_share("two").is_some());
        let new = NewEntry { share: link("three"), ..by("alice", 2) };
        store.commit(upload(&store, b"v2"), "a", new, &Precondition::None).unwrap();
        assert!(store.by_share("two").is_none());
        assert!(store.set_share("a", &e.sha256, link("four")).unwrap().is_none(), "an old version is not current");
        store.delete("a").unwrap();
        assert!(store.by_share("three").is_none());
        assert_eq!(store.total_bytes(), 0);
    }

    #[test]
    fn a_rolled_back_append_leaves_the_bytes_and_digest_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut w = store.stage().unwrap();
        w.write(b"kept ").unwrap();
        let cp = w.checkpoint();
        w.write(b"refused").unwrap();
        w.rollback(cp).unwrap();
        w.write(b"and more").unwrap();
        let (staged, digest) = w.finish().unwrap();
        assert_eq!(staged.size, 13);
        assert_eq!(hex::encode(digest), hex::encode(Sha256::digest(b"kept and more")));
        let (e, _) = store.commit(staged, "r", by("a", 1), &Precondition::None).unwrap();
        assert_eq!(fs::read(store.blob_path(&e.sha256)).unwrap(), b"kept and more");
    }

    #[test]
    fn two_nodes_sharing_a_directory_see_each_others_changes_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::open_shared(dir.path(), "a").unwrap();
        let b = Store::open_shared(dir.path(), "b").unwrap();
        let (e, _) = a.commit(upload(&a, b"from a"), "f", by("x", 1), &Precondition::CreateOnly).unwrap();
        assert_eq!(b.get("f").unwrap(), e, "b reads the name from disk");
        assert_eq!(b.list().len(), 1);
        // Create-only through b decides on what is on disk, not b's index.
        let refused = b.commit(upload(&b, b"from b"), "f", by("y", 2), &Precondition::CreateOnly);
        assert!(matches!(refused, Err(CommitError::Precondition(Some(_)))));
        let (e2, old) = b.commit(upload(&b, b"from b"), "f", by("y", 2), &Precondition::None).unwrap();
        assert_eq!(old.unwrap().sha256, e.sha256, "b replaced what a wrote");
        assert_eq!(a.get("f").unwrap(), e2);
        assert!(!a.blob_path(&e.sha256).exists(), "the replaced blob is collected");
        b.delete("f").unwrap();
        assert!(a.get("f").is_none());
        assert!(a.list().is_empty() && a.total_bytes() == 0);
    }

    #[test]
    fn a_shared_blob_stays_while_another_nodes_entry_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::open_shared(dir.path(), "a").unwrap();
        let b = Store::open_shared(dir.path(), "b").unwrap();
        let (e, _) = a.commit(upload(&a, b"same"), "one", by("x", 1), &Precondition::None).unwrap();
        // a's index never hears of "two": only the disk tells it.
        b.commit(upload(&b, b"same"), "two", by("x", 1), &Precondition::None).unwrap();
        a.delete("one").unwrap();
        assert!(a.blob_path(&e.sha256).exists(), "b's entry still names the blob");
        assert_eq!(fs::read(b.blob_path(&b.get("two").unwrap().sha256)).unwrap(), b"same");
    }

    #[test]
    fn a_node_starting_on_a_shared_directory_leaves_the_others_uploads_alone() {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::open_shared(dir.path(), "a").unwrap();
        let mut w = a.stage().unwrap();
        w.write(b"half").unwrap();
        let _b = Store::open_shared(dir.path(), "b").unwrap();
        w.write(b" and the rest").unwrap();
        let (staged, _) = w.finish().unwrap();
        a.commit(staged, "late", by("x", 1), &Precondition::None).unwrap();
        assert_eq!(fs::read(a.blob_path(&a.get("late").unwrap().sha256)).unwrap(), b"half and the rest");
        // Restarted, a cleans up what it left; nothing it left is visible.
        let mut w = a.stage().unwrap();
        w.write(b"cut off").unwrap();
        std::mem::forget(w);
        drop(a);
        let a = Store::open_shared(dir.path(), "a").unwrap();
        assert_eq!(fs::read_dir(dir.path().join("tmp").join("a")).unwrap().count(), 0);
        assert_eq!(a.list().len(), 1);
    }

    #[test]
    fn a_share_link_made_on_one_node_is_found_on_another() {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::open_shared(dir.path(), "a").unwrap();
        let b = Store::open_shared(dir.path(), "b").unwrap();
        let link = Some(ShareLink { id: "l1".into(), expires: None });
        let new = NewEntry { share: link, ..by("x", 1) };
        let (e, _) = a.commit(upload(&a, b"v"), "s", new, &Precondition::None).unwrap();
        // Found on b before any news of it, from the directory.
        assert_eq!(b.by_link("l1", "s").unwrap().sha256, e.sha256);
        assert!(b.by_link("l1", "other").is_none() && b.by_link("l2", "s").is_none());
        a.set_share("s", &e.sha256, None).unwrap().unwrap();
        assert!(b.by_link("l1", "s").is_none(), "revoked on a: gone on b at once");
    }

    #[test]
    fn a_link_expires_at_its_time() {
        let link = ShareLink { id: "x".into(), expires: Some(100) };
        assert!(link.live_at(99));
        assert!(!link.live_at(100));
        assert!(ShareLink { id: "x".into(), expires: None }.live_at(i64::MAX));
    }
}
