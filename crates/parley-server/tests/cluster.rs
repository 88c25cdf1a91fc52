//! Several parleyd nodes as one chat over a NATS cluster (docs/CLUSTER.md).
//!
//! Ignored by a plain `cargo test`: they need a NATS cluster with
//! JetStream. `tools/cluster/run.sh` starts one on loopback and runs them
//! with `--ignored`, giving its URLs in `PARLEY_TEST_NATS_URLS`. The tests
//! share that NATS cluster (and so its lobby and nick claims), so each one
//! uses node names and nicks of its own.

use parley_testkit::{Client, Line, Server, TIMEOUT};
use std::time::{Duration, Instant};

/// The node timeout the tests' nodes run with.
const NODE_TIMEOUT_SECS: u64 = 4;

fn nats_urls() -> Vec<String> {
    let urls = std::env::var("PARLEY_TEST_NATS_URLS")
        .expect("PARLEY_TEST_NATS_URLS is not set: run these tests with tools/cluster/run.sh");
    urls.split(',').map(str::to_string).collect()
}

/// A parleyd node named `name` in the test NATS cluster.
fn node(name: &str) -> Server {
    let urls: Vec<String> = nats_urls().iter().map(|u| format!("{u:?}")).collect();
    Server::start_with(&format!(
        "[cluster]\nnats_urls = [{}]\nnode_name = \"{name}\"\nnode_timeout_secs = {NODE_TIMEOUT_SECS}\nkv_replicas = 3\n",
        urls.join(", ")
    ))
}

/// NAMES for `channel` as `client` sees it, nicks without prefixes.
fn names(client: &mut Client, channel: &str) -> Vec<String> {
    client.send(&format!("NAMES {channel}"));
    let lines = client.collect_until(|l| l.is("366"), TIMEOUT);
    lines
        .iter()
        .filter(|l| l.is("353"))
        .flat_map(|l| l.last().split(' ').map(|n| n.trim_start_matches(['@', '+']).to_string()).collect::<Vec<_>>())
        .collect()
}

/// Waits (bounded) until `client`'s NAMES for `channel` lists every one of
/// `nicks`: the other nodes' news travels through NATS.
fn wait_for_names(client: &mut Client, channel: &str, nicks: &[&str]) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let seen = names(client, channel);
        if nicks.iter().all(|n| seen.iter().any(|s| s == n)) {
            return;
        }
        assert!(Instant::now() < deadline, "NAMES {channel} never listed all of {nicks:?}; last: {seen:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn privmsg_from(nick: &'static str, text: &'static str) -> impl Fn(&Line) -> bool {
    move |l: &Line| l.is_from("PRIVMSG", nick) && l.last() == text
}

#[test]
#[ignore = "needs a NATS cluster: tools/cluster/run.sh"]
fn clients_on_different_nodes_share_the_lobby_both_ways_with_one_msgid() {
    let (a, b) = (node("lobby-a"), node("lobby-b"));
    let mut alice = Client::connect(a.irc_addr());
    alice.register_with_caps("lobalice", &["message-tags", "echo-message"]);
    let mut bob = Client::connect(b.irc_addr());
    bob.register_with_caps("lobbob", &["message-tags"]);
    wait_for_names(&mut alice, "#lobby", &["lobalice", "lobbob"]);
    wait_for_names(&mut bob, "#lobby", &["lobalice", "lobbob"]);

    alice.send("PRIVMSG #lobby :hello from a");
    let echo = alice.expect(privmsg_from("lobalice", "hello from a"), TIMEOUT);
    let got = bob.expect(privmsg_from("lobalice", "hello from a"), TIMEOUT);
    assert!(echo.tag("msgid").is_some(), "{}", echo.raw);
    assert_eq!(got.tag("msgid"), echo.tag("msgid"), "one msgid on both nodes");

    bob.send("PRIVMSG #lobby :and back from b");
    alice.expect(privmsg_from("lobbob", "and back from b"), TIMEOUT);
    // Once: nothing more of it reaches bob (no echo without echo-message).
    bob.expect_none(|l| l.is("PRIVMSG") && l.last() == "hello from a", "a second copy");
}

#[test]
#[ignore = "needs a NATS cluster: tools/cluster/run.sh"]
fn a_private_message_crosses_nodes_and_a_channel_made_on_one_node_is_joined_from_another() {
    let (a, b) = (node("pm-a"), node("pm-b"));
    let mut alice = Client::connect(a.irc_addr());
    alice.register("pmalice");
    let mut bob = Client::connect(b.irc_addr());
    bob.register("pmbob");
    wait_for_names(&mut alice, "#lobby", &["pmbob"]);
    alice.send("PRIVMSG pmbob :psst");
    bob.expect(privmsg_from("pmalice", "psst"), TIMEOUT);
    bob.send("PRIVMSG PMALICE :heard you");
    alice.expect(privmsg_from("pmbob", "heard you"), TIMEOUT);

    alice.send("JOIN #pm-room");
    alice.expect(|l| l.is("366"), TIMEOUT);
    wait_for_names(&mut bob, "#pm-room", &["pmalice"]);
    bob.send("JOIN #pm-room");
    alice.expect(|l| l.is_from("JOIN", "pmbob"), TIMEOUT);
    bob.send("PRIVMSG #pm-room :in the room");
    alice.expect(privmsg_from("pmbob", "in the room"), TIMEOUT);
    bob.send("PART #pm-room :bye");
    alice.expect(|l| l.is_from("PART", "pmbob"), TIMEOUT);
}

#[test]
#[ignore = "needs a NATS cluster: tools/cluster/run.sh"]
fn a_nick_race_across_nodes_has_exactly_one_winner() {
    let (a, b) = (node("race-a"), node("race-b"));
    for round in 0..5 {
        let nick = format!("racer{round}");
        let mut one = Client::connect(a.irc_addr());
        let mut two = Client::connect(b.irc_addr());
        let hello = format!("NICK {nick}\r\nUSER r 0 * :racer\r\n");
        one.send_raw(hello.as_bytes());
        two.send_raw(hello.as_bytes());
        let outcome = |c: &mut Client| c.expect(|l| l.is("001") || l.is("433"), TIMEOUT).command.clone();
        let results = [outcome(&mut one), outcome(&mut two)];
        let winners = results.iter().filter(|c| *c == "001").count();
        assert_eq!(winners, 1, "round {round}: {results:?}");
    }
    // A nick held on one node is refused on the other, before and after
    // registration.
    let mut holder = Client::connect(a.irc_addr());
    holder.register("raceholder");
    let mut other = Client::connect(b.irc_addr());
    other.send("NICK raceholder");
    other.expect(|l| l.is("433"), TIMEOUT);
    other.register("raceother");
    other.send("NICK RaceHolder");
    other.expect(|l| l.is("433"), TIMEOUT);
    // Given up, it is free everywhere.
    holder.send("NICK raceholder2");
    holder.expect(|l| l.is("NICK"), TIMEOUT);
    other.send("NICK raceholder");
    other.expect(|l| l.is("NICK") && l.param(0) == "raceholder", TIMEOUT);
}

#[test]
#[ignore = "needs a NATS cluster: tools/cluster/run.sh"]
fn names_on_each_of_three_nodes_lists_everyone_and_a_killed_nodes_users_quit() {
    let (a, b, c) = (node("names-a"), node("names-b"), node("names-c"));
    let mut clients = Vec::new();
    for (server, nick) in [(&a, "namesa"), (&b, "namesb"), (&c, "namesc")] {
        let mut client = Client::connect(server.irc_addr());
        client.register(nick);
        clients.push(client);
    }
    for client in &mut clients {
        wait_for_names(client, "#lobby", &["namesa", "namesb", "namesc"]);
    }
    // WHOIS answers for a user elsewhere.
    clients[0].send("WHOIS namesc");
    clients[0].expect(|l| l.is("311") && l.param(1) == "namesc", TIMEOUT);

    // kill -9 node c: its user is seen to quit within the node timeout.
    let mut c = c;
    let killed = Instant::now();
    c.kill();
    let within = Duration::from_secs(NODE_TIMEOUT_SECS * 2 + 2);
    for client in &mut clients[..2] {
        client.expect(|l| l.is_from("QUIT", "namesc"), within);
    }
    eprintln!("QUIT seen {:?} after kill -9 (node timeout {NODE_TIMEOUT_SECS} s)", killed.elapsed());
    // And its nick claim is free again.
    let mut again = Client::connect(b.irc_addr());
    again.register("namesc");
    wait_for_names(&mut clients[0], "#lobby", &["namesc"]);
}
