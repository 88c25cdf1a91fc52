//! IRC over WebSocket at `/socket` on the file store's listener: the same
//! server, sessions and limits as TCP, one line per message, the client's
//! choice of subprotocol, and pages from other origins kept out.

use parley_testkit::numeric::*;
use parley_testkit::ws::{describe, Event, Open};
use parley_testkit::{Client, Server, WsClient, TIMEOUT};
use std::time::Instant;

fn http(server: &Server) -> std::net::SocketAddr {
    server.http_addr().expect("the file store's HTTP listener")
}

#[test]
fn websocket_and_tcp_clients_chat_in_the_lobby_both_ways() {
    let server = Server::start();
    let mut web = WsClient::registered(http(&server), "webby");
    let mut tcp = Client::registered(server.irc_addr(), "tcpy");
    web.expect(|l| l.is_from("JOIN", "tcpy"), TIMEOUT);

    web.send("PRIVMSG #lobby :hello from the browser");
    let got = tcp.expect(|l| l.is_from("PRIVMSG", "webby"), TIMEOUT);
    assert_eq!(got.last(), "hello from the browser");

    tcp.send("PRIVMSG #lobby :hello from the terminal");
    let got = web.expect(|l| l.is_from("PRIVMSG", "tcpy"), TIMEOUT);
    assert_eq!((got.param(0), got.last()), ("#lobby", "hello from the terminal"));

    // Another channel and a private message work the same way.
    web.send("JOIN #side");
    web.expect(|l| l.is(RPL_ENDOFNAMES) && l.param(1) == "#side", TIMEOUT);
    tcp.send("JOIN #side");
    web.expect(|l| l.is_from("JOIN", "tcpy"), TIMEOUT);
    tcp.send("PRIVMSG webby :psst");
    assert_eq!(web.expect(|l| l.is_from("PRIVMSG", "tcpy"), TIMEOUT).last(), "psst");

    // The activity log names the transport.
    let log = server.wait_for_log(|log| log.contains("transport=\"websocket\""), TIMEOUT);
    assert!(log.contains("transport=\"plain\""), "{log}");
}

fn opened(server: &Server, protocols: &[&str]) -> WsClient {
    WsClient::open(http(server), &Open { protocols, origin: None })
        .unwrap_or_else(|e| panic!("opening with {protocols:?}: {}", describe(&e)))
}

#[test]
fn the_clients_first_known_subprotocol_is_chosen() {
    let server = Server::start();
    for (asked, chosen) in [
        (&["text.ircv3.net"][..], "text.ircv3.net"),
        (&["binary.ircv3.net"][..], "binary.ircv3.net"),
        (&["text.ircv3.net", "binary.ircv3.net"][..], "text.ircv3.net"),
        (&["binary.ircv3.net", "text.ircv3.net"][..], "binary.ircv3.net"),
        (&["x-unknown", "binary.ircv3.net"][..], "binary.ircv3.net"),
    ] {
        let mut c = opened(&server, asked);
        assert_eq!(c.protocol.as_deref(), Some(chosen), "asked for {asked:?}");
        // The client checks that every message is of the chosen kind.
        c.send("PING :kind");
        c.expect(|l| l.is("PONG") && l.last() == "kind", TIMEOUT);
    }
}

#[test]
fn without_a_subprotocol_lines_come_as_text_and_none_is_named() {
    let server = Server::start();
    let mut c = opened(&server, &[]);
    assert_eq!(c.protocol, None, "no Sec-WebSocket-Protocol when none was asked for");
    // A text message on a socket without subprotocol is what the client
    // accepts (it panics on binary).
    c.register("plain");
    c.sync();
}

#[test]
fn binary_messages_work_with_binary_subprotocol() {
    let server = Server::start();
    let mut c = opened(&server, &["binary.ircv3.net"]);
    c.register("binny");
    c.send("PRIVMSG binny :über");
    let got = c.expect(|l| l.is_from("PRIVMSG", "binny"), TIMEOUT);
    assert_eq!(got.last(), "über");
}

#[test]
fn a_message_may_end_with_crlf_or_not() {
    let server = Server::start();
    let mut c = WsClient::registered(http(&server), "crlf");
    c.send_message(parley_testkit::ws::Message::text("PING :with-crlf\r\n"));
    c.expect(|l| l.is("PONG") && l.last() == "with-crlf", TIMEOUT);
    c.send_message(parley_testkit::ws::Message::text("PING :with-lf\n"));
    c.expect(|l| l.is("PONG") && l.last() == "with-lf", TIMEOUT);
}

#[test]
fn a_page_from_another_origin_is_refused_with_403_before_the_upgrade() {
    let server = Server::start();
    let err =
        WsClient::open(http(&server), &Open { protocols: &["text.ircv3.net"], origin: Some("https://evil.example") })
            .err()
            .expect("refused");
    let shown = describe(&err);
    assert!(shown.starts_with("HTTP 403"), "{shown}");
    assert!(shown.contains("websocket.allowed_origins"), "{shown}");
    // Nothing else happened: no connection was served.
    let log = server.wait_for_log(|log| log.contains("websocket_refused"), TIMEOUT);
    assert!(!log.contains("transport=\"websocket\""), "{log}");
}

#[test]
fn the_servers_own_pages_and_listed_origins_are_allowed() {
    // Default: a page from the host and port the socket is on.
    let server = Server::start();
    let own = format!("http://{}", http(&server));
    let mut c = WsClient::open(http(&server), &Open { protocols: &["text.ircv3.net"], origin: Some(&own) })
        .unwrap_or_else(|e| panic!("{}", describe(&e)));
    c.register("local");

    let server = Server::start_with("[websocket]\nallowed_origins = [\"https://chat.example.org\"]\n");
    let listed = Open { protocols: &["text.ircv3.net"], origin: Some("https://chat.example.org") };
    WsClient::open(http(&server), &listed).unwrap_or_else(|e| panic!("{}", describe(&e))).register("listed");
    // With a list, the server's own host is not implied.
    let own = format!("http://{}", http(&server));
    let unlisted = Open { protocols: &["text.ircv3.net"], origin: Some(&own) };
    assert!(describe(&WsClient::open(http(&server), &unlisted).err().expect("refused")).starts_with("HTTP 403"));

    let server = Server::start_with("[websocket]\nallowed_origins = [\"*\"]\n");
    let any = Open { protocols: &["text.ircv3.net"], origin: Some("https://anywhere.example") };
    WsClient::open(http(&server), &any).unwrap_or_else(|e| panic!("{}", describe(&e))).register("anyone");
}

#[test]
fn a_ping_frame_is_answered_with_a_pong_frame() {
    let server = Server::start();
    let mut c = WsClient::registered(http(&server), "pinger");
    c.send_message(parley_testkit::ws::Message::Ping(b"are you there"[..].into()));
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match c.next_event(deadline) {
            Event::Other(parley_testkit::ws::Message::Pong(data)) => {
                assert_eq!(&data[..], b"are you there");
                break;
            }
            Event::Line(_) => {}
            other => panic!("no pong: {other:?}"),
        }
    }
}
