//! A real IRC client logs in with SASL PLAIN: WeeChat (`weechat-headless`
//! from Debian) connects to the real parleyd with an account made by
//! `parleyd account add`, joins a channel and says something, and a test
//! client on the server's side sees it there, logged in: the account in
//! its JOIN (extended-join), in WHOIS (330) and on its message
//! (account-tag).
//!
//! WeeChat is driven through its FIFO plugin (commands written into a
//! pipe), and every step waits for what the test client sees, never for a
//! fixed time. Ignored by a plain `cargo test`, as it needs WeeChat:
//! `tools/clients/weechat_sasl.sh` installs it and runs this test.

use parley_testkit::{log_event, Client, Server, TIMEOUT};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

const ACCOUNT: &str = "weechatter";
const PASSWORD: &str = "stock-client-secret";
const NICK: &str = "weenick";
const CHANNEL: &str = "#tea";

/// `weechat-headless` on PATH, or `PARLEY_WEECHAT`.
fn weechat() -> PathBuf {
    if let Some(path) = std::env::var_os("PARLEY_WEECHAT") {
        return path.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join("weechat-headless")).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("weechat-headless is not installed: tools/clients/weechat_sasl.sh installs it (apt-get)")
    })
}

/// The WeeChat process and its home directory; killed when dropped (the
/// test failed: its log is printed then), so nothing is left running.
struct WeeChat {
    child: Child,
    home: tempfile::TempDir,
}

impl WeeChat {
    /// Starts WeeChat with only its IRC and FIFO plugins, its FIFO at a
    /// known path, and a server entry for `port` that logs in with SASL
    /// PLAIN and joins [`CHANNEL`].
    fn start(port: u16) -> WeeChat {
        let home = tempfile::Builder::new().prefix("weechat-test-").tempdir().expect("a home for WeeChat");
        let fifo = home.path().join("fifo");
        let fifo_conf = format!("[file]\nenabled = on\npath = \"{}\"\n", fifo.display());
        std::fs::write(home.path().join("fifo.conf"), fifo_conf).expect("writing fifo.conf");
        let server = format!(
            "/server add parley 127.0.0.1/{port} -notls -nicks={NICK} -username=wee -realname=WeeChat \
             -sasl_mechanism=plain -sasl_username={ACCOUNT} -sasl_password={PASSWORD} -sasl_fail=disconnect \
             -autojoin={CHANNEL} -autoreconnect=off"
        );
        let log = std::fs::File::create(home.path().join("stdout.log")).expect("WeeChat's log file");
        let child = Command::new(weechat())
            .arg("--dir")
            .arg(home.path())
            .arg("--stdout")
            .args(["--plugins", "irc,fifo"])
            .arg("--run-command")
            .arg(format!("{server};/connect parley"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("starting weechat-headless");
        WeeChat { child, home }
    }

    /// Hands WeeChat one FIFO line (`buffer *text`, or `*/command`).
    /// Opening a FIFO blocks until its reader has it open, so the write
    /// happens on a helper thread and the wait is bounded.
    fn command(&self, line: &str) {
        let path = self.home.path().join("fifo");
        let text = format!("{line}\n");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let result =
                std::fs::OpenOptions::new().write(true).open(&path).and_then(|mut f| f.write_all(text.as_bytes()));
            let _ = tx.send(result);
        });
        match rx.recv_timeout(TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("writing to WeeChat's FIFO: {e}"),
            Err(_) => panic!("WeeChat did not open its FIFO within {TIMEOUT:?}"),
        }
    }

    /// What WeeChat logged, for a failure message.
    fn log(&self) -> String {
        let text = std::fs::read_to_string(self.home.path().join("stdout.log")).unwrap_or_default();
        format!("WeeChat's log:\n{text}")
    }
}

impl Drop for WeeChat {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log());
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
#[ignore = "needs weechat-headless: run by tools/clients/weechat_sasl.sh"]
fn weechat_logs_in_with_sasl_plain_joins_and_speaks() {
    let server = Server::start();
    server.add_account(ACCOUNT, PASSWORD);
    let mut watcher = Client::connect(server.irc_addr());
    watcher.register_with_caps("watcher", &["account-tag", "extended-join"]);
    watcher.send(&format!("JOIN {CHANNEL}"));
    watcher.expect(|l| l.is("366") && l.param(1) == CHANNEL, TIMEOUT);

    let weechat = WeeChat::start(server.irc_addr().port());
    let joined = watcher.expect(|l| l.is_from("JOIN", NICK) && l.param(0) == CHANNEL, TIMEOUT);
    assert_eq!(joined.param(1), ACCOUNT, "extended-join names the account: {}", joined.raw);

    // Logged in before registering: WHOIS names the account.
    watcher.send(&format!("WHOIS {NICK}"));
    let whois = watcher.collect_until(|l| l.is("318"), TIMEOUT);
    let logged_in = whois.iter().find(|l| l.is("330"));
    assert_eq!(
        logged_in.map(|l| (l.param(1), l.param(2))),
        Some((NICK, ACCOUNT)),
        "WHOIS {NICK} shows no login:\n{}",
        parley_testkit::show(&whois)
    );
    let log = server.wait_for_log(|t| t.contains(" login "), TIMEOUT);
    log_event(&log, "login", &["mechanism=\"PLAIN\"", &format!("account=\"{ACCOUNT}\""), "result=\"granted\""]);

    // WeeChat says something in the channel; the watcher hears it.
    weechat.command(&format!("irc.parley.{CHANNEL} *hello from WeeChat"));
    let said = watcher.expect(|l| l.is_from("PRIVMSG", NICK), TIMEOUT);
    assert_eq!(said.params, [CHANNEL, "hello from WeeChat"]);
    assert_eq!(said.tag("account"), Some(ACCOUNT), "account-tag names the account: {}", said.raw);

    // And leaves: the watcher sees its QUIT, and WeeChat exits.
    let mut weechat = weechat;
    weechat.command("*/quit enough tea");
    let quit = watcher.expect(|l| l.is_from("QUIT", NICK), TIMEOUT);
    assert!(quit.last().contains("enough tea"), "{}", quit.raw);
    assert!(parley_testkit::wait_child(&mut weechat.child, TIMEOUT).is_some(), "WeeChat did not exit after /quit");
}
