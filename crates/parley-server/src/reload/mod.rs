//! Reloading the configuration while the server runs (`SIGHUP`, the
//! operator command `REHASH`): what can change live, what needs a restart.
//!
//! A reload reads the file the server was started with again and applies
//! the same command-line and environment overrides. An invalid file
//! (a TOML error, a value `Config::validate` refuses, a certificate that
//! does not load) changes nothing. Otherwise the settings read only at
//! start (listeners, data directory, threads, the server's name; see
//! [`keep_restart_only`]) keep their running values and are reported as
//! needing a restart, and the rest takes effect:
//!
//! - the config handle (`live.rs`) everyone reads per use: MOTD,
//!   per-command limits (lengths, targets, list sizes), timeouts checked
//!   per use, the connection password, accounts' settings, the file store's
//!   limits and allowed origins; limits a connection takes when it opens
//!   (line and tag lengths, flood, SendQ, RecvQ) apply to new connections;
//! - what is derived from it: ISUPPORT (for clients registering from now
//!   on), the connection limits, the failure and registration limits, the
//!   activity log's rotation and message bodies, history's retention;
//! - the TLS certificate (read again even when its paths are the same:
//!   a renewal replaces the files) for new handshakes;
//! - `[[oper]]` entries, upserted into the account store as at start.
//!
//! Each reload is recorded in the activity log (`reload`, with its result)
//! and on stderr. This module never touches a connection.

use crate::activity_log::{Actor, Value};
use crate::config::{Config, ConfigError};
use crate::operators::OperatorsError;
use crate::server::ServerState;
use crate::tls::TlsError;
use std::time::Duration;
use thiserror::Error;

pub mod source;

pub use source::{Reloader, Source};

/// A reload for whoever holds no connection (`main`'s SIGHUP handler).
#[derive(Clone)]
pub struct Handle(pub(crate) std::sync::Arc<ServerState>);

impl Handle {
    /// Remembers where the configuration came from (`main` does this once).
    pub fn set_source(&self, source: Source) {
        self.0.reload.set_source(source);
    }

    /// [`reload`], on a blocking thread.
    pub async fn reload(&self, by: &str) -> Result<Applied, Refused> {
        let (server, by) = (self.0.clone(), by.to_string());
        // A panic there must not end the caller (the signal handler also waits for SIGTERM).
        tokio::task::spawn_blocking(move || reload(&server, &by)).await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "the configuration reload failed");
            Err(Refused { file: String::new(), key: None, message: format!("the reload failed: {e}") })
        })
    }
}

/// Why a reload changed nothing.
#[derive(Debug, Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("TLS certificate: {0}")]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Operators(#[from] OperatorsError),
}

impl ReloadError {
    /// The configuration key at fault, when one is.
    pub fn key(&self) -> Option<&'static str> {
        match self {
            ReloadError::Config(ConfigError::Invalid { key, .. }) => Some(key),
            ReloadError::Tls(_) => Some("tls.cert"),
            ReloadError::Operators(_) => Some("oper"),
            _ => None,
        }
    }
}

/// What a reload did.
#[derive(Debug)]
pub struct Applied {
    /// The file read, as replies show it.
    pub file: String,
    /// Keys whose new values wait for a restart.
    pub restart: Vec<&'static str>,
    /// Whether any setting changed (a reload of an unchanged file only
    /// reads the certificate again and reopens the activity log).
    pub changed: bool,
    /// The certificate's fingerprint, when TLS is on.
    pub tls_fingerprint: Option<String>,
}

/// A refused reload: why (the key named), and the file it was about.
#[derive(Debug)]
pub struct Refused {
    pub file: String,
    /// The configuration key at fault, when one is.
    pub key: Option<&'static str>,
    pub message: String,
}

/// Reads the configuration again and applies it (see the module comment).
/// `by` names who asked, for the log. Blocks on the disk: call it from a
/// blocking thread.
pub fn reload(server: &ServerState, by: &str) -> Result<Applied, Refused> {
    let source = server.reload.source.lock().unwrap_or_else(|p| p.into_inner());
    let file = source.shown();
    // Reopening the log is what SIGHUP did before reloads; it happens whatever the file says.
    server.log.reopen();
    let result = apply(server, &source);
    drop(source);
    let log = |result: &str, fields: &[(&'static str, Value<'_>)]| {
        let mut all = vec![("by", Value::Text(by)), ("result", Value::Text(result)), ("file", Value::Text(&file))];
        all.extend_from_slice(fields);
        server.log.record("reload", Actor::server(), &all);
    };
    match result {
        Ok((restart, changed, tls_fingerprint)) => {
            let keys = restart.join(",");
            log("applied", &[("restart", Value::Text(&keys))]);
            if restart.is_empty() {
                tracing::info!(by, file, changed, "configuration reloaded");
            } else {
                tracing::warn!(by, file, needs_restart = %keys, "configuration reloaded; these settings need a restart to change");
            }
            Ok(Applied { file, restart, changed, tls_fingerprint })
        }
        Err(error) => {
            let (key, message) = (error.key(), error.to_string());
            log("refused", &[("key", Value::Text(key.unwrap_or(""))), ("error", Value::Text(&message))]);
            tracing::error!(by, file, key = key.unwrap_or(""), error = %message, "configuration reload refused; the old configuration stays");
            Err(Refused { file, key, message })
        }
    }
}

/// Every fallible step first (read, validate, certificate, operators),
/// then the swaps, which cannot fail.
fn apply(server: &ServerState, source: &Source) -> Result<(Vec<&'static str>, bool, Option<String>), ReloadError> {
    let mut new = Config::load(source.file.as_deref(), &source.overrides)?;
    let old = server.config.current();
    let restart = keep_restart_only(&mut new, old);
    let certificate = match &server.tls {
        Some(cert) => {
            let names = [new.server_name.clone()];
            Some((cert, cert.prepare(new.tls.cert.as_deref(), new.tls.key.as_deref(), &new.data_dir, &names)?))
        }
        None => None,
    };
    let now = crate::clock::unix_now();
    for entry in &new.opers {
        server
            .accounts
            .upsert_oper(&entry.name, &entry.password_hash, now)
            .map_err(|source| ReloadError::Operators(OperatorsError::Account { name: entry.name.clone(), source }))?;
    }
    let tls_fingerprint = certificate.map(|(cert, prepared)| cert.install(prepared).fingerprint);
    // The same text is the same configuration: nothing to swap (and no
    // generation to keep, `live.rs`).
    let changed = format!("{new:?}") != format!("{old:?}");
    if changed {
        let l = &new.limits;
        server.irc_limits.set(l.max_connections, l.max_connections_per_ip);
        server.http_limits.set(new.files.max_connections, new.files.max_connections_per_ip);
        let window = Duration::from_secs(l.oper_failure_window_secs);
        server.operators.failures().set_limits(l.oper_failures_per_ip, l.oper_failures_global, window);
        let a = &new.accounts;
        let window = Duration::from_secs(a.registration_window_secs);
        server.registrations.set_limits(a.registrations_per_ip, a.registrations_total, window);
        server.log.set_rotation(new.log_rotation());
        server.log.set_message_bodies(new.log.message_bodies);
        if let Some(history) = &server.history {
            history.set_config(new.history.clone());
        }
        let history = server.history.as_ref().map(|_| &new.history);
        server.isupport.replace(crate::server::isupport_tokens(&new, history));
        server.config.replace(new);
    }
    Ok((restart, changed, tls_fingerprint))
}

/// Puts back into `new` the running values of the settings read only at
/// start, and returns the keys among them whose value the file changed.
pub fn keep_restart_only(new: &mut Config, old: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut c = Keep { changed: &mut changed };
    c.keep("server_name", &mut new.server_name, &old.server_name);
    c.keep("data_dir", &mut new.data_dir, &old.data_dir);
    c.keep("irc.listen", &mut new.irc.listen, &old.irc.listen);
    c.keep("irc.tls_listen", &mut new.irc.tls_listen, &old.irc.tls_listen);
    c.keep("irc.sts_duration_secs", &mut new.irc.sts_duration_secs, &old.irc.sts_duration_secs);
    c.keep("irc.lobby", &mut new.irc.lobby, &old.irc.lobby);
    c.keep("irc.auto_join", &mut new.irc.auto_join, &old.irc.auto_join);
    c.keep("files.listen", &mut new.files.listen, &old.files.listen);
    c.keep("files.tls_listen", &mut new.files.tls_listen, &old.files.tls_listen);
    c.keep("files.public_url", &mut new.files.public_url, &old.files.public_url);
    c.keep("files.dir", &mut new.files.dir, &old.files.dir);
    c.keep("files.token_ttl_secs", &mut new.files.token_ttl_secs, &old.files.token_ttl_secs);
    let (n, o) = (&mut new.files.max_concurrent_transfers, &old.files.max_concurrent_transfers);
    c.keep("files.max_concurrent_transfers", n, o);
    c.keep("metrics.listen", &mut new.metrics.listen, &old.metrics.listen);
    c.keep("websocket.enabled", &mut new.websocket.enabled, &old.websocket.enabled);
    c.keep("websocket.listen", &mut new.websocket.listen, &old.websocket.listen);
    // The NATS connection and this node's name are set up at start.
    c.keep("cluster", &mut new.cluster, &old.cluster);
    // The database connections are made at start.
    c.keep("database", &mut new.database, &old.database);
    c.keep("limits.worker_threads", &mut new.limits.worker_threads, &old.limits.worker_threads);
    c.keep("limits.busy_poll_us", &mut new.limits.busy_poll_us, &old.limits.busy_poll_us);
    c.keep("limits.listen_backlog", &mut new.limits.listen_backlog, &old.limits.listen_backlog);
    c.keep("limits.whowas_entries", &mut new.limits.whowas_entries, &old.limits.whowas_entries);
    // The account store checks names against the length it started with.
    c.keep("limits.nick_len", &mut new.limits.nick_len, &old.limits.nick_len);
    c.keep("log.file", &mut new.log.file, &old.log.file);
    c.keep("log.buffer_bytes", &mut new.log.buffer_bytes, &old.log.buffer_bytes);
    c.keep("history.enabled", &mut new.history.enabled, &old.history.enabled);
    c.keep("history.batch_window_ms", &mut new.history.batch_window_ms, &old.history.batch_window_ms);
    let (n, o) = (&mut new.history.prune_interval_secs, &old.history.prune_interval_secs);
    c.keep("history.prune_interval_secs", n, o);
    c.keep("history.join_replay_lines", &mut new.history.join_replay_lines, &old.history.join_replay_lines);
    changed
}

struct Keep<'a> {
    changed: &'a mut Vec<&'static str>,
}

impl Keep<'_> {
    fn keep<T: PartialEq + Clone>(&mut self, key: &'static str, new: &mut T, old: &T) {
        if new != old {
            self.changed.push(key);
            *new = old.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_at_start_keep_their_running_values_and_are_named() {
        let old = Config::default();
        let mut new = Config::default();
        new.irc.listen = vec!["127.0.0.1:7000".parse().unwrap()];
        new.limits.topic_len = 20;
        new.motd = vec!["new".into()];
        new.limits.worker_threads = 4;
        new.cluster = Some(Default::default());
        let restart = keep_restart_only(&mut new, &old);
        assert_eq!(restart, ["irc.listen", "cluster", "limits.worker_threads"]);
        assert!(new.cluster.is_none());
        assert_eq!(new.irc.listen, old.irc.listen);
        assert_eq!(new.limits.worker_threads, 1);
        assert_eq!(new.limits.topic_len, 20, "a live setting takes its new value");
        assert_eq!(new.motd, ["new"]);
        assert!(keep_restart_only(&mut Config::default(), &old).is_empty());
    }
}
