//! A cluster's shared file store (docs/CLUSTER.md, "The file store"), and
//! the cluster-wide commands: real parleyd nodes over the NATS cluster that
//! `tools/cluster/run.sh` starts, their `files` directory one shared temp
//! directory, spoken to over real HTTP and IRC.
//!
//! Ignored by a plain `cargo test` (they need NATS); the script runs them
//! with `--ignored`, giving the NATS URLs in `PARLEY_TEST_NATS_URLS`. Each
//! test uses node names and nicks of its own.

#[allow(dead_code)] // what the other test files use of it
mod support;

use parley_testkit::{Client, Server, TIMEOUT};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use support::http::{abandon_upload, download_hashed, request, start_partial_upload, upload_pattern, Response};

fn nats_urls() -> Vec<String> {
    let urls = std::env::var("PARLEY_TEST_NATS_URLS")
        .expect("PARLEY_TEST_NATS_URLS is not set: run these tests with tools/cluster/run.sh");
    urls.split(',').map(str::to_string).collect()
}

/// A node named `name` whose file store is the directory `files`, with
/// more configuration in `extra` (TOML sections of its own).
fn node(name: &str, files: &Path, extra: &str) -> Server {
    let urls: Vec<String> = nats_urls().iter().map(|u| format!("{u:?}")).collect();
    Server::start_with(&format!(
        "{extra}\n[files]\ndir = {:?}\n[cluster]\nnats_urls = [{}]\nnode_name = \"{name}\"\nnode_timeout_secs = 4\nkv_replicas = 3\nconnect_timeout_secs = 18\n",
        files.display().to_string(),
        urls.join(", ")
    ))
}

/// `base` with a suffix of this run's (nick claims outlive a run).
fn nick(base: &str) -> String {
    format!("{base}{}", std::process::id() % 10_000)
}

/// A registered IRC user of one node with a file-store token of that node.
struct User {
    irc: Client,
    token: String,
    http: SocketAddr,
}

impl User {
    fn new(server: &Server, nick: &str) -> User {
        let mut irc = Client::registered(server.irc_addr(), nick);
        irc.send("EXTJWT *");
        let token = irc.expect(|l| l.is("EXTJWT"), TIMEOUT).last().to_string();
        User { irc, token, http: server.http_addr().expect("a file store") }
    }

    fn auth(&self) -> Vec<(&'static str, String)> {
        vec![("Authorization", format!("Bearer {}", self.token))]
    }

    fn put(&self, name: &str, body: &[u8]) -> Response {
        request(self.http, "PUT", &format!("/files/{name}"), &self.auth(), Some(body))
    }

    fn get(&self, name: &str) -> Response {
        request(self.http, "GET", &format!("/files/{name}"), &self.auth(), None)
    }

    fn list(&self) -> Vec<String> {
        let r = request(self.http, "GET", "/files", &self.auth(), None);
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        let files = v.get("files").unwrap_or(&v).as_array().cloned().unwrap_or_default();
        files.iter().filter_map(|f| f["name"].as_str().map(str::to_string)).collect()
    }
}

fn shared_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("parley-shared-files-").tempdir().unwrap()
}

#[test]
#[ignore = "needs a NATS cluster: tools/cluster/run.sh"]
fn a_file_uploaded_through_one_node_is_the_same_file_on_every_node() {
    let files = shared_dir();
    let (a, b, c) = (node("cf-a", files.path(), ""), node("cf-b", files.path(), ""), node("cf-c", files.path(), ""));
    let mut ua = User::new(&a, &nick("cfanna"));
    let mut ub = User::new(&b, &nick("cfbert"));
    let uc = User::new(&c, &nick("cfcara"));

    // 3 MB through a: byte-identical through b, listed on c at once.
    let (r, sent) = upload_pattern(ua.http, "/files/big.bin", &ua.auth(), 3 << 20, 7);
    assert_eq!(r.status, 201, "{}", r.text());
    let (got, n, digest) = download_hashed(ub.http, "/files/big.bin", &ub.auth());
    assert_eq!((got.status, n, digest), (200, 3 << 20, sent), "byte-identical through b");
    assert!(uc.list().contains(&"big.bin".to_string()), "c lists it");
    // The lobby notice reaches b's users as well as a's.
    let notice = |l: &parley_testkit::Line| l.is("NOTICE") && l.last().contains("uploaded big.bin");
    ua.irc.expect(notice, TIMEOUT);
    ub.irc.expect(notice, TIMEOUT);

    // Overwritten through b: a serves the new version.
    assert_eq!(ub.put("note.txt", b"first").status, 201);
    assert_eq!(ua.get("note.txt").body, b"first");
    assert_eq!(ub.put("note.txt", b"second, from b").status, 200);
    assert_eq!(ua.get("note.txt").body, b"second, from b");
    // Create-only through a sees b's file, on disk, whatever a heard.
    let refused =
        request(ua.http, "PUT", "/files/note.txt", &[ua.auth()[0].clone(), ("If-None-Match", "*".into())], Some(b"x"));
    assert_eq!(refused.status, 412, "{}", refused.text());

    // A share link made on a works on b (and on c), with no login.
    let r = ua.put("shared.txt", b"for anyone");
    let link = r.json()["share_url"].as_str().unwrap().to_string();
    let path = &link[link.find("/files/s/").unwrap()..];
    for http in [ub.http, uc.http] {
        let got = request(http, "GET", path, &[], None);
        assert_eq!((got.status, got.body.as_slice()), (200, &b"for anyone"[..]), "{}", got.text());
    }

    // Deleted through c (an operator may delete anyone's file; here the
    // uploader does it through its own node): a 404 on a and b at once.
    let del = request(ub.http, "DELETE", "/files/note.txt", &ub.auth(), None);
    assert_eq!(del.status, 204, "{}", del.text());
    for u in [&ua, &uc] {
        let r = u.get("note.txt");
        assert_eq!(r.status, 404, "{}", r.text());
        assert!(!u.list().contains(&"note.txt".to_string()));
    }
}

#[test]
#[ignore = "needs a NATS cluster: tools/cluster/run.sh"]
fn racing_uploads_of_one_name_through_two_nodes_leave_one_whole_file() {
    let files = shared_dir();
    let (a, b) = (node("cfr-a", files.path(), ""), node("cfr-b", files.path(), ""));
    let ua = User::new(&a, &nick("cfrace1"));
    let ub = User::new(&b, &nick("cfrace2"));
    let size: u64 = 2 << 20;
    for round in 0..3 {
        // Plain PUTs: both succeed, the later commit wins whole.
        let name = format!("race{round}.bin");
        let path = format!("/files/{name}");
        let (pa, pb, ha, hb) = (path.clone(), path.clone(), ua.auth(), ub.auth());
        let (http_a, http_b) = (ua.http, ub.http);
        let one = std::thread::spawn(move || upload_pattern(http_a, &pa, &ha, size, 100 + round));
        let two = std::thread::spawn(move || upload_pattern(http_b, &pb, &hb, size, 200 + round));
        let ((ra, sa), (rb, sb)) = (one.join().unwrap(), two.join().unwrap());
        assert!([200, 201].contains(&ra.status) && [200, 201].contains(&rb.status), "{} {}", ra.text(), rb.text());
        for u in [&ua, &ub] {
            let (got, n, digest) = download_hashed(u.http, &path, &u.auth());
            assert_eq!((got.status, n), (200, size));
            assert!(digest == sa || digest == sb, "round {round}: a mix of both uploads");
        }
        // Create-only: exactly one winner, the other told it exists.
        let name = format!("once{round}.bin");
        let path = format!("/files/{name}");
        let with = |u: &User| {
            let mut h = u.auth();
            h.push(("If-None-Match", "*".into()));
            h
        };
        // The loser may be refused before its body is read (the name is
        // taken by then): `request` takes an early answer.
        let body = |seed: u64| {
            let mut buf = vec![0u8; size as usize];
            support::http::Pattern::new(seed).fill(&mut buf);
            let digest = support::http::sha256_hex(&buf);
            (buf, digest)
        };
        let ((body_a, sa), (body_b, sb)) = (body(300 + round), body(400 + round));
        let (pa, pb, ha, hb) = (path.clone(), path.clone(), with(&ua), with(&ub));
        let one = std::thread::spawn(move || request(http_a, "PUT", &pa, &ha, Some(&body_a)));
        let two = std::thread::spawn(move || request(http_b, "PUT", &pb, &hb, Some(&body_b)));
        let (ra, rb) = (one.join().unwrap(), two.join().unwrap());
        let mut statuses = [ra.status, rb.status];
        statuses.sort();
        assert_eq!(statuses, [201, 412], "round {round}: {} / {}", ra.text(), rb.text());
        let winner = if ra.status == 201 { sa } else { sb };
        let (_, _, digest) = download_hashed(ub.http, &path, &ub.auth());
        assert_eq!(digest, winner);
    }
    // Each node staged in a temp directory of its own, now empty.
    for node in ["cfr-a", "cfr-b"] {
        let left = std::fs::read_dir(files.path().join("tmp").join(node)).unwrap().count();
        assert_eq!(left, 0, "{node} left temp files");
    }
}

#[test]
#[ignore = "needs a NATS cluster: tools/cluster/run.sh"]
fn an_interrupted_upload_on_one_node_is_never_visible_on_another() {
    let files = shared_dir();
    let (a, b) = (node("cfi-a", files.path(), ""), node("cfi-b", files.path(), ""));
    let ua = User::new(&a, &nick("cfint1"));
    let ub = User::new(&b, &nick("cfint2"));
    assert_eq!(ua.put("kept.txt", b"the old version").status, 201);
    let half = start_partial_upload(ua.http, "/files/kept.txt", &ua.auth(), 1 << 20, 300_000);
    let half_new = start_partial_upload(ua.http, "/files/new.txt", &ua.auth(), 1 << 20, 300_000);
    // In flight on a: b sees the old version and nothing new.
    assert_eq!(ub.get("kept.txt").body, b"the old version");
    assert_eq!(ub.get("new.txt").status, 404);
    assert_eq!(ub.list(), ["kept.txt"]);
    // Cut off: still nothing on b, and a's temp files are gone.
    abandon_upload(half);
    abandon_upload(half_new);
    assert_eq!(ub.get("kept.txt").body, b"the old version");
    assert_eq!(ub.get("new.txt").status, 404);
    assert_eq!(ub.list(), ["kept.txt"]);
    let deadline = Instant::now() + TIMEOUT;
    while std::fs::read_dir(files.path().join("tmp").join("cfi-a")).unwrap().count() > 0 {
        assert!(Instant::now() < deadline, "a kept the abandoned uploads' temp files");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Killed mid-upload: b still sees only the old version, and a's
    // restart cleans its own temp directory only.
    let half = start_partial_upload(ua.http, "/files/kept.txt", &ua.auth(), 1 << 20, 300_000);
    let half_b = start_partial_upload(ub.http, "/files/b.txt", &ub.auth(), 1 << 20, 1000);
    let a = a.kill_and_restart();
    drop(half);
    assert_eq!(ub.get("kept.txt").body, b"the old version");
    assert_eq!(std::fs::read_dir(files.path().join("tmp").join("cfi-a")).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(files.path().join("tmp").join("cfi-b")).unwrap().count(), 1, "b's upload stays");
    abandon_upload(half_b);
    let ua = User::new(&a, &nick("cfint3"));
    assert_eq!(ua.list(), ["kept.txt"]);
}

/// Waits (bounded) until `client`'s node knows `nick`, wherever it is.
fn wait_until_known(client: &mut Client, nick: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        client.send(&format!("WHOIS {nick}"));
        if client.collect_until(|l| l.is("318"), TIMEOUT).iter().any(|l| l.is("311")) {
            return;
        }
        assert!(Instant::now() < deadline, "{nick} was never seen");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An operator on `client`'s node.
fn oper(client: &mut Client) {
    client.send(&format!("OPER {} {}", parley_testkit::ADMIN_NAME, parley_testkit::ADMIN_PASSWORD));
    client.expect(|l| l.is("381"), TIMEOUT);
}

/// How long a node may take from the order to its exit.
const EXIT_WITHIN: Duration = Duration::from_secs(15);

#[test]
#[ignore = "needs a NATS cluster: tools/cluster/run.sh"]
fn die_closes_only_the_node_it_was_sent_to() {
    let files = shared_dir();
    let (mut a, b) = (node("die-a", files.path(), ""), node("die-b", files.path(), ""));
    let (an, bn) = (nick("diealice"), nick("diebob"));
    let mut alice = Client::registered(a.irc_addr(), &an);
    let mut bob = Client::registered(b.irc_addr(), &bn);
    wait_until_known(&mut bob, &an);
    oper(&mut alice);
    alice.send("DIE :only this one");
    alice.expect(|l| l.is("NOTICE") && l.last().contains("only this one"), TIMEOUT);
    assert!(a.wait_exit(EXIT_WITHIN).is_some_and(|s| s.success()), "a exits 0");
    // b runs on; its user sees a's leave.
    bob.expect(|l| l.is_from("QUIT", &an), TIMEOUT);
    Client::registered(b.irc_addr(), &nick("dielater"));
    bob.sync();
}

/// Alone in its run (tools/cluster/run.sh): the order reaches every node
/// on the NATS cluster, other tests' nodes too.
#[test]
#[ignore = "needs a NATS cluster: tools/cluster/run.sh"]
fn die_cluster_by_an_operator_closes_every_node_and_tells_every_user() {
    let files = shared_dir();
    let mut nodes =
        [node("diec-a", files.path(), ""), node("diec-b", files.path(), ""), node("diec-c", files.path(), "")];
    let nicks = [nick("diecann"), nick("diecbob"), nick("dieccat")];
    let mut clients: Vec<Client> =
        nodes.iter().zip(&nicks).map(|(n, nick)| Client::registered(n.irc_addr(), nick)).collect();
    // Everyone has heard of everyone: the order's subscription is up.
    for c in clients.iter_mut() {
        for other in &nicks {
            wait_until_known(c, other);
        }
    }
    // Not an operator: 481, and nothing closes.
    clients[1].send("DIE CLUSTER :not mine to close");
    clients[1].expect(|l| l.is("481"), TIMEOUT);
    assert!(nodes.iter_mut().all(|n| n.wait_exit(Duration::ZERO).is_none()));

    oper(&mut clients[0]);
    let ordered = Instant::now();
    clients[0].send("DIE CLUSTER :moving to new hardware");
    let by = format!("closed by {} (operator {})", nicks[0], parley_testkit::ADMIN_NAME);
    for c in clients.iter_mut() {
        let notice = c.expect(|l| l.is("NOTICE") && l.last().contains("Server shutting down"), TIMEOUT);
        assert!(notice.last().contains(&by) && notice.last().contains("moving to new hardware"), "{}", notice.raw);
        c.expect_closed(TIMEOUT);
    }
    for n in nodes.iter_mut() {
        let status = n.wait_exit(EXIT_WITHIN);
        assert!(status.is_some_and(|s| s.success()), "{status:?}: {}", n.output());
    }
    eprintln!("three nodes closed {:?} after DIE CLUSTER", ordered.elapsed());
    assert!(nodes[2].log_text().contains("die_cluster"), "the order is in each node's activity log");
}

#[test]
#[ignore = "needs a NATS cluster: tools/cluster/run.sh"]
fn a_registered_nick_taken_back_on_one_node_is_free_everywhere_and_the_guest_nick_is_held() {
    let files = shared_dir();
    let extra = "[accounts]\nnick_enforcement = \"rename\"\nnick_grace_secs = 1\n";
    let (a, b) = (node("acct-a", files.path(), extra), node("acct-b", files.path(), extra));
    let owner = nick("acctowner");
    a.add_account(&owner, "a-long-password-for-the-owner");
    // Someone on a takes the account's nick without logging in: after the
    // grace period a renames them to a guest.
    let mut squatter = Client::connect(a.irc_addr());
    squatter.register(&owner);
    let renamed = squatter.expect(|l| l.is_from("NICK", &owner), Duration::from_secs(5));
    let guest = renamed.param(0).to_string();
    assert!(guest.starts_with("Guest"), "{}", renamed.raw);
    // A barrier: the connection has finished with the rename (its claims).
    squatter.sync();
    let mut other = Client::connect(b.irc_addr());
    other.register(&nick("acctother"));
    // The guest nick is claimed cluster-wide: b refuses it.
    other.send(&format!("NICK {guest}"));
    other.expect(|l| l.is("433"), TIMEOUT);
    // The registered nick's claim was given up: free on b.
    other.send(&format!("NICK {owner}"));
    other.expect(|l| l.is("NICK") && l.param(0) == owner, TIMEOUT);
    // And now held by b's user: a refuses it to the guest.
    squatter.send(&format!("NICK {owner}"));
    squatter.expect(|l| l.is("433"), TIMEOUT);
}

#[test]
#[ignore = "needs a NATS cluster: tools/cluster/run.sh"]
fn ghost_closes_the_accounts_nick_on_another_node_and_frees_it() {
    let files = shared_dir();
    let (a, b) = (node("ghost-a", files.path(), ""), node("ghost-b", files.path(), ""));
    let (owner, password) = (nick("ghostown"), "a-long-password-for-the-ghost");
    // Each node's own SQLite knows the account (PostgreSQL shares one).
    a.add_account(&owner, password);
    b.add_account(&owner, password);
    let mut old = Client::connect(a.irc_addr());
    old.register(&owner);
    let mut new = Client::connect(b.irc_addr());
    new.register(&nick("ghostnew"));
    wait_until_known(&mut new, &owner);
    new.send(&format!("PRIVMSG NickServ :IDENTIFY {owner} {password}"));
    new.expect(|l| l.is("900"), TIMEOUT);
    new.send(&format!("PRIVMSG NickServ :GHOST {owner}"));
    new.expect(|l| l.is("NOTICE") && l.last().contains("has been disconnected"), TIMEOUT);
    let closed = old.expect_closed(TIMEOUT);
    assert!(closed.iter().any(|l| l.is("ERROR") && l.last().contains("GHOST command used")), "{closed:?}");
    new.expect(|l| l.is_from("QUIT", &owner), TIMEOUT);
    // Its claim goes with it (released in the background): the nick is
    // the owner's to take on b, asked again until then (bounded).
    let deadline = Instant::now() + TIMEOUT;
    loop {
        new.send(&format!("NICK {owner}"));
        let l = new.expect(|l| l.is("433") || (l.is("NICK") && l.param(0) == owner), TIMEOUT);
        if l.is("NICK") {
            break;
        }
        assert!(Instant::now() < deadline, "{owner} stayed claimed after its ghost left");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs a NATS cluster: tools/cluster/run.sh"]
fn metrics_count_the_clusters_events_remote_users_and_live_nodes() {
    let files = shared_dir();
    let extra = "[metrics]\nlisten = [\"127.0.0.1:0\"]\n";
    let (a, b) = (node("met-a", files.path(), extra), node("met-b", files.path(), extra));
    let mut here = Client::registered(a.irc_addr(), &nick("methere"));
    let there = nick("metthere");
    let _there = Client::registered(b.irc_addr(), &there);
    wait_until_known(&mut here, &there);
    let page = request(a.addr("metrics").expect("a metrics listener"), "GET", "/metrics", &[], None);
    assert_eq!(page.status, 200);
    let text = page.text();
    let value = |name: &str| support::http::metric(&text, name);
    assert!(value("parley_cluster_remote_users") >= 1.0, "{text}");
    assert!(value("parley_cluster_nodes_alive") >= 1.0, "{text}");
    assert!(value("parley_cluster_events_in_total") >= 1.0, "{text}");
    assert!(value("parley_cluster_events_out_total") >= 1.0, "{text}");
    assert_eq!(value("parley_cluster_outbox_dropped"), 0.0, "{text}");

    // The store's size (what the quota counts) follows another node's
    // upload: b hears of it and counts it (bounded wait for the news).
    let uploader = User::new(&a, &nick("metup"));
    assert_eq!(uploader.put("counted.bin", &[7u8; 12_345]).status, 201);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let page = request(b.addr("metrics").unwrap(), "GET", "/metrics", &[], None).text();
        if support::http::metric(&page, "parley_store_bytes") == 12_345.0 {
            break;
        }
        assert!(Instant::now() < deadline, "b never counted a's upload:\n{page}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
