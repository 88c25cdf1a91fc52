//! Clean shutdown on signals: every connected user is told, the activity
//! log records who stopped the server, and the process exits 0.

use parley_testkit::{log_event, Client, Server, Signal, TIMEOUT};
use std::time::Duration;

fn every_client_is_told_and_the_server_exits_0(signal: Signal, name: &str) {
    let mut server = Server::start();
    let mut clients: Vec<Client> =
        ["alice", "bob", "carol"].into_iter().map(|nick| Client::registered(server.irc_addr(), nick)).collect();
    let mut unregistered = Client::connect(server.irc_addr());
    unregistered.sync();
    clients.push(unregistered);

    server.signal(signal);
    for c in &mut clients {
        let lines = c.expect_closed(Duration::from_secs(15));
        let error = lines.last().unwrap_or_else(|| panic!("{}: nothing before the close", c.nick));
        assert!(error.is("ERROR"), "{}: the last line is not ERROR: {lines:?}", c.nick);
        assert!(error.last().contains(&format!("signal {name}")), "{}", error.raw);
        assert!(
            lines.iter().any(|l| l.is("NOTICE") && l.last().contains("shutting down")),
            "{}: no shutdown NOTICE: {lines:?}",
            c.nick
        );
    }
    let status = server.wait_exit(Duration::from_secs(15)).expect("parleyd did not exit");
    assert!(status.success(), "parleyd exited with {status}");
    let log = server.log_text();
    log_event(&log, "shutdown", &[&format!("by=\"signal {name}\"")]);
    // Every user's end is in the log too, flushed before the exit.
    for nick in ["alice", "bob", "carol"] {
        log_event(&log, "quit", &[&format!("nick=\"{nick}\""), "reason=\"Server shutting down"]);
    }
}

#[test]
fn sigterm_tells_every_client_and_the_server_exits_0() {
    every_client_is_told_and_the_server_exits_0(Signal::Term, "SIGTERM");
}

#[test]
fn sigint_tells_every_client_and_the_server_exits_0() {
    every_client_is_told_and_the_server_exits_0(Signal::Int, "SIGINT");
}

#[test]
fn shutdown_does_not_wait_longer_than_the_grace_period_for_a_client_that_stopped_reading() {
    // A SendQ big enough that the stuck client is not cut before the signal.
    let mut server = Server::start_with(&format!(
        "{}sendq_bytes = 67108864\nshutdown_grace_secs = 1\n",
        parley_testkit::NO_FLOOD_LIMIT
    ));
    let mut sender = Client::registered(server.irc_addr(), "sender");
    let stuck = Client::registered(server.irc_addr(), "stuck");
    let mut other = Client::registered(server.irc_addr(), "other");
    other.sync();
    sender.sync();
    // About 12 MB for each reader: more than loopback buffers hold for one
    // that does not read. `other` reads on its own thread meanwhile.
    let reading = std::thread::spawn(move || {
        let lines = other.collect_until(
            |l| l.is_from("PRIVMSG", "sender") && l.last().starts_with("last "),
            Duration::from_secs(60),
        );
        assert!(!lines.iter().any(|l| l.is("QUIT")), "the stuck client was cut before the signal");
        other
    });
    let line = format!("PRIVMSG #lobby :{}\r\n", "y".repeat(200));
    let batch = line.repeat(1_000);
    for _ in 0..50 {
        sender.send_raw(batch.as_bytes());
    }
    sender.send("PRIVMSG #lobby :last one");
    let mut other = reading.join().expect("the reading client");
    other.sync();

    let started = std::time::Instant::now();
    server.signal(Signal::Term);
    let lines = other.expect_closed(Duration::from_secs(15));
    assert!(lines.last().is_some_and(|l| l.is("ERROR")), "{lines:?}");
    let status = server.wait_exit(Duration::from_secs(15)).expect("parleyd did not exit");
    assert!(status.success(), "parleyd exited with {status}");
    // Grace 1 s, plus the server's own bounded waits; far from forever.
    let took = started.elapsed();
    eprintln!("shutdown with a stuck client took {took:?}");
    assert!(took < Duration::from_secs(6), "shutdown took {took:?}");
    drop(stuck);
}

/// SIGHUP (a closed terminal, logrotate) leaves the server and its
/// clients as they were, and reopens the activity log by name (and reloads
/// the configuration: tests/reload.rs).
#[test]
fn sighup_reopens_the_log_and_does_not_stop_the_server() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    server.wait_for_log(|t| t.contains(" registered "), TIMEOUT);
    let log = server.data_dir().join("server_log.txt");
    std::fs::rename(&log, server.data_dir().join("server_log.txt.old")).unwrap();
    server.signal(Signal::Hup);
    server.wait_for_stderr(|l| l.contains("configuration reloaded") && l.contains("SIGHUP"), TIMEOUT);
    alice.send("PING still-here");
    alice.expect(|l| l.is("PONG") && l.last() == "still-here", TIMEOUT);
    assert!(Client::can_register(server.irc_addr(), "bob"));
    let fresh = server.wait_for_log(|t| t.contains("nick=\"bob\""), TIMEOUT);
    assert!(!fresh.lines().any(|l| l.contains(" registered ") && l.contains("alice")), "{fresh}");
    let old = std::fs::read_to_string(server.data_dir().join("server_log.txt.old")).unwrap();
    assert!(old.contains("alice"), "the moved file kept what came before");
}

/// The readiness line is the signal that the server is up; a SIGTERM sent
/// right after it must still stop the server cleanly. The race is narrow,
/// so the test tries several times.
#[test]
fn sigterm_right_after_the_readiness_line_still_shuts_down_cleanly() {
    for attempt in 1..=10 {
        let mut server = Server::start();
        server.signal(Signal::Term);
        let status = server.wait_exit(Duration::from_secs(10)).expect("parleyd did not exit");
        assert!(status.success(), "attempt {attempt}: parleyd exited with {status}");
        log_event(&server.log_text(), "shutdown", &["by=\"signal SIGTERM\""]);
    }
}
