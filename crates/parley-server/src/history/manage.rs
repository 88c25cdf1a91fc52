//! What an account or an operator asks of history as a whole: an
//! account's own messages exported (JSON) or deleted, a channel's history
//! purged. Plain SQL on a given connection, so `parleyd history ...` runs
//! them offline and the server runs the deletions on its writer thread
//! (in order with the messages queued before them). Deleting a message
//! deletes its search entry too (the `history_text_delete` trigger).

use super::entry::Kind;
use rusqlite::{params, Connection};

/// Messages sent while logged in to `account` (any case), oldest first, as
/// a JSON array of `{msgid, time, target, command, text}`.
pub fn export(conn: &Connection, account: &str) -> rusqlite::Result<serde_json::Value> {
    let mut stmt = conn.prepare(
        "SELECT msgid, at, shown, kind, text, tags FROM history WHERE lower(account) = lower(?1) ORDER BY at, id",
    )?;
    let rows = stmt.query_map([account], |r| {
        let at: i64 = r.get(1)?;
        let kind: i64 = r.get(3)?;
        Ok(serde_json::json!({
            "msgid": r.get::<_, String>(0)?,
            "time": crate::clock::tag_for_millis(at),
            "target": r.get::<_, String>(2)?,
            "command": Kind::from_code(kind).command(),
            "text": r.get::<_, String>(4)?,
            "tags": r.get::<_, String>(5)?,
        }))
    })?;
    Ok(serde_json::Value::Array(rows.collect::<rusqlite::Result<_>>()?))
}

/// How many messages `account` sent.
pub fn count_own(conn: &Connection, account: &str) -> rusqlite::Result<u64> {
    conn.query_row("SELECT count(*) FROM history WHERE lower(account) = lower(?1)", [account], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
}

/// Deletes the messages sent while logged in to `account`.
pub fn delete_own(conn: &Connection, account: &str) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM history WHERE lower(account) = lower(?1)", [account])
}

/// How many messages a channel (casefolded) has.
pub fn count_target(conn: &Connection, target: &str) -> rusqlite::Result<u64> {
    conn.query_row("SELECT count(*) FROM history WHERE target = ?1", [target], |r| r.get::<_, i64>(0)).map(|n| n as u64)
}

/// Deletes a channel's (casefolded) whole history and who was in it.
pub fn purge(conn: &Connection, target: &str) -> rusqlite::Result<usize> {
    let deleted = conn.execute("DELETE FROM history WHERE target = ?1", params![target])?;
    conn.execute("DELETE FROM history_members WHERE channel = ?1", params![target])?;
    Ok(deleted)
}
