//! A small blocking IRC client for tests, and the received line split into
//! its parts. Reads are bounded by deadlines and end on a line, EOF or the
//! deadline, never on a fixed sleep.
//!
//! The wire format is parsed by a few lines here rather than by
//! `parley-proto`, so the tests check the protocol independently of the
//! parser the server itself uses.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a single expected reply may take on a busy two-core machine.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Numeric replies by their RFC 1459/2812 and IRCv3 names. Written out here
/// (not taken from `parley-proto`) so the tests pin the wire values.
pub mod numeric {
    pub const RPL_WELCOME: &str = "001";
    pub const RPL_ISUPPORT: &str = "005";
    pub const RPL_LUSERCLIENT: &str = "251";
    pub const RPL_LUSERME: &str = "255";
    pub const RPL_AWAY: &str = "301";
    pub const RPL_USERHOST: &str = "302";
    pub const RPL_ISON: &str = "303";
    pub const RPL_UNAWAY: &str = "305";
    pub const RPL_NOWAWAY: &str = "306";
    pub const RPL_WHOISUSER: &str = "311";
    pub const RPL_WHOISSERVER: &str = "312";
    pub const RPL_WHOISOPERATOR: &str = "313";
    pub const RPL_ENDOFWHO: &str = "315";
    pub const RPL_WHOISIDLE: &str = "317";
    pub const RPL_ENDOFWHOIS: &str = "318";
    pub const RPL_WHOISCHANNELS: &str = "319";
    pub const RPL_CHANNELMODEIS: &str = "324";
    pub const RPL_TOPIC: &str = "332";
    pub const RPL_INVITING: &str = "341";
    pub const RPL_WHOREPLY: &str = "352";
    pub const RPL_NAMREPLY: &str = "353";
    pub const RPL_ENDOFNAMES: &str = "366";
    pub const RPL_MOTD: &str = "372";
    pub const RPL_MOTDSTART: &str = "375";
    pub const RPL_ENDOFMOTD: &str = "376";
    pub const RPL_YOUREOPER: &str = "381";
    pub const ERR_NOSUCHNICK: &str = "401";
    pub const ERR_CANNOTSENDTOCHAN: &str = "404";
    pub const ERR_INPUTTOOLONG: &str = "417";
    pub const ERR_UNKNOWNCOMMAND: &str = "421";
    pub const ERR_NONICKNAMEGIVEN: &str = "431";
    pub const ERR_ERRONEUSNICKNAME: &str = "432";
    pub const ERR_NICKNAMEINUSE: &str = "433";
    pub const ERR_NOTONCHANNEL: &str = "442";
    pub const ERR_NOTREGISTERED: &str = "451";
    pub const ERR_NEEDMOREPARAMS: &str = "461";
    pub const ERR_PASSWDMISMATCH: &str = "464";
    pub const ERR_INVITEONLYCHAN: &str = "473";
    pub const ERR_BANNEDFROMCHAN: &str = "474";
    pub const ERR_BADCHANNELKEY: &str = "475";
    pub const ERR_NOPRIVILEGES: &str = "481";
    pub const ERR_CHANOPRIVSNEEDED: &str = "482";
}

// ---------------------------------------------------------------------------
// IRC lines
// ---------------------------------------------------------------------------

/// One received IRC line, split into its parts.
#[derive(Debug, Clone)]
pub struct Line {
    pub raw: String,
    pub tags: Vec<(String, String)>,
    pub source: Option<String>,
    pub command: String,
    pub params: Vec<String>,
}

impl Line {
    /// Splits `[@tags] [:source] COMMAND params... [:trailing]` (tag values
    /// are kept escaped; the tests only compare simple ones).
    pub fn parse(raw: &str) -> Line {
        let mut rest = raw.trim_end_matches(['\r', '\n']);
        let raw_owned = rest.to_string();
        let mut tags = Vec::new();
        if let Some(after) = rest.strip_prefix('@') {
            let (t, tail) = after.split_once(' ').unwrap_or((after, ""));
            for item in t.split(';').filter(|s| !s.is_empty()) {
                let (k, v) = item.split_once('=').unwrap_or((item, ""));
                tags.push((k.to_string(), v.to_string()));
            }
            rest = tail.trim_start_matches(' ');
        }
        let mut source = None;
        if let Some(after) = rest.strip_prefix(':') {
            let (s, tail) = after.split_once(' ').unwrap_or((after, ""));
            source = Some(s.to_string());
            rest = tail.trim_start_matches(' ');
        }
        let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let mut params = Vec::new();
        loop {
            rest = rest.trim_start_matches(' ');
            if rest.is_empty() {
                break;
            }
            if let Some(trailing) = rest.strip_prefix(':') {
                params.push(trailing.to_string());
                break;
            }
            let (word, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            params.push(word.to_string());
            rest = tail;
        }
        Line { raw: raw_owned, tags, source, command: command.to_ascii_uppercase(), params }
    }

    pub fn is(&self, command: &str) -> bool {
        self.command.eq_ignore_ascii_case(command)
    }

    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map_or("", String::as_str)
    }

    /// The last parameter (usually the text).
    pub fn last(&self) -> &str {
        self.params.last().map_or("", String::as_str)
    }

    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The nick part of the source (`nick!user@host`).
    pub fn nick(&self) -> &str {
        self.source.as_deref().map_or("", |s| s.split('!').next().unwrap_or(s))
    }

    /// Whether this is `command` from `nick`.
    pub fn is_from(&self, command: &str, nick: &str) -> bool {
        self.is(command) && self.nick().eq_ignore_ascii_case(nick)
    }
}

/// Formats lines for a failure message.
pub fn show(lines: &[Line]) -> String {
    let mut out = String::new();
    for l in lines.iter().rev().take(40).collect::<Vec<_>>().into_iter().rev() {
        out.push_str("    ");
        out.push_str(&l.raw);
        out.push('\n');
    }
    if lines.len() > 40 {
        out = format!("    ({} earlier lines not shown)\n{out}", lines.len() - 40);
    }
    out
}

// ---------------------------------------------------------------------------
// The IRC client
// ---------------------------------------------------------------------------

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// A blocking IRC client for tests. Reads are bounded by deadlines; a
/// partial line that arrives before a deadline is kept for the next read.
pub struct Client {
    pub nick: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    partial: Vec<u8>,
    /// Answer the server's PING automatically while waiting for other lines.
    auto_pong: bool,
    closed: bool,
}

/// What one bounded read produced.
enum Read1 {
    Line(Line),
    Closed,
    TimedOut,
}

/// Why a wait for a line ended without it; carries the lines seen.
enum Missed {
    Closed(Vec<Line>),
    TimedOut(Vec<Line>),
}

impl Client {
    /// Connects to `addr` (nothing is sent).
    pub fn connect(addr: SocketAddr) -> Client {
        Client::try_connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"))
    }

    /// Like [`Client::connect`], but reports failure instead of panicking.
    pub fn try_connect(addr: SocketAddr) -> std::io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
        stream.set_nodelay(true).ok();
        let writer = stream.try_clone()?;
        Ok(Client {
            nick: String::new(),
            reader: BufReader::with_capacity(64 * 1024, stream),
            writer,
            partial: Vec::new(),
            auto_pong: false,
            closed: false,
        })
    }

    /// Connects and registers as `nick`; see [`Client::register`].
    pub fn registered(addr: SocketAddr, nick: &str) -> Client {
        let mut c = Client::connect(addr);
        c.register(nick);
        c
    }

    /// This end's address (the server logs it as the connection's `addr`).
    pub fn local_addr(&self) -> SocketAddr {
        self.writer.local_addr().expect("local address")
    }

    /// Answer server PINGs while waiting (off by default, so that ping
    /// timeout tests can leave them unanswered).
    pub fn set_auto_pong(&mut self, on: bool) {
        self.auto_pong = on;
    }

    /// Sends one line (CR LF is added).
    pub fn send(&mut self, line: &str) {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.send_raw(&bytes);
    }

    /// Sends bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap_or_else(|e| panic!("{}: sending failed: {e}", self.label()));
    }

    /// Like `send_raw`, but reports failure instead of panicking (the server
    /// may legitimately close the connection while a flood is being sent).
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Closes the sending half (the server sees EOF).
    pub fn shutdown_write(&mut self) {
        let _ = self.writer.shutdown(Shutdown::Write);
    }

    fn label(&self) -> String {
        if self.nick.is_empty() {
            "client".to_string()
        } else {
            format!("client {}", self.nick)
        }
    }

    fn read_line(&mut self, deadline: Instant) -> Read1 {
        if self.closed {
            return Read1::Closed;
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Read1::TimedOut;
            }
            self.reader.get_ref().set_read_timeout(Some(left)).expect("setting a read timeout");
            match self.reader.read_until(b'\n', &mut self.partial) {
                Ok(0) => {
                    self.closed = true;
                    return Read1::Closed;
                }
                Ok(_) if self.partial.ends_with(b"\n") => {
                    let text = String::from_utf8_lossy(&self.partial).into_owned();
                    self.partial.clear();
                    let line = Line::parse(&text);
                    if self.auto_pong && line.is("PING") {
                        let reply = format!("PONG :{}", line.last());
                        self.send(&reply);
                        continue;
                    }
                    return Read1::Line(line);
                }
                // A partial line at EOF: loop, the next read returns 0.
                Ok(_) => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                    continue
                }
                Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => {
                    self.closed = true;
                    return Read1::Closed;
                }
                Err(e) => panic!("{}: read error: {e}", self.label()),
            }
        }
    }

    /// Reads lines until one matches `pred`; every line read, the match last.
    fn read_until(&mut self, pred: impl Fn(&Line) -> bool, timeout: Duration) -> Result<Vec<Line>, Missed> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            match self.read_line(deadline) {
                Read1::Line(line) => {
                    let hit = pred(&line);
                    seen.push(line);
                    if hit {
                        return Ok(seen);
                    }
                }
                Read1::Closed => return Err(Missed::Closed(seen)),
                Read1::TimedOut => return Err(Missed::TimedOut(seen)),
            }
        }
    }

    /// Reads lines until one matches `pred`, and returns it. Fails, listing
    /// the lines seen, if the connection closes or `timeout` passes first.
    pub fn expect(&mut self, pred: impl Fn(&Line) -> bool, timeout: Duration) -> Line {
        self.collect_until(pred, timeout).pop().expect("collect_until returns the match last")
    }

    /// Like [`Client::expect`], matching the line's text as received (CR LF
    /// removed) and returning that text: for tests that read the wire as a
    /// person would, by what a line starts with or contains.
    pub fn expect_raw(&mut self, pred: impl Fn(&str) -> bool, timeout: Duration) -> String {
        self.expect(|l| pred(&l.raw), timeout).raw
    }

    /// Reads lines until one matches `pred`; returns every line read, the
    /// match last. Fails like [`Client::expect`].
    pub fn collect_until(&mut self, pred: impl Fn(&Line) -> bool, timeout: Duration) -> Vec<Line> {
        match self.read_until(pred, timeout) {
            Ok(lines) => lines,
            Err(Missed::Closed(seen)) => panic!(
                "{}: connection closed before the expected line arrived; lines seen:\n{}",
                self.label(),
                show(&seen)
            ),
            Err(Missed::TimedOut(seen)) => panic!(
                "{}: the expected line did not arrive within {timeout:?}; lines seen:\n{}",
                self.label(),
                show(&seen)
            ),
        }
    }

    /// Waits for a line with this command (or numeric).
    pub fn expect_cmd(&mut self, command: &str) -> Line {
        self.expect(|l| l.is(command), TIMEOUT)
    }

    /// Waits for the server to close the connection; returns the lines that
    /// came before EOF.
    pub fn expect_closed(&mut self, timeout: Duration) -> Vec<Line> {
        match self.read_until(|_| false, timeout) {
            Err(Missed::Closed(seen)) => seen,
            Ok(seen) | Err(Missed::TimedOut(seen)) => panic!(
                "{}: the connection was still open after {timeout:?}; lines seen:\n{}",
                self.label(),
                show(&seen)
            ),
        }
    }

    /// A barrier: sends `PING` with a fresh token and reads until its `PONG`.
    /// The server handles one client's lines in order and queues replies in
    /// order, so everything this client sent before — and everything already
    /// queued for it — has arrived once the PONG does. Returns the lines
    /// before the PONG.
    pub fn sync(&mut self) -> Vec<Line> {
        let token = format!("sync-{}", NEXT_TOKEN.fetch_add(1, Ordering::Relaxed));
        self.send(&format!("PING :{token}"));
        let mut lines = self.collect_until(|l| l.is("PONG") && l.last() == token, TIMEOUT);
        lines.pop();
        lines
    }

    /// Proves absence: no line matching `pred` is queued for this client up
    /// to a [`Client::sync`] barrier. Returns the lines read.
    pub fn expect_none(&mut self, pred: impl Fn(&Line) -> bool, what: &str) -> Vec<Line> {
        let lines = self.sync();
        if let Some(bad) = lines.iter().find(|l| pred(l)) {
            panic!("{}: expected no {what}, but got {:?}; lines seen:\n{}", self.label(), bad.raw, show(&lines));
        }
        lines
    }

    /// Sends NICK and USER, then waits for 001 and for the end of the
    /// automatic join to `#lobby` (`366 <nick> #lobby`). Returns every line
    /// of the registration burst.
    pub fn register(&mut self, nick: &str) -> Vec<Line> {
        self.send_nick_user(nick);
        self.finish_registration(nick)
    }

    /// Registers with IRCv3 capability negotiation: `CAP LS 302`, NICK,
    /// USER, `CAP REQ :<caps>`, (ACK), `CAP END`.
    pub fn register_with_caps(&mut self, nick: &str, caps: &[&str]) -> Vec<Line> {
        self.send("CAP LS 302");
        self.send_nick_user(nick);
        let wanted = caps.join(" ");
        self.send(&format!("CAP REQ :{wanted}"));
        let ack = self.expect(|l| l.is("CAP") && matches!(l.param(1), "ACK" | "NAK"), TIMEOUT);
        assert_eq!(ack.param(1), "ACK", "capabilities {wanted:?} refused: {}", ack.raw);
        assert_eq!(ack.last().trim(), wanted, "ACK names other capabilities: {}", ack.raw);
        self.send("CAP END");
        self.finish_registration(nick)
    }

    /// Whether `nick` can register here now: connects, sends NICK and USER
    /// and waits for the welcome. Never panics; a refusal, a closed or
    /// unreachable server, or silence past [`TIMEOUT`] is `false`.
    pub fn can_register(addr: SocketAddr, nick: &str) -> bool {
        let Ok(mut c) = Client::try_connect(addr) else { return false };
        let hello = format!("NICK {nick}\r\nUSER {nick} 0 * :Test user {nick}\r\n");
        if c.try_send_raw(hello.as_bytes()).is_err() {
            return false;
        }
        match c.read_until(|l| l.is(numeric::RPL_WELCOME) || refuses_registration(l), TIMEOUT) {
            Ok(lines) => lines.last().is_some_and(|l| l.is(numeric::RPL_WELCOME)),
            Err(_) => false,
        }
    }

    fn send_nick_user(&mut self, nick: &str) {
        self.send(&format!("NICK {nick}"));
        self.send(&format!("USER {nick} 0 * :Test user {nick}"));
    }

    fn finish_registration(&mut self, nick: &str) -> Vec<Line> {
        let mut lines = self.collect_until(|l| l.is(numeric::RPL_WELCOME) || refuses_registration(l), TIMEOUT);
        let last = lines.last().expect("non-empty");
        assert!(!refuses_registration(last), "registering {nick} failed: {}\n{}", last.raw, show(&lines));
        self.nick = last.param(0).to_string();
        assert_eq!(self.nick, nick, "001 addressed to another nick");
        let joined =
            self.collect_until(|l| l.is(numeric::RPL_ENDOFNAMES) && l.param(1).eq_ignore_ascii_case("#lobby"), TIMEOUT);
        lines.extend(joined);
        lines
    }
}

/// The replies that end a registration attempt without a welcome.
pub(crate) fn refuses_registration(l: &Line) -> bool {
    matches!(l.command.as_str(), "431" | "432" | "433" | "464" | "ERROR")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_splits_into_tags_source_command_and_params() {
        let l = Line::parse("@time=2026-01-01T00:00:00Z;msgid=7 :alice!a@host privmsg #lobby :hello there\r\n");
        assert_eq!(l.raw, "@time=2026-01-01T00:00:00Z;msgid=7 :alice!a@host privmsg #lobby :hello there");
        assert_eq!(l.tag("msgid"), Some("7"));
        assert_eq!(l.tag("time"), Some("2026-01-01T00:00:00Z"));
        assert_eq!(l.nick(), "alice");
        assert!(l.is_from("PRIVMSG", "ALICE"));
        assert_eq!(l.params, ["#lobby", "hello there"]);
        assert_eq!(l.param(5), "");
    }

    #[test]
    fn a_line_without_source_or_trailing_keeps_its_middle_params() {
        let l = Line::parse("PING  token  two");
        assert_eq!(l.source, None);
        assert_eq!(l.command, "PING");
        assert_eq!(l.params, ["token", "two"]);
        assert_eq!(l.last(), "two");
    }

    #[test]
    fn show_keeps_the_last_forty_lines() {
        let lines: Vec<Line> = (0..45).map(|i| Line::parse(&format!("NOTICE * :{i}"))).collect();
        let shown = show(&lines);
        assert!(shown.starts_with("    (5 earlier lines not shown)\n"));
        assert!(shown.contains(":5\n") && shown.ends_with(":44\n") && !shown.contains(":4\n"));
    }
}
