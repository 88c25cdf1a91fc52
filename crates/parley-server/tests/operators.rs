//! The administrator's commands: OPER (with its failure limit), KILL,
//! WALLOPS and DIE (the seed's "close the server"), plus what each leaves
//! in the activity log.

use parley_testkit::numeric::*;
use parley_testkit::{log_event, Client, Line, Server, ADMIN_NAME, ADMIN_PASSWORD, TIMEOUT};
use std::time::Duration;

fn oper(c: &mut Client, password: &str) -> Line {
    c.send(&format!("OPER {ADMIN_NAME} {password}"));
    c.expect(|l| l.is(RPL_YOUREOPER) || l.is(ERR_PASSWDMISMATCH), TIMEOUT)
}

#[test]
fn oper_with_a_wrong_password_gets_464_and_with_the_right_one_381() {
    let mut server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let wrong = "not-the-password-42";
    assert!(oper(&mut alice, wrong).is(ERR_PASSWDMISMATCH));
    // An unknown operator name gets the same answer.
    alice.send("OPER nobody whatever");
    alice.expect(|l| l.is(ERR_PASSWDMISMATCH), TIMEOUT);

    let granted = oper(&mut alice, ADMIN_PASSWORD);
    assert!(granted.is(RPL_YOUREOPER), "{}", granted.raw);
    let mode = alice.expect(|l| l.is("MODE"), TIMEOUT);
    assert_eq!(mode.params, ["alice", "+o"]);
    alice.send("WHOIS alice");
    alice.expect(|l| l.is(RPL_WHOISOPERATOR), TIMEOUT);

    server.stop();
    let log = server.log_text();
    log_event(&log, "oper", &["nick=\"alice\"", "name=\"admin\"", "result=\"denied\""]);
    log_event(&log, "oper", &["nick=\"alice\"", "name=\"nobody\"", "result=\"denied\""]);
    log_event(&log, "oper", &["nick=\"alice\"", "name=\"admin\"", "result=\"granted\""]);
    assert!(!log.contains(ADMIN_PASSWORD), "the activity log contains the admin password:\n{log}");
    assert!(!log.contains(wrong), "the activity log contains a tried password:\n{log}");
    assert!(!log.contains("whatever"), "the activity log contains a tried password:\n{log}");
}

#[test]
fn oper_is_rate_limited_after_three_failures_from_one_address_even_with_the_right_password() {
    let mut server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    // Three failures from 127.0.0.1, spread over two connections.
    assert!(oper(&mut alice, "guess-1").is(ERR_PASSWDMISMATCH));
    assert!(oper(&mut bob, "guess-2").is(ERR_PASSWDMISMATCH));
    assert!(oper(&mut alice, "guess-3").is(ERR_PASSWDMISMATCH));

    for c in [&mut alice, &mut bob] {
        c.send(&format!("OPER {ADMIN_NAME} {ADMIN_PASSWORD}"));
        let fail = c.expect(|l| l.is("FAIL") || l.is(RPL_YOUREOPER), TIMEOUT);
        assert!(fail.is("FAIL"), "OPER with the right password was granted while limited: {}", fail.raw);
        assert_eq!(fail.params[..2], ["OPER", "RATE_LIMITED"], "{}", fail.raw);
        assert!(fail.last().contains("try again in"), "{}", fail.raw);
        // Not an operator after all.
        c.send("DIE");
        c.expect(|l| l.is(ERR_NOPRIVILEGES), TIMEOUT);
    }

    server.stop();
    let log = server.log_text();
    for nick in ["alice", "bob"] {
        log_event(&log, "oper", &[&format!("nick=\"{nick}\""), "result=\"rate_limited\""]);
    }
    assert!(!log.contains("result=\"granted\""), "{log}");
    for secret in [ADMIN_PASSWORD, "guess-1", "guess-2", "guess-3"] {
        assert!(!log.contains(secret), "the activity log contains the password {secret:?}:\n{log}");
    }
}

#[test]
fn kill_by_an_operator_disconnects_the_target_and_the_others_see_the_quit() {
    let mut server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    let mut carol = Client::registered(server.irc_addr(), "carol");

    // Not an operator yet.
    alice.send("KILL bob :spamming");
    alice.expect(|l| l.is(ERR_NOPRIVILEGES), TIMEOUT);
    assert!(oper(&mut alice, ADMIN_PASSWORD).is(RPL_YOUREOPER));
    alice.send("KILL nobody :x");
    alice.expect(|l| l.is(ERR_NOSUCHNICK), TIMEOUT);

    alice.send("KILL bob :spamming");
    let lines = bob.expect_closed(TIMEOUT);
    let error = lines.last().unwrap_or_else(|| panic!("bob got nothing before the close"));
    assert!(error.is("ERROR"), "the last line before the close is not ERROR: {lines:?}");
    assert!(error.last().contains("Killed (alice (spamming))"), "{}", error.raw);

    let quit = carol.expect(|l| l.is_from("QUIT", "bob"), TIMEOUT);
    assert!(quit.last().contains("Killed (alice (spamming))"), "{}", quit.raw);
    let notice = alice.expect(|l| l.is("NOTICE") && l.last().contains("Killed bob"), TIMEOUT);
    assert!(notice.last().contains("spamming"), "{}", notice.raw);
    // bob's nick is free again.
    Client::registered(server.irc_addr(), "bob");

    server.stop();
    let log = server.log_text();
    log_event(&log, "kill", &["nick=\"alice\"", "target=\"bob\"", "reason=\"spamming\""]);
}

#[test]
fn die_by_a_non_operator_gets_481_and_the_server_keeps_running() {
    let mut server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    alice.send("DIE :because I can");
    alice.expect(|l| l.is(ERR_NOPRIVILEGES), TIMEOUT);
    assert!(server.wait_exit(Duration::ZERO).is_none(), "the server exited");
    Client::registered(server.irc_addr(), "bob");
    alice.sync();
}

#[test]
fn die_by_an_operator_tells_every_user_who_and_why_then_the_server_exits_0() {
    let mut server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    let mut carol = Client::registered(server.irc_addr(), "carol");
    let mut unregistered = Client::connect(server.irc_addr());
    unregistered.sync();
    assert!(oper(&mut alice, ADMIN_PASSWORD).is(RPL_YOUREOPER));

    alice.send("DIE :maintenance window");
    for c in [&mut alice, &mut bob, &mut carol, &mut unregistered] {
        let lines = c.expect_closed(TIMEOUT);
        let notice = lines
            .iter()
            .position(|l| l.is("NOTICE") && l.last().contains("alice") && l.last().contains("maintenance window"))
            .unwrap_or_else(|| panic!("{}: no NOTICE naming alice and the reason: {lines:?}", c.nick));
        let error =
            lines.iter().position(|l| l.is("ERROR")).unwrap_or_else(|| panic!("{}: no ERROR: {lines:?}", c.nick));
        assert!(notice < error, "{}: the ERROR came before the NOTICE: {lines:?}", c.nick);
        assert!(lines[error].last().contains("maintenance window"), "{}", lines[error].raw);
    }
    let status = server.wait_exit(Duration::from_secs(15)).expect("parleyd did not exit after DIE");
    assert!(status.success(), "parleyd exited with {status}");

    let log = server.log_text();
    log_event(&log, "die", &["nick=\"alice\"", "oper=\"admin\"", "reason=\"maintenance window\""]);
    log_event(&log, "shutdown", &["by=\"alice (operator admin)\"", "reason=\"maintenance window\""]);
    assert!(!log.contains(ADMIN_PASSWORD), "{log}");
}

#[test]
fn wallops_needs_an_operator_and_reaches_only_users_with_w() {
    let mut server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    let mut carol = Client::registered(server.irc_addr(), "carol");
    alice.send("WALLOPS :not yet");
    alice.expect(|l| l.is(ERR_NOPRIVILEGES), TIMEOUT);
    bob.send("MODE bob +w");
    assert_eq!(bob.expect(|l| l.is("MODE"), TIMEOUT).params, ["bob", "+w"]);

    assert!(oper(&mut alice, ADMIN_PASSWORD).is(RPL_YOUREOPER));
    alice.send("WALLOPS :restart at noon");
    let got = bob.expect(|l| l.is("WALLOPS"), TIMEOUT);
    assert_eq!((got.source.as_deref(), got.last()), (Some("alice!~alice@127.0.0.1"), "restart at noon"));
    carol.expect_none(|l| l.is("WALLOPS"), "WALLOPS without +w");
    alice.expect_none(|l| l.is("WALLOPS"), "WALLOPS to its sender without +w");

    server.stop();
    log_event(&server.log_text(), "wallops", &["nick=\"alice\"", "recipients=1"]);
}
