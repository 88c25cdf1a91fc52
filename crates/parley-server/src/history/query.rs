//! Reading history back: pages of one target's messages around a message
//! or a time, and the targets with recent messages. Pure SQL over the
//! reading connection, in either backend's dialect; who may read what is
//! decided before (the caller gives the target key and how far the reader
//! may see).

use super::entry::Kind;
use crate::db::{Conn, DbError};
use rusqlite::{params, OptionalExtension};

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub at: i64,
    pub msgid: String,
    pub kind: Kind,
    pub sender: String,
    pub account: Option<String>,
    pub shown: String,
    pub tags: String,
    pub text: String,
}

/// Where a page starts or ends: a message, or a time (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Msgid(String),
    Time(i64),
}

/// What a CHATHISTORY subcommand asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The newest messages, after the reference if there is one.
    Latest(Option<Reference>),
    Before(Reference),
    After(Reference),
    Around(Reference),
    Between(Reference, Reference),
}

/// What one reader may see of one target.
pub struct Scope<'a> {
    pub target: &'a str,
    /// Messages after this id are not shown (a former member sees what
    /// was said until it left).
    pub until: i64,
    /// TAGMSG and TOPIC too (`draft/event-playback`).
    pub events: bool,
}

/// A position in a target's order: (time, id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Point(i64, i64);

const FIRST: Point = Point(i64::MIN, i64::MIN);
const LAST: Point = Point(i64::MAX, i64::MAX);

/// The messages the selector names, oldest first, at most `limit`. A
/// msgid not found in this target (or not visible) gives an empty page.
pub fn select(conn: Conn<'_>, scope: &Scope<'_>, selector: &Selector, limit: usize) -> Result<Vec<Stored>, DbError> {
    let conn = std::cell::RefCell::new(conn);
    // The point just before a reference (a page ending there excludes it)
    // and just after it (a page starting there excludes it).
    let resolve = |r: &Reference| -> Result<Option<(Point, Point)>, DbError> {
        const SELECT: &str = "SELECT at, id FROM history WHERE msgid = $1 AND target = $2 AND id <= $3";
        Ok(match r {
            Reference::Time(t) => Some((Point(*t, i64::MIN), Point(*t, i64::MAX))),
            Reference::Msgid(m) => match &mut *conn.borrow_mut() {
                Conn::Sqlite(c) => c
                    .prepare_cached(SELECT)?
                    .query_row(params![m, scope.target, scope.until], |r| Ok(Point(r.get(0)?, r.get(1)?)))
                    .optional()?,
                Conn::Postgres(c) => {
                    c.query_opt(SELECT, &[m, &scope.target, &scope.until])?.map(|r| Point(r.get(0), r.get(1)))
                }
            }
            .map(|p| (p, p)),
        })
    };
    let page = |lower: Point, upper: Point, newest: bool, n: usize| {
        page(&mut conn.borrow_mut(), scope, lower, upper, newest, n)
    };
    match selector {
        Selector::Latest(None) => page(FIRST, LAST, true, limit),
        Selector::Latest(Some(r)) => match resolve(r)? {
            Some((_, after)) => page(after, LAST, true, limit),
            None => Ok(Vec::new()),
        },
        Selector::Before(r) => match resolve(r)? {
            Some((before, _)) => page(FIRST, before, true, limit),
            None => Ok(Vec::new()),
        },
        Selector::After(r) => match resolve(r)? {
            Some((_, after)) => page(after, LAST, false, limit),
            None => Ok(Vec::new()),
        },
        Selector::Around(r) => {
            let Some((before, _)) = resolve(r)? else {
                return Ok(Vec::new());
            };
            // Half before the reference, the rest from it on (it included).
            let mut out = page(FIRST, before, true, limit / 2)?;
            let from = Point(before.0, before.1.saturating_sub(1));
            out.extend(page(from, LAST, false, limit - limit / 2)?);
            Ok(out)
        }
        Selector::Between(a, b) => {
            let (Some(a), Some(b)) = (resolve(a)?, resolve(b)?) else {
                return Ok(Vec::new());
            };
            if a.0 <= b.0 {
                // Forwards from a.
                page(a.1, b.0, false, limit)
            } else {
                // Backwards from a.
                page(b.1, a.0, true, limit)
            }
        }
    }
}

/// Messages strictly between `lower` and `upper`, oldest first: the
/// newest `n` of them, or the oldest.
fn page(
    conn: &mut Conn<'_>,
    scope: &Scope<'_>,
    lower: Point,
    upper: Point,
    newest: bool,
    n: usize,
) -> Result<Vec<Stored>, DbError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    const WHERE: &str = "FROM history WHERE target = ?1 AND at >= ?2 AND (at > ?2 OR id > ?3)
        AND at <= ?4 AND (at < ?4 OR id < ?5) AND id <= ?6 AND (?7 OR kind < 2)";
    const COLUMNS: &str = "SELECT at, msgid, kind, sender, account, shown, tags, text ";
    let mut out = match conn {
        Conn::Sqlite(c) => {
            let sql = if newest {
                format!("{COLUMNS}{WHERE} ORDER BY at DESC, id DESC LIMIT ?8")
            } else {
                format!("{COLUMNS}{WHERE} ORDER BY at, id LIMIT ?8")
            };
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![scope.target, lower.0, lower.1, upper.0, upper.1, scope.until, scope.events, n as i64],
                stored,
            )?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        }
        Conn::Postgres(c) => {
            const PG_WHERE: &str = "FROM history WHERE target = $1 AND at >= $2 AND (at > $2 OR id > $3)
                AND at <= $4 AND (at < $4 OR id < $5) AND id <= $6 AND ($7 OR kind < 2)";
            let sql = if newest {
                format!("{COLUMNS}{PG_WHERE} ORDER BY at DESC, id DESC LIMIT $8")
            } else {
                format!("{COLUMNS}{PG_WHERE} ORDER BY at, id LIMIT $8")
            };
            let rows = c.query(
                sql.as_str(),
                &[&scope.target, &lower.0, &lower.1, &upper.0, &upper.1, &scope.until, &scope.events, &(n as i64)],
            )?;
            rows.iter().map(stored_pg).collect()
        }
    };
    if newest {
        out.reverse();
    }
    Ok(out)
}

pub(super) fn stored(r: &rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
    Ok(Stored {
        at: r.get(0)?,
        msgid: r.get(1)?,
        kind: Kind::from_code(r.get(2)?),
        sender: r.get(3)?,
        account: r.get(4)?,
        shown: r.get(5)?,
        tags: r.get(6)?,
        text: r.get(7)?,
    })
}

/// A stored message from PostgreSQL's row (the columns of [`stored`]).
pub(super) fn stored_pg(r: &postgres::Row) -> Stored {
    Stored {
        at: r.get(0),
        msgid: r.get(1),
        kind: Kind::from_code(r.get(2)),
        sender: r.get(3),
        account: r.get(4),
        shown: r.get(5),
        tags: r.get(6),
        text: r.get(7),
    }
}

/// The newest message time of `target` visible up to id `until`.
pub fn latest_time(conn: Conn<'_>, target: &str, until: i64) -> Result<Option<i64>, DbError> {
    const SELECT: &str = "SELECT max(at) FROM history WHERE target = $1 AND id <= $2";
    Ok(match conn {
        Conn::Sqlite(c) => c.prepare_cached(SELECT)?.query_row(params![target, until], |r| r.get(0))?,
        Conn::Postgres(c) => c.query_one(SELECT, &[&target, &until])?.get(0),
    })
}

/// The conversations `party` has had (their keys).
pub fn conversations(conn: Conn<'_>, party: &str) -> Result<Vec<String>, DbError> {
    const SELECT: &str = "SELECT target FROM history_parties WHERE party = $1";
    Ok(match conn {
        Conn::Sqlite(c) => c.prepare_cached(SELECT)?.query_map([party], |r| r.get(0))?.collect::<Result<_, _>>()?,
        Conn::Postgres(c) => c.query(SELECT, &[&party])?.iter().map(|r| r.get(0)).collect(),
    })
}

/// The last message id the account could see in `channel` (both
/// casefolded): `Some(None)` while still in it (on another connection),
/// `None` if never in it.
pub fn membership(conn: Conn<'_>, account: &str, channel: &str) -> Result<Option<Option<i64>>, DbError> {
    const SELECT: &str = "SELECT left_id FROM history_members WHERE account = $1 AND channel = $2";
    Ok(match conn {
        Conn::Sqlite(c) => c.prepare_cached(SELECT)?.query_row(params![account, channel], |r| r.get(0)).optional()?,
        Conn::Postgres(c) => c.query_opt(SELECT, &[&account, &channel])?.map(|r| r.get(0)),
    })
}

/// The channels an account was ever in and is remembered in, with the
/// last message id it could see (`None`: still in).
pub fn memberships(conn: Conn<'_>, account: &str) -> Result<Vec<(String, Option<i64>)>, DbError> {
    const SELECT: &str = "SELECT channel, left_id FROM history_members WHERE account = $1";
    Ok(match conn {
        Conn::Sqlite(c) => {
            c.prepare_cached(SELECT)?.query_map([account], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?
        }
        Conn::Postgres(c) => c.query(SELECT, &[&account])?.iter().map(|r| (r.get(0), r.get(1))).collect(),
    })
}
