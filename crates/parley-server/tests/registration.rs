//! Registration (NICK/USER), nick rules, and the limits that apply to a
//! connection as a whole: registration timeout, ping timeout, connections
//! per address.

use parley_testkit::numeric::*;
use parley_testkit::{Client, Server, TIMEOUT};
use std::time::Duration;

#[test]
fn taken_nick_gets_433_and_the_client_can_retry_with_another_nick() {
    let server = Server::start();
    let _alice = Client::registered(server.irc_addr(), "alice");

    let mut second = Client::connect(server.irc_addr());
    second.send("NICK alice");
    second.send("USER alice 0 * :Second Alice");
    let refused = second.expect(|l| l.is(ERR_NICKNAMEINUSE), TIMEOUT);
    assert_eq!(refused.param(0), "*", "433 before registration is addressed to *");
    assert_eq!(refused.param(1), "alice");

    // Casemapping: ALICE is the same nick.
    second.send("NICK ALICE");
    let refused = second.expect(|l| l.is(ERR_NICKNAMEINUSE), TIMEOUT);
    assert_eq!(refused.param(1), "ALICE");

    // USER was already accepted; a free nick completes registration.
    second.send("NICK alice2");
    let welcome = second.expect(|l| l.is(RPL_WELCOME), TIMEOUT);
    assert_eq!(welcome.param(0), "alice2");
    assert!(welcome.last().contains("alice2!~alice@127.0.0.1"), "{}", welcome.raw);
}

#[test]
fn erroneous_nicks_get_432_and_nick_without_parameter_gets_431() {
    let server = Server::start();
    let mut c = Client::connect(server.irc_addr());
    for bad in ["1abc", "bad!nick", "-dash", "a.b", "toolong_toolong_toolong_toolong_x"] {
        c.send(&format!("NICK {bad}"));
        let reply = c.expect(|l| l.is(ERR_ERRONEUSNICKNAME), TIMEOUT);
        assert_eq!(reply.param(1), bad, "{}", reply.raw);
    }
    c.send("NICK");
    c.expect(|l| l.is(ERR_NONICKNAMEGIVEN), TIMEOUT);
    c.send("NICK :");
    c.expect(|l| l.is(ERR_NONICKNAMEGIVEN), TIMEOUT);
    // None of that registered anything: a good nick still works.
    c.register("good_nick");
}

#[test]
fn registered_user_can_change_nick_and_lobby_members_see_it() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    bob.send("NICK alice");
    let refused = bob.expect(|l| l.is(ERR_NICKNAMEINUSE), TIMEOUT);
    assert_eq!(refused.param(0), "bob");
    bob.send("NICK robert");
    let own = bob.expect(|l| l.is_from("NICK", "bob"), TIMEOUT);
    assert_eq!(own.last(), "robert");
    let seen = alice.expect(|l| l.is_from("NICK", "bob"), TIMEOUT);
    assert_eq!(seen.last(), "robert");
    // Messages come from the new hostmask (the session keeps one).
    bob.send("PRIVMSG alice :from my new nick");
    let msg = alice.expect(|l| l.is("PRIVMSG") && l.last() == "from my new nick", TIMEOUT);
    assert_eq!(msg.source.as_deref(), Some("robert!~bob@127.0.0.1"), "{}", msg.raw);
    // The old nick is free again.
    Client::registered(server.irc_addr(), "bob");
}

#[test]
fn idle_unregistered_connection_is_closed_after_the_registration_timeout() {
    let server = Server::start_with("[limits]\nregistration_timeout_secs = 1\n");
    let mut idle = Client::connect(server.irc_addr());
    let lines = idle.expect_closed(Duration::from_secs(10));
    let error = lines.iter().find(|l| l.is("ERROR")).unwrap_or_else(|| panic!("no ERROR before close: {lines:?}"));
    assert!(error.last().contains("Registration timed out"), "{}", error.raw);
}

#[test]
fn registered_client_that_ignores_ping_is_dropped_with_ping_timeout() {
    let server = Server::start_with("[limits]\nping_interval_secs = 1\nping_timeout_secs = 1\n");
    let mut watcher = Client::connect(server.irc_addr());
    watcher.set_auto_pong(true);
    watcher.register("watcher");
    let mut silent = Client::registered(server.irc_addr(), "silent");
    // The watcher must keep answering its own PINGs meanwhile, so it reads
    // on its own thread.
    let watching = std::thread::spawn(move || {
        let quit = watcher.expect(|l| l.is_from("QUIT", "silent"), Duration::from_secs(15));
        watcher.sync();
        quit
    });

    let ping = silent.expect(|l| l.is("PING"), Duration::from_secs(10));
    assert_eq!(ping.last(), "parley.local");
    // Not answering it.
    let lines = silent.expect_closed(Duration::from_secs(10));
    let error = lines.iter().find(|l| l.is("ERROR")).unwrap_or_else(|| panic!("no ERROR before close: {lines:?}"));
    assert!(error.last().contains("Ping timeout"), "{}", error.raw);

    // The client that answers its PINGs is still there and sees the QUIT.
    let quit = watching.join().expect("the watcher thread");
    assert!(quit.last().contains("Ping timeout"), "{}", quit.raw);
}

#[test]
fn third_connection_from_one_address_is_refused_when_the_limit_is_two() {
    let server = Server::start_with("[limits]\nmax_connections_per_ip = 2\n");
    let mut first = Client::registered(server.irc_addr(), "first");
    let _second = Client::connect(server.irc_addr());
    let mut third = Client::connect(server.irc_addr());
    let lines = third.expect_closed(TIMEOUT);
    let error = lines.iter().find(|l| l.is("ERROR")).unwrap_or_else(|| panic!("no ERROR before close: {lines:?}"));
    assert!(error.last().contains("Too many connections"), "{}", error.raw);
    // The admitted connections are unaffected.
    first.sync();
}

#[test]
fn registration_waits_for_cap_end_when_capabilities_are_negotiated() {
    let server = Server::start();
    let mut c = Client::connect(server.irc_addr());
    c.send("CAP LS 302");
    let ls = c.expect(|l| l.is("CAP"), TIMEOUT);
    assert_eq!(ls.param(1), "LS");
    for cap in ["echo-message", "message-tags", "server-time"] {
        assert!(ls.last().split(' ').any(|c| c == cap), "CAP LS lacks {cap}: {}", ls.raw);
    }
    c.send("NICK capper");
    c.send("USER capper 0 * :Capper");
    c.expect_none(|l| l.is(RPL_WELCOME), "001 before CAP END");
    c.send("CAP REQ :no-such-capability");
    let nak = c.expect(|l| l.is("CAP"), TIMEOUT);
    assert_eq!(nak.param(1), "NAK", "{}", nak.raw);
    c.send("CAP END");
    c.expect(|l| l.is(RPL_WELCOME), TIMEOUT);
}

#[test]
fn server_password_is_required_when_configured() {
    let server = Server::start_with("[irc]\npassword = \"letmein\"\n");
    let mut without = Client::connect(server.irc_addr());
    without.send("NICK nopass");
    without.send("USER nopass 0 * :No Pass");
    let lines = without.expect_closed(TIMEOUT);
    assert!(lines.iter().any(|l| l.is(ERR_PASSWDMISMATCH)), "no 464: {lines:?}");
    assert!(lines.last().is_some_and(|l| l.is("ERROR")), "no ERROR at the end: {lines:?}");

    let mut wrong = Client::connect(server.irc_addr());
    wrong.send("PASS guess");
    wrong.send("NICK wrongpass");
    wrong.send("USER wrongpass 0 * :Wrong Pass");
    let lines = wrong.expect_closed(TIMEOUT);
    assert!(lines.iter().any(|l| l.is(ERR_PASSWDMISMATCH)), "no 464: {lines:?}");

    let mut right = Client::connect(server.irc_addr());
    right.send("PASS letmein");
    right.register("withpass");
}

#[test]
fn connection_beyond_the_total_limit_is_refused_with_server_is_full() {
    let server = Server::start_with("[limits]\nmax_connections = 2\n");
    let mut first = Client::registered(server.irc_addr(), "first");
    let _second = Client::connect(server.irc_addr());
    let mut third = Client::connect(server.irc_addr());
    let lines = third.expect_closed(TIMEOUT);
    let error = lines.iter().find(|l| l.is("ERROR")).unwrap_or_else(|| panic!("no ERROR before close: {lines:?}"));
    assert!(error.last().contains("Server is full"), "{}", error.raw);
    first.sync();
}

#[test]
fn ipv4_and_ipv6_clients_chat_on_one_server() {
    let server = Server::start_with_args("", &["--irc-listen", "[::1]:0"]);
    let v6: std::net::SocketAddr = server
        .ready_field("irc")
        .and_then(|v| v.split(',').find(|a| a.starts_with('[')))
        .and_then(|a| a.parse().ok())
        .expect("an IPv6 listener in the readiness line");
    let mut four = Client::registered(server.irc_addr(), "four");
    let mut six = Client::registered(v6, "six");
    six.send("PRIVMSG #lobby :hello from ::1");
    let got = four.expect(|l| l.is("PRIVMSG") && l.nick() == "six", TIMEOUT);
    assert_eq!(got.last(), "hello from ::1");
    // The IPv6 host is shown so that it cannot be mistaken for a trailing parameter.
    assert!(got.source.as_deref().is_some_and(|s| s.ends_with("@0::1")), "{:?}", got.source);
}
