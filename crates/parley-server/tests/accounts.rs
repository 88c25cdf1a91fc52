//! `parleyd account ...`, the administrators' offline account commands,
//! run as the real binary against a temporary data directory.

use parley_testkit::server::parleyd_bin;
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
