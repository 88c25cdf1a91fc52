//! `parleyd` as a library: bind the listeners, serve until shutdown, drain.
//! `main.rs` adds the command line, signals and the first-run admin; the
//! integration tests drive the real binary.

pub mod accounts;
pub mod activity_log;
pub mod admission;
pub mod backup;
pub mod batch;
pub mod busy_poll;
pub mod caps;
pub mod channel;
pub mod clock;
pub mod close_reason;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod connection;
pub mod db;
pub mod files;
mod files_chat;
pub mod history;
pub mod hostname;
pub mod labeled_response;
pub mod lifecycle;
pub mod listener;
pub mod live;
pub mod liveness;
pub mod login;
pub mod login_failures;
pub mod memory;
pub mod metrics;
pub mod operators;
pub mod outbound;
pub mod passwords;
pub mod private_file;
pub mod refusal;
pub mod registry;
pub mod relay;
pub mod reload;
pub mod scram;
pub mod server;
pub mod session;
pub mod shutdown;
pub mod spare;
pub mod sys;
pub mod systemd;
pub mod ticker;
pub mod tls;
pub mod tokens;
pub mod web_client;
pub mod websocket;

use crate::activity_log::{ActivityLog, Actor, Value};
use crate::config::Config;
use crate::operators::Operators;
use crate::server::{Identity, ServerState};
use crate::shutdown::{Shutdown, ShutdownCause};
use std::net::SocketAddr;
use std::sync::Arc;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

/// Why the server could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("cannot open activity log {path}: {source}")]
    Log { path: String, source: std::io::Error },
    #[error("cannot open the file store in {path}: {source}")]
    Store { path: String, source: std::io::Error },
    #[error("cannot load or create the token key {path}: {source}")]
    TokenKey { path: String, source: std::io::Error },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot start the housekeeping thread: {0}")]
    Ticker(std::io::Error),
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error(transparent)]
    History(#[from] history::HistoryError),
    /// A start-up task on the blocking pool failed (it panicked).
    #[error("internal error while starting: {0}")]
    Internal(String),
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterError),
    #[error("cannot set up the accounts: {0}")]
    Accounts(accounts::AccountError),
}

/// Where TLS is used and what certificate it presents.
pub struct TlsInfo {
    pub fingerprint: String,
    pub cert_path: std::path::PathBuf,
    pub generated: bool,
}

/// A bound, not yet running server.
pub struct Server {
    state: Arc<ServerState>,
    irc: Vec<TcpListener>,
    ircs: Vec<TcpListener>,
    http: Vec<TcpListener>,
    https: Vec<TcpListener>,
    /// The admin listener (`/metrics`, `/healthz`), when configured.
    admin: Vec<TcpListener>,
    /// Listeners of IRC over WebSocket's own (`websocket.listen`).
    websocket: Vec<TcpListener>,
    irc_tls: Option<tokio_rustls::TlsAcceptor>,
    http_tls: Option<tokio_rustls::TlsAcceptor>,
    tls_info: Option<TlsInfo>,
    store: Option<Arc<files::storage::Store>>,
    ticker: ticker::Ticker,
    /// Writes history in batches; stopped (after a last write) once every
    /// connection has said goodbye.
    history_writer: Option<history::Writer>,
    /// Where the file store runs, if not on the runtime that runs `run`.
    files_runtime: Option<tokio::runtime::Handle>,
}

/// Binds each address with a listen backlog of `backlog`, so a burst of
/// connects waits in the kernel's queue instead of being dropped and retried
/// a second later.
async fn bind_all(addrs: &[SocketAddr], backlog: u32) -> Result<Vec<TcpListener>, StartError> {
    let mut out = Vec::new();
    for addr in addrs {
        let bind = || -> std::io::Result<TcpListener> {
            let socket =
                if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
            socket.set_reuseaddr(true)?;
            socket.bind(*addr)?;
            socket.listen(backlog)
        };
        out.push(bind().map_err(|source| StartError::Bind { addr: *addr, source })?);
    }
    Ok(out)
}

fn local_addrs(listeners: &[TcpListener]) -> Vec<SocketAddr> {
    listeners.iter().filter_map(|l| l.local_addr().ok()).collect()
}

impl Server {
    /// Creates the data directory, opens the activity log, loads or creates
    /// the TLS certificate and binds every listener, so that port,
    /// certificate and permission problems show before `run`.
    /// `accounts` is the store `Operators::bootstrap` was given.
    pub async fn bind(
        config: Config,
        operators: Operators,
        accounts: accounts::Accounts,
    ) -> Result<Server, StartError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|source| StartError::DataDir { path: config.data_dir.display().to_string(), source })?;
        let log_path = config.data_dir.join(&config.log.file);
        let log = ActivityLog::open(&log_path, config.log.buffer_bytes, config.log.message_bodies)
            .map_err(|source| StartError::Log { path: log_path.display().to_string(), source })?
            .with_rotation(config.log_rotation());
        let backlog = config.limits.listen_backlog;
        let irc = bind_all(&config.irc.listen, backlog).await?;
        let ircs = bind_all(&config.irc.tls_listen, backlog).await?;
        let http = bind_all(&config.files.listen, backlog).await?;
        let https = bind_all(&config.files.tls_listen, backlog).await?;
        let admin = bind_all(&config.metrics.listen, backlog).await?;
        let websocket =
            if config.websocket.enabled { bind_all(&config.websocket.listen, backlog).await? } else { Vec::new() };
        let (mut irc_tls, mut http_tls, mut tls_info, mut certificate) = (None, None, None, None);
        if !ircs.is_empty() || !https.is_empty() {
            let names = vec![config.server_name.clone()];
            let (cert, key) = (config.tls.cert.as_deref(), config.tls.key.as_deref());
            let loaded = tls::Certificate::load(cert, key, &config.data_dir, &names)?;
            let info = loaded.info();
            tls_info =
                Some(TlsInfo { fingerprint: info.fingerprint, cert_path: info.cert_path, generated: info.generated });
            irc_tls = Some(loaded.acceptor(&[], tls::ClientCerts::Ask)?);
            http_tls = Some(loaded.acceptor(&[b"http/1.1"], tls::ClientCerts::DoNotAsk)?);
            certificate = Some(loaded);
        }
        let store = if http.is_empty() && https.is_empty() {
            None
        } else {
            let dir = config.files_dir();
            // A cluster's nodes share the directory (docs/CLUSTER.md).
            let opened = match &config.cluster {
                Some(c) => files::storage::Store::open_shared(&dir, &c.node_name),
                None => files::storage::Store::open(&dir),
            };
            let store = opened.map_err(|source| StartError::Store { path: dir.display().to_string(), source })?;
            Some(Arc::new(store))
        };
        // Prefer advertising the HTTPS listener when there is one.
        let advertised = local_addrs(&https)
            .first()
            .map(|a| format!("https://{a}"))
            .or_else(|| local_addrs(&http).first().map(|a| format!("http://{a}")));
        let files_url = |base: &str| format!("{}/files", base.trim_end_matches('/'));
        let public = config.files.public_url.clone();
        let filehost = store.as_ref().and(advertised).map(|default| files_url(&public.clone().unwrap_or(default)));
        // Over TLS only an https URL will do: the configured one if it is,
        // else the HTTPS listener's.
        let filehost_tls = store.as_ref().and_then(|_| {
            public
                .clone()
                .filter(|u| u.starts_with("https://"))
                .or_else(|| local_addrs(&https).first().map(|a| format!("https://{a}")))
                .map(|base| files_url(&base))
        });
        let key_path = config.data_dir.join("jwt.key");
        let tokens = tokens::Tokens::load_or_create(&key_path, &config.server_name, config.files.token_ttl_secs)
            .map_err(|source| StartError::TokenKey { path: key_path.display().to_string(), source })?;
        let sts_port = local_addrs(&ircs).first().map(|a| a.port());
        let (history, history_writer) = if config.history.enabled {
            let node = config.cluster.as_ref().map_or(String::new(), |c| c.node_name.clone());
            let (db, history, lobby) = (accounts.db().clone(), config.history.clone(), config.irc.lobby.clone());
            // On the blocking pool: PostgreSQL's client may not block a runtime thread.
            let opened = tokio::task::spawn_blocking(move || history::History::open(&db, &history, &lobby, &node))
                .await
                .map_err(|e| StartError::Internal(e.to_string()))??;
            (Some(opened.0), Some(opened.1))
        } else {
            (None, None)
        };
        let identity = Identity { operators, accounts, tokens };
        // Last: a node that cannot reach NATS refuses to start, after the
        // local problems above have had their say.
        let cluster = match &config.cluster {
            Some(c) => Some(Arc::new(cluster::Cluster::connect(c).await?)),
            None => None,
        };
        let mut state =
            ServerState::new(config, log, identity, filehost, sts_port, Shutdown::new()).with_history(history);
        state.filehost_tls = filehost_tls;
        state.tls = certificate;
        if let Some(cluster) = cluster {
            if let Some(store) = &store {
                cluster.attach_store(store.clone());
            }
            state.registry.attach_cluster(cluster.outbox());
            state.cluster = Some(cluster);
        }
        let state = state.into_shared();
        let ticker = ticker::Ticker::start(state.clone()).map_err(StartError::Ticker)?;
        Ok(Server {
            state,
            irc,
            ircs,
            http,
            https,
            admin,
            websocket,
            irc_tls,
            http_tls,
            tls_info,
            store,
            ticker,
            history_writer,
            files_runtime: None,
        })
    }

    /// The bound plain-text IRC addresses (with real ports when 0 was asked for).
    pub fn irc_addrs(&self) -> Vec<SocketAddr> {
        local_addrs(&self.irc)
    }

    /// The bound TLS IRC addresses.
    pub fn ircs_addrs(&self) -> Vec<SocketAddr> {
        local_addrs(&self.ircs)
    }

    /// The bound HTTP (file store) addresses.
    pub fn http_addrs(&self) -> Vec<SocketAddr> {
        local_addrs(&self.http)
    }

    /// The bound HTTPS (file store) addresses.
    pub fn https_addrs(&self) -> Vec<SocketAddr> {
        local_addrs(&self.https)
    }

    /// The bound admin (metrics) addresses.
    pub fn admin_addrs(&self) -> Vec<SocketAddr> {
        local_addrs(&self.admin)
    }

    /// The bound addresses of IRC over WebSocket's own listeners.
    pub fn websocket_addrs(&self) -> Vec<SocketAddr> {
        local_addrs(&self.websocket)
    }

    /// The TLS certificate in use, if any listener uses TLS.
    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.tls_info.as_ref()
    }

    /// Runs the file store's listeners and transfers on `runtime` instead
    /// of the one that runs [`Server::run`], so that a large download does
    /// not share a thread with the chat (`main.rs` does this when IRC has
    /// a single thread).
    pub fn run_files_on(&mut self, runtime: tokio::runtime::Handle) {
        self.files_runtime = Some(runtime);
    }

    /// Reloads the configuration (`SIGHUP`; `reload/`).
    pub fn reload_handle(&self) -> reload::Handle {
        reload::Handle(self.state.clone())
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
        let limits = state.irc_limits.clone();
        let show = |l: &[TcpListener]| local_addrs(l).iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",");
        state.log.record(
            "start",
            Actor::server(),
            &[
                ("irc", Value::Text(&show(&self.irc))),
                ("ircs", Value::Text(&show(&self.ircs))),
                ("http", Value::Text(&show(&self.http))),
                ("https", Value::Text(&show(&self.https))),
            ],
        );
        let irc_listeners = self.irc.into_iter().map(|l| (l, None));
        let ircs_listeners = self.ircs.into_iter().map(|l| (l, self.irc_tls.clone()));
        for (listener, tls) in irc_listeners.chain(ircs_listeners) {
            tracker.spawn(listener::accept_irc(
                listener,
                tls,
                state.clone(),
                limits.clone(),
                tracker.clone(),
                state.shutdown.listener(),
            ));
        }
        for listener in self.admin {
            tracker.spawn(metrics::http::serve(listener, state.clone(), self.store.clone(), state.shutdown.listener()));
        }
        // IRC over WebSocket: one endpoint under the IRC connection limits.
        let endpoint = state
            .config
            .websocket
            .enabled
            .then(|| Arc::new(websocket::Endpoint::new(state.clone(), limits.clone(), tracker.clone())));
        // HTTP connections (before any upgrade) count under the file store's limits.
        let http_limits = state.http_limits.clone();
        if let Some(endpoint) = &endpoint {
            let site = Arc::new(websocket::Site { endpoint: endpoint.clone(), secure: false, chat: None });
            for listener in self.websocket {
                let (limits, tasks, stop) = (http_limits.clone(), tracker.clone(), state.shutdown.listener());
                tracker.spawn(websocket::accept(listener, site.clone(), limits, tasks, stop));
            }
        }
        let chat = self.files_runtime.as_ref().map(|_| tokio::runtime::Handle::current());
        let socket = |secure| {
            let chat = chat.clone();
            endpoint.clone().map(|endpoint| websocket::route(Arc::new(websocket::Site { endpoint, secure, chat })))
        };
        if let Some(store) = self.store {
            let plain_url = state.filehost.clone().unwrap_or_default();
            let files = Arc::new(files::FileState {
                config: state.config.clone(),
                log: state.log.clone(),
                tokens: state.tokens.clone(),
                accounts: state.accounts.clone(),
                failures: state.operators.failures().clone(),
                chat: state.clone(),
                store,
                uploads: Default::default(),
                transfers: Arc::new(tokio::sync::Semaphore::new(state.config.files.max_concurrent_transfers)),
                base_url: plain_url.clone(),
                socket: socket(false),
            });
            // Answers over HTTPS name https URLs (Location, share links).
            let tls_url = state.filehost_tls.clone().unwrap_or(plain_url);
            let files_tls = Arc::new(files.with_base_url(tls_url, socket(true)));
            let plain = self.http.into_iter().map(|l| (l, None, files.clone()));
            let secure = self.https.into_iter().map(|l| (l, self.http_tls.clone(), files_tls.clone()));
            for (listener, tls, files) in plain.chain(secure) {
                let (limits, tasks, stop) = (http_limits.clone(), tracker.clone(), state.shutdown.listener());
                let accept = move |listener| files::accept_http(listener, tls, files, limits, tasks, stop);
                let Some(runtime) = &self.files_runtime else {
                    tracker.spawn(accept(listener));
                    continue;
                };
                // The listener moves to the file store's runtime, registered
                // with that runtime's reactor there.
                let moved = listener.into_std().and_then(|l| {
                    let _in_runtime = runtime.enter();
                    TcpListener::from_std(l)
                });
                match moved {
                    Ok(listener) => {
                        runtime.spawn(tracker.track_future(accept(listener)));
                    }
                    Err(e) => tracing::error!(error = %e, "moving an HTTP listener to the file store's runtime failed"),
                }
            }
        }
        if let Some(cluster) = &state.cluster {
            tracker.spawn(cluster.clone().run(state.clone()));
        }
        let mut stop = state.shutdown.listener();
        let cause = stop.recv().await;
        tracing::info!(by = %cause.by, reason = %cause.reason, "shutting down");
        lifecycle::drain(&state, &tracker).await;
        if let Some(cluster) = &state.cluster {
            // The goodbyes reach the other nodes before the process ends.
            cluster.flush(std::time::Duration::from_secs(2)).await;
        }
        if let Some(writer) = self.history_writer {
            // Blocks until the last batch is on disk.
            let _ = tokio::task::spawn_blocking(move || writer.stop()).await;
        }
        // Its tick in progress ends first: the log's last lines follow it.
        self.ticker.stop();
        state.log.record(
            "shutdown",
            Actor::server(),
            &[("by", Value::Text(&cause.by)), ("reason", Value::Text(&cause.reason))],
        );
        state.log.flush();
        cause
    }
}
