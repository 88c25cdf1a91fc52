//! The schema, as numbered steps. `PRAGMA user_version` holds the number
//! of steps applied; at open, the missing ones run in one transaction each.
//! A step is never edited once released: change the schema with a new one.

use super::DbError;
use rusqlite::Connection;

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
];

pub fn apply(conn: &mut Connection, path: &str) -> Result<(), DbError> {
    let known = STEPS.len() as i64;
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > known {
        return Err(DbError::TooNew { path: path.to_string(), found, known });
    }
    for (i, step) in STEPS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
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
    fn a_database_from_a_newer_parleyd_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Db::open(dir.path()).unwrap().lock().pragma_update(None, "user_version", 99).unwrap();
        let err = Db::open(dir.path()).err().expect("refused");
        assert!(err.to_string().contains("schema version 99"), "{err}");
    }
}
