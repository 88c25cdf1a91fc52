//! The schema, as numbered steps. `PRAGMA user_version` holds the number
//! of steps applied; at open, the missing ones run in one transaction each.
//! A step is never edited once released: change the schema with a new one.

use super::DbError;
use rusqlite::{Connection, TransactionBehavior};

const STEPS: &[&str] = &[
    // 1: accounts. `key` is the casefolded name, so names are unique in
    // the nick casemapping; `name` keeps the spelling it was registered with.
    "CREATE TABLE accounts (
        key TEXT PRIMARY KEY NOT NULL,
        name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        oper INTEGER NOT NULL DEFAULT 0,
        created INTEGER NOT NULL
    ) STRICT;",
    // 2: what logging in beyond PLAIN needs. `scram` holds SCRAM-SHA-256
    // credentials (`scram::Credentials`), filled at the next PLAIN login for
    // accounts made before it; `email` and `verify_code` serve REGISTER
    // (a code is set until the account is verified); `certfps` are the TLS
    // client certificates (SHA-256, lower-case hex) that log in by EXTERNAL.
    "ALTER TABLE accounts ADD COLUMN scram TEXT;
     ALTER TABLE accounts ADD COLUMN email TEXT;
     ALTER TABLE accounts ADD COLUMN verify_code TEXT;
     CREATE TABLE certfps (
        fingerprint TEXT PRIMARY KEY NOT NULL,
        account TEXT NOT NULL REFERENCES accounts (key) ON DELETE CASCADE
     ) STRICT;
     CREATE INDEX certfps_by_account ON certfps (account);",
    // 3: history (`history/`). `target` is the casefolded channel name, or
    // for a private conversation its two parties' keys, sorted, joined by a
    // space (a party is its account, casefolded, or `*` and its nick when it
    // had none). `at` is Unix time in milliseconds; pages are ordered by
    // (at, id). `shown` is the target as the line named it. `kind`: 0
    // PRIVMSG, 1 NOTICE, 2 TAGMSG, 3 TOPIC. `tags` are the client-only tags,
    // escaped as on the wire. `members` remembers, per account, the
    // channels it was in for reading back: when it left (`left_at`, NULL
    // while it is in) and the last message id it could see (`left_id`);
    // `parties` lists each party's conversations (CHATHISTORY TARGETS).
    "CREATE TABLE history (
        id INTEGER PRIMARY KEY,
        target TEXT NOT NULL,
        at INTEGER NOT NULL,
        msgid TEXT NOT NULL,
        kind INTEGER NOT NULL,
        sender TEXT NOT NULL,
        account TEXT,
        shown TEXT NOT NULL,
        tags TEXT NOT NULL,
        text TEXT NOT NULL
     ) STRICT;
     CREATE INDEX history_by_target ON history (target, at);
     CREATE INDEX history_by_msgid ON history (msgid);
     CREATE TABLE history_members (
        account TEXT NOT NULL,
        channel TEXT NOT NULL,
        left_at INTEGER,
        left_id INTEGER,
        PRIMARY KEY (account, channel)
     ) STRICT, WITHOUT ROWID;
     CREATE TABLE history_parties (
        party TEXT NOT NULL,
        target TEXT NOT NULL,
        PRIMARY KEY (party, target)
     ) STRICT, WITHOUT ROWID;",
    // 4: read markers (`draft/read-marker`): per account (casefolded) and
    // target (casefolded), read up to `at` (Unix ms).
    "CREATE TABLE read_markers (
        account TEXT NOT NULL,
        target TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (account, target)
     ) STRICT, WITHOUT ROWID;",
    // 5: full-text search over history (SQLite FTS5, `soju.im/search`): an
    // external-content index of the PRIVMSG and NOTICE texts. The writer
    // indexes each batch with one statement, in the batch's transaction (a
    // trigger per row was five times slower: FTS5 flushes its pending terms
    // at every trigger's savepoint); a trigger removes a deleted message's
    // entry in the same transaction, whatever deletes it.
    "CREATE VIRTUAL TABLE history_text USING fts5 (text, content = 'history', content_rowid = 'id');
     INSERT INTO history_text (rowid, text) SELECT id, text FROM history WHERE kind < 2;
     CREATE TRIGGER history_text_delete AFTER DELETE ON history WHEN old.kind < 2 BEGIN
        INSERT INTO history_text (history_text, rowid, text) VALUES ('delete', old.id, old.text);
     END;",
];

/// Applies the missing steps, one transaction each. Each transaction takes
/// the write lock before it reads the version, so two processes opening a
/// new database at once (the server and `parleyd account`) apply each step
/// once: the second waits, then finds it done.
pub fn apply(conn: &mut Connection, path: &str) -> Result<(), DbError> {
    let known = STEPS.len() as i64;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if found > known {
            return Err(DbError::TooNew { path: path.to_string(), found, known });
        }
        let Some(step) = STEPS.get(found as usize) else {
            return Ok(());
        };
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", found + 1)?;
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::super::Db;

    #[test]
    fn a_fresh_database_gets_every_step_and_a_reopen_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let version = |db: &Db| -> i64 { db.lock().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap() };
        let db = Db::open(dir.path()).unwrap();
        assert_eq!(version(&db), super::STEPS.len() as i64);
        let mode: String = db.lock().pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        drop(db);
        assert_eq!(version(&Db::open(dir.path()).unwrap()), super::STEPS.len() as i64);
    }

    #[test]
    fn two_opening_a_new_database_at_once_both_succeed() {
        // As the server and `parleyd account add` do on a new data directory
        // (irctest caught the server dying of "table accounts already exists").
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().to_path_buf();
            let start = std::sync::Arc::new(std::sync::Barrier::new(4));
            let openers: Vec<_> = (0..4)
                .map(|_| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        Db::open(&path).map(|_| ()).map_err(|e| e.to_string())
                    })
                })
                .collect();
            for opener in openers {
                opener.join().unwrap().unwrap();
            }
        }
    }

    #[test]
    fn a_database_from_a_newer_parleyd_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Db::open(dir.path()).unwrap().lock().pragma_update(None, "user_version", 99).unwrap();
        let err = Db::open(dir.path()).err().expect("refused");
        assert!(err.to_string().contains("schema version 99"), "{err}");
    }
}
