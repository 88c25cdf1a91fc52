//! The `[database]` section: where accounts and history are kept. Without
//! a `url` they are in the embedded SQLite file in the data directory (a
//! single node needs nothing else); with a `postgres://` URL, in that
//! PostgreSQL database, which the nodes of a cluster share (docs/CLUSTER.md).

use super::{invalid, ConfigError};
use serde::Deserialize;
use std::path::PathBuf;

/// The environment variable a PostgreSQL password may come from, so that
/// it need not be written in the config file or the URL.
pub const PASSWORD_ENV: &str = "PARLEY_DATABASE_PASSWORD";

/// The largest `database.pool_size`: each connection is a PostgreSQL
/// backend process, and the blocking pool is what waits on them.
pub const MAX_POOL_SIZE: u32 = 64;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://USER@HOST:PORT/DB`, or `postgres:///DB?host=/run/postgresql`
    /// for the local socket; unset: the SQLite file `parley.db` in the
    /// data directory.
    pub url: Option<String>,
    /// A file holding the PostgreSQL password (its first line), when the
    /// URL has none; `PARLEY_DATABASE_PASSWORD` is the other way.
    pub password_file: Option<PathBuf>,
    /// Connections to PostgreSQL this node keeps at most: the history
    /// writer holds one per batch, each query and login one for a moment.
    pub pool_size: u32,
    /// How long connecting (and waiting for a free pooled connection) may
    /// take, in seconds; at start, PostgreSQL not answering by then stops
    /// the server.
    pub connect_timeout_secs: u64,
    /// The longest one SQL statement may run, in milliseconds (PostgreSQL's
    /// `statement_timeout`; 0: no limit).
    pub statement_timeout_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            password_file: None,
            pool_size: 8,
            connect_timeout_secs: 5,
            statement_timeout_ms: 10_000,
        }
    }
}

impl DatabaseConfig {
    /// Whether accounts and history are in PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.url.is_some()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(invalid(
                    "database.url",
                    "must be a PostgreSQL URL (postgres://USER@HOST:PORT/DB), or be left out for SQLite",
                ));
            }
            if let Err(e) = url.parse::<postgres::Config>() {
                return Err(invalid("database.url", format!("is not a valid PostgreSQL URL: {e}")));
            }
        } else if self.password_file.is_some() {
            return Err(invalid("database.password_file", "is for PostgreSQL: set database.url too"));
        }
        if !(1..=MAX_POOL_SIZE).contains(&self.pool_size) {
            return Err(invalid("database.pool_size", format!("must be from 1 to {MAX_POOL_SIZE}")));
        }
        if !(1..=300).contains(&self.connect_timeout_secs) {
            return Err(invalid("database.connect_timeout_secs", "must be from 1 to 300 seconds"));
        }
        Ok(())
    }
}

/// The URL as it may be shown: any password in it replaced by `***`.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        assert_eq!(redacted_url("postgres://u:secret@h:5/db"), "postgres://u:***@h:5/db");
        assert_eq!(redacted_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redacted_url("postgres:///db?host=/tmp"), "postgres:///db?host=/tmp");
    }

    #[test]
    fn bad_urls_and_sizes_are_refused_naming_the_key() {
        let with = |url: &str| DatabaseConfig { url: Some(url.into()), ..DatabaseConfig::default() };
        assert!(DatabaseConfig::default().validate().is_ok());
        assert!(with("postgres://parley@127.0.0.1:5432/parley").validate().is_ok());
        assert!(with("postgres:///parley?host=/run/postgresql").validate().is_ok());
        for bad in ["mysql://x/y", "postgres://h:notaport/db", "parley.db"] {
            let err = with(bad).validate().unwrap_err().to_string();
            assert!(err.contains("database.url"), "{bad}: {err}");
        }
        let err = DatabaseConfig { pool_size: 0, ..DatabaseConfig::default() }.validate().unwrap_err();
        assert!(err.to_string().contains("database.pool_size"), "{err}");
        let err = DatabaseConfig { password_file: Some("/x".into()), ..DatabaseConfig::default() }.validate();
        assert!(err.unwrap_err().to_string().contains("database.password_file"));
    }
}
