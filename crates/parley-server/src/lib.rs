//! `parleyd` as a library: bind the listeners, serve until shutdown, drain.
//! `main.rs` adds the command line, signals and the first-run admin; the
//! integration tests drive the real binary.

pub mod activity_log;
pub mod caps;
pub mod channel;
pub mod commands;
pub mod config;
pub mod connection;
pub mod files;
pub mod listener;
pub mod operators;
pub mod outbound;
pub mod registry;
pub mod relay;
pub mod server;
pub mod session;
pub mod shutdown;

use crate::activity_log::{ActivityLog, Actor, Value};
use crate::config::Config;
use crate::listener::ConnectionLimits;
use crate::operators::Operators;
use crate::server::ServerState;
use crate::shutdown::{Shutdown, ShutdownCause};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

/// Why the server could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open activity log {path}: {source}")]
    Log {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the file store in {path}: {source}")]
    Store {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot load or create the token key {path}: {source}")]
    TokenKey {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A bound, not yet running server.
pub struct Server {
    state: Arc<ServerState>,
    irc: Vec<TcpListener>,
    http: Vec<TcpListener>,
    store: Option<Arc<files::storage::Store>>,
}

impl Server {
    /// Creates the data directory, opens the activity log and binds every
    /// listener, so that port and permission problems show before `run`.
    pub async fn bind(config: Config, operators: Operators) -> Result<Server, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let log_path = config.data_dir.join(&config.log.file);
        let log = ActivityLog::open(&log_path, config.log.message_bodies).map_err(|source| {
            StartError::Log {
                path: log_path.display().to_string(),
                source,
            }
        })?;
        let mut irc = Vec::new();
        for addr in &config.irc.listen {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind {
                    addr: *addr,
                    source,
                })?;
            irc.push(l);
        }
        let mut http = Vec::new();
        for addr in &config.files.listen {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind {
                    addr: *addr,
                    source,
                })?;
            http.push(l);
        }
        let store = if http.is_empty() {
            None
        } else {
            let dir = config.files_dir();
            let store = files::storage::Store::open(&dir).map_err(|source| StartError::Store {
                path: dir.display().to_string(),
                source,
            })?;
            Some(Arc::new(store))
        };
        let filehost = http.first().and_then(|l| l.local_addr().ok()).map(|addr| {
            let base = config
                .files
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{addr}"));
            format!("{}/files", base.trim_end_matches('/'))
        });
        let key_path = config.data_dir.join("jwt.key");
        let tokens = files::auth::Tokens::load_or_create(
            &key_path,
            &config.server_name,
            config.files.token_ttl_secs,
        )
        .map_err(|source| StartError::TokenKey {
            path: key_path.display().to_string(),
            source,
        })?;
        let state = Arc::new(ServerState::new(
            config,
            log,
            operators,
            tokens,
            filehost,
            Shutdown::new(),
        ));
        Ok(Server {
            state,
            irc,
            http,
            store,
        })
    }

    /// The bound IRC addresses (with real ports when 0 was asked for).
    pub fn irc_addrs(&self) -> Vec<SocketAddr> {
        self.irc
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// The bound HTTP (file store) addresses.
    pub fn http_addrs(&self) -> Vec<SocketAddr> {
        self.http
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// The handle that stops the server (signals use it; so does DIE).
    pub fn shutdown_handle(&self) -> Shutdown {
        self.state.shutdown.clone()
    }

    /// Serves until shutdown, then waits (bounded by the grace period) for
    /// every connection to say goodbye, and flushes the activity log.
    pub async fn run(self) -> ShutdownCause {
        let state = self.state;
        let tracker = TaskTracker::new();
        let limits = ConnectionLimits::new(
            state.config.limits.max_connections,
            state.config.limits.max_connections_per_ip,
        );
        let addrs: Vec<String> = self
            .irc
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .map(|a| a.to_string())
            .collect();
        state.log.record(
            "start",
            Actor::server(),
            &[("irc", Value::Text(&addrs.join(",")))],
        );
        for listener in self.irc {
            tracker.spawn(listener::accept_irc(
                listener,
                state.clone(),
                limits.clone(),
                tracker.clone(),
                state.shutdown.listener(),
            ));
        }
        if let Some(store) = self.store {
            let files = Arc::new(files::FileState {
                server: state.clone(),
                store,
                transfers: Arc::new(tokio::sync::Semaphore::new(
                    state.config.files.max_concurrent_transfers,
                )),
                base_url: state.filehost.clone().unwrap_or_default(),
            });
            let http_limits = ConnectionLimits::new(
                state.config.files.max_connections,
                state.config.files.max_connections_per_ip,
            );
            for listener in self.http {
                tracker.spawn(files::accept_http(
                    listener,
                    files.clone(),
                    http_limits.clone(),
                    tracker.clone(),
                    state.shutdown.listener(),
                ));
            }
        }
        let mut stop = state.shutdown.listener();
        let flusher_state = state.clone();
        let flusher = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                flusher_state.log.flush();
            }
        });
        let cause = stop.recv().await;
        tracing::info!(by = %cause.by, reason = %cause.reason, "shutting down");
        tracker.close();
        let grace = Duration::from_secs(state.config.limits.shutdown_grace_secs);
        if tokio::time::timeout(grace + Duration::from_secs(2), tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close within the grace period");
        }
        flusher.abort();
        state.log.record(
            "shutdown",
            Actor::server(),
            &[
                ("by", Value::Text(&cause.by)),
                ("reason", Value::Text(&cause.reason)),
            ],
        );
        state.log.flush();
        cause
    }
}
