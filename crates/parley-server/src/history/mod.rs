//! Message history: what was said in channels and private conversations,
//! kept in the server's database (`parley.db`, or PostgreSQL shared by a
//! cluster's nodes: `db/`) and read back by `CHATHISTORY` and the join
//! replay. Each node records what its own users sent; a message relayed
//! in from another node is recorded here too only when this node's store
//! is its own (SQLite), never again in a shared one (`record.rs`).
//!
//! Recording never waits on the disk: the message path appends a compact
//! entry to a bounded in-memory queue (no system call, no allocation beyond
//! the entry) and goes on; the writer thread (`writer.rs`) takes the whole
//! queue once per batch window and writes it in one transaction. A full
//! queue or a failing disk costs history, never chat: the entry is dropped,
//! counted and logged. A reader first asks the writer to write what is
//! queued ([`History::flush`]), so a client always finds what it was just
//! sent. This module must never be called with the registry lock held
//! across anything that blocks, and never blocks itself on the message path.

mod entry;
pub mod manage;
pub mod markers;
pub mod query;
pub mod recent;
mod record;
pub mod search;
mod write_postgres;
mod writer;

pub use entry::{Entry, Kind, Parts};
pub use writer::Writer;

use crate::config::HistoryConfig;
use crate::db::{Conn, Db, DbError, Lease, Source};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::Mutex;
use std::time::Duration;

/// How long a reader waits for the writer to write what is queued.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why history could not start.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot start the history writer thread: {0}")]
    Thread(std::io::Error),
    #[error("the history writer has stopped")]
    Stopped,
}

/// What waits for the writer: messages, channel memberships of accounts
/// (who may read a channel's past after leaving it), read markers.
pub enum Op {
    Message(Entry),
    /// `account` (casefolded) is in `channel` (casefolded) from now on, or
    /// left it at `left` (Unix ms).
    Member {
        account: Box<str>,
        channel: Box<str>,
        left: Option<i64>,
    },
    /// An account's read marker on a target (casefolded) moved to `at`.
    Marker {
        account: Box<str>,
        target: Box<str>,
        at: i64,
    },
    /// Delete the messages sent while logged in to an account.
    DeleteOwn {
        account: Box<str>,
    },
    /// Delete a channel's (casefolded) whole history.
    Purge {
        target: Box<str>,
    },
}

/// Ops waiting for the writer.
#[derive(Default)]
struct Queue {
    ops: Vec<Op>,
    /// Ops ever queued (not those dropped).
    pushed: u64,
    /// When the oldest op in `ops` was queued (read once per batch, by
    /// the first push after a take).
    since: Option<std::time::Instant>,
}

/// What the writer is told besides the queue.
enum Control {
    /// Write what is queued now, then answer.
    Flush(SyncSender<()>),
    /// Write what is queued and end.
    Stop,
}

/// The shared side of history: the queue, the counters and a reading
/// connection. Owned by `ServerState`; its [`Writer`] by the `Server`.
pub struct History {
    /// A reload replaces it (retention, limits); the writer's batch window
    /// and prune interval are read once, at start.
    config: crate::live::Live<HistoryConfig>,
    queue: Mutex<Queue>,
    /// How many ops the writer has committed, counted as [`Queue::pushed`]
    /// counts them: a reader with nothing newer queued need not wait.
    written: AtomicU64,
    /// When the oldest op of the batch being written was queued.
    writing_since: Mutex<Option<std::time::Instant>>,
    control: SyncSender<Control>,
    reader: Source,
    /// This node's name in a cluster (`history_members.node` in
    /// PostgreSQL), else empty.
    node: String,
    /// The store is shared with other nodes (PostgreSQL): what they write
    /// (read markers) can change under this node.
    shared: bool,
    /// The lobby's last lines, for the join replay (`recent.rs`).
    pub recent: recent::Recent,
    /// Read markers, all in memory (`markers.rs`).
    markers: Mutex<markers::Markers>,
    /// Entries dropped because the queue was full.
    dropped: AtomicU64,
    /// Entries lost because writing them failed.
    failed: AtomicU64,
}

impl History {
    /// Opens the history's two connections on `db` (migrated by its open:
    /// SQLite gets a writing and a reading one, PostgreSQL shares the
    /// pool) and starts the writer thread. `lobby` is the channel whose
    /// last lines are kept for the join replay; `node` is this node's name
    /// in a cluster, or empty.
    pub fn open(
        db: &Db,
        config: &HistoryConfig,
        lobby: &str,
        node: &str,
    ) -> Result<(std::sync::Arc<History>, Writer), HistoryError> {
        let writing = db.another()?;
        let reader = db.another()?;
        // Memberships left open by a crash end now: nobody is joined yet
        // (in PostgreSQL, only those this node recorded).
        let now = crate::clock::unix_millis(std::time::SystemTime::now());
        let mut lease = writing.get()?;
        match lease.conn() {
            Conn::Sqlite(c) => c
                .execute(
                    "UPDATE history_members SET left_at = ?1, left_id = (SELECT ifnull(max(id), 0) FROM history)
                     WHERE left_at IS NULL",
                    [now],
                )
                .map(drop)
                .map_err(DbError::from)?,
            Conn::Postgres(c) => c
                .execute(
                    "UPDATE history_members SET left_at = $1, left_id = (SELECT coalesce(max(id), 0) FROM history)
                     WHERE left_at IS NULL AND node = $2",
                    &[&now, &node],
                )
                .map(drop)
                .map_err(DbError::from)?,
        }
        let markers = markers::Markers::load(lease.conn())?;
        drop(lease);
        let recent = recent::Recent::load(reader.get()?.conn(), lobby, config.join_replay_lines)?;
        let (control, control_rx) = mpsc::sync_channel(256);
        let history = std::sync::Arc::new(History {
            config: crate::live::Live::new(config.clone()),
            queue: Mutex::new(Queue::default()),
            written: AtomicU64::new(0),
            writing_since: Mutex::new(None),
            control,
            shared: db.is_postgres(),
            reader,
            node: node.to_string(),
            recent,
            markers: Mutex::new(markers),
            dropped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        });
        let writer = Writer::start(history.clone(), writing, control_rx).map_err(HistoryError::Thread)?;
        Ok((history, writer))
    }

    pub fn config(&self) -> &'static HistoryConfig {
        self.config.current()
    }

    /// New settings from a reload (see `reload/` for which ones apply).
    pub fn set_config(&self, config: HistoryConfig) {
        self.config.replace(config);
    }

    /// Queues a message for the writer; never blocks on the disk.
    pub fn record(&self, entry: Entry) {
        self.push(Op::Message(entry));
    }

    /// Queues a membership change of an account.
    pub fn record_member(&self, account: &str, channel: &str, left: Option<i64>) {
        let (account, channel) = (parley_proto::casefold(account).into(), parley_proto::casefold(channel).into());
        self.push(Op::Member { account, channel, left });
    }

    fn push(&self, op: Op) {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if queue.ops.len() >= self.config.queue_entries {
            drop(queue);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if queue.ops.is_empty() {
            queue.since = Some(std::time::Instant::now());
        }
        queue.ops.push(op);
        queue.pushed += 1;
    }

    /// Deletes, after everything queued so far, the messages `account`
    /// sent; returns how many. Blocks until done.
    pub fn delete_own(&self, account: &str) -> Result<u64, HistoryError> {
        self.after_flush(|conn| manage::count_own(conn, account), Op::DeleteOwn { account: account.into() })
    }

    /// Deletes, after everything queued so far, a channel's whole history;
    /// returns how many messages. Blocks until done.
    pub fn purge(&self, channel: &str) -> Result<u64, HistoryError> {
        let target = parley_proto::casefold(channel);
        self.after_flush(|conn| manage::count_target(conn, &target), Op::Purge { target: target.as_str().into() })
    }

    /// Counts, then has the writer run `op` (never dropped: it is not a
    /// message) and waits for it; the lobby's kept lines follow.
    fn after_flush(&self, count: impl FnOnce(Conn<'_>) -> Result<u64, DbError>, op: Op) -> Result<u64, HistoryError> {
        if !self.flush() {
            return Err(HistoryError::Stopped);
        }
        let n = count(self.reader()?.conn())?;
        {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.ops.push(op);
            queue.pushed += 1;
        }
        if !self.flush() {
            return Err(HistoryError::Stopped);
        }
        self.recent.reload(self.reader()?.conn())?;
        Ok(n)
    }

    /// Takes everything queued (the writer), with the count of ops pushed
    /// so far, to mark written once they are.
    fn take_queue(&self, spare: Vec<Op>) -> (Vec<Op>, u64) {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let since = queue.since.take();
        let mut writing = self.writing_since.lock().unwrap_or_else(|p| p.into_inner());
        *writing = writing.or(since);
        (std::mem::replace(&mut queue.ops, spare), queue.pushed)
    }

    /// The writer has committed every op up to `pushed`.
    fn mark_written(&self, pushed: u64) {
        *self.writing_since.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.written.store(pushed, Ordering::Release);
    }

    /// How long the oldest message not yet on disk has waited (zero when
    /// everything queued is written): the writer's lag, for `/metrics`.
    pub fn lag(&self) -> std::time::Duration {
        let queued = self.queue.lock().unwrap_or_else(|p| p.into_inner()).since;
        let writing = *self.writing_since.lock().unwrap_or_else(|p| p.into_inner());
        writing.or(queued).map_or(std::time::Duration::ZERO, |t| t.elapsed())
    }

    /// Waits (blocking) until everything queued before the call is written.
    /// False if the writer did not answer in time (it has stopped).
    pub fn flush(&self) -> bool {
        let pushed = self.queue.lock().unwrap_or_else(|p| p.into_inner()).pushed;
        if self.written.load(Ordering::Acquire) >= pushed {
            return true;
        }
        let (done, wait) = mpsc::sync_channel(1);
        if self.control.send(Control::Flush(done)).is_err() {
            return false;
        }
        wait.recv_timeout(FLUSH_TIMEOUT).is_ok()
    }

    /// The reading connection, for one query (blocking: run it on the
    /// blocking pool). With PostgreSQL a pooled connection: waiting for
    /// one is bounded by `database.connect_timeout_secs`.
    pub fn reader(&self) -> Result<Lease<'_>, DbError> {
        self.reader.get()
    }

    /// Ops waiting for the writer now.
    pub fn queued(&self) -> usize {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).ops.len()
    }

    /// Entries dropped because the queue was full, and lost to write errors.
    pub fn losses(&self) -> (u64, u64) {
        (self.dropped.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed))
    }
}

/// A private conversation's party: its account, casefolded, or `*` and
/// its nick, casefolded, for a user without one (whose messages nobody can
/// read back, since reading private history needs an account).
pub fn party_key(account: Option<&str>, nick: &str) -> String {
    match account {
        Some(a) => parley_proto::casefold(a),
        None => format!("*{}", parley_proto::casefold(nick)),
    }
}

/// The key of the conversation between two parties (in either order).
pub fn conversation_key(a: &str, b: &str) -> String {
    if a <= b {
        format!("{a} {b}")
    } else {
        format!("{b} {a}")
    }
}

#[cfg(test)]
mod tests;
