//! The history writer: one thread, owning the database connection history
//! writes through. Once per batch window (or at once when a reader asks)
//! it takes the whole queue and writes it in one transaction; every
//! `prune_interval_secs` it applies retention. [`Writer::stop`] writes what
//! is still queued and joins the thread, so a clean shutdown loses nothing.
//! The statements here are SQLite's; PostgreSQL's are in
//! `write_postgres.rs`, behind the same loop.

use super::entry::Field;
use super::{Control, History, Op};
use crate::clock::DAY_MS;
use crate::db::{DbError, Source};
use rusqlite::{params, Connection};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The writer thread; [`stop`](Writer::stop) ends it after a last write.
pub struct Writer {
    history: Arc<History>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub(super) fn start(history: Arc<History>, source: Source, control: Receiver<Control>) -> std::io::Result<Writer> {
        let shared = history.clone();
        let thread = std::thread::Builder::new()
            .name("parley-history".into())
            .spawn(move || run(&shared, Store::open(source), &control))?;
        Ok(Writer { history, thread: Some(thread) })
    }

    /// Writes what is queued, then ends the thread.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = self.history.control.send(Control::Stop);
            let _ = thread.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Where the writer writes: its own SQLite connection (with the newest
/// message id, which membership changes record), or the PostgreSQL pool,
/// one connection per batch (so a lost connection costs that batch only).
enum Store {
    Sqlite { conn: Connection, last_id: i64 },
    Postgres(crate::db::postgres::Pool),
}

impl Store {
    fn open(source: Source) -> Store {
        match source {
            Source::Sqlite(conn) => {
                let conn = conn.into_inner().unwrap_or_else(|p| p.into_inner());
                let last_id =
                    conn.query_row("SELECT ifnull(max(id), 0) FROM history", [], |r| r.get(0)).unwrap_or_default();
                Store::Sqlite { conn, last_id }
            }
            Source::Postgres(pool) => Store::Postgres(pool),
        }
    }

    fn write(&mut self, history: &History, ops: &[Op], touched: &mut HashSet<String>) -> Result<(), DbError> {
        match self {
            Store::Sqlite { conn, last_id } => Ok(write(conn, ops, touched, last_id)?),
            Store::Postgres(pool) => super::write_postgres::write(&mut *pool.get()?, &history.node, ops, touched),
        }
    }

    fn prune(
        &mut self,
        config: &crate::config::HistoryConfig,
        now: i64,
        touched: &mut HashSet<String>,
    ) -> Result<usize, DbError> {
        match self {
            Store::Sqlite { conn, .. } => Ok(prune(conn, config, now, touched)?),
            Store::Postgres(pool) => super::write_postgres::prune(&mut *pool.get()?, config, now, touched),
        }
    }
}

fn run(history: &History, mut store: Store, control: &Receiver<Control>) {
    let config = history.config();
    let window = Duration::from_millis(config.batch_window_ms);
    let prune_every = Duration::from_secs(config.prune_interval_secs);
    let mut next_prune = Instant::now() + prune_every;
    let mut spare = Vec::new();
    let mut touched = HashSet::new();
    let mut reported = (0, 0);
    loop {
        let told = control.recv_timeout(window);
        let (ops, pushed) = history.take_queue(spare);
        if !ops.is_empty() {
            let n = ops.len() as u64;
            if let Err(e) = store.write(history, &ops, &mut touched) {
                history.failed.fetch_add(n, Ordering::Relaxed);
                tracing::warn!(error = %e, entries = n, "history: writing a batch failed; its messages are lost");
            }
        }
        history.mark_written(pushed);
        spare = ops;
        spare.clear();
        reported = report_losses(history, reported);
        if Instant::now() >= next_prune {
            next_prune = Instant::now() + prune_every;
            let now = crate::clock::unix_millis(std::time::SystemTime::now());
            // The retention settings in force now (a reload may change them).
            if let Err(e) = store.prune(history.config(), now, &mut touched) {
                tracing::warn!(error = %e, "history: retention failed");
            }
        }
        match told {
            Ok(Control::Flush(done)) => {
                let _ = done.try_send(());
            }
            Ok(Control::Stop) | Err(RecvTimeoutError::Disconnected) => {
                // Anything queued after the last take (the last connections
                // said goodbye meanwhile).
                let (last, pushed) = history.take_queue(Vec::new());
                if !last.is_empty() {
                    if let Err(e) = store.write(history, &last, &mut touched) {
                        tracing::warn!(error = %e, "history: writing the last batch failed");
                    }
                }
                history.mark_written(pushed);
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

/// Logs the drops and failures since the last report, if any.
fn report_losses(history: &History, (dropped_before, failed_before): (u64, u64)) -> (u64, u64) {
    let (dropped, failed) = history.losses();
    if dropped > dropped_before {
        tracing::warn!(
            dropped = dropped - dropped_before,
            total = dropped,
            "history: the queue was full; messages were relayed but not recorded"
        );
    }
    if failed > failed_before {
        tracing::warn!(failed = failed - failed_before, total = failed, "history: messages lost to write errors");
    }
    (dropped, failed)
}

/// Writes one batch in one transaction.
/// `last_id` follows the newest message id.
fn write(conn: &mut Connection, ops: &[Op], touched: &mut HashSet<String>, last_id: &mut i64) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    let first_new = *last_id;
    // The newest id once this batch is in; kept only if it commits.
    let mut newest = *last_id;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO history (target, at, msgid, kind, sender, account, shown, tags, text)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        let mut party = tx.prepare_cached("INSERT OR IGNORE INTO history_parties (party, target) VALUES (?1, ?2)")?;
        let mut marker = tx.prepare_cached(
            "INSERT INTO read_markers (account, target, at) VALUES (?1, ?2, ?3)
             ON CONFLICT (account, target) DO UPDATE SET at = max(at, excluded.at)",
        )?;
        let mut member = tx.prepare_cached(
            "INSERT INTO history_members (account, channel, left_at, left_id) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (account, channel) DO UPDATE SET left_at = excluded.left_at, left_id = excluded.left_id",
        )?;
        for op in ops {
            match op {
                Op::Message(e) => {
                    let target = e.get(Field::Target);
                    insert.execute(params![
                        target,
                        e.at,
                        e.get(Field::Msgid),
                        e.kind as i64,
                        e.get(Field::Sender),
                        e.account(),
                        e.get(Field::Shown),
                        e.get(Field::Tags),
                        e.get(Field::Text),
                    ])?;
                    newest = tx.last_insert_rowid();
                    if !touched.contains(target) {
                        touched.insert(target.to_string());
                        if let Some((a, b)) = target.split_once(' ') {
                            party.execute(params![a, target])?;
                            party.execute(params![b, target])?;
                        }
                    }
                }
                Op::Member { account, channel, left } => {
                    // The queue is in order: what was inserted so far is
                    // what the member could see.
                    let left_id = left.map(|_| newest);
                    member.execute(params![account, channel, left, left_id])?;
                }
                Op::Marker { account, target, at } => {
                    marker.execute(params![account, target, at])?;
                }
                Op::DeleteOwn { account } => {
                    let n = super::manage::delete_own_sqlite(&tx, account)?;
                    tracing::info!(account = %account, deleted = n, "history: an account's messages deleted");
                }
                Op::Purge { target } => {
                    let n = super::manage::purge_sqlite(&tx, target)?;
                    tracing::info!(channel = %target, deleted = n, "history: a channel purged");
                }
            }
        }
    }
    // The batch's texts into the search index, in one statement.
    tx.prepare_cached(
        "INSERT INTO history_text (rowid, text) SELECT id, text FROM history WHERE id > ?1 AND kind < 2",
    )?
    .execute([first_new])?;
    tx.commit()?;
    *last_id = newest;
    Ok(())
}

/// Applies retention: messages past their target's age, then beyond its
/// count (for the targets written since the last run), then memberships
/// past the default age.
pub(super) fn prune(
    conn: &Connection,
    config: &crate::config::HistoryConfig,
    now: i64,
    touched: &mut HashSet<String>,
) -> rusqlite::Result<usize> {
    let mut deleted = 0;
    let own: Vec<String> = config.retention.keys().map(|k| parley_proto::casefold(k)).collect();
    if config.max_age_days > 0 {
        let cutoff = now - config.max_age_days as i64 * DAY_MS;
        // Ids grow with time: find the first message young enough by
        // walking from the oldest, so the cost follows what is deleted.
        let first_kept: Option<i64> =
            conn.query_row("SELECT id FROM history WHERE at >= ?1 ORDER BY id LIMIT 1", [cutoff], |r| r.get(0)).ok();
        let below = first_kept.unwrap_or(i64::MAX);
        let mut delete = conn.prepare_cached("DELETE FROM history WHERE id < ?1 AND at < ?2 AND target = ?3")?;
        let old_targets: Vec<String> = {
            let mut stmt = conn.prepare("SELECT DISTINCT target FROM history WHERE id < ?1 AND at < ?2")?;
            let rows = stmt.query_map(params![below, cutoff], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        for target in old_targets.iter().filter(|t| !own.contains(t)) {
            deleted += delete.execute(params![below, cutoff, target])?;
        }
        conn.execute("DELETE FROM history_members WHERE left_at IS NOT NULL AND left_at < ?1", [cutoff])?;
    }
    for (name, retention) in &config.retention {
        if retention.max_age_days > 0 {
            let cutoff = now - retention.max_age_days as i64 * DAY_MS;
            let target = parley_proto::casefold(name);
            deleted += conn.execute("DELETE FROM history WHERE target = ?1 AND at < ?2", params![target, cutoff])?;
        }
    }
    for target in touched.drain() {
        let max = config.retention_for(&target).max_messages;
        if max == 0 {
            continue;
        }
        deleted += conn.execute(
            "DELETE FROM history WHERE target = ?1 AND id IN (
                SELECT id FROM history WHERE target = ?1 ORDER BY at DESC, id DESC LIMIT -1 OFFSET ?2)",
            params![target, max as i64],
        )?;
    }
    Ok(deleted)
}
