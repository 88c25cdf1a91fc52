//! A small blocking IRC-over-WebSocket client for tests: the twin of
//! [`crate::irc::Client`] for `/socket`. Each WebSocket message is one IRC
//! line; the client checks that no message carries CR or LF and that text
//! messages are what was negotiated. Reads are bounded by deadlines, never
//! by a fixed sleep.

use crate::irc::{numeric, refuses_registration, show, Line, TIMEOUT};
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
pub use tungstenite::http::Response;
use tungstenite::protocol::CloseFrame;
pub use tungstenite::{self, Message};
use tungstenite::{ClientRequestBuilder, Error, WebSocket};

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// How to open the socket.
#[derive(Default, Clone)]
pub struct Open<'a> {
    /// `Sec-WebSocket-Protocol` values, in order of preference.
    pub protocols: &'a [&'a str],
    /// The `Origin` header, as a browser would send it.
    pub origin: Option<&'a str>,
}

/// What came instead of a line.
#[derive(Debug)]
pub enum Event {
    Line(Line),
    /// A message other than text or binary (pong).
    Other(Message),
    /// The server's close frame (`None`: closed without one).
    Closed(Option<CloseFrame>),
    TimedOut,
}

/// A blocking IRC client over WebSocket.
pub struct WsClient {
    pub nick: String,
    ws: WebSocket<TcpStream>,
    /// The subprotocol the server chose, if it named one.
    pub protocol: Option<String>,
    closed: bool,
}

impl WsClient {
    /// Opens `ws://addr/socket` asking for `text.ircv3.net`.
    pub fn connect(addr: SocketAddr) -> WsClient {
        WsClient::open(addr, &Open { protocols: &["text.ircv3.net"], origin: None })
            .unwrap_or_else(|e| panic!("opening ws://{addr}/socket: {}", describe(&e)))
    }

    /// Opens and registers as `nick`; see [`WsClient::register`].
    pub fn registered(addr: SocketAddr, nick: &str) -> WsClient {
        let mut c = WsClient::connect(addr);
        c.register(nick);
        c
    }

    /// Opens `ws://addr/socket`. A refusal comes back as
    /// `Error::Http(response)`, with the body.
    pub fn open(addr: SocketAddr, how: &Open<'_>) -> Result<WsClient, Error> {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
        stream.set_nodelay(true).ok();
        stream.set_read_timeout(Some(TIMEOUT))?;
        let uri = format!("ws://{addr}/socket").parse().expect("a URI");
        let mut request = ClientRequestBuilder::new(uri);
        for p in how.protocols {
            request = request.with_sub_protocol(*p);
        }
        if let Some(origin) = how.origin {
            request = request.with_header("Origin", origin);
        }
        let (ws, response) = tungstenite::client::client(request, stream).map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => e,
            tungstenite::HandshakeError::Interrupted(_) => Error::Io(ErrorKind::TimedOut.into()),
        })?;
        let protocol = response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().expect("an ASCII subprotocol").to_string());
        Ok(WsClient { nick: String::new(), ws, protocol, closed: false })
    }

    /// Sends one line as a message of the negotiated kind (no CR LF).
    pub fn send(&mut self, line: &str) {
        let message = if self.protocol.as_deref() == Some("binary.ircv3.net") {
            Message::binary(line.as_bytes().to_vec())
        } else {
            Message::text(line)
        };
        self.send_message(message);
    }

    /// Sends a message as it is.
    pub fn send_message(&mut self, message: Message) {
        let label = self.label();
        self.try_send_message(message).unwrap_or_else(|e| panic!("{label}: sending failed: {e}"));
    }

    /// Like `send_message`, but reports failure (the server may close the
    /// connection while a flood is being sent).
    pub fn try_send_message(&mut self, message: Message) -> Result<(), Error> {
        self.ws.send(message)
    }

    /// Drops the TCP connection without a close frame.
    pub fn drop_connection(self) {
        let _ = self.ws.get_ref().shutdown(std::net::Shutdown::Both);
    }

    fn label(&self) -> String {
        if self.nick.is_empty() {
            "ws client".to_string()
        } else {
            format!("ws client {}", self.nick)
        }
    }

    /// The next event before `deadline`.
    pub fn next_event(&mut self, deadline: Instant) -> Event {
        if self.closed {
            return Event::Closed(None);
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Event::TimedOut;
            }
            self.ws.get_ref().set_read_timeout(Some(left)).expect("setting a read timeout");
            let message = match self.ws.read() {
                Ok(m) => m,
                Err(Error::Io(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
                Err(Error::ConnectionClosed | Error::AlreadyClosed) => {
                    self.closed = true;
                    return Event::Closed(None);
                }
                Err(Error::Io(e)) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof) => {
                    self.closed = true;
                    return Event::Closed(None);
                }
                Err(Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake)) => {
                    self.closed = true;
                    return Event::Closed(None);
                }
                Err(e) => panic!("{}: read error: {e}", self.label()),
            };
            let text = match message {
                Message::Text(t) => {
                    assert_ne!(
                        self.protocol.as_deref(),
                        Some("binary.ircv3.net"),
                        "{}: a text message on a binary socket: {t:?}",
                        self.label()
                    );
                    t.to_string()
                }
                Message::Binary(b) => {
                    assert_eq!(
                        self.protocol.as_deref(),
                        Some("binary.ircv3.net"),
                        "{}: a binary message on a text socket",
                        self.label()
                    );
                    String::from_utf8_lossy(&b).into_owned()
                }
                Message::Close(frame) => {
                    self.closed = true;
                    return Event::Closed(frame);
                }
                other => return Event::Other(other),
            };
            assert!(!text.contains(['\r', '\n']), "{}: a message with CR or LF: {text:?}", self.label());
            return Event::Line(Line::parse(&text));
        }
    }

    /// Reads lines until one matches `pred`; every line read, the match
    /// last. Fails, listing the lines seen, on close or timeout.
    pub fn collect_until(&mut self, pred: impl Fn(&Line) -> bool, timeout: Duration) -> Vec<Line> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            match self.next_event(deadline) {
                Event::Line(line) => {
                    let hit = pred(&line);
                    seen.push(line);
                    if hit {
                        return seen;
                    }
                }
                Event::Other(_) => {}
                Event::Closed(frame) => {
                    panic!(
                        "{}: closed ({frame:?}) before the expected line; lines seen:\n{}",
                        self.label(),
                        show(&seen)
                    )
                }
                Event::TimedOut => panic!(
                    "{}: the expected line did not arrive within {timeout:?}; lines seen:\n{}",
                    self.label(),
                    show(&seen)
                ),
            }
        }
    }

    /// Reads lines until one matches `pred`, and returns it.
    pub fn expect(&mut self, pred: impl Fn(&Line) -> bool, timeout: Duration) -> Line {
        self.collect_until(pred, timeout).pop().expect("the match is last")
    }

    /// Waits for a line with this command (or numeric).
    pub fn expect_cmd(&mut self, command: &str) -> Line {
        self.expect(|l| l.is(command), TIMEOUT)
    }

    /// Waits for the server to close: the lines before, and its close
    /// frame (`None` when the connection ended without one).
    pub fn expect_closed(&mut self, timeout: Duration) -> (Vec<Line>, Option<CloseFrame>) {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            match self.next_event(deadline) {
                Event::Line(line) => seen.push(line),
                Event::Other(_) => {}
                Event::Closed(frame) => return (seen, frame),
                Event::TimedOut => {
                    panic!("{}: still open after {timeout:?}; lines seen:\n{}", self.label(), show(&seen))
                }
            }
        }
    }

    /// A barrier, as [`crate::irc::Client::sync`]: everything queued for
    /// this client before has arrived once the PONG does.
    pub fn sync(&mut self) -> Vec<Line> {
        let token = format!("wsync-{}", NEXT_TOKEN.fetch_add(1, Ordering::Relaxed));
        self.send(&format!("PING :{token}"));
        let mut lines = self.collect_until(|l| l.is("PONG") && l.last() == token, TIMEOUT);
        lines.pop();
        lines
    }

    /// Sends NICK and USER, waits for 001 and the end of the lobby's NAMES.
    pub fn register(&mut self, nick: &str) -> Vec<Line> {
        self.send(&format!("NICK {nick}"));
        self.send(&format!("USER {nick} 0 * :Test user {nick}"));
        let mut lines = self.collect_until(|l| l.is(numeric::RPL_WELCOME) || refuses_registration(l), TIMEOUT);
        let last = lines.last().expect("non-empty");
        assert!(!refuses_registration(last), "registering {nick} failed: {}\n{}", last.raw, show(&lines));
        self.nick = nick.to_string();
        let joined =
            self.collect_until(|l| l.is(numeric::RPL_ENDOFNAMES) && l.param(1).eq_ignore_ascii_case("#lobby"), TIMEOUT);
        lines.extend(joined);
        lines
    }
}

/// A handshake error as a sentence (a refusal shows status and body).
pub fn describe(e: &Error) -> String {
    match e {
        Error::Http(response) => format!(
            "HTTP {}: {}",
            response.status(),
            String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
        ),
        other => other.to_string(),
    }
}
