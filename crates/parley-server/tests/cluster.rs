//! Several parleyd nodes as one chat over a NATS cluster (docs/CLUSTER.md).
//!
//! Ignored by a plain `cargo test`: they need a NATS cluster with
//! JetStream. `tools/cluster/run.sh` starts one on loopback and runs them
//! with `--ignored`, giving its URLs in `PARLEY_TEST_NATS_URLS`. The tests
//! share that NATS cluster (and so its lobby and nick claims), so each one
//! uses node names and nicks of its own.

mod relay;

use parley_testkit::{Client, Line, Server, TIMEOUT};
use relay::Relay;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
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
    node_via(name, &nats_urls())
}

/// A parleyd node named `name` that reaches NATS at `urls` only.
fn node_via(name: &str, urls: &[String]) -> Server {
    node_with(name, urls, "")
}

/// The same with more configuration (`extra`, TOML sections of its own).
/// Nodes get 18 s to reach NATS (the default is 10; the testkit waits 20
/// s for the readiness line): three NATS servers
/// with replicated JetStream and several debug nodes share two cores
/// here, and one CI run saw a start take longer than 10 s.
fn node_with(name: &str, urls: &[String], extra: &str) -> Server {
    let urls: Vec<String> = urls.iter().map(|u| format!("{u:?}")).collect();
    Server::start_with(&format!(
        "{extra}\n[cluster]\nnats_urls = [{}]\nnode_name = \"{name}\"\nnode_timeout_secs = {NODE_TIMEOUT_SECS}\nkv_replicas = 3\nconnect_timeout_secs = 18\n",
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

fn privmsg_from<'a>(nick: &'a str, text: &'a str) -> impl Fn(&Line) -> bool + 'a {
    move |l: &Line| l.is_from("PRIVMSG", nick) && l.last() == text
}

/// `base` with a suffix of this run's: nick claims outlive a run (a killed
/// node's until the node timeout has passed), and runs follow each other.
fn nick(base: &str) -> String {
    format!("{base}{}", std::process::id() % 10_000)
}

/// Runs without NATS: a node that cannot reach it refuses to start, and
/// says where it looked.
#[test]
fn a_node_that_cannot_reach_nats_refuses_to_start_naming_the_key() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("parleyd.toml");
    let toml =
        format!("[cluster]\nnats_urls = [\"nats://{closed}\"]\nnode_name = \"lonely\"\nconnect_timeout_secs = 1\n");
    std::fs::write(&config, toml).unwrap();
    let started = Instant::now();
    let out = std::process::Command::new(parley_testkit::server::parleyd_bin())
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--irc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .env("PARLEY_ADMIN_PASSWORD", parley_testkit::ADMIN_PASSWORD)
        .output()
        .expect("running parleyd");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it started: {stderr}");
    assert!(stderr.contains("cannot reach NATS") && stderr.contains("cluster.nats_urls"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("parleyd ready"));
    assert!(started.elapsed() < Duration::from_secs(5), "bounded by connect_timeout_secs");
}

#[test]
#[ignore = "needs a NATS cluster: tools/cluster/run.sh"]
fn clients_on_different_nodes_share_the_lobby_both_ways_with_one_msgid() {
    let (a, b) = (node("lobby-a"), node("lobby-b"));
    let (an, bn) = (nick("lobalice"), nick("lobbob"));
    let mut alice = Client::connect(a.irc_addr());
    alice.register_with_caps(&an, &["message-tags", "echo-message"]);
    let mut bob = Client::connect(b.irc_addr());
    bob.register_with_caps(&bn, &["message-tags"]);
    wait_for_names(&mut alice, "#lobby", &[&an, &bn]);
    wait_for_names(&mut bob, "#lobby", &[&an, &bn]);

    alice.send("PRIVMSG #lobby :hello from a");
    let echo = alice.expect(privmsg_from(&an, "hello from a"), TIMEOUT);
    let got = bob.expect(privmsg_from(&an, "hello from a"), TIMEOUT);
    assert!(echo.tag("msgid").is_some(), "{}", echo.raw);
    assert_eq!(got.tag("msgid"), echo.tag("msgid"), "one msgid on both nodes");

    bob.send("PRIVMSG #lobby :and back from b");
    alice.expect(privmsg_from(&bn, "and back from b"), TIMEOUT);
    // Once: nothing more of it reaches bob (no echo without echo-message).
    bob.expect_none(|l| l.is("PRIVMSG") && l.last() == "hello from a", "a second copy");
}

#[test]
#[ignore = "needs a NATS cluster: tools/cluster/run.sh"]
fn a_private_message_crosses_nodes_and_a_channel_made_on_one_node_is_joined_from_another() {
    let (a, b) = (node("pm-a"), node("pm-b"));
    let (an, bn) = (nick("pmalice"), nick("pmbob"));
    let mut alice = Client::connect(a.irc_addr());
    alice.register(&an);
    let mut bob = Client::connect(b.irc_addr());
    bob.register(&bn);
    wait_for_names(&mut alice, "#lobby", &[&bn]);
    alice.send(&format!("PRIVMSG {bn} :psst"));
    bob.expect(privmsg_from(&an, "psst"), TIMEOUT);
    bob.send(&format!("PRIVMSG {} :heard you", an.to_uppercase()));
    alice.expect(privmsg_from(&bn, "heard you"), TIMEOUT);

    let room = format!("#{}", nick("room"));
    alice.send(&format!("JOIN {room}"));
    alice.expect(|l| l.is("366"), TIMEOUT);
    wait_for_names(&mut bob, &room, &[&an]);
    bob.send(&format!("JOIN {room}"));
    alice.expect(|l| l.is_from("JOIN", &bn), TIMEOUT);
    bob.send(&format!("PRIVMSG {room} :in the room"));
    alice.expect(privmsg_from(&bn, "in the room"), TIMEOUT);
    bob.send(&format!("PART {room} :bye"));
    alice.expect(|l| l.is_from("PART", &bn), TIMEOUT);
}

#[test]
#[ignore = "needs a NATS cluster: tools/cluster/run.sh"]
fn a_nick_race_across_nodes_has_exactly_one_winner() {
    let (a, b) = (node("race-a"), node("race-b"));
    for round in 0..5 {
        let racer = nick(&format!("racer{round}x"));
        let mut one = Client::connect(a.irc_addr());
        let mut two = Client::connect(b.irc_addr());
        let hello = format!("NICK {racer}\r\nUSER r 0 * :racer\r\n");
        one.send_raw(hello.as_bytes());
        two.send_raw(hello.as_bytes());
        let outcome = |c: &mut Client| c.expect(|l| l.is("001") || l.is("433"), TIMEOUT).command.clone();
        let results = [outcome(&mut one), outcome(&mut two)];
        let winners = results.iter().filter(|c| *c == "001").count();
        assert_eq!(winners, 1, "round {round}: {results:?}");
    }
    // A nick held on one node is refused on the other, before and after
    // registration.
    let (held, other_nick) = (nick("holder"), nick("other"));
    let mut holder = Client::connect(a.irc_addr());
    holder.register(&held);
    let mut other = Client::connect(b.irc_addr());
    other.send(&format!("NICK {held}"));
    other.expect(|l| l.is("433"), TIMEOUT);
    other.register(&other_nick);
    other.send(&format!("NICK {}", held.to_uppercase()));
    other.expect(|l| l.is("433"), TIMEOUT);
    // Given up, it is free everywhere.
    holder.send(&format!("NICK {held}x"));
    holder.expect(|l| l.is("NICK"), TIMEOUT);
    other.send(&format!("NICK {held}"));
    other.expect(|l| l.is("NICK") && l.param(0) == held, TIMEOUT);
}

#[test]
#[ignore = "needs a NATS cluster: tools/cluster/run.sh"]
fn names_on_each_of_three_nodes_lists_everyone_and_a_killed_nodes_users_quit() {
    let (a, b, c) = (node("names-a"), node("names-b"), node("names-c"));
    let nicks = [nick("namesa"), nick("namesb"), nick("namesc")];
    let all: Vec<&str> = nicks.iter().map(String::as_str).collect();
    let mut clients = Vec::new();
    for (server, nick) in [(&a, &nicks[0]), (&b, &nicks[1]), (&c, &nicks[2])] {
        let mut client = Client::connect(server.irc_addr());
        client.register(nick);
        clients.push(client);
    }
    for client in &mut clients {
        wait_for_names(client, "#lobby", &all);
    }
    // WHOIS answers for a user elsewhere.
    clients[0].send(&format!("WHOIS {}", nicks[2]));
    clients[0].expect(|l| l.is("311") && l.param(1) == nicks[2], TIMEOUT);
    // LUSERS counts the cluster, and this node's own clients apart.
    clients[0].send("LUSERS");
    let servers = clients[0].expect(|l| l.is("251"), TIMEOUT);
    assert!(servers.last().contains("servers") && !servers.last().ends_with(" 1 servers"), "{}", servers.raw);
    let me = clients[0].expect(|l| l.is("255"), TIMEOUT);
    assert!(me.last().starts_with("I have 1 clients"), "{}", me.raw);

    // kill -9 node c: its user is seen to quit within the node timeout
    // (and a second of slack for a loaded machine).
    let mut c = c;
    let killed = Instant::now();
    c.kill();
    let within = Duration::from_secs(NODE_TIMEOUT_SECS + 1);
    for client in &mut clients[..2] {
        client.expect(|l| l.is_from("QUIT", &nicks[2]), within);
    }
    let took = killed.elapsed();
    eprintln!("QUIT seen {took:?} after kill -9 (node timeout {NODE_TIMEOUT_SECS} s)");
    assert!(took <= within, "{took:?}");
    // And its nick claim is free again.
    let mut again = Client::connect(b.irc_addr());
    again.register(&nicks[2]);
    wait_for_names(&mut clients[0], "#lobby", &[&nicks[2]]);
}

/// The stock client `ii` (Debian's package; tools/test.sh installs it),
/// killed when dropped.
struct Ii(Child);

impl Drop for Ii {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One line into one of ii's `in` FIFOs; opening blocks until ii reads it,
/// so it happens on a helper thread, bounded.
fn write_fifo(path: &Path, line: &str) {
    let (tx, rx) = std::sync::mpsc::channel();
    let (path, text) = (path.to_path_buf(), format!("{line}\n"));
    std::thread::spawn(move || {
        let wrote = std::fs::OpenOptions::new().write(true).open(&path).and_then(|mut f| f.write_all(text.as_bytes()));
        let _ = tx.send(wrote);
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("writing to ii's FIFO: {e}"),
        Err(_) => panic!("ii did not open its FIFO within {TIMEOUT:?}"),
    }
}

#[test]
#[ignore = "needs a NATS cluster: tools/cluster/run.sh"]
fn the_stock_client_ii_on_one_node_talks_with_a_client_on_another() {
    let ii_path = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("ii"))
        .find(|p| p.is_file())
        .expect("the stock client ii is not installed (apt-get install ii; tools/test.sh does)");
    let (a, b) = (node("ii-a"), node("ii-b"));
    let (ii_nick, native_nick) = (nick("iibot"), nick("native"));
    let mut native = Client::connect(b.irc_addr());
    native.register(&native_nick);
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(ii_path)
        .args(["-s", "127.0.0.1", "-p", &a.irc_addr().port().to_string(), "-n", &ii_nick, "-f", "Stock ii"])
        .arg("-i")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting ii");
    let _ii = Ii(child);
    // ii registered on node a and was auto-joined to the lobby: node b's
    // client sees the JOIN.
    native.expect(|l| l.is_from("JOIN", &ii_nick) && l.param(0) == "#lobby", TIMEOUT);
    let lobby = dir.path().join("127.0.0.1").join("#lobby");
    let out = lobby.join("out");
    parley_testkit::wait_for_file(dir.path(), &out, "ii's lobby log", |t| t.contains(&ii_nick), TIMEOUT);

    write_fifo(&lobby.join("in"), "hello across nodes");
    native.expect(privmsg_from(&ii_nick, "hello across nodes"), TIMEOUT);
    native.send("PRIVMSG #lobby :and back to ii");
    let want = format!("<{native_nick}> and back to ii");
    parley_testkit::wait_for_file(
        dir.path(),
        &out,
        "the reply at ii",
        |t| t.lines().any(|l| l.ends_with(&want)),
        TIMEOUT,
    );
}

/// `GET path` from a NATS server's monitoring port, the body.
fn monitoring(addr: &str, path: &str) -> String {
    use std::io::Read;
    let Ok(mut conn) = std::net::TcpStream::connect(addr) else { return String::new() };
    let _ = conn.set_read_timeout(Some(TIMEOUT));
    let _ = conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes());
    let mut body = String::new();
    let _ = conn.read_to_string(&mut body);
    body
}

/// Sends numbered `text` lines to the lobby from `from` until `to` hears
/// one (bounded: 20 s).
fn until_heard(from: &mut Client, to: &mut Client, nick: &str, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for n in 0.. {
        from.send(&format!("PRIVMSG #lobby :{text} {n}"));
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(200));
            if to.sync().iter().any(|l| l.is_from("PRIVMSG", nick) && l.last().starts_with(text)) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{nick}'s lines never reached the other node");
    }
}

/// Run last and alone by tools/cluster/run.sh, which gives the NATS
/// servers' process ids and monitoring addresses.
#[test]
#[ignore = "needs a NATS cluster it may kill a server of: tools/cluster/run.sh"]
fn one_nats_server_of_three_dies_and_chat_goes_on() {
    let env_list = |key: &str| -> Vec<String> {
        std::env::var(key)
            .unwrap_or_else(|_| panic!("{key} is not set: run with tools/cluster/run.sh"))
            .split(',')
            .map(str::to_string)
            .collect()
    };
    let (pids, monitors) = (env_list("PARLEY_TEST_NATS_PIDS"), env_list("PARLEY_TEST_NATS_MONITORS"));
    let (a, b) = (node("natsdie-a"), node("natsdie-b"));
    let (an, bn) = (nick("dieann"), nick("diebea"));
    let mut ann = Client::connect(a.irc_addr());
    ann.register(&an);
    let mut bea = Client::connect(b.irc_addr());
    bea.register(&bn);
    wait_for_names(&mut ann, "#lobby", &[&an, &bn]);
    wait_for_names(&mut bea, "#lobby", &[&an, &bn]);

    // The NATS server node a is connected to dies.
    let server = monitors
        .iter()
        .position(|m| monitoring(m, "/connz?limit=4096").contains("parleyd natsdie-a"))
        .expect("no NATS server lists node a's connection");
    let killed = Instant::now();
    let status = Command::new("kill").args(["-9", &pids[server]]).status().expect("running kill");
    assert!(status.success(), "kill -9 {}", pids[server]);

    // Chat goes on both ways once the nodes have reconnected to another
    // server (a line sent while they reconnect may be lost: core NATS is
    // at most once, docs/CLUSTER.md).
    until_heard(&mut ann, &mut bea, &an, "still here?");
    until_heard(&mut bea, &mut ann, &bn, "still here.");
    // Nick claims go on: JetStream keeps a quorum with two servers of three.
    let mut late = Client::connect(a.irc_addr());
    late.register(&nick("dielate"));
    // And for longer than a node timeout nobody is seen to quit.
    let until = killed + Duration::from_secs(NODE_TIMEOUT_SECS + 1);
    while Instant::now() < until {
        for client in [&mut ann, &mut bea] {
            let lines = client.expect_none(|l| l.is("QUIT"), "a QUIT after a NATS server died");
            assert!(lines.iter().all(|l| !l.is("QUIT")));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let seen = names(&mut ann, "#lobby");
    assert!(seen.contains(&bn), "{seen:?}");
}

#[test]
#[ignore = "needs a NATS cluster: tools/cluster/run.sh"]
fn a_node_cut_off_from_nats_keeps_its_users_says_so_and_rejoins_without_ghosts() {
    let urls = nats_urls();
    let upstream: std::net::SocketAddr = urls[0].trim_start_matches("nats://").parse().unwrap();
    let relay = Relay::to(upstream);
    let a = node_via("split-a", &[format!("nats://{}", relay.addr)]);
    let (b, c) = (node("split-b"), node("split-c"));
    let (an, an2, bn) = (nick("splitann"), nick("splitamy"), nick("splitbea"));
    let mut ann = Client::connect(a.irc_addr());
    ann.register(&an);
    let mut amy = Client::connect(a.irc_addr());
    amy.register(&an2);
    let mut bea = Client::connect(b.irc_addr());
    bea.register(&bn);
    let _watcher = Client::connect(c.irc_addr());
    wait_for_names(&mut bea, "#lobby", &[&an, &an2, &bn]);
    wait_for_names(&mut ann, "#lobby", &[&an, &an2, &bn]);

    relay.cut();
    // Node a says so, and goes on serving its own users.
    ann.expect(|l| l.is("NOTICE") && l.last().contains("lost contact"), TIMEOUT);
    ann.send("PRIVMSG #lobby :only node a hears this");
    amy.expect(privmsg_from(&an, "only node a hears this"), TIMEOUT);
    // Each side sees the other's users quit within the node timeout.
    let within = Duration::from_secs(NODE_TIMEOUT_SECS + 2);
    bea.expect(|l| l.is_from("QUIT", &an), within);
    ann.expect(|l| l.is_from("QUIT", &bn), within);

    relay.mend();
    // Back: the NOTICE, and everyone is seen again, once.
    ann.expect(|l| l.is("NOTICE") && l.last().contains("back in contact"), Duration::from_secs(30));
    bea.expect(|l| l.is_from("JOIN", &an), TIMEOUT);
    wait_for_names(&mut bea, "#lobby", &[&an, &an2, &bn]);
    wait_for_names(&mut ann, "#lobby", &[&an, &an2, &bn]);
    for client in [&mut ann, &mut bea] {
        let seen = names(client, "#lobby");
        for n in [&an, &an2, &bn] {
            assert_eq!(seen.iter().filter(|s| *s == n).count(), 1, "{n} once in {seen:?}");
        }
    }
    ann.send("PRIVMSG #lobby :together again");
    bea.expect(privmsg_from(&an, "together again"), TIMEOUT);
    bea.send(&format!("PRIVMSG {an2} :welcome back"));
    amy.expect(privmsg_from(&bn, "welcome back"), TIMEOUT);
}

#[test]
#[ignore = "needs a NATS cluster: tools/cluster/run.sh"]
fn ten_thousand_messages_cross_nodes_in_order_none_lost_or_doubled() {
    const COUNT: usize = 10_000;
    let urls = nats_urls();
    let a = node_with("order-a", &urls, parley_testkit::NO_FLOOD_LIMIT);
    let b = node("order-b");
    let (sn, rn) = (nick("ordsend"), nick("ordrecv"));
    let mut sender = Client::connect(a.irc_addr());
    sender.register(&sn);
    let mut receiver = Client::connect(b.irc_addr());
    receiver.register(&rn);
    let room = format!("#{}", nick("order"));
    receiver.send(&format!("JOIN {room}"));
    receiver.expect(|l| l.is("366"), TIMEOUT);
    wait_for_names(&mut sender, &room, &[&rn]);
    sender.send(&format!("JOIN {room}"));
    receiver.expect(|l| l.is_from("JOIN", &sn), TIMEOUT);

    let started = Instant::now();
    let mut batch = String::new();
    for i in 0..COUNT {
        batch.push_str(&format!("PRIVMSG {room} :m{i}\r\n"));
        if batch.len() > 16_000 {
            sender.send_raw(std::mem::take(&mut batch).as_bytes());
        }
    }
    sender.send_raw(batch.as_bytes());
    sender.send(&format!("PRIVMSG {room} :done"));
    let lines = receiver.collect_until(|l| l.is("PRIVMSG") && l.last() == "done", Duration::from_secs(60));
    // Only the sender's lines: other tests' nodes share the lobby, not the room, but a stray line must not count.
    let got: Vec<&str> =
        lines.iter().filter(|l| l.is_from("PRIVMSG", &sn) && l.last() != "done").map(|l| l.last()).collect();
    assert_eq!(got.len(), COUNT, "every message once");
    for (i, text) in got.iter().enumerate() {
        assert_eq!(*text, format!("m{i}"), "in the order sent");
    }
    eprintln!("{COUNT} messages across nodes in {:?} (debug build)", started.elapsed());
}

#[test]
#[ignore = "needs a NATS cluster: tools/cluster/run.sh"]
fn a_restarted_node_is_seen_at_once_its_old_users_quit_and_its_nicks_are_free() {
    let (a, b) = (node("restart-a"), node("restart-b"));
    let (an, bn) = (nick("rsann"), nick("rsbea"));
    let mut ann = Client::connect(a.irc_addr());
    ann.register(&an);
    let mut bea = Client::connect(b.irc_addr());
    bea.register(&bn);
    wait_for_names(&mut bea, "#lobby", &[&an]);

    // Killed and back under the same name at once: node b hears the new
    // incarnation, so ann quits there without waiting for the timeout.
    let restarted = Instant::now();
    let a = a.kill_and_restart();
    let quit = bea.expect(|l| l.is_from("QUIT", &an), TIMEOUT);
    assert!(quit.last().contains("restarted"), "{}", quit.raw);
    // Her nick is free again, on the new node a too.
    let mut again = Client::connect(a.irc_addr());
    again.register(&an);
    bea.expect(|l| l.is_from("JOIN", &an), TIMEOUT);
    eprintln!("restart seen and nick taken again after {:?}", restarted.elapsed());
    wait_for_names(&mut again, "#lobby", &[&an, &bn]);
}

/// `client` as an operator (the seed's administrator).
fn oper(client: &mut Client) {
    client.send(&format!("OPER {} {}", parley_testkit::ADMIN_NAME, parley_testkit::ADMIN_PASSWORD));
    client.expect(|l| l.is("381"), TIMEOUT);
}

/// The numeric `client` gets for `line` (one of `codes`), or the line.
fn answer(client: &mut Client, line: &str, codes: &[&str]) -> Line {
    client.send(line);
    client.expect(|l| codes.iter().any(|c| l.is(c)), TIMEOUT)
}

/// `MODE channel` as `client` sees it: the 324 reply's modes and params.
fn modes_of(client: &mut Client, channel: &str) -> String {
    client.send(&format!("MODE {channel}"));
    let l = client.expect(|l| l.is("324"), TIMEOUT);
    let raw = l.raw.clone();
    raw.split_once(&format!("{channel} ")).map(|(_, m)| m.to_string()).unwrap_or(raw)
}

#[test]
#[ignore = "needs a NATS cluster: tools/cluster/run.sh"]
fn channel_modes_bans_keys_limits_and_invites_hold_on_every_node() {
    let (a, b) = (node("modes-a"), node("modes-b"));
    let (an, bn, cn, dn) = (nick("mdann"), nick("mdbea"), nick("mdcat"), nick("mddan"));
    let room = format!("#{}", nick("modes"));
    let mut ann = Client::connect(a.irc_addr());
    ann.register(&an);
    let mut bea = Client::connect(b.irc_addr());
    bea.register_with_caps(&bn, &["invite-notify"]);
    let mut cat = Client::connect(b.irc_addr());
    cat.register(&cn);
    let mut dan = Client::connect(b.irc_addr());
    dan.register(&dn);
    ann.send(&format!("JOIN {room}"));
    ann.expect(|l| l.is("366"), TIMEOUT);
    wait_for_names(&mut bea, &room, &[&an]);
    bea.send(&format!("JOIN {room}"));
    ann.expect(|l| l.is_from("JOIN", &bn), TIMEOUT);

    // +m on node a: bea on node b sees the MODE line and may not speak
    // until voiced from node a.
    ann.send(&format!("MODE {room} +m"));
    bea.expect(|l| l.is_from("MODE", &an) && l.param(1) == "+m", TIMEOUT);
    let refused = answer(&mut bea, &format!("PRIVMSG {room} :muted?"), &["404"]);
    assert!(refused.last().contains("+m"), "{}", refused.raw);
    ann.send(&format!("MODE {room} +v {bn}"));
    bea.expect(|l| l.is_from("MODE", &an) && l.param(1) == "+v" && l.param(2) == bn, TIMEOUT);
    bea.send(&format!("PRIVMSG {room} :voiced"));
    ann.expect(privmsg_from(&bn, "voiced"), TIMEOUT);

    // An operator on node a ops a user of node b, who can then change
    // modes from there.
    ann.send(&format!("MODE {room} +o {bn}"));
    bea.expect(|l| l.is_from("MODE", &an) && l.param(1) == "+o", TIMEOUT);
    bea.send(&format!("MODE {room} -m+b {cn}!*@*"));
    ann.expect(|l| l.is_from("MODE", &bn) && l.param(1) == "-m+b", TIMEOUT);

    // The ban holds on node b (a new member there), the key and limit too.
    answer(&mut cat, &format!("JOIN {room}"), &["474"]);
    ann.send(&format!("MODE {room} -b+k {cn}!*@* sesame"));
    bea.expect(|l| l.is_from("MODE", &an) && l.param(1) == "-b+k", TIMEOUT);
    answer(&mut cat, &format!("JOIN {room}"), &["475"]);
    cat.send(&format!("JOIN {room} sesame"));
    cat.expect(|l| l.is("366"), TIMEOUT);
    ann.expect(|l| l.is_from("JOIN", &cn), TIMEOUT);
    // +l counts the members of every node: three now.
    ann.send(&format!("MODE {room} -k+l 3"));
    cat.expect(|l| l.is_from("MODE", &an) && l.param(1) == "-k+l", TIMEOUT);
    answer(&mut dan, &format!("JOIN {room}"), &["471"]);
    // Both nodes show the same modes.
    assert_eq!(modes_of(&mut ann, &room), modes_of(&mut bea, &room));

    // +i, and an invitation from node a lets dan (node b) in past +i and
    // +l; bea, with invite-notify, sees it.
    ann.send(&format!("MODE {room} +i"));
    bea.expect(|l| l.is_from("MODE", &an) && l.param(1) == "+i", TIMEOUT);
    answer(&mut dan, &format!("JOIN {room}"), &["473"]);
    answer(&mut ann, &format!("INVITE {dn} {room}"), &["341"]);
    dan.expect(|l| l.is_from("INVITE", &an) && l.param(1) == room, TIMEOUT);
    bea.expect(|l| l.is_from("INVITE", &an) && l.param(0) == dn, TIMEOUT);
    dan.send(&format!("JOIN {room}"));
    dan.expect(|l| l.is("366"), TIMEOUT);
    ann.expect(|l| l.is_from("JOIN", &dn), TIMEOUT);

    // An operator on node a kicks a user of node b.
    ann.send(&format!("KICK {room} {cn} :out"));
    cat.expect(|l| l.is_from("KICK", &an) && l.param(1) == cn, TIMEOUT);
    dan.expect(|l| l.is_from("KICK", &an) && l.param(1) == cn, TIMEOUT);
    wait_until_names_lack(&mut bea, &room, &cn);

    // Two operators on two nodes set different keys at once: both nodes
    // end with the same one (the later change by time, then node name).
    ann.send(&format!("MODE {room} +k from-a"));
    bea.send(&format!("MODE {room} +k from-b"));
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let (on_a, on_b) = (modes_of(&mut ann, &room), modes_of(&mut bea, &room));
        if on_a == on_b && (on_a.contains("from-a") || on_a.contains("from-b")) {
            break;
        }
        assert!(Instant::now() < deadline, "the nodes disagree: {on_a} / {on_b}");
        std::thread::sleep(Duration::from_millis(50));
    }
    ann.send(&format!("MODE {room} -k"));
    bea.expect(|l| l.is_from("MODE", &an) && l.param(1) == "-k", TIMEOUT);

    // A node started now learns the modes from the snapshots.
    let c = node("modes-c");
    let mut eve = Client::connect(c.irc_addr());
    eve.register(&nick("mdeve"));
    wait_for_names(&mut eve, &room, &[&an, &bn, &dn]);
    let deadline = Instant::now() + TIMEOUT;
    let want = modes_of(&mut ann, &room);
    while modes_of(&mut eve, &room).split(' ').next() != want.split(' ').next() {
        assert!(Instant::now() < deadline, "node c never showed {want}");
        std::thread::sleep(Duration::from_millis(50));
    }
    answer(&mut eve, &format!("JOIN {room}"), &["473"]);
}

/// Waits (bounded) until `client`'s NAMES for `channel` no longer lists
/// `nick`.
fn wait_until_names_lack(client: &mut Client, channel: &str, nick: &str) {
    let deadline = Instant::now() + TIMEOUT;
    while names(client, channel).iter().any(|n| n == nick) {
        assert!(Instant::now() < deadline, "{nick} stayed in NAMES {channel}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs a NATS cluster: tools/cluster/run.sh"]
fn away_setname_invisible_and_kill_reach_users_of_other_nodes() {
    let (a, b) = (node("user-a"), node("user-b"));
    let (an, bn) = (nick("usann"), nick("usbea"));
    let mut ann = Client::connect(a.irc_addr());
    ann.register(&an);
    let mut bea = Client::connect(b.irc_addr());
    bea.register_with_caps(&bn, &["away-notify", "setname", "account-notify", "extended-join"]);
    wait_for_names(&mut bea, "#lobby", &[&an]);

    // AWAY: away-notify, WHOIS 301 and WHO's G on the other node.
    ann.send("AWAY :lunch");
    bea.expect(|l| l.is_from("AWAY", &an) && l.last() == "lunch", TIMEOUT);
    bea.send(&format!("WHOIS {an}"));
    let away = bea.expect(|l| l.is("301"), TIMEOUT);
    assert_eq!(away.last(), "lunch");
    bea.send(&format!("WHO {an}"));
    let who = bea.expect(|l| l.is("352"), TIMEOUT);
    assert!(who.param(6).starts_with('G'), "{}", who.raw);
    ann.send("AWAY");
    bea.expect(|l| l.is_from("AWAY", &an) && l.params.is_empty(), TIMEOUT);

    // SETNAME.
    ann.send("SETNAME :Ann of Node A");
    bea.expect(|l| l.is_from("SETNAME", &an) && l.last() == "Ann of Node A", TIMEOUT);

    // Logging in (an account made on node a): account-notify on node b,
    // and extended-join shows the account and realname there.
    ann.send("PRIVMSG NickServ :REGISTER a-good-password");
    ann.expect(|l| l.is("900"), TIMEOUT);
    bea.expect(|l| l.is_from("ACCOUNT", &an) && l.param(0) == an, TIMEOUT);
    let room = format!("#{}", nick("usroom"));
    bea.send(&format!("JOIN {room}"));
    bea.expect(|l| l.is("366"), TIMEOUT);
    wait_for_names(&mut ann, &room, &[&bn]);
    ann.send(&format!("JOIN {room}"));
    let joined = bea.expect(|l| l.is_from("JOIN", &an), TIMEOUT);
    assert_eq!((joined.param(1), joined.last()), (an.as_str(), "Ann of Node A"), "{}", joined.raw);

    // +i counts as invisible on the other node too.
    let invisible = |c: &mut Client| -> String {
        c.send("LUSERS");
        c.expect(|l| l.is("251"), TIMEOUT).last().to_string()
    };
    let before = invisible(&mut bea);
    ann.send(&format!("MODE {an} +i"));
    ann.expect(|l| l.is("MODE"), TIMEOUT);
    let deadline = Instant::now() + TIMEOUT;
    while invisible(&mut bea) == before {
        assert!(Instant::now() < deadline, "+i never counted on node b: {before}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // KILL of a user of node b by an operator on node a: node b closes it
    // with the reason, and node a sees the QUIT.
    oper(&mut ann);
    // Shown as an operator on node b (WHOIS 313); its rights stay on a.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        bea.send(&format!("WHOIS {an}"));
        let lines = bea.collect_until(|l| l.is("318"), TIMEOUT);
        if lines.iter().any(|l| l.is("313")) {
            break;
        }
        assert!(Instant::now() < deadline, "node b never showed {an} as an operator");
        std::thread::sleep(Duration::from_millis(50));
    }
    ann.send(&format!("KILL {bn} :enough"));
    ann.expect(|l| l.is("NOTICE") && l.last().contains("Killed"), TIMEOUT);
    let closing = bea.expect_closed(TIMEOUT);
    assert!(closing.iter().any(|l| l.is("ERROR") && l.last().contains("enough")), "{closing:?}");
    let quit = ann.expect(|l| l.is_from("QUIT", &bn), TIMEOUT);
    assert!(quit.last().contains("enough"), "{}", quit.raw);
}

/// The count `client`'s LUSERS gives in `numeric` (251: users in the
/// cluster, 255: this node's own clients), the first number in its text.
fn luser_count(client: &mut Client, numeric: &str) -> usize {
    client.send("LUSERS");
    let line = client.expect(|l| l.is(numeric), TIMEOUT);
    line.last().split(' ').find_map(|w| w.parse().ok()).unwrap_or(0)
}

#[test]
#[ignore = "needs a NATS cluster: tools/cluster/run.sh"]
fn a_restarted_node_sees_every_one_of_five_thousand_users_through_a_snapshot_in_parts() {
    const USERS: usize = 5_000;
    let urls = nats_urls();
    let a = node_with("bulk-a", &urls, "[limits]\nmax_connections_per_ip = 6000\n");
    let b = node("bulk-b");
    let mut watcher = Client::connect(a.irc_addr());
    watcher.register(&nick("bkwatch"));
    // Raw connections that register and then sit still (their welcome
    // fits the socket buffers; the test ends long before a PING is due).
    let base = nick("bk");
    // Realnames of 120 bytes: the whole snapshot is then about 1.5 MB.
    let realname = "a bulk user of the snapshot test ".repeat(4)[..120].to_string();
    let started = Instant::now();
    let mut conns = Vec::with_capacity(USERS);
    for i in 0..USERS {
        let mut conn = std::net::TcpStream::connect(a.irc_addr()).expect("connecting a bulk user");
        conn.write_all(format!("NICK {base}x{i}\r\nUSER b 0 * :{realname}\r\n").as_bytes()).unwrap();
        conns.push(conn);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while luser_count(&mut watcher, "255") < USERS + 1 {
        assert!(Instant::now() < deadline, "the {USERS} users never all registered on node a");
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("{USERS} users registered on node a in {:?}", started.elapsed());

    // Node b restarts: it asks node a for a snapshot, far above NATS's 1 MB
    // message limit in one piece, and lists everyone.
    let restarted = Instant::now();
    let b = b.kill_and_restart();
    let mut bea = Client::connect(b.irc_addr());
    bea.register(&nick("bkbea"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = names(&mut bea, "#lobby");
        let bulk = seen.iter().filter(|n| n.starts_with(&format!("{base}x"))).count();
        if bulk == USERS {
            break;
        }
        assert!(Instant::now() < deadline, "node b lists {bulk} of the {USERS} users");
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("node b listed all {USERS} users {:?} after its restart", restarted.elapsed());
    assert!(luser_count(&mut bea, "251") >= USERS + 2, "LUSERS counts them all");
    drop(conns);
}

#[test]
#[ignore = "needs a NATS cluster: tools/cluster/run.sh"]
fn a_nick_taken_on_both_sides_of_a_split_is_kept_by_one_and_the_other_becomes_a_guest() {
    let urls = nats_urls();
    let upstream: std::net::SocketAddr = urls[0].trim_start_matches("nats://").parse().unwrap();
    let relay = Relay::to(upstream);
    let a = node_via("clash-a", &[format!("nats://{}", relay.addr)]);
    let b = node("clash-b");
    let (contested, kept, bn) = (nick("clashx"), nick("clashkeep"), nick("clashbea"));
    let mut ann = Client::connect(a.irc_addr());
    ann.register(&contested);
    let mut bea = Client::connect(b.irc_addr());
    bea.register(&bn);
    wait_for_names(&mut bea, "#lobby", &[&contested, &bn]);

    relay.cut();
    ann.expect(|l| l.is("NOTICE") && l.last().contains("lost contact"), TIMEOUT);
    let within = Duration::from_secs(NODE_TIMEOUT_SECS + 2);
    bea.expect(|l| l.is_from("QUIT", &contested), within);
    // Node b takes node a for dead: its claim on ann's nick is free there.
    let mut twin = Client::connect(b.irc_addr());
    twin.register(&contested);
    // Node a, cut off, checks a new nick against its own users only.
    let mut amy = Client::connect(a.irc_addr());
    amy.register(&kept);

    relay.mend();
    ann.expect(|l| l.is("NOTICE") && l.last().contains("back in contact"), Duration::from_secs(30));
    // Within a node timeout of the return, ann loses the nick the bucket
    // gives the twin, with a NOTICE saying why; amy keeps hers.
    let renamed = ann.expect(|l| l.is("NICK"), Duration::from_secs(NODE_TIMEOUT_SECS + 10));
    let guest = renamed.param(0).to_string();
    assert!(guest.starts_with("Guest"), "{}", renamed.raw);
    let notice = ann.expect(|l| l.is("NOTICE") && l.last().contains(&guest), TIMEOUT);
    assert!(notice.last().contains(&contested), "{}", notice.raw);
    amy.expect_none(|l| l.is_from("NICK", &kept), "amy renamed");

    // Everyone agrees: the contested nick is the twin's on both nodes,
    // and ann speaks as the guest.
    wait_for_names(&mut bea, "#lobby", &[&guest, &contested, &kept, &bn]);
    for client in [&mut amy, &mut bea] {
        client.send(&format!("WHOIS {contested}"));
        let whois = client.expect(|l| l.is("311"), TIMEOUT);
        assert_eq!(whois.param(1), contested);
    }
    amy.send(&format!("PRIVMSG {contested} :are you the twin?"));
    twin.expect(privmsg_from(&kept, "are you the twin?"), TIMEOUT);
    ann.send("PRIVMSG #lobby :still me");
    bea.expect(privmsg_from(&guest, "still me"), TIMEOUT);
    ann.send(&format!("NICK {guest}x"));
    ann.expect(|l| l.is("NICK") && l.param(0) == format!("{guest}x"), TIMEOUT);
}
