//! The client side of IRC as the load generator needs it: connecting (from
//! a chosen loopback address), registering with any server (waiting for
//! 001 through NOTICE/005/MOTD noise, answering PING, retrying a taken
//! nick), joining and waiting for the server's own JOIN echo, and a line
//! buffer that hands out complete lines without copying or allocating.
//!
//! Parsing here is deliberately shallow: a benchmark client only needs the
//! command, the source nick and the trailing parameter, and the cost of
//! reading millions of lines a second must stay far below the server's.

use crate::{Target, Transport};
use parley_proto::framing::split_line;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// A growable read buffer that yields complete lines.
pub struct LineBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl LineBuf {
    pub fn new(size: usize) -> LineBuf {
        LineBuf { buf: vec![0; size.max(512)], start: 0, end: 0 }
    }

    /// The next complete line, without CR LF.
    pub fn next_line(&mut self) -> Option<&[u8]> {
        let (line, consumed) = split_line(&self.buf[self.start..self.end])?;
        self.start += consumed;
        Some(line)
    }

    /// Reads once from `rd` into the free space. Cancel-safe: nothing is
    /// lost if the future is dropped before it completes.
    pub async fn fill<R: AsyncReadExt + Unpin>(&mut self, rd: &mut R) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 && self.buf.len() - self.end < self.buf.len() / 4 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // A line longer than the buffer: grow (bounded by the server's
            // own line limit in practice).
            if self.buf.len() >= 1 << 20 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
            let len = self.buf.len() * 2;
            self.buf.resize(len, 0);
        }
        let n = rd.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }
}

/// A client's connection: plain TCP, or IRC over WebSocket presented as
/// the same byte stream of lines (see `ws`).
pub enum Stream {
    Tcp(TcpStream),
    Ws(Box<crate::ws::WsStream>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Ws(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Ws(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Ws(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Ws(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}

/// One client connection.
pub struct Conn {
    pub stream: Stream,
    pub lines: LineBuf,
    /// The nick the server registered us under.
    pub nick: String,
}

/// The interesting parts of one line.
pub struct Line<'a> {
    /// The source without the leading ':' (empty if none).
    pub source: &'a [u8],
    pub command: &'a [u8],
    /// Everything after the command (parameters), without the leading space.
    pub params: &'a [u8],
}

fn split_word(s: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b' ', s) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &[]),
    }
}

impl<'a> Line<'a> {
    pub fn parse(mut line: &'a [u8]) -> Line<'a> {
        if line.first() == Some(&b'@') {
            line = split_word(line).1;
        }
        let mut source: &[u8] = &[];
        if line.first() == Some(&b':') {
            let (s, rest) = split_word(&line[1..]);
            source = s;
            line = rest;
        }
        let (command, params) = split_word(line);
        Line { source, command, params }
    }

    /// The nick part of the source.
    pub fn source_nick(&self) -> &'a [u8] {
        match memchr::memchr(b'!', self.source) {
            Some(i) => &self.source[..i],
            None => self.source,
        }
    }

    /// The first parameter (a middle or the trailing one).
    pub fn first_param(&self) -> &'a [u8] {
        match self.params.strip_prefix(b":") {
            Some(t) => t,
            None => split_word(self.params).0,
        }
    }

    /// The trailing parameter: after the first " :" (or a leading ':'),
    /// else the last word.
    pub fn trailing(&self) -> &'a [u8] {
        if let Some(t) = self.params.strip_prefix(b":") {
            return t;
        }
        match memchr::memmem::find(self.params, b" :") {
            Some(i) => &self.params[i + 2..],
            None => self.params.rsplit(|&b| b == b' ').next().unwrap_or(&[]),
        }
    }
}

/// ASCII case-insensitive comparison (enough for our own nicks and channels).
pub fn irc_eq(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The PONG answering a PING line, appended to `out`.
pub fn pong_for(line: &Line<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"PONG :");
    out.extend_from_slice(line.trailing());
    out.extend_from_slice(b"\r\n");
}

/// Short base-36 numbers keep nicks within the classic 9-character limit.
pub fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n == 0 {
        return "0".into();
    }
    let mut out = Vec::new();
    while n > 0 {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

/// Connects from 127.0.0.(1 + which % sources), so that tests needing more
/// than one address's worth of ports (or per-address limits) can spread out.
pub async fn connect(target: &Target, which: usize) -> io::Result<TcpStream> {
    let addr = target.addr_for(which);
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if target.source_ips > 1 && addr.is_ipv4() {
        let last = 1 + (which % target.source_ips as usize) as u8;
        // Lets the kernel pick the port at connect time (per destination),
        // so binding a source address does not cap us at one port range in
        // total (if it fails, only a very large run notices).
        let _ = crate::sys::set_bind_address_no_port(&socket);
        socket.bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Why a client could not get ready.
#[derive(Debug, Clone)]
pub struct SetupError(pub String);

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(what: impl Into<String>) -> Result<T, SetupError> {
    Err(SetupError(what.into()))
}

impl Conn {
    /// Connects and registers as `nick`, within `timeout`.
    pub async fn open(
        target: &Target,
        which: usize,
        nick: &str,
        buf_size: usize,
        timeout: Duration,
    ) -> Result<Conn, SetupError> {
        let deadline = Instant::now() + timeout;
        // A full accept backlog shows as a refused or reset connect; retry
        // a few times before calling it an error.
        let mut attempt = 0;
        let stream = loop {
            attempt += 1;
            match tokio::time::timeout_at(deadline, connect(target, which)).await {
                Ok(Ok(s)) => break s,
                Ok(Err(e)) if attempt < 5 => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                Ok(Err(e)) => return err(format!("connect: {}", e.kind())),
                Err(_) => return err("connect: timed out"),
            }
        };
        let stream = match target.transport {
            Transport::Tcp => Stream::Tcp(stream),
            Transport::Ws => match tokio::time::timeout_at(deadline, crate::ws::open(stream)).await {
                Ok(Ok(ws)) => Stream::Ws(Box::new(ws)),
                Ok(Err(e)) => return err(format!("WebSocket handshake: {e}")),
                Err(_) => return err("WebSocket handshake: timed out"),
            },
        };
        let mut conn = Conn { stream, lines: LineBuf::new(buf_size), nick: nick.to_string() };
        match tokio::time::timeout_at(deadline, conn.register()).await {
            Ok(r) => r.map(|()| conn),
            Err(_) => err("registration: timed out"),
        }
    }

    async fn send(&mut self, text: &str) -> Result<(), SetupError> {
        self.stream.write_all(text.as_bytes()).await.map_err(|e| SetupError(format!("write: {}", e.kind())))
    }

    /// Reads until one line satisfies `done`, answering PINGs on the way.
    /// `done` returns Some(Ok) to stop, Some(Err) to fail, None to go on.
    async fn read_until<F>(&mut self, mut done: F) -> Result<(), SetupError>
    where
        F: FnMut(&Line<'_>) -> Option<Result<(), SetupError>>,
    {
        let mut pongs = Vec::new();
        loop {
            let mut finished = None;
            while let Some(raw) = self.lines.next_line() {
                let line = Line::parse(raw);
                if line.command == b"PING" {
                    pong_for(&line, &mut pongs);
                    continue;
                }
                if line.command == b"ERROR" {
                    finished = Some(Err(SetupError(format!("ERROR {}", String::from_utf8_lossy(line.trailing())))));
                    break;
                }
                if let Some(r) = done(&line) {
                    finished = Some(r);
                    break;
                }
            }
            if !pongs.is_empty() {
                self.stream.write_all(&pongs).await.map_err(|e| SetupError(format!("write: {}", e.kind())))?;
                pongs.clear();
            }
            if let Some(r) = finished {
                return r;
            }
            match self.lines.fill(&mut self.stream).await {
                Ok(0) => return err("closed by server"),
                Ok(_) => {}
                Err(e) => return err(format!("read: {}", e.kind())),
            }
        }
    }

    async fn register(&mut self) -> Result<(), SetupError> {
        let nick = self.nick.clone();
        self.send(&format!("NICK {nick}\r\nUSER bench 0 * :ircload\r\n")).await?;
        for attempt in 1..=5 {
            let mut taken = false;
            let mut registered_as = None;
            self.read_until(|l| match l.command {
                b"001" => {
                    registered_as = Some(String::from_utf8_lossy(l.first_param()).into_owned());
                    Some(Ok(()))
                }
                b"433" | b"436" => {
                    taken = true;
                    Some(Ok(()))
                }
                b"432" | b"465" | b"464" => Some(Err(SetupError(format!(
                    "refused: {} {}",
                    String::from_utf8_lossy(l.command),
                    String::from_utf8_lossy(l.trailing())
                )))),
                _ => None,
            })
            .await?;
            if let Some(n) = registered_as {
                self.nick = n;
                return Ok(());
            }
            if taken {
                // Someone (a previous run's ghost) holds it: try a variant
                // that still fits in 9 characters.
                let base: String = nick.chars().take(6).collect();
                let n = format!("{base}_{attempt}");
                self.nick = n.clone();
                self.send(&format!("NICK {n}\r\n")).await?;
            }
        }
        err("registration: nick taken repeatedly")
    }

    /// Joins `channel` (sending JOIN if `send`) and waits for our own JOIN.
    pub async fn join(&mut self, channel: &str, send: bool) -> Result<(), SetupError> {
        if send {
            self.send(&format!("JOIN {channel}\r\n")).await?;
        }
        let nick = self.nick.clone();
        self.read_until(|l| match l.command {
            b"JOIN" if irc_eq(l.source_nick(), nick.as_bytes()) && irc_eq(l.first_param(), channel.as_bytes()) => {
                Some(Ok(()))
            }
            b"403" | b"405" | b"471" | b"473" | b"474" | b"475" | b"476" | b"477" | b"489" => {
                Some(Err(SetupError(format!(
                    "join refused: {} {}",
                    String::from_utf8_lossy(l.command),
                    String::from_utf8_lossy(l.trailing())
                ))))
            }
            _ => None,
        })
        .await
    }
}

/// What a batch of clients is asked to do before it counts as ready.
pub struct Plan {
    pub count: usize,
    pub buf_size: usize,
    /// Nick for client i.
    pub nick: Box<dyn Fn(usize) -> String + Send + Sync>,
    /// Channel client i joins, if any.
    pub channel: Box<dyn Fn(usize) -> Option<String> + Send + Sync>,
}

/// Opens `plan.count` clients, at most `target.connect_concurrency` at a
/// time, each registered and joined. Results are in index order.
pub async fn open_many(target: &Target, plan: Plan) -> Vec<Result<Conn, SetupError>> {
    let plan = Arc::new(plan);
    let sem = Arc::new(Semaphore::new(target.connect_concurrency.max(1)));
    let timeout = Duration::from_secs_f64(target.register_timeout);
    let mut handles = Vec::with_capacity(plan.count);
    let started = Instant::now();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for i in 0..plan.count {
        let permit = sem.clone().acquire_owned().await.expect("never closed");
        let target = target.clone();
        let task_plan = plan.clone();
        let task_done = done.clone();
        handles.push(tokio::spawn(async move {
            let (plan, done) = (task_plan, task_done);
            let _permit = permit;
            let nick = (plan.nick)(i);
            let mut conn = Conn::open(&target, i, &nick, plan.buf_size, timeout).await?;
            if let Some(chan) = (plan.channel)(i) {
                tokio::time::timeout(timeout, conn.join(&chan, true))
                    .await
                    .map_err(|_| SetupError("join: timed out".into()))??;
            }
            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(conn)
        }));
        if i > 0 && i % 2000 == 0 {
            eprintln!(
                "  ... {} of {} clients ready after {:.1} s",
                done.load(std::sync::atomic::Ordering::Relaxed),
                plan.count,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(match h.await {
            Ok(r) => r,
            Err(e) => Err(SetupError(format!("task failed: {e}"))),
        });
    }
    out
}

/// Splits results into ready clients and a count of each error text.
pub fn partition(results: Vec<Result<Conn, SetupError>>) -> (Vec<Conn>, std::collections::BTreeMap<String, usize>) {
    let mut ok = Vec::new();
    let mut errors = std::collections::BTreeMap::new();
    for r in results {
        match r {
            Ok(c) => ok.push(c),
            Err(e) => *errors.entry(e.0).or_insert(0) += 1,
        }
    }
    (ok, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_parts_are_found_with_and_without_tags() {
        let l = Line::parse(b"@time=x :n!u@h PRIVMSG #c :1 2 3 pad");
        assert_eq!(l.command, b"PRIVMSG");
        assert_eq!(l.source_nick(), b"n");
        assert_eq!(l.first_param(), b"#c");
        assert_eq!(l.trailing(), b"1 2 3 pad");
        let j = Line::parse(b":me!u@h JOIN :#Lobby");
        assert_eq!(j.first_param(), b"#Lobby");
        let p = Line::parse(b"PING srv.example");
        assert_eq!(p.trailing(), b"srv.example");
    }

    #[test]
    fn base36_is_short() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
        assert!(base36(20_000).len() <= 3);
    }

    #[tokio::test]
    async fn line_buffer_handles_split_and_long_lines() {
        let data: Vec<u8> = [&b"a\r\nbb"[..], &b"b\r\n"[..], &[b'x'; 3000][..], b"\n"].concat();
        let mut rd = &data[..];
        let mut lb = LineBuf::new(512);
        let mut got = Vec::new();
        while lb.fill(&mut rd).await.unwrap() > 0 {
            while let Some(l) = lb.next_line() {
                got.push(l.len());
            }
        }
        assert_eq!(got, vec![1, 3, 3000]);
    }
}
