//! The HTTP file store: the seed's upload and download, as a second
//! listener of `parleyd`.
//!
//! `storage` owns the bytes on disk (all-or-nothing commits); `auth` who is
//! calling (Basic with an account, Bearer with an EXTJWT token); `upload`,
//! `resumable`, `download`, `listing` and `share` the HTTP semantics of
//! each kind of request, with `limits` and `commit` the checks and the
//! ending every upload shares, and `uploads` the resumable ones in
//! progress; `cors` what browsers on other origins may do; `routes` the
//! small handlers and the guards every response passes; `names` what a
//! file may be called; `headers` the header formats; `zero_copy` plain
//! HTTP downloads sent with `sendfile`. This module runs the accept loop:
//! hyper HTTP/1.1 per connection, with a header read timeout and a bounded
//! header buffer, and a graceful close on shutdown.

pub mod auth;
pub mod commit;
pub mod cors;
pub mod download;
pub mod errors;
#[cfg(test)]
mod fuzz;
pub mod headers;
mod history_export;
pub mod limits;
pub mod listing;
pub mod names;
pub mod resumable;
pub mod routes;
pub mod share;
mod shared_dir;
pub mod storage;
pub mod upload;
pub mod uploads;
pub(crate) mod zero_copy;

use crate::accounts::Accounts;
use crate::activity_log::ActivityLog;
use crate::admission::ConnectionLimits;
use crate::config::Config;
use crate::login_failures::LoginFailures;
use crate::shutdown::ShutdownListener;
use crate::tokens::Tokens;
use axum::routing::{get, head, post, MethodRouter};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use storage::Store;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Where IRC over WebSocket is served (gamja's default path).
pub const SOCKET_PATH: &str = "/socket";

/// Bytes read from disk per chunk of a download body.
pub const READ_CHUNK: usize = 256 * 1024;

/// The peer address of an HTTP request, put in its extensions per connection.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// The IRC session an EXTJWT token belongs to, as the file store sees it.
pub struct Holder {
    pub nick: String,
    /// The account the session is logged in to, if any.
    pub account: Option<String>,
    pub oper: bool,
}

/// What the file store needs of the chat, and no more: who holds a live
/// session, and a way to tell the lobby about an upload. The server
/// implements it over its registry; the store never sees the registry.
pub trait Chat: Send + Sync {
    /// The live IRC session `sid`, if it is still connected.
    fn holder(&self, sid: u64) -> Option<Holder>;
    /// A server notice to the lobby.
    fn announce(&self, text: &str);
    /// `name` changed here (committed, deleted, its link changed), with
    /// the lobby notice given for it: other nodes sharing the store hear
    /// of it. Nothing to do on a single node.
    fn file_changed(&self, _name: &str, _announce: Option<&str>) {}
    /// The messages `account` sent, as JSON; `None` when history is off.
    /// Blocks on the database.
    fn export_history(&self, account: &str) -> Option<Result<Vec<u8>, String>>;
}

/// What the handlers share.
pub struct FileState {
    /// The server's configuration handle: a reload reaches the file store too.
    pub config: Arc<crate::live::Live<Config>>,
    pub log: Arc<ActivityLog>,
    pub tokens: Arc<Tokens>,
    /// For HTTP Basic logins (calls block: run them on the blocking pool).
    pub accounts: Arc<Accounts>,
    /// Failed password logins, shared with SASL and OPER.
    pub failures: Arc<LoginFailures>,
    pub chat: Arc<dyn Chat>,
    pub store: Arc<Store>,
    /// Resumable uploads in progress.
    pub uploads: Arc<uploads::Uploads>,
    /// Uploads and downloads running at once.
    pub transfers: Arc<Semaphore>,
    /// The public URL of `/files`, without a trailing slash.
    pub base_url: String,
    /// IRC over WebSocket at `/socket`, when it is on: the route the
    /// `websocket` module makes (the store never names that module).
    pub socket: Option<MethodRouter<Arc<FileState>>>,
}

impl FileState {
    /// The same store answering under another public URL, with its own
    /// `/socket` site (the HTTPS listeners name https URLs, and their
    /// WebSocket clients are secure).
    pub fn with_base_url(&self, base_url: String, socket: Option<MethodRouter<Arc<FileState>>>) -> FileState {
        FileState {
            config: self.config.clone(),
            log: self.log.clone(),
            tokens: self.tokens.clone(),
            accounts: self.accounts.clone(),
            failures: self.failures.clone(),
            chat: self.chat.clone(),
            store: self.store.clone(),
            uploads: self.uploads.clone(),
            transfers: self.transfers.clone(),
            base_url,
            socket,
        }
    }
}

pub fn router(state: Arc<FileState>) -> Router {
    let mut routes = Router::new();
    if let Some(socket) = &state.socket {
        routes = routes.route(SOCKET_PATH, socket.clone());
    }
    routes
        .route("/files", get(listing::list).post(upload::post).options(routes::options_collection))
        .route("/files/", get(listing::list).post(upload::post).options(routes::options_collection))
        .route(
            "/files/{name}",
            get(download::download).put(upload::put).delete(routes::delete).options(routes::options_file),
        )
        .route("/files/{name}/share", post(share::create).delete(share::revoke).options(routes::options_share))
        .route(
            "/files/uploads/{id}",
            head(resumable::offset).patch(resumable::append).delete(resumable::cancel).options(routes::options_upload),
        )
        .route("/files/s/{token}/{name}", get(share::download).options(routes::options_shared))
        .route("/history/export", get(history_export::export))
        .merge(crate::web_client::routes())
        .fallback(routes::no_route)
        .layer(axum::middleware::from_fn_with_state(state.clone(), cors::cors))
        .layer(axum::middleware::from_fn_with_state(state.clone(), routes::guard))
        .with_state(state)
}

/// Accepts HTTP (or, with `tls`, HTTPS) connections until shutdown.
pub async fn accept_http(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Arc<FileState>,
    limits: Arc<ConnectionLimits>,
    tracker: TaskTracker,
    mut shutdown: ShutdownListener,
) {
    let app = router(state.clone());
    let timeout = Duration::from_secs(state.config.files.resumable_timeout_secs);
    let mut sweep = tokio::time::interval((timeout / 2).clamp(Duration::from_secs(1), Duration::from_secs(60)));
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.recv() => return,
            _ = sweep.tick() => {
                let removed = state.uploads.sweep(timeout);
                if removed > 0 {
                    let fields = [("count", crate::activity_log::Value::Num(removed as u64))];
                    state.log.record("uploads_abandoned", crate::activity_log::Actor::server(), &fields);
                }
                continue;
            }
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = limits.try_acquire(peer.ip()) else {
            // Over the limit: close without a word; HTTP clients retry.
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let shutdown = shutdown.clone();
        let state = state.clone();
        let tls = tls.clone();
        tracker.spawn(async move {
            let _slot = slot;
            match tls {
                None if state.config.files.sendfile => {
                    zero_copy::serve(stream, peer, app, &state.config, shutdown).await
                }
                None => serve_conn(stream, peer, app, &state.config, shutdown).await,
                Some(acceptor) => {
                    let limit = Duration::from_secs(state.config.tls.handshake_timeout_secs);
                    match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                        Ok(Ok(tls_stream)) => serve_conn(tls_stream, peer, app, &state.config, shutdown).await,
                        Ok(Err(e)) => crate::tls::log_failed_handshake(&state.log, peer, &e.to_string()),
                        Err(_) => crate::tls::log_failed_handshake(&state.log, peer, "handshake timed out"),
                    }
                }
            }
        });
    }
}

/// Serves one HTTP/1.1 connection; on shutdown, lets the request in flight
/// finish (bounded by the grace period), then closes.
pub(crate) async fn serve_conn<I>(io: I, peer: SocketAddr, app: Router, config: &Config, mut shutdown: ShutdownListener)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(Peer(peer));
        app.clone().oneshot(req.map(axum::body::Body::new))
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(config.files.header_timeout_secs))
        .max_buf_size(64 * 1024)
        .serve_connection(TokioIo::new(io), service)
        // `/socket` hands the connection over to an IRC session.
        .with_upgrades();
    let grace = Duration::from_secs(config.limits.shutdown_grace_secs);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        }
        _ = shutdown.recv() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(grace, conn).await;
        }
    }
}
