//! `parleyd backup DIR` and `parleyd restore DIR`: a consistent copy of a
//! running server's state, and putting one back into an empty data
//! directory.
//!
//! The database is copied with SQLite's online backup (one read
//! transaction: a snapshot, while the server goes on writing). The file
//! store is copied entries first, then blobs: blobs are immutable and named
//! by digest, so every entry listed finds its blob unless the file was
//! deleted meanwhile, and the store's own check at open drops such an
//! entry, and any blob no entry names. Keys (the token key, a generated TLS
//! certificate) and the activity log are copied as they are. Nothing here
//! needs the server to stop, or to be running.
//!
//! With accounts and history in PostgreSQL (`[database] url`) there is no
//! SQLite file to copy: both commands refuse and say to use `pg_dump` and
//! `pg_restore`, rather than make a backup without the accounts in it.

use crate::config::Config;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The file a backup directory is recognised by.
pub const MANIFEST: &str = "parley-backup.json";

#[derive(Debug, Error)]
pub enum BackupError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{0} is not empty: back up into a new or empty directory")]
    NotEmpty(String),
    #[error("the data directory {0} is not empty: restore into a new or empty data directory")]
    DataNotEmpty(String),
    #[error("{0} holds no Parley backup ({MANIFEST} is missing)")]
    NotABackup(String),
    #[error("copying the database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("the restored data does not open: {0}")]
    Check(String),
    #[error(
        "accounts and history are in PostgreSQL (database.url), which this command cannot copy: \
         back the database up with `pg_dump --format=custom DBNAME > parley.dump` and put it back with \
         `pg_restore --dbname=DBNAME parley.dump`; copy the data directory (files, keys) as it is"
    )]
    Postgres,
}

/// What was copied.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub database: bool,
    pub files: usize,
    pub blobs: usize,
    pub keys: usize,
    /// Unix time the backup was taken.
    pub taken: i64,
    pub version: String,
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> BackupError + '_ {
    move |source| BackupError::Io { path: path.display().to_string(), source }
}

/// An empty directory at `dir`, made if need be.
fn empty_dir(dir: &Path, not_empty: fn(String) -> BackupError) -> Result<(), BackupError> {
    fs::create_dir_all(dir).map_err(io_at(dir))?;
    if fs::read_dir(dir).map_err(io_at(dir))?.next().is_some() {
        return Err(not_empty(dir.display().to_string()));
    }
    Ok(())
}

/// Copies the state of the data directory `config.data_dir` into `dest`.
pub fn backup(config: &Config, dest: &Path) -> Result<Summary, BackupError> {
    if config.database.is_postgres() {
        return Err(BackupError::Postgres);
    }
    empty_dir(dest, BackupError::NotEmpty)?;
    let data = &config.data_dir;
    let mut summary =
        Summary { taken: crate::clock::unix_now(), version: crate::server::VERSION.to_string(), ..Summary::default() };
    let db = data.join(crate::db::FILE);
    if db.exists() {
        copy_database(&db, &dest.join(crate::db::FILE))?;
        summary.database = true;
    }
    let store = config.files_dir();
    if store.exists() {
        let relative = store.strip_prefix(data).unwrap_or(Path::new("files"));
        let target = dest.join(relative);
        // Entries first, then the blobs they name.
        summary.files = copy_dir(&store.join("meta"), &target.join("meta"))?;
        summary.blobs = copy_dir(&store.join("blobs"), &target.join("blobs"))?;
    }
    for key in ["jwt.key", "tls/cert.pem", "tls/key.pem", &config.log.file] {
        let from = data.join(key);
        if from.is_file() {
            copy_file(&from, &dest.join(key))?;
            summary.keys += usize::from(key != config.log.file);
        }
    }
    let manifest = serde_json::to_vec_pretty(&summary).expect("a summary serialises");
    let path = dest.join(MANIFEST);
    fs::write(&path, manifest).map_err(io_at(&path))?;
    Ok(summary)
}

/// One step over every page: a single read transaction, so a snapshot
/// even while the server writes (copying in small steps would start over
/// at each of its commits, and never end under a steady stream of them).
fn copy_database(from: &Path, to: &Path) -> Result<(), BackupError> {
    use rusqlite::backup::{Backup, StepResult};
    let source = rusqlite::Connection::open_with_flags(from, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    source.busy_timeout(std::time::Duration::from_secs(10))?;
    let mut target = rusqlite::Connection::open(to)?;
    let copy = Backup::new(&source, &mut target)?;
    for _ in 0..100 {
        match copy.step(-1)? {
            StepResult::Done => return Ok(()),
            // Locked for a moment by a checkpoint: try again shortly.
            _ => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
    Err(BackupError::Check("the database stayed locked for 5 seconds".into()))
}

/// Puts the backup in `src` into `config.data_dir`, which must be new or
/// empty, then opens the database and the store to check them.
pub fn restore(config: &Config, src: &Path) -> Result<Summary, BackupError> {
    if config.database.is_postgres() {
        return Err(BackupError::Postgres);
    }
    let manifest = src.join(MANIFEST);
    let text = fs::read(&manifest).map_err(|_| BackupError::NotABackup(src.display().to_string()))?;
    let summary: Summary =
        serde_json::from_slice(&text).map_err(|_| BackupError::NotABackup(src.display().to_string()))?;
    let data = &config.data_dir;
    empty_dir(data, BackupError::DataNotEmpty)?;
    for item in fs::read_dir(src).map_err(io_at(src))? {
        let item = item.map_err(io_at(src))?;
        let (from, name) = (item.path(), item.file_name());
        if name == MANIFEST {
            continue;
        }
        if item.file_type().map_err(io_at(&from))?.is_dir() {
            copy_dir(&from, &data.join(&name))?;
        } else {
            copy_file(&from, &data.join(&name))?;
        }
    }
    crate::db::Db::open(data).map_err(|e| BackupError::Check(e.to_string()))?;
    if config.files_dir().exists() {
        crate::files::storage::Store::open(&config.files_dir()).map_err(|e| BackupError::Check(e.to_string()))?;
    }
    Ok(summary)
}

/// Copies the files of `from` (recursively) into `to`; returns how many.
/// A file that disappears meanwhile (a deleted upload) is skipped.
fn copy_dir(from: &Path, to: &Path) -> Result<usize, BackupError> {
    let entries = match fs::read_dir(from) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_at(from)(e)),
    };
    fs::create_dir_all(to).map_err(io_at(to))?;
    let mut n = 0;
    for item in entries {
        let item = item.map_err(io_at(from))?;
        let path: PathBuf = item.path();
        let kind = match item.file_type() {
            Ok(kind) => kind,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_at(&path)(e)),
        };
        if kind.is_dir() {
            n += copy_dir(&path, &to.join(item.file_name()))?;
        } else if kind.is_file() {
            match fs::copy(&path, to.join(item.file_name())) {
                Ok(_) => n += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_at(&path)(e)),
            }
        }
    }
    Ok(n)
}

/// Copies one file (its permission bits too: keys stay 0600).
fn copy_file(from: &Path, to: &Path) -> Result<(), BackupError> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(io_at(parent))?;
    }
    fs::copy(from, to).map_err(io_at(from))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> Config {
        Config { data_dir: dir.to_path_buf(), ..Default::default() }
    }

    #[test]
    fn a_backup_restores_into_an_empty_directory_only() {
        let live = tempfile::tempdir().unwrap();
        let db = std::sync::Arc::new(crate::db::Db::open(live.path()).unwrap());
        crate::accounts::Accounts::new(db, 30).unwrap().create("alice", "sesame", false, 1).unwrap();
        std::fs::write(live.path().join("jwt.key"), b"key").unwrap();
        let out = tempfile::tempdir().unwrap();
        let taken = backup(&config(live.path()), out.path()).unwrap();
        assert!(taken.database && taken.keys == 1);
        assert!(matches!(backup(&config(live.path()), out.path()), Err(BackupError::NotEmpty(_))));
        let again = tempfile::tempdir().unwrap();
        restore(&config(again.path()), out.path()).unwrap();
        let db = std::sync::Arc::new(crate::db::Db::open(again.path()).unwrap());
        let accounts = crate::accounts::Accounts::new(db, 30).unwrap();
        assert!(accounts.verify("alice", "sesame").is_ok());
        assert!(matches!(restore(&config(again.path()), out.path()), Err(BackupError::DataNotEmpty(_))));
        assert!(matches!(restore(&config(again.path()), live.path()), Err(BackupError::NotABackup(_))));
    }
}
