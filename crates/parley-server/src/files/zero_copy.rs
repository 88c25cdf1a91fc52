//! Plain-HTTP downloads sent by the kernel: `sendfile` copies the blob to
//! the socket with no trip through user space, which hyper cannot do (its
//! bodies are buffers). Written by hand because it is measurably better:
//! docs/BENCHMARKS.md ("File transfers") has the same-run numbers against
//! nginx, which serves files the same way.
//!
//! Each request head on a plain connection is read and parsed here
//! (`httparse`, the parser hyper itself uses). A simple `GET` or `HEAD`
//! under `/files/` (no body, no upgrade) is answered here: the request
//! goes through the same router as every other (authentication, CORS, the
//! guards, `download::serve`), and when the answer is a blob (it carries
//! `download::ZeroCopy`), its head is written here and its bytes sent with
//! `sendfile`; any other answer to such a request (an error, a 304) is
//! small and written whole. Anything else — an upload, a listing, a
//! WebSocket, a head that does not parse — hands the connection, with the
//! bytes already read, to hyper for good (`serve_conn`), so hyper stays the
//! one HTTP implementation for everything but the bytes of a download.

use super::download::ZeroCopy;
use super::Peer;
use crate::config::Config;
use crate::shutdown::ShutdownListener;
use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};
use axum::Router;
use bytes::{Buf, Bytes, BytesMut};
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest, ReadBuf};
use tokio::net::TcpStream;
use tower::ServiceExt;

/// Largest request head read here; a longer one goes to hyper, which
/// refuses it with the same bound (`serve_conn`'s buffer).
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most header lines parsed here; more go to hyper.
const MAX_HEADERS: usize = 64;
/// Largest answer to a fast-path request that is not a blob (errors, 304):
/// collected and written whole.
const MAX_SMALL_BODY: usize = 1 << 20;
/// Bytes per `sendfile` call (the kernel stops near 2 GiB anyway).
const SENDFILE_CHUNK: usize = 1 << 30;

/// Serves one plain HTTP connection: downloads here, the rest through hyper.
pub async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    config: &Config,
    mut shutdown: ShutdownListener,
) {
    let header_timeout = Duration::from_secs(config.files.header_timeout_secs);
    let grace = Duration::from_secs(config.limits.shutdown_grace_secs);
    let mut buf = BytesMut::new();
    loop {
        // One request head, within the header timeout.
        let deadline = tokio::time::Instant::now() + header_timeout;
        let parsed = loop {
            if !buf.is_empty() {
                match parse(&buf, peer) {
                    Parsed::Partial if buf.len() < MAX_HEAD_BYTES => {}
                    Parsed::Partial | Parsed::Other => {
                        let rewound = Rewind { prefix: buf.freeze(), inner: stream };
                        return super::serve_conn(rewound, peer, app, config, shutdown).await;
                    }
                    Parsed::Fast(fast) => break fast,
                }
            }
            buf.reserve(4096);
            let read = tokio::select! {
                _ = shutdown.recv() => return,
                read = tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)) => read,
            };
            match read {
                Ok(Ok(n)) if n > 0 => {}
                // Closed, failed, or too slow: as hyper does, close without a word.
                _ => return,
            }
        };
        buf.advance(parsed.head_len);
        let answer = app.clone().oneshot(parsed.request).await.unwrap_or_else(|never| match never {});
        let kept = {
            let respond = respond(&mut stream, answer, parsed.head_only, parsed.keep_alive, config);
            tokio::pin!(respond);
            tokio::select! {
                kept = respond.as_mut() => kept,
                // A download under way gets the grace period to finish.
                _ = shutdown.recv() => {
                    let _ = tokio::time::timeout(grace, respond).await;
                    return;
                }
            }
        };
        if !kept {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// A request this module answers itself.
struct Fast {
    request: Request<Body>,
    head_len: usize,
    head_only: bool,
    keep_alive: bool,
}

enum Parsed {
    /// The head is not complete yet.
    Partial,
    /// Hyper's to answer (from the start of `buf`).
    Other,
    Fast(Box<Fast>),
}

/// Parses the head at the start of `buf`, if it is a download.
fn parse(buf: &[u8], peer: SocketAddr) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    let (Some(method), Some(path), Some(minor)) = (req.method, req.path, req.version) else {
        return Parsed::Other;
    };
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Parsed::Other,
    };
    let route = path.split('?').next().unwrap_or("");
    let Some(rest) = route.strip_prefix("/files/") else {
        return Parsed::Other;
    };
    if rest.is_empty() || rest.starts_with("uploads/") {
        return Parsed::Other;
    }
    let mut builder = Request::builder()
        .method(if head_only { Method::HEAD } else { Method::GET })
        .uri(path)
        .version(if minor == 1 { Version::HTTP_11 } else { Version::HTTP_10 });
    let mut keep_alive = minor == 1;
    for h in req.headers.iter() {
        let name = h.name;
        // A body, an upgrade or an expectation: hyper's business.
        let bodiless = name.eq_ignore_ascii_case("content-length") && h.value.iter().all(|b| *b == b'0');
        if (name.eq_ignore_ascii_case("content-length") && !bodiless)
            || name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("upgrade")
            || name.eq_ignore_ascii_case("expect")
        {
            return Parsed::Other;
        }
        if name.eq_ignore_ascii_case("connection") {
            let closes = h.value.split(|b| *b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
            keep_alive &= !closes;
        }
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(h.value)) else {
            return Parsed::Other;
        };
        builder = builder.header(name, value);
    }
    match builder.extension(Peer(peer)).body(Body::empty()) {
        Ok(request) => Parsed::Fast(Box::new(Fast { request, head_len, head_only, keep_alive })),
        Err(_) => Parsed::Other,
    }
}

/// Writes the answer: a blob's head then its bytes by `sendfile`, or a
/// small answer whole. Returns whether the connection may serve another
/// request.
async fn respond(
    stream: &mut TcpStream,
    answer: Response<Body>,
    head_only: bool,
    keep_alive: bool,
    config: &Config,
) -> bool {
    let idle = Duration::from_secs(config.files.body_idle_timeout_secs);
    let (parts, body) = answer.into_parts();
    let blob = parts.extensions.get::<ZeroCopy>().filter(|_| !head_only).cloned();
    // What is not a blob is small (an error, a 304, a HEAD): collected.
    let small = if blob.is_some() || head_only {
        Bytes::new()
    } else {
        match http_body_util::Limited::new(body, MAX_SMALL_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                tracing::warn!(error = %e, "a download answer was too large to write whole");
                return false;
            }
        }
    };
    let mut head = Vec::with_capacity(512);
    let status = parts.status;
    let bodiless = status.is_informational() || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        // As hyper does: no length on an answer that never has a body.
        if bodiless && name == header::CONTENT_LENGTH {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if !parts.headers.contains_key(header::CONTENT_LENGTH) && !bodiless && !head_only {
        head.extend_from_slice(format!("content-length: {}\r\n", small.len()).as_bytes());
    }
    if !parts.headers.contains_key(header::DATE) {
        head.extend_from_slice(format!("date: {}\r\n", httpdate::fmt_http_date(SystemTime::now())).as_bytes());
    }
    if !keep_alive {
        head.extend_from_slice(b"connection: close\r\n");
    }
    head.extend_from_slice(b"\r\n");
    if !bodiless && !head_only {
        head.extend_from_slice(&small);
    }
    if !matches!(tokio::time::timeout(idle, stream.write_all(&head)).await, Ok(Ok(()))) {
        return false;
    }
    match blob {
        Some(ZeroCopy { blob, .. }) => send_blob(stream, &blob.file, blob.start, blob.len, idle).await && keep_alive,
        None => keep_alive,
    }
}

/// Sends `len` bytes of `file` from `start` with `sendfile`, each wait for
/// room in the socket bounded by `idle`. False if it could not finish.
async fn send_blob(stream: &TcpStream, file: &std::fs::File, start: u64, len: u64, idle: Duration) -> bool {
    let counted = &crate::metrics::get().download_bytes;
    let end = start + len;
    let mut offset = start;
    while offset < end {
        let want = usize::try_from(end - offset).unwrap_or(SENDFILE_CHUNK).min(SENDFILE_CHUNK);
        match tokio::time::timeout(idle, stream.writable()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return false,
            Err(_) => {
                tracing::debug!("a download stalled: the client stopped reading");
                return false;
            }
        }
        let sent =
            stream.try_io(Interest::WRITABLE, || crate::sys::sendfile(stream.as_fd(), file.as_fd(), &mut offset, want));
        match sent {
            Ok(0) => return false, // the blob is shorter than its entry says
            Ok(n) => {
                counted.inc_by(n as u64);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
    }
    true
}

/// The connection as hyper gets it: the bytes already read, then the socket.
pub(crate) struct Rewind {
    prefix: Bytes,
    inner: TcpStream,
}

impl Rewind {
    /// The bytes not yet read, and the socket (`/socket` takes the socket
    /// back after an upgrade).
    pub(crate) fn into_parts(self) -> (Bytes, TcpStream) {
        (self.prefix, self.inner)
    }
}

impl AsyncRead for Rewind {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 1))
    }

    fn fast(head: &str) -> Option<Fast> {
        match parse(head.as_bytes(), peer()) {
            Parsed::Fast(f) => Some(*f),
            _ => None,
        }
    }

    #[test]
    fn downloads_are_fast_and_everything_else_is_hyper_s() {
        let f = fast("GET /files/a.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\nNEXT").unwrap();
        assert_eq!(f.head_len, "GET /files/a.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n".len());
        assert!(f.keep_alive && !f.head_only);
        assert_eq!(f.request.headers()["authorization"], "Bearer t");
        assert!(f.request.extensions().get::<Peer>().is_some());
        assert!(fast("HEAD /files/s/tok/a.txt HTTP/1.0\r\n\r\n").is_some_and(|f| f.head_only && !f.keep_alive));
        assert!(fast("GET /files/a HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n").is_some_and(|f| !f.keep_alive));
        for other in [
            "PUT /files/a HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
            "GET /files HTTP/1.1\r\n\r\n",
            "GET /files/ HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "GET /socket HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            "GET /files/a HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            "GET /files/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HEAD /files/uploads/abc HTTP/1.1\r\n\r\n",
            "GET /files/a HTTP/1.1\r\nBad Header: x\r\n\r\n",
        ] {
            assert!(matches!(parse(other.as_bytes(), peer()), Parsed::Other), "{other:?}");
        }
        assert!(matches!(parse(b"GET /files/a HTTP/1.1\r\nHost:", peer()), Parsed::Partial));
    }
}
