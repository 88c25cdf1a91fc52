//! Accounts and history with PostgreSQL as the store (`[database] url`),
//! one node: the same behaviour as with SQLite, through the same client
//! helpers as tests/history.rs and tests/logins.rs. Ignored unless run
//! with `PARLEY_TEST_POSTGRES_URL` set: `bash tools/postgres/start.sh cargo
//! test -p parley-server --test postgres -- --include-ignored` (tools/test.sh
//! does). The start refusal needs no PostgreSQL and always runs.

mod chat;
mod relay;
mod store;

use chat::{connect, history, said, scram_login, search};
use parley_testkit::server::parleyd_bin;
use parley_testkit::{Server, TIMEOUT};
use std::process::Command;

const FAST: &str = "[limits]\nflood_burst = 100000\nflood_lines_per_second = 100000.0\n";

fn start() -> Server {
    Server::start_with(&format!("{FAST}{}", store::fresh_database_toml()))
}

#[test]
#[ignore = "needs PostgreSQL: run with PARLEY_TEST_POSTGRES_URL (tools/postgres/start.sh)"]
fn accounts_register_and_log_in_with_plain_and_scram() {
    let server = start();
    server.add_account("alice", "pw-alice");
    // SASL PLAIN (inside `connect`), then SCRAM-SHA-256, right and wrong.
    let _alice = connect(&server, "alice", true, &[]);
    assert_eq!(scram_login(&server, "al2", "alice", "pw-alice").1, "903");
    assert_eq!(scram_login(&server, "al3", "alice", "wrong").1, "904");
    // REGISTER over IRC, then log in to it from another connection.
    let mut bob = connect(&server, "bob", false, &["draft/account-registration"]);
    bob.send("REGISTER * * pw-bob");
    let answer = bob.expect(|l| l.is("REGISTER") || l.is("FAIL"), TIMEOUT);
    assert_eq!(answer.param(0), "SUCCESS", "{}", answer.raw);
    bob.send("QUIT");
    bob.expect_closed(TIMEOUT);
    let _bob = connect(&server, "bob", true, &[]);
    bob_exists_after_restart(server);
}

fn bob_exists_after_restart(server: Server) {
    let server = server.stop_and_restart();
    assert_eq!(scram_login(&server, "b2", "bob", "pw-bob").1, "903", "kept in PostgreSQL");
}

#[test]
#[ignore = "needs PostgreSQL: run with PARLEY_TEST_POSTGRES_URL (tools/postgres/start.sh)"]
fn history_pages_search_markers_and_deletion() {
    let server = start();
    server.add_account("erin", "pw-erin");
    server.add_account("finn", "pw-finn");
    let mut erin = connect(&server, "erin", true, &["draft/read-marker"]);
    let mut finn = connect(&server, "finn", true, &[]);
    let echoes: Vec<_> = (0..30).map(|i| said(&mut erin, "#lobby", &format!("m{i} word{}", i % 3))).collect();
    let texts = |range: std::ops::Range<usize>| range.map(|i| format!("m{i} word{}", i % 3)).collect::<Vec<_>>();
    assert_eq!(history(&mut finn, "LATEST #lobby * 10").unwrap(), texts(20..30));
    let msgid = |i: usize| echoes[i].tag("msgid").unwrap().to_string();
    assert_eq!(history(&mut finn, &format!("BEFORE #lobby msgid={} 5", msgid(20))).unwrap(), texts(15..20));
    assert_eq!(history(&mut finn, &format!("AROUND #lobby msgid={} 4", msgid(10))).unwrap(), texts(8..12));
    assert_eq!(history(&mut finn, &format!("AFTER #lobby msgid={} 3", msgid(26))).unwrap(), texts(27..30));
    assert_eq!(history(&mut finn, "LATEST #lobby msgid=nosuch 10").unwrap(), Vec::<String>::new());
    // A private message, read back by both parties.
    said(&mut erin, "finn", "just between us");
    assert_eq!(history(&mut finn, "LATEST erin * 10").unwrap(), ["just between us"]);
    // Search: whole words, case-insensitive, every word given.
    let found = search(&mut finn, "text=WORD1").unwrap();
    assert_eq!(found, (0..30).filter(|i| i % 3 == 1).map(|i| format!("m{i} word1")).collect::<Vec<_>>());
    assert_eq!(search(&mut finn, "text=m4 word1").unwrap(), ["m4 word1"]);
    assert_eq!(search(&mut finn, "text=between;in=erin").unwrap(), ["just between us"]);
    assert!(search(&mut finn, "text=nothing-like-it").unwrap().is_empty());
    // A read marker, kept across a restart.
    erin.send("MARKREAD #lobby timestamp=2024-01-01T00:00:00.000Z");
    let set = erin.expect(|l| l.is("MARKREAD"), TIMEOUT);
    assert_eq!(set.param(1), "timestamp=2024-01-01T00:00:00.000Z");
    drop((erin, finn));
    let server = server.stop_and_restart();
    let mut erin = connect(&server, "erin", true, &["draft/read-marker"]);
    erin.send("MARKREAD #lobby");
    assert_eq!(erin.expect(|l| l.is("MARKREAD"), TIMEOUT).param(1), "timestamp=2024-01-01T00:00:00.000Z");
    // HISTORY DELETE: erin's 31 messages go, from pages and search.
    erin.send("HISTORY DELETE");
    let done = erin.expect(|l| l.is("HISTORY") || l.is("FAIL"), TIMEOUT);
    assert_eq!((done.param(0), done.param(1)), ("DELETE", "31"), "{}", done.raw);
    let mut finn = connect(&server, "finn", true, &[]);
    assert!(history(&mut finn, "LATEST #lobby * 10").unwrap().is_empty());
    assert!(search(&mut finn, "text=word1").unwrap().is_empty());
}

#[test]
fn an_unreachable_postgres_stops_the_start_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("parleyd.toml");
    // Port 1 on loopback: nothing listens there.
    std::fs::write(&config, "[database]\nurl = \"postgres://parley@127.0.0.1:1/parley\"\nconnect_timeout_secs = 2\n")
        .unwrap();
    let out = Command::new(parleyd_bin())
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--irc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it started: {stderr}");
    assert!(stderr.contains("database.url") && stderr.contains("127.0.0.1:1"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("parleyd ready"));
    // A URL that is not PostgreSQL's is refused at the config check.
    std::fs::write(&config, "[database]\nurl = \"mysql://x/y\"\n").unwrap();
    let out = Command::new(parleyd_bin()).arg("--config").arg(&config).arg("check-config").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("database.url"));
}
