//! Several parleyd nodes sharing one PostgreSQL for accounts and history
//! (docs/CLUSTER.md, "Accounts and history: PostgreSQL"): an account made
//! through one node logs in on another; history written through one node
//! is read through another, each message once; PostgreSQL lost while the
//! nodes run costs logins and the history written meanwhile, never chat.
//!
//! Ignored by a plain `cargo test`: they need the NATS cluster and
//! PostgreSQL that `tools/cluster/run.sh` starts (PARLEY_TEST_NATS_URLS,
//! PARLEY_TEST_POSTGRES_URL). PostgreSQL unreachable at start is
//! tests/postgres.rs's `an_unreachable_postgres_stops_the_start_naming_the_setting`.

mod chat;
mod relay;
mod store;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chat::{connect, history, said, scram_login, start_sasl};
use parley_testkit::{Client, Server, TIMEOUT};
use std::time::{Duration, Instant};

/// A node named `name` in the test NATS cluster, its store at `url` (an
/// empty `url`: SQLite in its data directory).
fn node(name: &str, url: &str, extra: &str) -> Server {
    let nats = std::env::var("PARLEY_TEST_NATS_URLS")
        .expect("PARLEY_TEST_NATS_URLS is not set: run these tests with tools/cluster/run.sh");
    let nats: Vec<String> = nats.split(',').map(|u| format!("{u:?}")).collect();
    let database =
        if url.is_empty() { String::new() } else { format!("[database]\nurl = \"{url}\"\nconnect_timeout_secs = 2\n") };
    Server::start_with(&format!(
        "{extra}\n[limits]\nflood_burst = 100000\nflood_lines_per_second = 100000.0\n{database}\
         [cluster]\nnats_urls = [{}]\nnode_name = \"{name}\"\nnode_timeout_secs = 4\nkv_replicas = 3\n\
         connect_timeout_secs = 18\n",
        nats.join(", ")
    ))
}

/// `base` with a suffix of this run's (nick claims outlive a run).
fn nick(base: &str) -> String {
    format!("{base}{}", std::process::id() % 10_000)
}

/// Waits (bounded) until `client` sees `nick` in the lobby.
fn wait_for_lobby(client: &mut Client, nick: &str) {
    wait_for_member(client, "#lobby", nick);
}

/// Waits (bounded) until `client`'s NAMES for `channel` lists `nick`.
fn wait_for_member(client: &mut Client, channel: &str, nick: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        client.send(&format!("NAMES {channel}"));
        let lines = client.collect_until(|l| l.is("366"), TIMEOUT);
        if lines.iter().any(|l| l.is("353") && l.last().split(' ').any(|n| n.trim_start_matches(['@', '+']) == nick)) {
            return;
        }
        assert!(Instant::now() < deadline, "{nick} never appeared in {channel}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A CHATHISTORY request's texts, asked again (bounded) until `done`
/// accepts them: another node writes its users' messages within its batch
/// window, so a reader elsewhere may be a batch early.
fn history_until(c: &mut Client, request: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let texts = history(c, request).expect("a CHATHISTORY batch");
        if done(&texts) || Instant::now() > deadline {
            return texts;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs NATS and PostgreSQL: tools/cluster/run.sh"]
fn an_account_registered_through_one_node_logs_in_on_another() {
    let url = store::fresh_url();
    let (a, b) = (node("store-acct-a", &url, ""), node("store-acct-b", &url, ""));
    let name = nick("storeacc");
    let mut maker = connect(&a, &name, false, &["draft/account-registration"]);
    maker.send("REGISTER * * pw-of-it");
    let answer = maker.expect(|l| l.is("REGISTER") || l.is("FAIL"), TIMEOUT);
    assert_eq!(answer.param(0), "SUCCESS", "{}", answer.raw);
    maker.send("QUIT");
    maker.expect_closed(TIMEOUT);
    // On node b: SCRAM and PLAIN, and a wrong password refused.
    assert_eq!(scram_login(&b, &nick("storescr"), &name, "pw-of-it").1, "903");
    assert_eq!(scram_login(&b, &nick("storebad"), &name, "wrong").1, "904");
}

#[test]
#[ignore = "needs NATS and PostgreSQL: tools/cluster/run.sh"]
fn history_written_through_one_node_is_read_through_another_once() {
    let url = store::fresh_url();
    let (a, b) = (node("store-hist-a", &url, ""), node("store-hist-b", &url, ""));
    let (an, bn) = (nick("sha"), nick("shb"));
    // Accounts named like the nicks, password pw-<nick> (`connect`'s rule).
    a.add_account(&an, &format!("pw-{an}"));
    a.add_account(&bn, &format!("pw-{bn}"));
    let mut alice = connect(&a, &an, true, &[]);
    let mut bob = connect(&b, &bn, true, &[]);
    wait_for_lobby(&mut alice, &bn);
    wait_for_lobby(&mut bob, &an);
    let texts: Vec<String> = (0..5).map(|i| format!("from node a {i}")).collect();
    for text in &texts {
        said(&mut alice, "#lobby", text);
    }
    said(&mut bob, "#lobby", "from node b");
    said(&mut alice, &bn, "a private word");
    bob.expect(|l| l.is("PRIVMSG") && l.last() == "a private word", TIMEOUT);
    // Through node b: each of node a's lines once, in its order, and b's
    // own (pages are ordered by time, then by when a node wrote them: two
    // nodes' lines in one millisecond may come in either order).
    let mut all = texts.clone();
    all.push("from node b".into());
    let in_order = |seen: &[String]| {
        let mut sorted = seen.to_vec();
        sorted.sort();
        let mut expected = all.clone();
        expected.sort();
        assert_eq!(sorted, expected, "each message once: {seen:?}");
        let from_a: Vec<&String> = seen.iter().filter(|t| t.starts_with("from node a")).collect();
        assert_eq!(from_a, texts.iter().collect::<Vec<_>>(), "node a's in the order sent");
    };
    in_order(&history_until(&mut bob, "LATEST #lobby * 50", |t| t.len() >= all.len()));
    let private = history_until(&mut bob, &format!("LATEST {an} * 10"), |t| !t.is_empty());
    assert_eq!(private, ["a private word"]);
    // And through node a, the same.
    in_order(&history_until(&mut alice, "LATEST #lobby * 50", |t| t.len() >= all.len()));
    assert_eq!(history(&mut alice, &format!("LATEST {bn} * 10")).unwrap(), ["a private word"]);

    // A read marker set through node a is known on node b at the next
    // login there (node b read the markers at its start, before this one).
    let at = "timestamp=2025-06-01T12:00:00.000Z";
    let mut setter = login_with_markers(&a, &nick("shs"), &an);
    setter.send(&format!("MARKREAD #lobby {at}"));
    assert_eq!(setter.expect(|l| l.is("MARKREAD"), TIMEOUT).param(1), at);
    history(&mut setter, "LATEST #lobby * 1").unwrap(); // node a's writer has written it
    let mut reader = login_with_markers(&b, &nick("shr"), &an);
    reader.send("MARKREAD #lobby");
    assert_eq!(reader.expect(|l| l.is("MARKREAD"), TIMEOUT).param(1), at);
}

/// A client named `nick` logged in (SASL PLAIN) to `account`, password
/// `pw-<account>`, with `draft/read-marker` and the history capabilities.
fn login_with_markers(server: &Server, nick: &str, account: &str) -> Client {
    let mut c = start_sasl(server, nick, "PLAIN");
    c.expect(|l| l.is("AUTHENTICATE"), TIMEOUT);
    c.send(&format!("CAP REQ :draft/read-marker {}", chat::CAPS.join(" ")));
    c.expect(|l| l.is("CAP") && l.param(1) == "ACK", TIMEOUT);
    c.send(&format!("AUTHENTICATE {}", B64.encode(format!("{account}\0{account}\0pw-{account}"))));
    c.expect(|l| l.is("903"), TIMEOUT);
    c.send("CAP END");
    c.expect(|l| l.is("366") && l.param(1) == "#lobby", TIMEOUT);
    c.sync();
    c
}

#[test]
#[ignore = "needs NATS and PostgreSQL: tools/cluster/run.sh"]
fn postgres_lost_while_running_costs_logins_and_that_history_never_chat() {
    let url = store::fresh_url();
    let relay = relay::Relay::to(store::postgres_addr());
    // Node a reaches PostgreSQL through the relay; node b directly.
    let a = node("store-lost-a", &store::through(&relay, &url), "[history]\nbatch_window_ms = 20\n");
    let b = node("store-lost-b", &url, "");
    let (an, bn) = (nick("sla"), nick("slb"));
    a.add_account(&an, &format!("pw-{an}"));
    let mut alice = connect(&a, &an, true, &[]);
    let mut bob = connect(&b, &bn, false, &[]);
    wait_for_lobby(&mut alice, &bn);
    wait_for_lobby(&mut bob, &an);
    said(&mut alice, "#lobby", "before the loss");
    let kept = history_until(&mut bob, "LATEST #lobby * 50", |t| !t.is_empty());
    assert_eq!(kept, ["before the loss"], "written before the loss");

    relay.cut();
    // A login and a registration through node a get a clear failure.
    let mut late = start_sasl(&a, &nick("slc"), "PLAIN");
    late.expect(|l| l.is("AUTHENTICATE"), TIMEOUT);
    late.send(&format!("AUTHENTICATE {}", B64.encode(format!("{an}\0{an}\0pw-{an}"))));
    let refused = late.expect(|l| l.is("904") || l.is("903"), TIMEOUT);
    assert!(refused.is("904") && refused.last().contains("unavailable"), "{}", refused.raw);
    let mut newcomer = connect(&a, &nick("sln"), false, &["draft/account-registration"]);
    newcomer.send("REGISTER * * a-password");
    let fail = newcomer.expect(|l| l.is("FAIL") || l.is("REGISTER"), TIMEOUT);
    assert_eq!((fail.command.as_str(), fail.param(0), fail.param(1)), ("FAIL", "REGISTER", "TEMPORARILY_UNAVAILABLE"));
    // Chat goes on across the nodes (whether this line is kept depends on
    // whether its batch is tried before PostgreSQL is back: a batch tried
    // while it is unreachable is lost, counted and logged).
    said(&mut alice, "#lobby", "during the loss");
    bob.expect(|l| l.is("PRIVMSG") && l.last() == "during the loss", TIMEOUT);

    relay.mend();
    // History resumes by itself: a message sent once the pool has a
    // connection again is kept (tried every half second, bounded), and what
    // was written before the loss is still there.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    loop {
        let text = format!("after the loss {n}");
        said(&mut alice, "#lobby", &text);
        std::thread::sleep(Duration::from_millis(500));
        let seen = history(&mut bob, "LATEST #lobby * 100").unwrap();
        if seen.contains(&text) {
            assert_eq!(seen[0], "before the loss", "{seen:?}");
            break;
        }
        assert!(Instant::now() < deadline, "history did not resume: {seen:?}");
        n += 1;
    }
    // And logins work again through node a.
    assert_eq!(scram_login(&a, &nick("sld"), &an, &format!("pw-{an}")).1, "903");
}

#[test]
#[ignore = "needs NATS and PostgreSQL: tools/cluster/run.sh"]
fn with_a_store_of_its_own_each_node_keeps_what_is_relayed_in() {
    // No [database]: each node has its own SQLite, so each records the
    // messages relayed in from the other too.
    let (a, b) = (node("store-own-a", "", ""), node("store-own-b", "", ""));
    let (an, bn) = (nick("soa"), nick("sob"));
    a.add_account(&an, &format!("pw-{an}"));
    b.add_account(&bn, &format!("pw-{bn}"));
    let mut alice = connect(&a, &an, true, &[]);
    let mut bob = connect(&b, &bn, true, &[]);
    wait_for_lobby(&mut alice, &bn);
    wait_for_lobby(&mut bob, &an);
    // A channel of this test's own: other tests speak in the lobby, which
    // these nodes would record too.
    let room = format!("#{}", nick("soroom"));
    alice.send(&format!("JOIN {room}"));
    alice.expect(|l| l.is("366"), TIMEOUT);
    bob.send(&format!("JOIN {room}"));
    bob.expect(|l| l.is("366"), TIMEOUT);
    // Node a has applied bob's JOIN once it tells alice, who is in the room.
    alice.expect(|l| l.is_from("JOIN", &bn), TIMEOUT);
    said(&mut alice, &room, "said on a");
    bob.expect(|l| l.is("PRIVMSG") && l.last() == "said on a", TIMEOUT);
    said(&mut bob, &room, "said on b");
    // Before alice speaks again: `said` reads up to her own echo and would
    // pass over bob's line if it came first.
    alice.expect(|l| l.is("PRIVMSG") && l.last() == "said on b", TIMEOUT);
    said(&mut alice, &bn, "a private word from a");
    bob.expect(|l| l.is("PRIVMSG") && l.last() == "a private word from a", TIMEOUT);
    for c in [&mut alice, &mut bob] {
        let seen = history(c, &format!("LATEST {room} * 100")).unwrap();
        assert_eq!(seen, ["said on a", "said on b"], "{seen:?}");
    }
    assert_eq!(history(&mut bob, &format!("LATEST {an} * 10")).unwrap(), ["a private word from a"]);
    assert_eq!(history(&mut alice, &format!("LATEST {bn} * 10")).unwrap(), ["a private word from a"]);
}
