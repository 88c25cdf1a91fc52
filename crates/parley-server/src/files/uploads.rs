//! Resumable uploads in progress: the upload resources of the IETF
//! resumable-uploads draft, as state and nothing else (the HTTP side is
//! `resumable.rs`).
//!
//! Each upload stages into `tmp/` through a `StagingWriter` like any other
//! upload, so nothing is visible under a name until the last byte is in,
//! the digest checks and `Store::commit` runs. The bytes staged count
//! toward the quota (`staged_bytes`). An upload nobody has touched for
//! `files.resumable_timeout_secs` is removed with its temp file by
//! `sweep`, which the accept loop runs on a timer. A restart ends every
//! upload in progress (start-up clears `tmp/`): their resources answer 404.
//!
//! One request at a time works on an upload: it holds the upload's async
//! lock for as long as it appends. A newer request for the same upload
//! (the client resuming after it lost the connection, before the server
//! noticed) cancels the older one, which stops at the end of the chunk it
//! is writing and gives the lock up, as the draft's concurrency rules ask.
//! Requests are ordered by a ticket drawn when they arrive, so an older
//! request that reaches the lock late (still checking its password) finds
//! itself superseded instead of appending after the newer one looked.

use super::storage::{Precondition, StagingWriter};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What the request that created the upload asked for, to carry out when
/// it completes.
#[derive(Debug, Clone)]
pub enum Target {
    /// `PUT /files/{name}` with its precondition.
    Put { name: String, precondition: Precondition },
    /// `POST /files`: a free name like this one is picked at the end.
    Post { base: String },
}

/// An upload's fixed facts.
#[derive(Debug, Clone)]
pub struct Intent {
    pub target: Target,
    /// Who may resume it: the creator's nick or account name.
    pub owner: String,
    pub content_type: Option<String>,
    /// The whole length, once the client has said it.
    pub length: Option<u64>,
    /// The SHA-256 the client declared for the whole file, if any.
    pub sha256: Option<[u8; 32]>,
}

/// What changes as the upload goes on, behind the upload's async lock.
pub struct Progress {
    pub intent: Intent,
    /// `None` once the upload is finished or removed.
    pub writer: Option<StagingWriter>,
}

pub struct Upload {
    pub id: String,
    pub owner: String,
    progress: tokio::sync::Mutex<Progress>,
    /// Cancels the request working on the upload now.
    current: Mutex<CancellationToken>,
    last_active: Mutex<Instant>,
    /// Bytes staged so far, for the quota and for `HEAD` while locked.
    staged: AtomicU64,
    /// Tickets drawn by requests, in arrival order.
    tickets: AtomicU64,
    /// The newest ticket that has held the upload.
    newest_holder: AtomicU64,
}

/// A request's place in line for an upload (see `Upload::ticket`).
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl Upload {
    /// Draws the next ticket: call as soon as a request for the upload
    /// arrives, before anything that takes time.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.tickets.fetch_add(1, Ordering::SeqCst) + 1)
    }

    /// Takes the upload for the request holding `ticket`: cancels
    /// whichever request holds it, waits for it to let go, and returns the
    /// lock and the token the new holder watches; `None` if a request that
    /// arrived later has held it meanwhile (this one is stale).
    pub async fn take(&self, ticket: Ticket) -> Option<(tokio::sync::MutexGuard<'_, Progress>, CancellationToken)> {
        let mine = CancellationToken::new();
        let previous = std::mem::replace(&mut *lock(&self.current), mine.clone());
        previous.cancel();
        let guard = self.progress.lock().await;
        if self.newest_holder.fetch_max(ticket.0, Ordering::SeqCst) > ticket.0 {
            return None;
        }
        self.touch();
        Some((guard, mine))
    }

    pub fn touch(&self) {
        *lock(&self.last_active) = Instant::now();
    }

    pub fn idle_for(&self) -> Duration {
        lock(&self.last_active).elapsed()
    }

    pub fn staged(&self) -> u64 {
        self.staged.load(Ordering::Relaxed)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why a new upload was not started.
#[derive(Debug, PartialEq, Eq)]
pub enum Full {
    /// `files.max_resumable_uploads` are in progress.
    Server,
    /// The user has `files.max_resumable_uploads_per_user` in progress.
    User,
}

#[derive(Default)]
pub struct Uploads {
    by_id: Mutex<HashMap<String, Arc<Upload>>>,
    /// Bytes staged by all uploads in progress.
    staged: AtomicU64,
}

impl Uploads {
    /// Registers a new upload staging into `writer`, under a fresh
    /// unguessable id, if the limits allow one more.
    pub fn start(
        &self,
        intent: Intent,
        writer: StagingWriter,
        max_total: usize,
        max_per_user: usize,
    ) -> Result<Arc<Upload>, Full> {
        let mut map = lock(&self.by_id);
        if map.len() >= max_total {
            return Err(Full::Server);
        }
        let mine = map.values().filter(|u| parley_proto::irc_eq(&u.owner, &intent.owner)).count();
        if mine >= max_per_user {
            return Err(Full::User);
        }
        let id = super::share::random_id();
        let upload = Arc::new(Upload {
            id: id.clone(),
            owner: intent.owner.clone(),
            staged: AtomicU64::new(writer.size()),
            progress: tokio::sync::Mutex::new(Progress { intent, writer: Some(writer) }),
            current: Mutex::new(CancellationToken::new()),
            last_active: Mutex::new(Instant::now()),
            tickets: AtomicU64::new(0),
            newest_holder: AtomicU64::new(0),
        });
        self.staged.fetch_add(upload.staged(), Ordering::Relaxed);
        map.insert(id, upload.clone());
        Ok(upload)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Upload>> {
        lock(&self.by_id).get(id).cloned()
    }

    /// Records that `upload` now has `size` bytes staged.
    pub fn set_staged(&self, upload: &Upload, size: u64) {
        let before = upload.staged.swap(size, Ordering::Relaxed);
        if size >= before {
            self.staged.fetch_add(size - before, Ordering::Relaxed);
        } else {
            self.staged.fetch_sub(before - size, Ordering::Relaxed);
        }
    }

    /// Forgets `upload` (finished, cancelled or expired). Its writer, if
    /// still in `progress`, is the caller's to drop (which removes the file).
    pub fn remove(&self, upload: &Upload) {
        if lock(&self.by_id).remove(&upload.id).is_some() {
            self.set_staged(upload, 0);
        }
    }

    /// Bytes staged by uploads in progress.
    pub fn staged_bytes(&self) -> u64 {
        self.staged.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        lock(&self.by_id).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes uploads idle for `timeout` and not being worked on, with
    /// their temp files. Returns how many went.
    pub fn sweep(&self, timeout: Duration) -> usize {
        let idle: Vec<Arc<Upload>> = lock(&self.by_id).values().filter(|u| u.idle_for() >= timeout).cloned().collect();
        let mut removed = 0;
        for upload in idle {
            // An upload a request holds is not abandoned.
            let Ok(mut progress) = upload.progress.try_lock() else { continue };
            if upload.idle_for() < timeout {
                continue;
            }
            progress.writer = None; // removes the temp file
            self.remove(&upload);
            removed += 1;
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::storage::Store;

    fn intent(owner: &str) -> Intent {
        Intent {
            target: Target::Post { base: "x".into() },
            owner: owner.into(),
            content_type: None,
            length: None,
            sha256: None,
        }
    }

    #[test]
    fn limits_count_uploads_in_all_and_per_user() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let uploads = Uploads::default();
        uploads.start(intent("alice"), store.stage().unwrap(), 3, 2).unwrap();
        uploads.start(intent("ALICE"), store.stage().unwrap(), 3, 2).unwrap();
        assert_eq!(uploads.start(intent("alice"), store.stage().unwrap(), 3, 2).err(), Some(Full::User));
        uploads.start(intent("bob"), store.stage().unwrap(), 3, 2).unwrap();
        assert_eq!(uploads.start(intent("carol"), store.stage().unwrap(), 3, 2).err(), Some(Full::Server));
    }

    #[tokio::test]
    async fn staged_bytes_are_counted_and_idle_uploads_swept_with_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let uploads = Uploads::default();
        let a = uploads.start(intent("alice"), store.stage().unwrap(), 9, 9).unwrap();
        let b = uploads.start(intent("bob"), store.stage().unwrap(), 9, 9).unwrap();
        {
            let (mut p, _) = a.take(a.ticket()).await.unwrap();
            p.writer.as_mut().unwrap().write(b"12345").unwrap();
            uploads.set_staged(&a, 5);
        }
        uploads.set_staged(&b, 3);
        assert_eq!(uploads.staged_bytes(), 8);
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 2);
        // Held by a request: never swept, however old.
        let (held, _) = b.take(b.ticket()).await.unwrap();
        assert_eq!(uploads.sweep(Duration::ZERO), 1);
        assert!(uploads.get(&a.id).is_none());
        assert!(uploads.get(&b.id).is_some());
        assert_eq!(uploads.staged_bytes(), 3);
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 1);
        drop(held);
        assert_eq!(uploads.sweep(Duration::from_secs(3600)), 0, "b was just used");
    }

    #[tokio::test]
    async fn a_newer_request_cancels_the_one_holding_the_upload() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let uploads = Uploads::default();
        let u = uploads.start(intent("alice"), store.stage().unwrap(), 9, 9).unwrap();
        let late = u.ticket(); // arrives first, reaches the lock last
        let (guard, first) = u.take(u.ticket()).await.unwrap();
        let u2 = u.clone();
        let second = tokio::spawn(async move { u2.take(u2.ticket()).await.is_some() });
        first.cancelled().await; // the old holder is told to stop...
        drop(guard); // ...lets go...
        assert!(second.await.unwrap(), "...and the new one gets the upload");
        assert!(u.take(late).await.is_none(), "a request older than the holder is stale");
    }
}
