//! Full-text search over history, within the targets the caller says the
//! reader may read: SQLite's FTS5 index `history_text`, or PostgreSQL's
//! `words` tsvector column (`simple` configuration, GIN index). Both
//! match whole words, case-insensitively, every word given; they differ
//! at the edges (docs/PROTOCOL.md, SEARCH).

use super::query::Stored;
use crate::db::{Conn, DbError};
use rusqlite::types::Value;
use rusqlite::Connection;

/// One readable target: its key and the last message id visible in it.
pub struct Readable {
    pub key: String,
    pub until: i64,
}

/// What to look for.
pub struct Search<'a> {
    /// Words, all of which must appear (each matched as a token prefix-free
    /// phrase; FTS5 syntax in them has no effect).
    pub text: Option<&'a str>,
    /// Only messages from this nick.
    pub from: Option<&'a str>,
    /// Only messages after / before these times (Unix ms, exclusive).
    pub after: Option<i64>,
    pub before: Option<i64>,
    pub limit: usize,
}

/// The newest matching PRIVMSGs and NOTICEs in `targets`, oldest first.
pub fn search(conn: Conn<'_>, targets: &[Readable], s: &Search<'_>) -> Result<Vec<Stored>, DbError> {
    if targets.is_empty() || s.limit == 0 {
        return Ok(Vec::new());
    }
    match conn {
        Conn::Sqlite(c) => Ok(search_sqlite(c, targets, s)?),
        Conn::Postgres(c) => search_postgres(c, targets, s),
    }
}

fn search_sqlite(conn: &Connection, targets: &[Readable], s: &Search<'_>) -> rusqlite::Result<Vec<Stored>> {
    let mut params: Vec<Value> = Vec::new();
    let mut sql = String::from("SELECT h.at, h.msgid, h.kind, h.sender, h.account, h.shown, h.tags, h.text ");
    let phrase = s.text.map(fts_phrase).filter(|p| !p.is_empty());
    match &phrase {
        Some(p) => {
            sql.push_str("FROM history_text JOIN history h ON h.id = history_text.rowid WHERE history_text MATCH ?");
            params.push(Value::Text(p.clone()));
        }
        None => sql.push_str("FROM history h WHERE 1"),
    }
    sql.push_str(" AND h.kind < 2 AND (");
    for (i, t) in targets.iter().enumerate() {
        if i > 0 {
            sql.push_str(" OR ");
        }
        sql.push_str("(h.target = ? AND h.id <= ?)");
        params.push(Value::Text(t.key.clone()));
        params.push(Value::Integer(t.until));
    }
    sql.push(')');
    if let Some(nick) = s.from {
        // The sender is `nick!user@host`; nicks compare case-insensitively.
        sql.push_str(" AND lower(substr(h.sender, 1, length(?) + 1)) = lower(? || '!')");
        params.push(Value::Text(nick.to_string()));
        params.push(Value::Text(nick.to_string()));
    }
    if let Some(after) = s.after {
        sql.push_str(" AND h.at > ?");
        params.push(Value::Integer(after));
    }
    if let Some(before) = s.before {
        sql.push_str(" AND h.at < ?");
        params.push(Value::Integer(before));
    }
    // Newest first: FTS5 walks its index backwards and stops at the limit.
    sql.push_str(if phrase.is_some() {
        " ORDER BY history_text.rowid DESC LIMIT ?"
    } else {
        " ORDER BY h.id DESC LIMIT ?"
    });
    params.push(Value::Integer(s.limit as i64));
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(params), super::query::stored)?;
    let mut out = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    out.reverse();
    Ok(out)
}

/// The same search in PostgreSQL: each word a `phraseto_tsquery` (the
/// parser's tokens of one word must follow each other, as FTS5 matches a
/// quoted word), all of them required.
fn search_postgres(
    client: &mut postgres::Client,
    targets: &[Readable],
    s: &Search<'_>,
) -> Result<Vec<Stored>, DbError> {
    use postgres::types::ToSql;
    let mut params: Vec<Box<dyn ToSql + Sync>> = Vec::new();
    let next = |params: &mut Vec<Box<dyn ToSql + Sync>>, value: Box<dyn ToSql + Sync>| {
        params.push(value);
        format!("${}", params.len())
    };
    let mut sql = String::from(
        "SELECT h.at, h.msgid, h.kind, h.sender, h.account, h.shown, h.tags, h.text FROM history h WHERE h.kind < 2",
    );
    for word in s.text.unwrap_or_default().split_whitespace() {
        let p = next(&mut params, Box::new(word.to_string()));
        sql.push_str(&format!(" AND h.words @@ phraseto_tsquery('simple', {p}::text)"));
    }
    sql.push_str(" AND (");
    for (i, t) in targets.iter().enumerate() {
        if i > 0 {
            sql.push_str(" OR ");
        }
        let key = next(&mut params, Box::new(t.key.clone()));
        let until = next(&mut params, Box::new(t.until));
        sql.push_str(&format!("(h.target = {key} AND h.id <= {until})"));
    }
    sql.push(')');
    if let Some(nick) = s.from {
        let p = next(&mut params, Box::new(nick.to_string()));
        sql.push_str(&format!(" AND lower(substr(h.sender, 1, length({p}::text) + 1)) = lower({p}::text || '!')"));
    }
    if let Some(after) = s.after {
        let p = next(&mut params, Box::new(after));
        sql.push_str(&format!(" AND h.at > {p}"));
    }
    if let Some(before) = s.before {
        let p = next(&mut params, Box::new(before));
        sql.push_str(&format!(" AND h.at < {p}"));
    }
    let p = next(&mut params, Box::new(s.limit as i64));
    sql.push_str(&format!(" ORDER BY h.id DESC LIMIT {p}"));
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|b| b.as_ref()).collect();
    let mut out: Vec<Stored> = client.query(sql.as_str(), &refs)?.iter().map(super::query::stored_pg).collect();
    out.reverse();
    Ok(out)
}

/// The words of `text` as an FTS5 query in which every word must appear:
/// each is quoted (quotes doubled), so operators and column filters typed
/// by a user are only words.
pub fn fts_phrase(text: &str) -> String {
    text.split_whitespace().map(|w| format!("\"{}\"", w.replace('"', "\"\""))).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_text_is_quoted_word_by_word() {
        assert_eq!(super::fts_phrase("hello  world"), "\"hello\" \"world\"");
        assert_eq!(super::fts_phrase("a\"b OR text:x"), "\"a\"\"b\" \"OR\" \"text:x\"");
        assert_eq!(super::fts_phrase("  "), "");
    }
}
