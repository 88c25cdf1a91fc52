//! The integration-test harness: start the real `parleyd` binary on port 0
//! with a temporary data directory and wait for its readiness line, and
//! speak IRC to it over real sockets with a small blocking client.
//!
//! Every wait here is bounded by a deadline and ends on a signal (a line
//! arriving, EOF, the readiness line, process exit), never on a fixed sleep.
//! The wire format is parsed by a few lines of code in this file rather than
//! by `parley-proto`, so the tests check the protocol independently of the
//! parser the server itself uses.

// Each test file compiles this module separately and uses a different part.
#![allow(dead_code)]

pub mod http;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The password `PARLEY_ADMIN_PASSWORD` gives the generated `admin` operator.
pub const ADMIN_PASSWORD: &str = "Tr0ub4dor-parley-test-secret";
/// The operator name created from `PARLEY_ADMIN_PASSWORD`.
pub const ADMIN_NAME: &str = "admin";
/// How long a single expected reply may take on a busy two-core machine.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server may take to print its readiness line.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Flood limits high enough that a test can send as fast as it likes.
pub const NO_FLOOD_LIMIT: &str = "[limits]\nflood_burst = 1000000\nflood_lines_per_second = 1000000.0\n";

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
// The server process
// ---------------------------------------------------------------------------

/// A running `parleyd` child process with its own temporary data directory.
/// Dropping it kills the process (if still running) and removes the directory.
pub struct Server {
    child: Child,
    dir: tempfile::TempDir,
    /// Extra arguments it was started with (kept for restarts).
    args: Vec<String>,
    /// `key=value` fields of the readiness line (`irc`, later `http`, ...).
    ready: HashMap<String, String>,
    irc: SocketAddr,
    stdout_closed: mpsc::Receiver<()>,
    output: Arc<Mutex<String>>,
}

/// A signal the tests send to the server.
#[derive(Debug, Clone, Copy)]
pub enum Signal {
    Term,
    Int,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Int => "INT",
        }
    }
}

impl Server {
    /// Starts `parleyd` with an empty configuration file.
    pub fn start() -> Server {
        Server::start_with("")
    }

    /// Starts `parleyd` with `toml_extra` as its configuration file (for
    /// example `"[limits]\nsendq_bytes = 65536\n"`). The data directory and
    /// both listeners (IRC and HTTP, on port 0) are given as flags, which win
    /// over the file, so the text needs none of them.
    pub fn start_with(toml_extra: &str) -> Server {
        Server::start_with_args(toml_extra, &[])
    }

    /// Like [`Server::start_with`], with extra command-line arguments (for
    /// example a second `--irc-listen [::1]:0`; list flags accumulate).
    pub fn start_with_args(toml_extra: &str, args: &[&str]) -> Server {
        let dir = tempfile::Builder::new().prefix("parleyd-test-").tempdir().expect("creating a temp dir");
        let config = dir.path().join("parley.toml");
        std::fs::write(&config, format!("# written by the parley-server integration tests\n{toml_extra}"))
            .expect("writing the test config");
        Server::launch(dir, args.iter().map(|a| a.to_string()).collect())
    }

    /// Kills the server with SIGKILL (no chance to clean up), then starts a
    /// new one on the same configuration and data directory.
    pub fn kill_and_restart(mut self) -> Server {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("a placeholder dir"));
        let args = std::mem::take(&mut self.args);
        Server::launch(dir, args)
    }

    fn launch(dir: tempfile::TempDir, args: Vec<String>) -> Server {
        let config = dir.path().join("parley.toml");
        let data = dir.path().join("data");
        let mut child = Command::new(env!("CARGO_BIN_EXE_parleyd"))
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .arg("--irc-listen")
            .arg("127.0.0.1:0")
            // The file store's default port is fixed; tests run in parallel.
            .arg("--http-listen")
            .arg("127.0.0.1:0")
            .args(&args)
            .env("PARLEY_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env_remove("PARLEY_CONFIG")
            .env_remove("PARLEY_IRC_LISTEN")
            .env_remove("PARLEY_HTTP_LISTEN")
            .env_remove("PARLEY_PUBLIC_URL")
            .env_remove("PARLEY_DATA_DIR")
            .env_remove("PARLEY_IRC_PASSWORD")
            .env_remove("PARLEY_LOBBY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting parleyd");
        let output = Arc::new(Mutex::new(String::new()));
        // stderr: drained into `output` so the child never blocks on it.
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut out = sink.lock().unwrap();
                out.push_str("[stderr] ");
                out.push_str(&line);
                out.push('\n');
            }
        });
        // stdout: lines go to `ready_tx` until EOF, which is signalled too.
        let stdout = child.stdout.take().expect("piped stdout");
        let (ready_tx, ready_rx) = mpsc::channel::<String>();
        let (closed_tx, closed_rx) = mpsc::channel::<()>();
        let sink = output.clone();
        std::thread::spawn(move || drain_stdout(stdout, ready_tx, closed_tx, sink));
        let deadline = Instant::now() + START_TIMEOUT;
        let ready_line = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match ready_rx.recv_timeout(left) {
                Ok(line) if line.starts_with("parleyd ready") => break line,
                Ok(_) => continue,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "parleyd printed no readiness line within {START_TIMEOUT:?}; output:\n{}",
                        output.lock().unwrap()
                    );
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = parley_testkit::wait_child(&mut child, Duration::from_secs(5));
                    panic!("parleyd ended before it was ready ({status:?}); output:\n{}", output.lock().unwrap());
                }
            }
        };
        let ready = parse_ready_line(&ready_line);
        let irc = ready
            .get("irc")
            .and_then(|v| v.split(',').next())
            .and_then(|a| a.parse::<SocketAddr>().ok())
            .unwrap_or_else(|| panic!("no usable irc= address in the readiness line {ready_line:?}"));
        Server { child, dir, args, ready, irc, stdout_closed: closed_rx, output }
    }

    /// The first IRC listener's address.
    pub fn irc_addr(&self) -> SocketAddr {
        self.irc
    }

    /// The first HTTP (file store) listener's address, when the readiness
    /// line names one.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.ready_field("http").and_then(|v| v.split(',').next()).and_then(|a| a.parse().ok())
    }

    /// A field of the readiness line, e.g. `ready_field("http")`.
    pub fn ready_field(&self, key: &str) -> Option<&str> {
        self.ready.get(key).map(String::as_str)
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The temporary directory holding the config and the data directory.
    pub fn root_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The activity log's current contents (empty if not yet created). The
    /// server flushes it every second and on shutdown; tests that need every
    /// event stop the server first ([`Server::stop`]) or use
    /// [`Server::wait_for_log`].
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("server_log.txt")).unwrap_or_default()
    }

    /// Waits until the activity log satisfies `pred`. The server flushes
    /// the log on its own schedule (every second), so this wakes on each
    /// change the kernel reports in the data directory, up to `timeout`.
    pub fn wait_for_log(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> String {
        let dir = self.data_dir();
        parley_testkit::wait_for_file(&dir, &dir.join("server_log.txt"), "the activity log", pred, timeout)
    }

    /// Everything the server printed so far (stdout and stderr).
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal to the server process (with the `kill` command, so the
    /// tests need no extra crate).
    pub fn signal(&self, signal: Signal) {
        let status = Command::new("kill")
            .arg("-s")
            .arg(signal.name())
            .arg(self.pid().to_string())
            .status()
            .expect("running kill(1)");
        assert!(status.success(), "kill -s {} {} failed: {status}", signal.name(), self.pid());
    }

    /// Waits for the process to exit. The signal is its stdout closing
    /// (which happens at exit); after that, `try_wait` collects the status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match self.stdout_closed.recv_timeout(left) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => return None,
        }
        parley_testkit::wait_child(
            &mut self.child,
            deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1)),
        )
    }

    /// SIGTERM, then waits for a clean exit and returns the status.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(Signal::Term);
        self.wait_exit(Duration::from_secs(15))
            .unwrap_or_else(|| panic!("parleyd did not exit after SIGTERM; output:\n{}", self.output()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn drain_stdout(
    stdout: ChildStdout,
    ready_tx: mpsc::Sender<String>,
    closed_tx: mpsc::Sender<()>,
    sink: Arc<Mutex<String>>,
) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        {
            let mut out = sink.lock().unwrap();
            out.push_str("[stdout] ");
            out.push_str(&line);
            out.push('\n');
        }
        let _ = ready_tx.send(line);
    }
    let _ = closed_tx.send(());
}

/// `parleyd ready irc=A,B http=C` → {irc: "A,B", http: "C"}.
fn parse_ready_line(line: &str) -> HashMap<String, String> {
    line.split_whitespace()
        .filter_map(|word| word.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The activity-log lines of event `kind` (the word after the timestamp).
pub fn log_events<'a>(log: &'a str, kind: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.split(' ').nth(1) == Some(kind)).collect()
}

/// The first activity-log line of event `kind` that holds every one of
/// `fields` (written as they appear, e.g. `nick="alice"` or `bytes=5`).
/// Panics, showing the log, when there is none.
pub fn log_event<'a>(log: &'a str, kind: &str, fields: &[&str]) -> &'a str {
    let found = log_events(log, kind).into_iter().find(|line| {
        let mut words = line.split(' ');
        let stamp = words.next().unwrap_or("");
        // RFC 3339 UTC, e.g. 2026-01-02T03:04:05.123456Z.
        let stamped = stamp.len() >= 20 && stamp.as_bytes()[10] == b'T' && stamp.ends_with('Z');
        stamped && fields.iter().all(|f| line.contains(&format!(" {f}")))
    });
    found.unwrap_or_else(|| panic!("no `{kind}` event with {fields:?} in the activity log:\n{log}"))
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

impl Client {
    /// Connects to `addr` (nothing is sent).
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
        stream.set_nodelay(true).ok();
        let writer = stream.try_clone().expect("cloning the socket");
        Client {
            nick: String::new(),
            reader: BufReader::with_capacity(64 * 1024, stream),
            writer,
            partial: Vec::new(),
            auto_pong: false,
            closed: false,
        }
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

    /// Reads lines until one matches `pred`, and returns it. Fails, listing
    /// the lines seen, if the connection closes or `timeout` passes first.
    pub fn expect(&mut self, pred: impl Fn(&Line) -> bool, timeout: Duration) -> Line {
        self.collect_until(pred, timeout).pop().expect("collect_until returns the match last")
    }

    /// Reads lines until one matches `pred`; returns every line read, the
    /// match last. Fails like [`Client::expect`].
    pub fn collect_until(&mut self, pred: impl Fn(&Line) -> bool, timeout: Duration) -> Vec<Line> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            match self.read_line(deadline) {
                Read1::Line(line) => {
                    let hit = pred(&line);
                    seen.push(line);
                    if hit {
                        return seen;
                    }
                }
                Read1::Closed => panic!(
                    "{}: connection closed before the expected line arrived; lines seen:\n{}",
                    self.label(),
                    show(&seen)
                ),
                Read1::TimedOut => panic!(
                    "{}: the expected line did not arrive within {timeout:?}; lines seen:\n{}",
                    self.label(),
                    show(&seen)
                ),
            }
        }
    }

    /// Waits for a line with this command (or numeric).
    pub fn expect_cmd(&mut self, command: &str) -> Line {
        self.expect(|l| l.is(command), TIMEOUT)
    }

    /// Waits for the server to close the connection; returns the lines that
    /// came before EOF.
    pub fn expect_closed(&mut self, timeout: Duration) -> Vec<Line> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            match self.read_line(deadline) {
                Read1::Line(line) => seen.push(line),
                Read1::Closed => return seen,
                Read1::TimedOut => panic!(
                    "{}: the connection was still open after {timeout:?}; lines seen:\n{}",
                    self.label(),
                    show(&seen)
                ),
            }
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
        self.send(&format!("NICK {nick}"));
        self.send(&format!("USER {nick} 0 * :Test user {nick}"));
        self.finish_registration(nick)
    }

    /// Registers with IRCv3 capability negotiation: `CAP LS 302`, NICK,
    /// USER, `CAP REQ :<caps>`, (ACK), `CAP END`.
    pub fn register_with_caps(&mut self, nick: &str, caps: &[&str]) -> Vec<Line> {
        self.send("CAP LS 302");
        self.send(&format!("NICK {nick}"));
        self.send(&format!("USER {nick} 0 * :Test user {nick}"));
        let wanted = caps.join(" ");
        self.send(&format!("CAP REQ :{wanted}"));
        let ack = self.expect(|l| l.is("CAP") && matches!(l.param(1), "ACK" | "NAK"), TIMEOUT);
        assert_eq!(ack.param(1), "ACK", "capabilities {wanted:?} refused: {}", ack.raw);
        assert_eq!(ack.last().trim(), wanted, "ACK names other capabilities: {}", ack.raw);
        self.send("CAP END");
        self.finish_registration(nick)
    }

    fn finish_registration(&mut self, nick: &str) -> Vec<Line> {
        let failed = |l: &Line| matches!(l.command.as_str(), "431" | "432" | "433" | "464" | "ERROR");
        let mut lines = self.collect_until(|l| l.is(numeric::RPL_WELCOME) || failed(l), TIMEOUT);
        let last = lines.last().expect("non-empty");
        assert!(!failed(last), "registering {nick} failed: {}\n{}", last.raw, show(&lines));
        self.nick = last.param(0).to_string();
        assert_eq!(self.nick, nick, "001 addressed to another nick");
        let joined =
            self.collect_until(|l| l.is(numeric::RPL_ENDOFNAMES) && l.param(1).eq_ignore_ascii_case("#lobby"), TIMEOUT);
        lines.extend(joined);
        lines
    }
}
