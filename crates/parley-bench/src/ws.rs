//! IRC over WebSocket as a byte stream, so every scenario runs unchanged
//! over `--transport ws`: reading yields each received message as one
//! CR LF-terminated line; writing sends each CR LF-terminated line as one
//! text message (`text.ircv3.net`). The handshake, masking and sending are
//! tokio-tungstenite's.
//!
//! Receiving is not: the fan-out's members read millions of messages, and
//! tungstenite's message layer (a `Message` and a UTF-8 check per message,
//! a zeroed read buffer per read) cost the generator 1.8× the CPU per
//! delivery that TCP does, taken from the cores the server runs on. So the
//! members read the socket themselves and cut frames with tungstenite's
//! `FrameHeader::parse`, copying each payload once, as a browser's
//! WebSocket does in native code. The server sends only whole, unmasked
//! text frames (and a close frame), which is all this reads.

use futures_util::Sink;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{ClientRequestBuilder, Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

pub struct WsStream {
    ws: WebSocketStream<Handshake>,
    /// Bytes read from the socket, `raw_at..raw_end` not yet decoded:
    /// frames, the last one possibly incomplete.
    raw: Vec<u8>,
    raw_at: usize,
    raw_end: usize,
    /// Decoded lines that did not fit the caller's buffer.
    unread: Vec<u8>,
    unread_at: usize,
    /// The server's close frame came: the stream has ended.
    closed: bool,
    /// Bytes of the caller's buffer already queued, waiting for the flush
    /// (a write returns once they are on the socket).
    queued: usize,
}

/// How many bytes one read of the socket asks for.
const READ_SIZE: usize = 16 * 1024;

/// The TCP stream under tungstenite. During the handshake it hands
/// tungstenite no byte past the end of the response's headers (it peeks
/// first), so all that follows is left on the socket for `WsStream` to read.
pub struct Handshake {
    io: TcpStream,
    /// The last bytes handed over, for a header end split across reads.
    tail: [u8; 3],
}

impl AsyncRead for Handshake {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let mut peeked = vec![0; buf.remaining().min(4096)];
        let n = ready!(this.io.poll_peek(cx, &mut ReadBuf::new(&mut peeked)))?;
        let mut seen = this.tail.to_vec();
        seen.extend_from_slice(&peeked[..n]);
        // Up to the end of the headers, or all of it if they go on.
        let take = memchr::memmem::find(&seen, b"\r\n\r\n").map_or(n, |at| at + 4 - this.tail.len());
        // All of it is on the socket already: one read takes it, or none.
        let mut exact = vec![0; take];
        let mut read = ReadBuf::new(&mut exact);
        ready!(Pin::new(&mut this.io).poll_read(cx, &mut read))?;
        let got = read.filled();
        buf.put_slice(got);
        let mut last = this.tail.to_vec();
        last.extend_from_slice(got);
        this.tail.copy_from_slice(&last[last.len() - 3..]);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Handshake {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
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
    // Small buffers: a run holds thousands of these (tungstenite reads
    // only the handshake).
    let config = WebSocketConfig::default().read_buffer_size(1024).write_buffer_size(0);
    let stream = Handshake { io: stream, tail: [0; 3] };
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await.map_err(io_err)?;
    Ok(WsStream {
        ws,
        raw: Vec::new(),
        raw_at: 0,
        raw_end: 0,
        unread: Vec::new(),
        unread_at: 0,
        closed: false,
        queued: 0,
    })
}

/// A frame this client does not expect from the server.
fn unexpected(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("WebSocket: {what}"))
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

impl WsStream {
    /// Decodes the whole frames in `raw` into `buf` (and `unread`, for a
    /// line that does not fit). Returns whether anything was decoded.
    fn decode(&mut self, buf: &mut ReadBuf<'_>) -> io::Result<bool> {
        let mut any = false;
        while !self.closed && self.unread_at == self.unread.len() {
            let mut cursor = io::Cursor::new(&self.raw[self.raw_at..self.raw_end]);
            let Some((header, len)) = FrameHeader::parse(&mut cursor).map_err(io::Error::other)? else { break };
            let start = self.raw_at + cursor.position() as usize;
            let end = start + len as usize;
            if end > self.raw_end {
                break;
            }
            if header.mask.is_some() || !header.is_final {
                return Err(unexpected("a masked or fragmented frame from the server"));
            }
            self.raw_at = end;
            let payload = &self.raw[start..end];
            match header.opcode {
                OpCode::Data(Data::Text | Data::Binary) => {}
                OpCode::Control(Control::Close) => {
                    self.closed = true;
                    break;
                }
                OpCode::Control(Control::Ping | Control::Pong) => continue,
                _ => return Err(unexpected("an unknown opcode")),
            }
            any = true;
            if buf.remaining() >= payload.len() + 2 {
                buf.put_slice(payload);
                buf.put_slice(b"\r\n");
            } else {
                self.unread.clear();
                self.unread_at = 0;
                self.unread.extend_from_slice(payload);
                self.unread.extend_from_slice(b"\r\n");
                self.drain_unread(buf);
            }
        }
        if self.raw_at == self.raw_end {
            (self.raw_at, self.raw_end) = (0, 0);
        }
        Ok(any)
    }

    /// Reads more of the socket into `raw`; `Ok(0)` is its end.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.raw.len() - self.raw_end < READ_SIZE / 2 {
            // Move the undecoded part to the front, and grow if that is
            // not room enough (a frame longer than the buffer).
            self.raw.copy_within(self.raw_at..self.raw_end, 0);
            (self.raw_at, self.raw_end) = (0, self.raw_end - self.raw_at);
            if self.raw.len() - self.raw_end < READ_SIZE / 2 {
                self.raw.resize(self.raw_end + READ_SIZE, 0);
            }
        }
        let mut read = ReadBuf::new(&mut self.raw[self.raw_end..]);
        ready!(Pin::new(&mut self.ws.get_mut().io).poll_read(cx, &mut read))?;
        let n = read.filled().len();
        self.raw_end += n;
        Poll::Ready(Ok(n))
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
            this.decode(buf)?;
            if buf.filled().len() > start || this.closed {
                return Poll::Ready(Ok(()));
            }
            if ready!(this.poll_fill(cx))? == 0 {
                // The end of the stream, in the middle of a frame or not.
                return Poll::Ready(Ok(()));
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
