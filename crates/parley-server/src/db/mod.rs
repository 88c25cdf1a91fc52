//! The server's own database, for accounts and history, in one of two
//! backends: one SQLite file (`parley.db`) in the data directory, the
//! default, or a PostgreSQL database (`[database] url`) that a cluster's
//! nodes share. The SQL differs; what it serves (the account rules,
//! history's queue and batching, retention policy) is written once, in
//! `accounts.rs` and `history/`, and matches on [`Conn`] only for the
//! statements themselves.
//!
//! SQLite is opened in WAL mode with full syncs, so a committed change
//! survives a `kill -9` or a power cut; PostgreSQL through a small bounded
//! pool (`postgres.rs`). Either schema is brought up to date at open.
//!
//! Calls block (the disk, or the network): async code runs them on the
//! blocking pool. An SQLite connection sits behind a `std` mutex, a
//! pooled PostgreSQL one is held for one piece of work; neither is ever
//! held across an await.

mod migrations;
pub mod postgres;
mod postgres_migrations;

use crate::config::DatabaseConfig;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
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
    /// PostgreSQL could not be reached or refused us, at start or later.
    #[error("PostgreSQL (database.url {url}): {reason}")]
    Connect { url: String, reason: String },
    #[error("database.password_file {path}: {source}")]
    PasswordFile { path: String, source: std::io::Error },
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] ::postgres::Error),
    /// No pooled connection within `database.connect_timeout_secs`.
    #[error("PostgreSQL is not answering: {0}")]
    Pool(#[from] r2d2::Error),
}

/// The database a server (or a `parleyd` subcommand) works with.
pub struct Db {
    /// Where one more SQLite connection comes from (history keeps its own).
    dir: PathBuf,
    source: Source,
}

/// Where connections come from: one SQLite connection behind a mutex, or
/// the PostgreSQL pool (cheap to clone: it is shared).
pub enum Source {
    Sqlite(Mutex<Connection>),
    Postgres(postgres::Pool),
}

/// One connection, held for one piece of work (a pooled client is large:
/// boxed, so a lease costs SQLite nothing).
pub enum Lease<'a> {
    Sqlite(MutexGuard<'a, Connection>),
    Postgres(Box<postgres::Pooled>),
}

/// What a query runs on: the backend's connection, borrowed.
pub enum Conn<'a> {
    Sqlite(&'a Connection),
    Postgres(&'a mut ::postgres::Client),
}

impl Db {
    /// Opens (creating if needed) the configured database and migrates it:
    /// PostgreSQL if `config.url` is set, else `parley.db` in `data_dir`.
    pub fn open_configured(data_dir: &Path, config: &DatabaseConfig) -> Result<Db, DbError> {
        if config.url.is_none() {
            return Db::open(data_dir);
        }
        let pool = postgres::Pool::connect(config)?;
        postgres_migrations::apply(&mut *pool.get()?)?;
        Ok(Db { dir: data_dir.to_path_buf(), source: Source::Postgres(pool) })
    }

    /// Opens (creating if needed) the SQLite database in `data_dir` and
    /// migrates it.
    pub fn open(data_dir: &Path) -> Result<Db, DbError> {
        let shown = data_dir.join(FILE).display().to_string();
        let mut conn = connect(data_dir)?;
        migrations::apply(&mut conn, &shown)?;
        Ok(Db { dir: data_dir.to_path_buf(), source: Source::Sqlite(Mutex::new(conn)) })
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.source, Source::Postgres(_))
    }

    /// A connection for one short piece of blocking work.
    pub fn get(&self) -> Result<Lease<'_>, DbError> {
        self.source.get()
    }

    /// Another source of connections to the same database: a new SQLite
    /// connection, or the same PostgreSQL pool.
    pub fn another(&self) -> Result<Source, DbError> {
        Ok(match &self.source {
            Source::Sqlite(_) => Source::Sqlite(Mutex::new(connect(&self.dir)?)),
            Source::Postgres(pool) => Source::Postgres(pool.clone()),
        })
    }

    /// The SQLite connection (tests of the SQLite schema).
    #[cfg(test)]
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        match &self.source {
            Source::Sqlite(c) => c.lock().unwrap_or_else(|p| p.into_inner()),
            Source::Postgres(_) => panic!("not SQLite"),
        }
    }
}

impl Source {
    pub fn get(&self) -> Result<Lease<'_>, DbError> {
        Ok(match self {
            Source::Sqlite(c) => Lease::Sqlite(c.lock().unwrap_or_else(|p| p.into_inner())),
            Source::Postgres(pool) => Lease::Postgres(Box::new(pool.get()?)),
        })
    }
}

impl Lease<'_> {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Lease::Sqlite(c) => Conn::Sqlite(c),
            Lease::Postgres(c) => Conn::Postgres(c),
        }
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
