//! The `parleyd` process under test: found (and built when stale), started
//! on port 0 with a temporary data directory and configuration file, known
//! ready by its readiness line (`parleyd ready irc=ADDR http=ADDR ...` on
//! stdout) within a deadline, and stopped by a signal or killed. Dropping a
//! [`Server`] kills the process and removes its directory.
//!
//! This module never sleeps to let the server get somewhere: startup ends on
//! the readiness line, exit on stdout closing, and the activity log is read
//! when the kernel reports it changed.

use crate::irc::Client;
use crate::wait::{lines_of, wait_child, wait_for_file};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// The password `PARLEY_ADMIN_PASSWORD` gives the generated `admin` operator.
pub const ADMIN_PASSWORD: &str = "Tr0ub4dor-parley-test-secret";
/// The operator name created from `PARLEY_ADMIN_PASSWORD`.
pub const ADMIN_NAME: &str = "admin";
/// How long the server may take to print its readiness line.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Flood limits high enough that a test can send as fast as it likes.
pub const NO_FLOOD_LIMIT: &str = "[limits]\nflood_burst = 1000000\nflood_lines_per_second = 1000000.0\n";

/// The environment variables `parleyd` reads; cleared for the child so the
/// flags and the test's configuration file are all that configure it. The
/// last two would make it act as a systemd service (a test run by a
/// service manager inherits them).
const SERVER_ENV: [&str; 9] = [
    "PARLEY_CONFIG",
    "PARLEY_IRC_LISTEN",
    "PARLEY_HTTP_LISTEN",
    "PARLEY_PUBLIC_URL",
    "PARLEY_DATA_DIR",
    "PARLEY_IRC_PASSWORD",
    "PARLEY_LOBBY",
    "NOTIFY_SOCKET",
    "INVOCATION_ID",
];

/// The `parleyd` binary: `target/<profile>/parleyd` beside the running test
/// binary (so `CARGO_TARGET_DIR` and `--release` are honoured), built once
/// with `cargo build -p parley-server --bin parleyd` when it is missing or
/// older than the server's or the protocol crate's sources. A test of
/// another package cannot name it with `CARGO_BIN_EXE_parleyd`, and
/// `tools/test.sh` builds every binary first, so in CI it is already fresh.
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

/// A signal the tests send to the server.
#[derive(Debug, Clone, Copy)]
pub enum Signal {
    Term,
    Int,
    Hup,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Int => "INT",
            Signal::Hup => "HUP",
        }
    }
}

/// A running `parleyd` child process with its own temporary directory
/// (configuration file, data directory, a client's work directory).
pub struct Server {
    child: Child,
    dir: tempfile::TempDir,
    /// Extra arguments it was started with (kept for restarts).
    args: Vec<String>,
    /// Environment changes it was started with (kept for restarts).
    env: Vec<EnvChange>,
    /// `key=value` fields of the readiness line (`irc`, `http`, `ircs`, ...).
    ready: HashMap<String, String>,
    /// The first IRC listener's address, as the readiness line gives it.
    irc: String,
    output: Mutex<Output>,
}

/// An environment variable set (`Some`) or removed (`None`) for the server.
type EnvChange = (String, Option<String>);

/// What the process printed: read as it arrives by one thread per pipe
/// ([`lines_of`]), collected here when a test waits on stdout or asks.
struct Output {
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    text: String,
}

impl Output {
    fn record(&mut self, pipe: &str, line: &str) {
        self.text.push_str(pipe);
        self.text.push_str(line);
        self.text.push('\n');
    }

    /// The next stdout line before `deadline`; `Disconnected` once the
    /// process has closed its stdout (at exit).
    fn next_stdout(&mut self, deadline: Instant) -> Result<String, RecvTimeoutError> {
        let line = self.stdout.recv_timeout(deadline.saturating_duration_since(Instant::now()))?;
        self.record("[stdout] ", &line);
        Ok(line)
    }

    /// Waits for a stderr line that `pred` accepts, until `deadline`.
    fn wait_stderr(&mut self, pred: &dyn Fn(&str) -> bool, deadline: Instant) -> Option<String> {
        while let Ok(line) = self.stderr.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            self.record("[stderr] ", &line);
            if pred(&line) {
                return Some(line);
            }
        }
        None
    }

    /// Everything printed so far.
    fn all(&mut self) -> &str {
        while let Ok(line) = self.stdout.try_recv() {
            self.record("[stdout] ", &line);
        }
        while let Ok(line) = self.stderr.try_recv() {
            self.record("[stderr] ", &line);
        }
        &self.text
    }
}

impl Server {
    /// Starts `parleyd` with an empty configuration file.
    pub fn start() -> Server {
        Server::start_with("")
    }

    /// Starts `parleyd` with `toml` as its configuration file (for example
    /// `"[limits]\nsendq_bytes = 65536\n"`). The data directory and both
    /// listeners (IRC and HTTP, on port 0) are given as flags, which win
    /// over the file, so the text needs none of them.
    pub fn start_with(toml: &str) -> Server {
        Server::start_with_args(toml, &[])
    }

    /// Like [`Server::start_with`], with extra command-line arguments (for
    /// example a second `--irc-listen [::1]:0`; list flags accumulate).
    pub fn start_with_args(toml: &str, args: &[&str]) -> Server {
        let dir = tempfile::Builder::new().prefix("parleyd-test-").tempdir().expect("creating a temp dir");
        std::fs::write(config_path(dir.path()), format!("# written by parley-testkit\n{toml}"))
            .expect("writing the test config");
        Server::launch(dir, args.iter().map(|a| a.to_string()).collect(), Vec::new())
    }

    /// Like [`Server::start_with`], with environment variables set
    /// (`Some`) or removed (`None`) for the server; for example
    /// `("PARLEY_ADMIN_PASSWORD", None)` for a first run that generates the
    /// administrator's password.
    pub fn start_with_env(toml: &str, env: &[(&str, Option<&str>)]) -> Server {
        let dir = tempfile::Builder::new().prefix("parleyd-test-").tempdir().expect("creating a temp dir");
        std::fs::write(config_path(dir.path()), format!("# written by parley-testkit\n{toml}"))
            .expect("writing the test config");
        let env = env.iter().map(|(k, v)| (k.to_string(), v.map(str::to_string))).collect();
        Server::launch(dir, Vec::new(), env)
    }

    /// Like [`Server::start_with`], with `prepare` run on the (not yet
    /// existing) data directory's path first: for example to restore a
    /// backup into it.
    pub fn start_prepared(toml: &str, prepare: impl FnOnce(&Path)) -> Server {
        let dir = tempfile::Builder::new().prefix("parleyd-test-").tempdir().expect("creating a temp dir");
        std::fs::write(config_path(dir.path()), format!("# written by parley-testkit\n{toml}"))
            .expect("writing the test config");
        prepare(&dir.path().join("data"));
        Server::launch(dir, Vec::new(), Vec::new())
    }

    /// Kills the server with SIGKILL (no chance to clean up), then starts a
    /// new one on the same configuration and data directory.
    pub fn kill_and_restart(mut self) -> Server {
        self.kill();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("a placeholder dir"));
        let args = std::mem::take(&mut self.args);
        let env = std::mem::take(&mut self.env);
        Server::launch(dir, args, env)
    }

    /// Stops the server cleanly (SIGTERM), then starts a new one on the
    /// same configuration and data directory.
    pub fn stop_and_restart(mut self) -> Server {
        self.stop();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("a placeholder dir"));
        let args = std::mem::take(&mut self.args);
        let env = std::mem::take(&mut self.env);
        Server::launch(dir, args, env)
    }

    fn launch(dir: tempfile::TempDir, args: Vec<String>, env: Vec<EnvChange>) -> Server {
        let mut cmd = Command::new(parleyd_bin());
        cmd.arg("--config")
            .arg(config_path(dir.path()))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            // The file store's default port is fixed; tests run in parallel.
            .args(["--irc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .args(&args)
            .env("PARLEY_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for var in SERVER_ENV {
            cmd.env_remove(var);
        }
        for (key, value) in &env {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        let mut child = cmd.spawn().expect("starting parleyd");
        let stdout = lines_of(child.stdout.take().expect("piped stdout"));
        let stderr = lines_of(child.stderr.take().expect("piped stderr"));
        let mut output = Output { stdout, stderr, text: String::new() };
        let deadline = Instant::now() + START_TIMEOUT;
        let ready_line = loop {
            match output.next_stdout(deadline) {
                Ok(line) if line.starts_with("parleyd ready") => break line,
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("parleyd printed no readiness line within {START_TIMEOUT:?}; output:\n{}", output.all());
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = wait_child(&mut child, Duration::from_secs(5));
                    panic!("parleyd ended before it was ready ({status:?}); output:\n{}", output.all());
                }
            }
        };
        let ready = parse_ready_line(&ready_line);
        let irc = first_addr(&ready, "irc")
            .unwrap_or_else(|| panic!("no usable irc= address in the readiness line {ready_line:?}"))
            .to_string();
        Server { child, dir, args, env, ready, irc, output: Mutex::new(output) }
    }

    /// The first IRC listener's address as text, for a command line.
    pub fn irc(&self) -> &str {
        &self.irc
    }

    /// The first IRC listener's address.
    pub fn irc_addr(&self) -> SocketAddr {
        self.irc.parse().expect("checked at start")
    }

    /// The first HTTP (file store) listener's address, when the readiness
    /// line names one.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.addr("http")
    }

    /// The first address of the readiness line's field `key` (`irc`,
    /// `http`, `ircs`, `https`), when it names one.
    pub fn addr(&self, key: &str) -> Option<SocketAddr> {
        first_addr(&self.ready, key)
    }

    /// A field of the readiness line, e.g. `ready_field("tls-sha256")`.
    pub fn ready_field(&self, key: &str) -> Option<&str> {
        self.ready.get(key).map(String::as_str)
    }

    /// Panics with a clear message when this parleyd has no file store.
    pub fn require_file_store(&self) {
        assert!(self.http_addr().is_some(), "this parleyd has no file store (no http= in its readiness line)");
    }

    /// The server's data directory.
    /// Creates an account in this server's store with `parleyd account
    /// add` (its configuration says which), as an administrator would
    /// while it runs.
    pub fn add_account(&self, name: &str, password: &str) {
        use std::io::Write as _;
        let status = Command::new(parleyd_bin())
            .arg("--config")
            .arg(config_path(self.dir.path()))
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["account", "add", name])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .and_then(|mut child| {
                child.stdin.take().expect("piped stdin").write_all(format!("{password}\n").as_bytes())?;
                child.wait()
            })
            .expect("running parleyd account add");
        assert!(status.success(), "parleyd account add {name} failed");
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The temporary directory holding the config and the data directory.
    pub fn root_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A directory beside the server's data for a client's own files
    /// (created on first use, removed with the server's directory).
    pub fn workdir(&self) -> PathBuf {
        let p = self.dir.path().join("client");
        std::fs::create_dir_all(&p).expect("creating the client's work dir");
        p
    }

    /// The self-signed certificate `parleyd` generated for its TLS listeners.
    pub fn tls_cert(&self) -> PathBuf {
        self.data_dir().join("tls/cert.pem")
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
        wait_for_file(&dir, &dir.join("server_log.txt"), "the activity log", pred, timeout)
    }

    /// Waits until the server prints a line on stderr that `pred` accepts
    /// (its diagnostics: a readiness signal for what it reports there).
    pub fn wait_for_stderr(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> String {
        let mut output = self.output.lock().unwrap();
        match output.wait_stderr(&pred, Instant::now() + timeout) {
            Some(line) => line,
            None => panic!("parleyd printed no such line within {timeout:?}; output:\n{}", output.all()),
        }
    }

    /// Everything the server printed so far (stdout and stderr).
    pub fn output(&self) -> String {
        self.output.lock().unwrap().all().to_string()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether a new IRC client can still register.
    pub fn accepts_clients(&self) -> bool {
        Client::can_register(self.irc_addr(), "probe")
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
        let output = self.output.get_mut().unwrap();
        loop {
            match output.next_stdout(deadline) {
                Ok(_) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => return None,
            }
        }
        wait_child(&mut self.child, deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1)))
    }

    /// SIGTERM, then waits for a clean exit and returns the status.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(Signal::Term);
        self.wait_exit(Duration::from_secs(15))
            .unwrap_or_else(|| panic!("parleyd did not exit after SIGTERM; output:\n{}", self.output()))
    }

    /// SIGKILL: the server vanishes without a word.
    pub fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn config_path(dir: &Path) -> PathBuf {
    dir.join("parleyd.toml")
}

/// `parleyd ready irc=A,B http=C` → {irc: "A,B", http: "C"}.
fn parse_ready_line(line: &str) -> HashMap<String, String> {
    line.split_whitespace()
        .filter_map(|word| word.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The first address of the comma-separated list in field `key`.
fn first_addr(ready: &HashMap<String, String>, key: &str) -> Option<SocketAddr> {
    ready.get(key).and_then(|v| v.split(',').next()).and_then(|a| a.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readiness_line_gives_each_listener_its_first_address() {
        let ready = parse_ready_line("parleyd ready irc=127.0.0.1:6667,[::1]:6667 http=127.0.0.1:8080 tls-sha256=ab");
        assert_eq!(first_addr(&ready, "irc"), Some("127.0.0.1:6667".parse().unwrap()));
        assert_eq!(first_addr(&ready, "http"), Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(first_addr(&ready, "ircs"), None);
        assert_eq!(first_addr(&ready, "tls-sha256"), None);
        assert_eq!(ready.get("tls-sha256").map(String::as_str), Some("ab"));
    }

    #[test]
    fn a_binary_older_than_the_sources_is_stale() {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let dir = tempfile::tempdir().unwrap();
        assert!(is_stale(&dir.path().join("missing"), &workspace));
        let old = dir.path().join("old");
        std::fs::write(&old, "").unwrap();
        let file = std::fs::File::options().write(true).open(&old).unwrap();
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1)).unwrap();
        assert!(is_stale(&old, &workspace));
    }
}
