//! IRCv3 `batch` and `labeled-response` over real sockets: what a client
//! that labels its commands reads back, line by line, from the real
//! parleyd, including a command that waits on the blocking pool (OPER) and
//! a line that does not parse.

use parley_testkit::{show, Client, Line, Server, ADMIN_NAME, ADMIN_PASSWORD, TIMEOUT};

const CAPS: &[&str] = &["batch", "labeled-response", "echo-message", "server-time"];

fn labeling(server: &Server, nick: &str) -> Client {
    let mut c = Client::connect(server.irc_addr());
    c.register_with_caps(nick, CAPS);
    c.sync();
    c
}

/// Reads a labeled batch to its end: (the start line, the lines inside).
/// Checks that the start carries `label`, every line inside names the
/// batch, and the batch ends.
fn read_batch(c: &mut Client, label: &str) -> (Line, Vec<Line>) {
    let start = c.expect(|l| l.is("BATCH"), TIMEOUT);
    assert_eq!(start.tag("label"), Some(label), "the label is on the start line: {}", start.raw);
    assert_eq!(start.param(1), "labeled-response", "{}", start.raw);
    let id = start.param(0).strip_prefix('+').expect("BATCH +id").to_string();
    assert!(!id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'), "{id}");
    let mut inside = c.collect_until(|l| l.is("BATCH") && l.param(0) == format!("-{id}"), TIMEOUT);
    inside.pop();
    for line in &inside {
        assert_eq!(line.tag("batch"), Some(id.as_str()), "every line names the batch:\n{}", show(&inside));
        assert_eq!(line.tag("label"), None, "the label is only on the start line:\n{}", show(&inside));
    }
    (start, inside)
}

#[test]
fn a_labeled_join_comes_back_as_one_batch_and_a_labeled_ping_as_one_line() {
    let server = Server::start();
    let mut alice = labeling(&server, "alice");

    alice.send("@label=j1 JOIN #tea");
    let (_, inside) = read_batch(&mut alice, "j1");
    let commands: Vec<&str> = inside.iter().map(|l| l.command.as_str()).collect();
    assert_eq!(commands, ["JOIN", "353", "366"], "{}", show(&inside));

    alice.send("@label=p1 PING :token");
    let pong = alice.expect(|l| l.is("PONG"), TIMEOUT);
    assert_eq!(pong.tag("label"), Some("p1"), "{}", pong.raw);
    assert!(pong.tag("time").is_some(), "server-time still applies: {}", pong.raw);
    assert_eq!(pong.tag("batch"), None);

    alice.send("@label=a1 PONG :nothing to say");
    let ack = alice.expect(|l| !l.is("PING"), TIMEOUT);
    assert!(ack.is("ACK") && ack.tag("label") == Some("a1"), "{}", ack.raw);
}

#[test]
fn only_the_senders_echo_carries_the_label() {
    let server = Server::start();
    let mut alice = labeling(&server, "alice");
    let mut bob = labeling(&server, "bob");
    alice.sync();

    alice.send("@label=m1 PRIVMSG bob :hello");
    let echo = alice.expect(|l| l.is("PRIVMSG"), TIMEOUT);
    assert_eq!(echo.tag("label"), Some("m1"), "{}", echo.raw);
    let got = bob.expect(|l| l.is("PRIVMSG"), TIMEOUT);
    assert_eq!(got.tag("label"), None, "the recipient never sees the label: {}", got.raw);

    // Two targets, two echoes: one batch, and still no label for bob.
    alice.send("@label=m2 PRIVMSG bob,#lobby :both");
    let (_, inside) = read_batch(&mut alice, "m2");
    assert_eq!(inside.iter().filter(|l| l.is("PRIVMSG")).count(), 2, "{}", show(&inside));
    for _ in 0..2 {
        let got = bob.expect(|l| l.is("PRIVMSG"), TIMEOUT);
        assert_eq!((got.tag("label"), got.tag("batch")), (None, None), "{}", got.raw);
    }
}

#[test]
fn oper_is_labeled_when_its_password_check_answers() {
    let server = Server::start();
    let mut alice = labeling(&server, "alice");

    alice.send(&format!("@label=o1 OPER {ADMIN_NAME} wrong"));
    let denied = alice.expect(|l| l.is("464"), TIMEOUT);
    assert_eq!(denied.tag("label"), Some("o1"), "{}", denied.raw);

    alice.send(&format!("@label=o2 OPER {ADMIN_NAME} {ADMIN_PASSWORD}"));
    let (_, inside) = read_batch(&mut alice, "o2");
    let commands: Vec<&str> = inside.iter().map(|l| l.command.as_str()).collect();
    assert_eq!(commands, ["381", "MODE"], "{}", show(&inside));
    alice.expect_none(|l| l.is("ACK"), "ACK for a command that was answered");
}

#[test]
fn errors_for_lines_that_do_not_parse_are_labeled_too() {
    let server = Server::start();
    let mut alice = labeling(&server, "alice");

    alice.send("@label=u1 NO_SUCH_COMMAND x");
    let unknown = alice.expect(|l| l.is("421"), TIMEOUT);
    assert_eq!(unknown.tag("label"), Some("u1"), "{}", unknown.raw);

    alice.send_raw(b"@label=u2 PRIVMSG #lobby :caf\xe9\r\n");
    let fail = alice.expect(|l| l.is("FAIL"), TIMEOUT);
    assert_eq!((fail.param(1), fail.tag("label")), ("INVALID_UTF8", Some("u2")), "{}", fail.raw);
}

#[test]
fn without_the_caps_or_with_an_overlong_label_nothing_is_labeled_or_batched() {
    let server = Server::start();
    let mut plain = Client::registered(server.irc_addr(), "plain");
    plain.send("@label=x WHOIS plain");
    let lines = plain.collect_until(|l| l.is("318"), TIMEOUT);
    assert!(lines.iter().all(|l| l.tags.is_empty() && !l.is("BATCH")), "{}", show(&lines));
    plain.expect_none(|l| l.is("ACK") || l.is("BATCH"), "labels for a client without the caps");

    let mut alice = labeling(&server, "alice");
    let long = "x".repeat(65);
    alice.send(&format!("@label={long} PONG :x"));
    alice.send(&format!("@label={long} WHOIS alice"));
    let lines = alice.collect_until(|l| l.is("318"), TIMEOUT);
    assert!(lines.iter().all(|l| l.tag("label").is_none() && !l.is("BATCH")), "{}", show(&lines));
    alice.expect_none(|l| l.is("ACK"), "an ACK for a label over 64 bytes");
}
