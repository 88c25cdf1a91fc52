//! The two halves of a WebSocket connection as the connection code sees
//! any other stream: [`WsIncoming`] turns each received message into one
//! CR LF-terminated line in the read buffer (so framing, the line limits,
//! the flood bucket and the RecvQ apply unchanged), and [`WsOut`] turns the
//! queue's bytes back into one message per line for the writer task.
//! Framing, masking, ping/pong and the close handshake are tungstenite's;
//! nothing here looks inside a frame.

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
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data as OpData, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

/// The longest reason a close frame carries: a control frame's payload is
/// at most 125 bytes, two of which are the code.
const MAX_CLOSE_REASON: usize = 123;

/// The stream both halves use, each only within one poll (never across
/// an await): the reading task and the writer task take turns, and a
/// writer sends all the lines it was handed in one turn. (The split
/// halves of `futures-util` lock once per message, which cost a tenth of
/// the server's time in the WebSocket fan-out.)
type Shared<S> = Arc<Mutex<WebSocketStream<S>>>;

fn lock<S>(ws: &Shared<S>) -> MutexGuard<'_, WebSocketStream<S>> {
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
    /// The client closed first: nothing more may be sent but the
    /// answer to its close frame, which closing flushes.
    peer_closed: bool,
}

/// Splits an upgraded connection into the connection's two halves.
pub fn split<S>(ws: WebSocketStream<S>, binary: bool) -> (WsIncoming<S>, WsOut<S>) {
    let ws = Arc::new(Mutex::new(ws));
    (WsIncoming { ws: ws.clone() }, WsOut { ws, binary, close: None, peer_closed: false })
}

impl<S> Incoming for WsIncoming<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        loop {
            let next = std::future::poll_fn(|cx| Pin::new(&mut *lock(&self.ws)).poll_next(cx)).await;
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

/// How one writer turn's lines become messages: copied once into a
/// shared buffer that every line's message is a slice of, and checked for
/// UTF-8 once, so a line costs neither an allocation nor a check of its
/// own (both showed in the fan-out's profile).
struct Turn {
    bytes: Bytes,
    /// Sent as text frames without a check per line: the whole turn is UTF-8.
    utf8: bool,
}

impl Turn {
    fn new(buf: &[u8], binary: bool) -> Turn {
        Turn { bytes: Bytes::copy_from_slice(buf), utf8: !binary && std::str::from_utf8(buf).is_ok() }
    }

    /// The line at `range` (without its CR LF) as a message. A text
    /// message must be UTF-8: the server only sends UTF-8, but should a
    /// line not be, it is converted rather than sent as it is.
    fn message(&self, binary: bool, range: std::ops::Range<usize>) -> Message {
        let payload = self.bytes.slice(range);
        if binary {
            return Message::Binary(payload);
        }
        if self.utf8 {
            return Message::Frame(Frame::message(payload, OpCode::Data(OpData::Text), true));
        }
        Message::Text(String::from_utf8_lossy(&payload).into_owned().into())
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
        Err(WsError::Protocol(ProtocolError::SendAfterClosing)) => {
            *peer_closed = true;
            Ok(())
        }
        other => other.map_err(ws_io),
    }
}

impl<S> AsyncWrite for WsOut<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Sends each complete line of `buf` as one message and returns how
    /// many bytes that took; stops early (a partial write, on a line
    /// boundary) when tungstenite's buffer is full and the socket blocked.
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let mut guard = lock(&this.ws);
        let mut ws = Pin::new(&mut *guard);
        let mut used = 0;
        let mut turn = None;
        while used < buf.len() {
            match ws.as_mut().poll_ready(cx) {
                Poll::Ready(result) => after_close(&mut this.peer_closed, result)?,
                Poll::Pending if used == 0 => return Poll::Pending,
                Poll::Pending => break,
            }
            let rest = &buf[used..];
            // The queue holds whole lines; a tail without LF is a line too.
            let len = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
            let line = strip_line_end(&rest[..len]).len();
            if line > 0 && !this.peer_closed {
                let turn = turn.get_or_insert_with(|| Turn::new(buf, this.binary));
                let result = ws.as_mut().start_send(turn.message(this.binary, used..used + line));
                after_close(&mut this.peer_closed, result)?;
            }
            used += len;
        }
        Poll::Ready(Ok(used))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let result = ready!(Pin::new(&mut *lock(&this.ws)).poll_flush(cx));
        Poll::Ready(after_close(&mut this.peer_closed, result))
    }

    /// Sends the close frame with the reason (or, when the client closed
    /// first, the answer to its close frame), then closes.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let mut guard = lock(&this.ws);
        let mut ws = Pin::new(&mut *guard);
        if this.close.is_some() && !this.peer_closed {
            let result = ready!(ws.as_mut().poll_ready(cx));
            after_close(&mut this.peer_closed, result)?;
            if let Some(frame) = this.close.take().filter(|_| !this.peer_closed) {
                let result = ws.as_mut().start_send(Message::Close(Some(frame)));
                after_close(&mut this.peer_closed, result)?;
            }
        }
        // Flushes our close frame, or the answer to the client's.
        let result = ready!(ws.as_mut().poll_close(cx));
        Poll::Ready(after_close(&mut this.peer_closed, result))
    }
}

impl<S> LineOut for WsOut<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn closing(&mut self, why: &CloseReason) {
        self.close = Some(close_frame(why));
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

    #[test]
    fn line_ends_are_optional_on_input() {
        assert_eq!(strip_line_end(b"PING x\r\n"), b"PING x");
        assert_eq!(strip_line_end(b"PING x\n"), b"PING x");
        assert_eq!(strip_line_end(b"PING x"), b"PING x");
    }

    #[test]
    fn a_turn_sends_text_frames_and_converts_what_is_not_utf8() {
        let turn = Turn::new(b"PING :caf\xc3\xa9\r\n", false);
        match turn.message(false, 0..11) {
            Message::Frame(frame) => assert_eq!(frame.payload(), "PING :café".as_bytes()),
            other => panic!("{other:?}"),
        }
        let turn = Turn::new(b"PING :caf\xe9\r\n", false);
        match turn.message(false, 0..10) {
            Message::Text(text) => assert_eq!(text.as_str(), "PING :caf\u{fffd}"),
            other => panic!("{other:?}"),
        }
        let turn = Turn::new(b"PING :caf\xe9\r\n", true);
        assert!(matches!(turn.message(true, 0..10), Message::Binary(b) if &b[..] == b"PING :caf\xe9"));
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
