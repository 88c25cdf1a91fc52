//! Connecting and registering: CAP negotiation, NICK/USER, and collecting
//! what the welcome burst tells (lobby, members, file store URL) up to the
//! PONG that follows it.

use super::session::Session;
use super::Event;
use super::{is_from, strip_prefixes, Endpoint, IrcError, LineReader, Welcome, Writer, REPLY_TIMEOUT, WANTED_CAPS};
use crate::tls::Trust;
use parley_proto::numeric::*;
use parley_proto::Message;
use rustls_pki_types::ServerName;
use std::io;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// The outcome of trying one nickname.
#[derive(Debug)]
pub enum Attempt {
    Registered(Box<Welcome>),
    /// 431/432/433: the nickname was refused; the connection stays open.
    Rejected {
        code: String,
        reason: String,
    },
}

/// What one registration attempt came to, inside the connector.
enum Outcome {
    Done(Attempt),
    /// The plain-text server offered TLS on this port (STS): go there.
    Upgrade(u16),
}

/// Opens a connection and registers; the caller decides what to do when a
/// nickname is refused.
pub struct Connector {
    endpoint: Endpoint,
    trust: Trust,
    conn: Option<(LineReader, Writer)>,
    /// When the current connection was opened: one that has been waiting for
    /// the person to type a nick may have hit the registration timeout.
    opened: Instant,
    caps_offered: Vec<String>,
    /// From the `sts` capability: where the server offers TLS.
    sts_port: Option<u16>,
    /// USER goes only once a nick is accepted, so its username is that
    /// nick's and not one the server refused.
    user_sent: bool,
    /// Capability negotiation is over (ACK/NAK, or nothing to ask for):
    /// `CAP END` can go with USER.
    caps_done: bool,
    cap_end_sent: bool,
    /// Numbers each attempt's nick check, so a late answer to an earlier
    /// one is not taken for this one's.
    attempts: u32,
}

impl Connector {
    pub async fn connect(mut endpoint: Endpoint, trust: &Trust) -> Result<Connector, IrcError> {
        // A remembered STS policy: this host is reached over TLS only.
        if !endpoint.tls {
            if let Some(port) = crate::sts::lookup(&endpoint.host) {
                endpoint = Endpoint { host: endpoint.host, port, tls: true };
            }
        }
        let mut c = Connector {
            endpoint,
            trust: trust.clone(),
            conn: None,
            opened: Instant::now(),
            caps_offered: Vec::new(),
            sts_port: None,
            user_sent: false,
            caps_done: false,
            cap_end_sent: false,
            attempts: 0,
        };
        c.open().await?;
        Ok(c)
    }

    /// Where this connects to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    async fn open(&mut self) -> Result<(), IrcError> {
        let addr = self.endpoint.addr();
        let stream = tokio::time::timeout(REPLY_TIMEOUT, TcpStream::connect(&addr))
            .await
            .map_err(|_| IrcError::Connect { addr: addr.clone(), source: io::ErrorKind::TimedOut.into() })?
            .map_err(|source| IrcError::Connect { addr: addr.clone(), source })?;
        stream.set_nodelay(true).ok();
        let (rd, wr): (Box<dyn AsyncRead + Send + Unpin>, Box<dyn AsyncWrite + Send + Unpin>) = if self.endpoint.tls {
            let tls_err = |reason: String| IrcError::Tls { addr: addr.clone(), reason };
            let name = ServerName::try_from(self.endpoint.host.clone()).map_err(|e| tls_err(e.to_string()))?;
            let connector = tokio_rustls::TlsConnector::from(self.trust.config.clone());
            let tls = tokio::time::timeout(REPLY_TIMEOUT, connector.connect(name, stream))
                .await
                .map_err(|_| tls_err("the handshake timed out".into()))?
                .map_err(|e| tls_err(tls_reason(&e)))?;
            let (rd, wr) = tokio::io::split(tls);
            (Box::new(rd), Box::new(wr))
        } else {
            let (rd, wr) = stream.into_split();
            (Box::new(rd), Box::new(wr))
        };
        let mut writer = Writer::new(wr);
        writer.send(&Message::new("CAP", vec!["LS".into(), "302".into()])).await?;
        self.conn = Some((LineReader::new(rd), writer));
        self.opened = Instant::now();
        self.caps_offered.clear();
        self.user_sent = false;
        self.caps_done = false;
        self.cap_end_sent = false;
        Ok(())
    }

    /// Tries to register as `nick`. On 432/433 the connection stays open for
    /// another attempt. A connection the server dropped while the person was
    /// choosing a nick (registration timeout) is reopened once.
    pub async fn attempt(&mut self, nick: &str) -> Result<Attempt, IrcError> {
        let outcome = match self.attempt_once(nick).await {
            Err(IrcError::Closed(_)) | Err(IrcError::Io(_)) if self.opened.elapsed() > Duration::from_secs(5) => {
                self.open().await?;
                self.attempt_once(nick).await?
            }
            other => other?,
        };
        match outcome {
            Outcome::Done(attempt) => Ok(attempt),
            Outcome::Upgrade(port) => {
                // STS: this connection is dropped for TLS, never back.
                self.conn = None;
                let plain = self.endpoint.addr();
                self.endpoint = Endpoint { host: self.endpoint.host.clone(), port, tls: true };
                self.open().await.map_err(|e| match e {
                    IrcError::Tls { addr, reason } => IrcError::Tls {
                        addr,
                        reason: format!("{plain} asks clients to use TLS here (STS), and: {reason}"),
                    },
                    other => other,
                })?;
                match self.attempt_once(nick).await? {
                    Outcome::Done(attempt) => Ok(attempt),
                    Outcome::Upgrade(_) => Err(IrcError::Closed("the TLS connection asked to upgrade again".into())),
                }
            }
        }
    }

    async fn attempt_once(&mut self, nick: &str) -> Result<Outcome, IrcError> {
        let (reader, writer) = self.conn.as_mut().ok_or_else(|| IrcError::Closed("not connected".into()))?;
        writer.send(&Message::new("NICK", vec![nick.to_string()])).await?;
        // A refusal of the nick comes before the answer to this PING; the
        // answer alone means the nick was taken, and USER may follow.
        self.attempts += 1;
        let nick_check = format!("parley-nick-{}-{}", std::process::id(), self.attempts);
        writer.send(&Message::new("PING", vec![nick_check.clone()])).await?;
        let mut welcome = Welcome { nick: nick.to_string(), ..Default::default() };
        let mut sync: Option<String> = None;
        let mut caps_ls = Vec::new();
        loop {
            // Registration ends with CAP END once USER is in and the
            // capabilities are settled (checked before each wait).
            if self.user_sent && self.caps_done && !self.cap_end_sent {
                writer.send(&Message::new("CAP", vec!["END".into()])).await?;
                self.cap_end_sent = true;
            }
            let msg = match tokio::time::timeout(REPLY_TIMEOUT, reader.next()).await {
                Err(_) => return Err(IrcError::Timeout),
                Ok(Err(e)) => return Err(IrcError::Io(e)),
                Ok(Ok(None)) => return Err(IrcError::Closed("connection closed during registration".into())),
                Ok(Ok(Some(m))) => m,
            };
            match msg.command.as_str() {
                "PING" => {
                    let token = msg.params.last().cloned().unwrap_or_default();
                    writer.send(&Message::new("PONG", vec![token])).await?;
                }
                "CAP" => match msg.param(1) {
                    Some("LS") => {
                        let more = msg.params.len() > 3 && msg.param(2) == Some("*");
                        let list = msg.params.last().map(String::as_str).unwrap_or("");
                        for cap in list.split(' ').filter(|c| !c.is_empty()) {
                            let (name, value) = cap.split_once('=').unwrap_or((cap, ""));
                            if name == "sts" {
                                self.sts_port = sts_port(value);
                                // Over TLS the policy says how long to keep to TLS.
                                if let Some(secs) = crate::sts::duration(value).filter(|_| self.endpoint.tls) {
                                    crate::sts::remember(&self.endpoint.host, self.endpoint.port, secs);
                                }
                            }
                            caps_ls.push(name.to_string());
                        }
                        if !more {
                            if let Some(port) = self.sts_port.filter(|_| !self.endpoint.tls) {
                                return Ok(Outcome::Upgrade(port));
                            }
                            self.caps_offered = std::mem::take(&mut caps_ls);
                            let wanted: Vec<&str> = WANTED_CAPS
                                .iter()
                                .copied()
                                .filter(|w| self.caps_offered.iter().any(|c| c == w))
                                .collect();
                            if wanted.is_empty() {
                                self.caps_done = true;
                            } else {
                                writer.send(&Message::new("CAP", vec!["REQ".into(), wanted.join(" ")])).await?;
                            }
                        }
                    }
                    Some("ACK") | Some("NAK") => self.caps_done = true,
                    _ => {}
                },
                ERR_NICKNAMEINUSE | ERR_ERRONEUSNICKNAME | ERR_NONICKNAMEGIVEN => {
                    let reason = msg.params.last().cloned().unwrap_or_default();
                    return Ok(Outcome::Done(Attempt::Rejected { code: msg.command, reason }));
                }
                ERR_PASSWDMISMATCH => {
                    return Err(IrcError::Rejected {
                        code: msg.command.clone(),
                        text: "the server wants a connection password, which parley does not send".into(),
                    });
                }
                RPL_WELCOME => {
                    welcome.nick = msg.param(0).unwrap_or(nick).to_string();
                    welcome.server_name = msg.source.clone().unwrap_or_default();
                    welcome.sts_port = self.sts_port.filter(|_| !self.endpoint.tls);
                    // Everything the server sends as part of registration
                    // (ISUPPORT, MOTD, the lobby JOIN and NAMES) comes
                    // before the answer to this PING.
                    let token = format!("parley-registered-{}", std::process::id());
                    writer.send(&Message::new("PING", vec![token.clone()])).await?;
                    sync = Some(token);
                }
                RPL_ISUPPORT => {
                    let n = msg.params.len();
                    for token in msg.params.iter().take(n.saturating_sub(1)).skip(1) {
                        let (key, value) = token.split_once('=').unwrap_or((token, ""));
                        match key {
                            "draft/FILEHOST" | "FILEHOST" => welcome.filehost = Some(unescape_isupport(value)),
                            _ => {}
                        }
                    }
                }
                RPL_MOTD => welcome.motd.push(msg.params.last().cloned().unwrap_or_default()),
                "JOIN" if welcome.lobby.is_none() && is_from(&msg, &welcome.nick) => {
                    welcome.lobby = msg.param(0).map(str::to_string);
                }
                RPL_NAMREPLY if welcome.lobby.as_deref() == msg.param(2) => {
                    let names = msg.params.last().map(String::as_str).unwrap_or("");
                    welcome.members.extend(names.split(' ').filter(|n| !n.is_empty()).map(strip_prefixes));
                }
                "BATCH" | "PRIVMSG" | "NOTICE" if msg.command == "BATCH" || msg.tag("batch").is_some() => {
                    welcome.replay.push(msg);
                }
                "PONG" if sync.is_some() && msg.params.last() == sync.as_ref() => {
                    return Ok(Outcome::Done(Attempt::Registered(Box::new(welcome))));
                }
                "PONG" if msg.params.last() == Some(&nick_check) && !self.user_sent => {
                    let user =
                        Message::new("USER", vec![nick.to_string(), "0".into(), "*".into(), "Parley user".into()]);
                    writer.send(&user).await?;
                    self.user_sent = true;
                }
                "ERROR" => {
                    return Err(IrcError::Closed(msg.params.last().cloned().unwrap_or_default()));
                }
                _ => {}
            }
        }
    }

    /// Hands the registered connection to a reader task. Events go to the
    /// returned receiver; dropping it simply discards them.
    pub fn into_session(mut self, welcome: &Welcome) -> (Session, mpsc::Receiver<Event>) {
        let (reader, writer) = self.conn.take().expect("into_session after a successful attempt");
        Session::start(reader, writer, welcome, self.trust.clone())
    }
}

/// The `port` key of an IRCv3 `sts` policy (`port=6697,duration=...`).
fn sts_port(policy: &str) -> Option<u16> {
    policy.split(',').find_map(|kv| kv.strip_prefix("port=")).and_then(|p| p.parse().ok())
}

/// A handshake error in words, with what to do about an untrusted
/// certificate.
fn tls_reason(e: &io::Error) -> String {
    let text = e.to_string();
    if text.contains("certificate") || text.contains("UnknownIssuer") {
        format!("{text}: the server's certificate is not trusted (trust it with --ca FILE, or --insecure to skip the check)")
    } else {
        text
    }
}

/// ISUPPORT values escape bytes as `\xHH`.
fn unescape_isupport(v: &str) -> String {
    let mut out = Vec::with_capacity(v.len());
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1] == b'x' {
            if let Some(byte) = std::str::from_utf8(&b[i + 2..i + 4]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isupport_escapes_are_undone() {
        assert_eq!(unescape_isupport("http://h:1/files"), "http://h:1/files");
        assert_eq!(unescape_isupport("a\\x20b\\x3Dc"), "a b=c");
        assert_eq!(unescape_isupport("trailing\\x2"), "trailing\\x2");
    }

    #[test]
    fn sts_policies_give_the_tls_port() {
        assert_eq!(sts_port("port=6697,duration=300"), Some(6697));
        assert_eq!(sts_port("duration=300"), None);
    }
}
