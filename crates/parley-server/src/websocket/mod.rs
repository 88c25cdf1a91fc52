//! IRC over WebSocket (the IRCv3 `websocket` extension): `GET /socket` on
//! the file store's HTTP and HTTPS listeners and on `websocket.listen`.
//!
//! This module owns the upgrade: the `Origin` check (before anything else
//! happens), the subprotocol choice (`text.ircv3.net` or
//! `binary.ircv3.net`, in the client's order; text when none is asked
//! for), the connection limits, and handing the upgraded socket to
//! `connection::serve` as one more transport ([`transport`]). From there a
//! WebSocket client is a session like any other: the same framing, limits,
//! flood control, SendQ, activity log and shutdown drain. It never reads
//! or writes IRC lines itself.
//!
//! Where the session runs: a plain-HTTP socket is moved to the chat's
//! runtime after the upgrade (when the file store runs on a runtime of its
//! own, see `Server::run_files_on`), so a WebSocket client is served on the
//! same thread as TCP clients and a large download never delays its chat.
//! An HTTPS socket cannot be moved (the TLS state is not ours to take
//! apart): its session stays on the file store's runtime, which is
//! correct, only less isolated from transfers.

mod outlet;
pub mod transport;

use crate::activity_log::{Actor, Value};
use crate::admission::{ConnectionLimits, Slot};
use crate::connection::{self, Output, Transport};
use crate::files::errors::ApiError;
use crate::files::Peer;
use crate::server::ServerState;
use crate::shutdown::ShutdownListener;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig as Framing};
use tokio_tungstenite::WebSocketStream;
use tokio_util::task::TaskTracker;

/// The path of the socket (gamja's default; the file store's router
/// mounts it there).
pub use crate::files::SOCKET_PATH as PATH;

/// The `/socket` route of the file store's router, answering for `site`.
pub fn route(site: Arc<Site>) -> axum::routing::MethodRouter<Arc<crate::files::FileState>> {
    axum::routing::get(upgrade).layer(Extension(site))
}
/// The two subprotocols of the IRCv3 extension.
pub const TEXT: &str = "text.ircv3.net";
pub const BINARY: &str = "binary.ircv3.net";
/// Room above the longest line framing accepts, so a line a little too
/// long still reaches framing (and gets 417) instead of being refused by
/// the WebSocket layer with the connection.
const MESSAGE_SLACK: usize = 1024;
/// tungstenite's read buffer, and the most one read of the socket takes.
const READ_BUFFER: usize = 1024;

/// What every `/socket` shares: the chat, the IRC connection limits, the
/// tracker the shutdown drain waits on, and the origin rule.
pub struct Endpoint {
    server: Arc<ServerState>,
    limits: Arc<ConnectionLimits>,
    tracker: TaskTracker,
}

/// One listener's view of the endpoint.
pub struct Site {
    pub endpoint: Arc<Endpoint>,
    /// HTTPS: the sessions count as secure.
    pub secure: bool,
    /// The chat's runtime, when this listener runs on another one (the
    /// file store's): plain sockets move there after the upgrade.
    pub chat: Option<tokio::runtime::Handle>,
}

/// Which pages may open the socket (`websocket.allowed_origins`), read
/// from the config at each request, so a reload changes it.
enum Origins<'a> {
    Any,
    /// These origins exactly (ASCII case-insensitive).
    List(&'a [String]),
    /// The origin of `files.public_url`.
    PublicUrl(String),
    /// Pages served by the host and port the request was sent to.
    SameHost,
}

impl Endpoint {
    pub fn new(server: Arc<ServerState>, limits: Arc<ConnectionLimits>, tracker: TaskTracker) -> Endpoint {
        Endpoint { server, limits, tracker }
    }

    fn origins(&self) -> Origins<'static> {
        let config = self.server.config.current();
        match &config.websocket.allowed_origins {
            Some(list) if list.iter().any(|o| o == "*") => Origins::Any,
            Some(list) => Origins::List(list),
            None => match config.files.public_url.as_deref().and_then(origin_of) {
                Some(origin) => Origins::PublicUrl(origin),
                None => Origins::SameHost,
            },
        }
    }

    fn origin_allowed(&self, origin: &[u8], headers: &HeaderMap, secure: bool) -> bool {
        match self.origins() {
            Origins::Any => true,
            Origins::List(list) => list.iter().any(|o| o.as_bytes().eq_ignore_ascii_case(origin)),
            Origins::PublicUrl(o) => o.as_bytes().eq_ignore_ascii_case(origin),
            Origins::SameHost => {
                let scheme: &[u8] = if secure { b"https://" } else { b"http://" };
                let host = headers.get(header::HOST).map(HeaderValue::as_bytes);
                match (origin.strip_prefix(scheme), host) {
                    (Some(authority), Some(host)) => authority.eq_ignore_ascii_case(host),
                    _ => false,
                }
            }
        }
    }

    /// The WebSocket layer's limits: a message may hold the longest line
    /// with tags, and a little more. Its read buffer is allocated with the
    /// connection and kept, so it is small (clients send short lines; a
    /// longer message grows it); tungstenite writes only its own control
    /// frames (the lines go through `outlet`), at once.
    fn framing(&self) -> Framing {
        let limits = &self.server.config.limits;
        let max = limits.max_line_bytes + limits.max_tag_bytes + MESSAGE_SLACK;
        Framing::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(0)
            .max_message_size(Some(max))
            .max_frame_size(Some(max))
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{}://{}", scheme.to_ascii_lowercase(), authority))
}

/// The subprotocol to answer with: the first of the client's that the
/// server speaks, in the client's order. `None`: the client asked for
/// none the server speaks (or none at all), so the answer names none and
/// lines go as text.
fn choose_protocol(headers: &HeaderMap) -> Option<&'static str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find_map(|p| [TEXT, BINARY].into_iter().find(|known| p.eq_ignore_ascii_case(known)))
}

/// Whether a header holds `token` in its comma-separated list.
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// `GET /socket`: checks the origin, the handshake and the connection
/// limits, answers `101 Switching Protocols`, and serves the upgraded
/// connection as an IRC session.
pub async fn upgrade(
    Extension(site): Extension<Arc<Site>>,
    Extension(peer): Extension<Peer>,
    mut req: axum::extract::Request,
) -> Response {
    let ep = &site.endpoint;
    let headers = req.headers();
    if let Some(origin) = headers.get(header::ORIGIN) {
        if !ep.origin_allowed(origin.as_bytes(), headers, site.secure) {
            let shown = String::from_utf8_lossy(origin.as_bytes()).into_owned();
            ep.server.log.record(
                "websocket_refused",
                Actor { conn: 0, addr: Some(peer.0), nick: None },
                &[("origin", Value::Text(&shown))],
            );
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                format!(
                    "Pages from {shown} may not open this server's IRC socket. To allow them, add \"{shown}\" to \
                     websocket.allowed_origins in the server's configuration."
                ),
            )
            .into_response();
        }
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY).map(|k| derive_accept_key(k.as_bytes()));
    let is_upgrade = req.method() == Method::GET
        && has_token(headers, header::UPGRADE, "websocket")
        && has_token(headers, header::CONNECTION, "upgrade");
    let (true, Some(accept)) = (is_upgrade, key) else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "not_websocket",
            "This is the IRC-over-WebSocket endpoint: open it with a WebSocket client (subprotocol text.ircv3.net \
             or binary.ircv3.net).",
        )
        .into_response();
    };
    if headers.get(header::SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
        let mut resp = ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "websocket_version",
            "Only WebSocket version 13 (RFC 6455) is spoken here.",
        )
        .into_response();
        resp.headers_mut().insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return resp;
    }
    let protocol = choose_protocol(headers);
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return ApiError::new(StatusCode::BAD_REQUEST, "not_websocket", "This connection cannot be upgraded.")
            .into_response();
    };
    let slot = match ep.limits.try_acquire(peer.0.ip()) {
        Ok(slot) => slot,
        Err(why) => {
            let actor = Actor { conn: 0, addr: Some(peer.0), nick: None };
            ep.server.log.record("limit", actor, &[("what", Value::Text("connections")), ("reason", Value::Text(why))]);
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "connection_limit", why).into_response();
        }
    };
    let binary = protocol == Some(BINARY);
    let conn = Upgrade { endpoint: ep.clone(), peer: peer.0, slot, binary, secure: site.secure };
    let chat = site.chat.clone();
    // On the tracker, so the shutdown drain waits for the session too.
    ep.tracker.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => conn.serve(upgraded, chat).await,
            Err(e) => tracing::debug!(error = %e, "WebSocket upgrade failed"),
        }
    });
    let mut resp = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::SEC_WEBSOCKET_ACCEPT, HeaderValue::from_str(&accept).expect("base64 is a header value"));
    if let Some(protocol) = protocol {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(protocol));
    }
    resp
}

/// A listener of its own (`websocket.listen`): plain HTTP that serves
/// `/socket` and nothing else, on the chat's runtime. HTTP connections
/// count under `limits` (the file store's) until they upgrade.
pub async fn accept(
    listener: TcpListener,
    site: Arc<Site>,
    limits: Arc<ConnectionLimits>,
    tracker: TaskTracker,
    mut shutdown: ShutdownListener,
) {
    let app = axum::Router::new().route(PATH, axum::routing::get(upgrade).layer(Extension(site.clone()))).fallback(
        || async {
            ApiError::new(StatusCode::NOT_FOUND, "no_route", "Only IRC over WebSocket is served here, at /socket.")
        },
    );
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.recv() => return,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "WebSocket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = limits.try_acquire(peer.ip()) else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (app, stop, site) = (app.clone(), shutdown.clone(), site.clone());
        tracker.spawn(async move {
            let _slot = slot;
            crate::files::serve_conn(stream, peer, app, &site.endpoint.server.config, stop).await;
        });
    }
}

/// The TCP socket under a plain-HTTP upgrade, with the bytes the client
/// sent after its handshake that were read already; an HTTPS one (or
/// anything else) comes back as it is.
fn plain_socket(upgraded: hyper::upgrade::Upgraded) -> Result<(TcpStream, Vec<u8>), hyper::upgrade::Upgraded> {
    let upgraded = match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => return Ok((parts.io.into_inner(), parts.read_buf.to_vec())),
        Err(upgraded) => upgraded,
    };
    // Served by the zero-copy path first, which handed hyper a `Rewind`.
    let parts = upgraded.downcast::<TokioIo<crate::files::zero_copy::Rewind>>()?;
    let (unread, socket) = parts.io.into_inner().into_parts();
    // What hyper read but did not use comes before what it never read.
    let mut early = parts.read_buf.to_vec();
    early.extend_from_slice(&unread);
    Ok((socket, early))
}

/// An accepted upgrade, waiting for its socket.
struct Upgrade {
    endpoint: Arc<Endpoint>,
    peer: SocketAddr,
    slot: Slot,
    binary: bool,
    secure: bool,
}

impl Upgrade {
    async fn serve(self, upgraded: hyper::upgrade::Upgraded, chat: Option<tokio::runtime::Handle>) {
        match plain_socket(upgraded) {
            Ok((socket, early)) => match chat {
                Some(chat) => self.move_to(&chat, socket, early),
                None => self.session(socket, early).await,
            },
            Err(upgraded) => self.session(TokioIo::new(upgraded), Vec::new()).await,
        }
    }

    /// Serves a plain socket on the chat's runtime, registered with that
    /// runtime's reactor.
    fn move_to(self, chat: &tokio::runtime::Handle, socket: TcpStream, early: Vec<u8>) {
        let socket = match socket.into_std() {
            Ok(socket) => socket,
            Err(e) => return tracing::warn!(error = %e, "moving a WebSocket to the chat's runtime failed"),
        };
        let tracker = self.endpoint.tracker.clone();
        tracker.spawn_on(
            async move {
                match TcpStream::from_std(socket) {
                    Ok(socket) => self.session(socket, early).await,
                    Err(e) => tracing::warn!(error = %e, "moving a WebSocket to the chat's runtime failed"),
                }
            },
            chat,
        );
    }

    /// Serves the WebSocket as an IRC connection until it ends. `early` is
    /// what the client sent after its handshake and the HTTP layer read.
    async fn session<S>(self, io: S, early: Vec<u8>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let framing = self.endpoint.framing();
        let ws =
            WebSocketStream::from_partially_read(outlet::Outlet::new(io), early, Role::Server, Some(framing)).await;
        let (rd, wr) = transport::split(ws, self.binary);
        let out = Output::Task { writer: wr, certfp: None, transport: Transport::WebSocket { secure: self.secure } };
        connection::serve(rd, out, self.peer, self.slot, self.endpoint.server.clone()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_protocols(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_clients_order_of_subprotocols_wins() {
        assert_eq!(choose_protocol(&with_protocols(&["binary.ircv3.net, text.ircv3.net"])), Some(BINARY));
        assert_eq!(choose_protocol(&with_protocols(&["text.ircv3.net", "binary.ircv3.net"])), Some(TEXT));
        assert_eq!(choose_protocol(&with_protocols(&["chat, binary.ircv3.net"])), Some(BINARY));
        assert_eq!(choose_protocol(&with_protocols(&["chat"])), None);
        assert_eq!(choose_protocol(&with_protocols(&[])), None);
    }

    #[test]
    fn the_origin_of_a_url_is_scheme_host_and_port() {
        assert_eq!(origin_of("https://chat.example.org/files").as_deref(), Some("https://chat.example.org"));
        assert_eq!(origin_of("HTTP://h:6680").as_deref(), Some("http://h:6680"));
        assert_eq!(origin_of("nonsense"), None);
    }
}
