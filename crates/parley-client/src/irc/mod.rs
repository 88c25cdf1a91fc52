//! The IRC side of the client: connecting, registering under a nickname,
//! and then one reader task per connection that answers PINGs, hands the
//! replies to a pending [`Session::request`] and passes everything else on
//! as [`Event`]s for display.
//!
//! This module never prints and never reads the terminal: asking the person
//! for another nickname is the caller's job (see [`Connector::attempt`]).
//! Every wire line goes through `parley_proto::Message`.
//!
//! `register.rs` opens the connection and registers; `session.rs` is the
//! registered connection and its reader task.

mod register;
mod session;

pub use register::{Attempt, Connector};
pub use session::Session;

use parley_proto::framing::{self, Frame, FrameLimits, Framer, Next, TokenBucket};
use parley_proto::numeric::*;
use parley_proto::Message;
use std::io;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::status::Status;

/// The IRC port when SERVER names none.
pub const DEFAULT_PORT: u16 = 6667;
/// The IRC-over-TLS port when SERVER names none.
pub const DEFAULT_TLS_PORT: u16 = 6697;
/// The lobby when the server did not tell us (it always does by joining us).
pub const DEFAULT_LOBBY: &str = "#lobby";
/// Longest line accepted from the server: 8191 bytes of tags plus 512.
const MAX_LINE: usize = 8191 + 512;
/// Lines from the server: the tags and the rest may each take up to
/// [`MAX_LINE`] bytes. Lenient on purpose, as a relayed message carries its
/// sender's prefix on top of the 512 bytes the sender was allowed.
const FRAME_LIMITS: FrameLimits = FrameLimits { max_line_bytes: MAX_LINE + 2, max_tag_bytes: MAX_LINE };
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 8 * 1024;
/// How long to wait for the server to answer a request.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for the server to close after QUIT or DIE.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Capabilities the client uses when the server offers them.
/// `batch`: history and search answers come in a batch, so the client can
/// tell them from live messages.
const WANTED_CAPS: &[&str] = &["server-time", "batch"];
/// Lines the client may send at once, then per second: below the server's
/// default flood limits (20 and 4/s) so a script never gets throttled off.
const BURST_LINES: u32 = 20;
const LINES_PER_SECOND: f64 = 4.0;

#[derive(Debug, Error)]
pub enum IrcError {
    #[error("could not connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    /// The TLS handshake failed (an untrusted certificate, most often).
    #[error("TLS with {addr} failed: {reason}")]
    Tls { addr: String, reason: String },
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
    #[error("the server closed the connection: {0}")]
    Closed(String),
    #[error("the server did not answer within {} seconds", REPLY_TIMEOUT.as_secs())]
    Timeout,
    /// An error numeric or `FAIL` reply; `text` is the server's sentence.
    #[error("{text}")]
    Rejected { code: String, text: String },
}

impl IrcError {
    pub fn status(&self) -> Status {
        match self {
            IrcError::Connect { .. }
            | IrcError::Tls { .. }
            | IrcError::Io(_)
            | IrcError::Closed(_)
            | IrcError::Timeout => Status::ConnectionLost,
            IrcError::Rejected { code, .. } => match code.as_str() {
                ERR_NOSUCHNICK | ERR_NOSUCHCHANNEL => Status::NotFound,
                ERR_PASSWDMISMATCH | ERR_NOPRIVILEGES | "RATE_LIMITED" => Status::Auth,
                ERR_NICKNAMEINUSE => Status::Refused,
                ERR_ERRONEUSNICKNAME => Status::Usage,
                _ => Status::Failure,
            },
        }
    }
}

/// Where to connect: host, port, and whether to speak TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// A name or an IP address, without brackets.
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl Endpoint {
    /// Parses `host`, `host:port`, `[v6]:port` or a bare IPv6 address, with
    /// an optional `irc://` or `ircs://` prefix. `ircs://` or `tls` means
    /// TLS, whose default port is 6697 (6667 without).
    pub fn parse(server: &str, tls: bool) -> Endpoint {
        let s = server.trim().trim_end_matches('/');
        let (s, tls) = match (s.strip_prefix("ircs://"), s.strip_prefix("irc://")) {
            (Some(rest), _) => (rest, true),
            (None, Some(rest)) => (rest, tls),
            (None, None) => (s, tls),
        };
        let default = if tls { DEFAULT_TLS_PORT } else { DEFAULT_PORT };
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            match rest.split_once(']') {
                Some((h, p)) => (h, p.strip_prefix(':').and_then(|p| p.parse().ok())),
                None => (rest, None),
            }
        } else if s.matches(':').count() == 1 {
            let (h, p) = s.split_once(':').expect("one colon");
            (h, p.parse().ok())
        } else {
            (s, None)
        };
        Endpoint { host: host.to_string(), port: port.unwrap_or(default), tls }
    }

    /// `host:port`, bracketing an IPv6 address.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.tls {
            write!(f, "ircs://{}", self.addr())
        } else {
            f.write_str(&self.addr())
        }
    }
}

/// What registration learned about the server and the lobby.
#[derive(Debug, Clone, Default)]
pub struct Welcome {
    pub nick: String,
    pub server_name: String,
    /// The channel the server joined us to first (the lobby).
    pub lobby: Option<String>,
    /// Who else is in the lobby, as the server listed them.
    pub members: Vec<String>,
    /// `draft/FILEHOST` from ISUPPORT: the file store's base URL.
    pub filehost: Option<String>,
    pub motd: Vec<String>,
    /// The TLS port a plain-text connection was told about (IRCv3 `sts`).
    pub sts_port: Option<u16>,
    /// The lobby's recent messages the server replayed when it joined us
    /// (a `chathistory` batch, its start and end lines included).
    pub replay: Vec<Message>,
}

/// Something that arrived from the server and was not a reply to a request.
#[derive(Debug)]
pub enum Event {
    Message(Message),
    /// The connection ended ([`Session::close_expected`] tells whether we
    /// asked for it).
    Closed {
        reason: String,
    },
}

/// The read half, cut into messages by `parley_proto::framing`.
pub(crate) struct LineReader {
    inner: Box<dyn AsyncRead + Send + Unpin>,
    buf: Vec<u8>,
    /// Where the bytes not yet framed begin in `buf`.
    start: usize,
    framer: Framer,
}

impl LineReader {
    fn new(inner: Box<dyn AsyncRead + Send + Unpin>) -> LineReader {
        LineReader { inner, buf: Vec::with_capacity(READ_CHUNK), start: 0, framer: Framer::new(FRAME_LIMITS) }
    }

    /// The next message; `None` at end of stream. Over-long and unparsable
    /// lines are skipped; a line that is not UTF-8 is read lossily.
    /// Cancel-safe: bytes read stay in the buffer until their line is used.
    async fn next(&mut self) -> io::Result<Option<Message>> {
        loop {
            match self.framer.next(&self.buf[self.start..]) {
                Next::Line { frame, consumed } => {
                    let msg = to_message(frame);
                    self.start += consumed;
                    if msg.is_some() {
                        return Ok(msg);
                    }
                }
                Next::Overflow { consumed } | Next::Skip { consumed } => self.start += consumed,
                Next::Incomplete => {
                    self.buf.drain(..self.start);
                    self.start = 0;
                    self.buf.reserve(READ_CHUNK);
                    if self.inner.read_buf(&mut self.buf).await? == 0 {
                        // A last line without its line feed still counts.
                        let last = to_message(framing::check(&self.buf, FRAME_LIMITS));
                        self.buf.clear();
                        return Ok(last);
                    }
                }
            }
        }
    }
}

/// The message a framed line holds, if any.
fn to_message(frame: Frame<'_>) -> Option<Message> {
    match frame {
        Frame::Line(text) => Message::parse(text).ok(),
        Frame::NotUtf8(raw) => Message::parse(&String::from_utf8_lossy(raw)).ok(),
        Frame::Blank | Frame::TooLong => None,
    }
}

/// The write half with a token bucket, so bursts from scripts stay under the
/// server's flood limits instead of being dropped for "Excess Flood".
pub(crate) struct Writer {
    half: Box<dyn AsyncWrite + Send + Unpin>,
    bucket: TokenBucket,
}

impl Writer {
    fn new(half: Box<dyn AsyncWrite + Send + Unpin>) -> Writer {
        Writer { half, bucket: TokenBucket::new(BURST_LINES, LINES_PER_SECOND, Instant::now()) }
    }

    async fn send(&mut self, msg: &Message) -> io::Result<()> {
        while let Err(at) = self.bucket.take(Instant::now()) {
            tokio::time::sleep_until(at.into()).await;
        }
        self.half.write_all(&msg.to_bytes()).await?;
        self.half.flush().await
    }
}

/// `@nick` / `+nick` (and with multi-prefix `@+nick`) → `nick`.
pub fn strip_prefixes(name: &str) -> String {
    let name = name.trim_start_matches(['~', '&', '@', '%', '+']);
    name.split('!').next().unwrap_or(name).to_string()
}

/// The nick part of a message source.
pub fn source_nick(msg: &Message) -> Option<&str> {
    msg.source.as_deref().map(|s| s.split('!').next().unwrap_or(s))
}

fn is_from(msg: &Message, nick: &str) -> bool {
    source_nick(msg).is_some_and(|n| parley_proto::irc_eq(n, nick))
}

/// An error numeric (400–599) or a FAIL reply as an [`IrcError`].
pub fn reply_error(msg: &Message) -> Option<IrcError> {
    if msg.command == "FAIL" {
        let code = msg.param(1).unwrap_or("FAIL").to_string();
        return Some(IrcError::Rejected { code, text: msg.params.last().cloned().unwrap_or_default() });
    }
    let code: u16 = msg.command.parse().ok()?;
    if !(400..600).contains(&code) {
        return None;
    }
    Some(IrcError::Rejected { code: msg.command.clone(), text: numeric_text(msg) })
}

/// A numeric's human text with its context: `bob: No such nick/channel`.
pub fn numeric_text(msg: &Message) -> String {
    let n = msg.params.len();
    let text = msg.params.last().map(String::as_str).unwrap_or("");
    if n > 2 {
        format!("{}: {text}", msg.params[1..n - 1].join(" "))
    } else {
        text.to_string()
    }
}

/// Turns the options a caller has into a list of nicknames to try.
pub fn nick_candidates(base: &str) -> Vec<String> {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let mut out = vec![base.to_string()];
    for i in 0..4u64 {
        out.push(format!("{base}-{}", (seed.wrapping_mul(2654435761).wrapping_add(i * 7919)) % 1000));
    }
    out
}

/// A nickname derived from the login name, or `parley`.
pub fn default_nick() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_default();
    let clean: String = user.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-')).take(16).collect();
    if clean.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
        clean
    } else {
        "parley".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_get_the_default_port() {
        let e = |s: &str, tls: bool| Endpoint::parse(s, tls).to_string();
        assert_eq!(e("localhost", false), "localhost:6667");
        assert_eq!(e("example.org:7000", false), "example.org:7000");
        assert_eq!(e("irc://example.org/", false), "example.org:6667");
        assert_eq!(e("[::1]:7000", false), "[::1]:7000");
        assert_eq!(e("[::1]", false), "[::1]:6667");
        assert_eq!(e("::1", false), "[::1]:6667");
        assert_eq!(e("ircs://example.org", false), "ircs://example.org:6697");
        assert_eq!(e("example.org", true), "ircs://example.org:6697");
        assert_eq!(e("ircs://[::1]:7001", false), "ircs://[::1]:7001");
        assert_eq!(Endpoint::parse("[::1]:7000", false).host, "::1");
    }

    #[test]
    fn name_prefixes_are_stripped() {
        assert_eq!(strip_prefixes("@+alice"), "alice");
        assert_eq!(strip_prefixes("bob!~b@host"), "bob");
        assert_eq!(strip_prefixes("carol"), "carol");
    }

    #[test]
    fn numerics_and_fail_become_errors() {
        let m = Message::parse(":srv 401 me bob :No such nick/channel").unwrap();
        let e = reply_error(&m).unwrap();
        assert_eq!(e.to_string(), "bob: No such nick/channel");
        assert_eq!(e.status(), Status::NotFound);
        let m = Message::parse(":srv FAIL OPER RATE_LIMITED :Too many failed attempts").unwrap();
        assert_eq!(reply_error(&m).unwrap().status(), Status::Auth);
        assert!(reply_error(&Message::parse(":srv 381 me :You are now an IRC operator").unwrap()).is_none());
    }

    /// Every message a reader gets out of `input`, read in whatever pieces
    /// the reads return.
    async fn read_all(input: Vec<u8>) -> Vec<String> {
        let mut reader = LineReader::new(Box::new(std::io::Cursor::new(input)));
        let mut out = Vec::new();
        while let Some(msg) = reader.next().await.unwrap() {
            out.push(msg.params.last().cloned().unwrap_or_default());
        }
        out
    }

    #[tokio::test]
    async fn over_long_lines_are_skipped_and_the_next_one_is_read() {
        let mut input = b":srv PING :first\r\n".to_vec();
        input.extend(vec![b'x'; 3 * MAX_LINE]);
        input.extend_from_slice(b"\r\n\r\n:srv PING :after\r\n");
        assert_eq!(read_all(input).await, ["first", "after"]);
    }

    #[tokio::test]
    async fn a_line_that_is_not_utf8_is_read_lossily() {
        let input = b":srv PRIVMSG me :caf\xe9\r\n:srv PING :last".to_vec();
        assert_eq!(read_all(input).await, ["caf\u{fffd}", "last"]);
    }

    #[test]
    fn nick_candidates_start_with_the_base() {
        let c = nick_candidates("bob");
        assert_eq!(c[0], "bob");
        assert!(c[1..].iter().all(|n| n.starts_with("bob-") && parley_proto::validate_nick(n, 30).is_ok()));
    }
}
