//! IRC over WebSocket as a byte stream, so every scenario runs unchanged
//! over `--transport ws`: reading yields each received message as one
//! CR LF-terminated line; writing sends each CR LF-terminated line as one
//! text message (`text.ircv3.net`). The WebSocket itself (handshake,
//! masking, framing) is tokio-tungstenite's.

use futures_util::{Sink, Stream};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, ClientRequestBuilder, Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

pub struct WsStream {
    ws: WebSocketStream<TcpStream>,
    /// Received bytes that did not fit the caller's buffer.
    unread: Vec<u8>,
    unread_at: usize,
    /// Bytes of the caller's buffer already queued, waiting for the flush
    /// (a write returns once they are on the socket).
    queued: usize,
}

fn io_err(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => io::ErrorKind::ConnectionAborted.into(),
        other => io::Error::other(other),
    }
}

/// Opens `ws://<addr>/socket` over `stream` with the text subprotocol.
pub async fn open(stream: TcpStream) -> io::Result<WsStream> {
    let addr = stream.peer_addr()?;
    let uri = format!("ws://{addr}/socket").parse().map_err(io::Error::other)?;
    let request = ClientRequestBuilder::new(uri).with_sub_protocol("text.ircv3.net");
    // Small buffers: a run holds thousands of these.
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await.map_err(io_err)?;
    Ok(WsStream { ws, unread: Vec::new(), unread_at: 0, queued: 0 })
}

impl WsStream {
    /// Copies what fits of the unread bytes into `buf`.
    fn drain_unread(&mut self, buf: &mut ReadBuf<'_>) {
        let rest = &self.unread[self.unread_at..];
        let n = rest.len().min(buf.remaining());
        buf.put_slice(&rest[..n]);
        self.unread_at += n;
        if self.unread_at == self.unread.len() {
            self.unread.clear();
            self.unread_at = 0;
        }
    }
}

impl AsyncRead for WsStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let start = buf.filled().len();
        loop {
            if this.unread_at < this.unread.len() {
                this.drain_unread(buf);
                if buf.remaining() == 0 {
                    return Poll::Ready(Ok(()));
                }
            }
            let next = match Pin::new(&mut this.ws).poll_next(cx) {
                Poll::Pending if buf.filled().len() > start => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
                Poll::Ready(next) => next,
            };
            let payload: Bytes = match next {
                None | Some(Ok(Message::Close(_))) => return Poll::Ready(Ok(())),
                // The error ended the stream: the next read sees its end.
                Some(Err(_)) if buf.filled().len() > start => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(io_err(e))),
                Some(Ok(Message::Text(t))) => t.into(),
                Some(Ok(Message::Binary(b))) => b,
                Some(Ok(_)) => continue,
            };
            if buf.remaining() >= payload.len() + 2 {
                buf.put_slice(&payload);
                buf.put_slice(b"\r\n");
            } else {
                this.unread.extend_from_slice(&payload);
                this.unread.extend_from_slice(b"\r\n");
            }
        }
    }
}

impl AsyncWrite for WsStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.queued == 0 {
            let mut used = 0;
            while used < buf.len() {
                match Pin::new(&mut this.ws).poll_ready(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(io_err(e))),
                    Poll::Pending if used == 0 => return Poll::Pending,
                    Poll::Pending => break,
                }
                let rest = &buf[used..];
                let len = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
                let line = rest[..len].strip_suffix(b"\n").unwrap_or(&rest[..len]);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let text = String::from_utf8_lossy(line).into_owned();
                Pin::new(&mut this.ws).start_send(Message::text(text)).map_err(io_err)?;
                used += len;
            }
            this.queued = used;
        }
        // Called again with the same bytes while the flush is pending.
        ready!(Pin::new(&mut this.ws).poll_flush(cx)).map_err(io_err)?;
        Poll::Ready(Ok(std::mem::take(&mut this.queued)))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(io_err)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_close(cx).map_err(io_err)
    }
}
