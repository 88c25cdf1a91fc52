//! What an account or an operator asks of history as a whole: an
//! account's own messages exported (JSON) or deleted, a channel's history
//! purged. Plain SQL on a given connection, so `parleyd history ...` runs
//! them offline and the server runs the deletions on its writer thread
//! (in order with the messages queued before them). Deleting a message
//! deletes its search entry too (SQLite: the `history_text_delete`
//! trigger; PostgreSQL: the entry is a column of the row).

use super::entry::Kind;
use crate::db::{Conn, DbError};
use postgres::GenericClient;
use rusqlite::{params, Connection};

/// Messages sent while logged in to `account` (any case), oldest first, as
/// a JSON array of `{msgid, time, target, command, text}`.
pub fn export(conn: Conn<'_>, account: &str) -> Result<serde_json::Value, DbError> {
    const SELECT: &str =
        "SELECT msgid, at, shown, kind, text, tags FROM history WHERE lower(account) = lower($1) ORDER BY at, id";
    let json = |msgid: String, at: i64, target: String, kind: i64, text: String, tags: String| {
        serde_json::json!({
            "msgid": msgid,
            "time": crate::clock::tag_for_millis(at),
            "target": target,
            "command": Kind::from_code(kind).command(),
            "text": text,
            "tags": tags,
        })
    };
    let all = match conn {
        Conn::Sqlite(c) => {
            let mut stmt = c.prepare(SELECT)?;
            let rows = stmt
                .query_map([account], |r| Ok(json(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        }
        Conn::Postgres(c) => c
            .query(SELECT, &[&account])?
            .iter()
            .map(|r| json(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
            .collect(),
    };
    Ok(serde_json::Value::Array(all))
}

/// How many messages `account` sent.
pub fn count_own(conn: Conn<'_>, account: &str) -> Result<u64, DbError> {
    count(conn, "SELECT count(*) FROM history WHERE lower(account) = lower($1)", account)
}

/// The one number `sql` (a `count(*)` with one text parameter) answers.
fn count(conn: Conn<'_>, sql: &str, arg: &str) -> Result<u64, DbError> {
    let n: i64 = match conn {
        Conn::Sqlite(c) => c.query_row(sql, [arg], |r| r.get(0))?,
        Conn::Postgres(c) => c.query_one(sql, &[&arg])?.get(0),
    };
    Ok(n as u64)
}

/// Deletes the messages sent while logged in to `account`.
pub fn delete_own(conn: Conn<'_>, account: &str) -> Result<usize, DbError> {
    Ok(match conn {
        Conn::Sqlite(c) => delete_own_sqlite(c, account)?,
        Conn::Postgres(c) => delete_own_postgres(c, account)?,
    })
}

const DELETE_OWN: &str = "DELETE FROM history WHERE lower(account) = lower($1)";

pub(super) fn delete_own_sqlite(conn: &Connection, account: &str) -> rusqlite::Result<usize> {
    conn.execute(DELETE_OWN, [account])
}

pub(super) fn delete_own_postgres(client: &mut impl GenericClient, account: &str) -> Result<usize, postgres::Error> {
    Ok(client.execute(DELETE_OWN, &[&account])? as usize)
}

/// How many messages a channel (casefolded) has.
pub fn count_target(conn: Conn<'_>, target: &str) -> Result<u64, DbError> {
    count(conn, "SELECT count(*) FROM history WHERE target = $1", target)
}

/// Deletes a channel's (casefolded) whole history and who was in it.
pub fn purge(conn: Conn<'_>, target: &str) -> Result<usize, DbError> {
    Ok(match conn {
        Conn::Sqlite(c) => purge_sqlite(c, target)?,
        Conn::Postgres(c) => {
            let mut tx = c.transaction()?;
            let n = purge_postgres(&mut tx, target)?;
            tx.commit()?;
            n
        }
    })
}

const PURGE: &str = "DELETE FROM history WHERE target = $1";
const PURGE_MEMBERS: &str = "DELETE FROM history_members WHERE channel = $1";

pub(super) fn purge_sqlite(conn: &Connection, target: &str) -> rusqlite::Result<usize> {
    let deleted = conn.execute(PURGE, params![target])?;
    conn.execute(PURGE_MEMBERS, params![target])?;
    Ok(deleted)
}

pub(super) fn purge_postgres(client: &mut impl GenericClient, target: &str) -> Result<usize, postgres::Error> {
    let deleted = client.execute(PURGE, &[&target])?;
    client.execute(PURGE_MEMBERS, &[&target])?;
    Ok(deleted as usize)
}
