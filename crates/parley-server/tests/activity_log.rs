//! `server_log.txt`, the seed's record of all activity: one timestamped line
//! per event, message metadata without bodies, and never a password.

use parley_testkit::numeric::*;
use parley_testkit::{log_event, log_events, Client, Server, ADMIN_NAME, ADMIN_PASSWORD, TIMEOUT};

#[test]
fn activity_log_records_each_kind_of_activity_and_no_password_or_message_body() {
    let mut server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    let mut carol = Client::registered(server.irc_addr(), "carol");
    let port = |c: &Client| c.local_addr().port();
    let alice_addr = format!("addr=127.0.0.1:{}", port(&alice));

    alice.send("PRIVMSG #lobby :a secret lobby body");
    bob.expect(|l| l.is_from("PRIVMSG", "alice"), TIMEOUT);
    alice.send("PRIVMSG bob :a secret private body");
    bob.expect(|l| l.is_from("PRIVMSG", "alice"), TIMEOUT);
    alice.send("NICK alicia");
    alice.expect(|l| l.is_from("NICK", "alice"), TIMEOUT);
    alice.send("PRIVMSG bob :renamed");
    bob.expect(|l| l.is_from("PRIVMSG", "alicia"), TIMEOUT);
    alice.send("JOIN #side");
    alice.expect(|l| l.is(RPL_ENDOFNAMES) && l.param(1) == "#side", TIMEOUT);
    alice.send("PART #side :done here");
    alice.expect(|l| l.is_from("PART", "alicia"), TIMEOUT);
    alice.send(&format!("OPER {ADMIN_NAME} wrong-password-here"));
    alice.expect(|l| l.is(ERR_PASSWDMISMATCH), TIMEOUT);
    alice.send(&format!("OPER {ADMIN_NAME} {ADMIN_PASSWORD}"));
    alice.expect(|l| l.is(RPL_YOUREOPER), TIMEOUT);
    alice.send("KILL carol :testing kill");
    carol.expect_closed(TIMEOUT);
    bob.send("QUIT :bye for now");
    bob.expect_closed(TIMEOUT);
    alice.sync();

    server.stop();
    let log = server.log_text();
    log_event(&log, "start", &[]);
    log_event(&log, "connect", &[&alice_addr]);
    log_event(&log, "registered", &[&alice_addr, "nick=\"alice\"", "user=\"alice!~alice@127.0.0.1\""]);
    log_event(&log, "join", &["nick=\"alice\"", "channel=\"#lobby\""]);
    let lobby = log_event(&log, "message", &["nick=\"alice\"", "target=\"#lobby\""]);
    assert!(lobby.contains(&format!(" bytes={}", "a secret lobby body".len())), "{lobby}");
    let private = log_event(&log, "message", &["nick=\"alice\"", "target=\"bob\""]);
    assert!(private.contains(&format!(" bytes={}", "a secret private body".len())), "{private}");
    log_event(&log, "nick", &[&alice_addr, "nick=\"alice\"", "new=\"alicia\""]);
    // A message after the nick change names the new nick (the session
    // keeps the formatted sender, renewed on NICK).
    log_event(&log, "message", &[&alice_addr, "nick=\"alicia\"", "target=\"bob\""]);
    log_event(&log, "join", &["nick=\"alicia\"", "channel=\"#side\""]);
    log_event(&log, "part", &["nick=\"alicia\"", "channel=\"#side\"", "reason=\"done here\""]);
    log_event(&log, "oper", &["nick=\"alicia\"", "name=\"admin\"", "result=\"denied\""]);
    log_event(&log, "oper", &["nick=\"alicia\"", "name=\"admin\"", "result=\"granted\""]);
    log_event(&log, "kill", &["nick=\"alicia\"", "target=\"carol\"", "reason=\"testing kill\""]);
    log_event(&log, "quit", &["nick=\"carol\"", "reason=\"Killed (alicia (testing kill))\""]);
    log_event(&log, "quit", &["nick=\"bob\"", "reason=\"Quit: bye for now\""]);
    log_event(&log, "shutdown", &["by=\"signal SIGTERM\""]);
    assert_eq!(log_events(&log, "connect").len(), 3, "{log}");

    assert!(!log.contains(ADMIN_PASSWORD), "the activity log contains the admin password:\n{log}");
    assert!(!log.contains("wrong-password-here"), "the activity log contains a tried password:\n{log}");
    assert!(!log.contains("secret"), "message bodies are logged although message_bodies is off:\n{log}");
    // Nor on the server's own output, nor anywhere in the data directory.
    assert!(!server.output().contains(ADMIN_PASSWORD), "parleyd printed the admin password");
    for entry in std::fs::read_dir(server.data_dir()).expect("data dir") {
        let path = entry.expect("dir entry").path();
        if let Ok(text) = std::fs::read_to_string(&path) {
            assert!(!text.contains(ADMIN_PASSWORD), "{} contains the admin password", path.display());
        }
    }
}

#[test]
fn message_bodies_are_logged_when_configured() {
    let mut server = Server::start_with("[log]\nmessage_bodies = true\n");
    let mut alice = Client::registered(server.irc_addr(), "alice");
    alice.send("PRIVMSG #lobby :line one\u{7f} and \"quotes\"");
    alice.sync();
    server.stop();
    let log = server.log_text();
    log_event(&log, "message", &["target=\"#lobby\"", "body=\"line one\\u{7f} and \\\"quotes\\\"\""]);
}

#[test]
fn user_controlled_text_cannot_forge_a_log_line() {
    let mut server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    // A channel name and a part reason that try to start a new log entry.
    alice.send("JOIN #x\"y");
    alice.expect(|l| l.is(RPL_ENDOFNAMES), TIMEOUT);
    alice.send("PART #x\"y :bye\" die conn=0 by=\"someone\"");
    alice.expect(|l| l.is_from("PART", "alice"), TIMEOUT);
    alice.sync();
    server.stop();
    let log = server.log_text();
    assert!(log_events(&log, "die").is_empty(), "a forged die event:\n{log}");
    log_event(&log, "part", &["channel=\"#x\\\"y\"", "reason=\"bye\\\" die conn=0 by=\\\"someone\\\"\""]);
    for line in log.lines() {
        assert!(line.split(' ').nth(1).is_some_and(|k| !k.is_empty()), "malformed log line {line:?}");
    }
}
