//! The PostgreSQL schema, as numbered steps, like `migrations.rs` for
//! SQLite (same tables and columns; integers are BIGINT, `oper` a
//! boolean). `parley_schema` holds the number of steps applied; each
//! missing step runs in one transaction that first takes an advisory lock,
//! so nodes starting at once apply each step once. A step is never edited
//! once released: change the schema with a new one.

use super::DbError;

/// The advisory lock key migrations hold ("parley" in ASCII).
const LOCK: i64 = 0x7061_726c_6579;

const STEPS: &[&str] = &[
    // 1: accounts, history, read markers: `migrations.rs` steps 1 to 4.
    // Search: `words` is the text's tsvector (`simple`: no stemming, no
    // stop words, like FTS5's default tokenizer), kept by PostgreSQL for
    // PRIVMSG and NOTICE, with a GIN index. `history_members.node` is the
    // node that recorded the membership: a restarting node ends only its
    // own open ones.
    "CREATE TABLE accounts (
        key TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        oper BOOLEAN NOT NULL DEFAULT FALSE,
        created BIGINT NOT NULL,
        scram TEXT,
        email TEXT,
        verify_code TEXT
     );
     CREATE TABLE certfps (
        fingerprint TEXT PRIMARY KEY,
        account TEXT NOT NULL REFERENCES accounts (key) ON DELETE CASCADE
     );
     CREATE INDEX certfps_by_account ON certfps (account);
     CREATE TABLE history (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        target TEXT NOT NULL,
        at BIGINT NOT NULL,
        msgid TEXT NOT NULL,
        kind BIGINT NOT NULL,
        sender TEXT NOT NULL,
        account TEXT,
        shown TEXT NOT NULL,
        tags TEXT NOT NULL,
        text TEXT NOT NULL,
        words TSVECTOR GENERATED ALWAYS AS
            (CASE WHEN kind < 2 THEN to_tsvector('simple', text) END) STORED
     );
     CREATE INDEX history_by_target ON history (target, at);
     CREATE INDEX history_by_msgid ON history (msgid);
     CREATE INDEX history_by_account ON history (lower(account));
     CREATE INDEX history_words ON history USING GIN (words);
     CREATE TABLE history_members (
        account TEXT NOT NULL,
        channel TEXT NOT NULL,
        left_at BIGINT,
        left_id BIGINT,
        node TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (account, channel)
     );
     CREATE TABLE history_parties (
        party TEXT NOT NULL,
        target TEXT NOT NULL,
        PRIMARY KEY (party, target)
     );
     CREATE TABLE read_markers (
        account TEXT NOT NULL,
        target TEXT NOT NULL,
        at BIGINT NOT NULL,
        PRIMARY KEY (account, target)
     );",
];

/// Applies the missing steps, one transaction each.
pub fn apply(client: &mut postgres::Client) -> Result<(), DbError> {
    let known = STEPS.len() as i64;
    loop {
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS parley_schema (version BIGINT NOT NULL)")?;
        let found: i64 = tx.query_one("SELECT coalesce(max(version), 0) FROM parley_schema", &[])?.get(0);
        if found > known {
            return Err(DbError::TooNew { path: "PostgreSQL (database.url)".into(), found, known });
        }
        let Some(step) = STEPS.get(found as usize) else {
            return Ok(());
        };
        tx.batch_execute(step)?;
        tx.execute("INSERT INTO parley_schema (version) VALUES ($1)", &[&(found + 1)])?;
        tx.commit()?;
    }
}
