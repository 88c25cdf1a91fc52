//! The history writer's statements for PostgreSQL (the loop around them
//! is `writer.rs`'s). One batch is one transaction; each run of messages
//! in it is one `INSERT ... SELECT FROM unnest(...)` over arrays, one round
//! trip for the run instead of one per message. PostgreSQL keeps the
//! search column itself.
//!
//! Retention is safe with several nodes pruning one store at once: each
//! statement deletes rows past a bound, so a second run finds nothing
//! more to delete, and concurrent deletes of one row wait for each other.
//! The age pass (the only one that reads the whole table's oldest end)
//! runs on one node at a time: it takes a transaction-scoped advisory
//! try-lock, and a node that finds it taken skips its turn.

use super::entry::{Entry, Field};
use super::Op;
use crate::clock::DAY_MS;
use crate::db::DbError;
use postgres::{Client, GenericClient};
use std::collections::HashSet;

/// The advisory lock key of the age pass ("prune" in ASCII).
const PRUNE_LOCK: i64 = 0x70_7275_6e65;

/// Writes one batch in one transaction.
pub(super) fn write(client: &mut Client, node: &str, ops: &[Op], touched: &mut HashSet<String>) -> Result<(), DbError> {
    let mut tx = client.transaction()?;
    let mut run = Run::default();
    for op in ops {
        if let Op::Message(e) = op {
            run.push(e);
            continue;
        }
        // In queue order: what was queued before this op is in first.
        run.insert(&mut tx, touched)?;
        match op {
            Op::Message(_) => {}
            Op::Member { account, channel, left } => {
                tx.execute(
                    "INSERT INTO history_members (account, channel, left_at, left_id, node)
                     VALUES ($1, $2, $3, CASE WHEN $3::bigint IS NULL THEN NULL
                         ELSE (SELECT coalesce(max(id), 0) FROM history) END, $4)
                     ON CONFLICT (account, channel) DO UPDATE SET left_at = excluded.left_at,
                         left_id = excluded.left_id, node = excluded.node",
                    &[&&**account, &&**channel, left, &node],
                )?;
            }
            Op::Marker { account, target, at } => {
                tx.execute(
                    "INSERT INTO read_markers (account, target, at) VALUES ($1, $2, $3)
                     ON CONFLICT (account, target) DO UPDATE SET at = greatest(read_markers.at, excluded.at)",
                    &[&&**account, &&**target, at],
                )?;
            }
            Op::DeleteOwn { account } => {
                let n = super::manage::delete_own_postgres(&mut tx, account)?;
                tracing::info!(account = %account, deleted = n, "history: an account's messages deleted");
            }
            Op::Purge { target } => {
                let n = super::manage::purge_postgres(&mut tx, target)?;
                tracing::info!(channel = %target, deleted = n, "history: a channel purged");
            }
        }
    }
    run.insert(&mut tx, touched)?;
    tx.commit()?;
    Ok(())
}

/// A run of messages to insert together, column by column.
#[derive(Default)]
struct Run<'a> {
    target: Vec<&'a str>,
    at: Vec<i64>,
    msgid: Vec<&'a str>,
    kind: Vec<i64>,
    sender: Vec<&'a str>,
    account: Vec<Option<&'a str>>,
    shown: Vec<&'a str>,
    tags: Vec<&'a str>,
    text: Vec<&'a str>,
}

impl<'a> Run<'a> {
    fn push(&mut self, e: &'a Entry) {
        self.target.push(e.get(Field::Target));
        self.at.push(e.at);
        self.msgid.push(e.get(Field::Msgid));
        self.kind.push(e.kind as i64);
        self.sender.push(e.get(Field::Sender));
        self.account.push(e.account());
        self.shown.push(e.get(Field::Shown));
        self.tags.push(e.get(Field::Tags));
        self.text.push(e.get(Field::Text));
    }

    /// Inserts the run (if any) and the conversations new to this writer.
    fn insert(&mut self, tx: &mut impl GenericClient, touched: &mut HashSet<String>) -> Result<(), postgres::Error> {
        if self.target.is_empty() {
            return Ok(());
        }
        tx.execute(
            "INSERT INTO history (target, at, msgid, kind, sender, account, shown, tags, text)
             SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[],
                 $7::text[], $8::text[], $9::text[])",
            &[
                &self.target,
                &self.at,
                &self.msgid,
                &self.kind,
                &self.sender,
                &self.account,
                &self.shown,
                &self.tags,
                &self.text,
            ],
        )?;
        for target in &self.target {
            if touched.contains(*target) {
                continue;
            }
            touched.insert(target.to_string());
            if let Some((a, b)) = target.split_once(' ') {
                tx.execute(
                    "INSERT INTO history_parties (party, target) VALUES ($1, $3), ($2, $3) ON CONFLICT DO NOTHING",
                    &[&a, &b, target],
                )?;
            }
        }
        *self = Run::default();
        Ok(())
    }
}

/// Applies retention as `writer::prune` does for SQLite: messages past
/// their target's age, then beyond its count (for the targets this node
/// wrote since its last run), then memberships past the default age.
pub(super) fn prune(
    client: &mut Client,
    config: &crate::config::HistoryConfig,
    now: i64,
    touched: &mut HashSet<String>,
) -> Result<usize, DbError> {
    let mut deleted = 0;
    let own: Vec<String> = config.retention.keys().map(|k| parley_proto::casefold(k)).collect();
    if config.max_age_days > 0 {
        let cutoff = now - config.max_age_days as i64 * DAY_MS;
        let mut tx = client.transaction()?;
        let mine: bool = tx.query_one("SELECT pg_try_advisory_xact_lock($1)", &[&PRUNE_LOCK])?.get(0);
        if mine {
            // Ids grow with time: the first message young enough, found
            // from the oldest end, bounds what is deleted.
            let first_kept: Option<i64> = tx
                .query_opt("SELECT id FROM history WHERE at >= $1 ORDER BY id LIMIT 1", &[&cutoff])?
                .map(|r| r.get(0));
            let below = first_kept.unwrap_or(i64::MAX);
            deleted += tx.execute(
                "DELETE FROM history WHERE id < $1 AND at < $2 AND NOT (target = ANY($3))",
                &[&below, &cutoff, &own],
            )? as usize;
            tx.execute("DELETE FROM history_members WHERE left_at IS NOT NULL AND left_at < $1", &[&cutoff])?;
        }
        tx.commit()?;
    }
    for (name, retention) in &config.retention {
        if retention.max_age_days > 0 {
            let cutoff = now - retention.max_age_days as i64 * DAY_MS;
            let target = parley_proto::casefold(name);
            deleted +=
                client.execute("DELETE FROM history WHERE target = $1 AND at < $2", &[&target, &cutoff])? as usize;
        }
    }
    for target in touched.drain() {
        let max = config.retention_for(&target).max_messages;
        if max == 0 {
            continue;
        }
        deleted += client.execute(
            "DELETE FROM history WHERE target = $1 AND id IN (
                SELECT id FROM history WHERE target = $1 ORDER BY at DESC, id DESC OFFSET $2)",
            &[&target, &(max as i64)],
        )? as usize;
    }
    Ok(deleted)
}
