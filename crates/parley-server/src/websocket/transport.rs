//! The two halves of a WebSocket connection as the connection code sees
//! any other stream: [`WsIncoming`] turns each received message into one
//! CR LF-terminated line in the read buffer (so framing, the line limits,
//! the flood bucket and the RecvQ apply unchanged), and [`WsOut`] turns the
//! queue's bytes back into one message per line for the writer task.
//! Framing, masking, ping/pong and the close handshake are tungstenite's;
//! nothing here looks inside a frame.

use super::outlet::Outlet;
use crate::close_reason::CloseReason;
use crate::connection::Incoming;
use crate::outbound::LineOut;
use bytes::BytesMut;
use futures_util::{Sink, Stream};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

/// The longest reason a close frame carries: a control frame's payload is
/// at most 125 bytes, two of which are the code.
const MAX_CLOSE_REASON: usize = 123;

/// The stream both halves use, each only within one poll (never across
/// an await): the reading task and the writer task take turns, and a
/// writer queues all the lines it was handed in one turn. (The split
/// halves of `futures-util` lock once per message, which cost a tenth of
/// the server's time in the WebSocket fan-out.)
type Shared<S> = Arc<Mutex<Ws<S>>>;

struct Ws<S> {
    stream: WebSocketStream<Outlet<S>>,
    /// The client's close frame came (or the stream ended): nothing more
    /// may be sent but the answer to its close frame, which closing
    /// flushes.
    peer_closed: bool,
    /// Reading ended on a message over the size limit: the close frame
    /// says so (1009) rather than 1000.
    too_big: bool,
}

fn lock<S>(ws: &Shared<S>) -> MutexGuard<'_, Ws<S>> {
    ws.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The receiving half.
pub struct WsIncoming<S> {
    ws: Shared<S>,
}

/// The sending half, as a byte stream of CR LF-terminated lines.
pub struct WsOut<S> {
    ws: Shared<S>,
    /// `binary.ircv3.net`: lines go out as binary messages.
    binary: bool,
    /// The close frame to send at shutdown (from the close reason).
    close: Option<CloseFrame>,
}

/// Splits an upgraded connection into the connection's two halves.
pub fn split<S>(ws: WebSocketStream<Outlet<S>>, binary: bool) -> (WsIncoming<S>, WsOut<S>) {
    let ws = Arc::new(Mutex::new(Ws { stream: ws, peer_closed: false, too_big: false }));
    (WsIncoming { ws: ws.clone() }, WsOut { ws, binary, close: None })
}

impl<S> Incoming for WsIncoming<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        loop {
            let next = std::future::poll_fn(|cx| {
                let mut ws = lock(&self.ws);
                let next = ready!(Pin::new(&mut ws.stream).poll_next(cx));
                // Marked under the same lock that read it, so the writer
                // queues no frame after tungstenite's answer to the close.
                match &next {
                    None | Some(Ok(Message::Close(_))) => ws.peer_closed = true,
                    Some(Err(WsError::Capacity(_))) => ws.too_big = true,
                    _ => {}
                }
                Poll::Ready(next)
            })
            .await;
            let message = match next {
                None | Some(Ok(Message::Close(_))) => return Ok(0),
                Some(Ok(message)) => message,
                Some(Err(e)) => return Err(io_error(e)),
            };
            // Pings are answered by tungstenite as it reads; pongs and raw
            // frames carry no line.
            let payload: &[u8] = match &message {
                Message::Text(text) => text.as_bytes(),
                Message::Binary(bytes) => bytes,
                _ => continue,
            };
            let line = strip_line_end(payload);
            buf.reserve(line.len() + 2);
            buf.extend_from_slice(line);
            buf.extend_from_slice(b"\r\n");
            return Ok(line.len() + 2);
        }
    }
}

/// A message's line without the CR LF (or LF) a client may have added.
fn strip_line_end(payload: &[u8]) -> &[u8] {
    let payload = payload.strip_suffix(b"\n").unwrap_or(payload);
    payload.strip_suffix(b"\r").unwrap_or(payload)
}

/// tungstenite's errors as the read loop reports them ("Read error: ...").
fn io_error(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => io::ErrorKind::ConnectionReset.into(),
        WsError::ConnectionClosed | WsError::AlreadyClosed => io::ErrorKind::ConnectionAborted.into(),
        // Too large, not UTF-8 in a text message, a protocol violation.
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    }
}

fn ws_io(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        other => io::Error::new(io::ErrorKind::BrokenPipe, other),
    }
}

/// A send refused because the client's close frame came first: the
/// client gets no more lines (only the answer to its close frame, which
/// closing flushes), so the lines are dropped, not an error.
fn after_close(peer_closed: &mut bool, result: Result<(), WsError>) -> io::Result<()> {
    match result {
        Err(WsError::Protocol(ProtocolError::SendAfterClosing)) | Err(WsError::ConnectionClosed) => {
            *peer_closed = true;
            Ok(())
        }
        other => other.map_err(ws_io),
    }
}

/// The most frame bytes one write queues before it returns: what may wait
/// beyond the SendQ's count when the socket is full.
const QUEUE_AT_MOST: usize = 64 * 1024;

/// Queues the lines of `chunk` (whole CR LF-terminated lines, or a tail
/// without one) as one message each. A text message must be UTF-8: the
/// server only sends UTF-8 (checked once for the chunk), but should a
/// line not be, it is converted rather than sent as it is.
fn queue_lines<S>(out: &mut Outlet<S>, binary: bool, chunk: &[u8]) {
    let utf8 = binary || std::str::from_utf8(chunk).is_ok();
    // A header is 2 bytes for a line under 126 bytes (the CR LF it
    // replaces), 4 up to 64 KiB.
    out.reserve(chunk.len() + chunk.len() / 64 + 16);
    let mut rest = chunk;
    while !rest.is_empty() {
        let len = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        let line = strip_line_end(&rest[..len]);
        if !line.is_empty() {
            if utf8 {
                out.queue(binary, line);
            } else {
                out.queue(false, String::from_utf8_lossy(line).as_bytes());
            }
        }
        rest = &rest[len..];
    }
}

impl<S> AsyncWrite for WsOut<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Queues the complete lines of `buf` as one message each (up to
    /// `QUEUE_AT_MOST` bytes of them, ending on a line boundary), writes
    /// what the socket takes now, and returns how many bytes of `buf` were
    /// queued. Waits first until what was queued before has been written.
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let mut guard = lock(&this.ws);
        let ws = &mut *guard;
        if !ws.peer_closed {
            // Tungstenite's own frames (a pong) and the frames queued
            // before go out first, so nothing is left half-written.
            let flushed = ready!(Pin::new(&mut ws.stream).poll_flush(cx));
            after_close(&mut ws.peer_closed, flushed)?;
        }
        if ws.peer_closed || buf.is_empty() {
            return Poll::Ready(Ok(buf.len()));
        }
        let end = if buf.len() <= QUEUE_AT_MOST {
            buf.len()
        } else {
            // A line is far shorter than the window, so one ends in it.
            memchr::memrchr(b'\n', &buf[..QUEUE_AT_MOST]).map_or(buf.len(), |i| i + 1)
        };
        let outlet = ws.stream.get_mut();
        queue_lines(outlet, this.binary, &buf[..end]);
        // Whatever the socket does not take now goes on the next write or flush.
        if let Poll::Ready(Err(e)) = outlet.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(end))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut guard = lock(&self.ws);
        let ws = &mut *guard;
        if ws.peer_closed {
            return Poll::Ready(Ok(()));
        }
        let result = ready!(Pin::new(&mut ws.stream).poll_flush(cx));
        Poll::Ready(after_close(&mut ws.peer_closed, result))
    }

    /// Sends the close frame with the reason (or, when the client closed
    /// first, the answer to its close frame), then closes.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let mut guard = lock(&this.ws);
        let ws = &mut *guard;
        let mut stream = Pin::new(&mut ws.stream);
        if this.close.is_some() && !ws.peer_closed {
            let result = ready!(stream.as_mut().poll_ready(cx));
            after_close(&mut ws.peer_closed, result)?;
            if let Some(frame) = this.close.take().filter(|_| !ws.peer_closed) {
                let result = stream.as_mut().start_send(Message::Close(Some(frame)));
                after_close(&mut ws.peer_closed, result)?;
            }
        }
        // Flushes our close frame, or the answer to the client's.
        let result = ready!(stream.as_mut().poll_close(cx));
        Poll::Ready(after_close(&mut ws.peer_closed, result))
    }
}

impl<S> LineOut for WsOut<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn closing(&mut self, why: &CloseReason) {
        let mut frame = close_frame(why);
        if lock(&self.ws).too_big {
            frame.code = CloseCode::Size;
        }
        self.close = Some(frame);
    }
}

/// The close frame for a reason: 1000 when the client left, 1001 when the
/// server is going away, 1008 (policy) when the server cut the client.
pub fn close_frame(why: &CloseReason) -> CloseFrame {
    let code = match why {
        CloseReason::Left(_) => CloseCode::Normal,
        CloseReason::Shutdown(_) => CloseCode::Away,
        CloseReason::WriteError => CloseCode::Error,
        CloseReason::SendQExceeded
        | CloseReason::ExcessFlood
        | CloseReason::RegistrationTimeout
        | CloseReason::PingTimeout { .. }
        | CloseReason::Killed(_) => CloseCode::Policy,
    };
    let text = why.text();
    let mut end = text.len().min(MAX_CLOSE_REASON);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    CloseFrame { code, reason: Utf8Bytes::from(&text[..end]) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;

    #[test]
    fn line_ends_are_optional_on_input() {
        assert_eq!(strip_line_end(b"PING x\r\n"), b"PING x");
        assert_eq!(strip_line_end(b"PING x\n"), b"PING x");
        assert_eq!(strip_line_end(b"PING x"), b"PING x");
    }

    /// The payloads of the frames `out` holds, each with its opcode.
    fn frames(out: &Outlet<()>) -> Vec<(OpCode, Vec<u8>)> {
        let mut bytes = std::io::Cursor::new(out.queued_bytes().to_vec());
        let mut got = Vec::new();
        while let Some((header, len)) = FrameHeader::parse(&mut bytes).unwrap() {
            let at = bytes.position() as usize;
            got.push((header.opcode, bytes.get_ref()[at..at + len as usize].to_vec()));
            bytes.set_position((at + len as usize) as u64);
        }
        got
    }

    #[test]
    fn each_line_becomes_a_text_frame_and_what_is_not_utf8_is_converted() {
        let text = OpCode::Data(Data::Text);
        let mut out = Outlet::new(());
        queue_lines(&mut out, false, b"PING :caf\xc3\xa9\r\nPONG x\n\r\nlast");
        let want: Vec<(OpCode, Vec<u8>)> =
            vec![(text, "PING :café".into()), (text, b"PONG x".to_vec()), (text, b"last".to_vec())];
        assert_eq!(frames(&out), want);
        let mut out = Outlet::new(());
        queue_lines(&mut out, false, b"PING :caf\xe9\r\nPONG :ok\r\n");
        assert_eq!(frames(&out), vec![(text, "PING :caf\u{fffd}".into()), (text, b"PONG :ok".to_vec())]);
        let mut out = Outlet::new(());
        queue_lines(&mut out, true, b"PING :caf\xe9\r\n");
        assert_eq!(frames(&out), vec![(OpCode::Data(Data::Binary), b"PING :caf\xe9".to_vec())]);
    }

    #[test]
    fn close_reasons_fit_a_control_frame_on_a_char_boundary() {
        let long = "é".repeat(100);
        let frame = close_frame(&CloseReason::Left(long));
        assert!(frame.reason.len() <= MAX_CLOSE_REASON);
        assert_eq!(frame.code, CloseCode::Normal);
        let frame = close_frame(&CloseReason::ExcessFlood);
        assert_eq!((frame.code, frame.reason.as_str()), (CloseCode::Policy, "Excess Flood"));
    }
}
