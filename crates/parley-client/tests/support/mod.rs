//! The harness for the client's end-to-end tests: the real `parleyd` on
//! port 0 with a temporary data directory, the real `parley` binary (in a
//! pipe, as a one-shot command, or in a pseudo-terminal), and a tiny raw IRC
//! client that watches what other users receive.
//!
//! `parleyd` belongs to another package, so `CARGO_BIN_EXE_parleyd` does not
//! exist here. The harness looks for it beside this test binary
//! (`target/<profile>/parleyd`, which honours `CARGO_TARGET_DIR`) and, when
//! it is missing or older than the server's sources, builds it once with
//! `cargo build -p parley-server --bin parleyd`. `tools/test.sh` builds every
//! binary before `cargo test --workspace`, so in CI it is already fresh.
//!
//! Every wait is bounded and ends on an event (a line, EOF, process exit);
//! none is a fixed sleep.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// The administrator password the test servers get (operator `admin`).
pub const ADMIN_PASSWORD: &str = "client-test-Secret-42";
/// How long one expected event may take on a busy two-core machine.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The `parley` binary under test.
pub fn parley_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_parley"))
}

/// The `parleyd` binary, built if missing or stale.
pub fn parleyd_bin() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        // target/<profile>/deps/<test> → target/<profile>
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>").to_path_buf();
        let bin = profile_dir.join("parleyd");
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        if is_stale(&bin, &workspace) {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.current_dir(&workspace).args(["build", "--quiet", "-p", "parley-server", "--bin", "parleyd"]);
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("running cargo to build parleyd");
            assert!(status.success(), "building parleyd failed; run `cargo build -p parley-server --bin parleyd`");
        }
        assert!(
            bin.exists(),
            "parleyd not found at {}; run `cargo build -p parley-server --bin parleyd`",
            bin.display()
        );
        bin
    })
    .clone()
}

/// Missing, or older than any source file of the server or the protocol crate.
fn is_stale(bin: &Path, workspace: &Path) -> bool {
    let Ok(built) = bin.metadata().and_then(|m| m.modified()) else { return true };
    let newest = ["crates/parley-server", "crates/parley-proto"]
        .iter()
        .map(|c| newest_mtime(&workspace.join(c)))
        .max()
        .flatten();
    newest.is_some_and(|n| n > built)
}

fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "tests" || name == "target" {
            continue;
        }
        let t = if path.is_dir() { newest_mtime(&path) } else { entry.metadata().ok()?.modified().ok() };
        newest = newest.max(t);
    }
    newest
}

/// A running `parleyd` with its own data directory; killed on drop.
pub struct Server {
    child: Child,
    pub dir: tempfile::TempDir,
    pub irc: String,
    pub http: Option<String>,
    /// IRC over TLS, when the configuration asks for it.
    pub ircs: Option<String>,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with("")
    }

    /// Starts `parleyd` with `config` as its TOML configuration file.
    pub fn start_with(config: &str) -> Server {
        Server::start_opts(config, &[])
    }

    /// Starts `parleyd` with a configuration file and extra flags.
    pub fn start_opts(config: &str, args: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("parleyd.toml");
        std::fs::write(&config_path, config).expect("writing the config");
        let mut child = Command::new(parleyd_bin())
            .arg("--config")
            .arg(&config_path)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--irc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .args(args)
            .env("PARLEY_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting parleyd");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = lines_of(stdout);
        let deadline = Instant::now() + TIMEOUT;
        let ready = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.starts_with("parleyd ready") => break line,
                Ok(_) => continue,
                Err(_) => {
                    let _ = child.kill();
                    panic!("parleyd did not print its readiness line within {TIMEOUT:?}");
                }
            }
        };
        let fields: HashMap<&str, &str> = ready.split_whitespace().filter_map(|w| w.split_once('=')).collect();
        let first = |key: &str| fields.get(key).map(|v| v.split(',').next().unwrap_or(v).to_string());
        let irc = first("irc").expect("irc= in the readiness line");
        Server { child, dir, irc, http: first("http"), ircs: first("ircs") }
    }

    /// The self-signed certificate `parleyd` generated for its TLS listeners.
    pub fn tls_cert(&self) -> PathBuf {
        self.dir.path().join("data/tls/cert.pem")
    }

    /// Panics with a clear message when this parleyd has no file store.
    pub fn require_file_store(&self) {
        assert!(self.http.is_some(), "this parleyd has no file store (no http= in its readiness line)");
    }

    /// Where a client can keep its local files.
    pub fn workdir(&self) -> PathBuf {
        let p = self.dir.path().join("client");
        std::fs::create_dir_all(&p).expect("client dir");
        p
    }

    /// SIGKILL: the server vanishes without a word.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The exit status once the process has ended, within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_child(&mut self.child, timeout)
    }

    /// Whether a new IRC client can still register.
    pub fn accepts_clients(&self) -> bool {
        Observer::try_connect(&self.irc, "probe").is_some()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub use parley_testkit::wait_child;

/// A thread that turns a pipe into a channel of lines; the channel closes
/// at EOF.
fn lines_of<R: Read + Send + 'static>(r: R) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
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
            .args(["--server", &server.irc, "--nick", nick])
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

/// A raw IRC client standing for "another user": registers, then records
/// every line it receives.
pub struct Observer {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    pub nick: String,
    pub seen: Vec<String>,
}

impl Observer {
    pub fn connect(addr: &str, nick: &str) -> Observer {
        Observer::try_connect(addr, nick).unwrap_or_else(|| panic!("{nick} could not register at {addr}"))
    }

    fn try_connect(addr: &str, nick: &str) -> Option<Observer> {
        let stream = TcpStream::connect(addr).ok()?;
        stream.set_read_timeout(Some(TIMEOUT)).ok()?;
        let writer = stream.try_clone().ok()?;
        let mut o = Observer { reader: BufReader::new(stream), writer, nick: nick.to_string(), seen: Vec::new() };
        o.send(&format!("NICK {nick}"));
        o.send(&format!("USER {nick} 0 * :{nick}"));
        // Registered and joined once the lobby's end of NAMES arrives.
        o.try_expect(|l| l.contains(" 366 ") || l.contains(" 433 ") || l.starts_with("ERROR"))
            .filter(|l| l.contains(" 366 "))?;
        Some(o)
    }

    pub fn send(&mut self, line: &str) {
        self.writer.write_all(format!("{line}\r\n").as_bytes()).expect("writing to the server");
    }

    fn try_expect(&mut self, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {
                    let line = line.trim_end().to_string();
                    if let Some(token) = line.strip_prefix("PING ") {
                        self.send(&format!("PONG {token}"));
                    }
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return Some(line);
                    }
                }
            }
        }
        None
    }

    /// Waits for a line for which `pred` holds.
    pub fn expect(&mut self, pred: impl Fn(&str) -> bool) -> String {
        match self.try_expect(pred) {
            Some(l) => l,
            None => panic!("{}: expected line not received; saw {:#?}", self.nick, self.seen),
        }
    }

    /// Waits for the server to close the connection; returns what came.
    pub fn expect_closed(&mut self) {
        self.try_expect(|_| false);
    }
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
        let (up, req, resp) = (upstream.clone(), requests.clone(), responses.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let Some(addr) = up.lock().unwrap().clone() else { continue };
                let Ok(server) = TcpStream::connect(&addr) else { continue };
                let (c2, s2) = (client.try_clone().expect("clone"), server.try_clone().expect("clone"));
                pipe(client, s2, req.clone());
                pipe(server, c2, resp.clone());
            }
        });
        Proxy { port, upstream, requests, responses }
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

/// Copies `from` to `to` through `gate`, then passes the end of stream on.
fn pipe(mut from: TcpStream, mut to: TcpStream, gate: Arc<Gate>) {
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
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}
