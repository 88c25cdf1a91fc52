//! Accounts: `parleyd account ...`, the administrators' offline commands,
//! run as the real binary against a temporary data directory; and logging
//! in with SASL PLAIN over a real socket, to a running server, with an
//! account created while it runs and still there after a kill -9.

use base64::Engine;
use parley_testkit::server::parleyd_bin;
use parley_testkit::{Server, TIMEOUT};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `parleyd --data-dir DIR account ARGS...` with `stdin` piped in.
fn account(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(parleyd_bin())
        .arg("--data-dir")
        .arg(dir)
        .arg("account")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running parleyd");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("writing the password");
    child.wait_with_output().expect("parleyd account finished")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[test]
fn accounts_are_created_listed_granted_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let made = account(dir.path(), &["add", "Alice"], "sesame\n");
    assert!(made.status.success(), "{}", text(&made.stderr));
    assert!(account(dir.path(), &["add", "bob", "--oper"], "pw\n").status.success());
    assert!(account(dir.path(), &["grant-oper", "ALICE"], "").status.success());
    assert!(account(dir.path(), &["grant-oper", "bob", "--revoke"], "").status.success());
    assert!(account(dir.path(), &["passwd", "alice"], "new one\n").status.success());
    let listed = account(dir.path(), &["list"], "");
    assert_eq!(text(&listed.stdout), "Alice oper\nbob\n");
    assert!(account(dir.path(), &["del", "bob"], "").status.success());
    assert_eq!(text(&account(dir.path(), &["list"], "").stdout), "Alice oper\n");
}

#[test]
fn bad_requests_fail_with_a_clear_message_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    assert!(account(dir.path(), &["add", "alice"], "pw\n").status.success());
    for (args, stdin, said) in [
        (&["add", "ALICE"][..], "pw\n", "the account ALICE already exists"),
        (&["add", "bad name"][..], "pw\n", "cannot be an account name"),
        (&["add", "carol"][..], "\n", "the password is empty"),
        (&["del", "nobody"][..], "", "there is no account nobody"),
        (&["passwd", "nobody"][..], "pw\n", "there is no account nobody"),
    ] {
        let out = account(dir.path(), args, stdin);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(text(&out.stderr).contains(said), "{args:?}: {}", text(&out.stderr));
    }
    assert_eq!(text(&account(dir.path(), &["list"], "").stdout), "alice\n");
}

/// `CAP REQ sasl`, `AUTHENTICATE PLAIN` with `name` and `password`, and the
/// numeric that answers the credentials.
fn sasl_plain(server: &Server, nick: &str, name: &str, password: &str) -> (parley_testkit::Client, String) {
    let mut c = parley_testkit::Client::connect(server.irc_addr());
    c.send("CAP LS 302");
    let ls = c.expect(|l| l.is("CAP") && l.param(1) == "LS", TIMEOUT);
    assert!(ls.last().split(' ').any(|cap| cap.starts_with("sasl=PLAIN")), "sasl=PLAIN offered: {}", ls.last());
    c.send("CAP REQ sasl");
    c.expect(|l| l.is("CAP") && l.param(1) == "ACK", TIMEOUT);
    c.send(&format!("NICK {nick}"));
    c.send("USER u 0 * :U");
    c.send("AUTHENTICATE PLAIN");
    c.expect(|l| l.is("AUTHENTICATE") && l.param(0) == "+", TIMEOUT);
    let payload = base64::engine::general_purpose::STANDARD.encode(format!("\0{name}\0{password}"));
    c.send(&format!("AUTHENTICATE {payload}"));
    let answer = c.expect(|l| ["903", "904"].contains(&l.command.as_str()), TIMEOUT);
    (c, answer.command.clone())
}

#[test]
fn an_account_made_while_the_server_runs_logs_in_with_sasl_and_survives_kill_9() {
    let server = Server::start();
    let made = account(&server.data_dir(), &["add", "carol"], "hunter22\n");
    assert!(made.status.success(), "{}", text(&made.stderr));
    let (_wrong, answer) = sasl_plain(&server, "eve", "carol", "guess");
    assert_eq!(answer, "904", "a wrong password is refused");
    let (mut c, answer) = sasl_plain(&server, "carol", "carol", "hunter22");
    assert_eq!(answer, "903");
    c.send("CAP END");
    c.expect(|l| l.is("001"), TIMEOUT);
    let logged = server.wait_for_log(|t| t.contains("login ") && t.contains("result=\"granted\""), TIMEOUT);
    assert!(!logged.contains("hunter22"), "the log never holds a password");
    let server = server.kill_and_restart();
    let (_again, answer) = sasl_plain(&server, "carol", "carol", "hunter22");
    assert_eq!(answer, "903", "the committed account is still there after kill -9");
}

#[test]
fn check_config_never_prints_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("parleyd.toml");
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
    std::fs::write(
        &config,
        format!("[irc]\npassword = \"hunter2secret\"\n[[oper]]\nname = \"boss\"\npassword_hash = \"{hash}\"\n"),
    )
    .unwrap();
    let out = Command::new(parleyd_bin()).arg("--config").arg(&config).arg("check-config").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("configuration is valid") && shown.contains("<set>"), "{shown}");
    assert!(!shown.contains("hunter2secret") && !shown.contains("argon2id"), "{shown}");
}
