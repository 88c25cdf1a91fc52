//! What only the client's end-to-end tests need: the real `parley` binary
//! (in a pipe, as a one-shot command; the pseudo-terminal is driven in
//! `interactive.rs`), a raw IRC user watching what others receive, test
//! files, and a TCP relay that can hold a transfer still. The `parleyd`
//! process and the IRC test client come from `parley-testkit`, shared with
//! the server's tests.
//!
//! Every wait is bounded and ends on an event (a line, EOF, process exit);
//! none is a fixed sleep.

#![allow(dead_code)]

use parley_testkit::wait::lines_of;
use parley_testkit::{Client, Server};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use parley_testkit::wait_child;

/// How long one expected event may take on a busy two-core machine (a
/// `parley` process starting, a terminal redrawing).
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The `parley` binary under test.
pub fn parley_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_parley"))
}

/// The result of a finished `parley` run.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `parley ARGS` to completion with `stdin` as its input, inside `dir`.
pub fn parley(dir: &Path, args: &[&str], stdin: &str) -> Run {
    parley_env(dir, args, stdin, &[])
}

pub fn parley_env(dir: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(parley_bin());
    cmd.current_dir(dir)
        .args(args)
        // The client's own files (config, history, unfinished uploads) stay in
        // the test's directory.
        .env("XDG_CONFIG_HOME", dir.join(".config"))
        .env("XDG_STATE_HOME", dir.join(".state"))
        .env_remove("PARLEY_SERVER")
        .env_remove("PARLEY_NICK")
        .env_remove("PARLEY_ADMIN_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("starting parley");
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || read_all(out));
    let err_reader = std::thread::spawn(move || read_all(err));
    {
        let mut input = child.stdin.take().expect("stdin");
        let _ = input.write_all(stdin.as_bytes());
    }
    let status = wait_child(&mut child, TIMEOUT * 2);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let run = Run {
        code: status.and_then(|s| s.code()),
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    };
    assert!(status.is_some(), "parley {args:?} did not finish: {run:?}");
    run
}

fn read_all<R: Read>(mut r: R) -> String {
    let mut s = String::new();
    let _ = r.read_to_string(&mut s);
    s
}

/// `parley` in pipe mode that stays connected: the test writes lines to it
/// and reads what it prints.
pub struct PipeClient {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl PipeClient {
    pub fn start(server: &Server, nick: &str) -> PipeClient {
        let mut child = Command::new(parley_bin())
            .current_dir(server.workdir())
            .args(["--server", server.irc(), "--nick", nick])
            .env("XDG_STATE_HOME", server.workdir().join(".state"))
            .env_remove("PARLEY_SERVER")
            .env_remove("PARLEY_NICK")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting parley");
        let stdout = lines_of(child.stdout.take().expect("stdout"));
        let stderr = lines_of(child.stderr.take().expect("stderr"));
        let stdin = child.stdin.take();
        let mut c = PipeClient { child, stdin, stdout, stderr, seen: Vec::new() };
        // Registered once a command gets its answer.
        c.send("/who");
        c.expect_out(nick);
        c
    }

    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").expect("writing to parley");
        stdin.flush().expect("flushing parley's stdin");
    }

    /// Waits for a stdout line containing `needle`; returns it.
    pub fn expect_out(&mut self, needle: &str) -> String {
        expect_line(&self.stdout, &mut self.seen, needle, "stdout")
    }

    pub fn expect_err(&mut self, needle: &str) -> String {
        let mut seen = Vec::new();
        expect_line(&self.stderr, &mut seen, needle, "stderr")
    }

    /// Closes stdin (end of input: the client quits).
    pub fn close_input(&mut self) {
        self.stdin.take();
    }

    pub fn wait(&mut self) -> ExitStatus {
        wait_child(&mut self.child, TIMEOUT).expect("parley did not exit")
    }
}

impl Drop for PipeClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn expect_line(rx: &mpsc::Receiver<String>, seen: &mut Vec<String>, needle: &str, what: &str) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                seen.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
            Err(e) => panic!("no {what} line containing {needle:?} ({e:?}); saw {seen:#?}"),
        }
    }
}

/// Another user on the server, as the client's tests watch one: a raw IRC
/// client registered as `nick` that answers the server's PINGs while it
/// waits for lines.
pub fn observer(server: &Server, nick: &str) -> Client {
    let mut c = Client::registered(server.irc_addr(), nick);
    c.set_auto_pong(true);
    c
}

/// Writes `content` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).expect("writing a test file");
    p
}

/// Bytes of a given length that are not all the same.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// A TCP relay in front of the file store that can hold a transfer still:
/// after a given number of bytes in one direction of a connection it waits
/// until [`Proxy::open`]. `parleyd --public-url` points clients at it. It
/// makes "a transfer in progress" a state a test can stand in, instead of a
/// race against a fast loopback copy.
pub struct Proxy {
    pub port: u16,
    upstream: Arc<Mutex<Option<String>>>,
    requests: Arc<Gate>,
    responses: Arc<Gate>,
    /// Once armed, the next request to pass this many bytes has its
    /// connection cut, both ways, as a network failure would.
    cut: Arc<Mutex<Option<u64>>>,
}

/// `Some(n)`: let n bytes through, then wait; `None`: open.
#[derive(Default)]
struct Gate {
    limit: Mutex<Option<u64>>,
    opened: Condvar,
}

impl Gate {
    fn set(&self, limit: Option<u64>) {
        *self.limit.lock().unwrap() = limit;
        self.opened.notify_all();
    }

    /// Waits while `sent` bytes are as many as the gate lets through.
    fn pass(&self, sent: u64) {
        let mut limit = self.limit.lock().unwrap();
        let deadline = Instant::now() + TIMEOUT * 3;
        while limit.is_some_and(|n| sent >= n) && Instant::now() < deadline {
            limit = self.opened.wait_timeout(limit, TIMEOUT).unwrap().0;
        }
    }
}

impl Proxy {
    pub fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let upstream: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let (requests, responses) = (Arc::new(Gate::default()), Arc::new(Gate::default()));
        let cut: Arc<Mutex<Option<u64>>> = Arc::default();
        let (up, req, resp, cut2) = (upstream.clone(), requests.clone(), responses.clone(), cut.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let Some(addr) = up.lock().unwrap().clone() else { continue };
                let Ok(server) = TcpStream::connect(&addr) else { continue };
                let (c2, s2) = (client.try_clone().expect("clone"), server.try_clone().expect("clone"));
                pipe(client, s2, req.clone(), Some(cut2.clone()));
                pipe(server, c2, resp.clone(), None);
            }
        });
        Proxy { port, upstream, requests, responses, cut }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set_upstream(&self, addr: &str) {
        *self.upstream.lock().unwrap() = Some(addr.to_string());
    }

    /// Each response stops after `bytes` until [`Proxy::open`].
    pub fn hold_responses_after(&self, bytes: u64) {
        self.responses.set(Some(bytes));
    }

    /// Each request stops after `bytes` until [`Proxy::open`].
    pub fn hold_requests_after(&self, bytes: u64) {
        self.requests.set(Some(bytes));
    }

    /// The next request to pass `bytes` is cut there (once).
    pub fn cut_next_request_after(&self, bytes: u64) {
        *self.cut.lock().unwrap() = Some(bytes);
    }

    pub fn open(&self) {
        self.requests.set(None);
        self.responses.set(None);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.open();
    }
}

/// Copies `from` to `to` through `gate`, then passes the end of stream on;
/// with `cut` armed, drops both sockets once that many bytes went through.
fn pipe(mut from: TcpStream, mut to: TcpStream, gate: Arc<Gate>, cut: Option<Arc<Mutex<Option<u64>>>>) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut sent = 0u64;
        loop {
            gate.pass(sent);
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
            sent += n as u64;
            if let Some(cut) = &cut {
                let mut armed = cut.lock().unwrap();
                if armed.is_some_and(|at| sent >= at) {
                    *armed = None;
                    let _ = from.shutdown(std::net::Shutdown::Both);
                    let _ = to.shutdown(std::net::Shutdown::Both);
                    return;
                }
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}
