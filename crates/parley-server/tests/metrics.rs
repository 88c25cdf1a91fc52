//! The admin listener: `/metrics` counts exactly what a scripted session
//! did, `/healthz` answers, and without `[metrics] listen` there is none.

#[allow(dead_code)] // this test uses a part of the shared support code
mod support;

use parley_testkit::{Client, Server, TIMEOUT};
use support::http::{metric as sample, request};

fn scrape(server: &Server) -> String {
    let got = request(server.addr("metrics").expect("a metrics listener"), "GET", "/metrics", &[], None);
    assert_eq!(got.status, 200);
    assert!(got.header("content-type").unwrap_or_default().contains("openmetrics"));
    got.text()
}

#[test]
fn counters_move_by_exactly_what_a_session_did() {
    let server = Server::start_with("[metrics]\nlisten = [\"127.0.0.1:0\"]\n");
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    for i in 0..3 {
        alice.send(&format!("PRIVMSG #lobby :hello {i}"));
    }
    bob.expect(|l| l.is("PRIVMSG") && l.last() == "hello 2", TIMEOUT);
    alice.send("PRIVMSG nobody-here :lost");
    alice.sync();
    bob.send("QUIT :bye");
    alice.expect(|l| l.is_from("QUIT", "bob"), TIMEOUT);
    let text = scrape(&server);
    assert_eq!(sample(&text, "parley_registrations_total"), 2.0);
    assert_eq!(sample(&text, "parley_connections_total{transport=\"plain\"}"), 2.0);
    assert_eq!(sample(&text, "parley_messages_in_total"), 4.0, "three to the lobby, one to nobody");
    assert_eq!(sample(&text, "parley_deliveries_total"), 3.0, "bob got each lobby line once");
    assert_eq!(sample(&text, "parley_disconnects_total{reason=\"quit\"}"), 1.0);
    assert_eq!(sample(&text, "parley_users"), 1.0);
    assert!(sample(&text, "parley_process_resident_memory_bytes") > 1_000_000.0);
    assert!(sample(&text, "parley_process_open_fds") >= 3.0);
    let health = request(server.addr("metrics").unwrap(), "GET", "/healthz", &[], None);
    assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));
}

#[test]
fn there_is_no_admin_listener_unless_configured() {
    let server = Server::start();
    assert!(server.addr("metrics").is_none());
}

#[test]
fn the_store_size_history_and_flood_disconnects_are_reported() {
    let server = Server::start_with("[metrics]\nlisten = [\"127.0.0.1:0\"]\n[limits]\nflood_burst = 5\n");
    let http = server.http_addr().expect("a file store");
    let mut alice = Client::registered(server.irc_addr(), "alice");
    alice.send("EXTJWT *");
    let auth = [("Authorization", format!("Bearer {}", alice.expect(|l| l.is("EXTJWT"), TIMEOUT).last()))];
    for (name, body) in [("a.txt", &b"twelve bytes"[..]), ("b.txt", &b"three"[..])] {
        assert!(request(http, "PUT", &format!("/files/{name}"), &auth, Some(body)).status < 300);
    }
    let got = request(http, "GET", "/files/a.txt", &auth, None);
    assert_eq!(got.body, b"twelve bytes");
    let head = request(http, "HEAD", "/files/b.txt", &auth, None);
    assert_eq!(head.status, 200);
    // Five lines in a burst are allowed; a flood past RecvQ is cut.
    let mut flooder = Client::registered(server.irc_addr(), "flooder");
    let _ = flooder.try_send_raw("PRIVMSG #lobby :x\r\n".repeat(2_000).as_bytes());
    flooder.expect_closed(TIMEOUT);
    alice.expect(|l| l.is_from("QUIT", "flooder"), TIMEOUT);

    let text = scrape(&server);
    assert_eq!(sample(&text, "parley_uploads_total"), 2.0);
    assert_eq!(sample(&text, "parley_upload_bytes_total"), 17.0);
    assert_eq!(sample(&text, "parley_downloads_total"), 1.0, "a HEAD is no download");
    assert_eq!(sample(&text, "parley_download_bytes_total"), 12.0);
    assert_eq!(sample(&text, "parley_store_bytes"), 17.0);
    assert_eq!(sample(&text, "parley_disconnects_total{reason=\"flood\"}"), 1.0);
    // History is on by default: its queue and lag are there.
    assert!(sample(&text, "parley_history_queue") >= 0.0);
    assert!(sample(&text, "parley_history_lag_seconds") >= 0.0);
}
