//! Messages: the lobby broadcast, echo-message and server-time, private
//! messages, the "no silent loss" promise under volume, the SendQ cut for a
//! reader that cannot keep up, and the quiet crowded lobby.

use parley_testkit::numeric::*;
use parley_testkit::{show, Client, Line, Server, NO_FLOOD_LIMIT, TIMEOUT};
use std::sync::mpsc;
use std::time::Duration;

fn is_privmsg(l: &Line, from: &str, text: &str) -> bool {
    l.is_from("PRIVMSG", from) && l.last() == text
}

#[test]
fn lobby_message_reaches_every_other_member_but_not_the_sender() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    let mut carol = Client::registered(server.irc_addr(), "carol");

    alice.send("PRIVMSG #lobby :hello everyone");
    for reader in [&mut bob, &mut carol] {
        let got = reader.expect(|l| l.is_from("PRIVMSG", "alice"), TIMEOUT);
        assert_eq!(got.source.as_deref(), Some("alice!~alice@127.0.0.1"));
        assert_eq!(got.params, ["#lobby", "hello everyone"]);
        assert!(got.tags.is_empty(), "no tags without server-time or message-tags: {}", got.raw);
    }
    alice.expect_none(|l| l.is("PRIVMSG"), "copy of her own message without echo-message");
}

#[test]
fn echo_message_sends_the_sender_its_own_message_and_server_time_tags_it() {
    let server = Server::start();
    let mut alice = Client::connect(server.irc_addr());
    alice.register_with_caps("alice", &["echo-message"]);
    let mut bob = Client::connect(server.irc_addr());
    bob.register_with_caps("bob", &["server-time"]);
    let mut carol = Client::registered(server.irc_addr(), "carol");

    alice.send("PRIVMSG #lobby :echoed");
    let echo = alice.expect(|l| l.is("PRIVMSG"), TIMEOUT);
    assert_eq!(echo.source.as_deref(), Some("alice!~alice@127.0.0.1"));
    assert_eq!(echo.params, ["#lobby", "echoed"]);

    let timed = bob.expect(|l| is_privmsg(l, "alice", "echoed"), TIMEOUT);
    let time = timed.tag("time").unwrap_or_else(|| panic!("no time tag: {}", timed.raw));
    // The exact format has its own test below; here: a UTC date and time.
    assert!(time.len() >= 20 && time.as_bytes()[10] == b'T' && time.ends_with('Z'), "{time}");

    let plain = carol.expect(|l| is_privmsg(l, "alice", "echoed"), TIMEOUT);
    assert!(plain.tags.is_empty(), "carol asked for no capabilities: {}", plain.raw);
}

/// `YYYY-MM-DDThh:mm:ss.sssZ`, as the IRCv3 server-time spec requires.
fn is_server_time(t: &str) -> bool {
    let b = t.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.into_iter().all(|i| b[i].is_ascii_digit());
    b.len() == 24
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..23)
        && b[23] == b'Z'
}

#[test]
fn server_time_tags_always_have_exactly_three_millisecond_digits() {
    // Many PINGs in a row: lift flood control so the throttle does not pace them.
    let server = Server::start_with(parley_testkit::NO_FLOOD_LIMIT);
    let mut c = Client::connect(server.irc_addr());
    c.register_with_caps("timer", &["server-time"]);
    // A tenth of all milliseconds end in 0; a hundred distinct ones make
    // missing every such case vanishingly unlikely.
    let mut distinct = std::collections::HashSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while distinct.len() < 100 && std::time::Instant::now() < deadline {
        c.send("PING :t");
        let pong = c.expect(|l| l.is("PONG"), TIMEOUT);
        let time = pong.tag("time").unwrap_or_else(|| panic!("no time tag: {}", pong.raw)).to_string();
        assert!(is_server_time(&time), "server-time tag is not YYYY-MM-DDThh:mm:ss.sssZ: {time}");
        distinct.insert(time);
    }
    assert!(distinct.len() >= 100, "only {} distinct timestamps within the deadline", distinct.len());
}

#[test]
fn private_message_reaches_only_its_recipient_and_unknown_nick_gets_401() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    let mut carol = Client::registered(server.irc_addr(), "carol");

    alice.send("PRIVMSG Bob :just for you");
    let got = bob.expect(|l| l.is_from("PRIVMSG", "alice"), TIMEOUT);
    assert_eq!(got.params, ["Bob", "just for you"]);
    bob.send("NOTICE alice :and a notice back");
    let got = alice.expect(|l| l.is_from("NOTICE", "bob"), TIMEOUT);
    assert_eq!(got.params, ["alice", "and a notice back"]);
    carol.expect_none(|l| l.is("PRIVMSG") || l.is("NOTICE"), "copy of a private message");

    alice.send("PRIVMSG nobody :hello?");
    let reply = alice.expect(|l| l.is(ERR_NOSUCHNICK), TIMEOUT);
    assert_eq!(reply.params[..2], ["alice", "nobody"]);
    // NOTICE never gets an error reply.
    alice.send("NOTICE nobody :hello?");
    alice.expect_none(|l| l.is(ERR_NOSUCHNICK), "401 for a NOTICE");
}

#[test]
fn message_to_several_targets_reaches_each_once_and_too_many_targets_get_407() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    let mut carol = Client::registered(server.irc_addr(), "carol");
    alice.send("PRIVMSG bob,carol,BOB :to both");
    for c in [&mut bob, &mut carol] {
        c.expect(|l| is_privmsg(l, "alice", "to both"), TIMEOUT);
        c.expect_none(|l| l.is("PRIVMSG"), "a second copy");
    }
    // ISUPPORT TARGMAX=PRIVMSG:4 by default.
    alice.send("PRIVMSG a,b,c,d,e :too many");
    alice.expect(|l| l.is("407"), TIMEOUT);
}

#[test]
fn tagmsg_with_client_tags_reaches_only_message_tags_clients() {
    let server = Server::start();
    let mut alice = Client::connect(server.irc_addr());
    alice.register_with_caps("alice", &["message-tags"]);
    let mut bob = Client::connect(server.irc_addr());
    bob.register_with_caps("bob", &["message-tags"]);
    let mut carol = Client::registered(server.irc_addr(), "carol");

    alice.send("@+draft/react=yes;+example/x=1 TAGMSG #lobby");
    let got = bob.expect(|l| l.is_from("TAGMSG", "alice"), TIMEOUT);
    assert_eq!(got.tag("+draft/react"), Some("yes"), "{}", got.raw);
    assert_eq!(got.tag("+example/x"), Some("1"), "{}", got.raw);
    assert!(got.tag("msgid").is_some_and(|id| !id.is_empty()), "no msgid: {}", got.raw);
    carol.expect_none(|l| l.is("TAGMSG"), "TAGMSG for a client without message-tags");

    // Client tags ride along on PRIVMSG too, but only for those who asked.
    alice.send("@+draft/reply=abc PRIVMSG #lobby :tagged");
    let tagged = bob.expect(|l| is_privmsg(l, "alice", "tagged"), TIMEOUT);
    assert_eq!(tagged.tag("+draft/reply"), Some("abc"), "{}", tagged.raw);
    let plain = carol.expect(|l| is_privmsg(l, "alice", "tagged"), TIMEOUT);
    assert!(plain.tags.is_empty(), "{}", plain.raw);
}

/// Reads `count` numbered messages from `from` and checks they are
/// complete and in order; returns how many it read.
fn read_numbered(reader: &mut Client, from: &str, count: usize) -> usize {
    let mut next = 0usize;
    while next < count {
        let line = reader.expect(|l| l.is_from("PRIVMSG", from), TIMEOUT);
        let expected = format!("message {next} of {count}");
        assert_eq!(line.last(), expected, "{}: message out of order or damaged", reader.nick);
        next += 1;
    }
    next
}

#[test]
fn ten_thousand_lobby_messages_arrive_complete_and_in_order_at_two_readers() {
    const COUNT: usize = 10_000;
    let server = Server::start_with(NO_FLOOD_LIMIT);
    let mut sender = Client::registered(server.irc_addr(), "sender");
    let readers: Vec<_> = ["reader1", "reader2"]
        .into_iter()
        .map(|nick| {
            let mut reader = Client::registered(server.irc_addr(), nick);
            std::thread::spawn(move || {
                let read = read_numbered(&mut reader, "sender", COUNT);
                (read, reader)
            })
        })
        .collect();
    // The readers' JOINs, so that only replies to the flood remain.
    sender.sync();
    let mut batch = String::new();
    for i in 0..COUNT {
        batch.push_str(&format!("PRIVMSG #lobby :message {i} of {COUNT}\r\n"));
        if batch.len() > 32 * 1024 {
            sender.send_raw(batch.as_bytes());
            batch.clear();
        }
    }
    sender.send_raw(batch.as_bytes());
    // The readers stay connected until the sender's check below.
    let mut connected = Vec::new();
    for reader in readers {
        let (read, client) = reader.join().expect("reader thread");
        assert_eq!(read, COUNT);
        connected.push(client);
    }
    // Nothing was refused along the way.
    let replies = sender.sync();
    assert!(replies.is_empty(), "the sender got replies:\n{}", show(&replies));
}

/// `rounds` private messages from alice to bob, each answered before the
/// next is sent; every one arrives, in order. Returns the two clients.
fn private_ping_pong(server: &Server, rounds: usize) -> (Client, Client) {
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    for i in 0..rounds {
        let ping = format!("ping {i}");
        alice.send(&format!("PRIVMSG bob :{ping}"));
        bob.expect(|l| is_privmsg(l, "alice", &ping), TIMEOUT);
        let pong = format!("pong {i}");
        bob.send(&format!("PRIVMSG alice :{pong}"));
        alice.expect(|l| is_privmsg(l, "bob", &pong), TIMEOUT);
    }
    (alice, bob)
}

/// A process's CPU time so far, user and system, from `/proc` (in clock
/// ticks of 10 ms: USER_HZ is 100 on Linux).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("reading /proc/PID/stat");
    // Fields after the command name, which may hold spaces: state is the
    // third field, utime and stime the 14th and 15th.
    let fields: Vec<&str> = stat.rsplit_once(") ").expect("stat format").1.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

#[test]
fn quick_answers_all_arrive_and_the_busy_polling_server_rests_once_they_stop() {
    // The default runtime: one thread, polling for input for a while after
    // input instead of sleeping (`limits.busy_poll_us`).
    let server = Server::start_with(&format!("{NO_FLOOD_LIMIT}ping_interval_secs = 1\n"));
    let (mut alice, _bob) = private_ping_pong(&server, 1_000);
    // Once the clients pause, the polling must stop by itself. The server's
    // own PING, sent when alice has been quiet for a second, ends the quiet
    // spell; over it the server uses next to no CPU (a spin that went on
    // would use all of it).
    let before = cpu_time(server.pid());
    let quiet = std::time::Instant::now();
    alice.expect(|l| l.is("PING"), TIMEOUT);
    let (used, quiet) = (cpu_time(server.pid()) - before, quiet.elapsed());
    assert!(quiet >= Duration::from_millis(900), "the PING came after {quiet:?}, before a quiet second");
    assert!(used <= quiet / 5, "the idle server used {used:?} of CPU in {quiet:?}");
}

#[test]
fn private_messages_arrive_in_order_on_the_multi_threaded_runtime_too() {
    let server = Server::start_with(&format!("{NO_FLOOD_LIMIT}worker_threads = 0\n"));
    let _clients = private_ping_pong(&server, 300);
}

#[test]
fn reader_that_never_reads_is_cut_at_the_sendq_limit_while_another_gets_everything() {
    // 64 KiB SendQ; each relayed line is about 240 bytes.
    let server = Server::start_with(&format!("{NO_FLOOD_LIMIT}sendq_bytes = 65536\n"));
    let mut sender = Client::registered(server.irc_addr(), "sender");
    let mut good = Client::registered(server.irc_addr(), "good");
    // Registers, then never reads again.
    let slow = Client::registered(server.irc_addr(), "slow");
    sender.sync();

    // The good reader reports its progress after every batch; the sender
    // stays at most two batches (100 lines, about 23 KB) ahead of it. The
    // server counts a batch it is writing against the SendQ until the whole
    // batch is written, even the part the reader already has, so what it
    // counts can reach twice that window: still under the 64 KiB SendQ.
    // Only a reader that stops reading falls further behind. The reader
    // also reports when it sees the slow client's QUIT.
    const BATCH: usize = 50;
    let (progress_tx, progress_rx) = mpsc::channel::<Progress>();
    let reader = std::thread::spawn(move || {
        let mut next = 0usize;
        let mut reported = 0usize;
        loop {
            let line =
                good.expect(|l| l.is_from("PRIVMSG", "sender") || l.is_from("QUIT", "slow"), Duration::from_secs(30));
            if line.is("QUIT") {
                assert_eq!(line.last(), "SendQ exceeded", "{}", line.raw);
                let _ = progress_tx.send(Progress::SlowCut);
                continue;
            }
            if let Some(total) = line.last().strip_prefix("end ") {
                assert_eq!(total.parse::<usize>().ok(), Some(next), "{}", line.raw);
                return next;
            }
            let number = line.last().split(' ').next().and_then(|n| n.parse::<usize>().ok());
            assert_eq!(number, Some(next), "message out of order or damaged: {}", line.raw);
            next += 1;
            if next == reported + BATCH {
                reported = next;
                let _ = progress_tx.send(Progress::Read(next));
            }
        }
    });

    // Loopback buffers hold a few MB for a reader that does not read; the
    // bound is far beyond that.
    const MAX_MESSAGES: usize = 200_000;
    let filler = "x".repeat(180);
    let mut sent = 0;
    let mut read = 0;
    let mut cut_at = None;
    while sent < MAX_MESSAGES && cut_at.is_none_or(|at| sent < at + 2 * BATCH) {
        while sent >= read + 2 * BATCH {
            match progress_rx.recv_timeout(Duration::from_secs(30)) {
                Ok(Progress::Read(n)) => read = n,
                Ok(Progress::SlowCut) => cut_at = cut_at.or(Some(sent)),
                Err(e) => panic!("the good reader stalled at {read} of {sent} messages ({e})"),
            }
        }
        let mut batch = String::with_capacity(BATCH * 200);
        for _ in 0..BATCH {
            batch.push_str(&format!("PRIVMSG #lobby :{sent} {filler}\r\n"));
            sent += 1;
        }
        sender.send_raw(batch.as_bytes());
    }
    sender.send(&format!("PRIVMSG #lobby :end {sent}"));
    let received = reader.join().expect("the good reader");
    assert!(cut_at.is_some(), "the slow reader was never cut, after {sent} messages");
    assert_eq!(received, sent);
    // The sender saw the cut too.
    let quit = sender.expect(|l| l.is_from("QUIT", "slow"), TIMEOUT);
    assert_eq!(quit.last(), "SendQ exceeded");

    drop(slow);
    let mut server = server;
    server.stop();
    let log = server.log_text();
    let limit = log
        .lines()
        .find(|l| l.contains(" limit ") && l.contains("what=\"sendq\""))
        .unwrap_or_else(|| panic!("no sendq limit event in the activity log:\n{log}"));
    assert!(limit.contains("nick=\"slow\""), "{limit}");
}

enum Progress {
    Read(usize),
    SlowCut,
}

#[test]
fn crowded_lobby_does_not_announce_joins_but_still_delivers_messages_and_lists_everyone() {
    let server = Server::start_with("[irc]\nquiet_lobby_above = 5\n");
    let nicks: Vec<String> = (1..=8).map(|i| format!("user{i}")).collect();
    let mut clients: Vec<Client> = Vec::new();
    let mut last_burst = Vec::new();
    for nick in &nicks {
        let mut c = Client::connect(server.irc_addr());
        last_burst = c.register(nick);
        clients.push(c);
    }
    // user6 to user8 joined a lobby of more than five: their joins were
    // not announced to the first members (registration is complete, so the
    // joins have been handled; the barrier proves nothing is queued)...
    for early in &mut clients[..5] {
        early.expect_none(
            |l| l.is("JOIN") && ["user6", "user7", "user8"].contains(&l.nick()),
            "JOIN announced in the crowded lobby",
        );
    }
    // ...and the NAMES on user8's join listed only user8 (and operators).
    let names: Vec<&str> = last_burst.iter().filter(|l| l.is(RPL_NAMREPLY)).flat_map(|l| l.last().split(' ')).collect();
    assert_eq!(names, ["user8"]);
    // A message still reaches all other seven members...
    clients[7].send("PRIVMSG #lobby :hello from the eighth");
    for other in &mut clients[..7] {
        other.expect(|l| is_privmsg(l, "user8", "hello from the eighth"), TIMEOUT);
    }
    // ...and one from the first member reaches the eighth.
    clients[0].send("PRIVMSG #lobby :hello from the first");
    clients[7].expect(|l| is_privmsg(l, "user1", "hello from the first"), TIMEOUT);

    // An explicit NAMES lists all eight.
    clients[0].send("NAMES #lobby");
    let lines = clients[0].collect_until(|l| l.is(RPL_ENDOFNAMES), TIMEOUT);
    let mut listed: Vec<String> = lines
        .iter()
        .filter(|l| l.is(RPL_NAMREPLY))
        .flat_map(|l| l.last().split(' ').map(|n| n.trim_start_matches(['@', '+']).to_string()).collect::<Vec<_>>())
        .collect();
    listed.sort();
    assert_eq!(listed, nicks);
}
