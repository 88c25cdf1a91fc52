//! A stock IRC client from Debian talks to parleyd: `ii`, the FIFO and
//! file based client (package `ii`). Proves that messages cross in both
//! directions between it and our own test client, and that its QUIT is
//! seen.
//!
//! Without `ii` installed the test skips with a note, except under CI
//! (`CI` set), where a missing client is a failure: `tools/test.sh`
//! installs it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use parley_testkit::{Client, Server, TIMEOUT};

/// Finds `name` on PATH.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The `ii` binary, or `None` when the test should skip.
fn ii_or_skip() -> Option<PathBuf> {
    match find_program("ii") {
        Some(p) => Some(p),
        None if under_ci() => panic!(
            "the stock IRC client `ii` is not installed, and CI is set, so this test may not skip; \
             install it with `apt-get install -y ii` (tools/test.sh does)"
        ),
        None => {
            eprintln!("note: skipping the stock client test: `ii` is not installed (apt-get install -y ii)");
            None
        }
    }
}

/// The `ii` process; killed when dropped.
struct Ii {
    child: Child,
}

impl Drop for Ii {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits for a file under ii's directory `root` to satisfy `pred`: ii
/// offers no signal but its files, so this wakes on each change the kernel
/// reports under `root`.
fn wait_for_file(root: &Path, path: &Path, what: &str, pred: impl Fn(&str) -> bool) -> String {
    parley_testkit::wait_for_file(root, path, what, pred, TIMEOUT)
}

/// Writes one line into one of ii's `in` FIFOs. Opening a FIFO for writing
/// blocks until a reader has it open, so it happens on a helper thread and
/// the wait is bounded.
fn write_fifo(path: &Path, line: &str) {
    let (tx, rx) = mpsc::channel();
    let path_owned = path.to_path_buf();
    let text = format!("{line}\n");
    std::thread::spawn(move || {
        let result =
            std::fs::OpenOptions::new().write(true).open(&path_owned).and_then(|mut f| f.write_all(text.as_bytes()));
        let _ = tx.send(result);
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("writing to {}: {e}", path.display()),
        Err(_) => panic!("{} was not opened by ii within {TIMEOUT:?}", path.display()),
    }
}

#[test]
fn stock_ii_client_exchanges_lobby_messages_with_our_client() {
    let Some(ii_path) = ii_or_skip() else { return };
    let server = Server::start();
    let mut native = Client::registered(server.irc_addr(), "native");

    let irc_dir = server.root_dir().join("ii");
    std::fs::create_dir_all(&irc_dir).expect("creating ii's directory");
    let child = Command::new(&ii_path)
        .arg("-s")
        .arg("127.0.0.1")
        .arg("-p")
        .arg(server.irc_addr().port().to_string())
        .arg("-n")
        .arg("iibot")
        .arg("-f")
        .arg("Stock ii client")
        .arg("-i")
        .arg(&irc_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting ii");
    let mut ii = Ii { child };

    // ii registered and was auto-joined to the lobby.
    native.expect(|l| l.is_from("JOIN", "iibot") && l.param(0) == "#lobby", TIMEOUT);
    let server_dir = irc_dir.join("127.0.0.1");
    let lobby_dir = server_dir.join("#lobby");
    let lobby_out = lobby_dir.join("out");
    wait_for_file(&irc_dir, &lobby_out, "ii's record of its lobby join", |t| t.contains("iibot"));

    // ii → parleyd → our client.
    write_fifo(&lobby_dir.join("in"), "hello from a stock client");
    let got = native.expect(|l| l.is_from("PRIVMSG", "iibot"), TIMEOUT);
    assert_eq!(got.params, ["#lobby", "hello from a stock client"]);
    assert_eq!(got.source.as_deref().map(|s| s.split('@').next().unwrap_or(s)), Some("iibot!~iibot"));

    // Our client → parleyd → ii.
    native.send("PRIVMSG #lobby :hello back from the test");
    wait_for_file(&irc_dir, &lobby_out, "the test's message at ii", |t| {
        t.lines().any(|l| l.ends_with("<native> hello back from the test"))
    });

    // A private message reaches ii too (it opens a directory for the sender).
    native.send("PRIVMSG iibot :just between us");
    wait_for_file(&irc_dir, &server_dir.join("native").join("out"), "the private message at ii", |t| {
        t.lines().any(|l| l.ends_with("<native> just between us"))
    });

    // ii's /q sends QUIT with the reason; the others see it and ii exits.
    write_fifo(&server_dir.join("in"), "/q done testing");
    let quit = native.expect(|l| l.is_from("QUIT", "iibot"), TIMEOUT);
    assert!(quit.last().contains("done testing"), "{}", quit.raw);
    assert!(parley_testkit::wait_child(&mut ii.child, TIMEOUT).is_some(), "ii did not exit after /q");
}
