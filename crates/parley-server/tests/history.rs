//! History over real sockets to the real parleyd: CHATHISTORY pages, who
//! may read what, read markers between an account's connections, and what
//! survives a clean stop and a `kill -9` in the middle of a write storm.

mod chat;

use chat::{connect, history, said, search};
use parley_testkit::{Client, Line, Server, TIMEOUT};
use std::io::Write;

/// Relaxed flood limits, so a test can send quickly.
const FAST: &str = "[limits]\nflood_burst = 100000\nflood_lines_per_second = 100000.0\n";

#[test]
fn pages_come_in_order_without_duplicates_and_keep_msgid_and_time() {
    let server = Server::start_with(FAST);
    let mut a = connect(&server, "ann", false, &[]);
    let echoes: Vec<Line> = (0..30).map(|i| said(&mut a, "#lobby", &format!("m{i}"))).collect();
    let latest = history(&mut a, "LATEST #lobby * 10").unwrap();
    assert_eq!(latest, (20..30).map(|i| format!("m{i}")).collect::<Vec<_>>());
    // Back to the start, 10 at a time, each page before the first of the last.
    let mut all = latest;
    while let Some(first) = all.first().cloned() {
        let i: usize = first[1..].parse().unwrap();
        let msgid = echoes[i].tag("msgid").unwrap();
        let page = history(&mut a, &format!("BEFORE #lobby msgid={msgid} 10")).unwrap();
        if page.is_empty() {
            break;
        }
        all.splice(0..0, page);
    }
    assert_eq!(all, (0..30).map(|i| format!("m{i}")).collect::<Vec<_>>());
    // The replayed line carries the original msgid and time.
    a.send("CHATHISTORY LATEST #lobby * 1");
    let replayed = a.expect(|l| l.is("PRIVMSG"), TIMEOUT);
    assert_eq!(replayed.tag("msgid"), echoes[29].tag("msgid"));
    assert_eq!(replayed.tag("time"), echoes[29].tag("time"));
    assert!(replayed.tag("batch").is_some(), "{}", replayed.raw);
}

#[test]
fn only_members_and_the_two_parties_read_history() {
    let server = Server::start_with(FAST);
    for name in ["alice", "bob", "carol"] {
        server.add_account(name, &format!("pw-{name}"));
    }
    let mut alice = connect(&server, "alice", true, &[]);
    let mut bob = connect(&server, "bob", true, &[]);
    let mut carol = connect(&server, "carol", true, &[]);
    let mut guest = connect(&server, "guest", false, &[]);
    said(&mut alice, "bob", "a secret");
    alice.send("JOIN #club");
    alice.expect(|l| l.is("366"), TIMEOUT);
    carol.send("JOIN #club");
    carol.expect(|l| l.is("366"), TIMEOUT);
    said(&mut alice, "#club", "before carol left");
    carol.send("PART #club");
    carol.expect(|l| l.is("PART"), TIMEOUT);
    said(&mut alice, "#club", "after carol left");

    assert_eq!(history(&mut alice, "LATEST bob * 10").unwrap(), ["a secret"]);
    assert_eq!(history(&mut bob, "LATEST alice * 10").unwrap(), ["a secret"]);
    assert_eq!(history(&mut carol, "LATEST alice * 10").unwrap(), Vec::<String>::new(), "not her conversation");
    assert_eq!(history(&mut guest, "LATEST alice * 10"), Err("INVALID_TARGET".into()), "no account, no DMs");
    // A former member (an account) reads up to when she left; others nothing.
    assert_eq!(history(&mut carol, "LATEST #club * 10").unwrap(), ["before carol left"]);
    assert_eq!(history(&mut bob, "LATEST #club * 10"), Err("INVALID_TARGET".into()));
    assert_eq!(history(&mut guest, "LATEST #club * 10"), Err("INVALID_TARGET".into()));
    assert_eq!(history(&mut guest, "LATEST #nowhere * 10"), Err("INVALID_TARGET".into()));
    // Bad requests are refused, naming the problem.
    assert_eq!(history(&mut alice, "LATEST #club * 0"), Err("INVALID_PARAMS".into()));
    assert_eq!(history(&mut alice, "LATEST #club * 100000"), Err("INVALID_PARAMS".into()));
    assert_eq!(history(&mut alice, "BEFORE #club msgid=no;such 5"), Err("INVALID_PARAMS".into()));
    assert_eq!(history(&mut alice, "AFTER #club timestamp=soon 5"), Err("INVALID_PARAMS".into()));
    assert_eq!(history(&mut alice, "BEFORE #club msgid=unknown-1 5").unwrap(), Vec::<String>::new());

    // Search sees the same: alice finds all three, bob the secret only,
    // carol what she could read, the guest nothing of theirs.
    assert_eq!(search(&mut alice, "text=secret\\scarol").unwrap(), Vec::<String>::new());
    assert_eq!(search(&mut alice, "text=carol").unwrap(), ["before carol left", "after carol left"]);
    assert_eq!(search(&mut bob, "text=secret").unwrap(), ["a secret"]);
    assert_eq!(search(&mut carol, "text=carol").unwrap(), ["before carol left"]);
    assert_eq!(search(&mut carol, "text=secret").unwrap(), Vec::<String>::new());
    assert_eq!(search(&mut guest, "text=carol").unwrap(), Vec::<String>::new());
    assert_eq!(search(&mut guest, "text=carol;in=#club"), Err("INVALID_PARAMS".into()));
    assert_eq!(search(&mut alice, "text=x;limit=0"), Err("INVALID_PARAMS".into()));
}

#[test]
fn a_clean_stop_loses_nothing_queued() {
    // A long window: nothing is written until the stop.
    let server = Server::start_with(&format!("{FAST}[history]\nbatch_window_ms = 1000\n"));
    let mut a = connect(&server, "ann", false, &[]);
    for i in 0..200 {
        a.send(&format!("PRIVMSG #lobby :m{i}"));
    }
    a.expect(|l| l.is("PRIVMSG") && l.last() == "m199", TIMEOUT);
    let server = server.stop_and_restart();
    let mut a = connect(&server, "ann", false, &[]);
    let got = history(&mut a, "LATEST #lobby * 1000").unwrap();
    assert_eq!(got, (0..200).map(|i| format!("m{i}")).collect::<Vec<_>>());
}

#[test]
fn kill_9_in_a_write_storm_loses_at_most_the_unwritten_tail() {
    let server = Server::start_with(FAST);
    let mut a = connect(&server, "ann", false, &[]);
    for i in 0..1000 {
        a.send(&format!("PRIVMSG #lobby :m{i}"));
    }
    // CHATHISTORY waits for the writer: the first 1000 are committed.
    assert_eq!(history(&mut a, "LATEST #lobby * 1").unwrap(), ["m999"]);
    for i in 1000..3000 {
        a.send(&format!("PRIVMSG #lobby :m{i}"));
    }
    a.expect(|l| l.is("PRIVMSG") && l.last() == "m2999", TIMEOUT);
    let server = server.kill_and_restart();
    let mut a = connect(&server, "ann", false, &[]);
    let got = history(&mut a, "LATEST #lobby * 1000").unwrap();
    // Whatever survived is a gapless run ending no earlier than m999.
    let last: usize = got.last().unwrap()[1..].parse().unwrap();
    assert!(last >= 999, "committed messages were lost: last is m{last}");
    let expected: Vec<String> = (last + 1 - got.len()..=last).map(|i| format!("m{i}")).collect();
    assert_eq!(got, expected, "a gap in what survived");
    let db = rusqlite::Connection::open(server.data_dir().join("parley.db")).unwrap();
    let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
}

#[test]
fn a_read_marker_reaches_the_accounts_other_connections() {
    let server = Server::start_with("[accounts]\nnick_enforcement = \"off\"\n");
    server.add_account("dana", "pw-dana");
    let mut one = connect(&server, "dana", true, &["draft/read-marker"]);
    // A second connection of the account, under another nick.
    let mut two = Client::connect(server.irc_addr());
    two.send("CAP LS 302");
    two.send("NICK dana2");
    two.send("USER d 0 * :d");
    two.send("CAP REQ :sasl draft/read-marker");
    two.expect(|l| l.is("CAP") && l.param(1) == "ACK", TIMEOUT);
    two.send("AUTHENTICATE PLAIN");
    two.expect(|l| l.is("AUTHENTICATE"), TIMEOUT);
    {
        use base64::Engine;
        two.send(&format!("AUTHENTICATE {}", base64::engine::general_purpose::STANDARD.encode("dana\0dana\0pw-dana")));
    }
    two.expect(|l| l.is("903"), TIMEOUT);
    two.send("CAP END");
    two.expect(|l| l.is("366"), TIMEOUT);
    two.sync();
    one.send("MARKREAD #lobby timestamp=2024-01-01T00:00:00.000Z");
    let mine = one.expect(|l| l.is("MARKREAD"), TIMEOUT);
    assert_eq!(mine.param(1), "timestamp=2024-01-01T00:00:00.000Z");
    let theirs = two.expect(|l| l.is("MARKREAD"), TIMEOUT);
    assert_eq!((theirs.param(0), theirs.param(1)), ("#lobby", "timestamp=2024-01-01T00:00:00.000Z"));
    // And it is kept: a new connection of the account learns it at once.
    let server = server.stop_and_restart();
    let mut three = connect(&server, "dana", true, &["draft/read-marker"]);
    three.send("MARKREAD #lobby");
    let kept = three.expect(|l| l.is("MARKREAD"), TIMEOUT);
    assert_eq!(kept.param(1), "timestamp=2024-01-01T00:00:00.000Z");
}

#[test]
fn with_history_off_nothing_is_offered_or_kept() {
    let server = Server::start_with("[history]\nenabled = false\n");
    let mut c = Client::connect(server.irc_addr());
    c.send("CAP LS 302");
    let ls = c.expect(|l| l.is("CAP") && l.param(1) == "LS", TIMEOUT);
    assert!(!ls.last().contains("chathistory") && !ls.last().contains("read-marker"), "{}", ls.raw);
    c.send("CAP REQ draft/chathistory");
    c.expect(|l| l.is("CAP") && l.param(1) == "NAK", TIMEOUT);
    c.send("CAP END");
    c.register("off");
    c.send("CHATHISTORY LATEST #lobby * 10");
    c.expect(|l| l.is("421"), TIMEOUT);
    let db = rusqlite::Connection::open(server.data_dir().join("parley.db")).unwrap();
    let n: i64 = db.query_row("SELECT count(*) FROM history", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 0);
}

fn parleyd_history(server: &Server, args: &[&str]) -> String {
    let out = std::process::Command::new(parley_testkit::server::parleyd_bin())
        .arg("--data-dir")
        .arg(server.data_dir())
        .arg("history")
        .args(args)
        .output()
        .expect("parleyd history");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn an_account_exports_and_deletes_its_messages_and_an_operator_purges_a_channel() {
    let server = Server::start_with(FAST);
    for name in ["erin", "finn"] {
        server.add_account(name, &format!("pw-{name}"));
    }
    let mut erin = connect(&server, "erin", true, &[]);
    let mut finn = connect(&server, "finn", true, &[]);
    said(&mut erin, "#lobby", "erin's first word");
    said(&mut erin, "finn", "erin's private word");
    said(&mut finn, "#lobby", "finn's word");
    assert_eq!(history(&mut finn, "LATEST #lobby * 10").unwrap().len(), 2);
    let export: serde_json::Value = serde_json::from_str(&parleyd_history(&server, &["export", "erin"])).unwrap();
    let texts: Vec<&str> = export.as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["erin's first word", "erin's private word"]);
    assert_eq!(export[1]["target"], "finn");

    erin.send("HISTORY DELETE");
    let done = erin.expect(|l| l.is("HISTORY") || l.is("FAIL"), TIMEOUT);
    assert_eq!((done.command.as_str(), done.param(0), done.param(1)), ("HISTORY", "DELETE", "2"), "{}", done.raw);
    assert_eq!(history(&mut finn, "LATEST #lobby * 10").unwrap(), ["finn's word"]);
    assert_eq!(history(&mut finn, "LATEST erin * 10").unwrap(), Vec::<String>::new());
    assert_eq!(search(&mut finn, "text=word").unwrap(), ["finn's word"], "gone from search too");
    assert_eq!(parleyd_history(&server, &["export", "erin"]).trim(), "[]");

    // Purging is for operators.
    finn.send("HISTORY PURGE #lobby");
    let refused = finn.expect(|l| l.is("FAIL"), TIMEOUT);
    assert_eq!(refused.param(1), "NO_PRIVILEGES");
    finn.send(&format!("OPER {} {}", parley_testkit::ADMIN_NAME, parley_testkit::ADMIN_PASSWORD));
    finn.expect(|l| l.is("381"), TIMEOUT);
    finn.send("HISTORY PURGE #LOBBY");
    let purged = finn.expect(|l| l.is("HISTORY") || l.is("FAIL"), TIMEOUT);
    assert_eq!(purged.param(2), "1", "{}", purged.raw);
    assert_eq!(history(&mut finn, "LATEST #lobby * 10").unwrap(), Vec::<String>::new());
    // And a client joining the lobby is replayed nothing.
    let mut late = Client::connect(server.irc_addr());
    let burst = late.register("late");
    let after = late.sync();
    assert!(!burst.iter().chain(&after).any(|l| l.is("PRIVMSG")), "{}", parley_testkit::show(&after));
}

/// `GET path` with a bearer token, over a fresh connection: (status, body).
fn http_get(server: &Server, path: &str, token: &str) -> (u16, String) {
    use std::io::Read;
    let addr = server.http_addr().expect("the file store listens");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    let status = all.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = all.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

#[test]
fn an_account_exports_its_own_messages_over_http_with_its_token() {
    let server = Server::start_with(FAST);
    server.add_account("gale", "pw-gale");
    let mut gale = connect(&server, "gale", true, &[]);
    let mut guest = connect(&server, "guest", false, &[]);
    said(&mut gale, "#lobby", "for the record");
    said(&mut guest, "#lobby", "not gale's");
    gale.send("EXTJWT *");
    let token = gale.expect(|l| l.is("EXTJWT"), TIMEOUT).last().to_string();
    let (status, body) = http_get(&server, "/history/export", &token);
    assert_eq!(status, 200, "{body}");
    // The body may be chunked: find the JSON array in it.
    let json = &body[body.find('[').unwrap()..=body.rfind(']').unwrap()];
    let all: serde_json::Value = serde_json::from_str(json).unwrap();
    let texts: Vec<&str> = all.as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["for the record"]);
    guest.send("EXTJWT *");
    let token = guest.expect(|l| l.is("EXTJWT"), TIMEOUT).last().to_string();
    assert_eq!(http_get(&server, "/history/export", &token).0, 403, "no account, no export");
    assert_eq!(http_get(&server, "/history/export", "not-a-token").0, 401);
}
