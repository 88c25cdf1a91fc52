//! The PostgreSQL backend's connections: the URL with the password from
//! the environment or a file, the timeouts, and a small bounded pool.
//!
//! The client is the blocking `postgres` crate (rust-postgres): every
//! caller of the store already runs on the blocking pool or on history's
//! own writer thread, as it does for SQLite, so the async `tokio-postgres`
//! would only add a runtime hop per call. `r2d2` is its pool: a fixed
//! upper bound, a wait for a free connection bounded by
//! `database.connect_timeout_secs`, a liveness check at checkout (a
//! restarted PostgreSQL costs one reconnect, not an error per stale
//! connection), and broken connections dropped.

use super::DbError;
use crate::config::{DatabaseConfig, DATABASE_PASSWORD_ENV};
use postgres::NoTls;
use r2d2_postgres::PostgresConnectionManager;
use std::time::Duration;

type Manager = PostgresConnectionManager<NoTls>;

/// One pooled connection; back to the pool when dropped.
pub type Pooled = r2d2::PooledConnection<Manager>;

/// The pool of connections to PostgreSQL; clones share it. Always
/// `Some` but while being dropped (see `Drop`).
#[derive(Clone)]
pub struct Pool(Option<r2d2::Pool<Manager>>);

impl Drop for Pool {
    /// The last clone closes the connections, which blocks on the client's
    /// own runtime: not allowed on a runtime thread (the server's state is
    /// dropped on one at exit), so there it happens on a thread of its own.
    fn drop(&mut self) {
        let Some(pool) = self.0.take() else { return };
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::spawn(move || drop(pool)).join();
        }
    }
}

impl Pool {
    /// Connects once (so an unreachable or refusing server is reported
    /// with its reason, naming the setting), then builds the pool.
    pub fn connect(config: &DatabaseConfig) -> Result<Pool, DbError> {
        let url = config.url.as_deref().unwrap_or_default();
        let shown = crate::config::redacted_url(url);
        let fail = |reason: String| DbError::Connect { url: shown.clone(), reason };
        let mut pg: postgres::Config = url.parse().map_err(|e: postgres::Error| fail(e.to_string()))?;
        if pg.get_password().is_none() {
            if let Some(password) = password(config)? {
                pg.password(password);
            }
        }
        let timeout = Duration::from_secs(config.connect_timeout_secs);
        pg.connect_timeout(timeout);
        pg.application_name("parleyd");
        if config.statement_timeout_ms > 0 {
            // After any options the URL gives (a test's search_path, say).
            let given = pg.get_options().map(|o| format!("{o} ")).unwrap_or_default();
            pg.options(&format!("{given}-c statement_timeout={}", config.statement_timeout_ms));
        }
        drop(pg.connect(NoTls).map_err(|e| fail(reason(&e)))?);
        let pool = r2d2::Pool::builder()
            .max_size(config.pool_size)
            .min_idle(Some(1))
            .connection_timeout(timeout)
            .test_on_check_out(true)
            .error_handler(Box::new(LogErrors))
            .build(PostgresConnectionManager::new(pg, NoTls))
            .map_err(|e| fail(e.to_string()))?;
        Ok(Pool(Some(pool)))
    }

    /// A connection, waiting at most `database.connect_timeout_secs`.
    pub fn get(&self) -> Result<Pooled, DbError> {
        Ok(self.0.as_ref().expect("a pool not being dropped").get()?)
    }
}

/// The error with its cause (rust-postgres's own text is often just
/// "error connecting to server").
fn reason(e: &postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// The password when the URL has none: `PARLEY_DATABASE_PASSWORD`, else
/// the first line of `database.password_file`, else none (trust, peer).
fn password(config: &DatabaseConfig) -> Result<Option<String>, DbError> {
    if let Ok(p) = std::env::var(DATABASE_PASSWORD_ENV) {
        return Ok(Some(p));
    }
    let Some(path) = &config.password_file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|source| DbError::PasswordFile { path: path.display().to_string(), source })?;
    Ok(Some(text.lines().next().unwrap_or_default().to_string()))
}

/// The pool's own connection failures (while PostgreSQL is down), as
/// diagnostics: the callers report theirs as they happen.
#[derive(Debug)]
struct LogErrors;

impl r2d2::HandleError<postgres::Error> for LogErrors {
    fn handle_error(&self, error: postgres::Error) {
        tracing::warn!(error = %reason(&error), "PostgreSQL: a pooled connection failed");
    }
}
