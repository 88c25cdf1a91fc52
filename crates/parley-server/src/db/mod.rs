//! The server's own database: one SQLite file (`parley.db`) in the data
//! directory, for accounts and history. Opened in WAL mode with
//! full syncs, so a committed change survives a `kill -9` or a power cut;
//! the schema is brought up to date at open by `migrations`.
//!
//! Calls block on the disk: async code runs them on the blocking pool.
//! The connection sits behind a `std` mutex, never held across an await.

mod migrations;

use rusqlite::Connection;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use thiserror::Error;

/// The file's name in the data directory.
pub const FILE: &str = "parley.db";

#[derive(Debug, Error)]
pub enum DbError {
    #[error("database {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error(
        "database {path} has schema version {found}, newer than this parleyd knows ({known}); use a newer parleyd"
    )]
    TooNew { path: String, found: i64, known: i64 },
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
}

pub struct Db {
    conn: Mutex<Connection>,
}

impl Db {
    /// Opens (creating if needed) the database in `data_dir` and migrates it.
    pub fn open(data_dir: &Path) -> Result<Db, DbError> {
        let shown = data_dir.join(FILE).display().to_string();
        let mut conn = connect(data_dir)?;
        migrations::apply(&mut conn, &shown)?;
        Ok(Db { conn: Mutex::new(conn) })
    }

    /// The connection, for one short piece of blocking work.
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One more connection to the database in `data_dir` (history keeps its
/// own writer and reader), with the same settings; the schema is the one
/// [`Db::open`] brought up to date.
pub fn connect(data_dir: &Path) -> Result<Connection, DbError> {
    let path = data_dir.join(FILE);
    let shown = path.display().to_string();
    let open = |source| DbError::Open { path: shown.clone(), source };
    let conn = Connection::open(&path).map_err(open)?;
    // Another process (`parleyd account ...`) may open or write it at the
    // same time: wait for its locks, up to the timeout, from the start.
    conn.busy_timeout(Duration::from_secs(5)).map_err(open)?;
    // WAL: readers never wait for the writer. FULL: a commit is on disk
    // before it returns.
    switch_to_wal(&conn).map_err(open)?;
    conn.pragma_update(None, "synchronous", "FULL").map_err(open)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(open)?;
    Ok(conn)
}

/// Turns on WAL. Two connections opening a new database at once may both
/// try; SQLite then answers "locked" at once to one of them, without
/// waiting through the busy timeout, so that one retries (bounded).
fn switch_to_wal(conn: &Connection) -> Result<(), rusqlite::Error> {
    let mut tries = 0;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if tries < 100
                    && matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) =>
            {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}
