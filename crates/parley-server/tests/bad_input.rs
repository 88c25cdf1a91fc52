//! Bad input gets a clear error, never a crash or a dead connection: over-long
//! lines, invalid UTF-8, unknown commands, commands out of order, missing
//! parameters, and floods (which do end the flooding connection, but only
//! that one).

use parley_testkit::numeric::*;
use parley_testkit::{Client, Server, TIMEOUT};
use std::time::Duration;

#[test]
fn over_long_line_gets_417_and_the_connection_keeps_working() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");

    let long = format!("PRIVMSG #lobby :{}", "a".repeat(600));
    alice.send(&long);
    let reply = alice.expect(|l| l.is(ERR_INPUTTOOLONG), TIMEOUT);
    assert_eq!(reply.param(0), "alice");
    alice.sync();
    // Nothing of the refused line reached the channel...
    bob.expect_none(|l| l.is("PRIVMSG"), "PRIVMSG from the refused line");
    // ...and the connection still works.
    alice.send("PRIVMSG #lobby :short and fine");
    let got = bob.expect(|l| l.is_from("PRIVMSG", "alice"), TIMEOUT);
    assert_eq!(got.last(), "short and fine");
}

#[test]
fn line_of_exactly_512_bytes_is_accepted_and_513_is_not() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    let prefix = "PRIVMSG #lobby :";
    // 512 bytes with the CR LF, as RFC 1459 allows.
    let fits = "f".repeat(510 - prefix.len());
    alice.send(&format!("{prefix}{fits}"));
    let got = bob.expect(|l| l.is_from("PRIVMSG", "alice"), TIMEOUT);
    assert_eq!(got.last(), fits);
    alice.send(&format!("{prefix}{fits}g"));
    alice.expect(|l| l.is(ERR_INPUTTOOLONG), TIMEOUT);
    bob.expect_none(|l| l.is("PRIVMSG"), "the 513-byte line");
}

#[test]
fn lines_ending_in_a_bare_line_feed_are_accepted() {
    let server = Server::start();
    let mut alice = Client::connect(server.irc_addr());
    alice.send_raw(b"NICK lf\nUSER lf 0 * :Bare LF\n");
    alice.expect(|l| l.is(RPL_WELCOME), TIMEOUT);
    alice.send_raw(b"PING :bare\n");
    let pong = alice.expect(|l| l.is("PONG"), TIMEOUT);
    assert_eq!(pong.last(), "bare");
}

#[test]
fn line_with_a_nul_byte_gets_fail_invalid_message_and_the_connection_keeps_working() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    alice.send_raw(b"PRIVMSG #lobby :nul\0inside\r\n");
    let fail = alice.expect(|l| l.is("FAIL"), TIMEOUT);
    assert_eq!(fail.param(1), "INVALID_MESSAGE", "{}", fail.raw);
    alice.sync();
}

#[test]
fn line_beyond_the_read_limit_is_discarded_with_417_and_the_connection_keeps_working() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    // Longer than max_line_bytes + max_tag_bytes, sent in one piece: the
    // server must stop buffering it and skip to the next line break.
    let huge = format!("PRIVMSG #lobby :{}\r\n", "z".repeat(20_000));
    alice.send_raw(huge.as_bytes());
    alice.expect(|l| l.is(ERR_INPUTTOOLONG), TIMEOUT);
    alice.sync();
    bob.expect_none(|l| l.is("PRIVMSG"), "PRIVMSG from the discarded line");
    alice.send("PRIVMSG #lobby :after the huge line");
    let got = bob.expect(|l| l.is_from("PRIVMSG", "alice"), TIMEOUT);
    assert_eq!(got.last(), "after the huge line");
}

#[test]
fn invalid_utf8_gets_fail_invalid_utf8_and_the_connection_keeps_working() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    alice.send_raw(b"PRIVMSG #lobby :caf\xe9 latin-1 \xff\xfe\r\n");
    let fail = alice.expect(|l| l.is("FAIL"), TIMEOUT);
    assert_eq!(fail.param(0), "PRIVMSG", "{}", fail.raw);
    assert_eq!(fail.param(1), "INVALID_UTF8", "{}", fail.raw);
    bob.expect_none(|l| l.is("PRIVMSG"), "PRIVMSG from the invalid line");
    alice.send("PRIVMSG #lobby :café in UTF-8");
    let got = bob.expect(|l| l.is_from("PRIVMSG", "alice"), TIMEOUT);
    assert_eq!(got.last(), "café in UTF-8");
}

#[test]
fn unknown_command_gets_421() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    alice.send("FROBNICATE now");
    let reply = alice.expect(|l| l.is(ERR_UNKNOWNCOMMAND), TIMEOUT);
    assert_eq!(reply.param(1), "FROBNICATE");
    // A word that is not even a valid command token gets 421 too.
    alice.send("PRIV-MSG #lobby :x");
    let reply = alice.expect(|l| l.is(ERR_UNKNOWNCOMMAND), TIMEOUT);
    assert_eq!(reply.param(1), "PRIV-MSG");
    alice.sync();
}

#[test]
fn commands_before_registration_get_451() {
    let server = Server::start();
    let mut c = Client::connect(server.irc_addr());
    for line in ["JOIN #lobby", "PRIVMSG #lobby :hello", "WHOIS alice", "FROBNICATE"] {
        c.send(line);
        let reply = c.expect(|l| l.is(ERR_NOTREGISTERED), TIMEOUT);
        assert_eq!(reply.param(0), "*", "{line}: {}", reply.raw);
    }
    // PING works before registration and the connection can still register.
    c.sync();
    c.register("late");
}

#[test]
fn missing_parameters_get_461() {
    let server = Server::start();
    let mut c = Client::connect(server.irc_addr());
    c.send("USER onlyone");
    let reply = c.expect(|l| l.is(ERR_NEEDMOREPARAMS), TIMEOUT);
    assert_eq!(reply.param(1), "USER");
    c.register("carol");
    for (line, command) in [("JOIN", "JOIN"), ("KICK #lobby", "KICK"), ("OPER admin", "OPER"), ("MODE", "MODE")] {
        c.send(line);
        let reply = c.expect(|l| l.is(ERR_NEEDMOREPARAMS), TIMEOUT);
        assert_eq!(reply.param(1), command, "{line}: {}", reply.raw);
    }
    c.sync();
}

#[test]
fn a_throttled_client_is_paced_not_dropped_and_keeps_its_order() {
    // A burst of 5 lines, then 20 a second: 30 lines at once take the
    // server at least (30 - 5) / 20 s to relay, and none is lost.
    let server = Server::start_with("[limits]\nflood_burst = 5\nflood_lines_per_second = 20.0\n");
    let mut fast = Client::registered(server.irc_addr(), "fast");
    let mut peer = Client::registered(server.irc_addr(), "peer");
    peer.sync();
    let lines: String = (0..30).map(|n| format!("PRIVMSG peer :{n}\r\n")).collect();
    let started = std::time::Instant::now();
    fast.send_raw(lines.as_bytes());
    let got = peer.collect_until(|l| l.is_from("PRIVMSG", "fast") && l.last() == "29", TIMEOUT);
    let elapsed = started.elapsed();
    let texts: Vec<_> = got.iter().filter(|l| l.is_from("PRIVMSG", "fast")).map(|l| l.last().to_string()).collect();
    assert_eq!(texts, (0..30).map(|n| n.to_string()).collect::<Vec<_>>());
    // Registration and sync used a few of the burst's tokens; the bucket
    // refills from then on, so the bound is loose but not zero.
    assert!(elapsed >= Duration::from_millis(900), "30 lines relayed in {elapsed:?}: not paced");
    fast.sync();
}

#[test]
fn flooding_client_is_cut_with_excess_flood_while_others_stay_connected() {
    let server = Server::start();
    let mut flooder = Client::registered(server.irc_addr(), "flooder");
    let mut bystander = Client::registered(server.irc_addr(), "bystander");

    // Default limits: a burst of 20 lines, then 4 per second, and at most
    // 8 KiB of unprocessed input. 2,000 lines are 34 KB at once.
    let flood = "PRIVMSG #lobby :x\r\n".repeat(2_000);
    // The server may close while we are still writing; that is the point.
    let _ = flooder.try_send_raw(flood.as_bytes());
    let lines = flooder.expect_closed(TIMEOUT);
    let error = lines.iter().find(|l| l.is("ERROR")).unwrap_or_else(|| panic!("no ERROR before close: {lines:?}"));
    assert!(error.last().starts_with("Closing Link: "), "{}", error.raw);
    assert!(error.last().contains("(Excess Flood)"), "{}", error.raw);

    // The bystander got what the flooder's burst allowed (20 lines, less
    // the two it registered with, plus the odd refill), not the flood; then
    // the flooder's QUIT; and it is still connected.
    let seen = bystander.collect_until(|l| l.is_from("QUIT", "flooder"), TIMEOUT);
    let quit = seen.last().expect("the QUIT");
    assert!(quit.last().contains("Excess Flood"), "{}", quit.raw);
    let relayed = seen.iter().filter(|l| l.is_from("PRIVMSG", "flooder")).count();
    assert!((1..=40).contains(&relayed), "bystander got {relayed} of the flood's lines");
    bystander.sync();
    bystander.send("PRIVMSG #lobby :still here");
    Client::registered(server.irc_addr(), "newcomer");
}
