//! IRC over WebSocket at `/socket` on the file store's listener: the same
//! server, sessions and limits as TCP, one line per message, the client's
//! choice of subprotocol, and pages from other origins kept out.

use parley_testkit::numeric::*;
use parley_testkit::ws::{describe, Event, Message, Open};
use parley_testkit::{Client, Server, WsClient, ADMIN_NAME, ADMIN_PASSWORD, TIMEOUT};
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
    c.send_message(Message::text("PING :with-crlf\r\n"));
    c.expect(|l| l.is("PONG") && l.last() == "with-crlf", TIMEOUT);
    c.send_message(Message::text("PING :with-lf\n"));
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
    c.send_message(Message::Ping(b"are you there"[..].into()));
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match c.next_event(deadline) {
            Event::Other(Message::Pong(data)) => {
                assert_eq!(&data[..], b"are you there");
                break;
            }
            Event::Line(_) => {}
            other => panic!("no pong: {other:?}"),
        }
    }
}

#[test]
fn over_long_line_gets_417_and_the_websocket_goes_on() {
    let server = Server::start();
    let mut web = WsClient::registered(http(&server), "longy");
    let mut tcp = Client::registered(server.irc_addr(), "reader");
    web.send(&format!("PRIVMSG #lobby :{}", "a".repeat(600)));
    web.expect(|l| l.is(ERR_INPUTTOOLONG), TIMEOUT);
    tcp.expect_none(|l| l.is("PRIVMSG"), "PRIVMSG from the refused line");
    web.send("PRIVMSG #lobby :short and fine");
    assert_eq!(tcp.expect(|l| l.is_from("PRIVMSG", "longy"), TIMEOUT).last(), "short and fine");
}

#[test]
fn invalid_utf8_in_a_binary_message_gets_fail_invalid_utf8() {
    let server = Server::start();
    let mut web = opened(&server, &["binary.ircv3.net"]);
    web.register("bytes");
    let mut tcp = Client::registered(server.irc_addr(), "reader");
    web.send_message(Message::binary(b"PRIVMSG #lobby :caf\xe9 \xff".to_vec()));
    let fail = web.expect(|l| l.is("FAIL"), TIMEOUT);
    assert_eq!((fail.param(0), fail.param(1)), ("PRIVMSG", "INVALID_UTF8"), "{}", fail.raw);
    tcp.expect_none(|l| l.is("PRIVMSG"), "PRIVMSG from the invalid line");
    web.send("PRIVMSG #lobby :café");
    assert_eq!(tcp.expect(|l| l.is_from("PRIVMSG", "bytes"), TIMEOUT).last(), "café");
}

#[test]
fn a_dropped_connection_quits_and_the_server_stays_healthy() {
    let server = Server::start();
    let web = WsClient::registered(http(&server), "dropper");
    let mut tcp = Client::registered(server.irc_addr(), "watcher");
    tcp.sync();
    // No close frame: the TCP connection just goes away.
    web.drop_connection();
    let quit = tcp.expect(|l| l.is_from("QUIT", "dropper"), TIMEOUT);
    assert!(!quit.last().is_empty(), "{}", quit.raw);
    // The nick is free and the socket serves the next client.
    let mut again = WsClient::registered(http(&server), "dropper");
    again.send("PRIVMSG #lobby :back");
    assert_eq!(tcp.expect(|l| l.is_from("PRIVMSG", "dropper"), TIMEOUT).last(), "back");
}

#[test]
fn quit_ends_with_error_then_a_close_frame_with_the_reason() {
    let server = Server::start();
    let mut web = WsClient::registered(http(&server), "leaver");
    web.send("QUIT :see you tomorrow");
    let (lines, frame) = web.expect_closed(TIMEOUT);
    let error = lines.last().unwrap_or_else(|| panic!("nothing before the close frame"));
    assert!(error.is("ERROR") && error.last().contains("Quit: see you tomorrow"), "{}", error.raw);
    let frame = frame.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1000);
    assert_eq!(frame.reason.as_str(), "Quit: see you tomorrow");
}

#[test]
fn kill_and_die_close_the_websocket_with_their_reasons() {
    let mut server = Server::start();
    let mut oper = Client::registered(server.irc_addr(), "boss");
    oper.send(&format!("OPER {ADMIN_NAME} {ADMIN_PASSWORD}"));
    oper.expect(|l| l.is(RPL_YOUREOPER), TIMEOUT);
    let mut victim = WsClient::registered(http(&server), "victim");
    let mut bystander = WsClient::registered(http(&server), "bystander");

    oper.send("KILL victim :spamming");
    let (_, frame) = victim.expect_closed(TIMEOUT);
    let frame = frame.expect("a close frame after KILL");
    assert_eq!(u16::from(frame.code), 1008);
    assert!(frame.reason.contains("Killed (boss (spamming))"), "{frame:?}");

    oper.send("DIE :maintenance window");
    let (lines, frame) = bystander.expect_closed(TIMEOUT);
    assert!(lines.iter().any(|l| l.is("ERROR")), "no ERROR before the close: {lines:?}");
    let frame = frame.expect("a close frame at shutdown");
    assert_eq!(u16::from(frame.code), 1001);
    assert!(
        frame.reason.starts_with("Server shutting down: closed by boss")
            && frame.reason.contains("(maintenance window)"),
        "{frame:?}"
    );
    let status = server.wait_exit(TIMEOUT).expect("parleyd exits after DIE");
    assert!(status.success(), "{status}");
}

#[test]
fn a_flooding_websocket_is_cut_with_excess_flood() {
    let server = Server::start();
    let mut flooder = WsClient::registered(http(&server), "flooder");
    let mut tcp = Client::registered(server.irc_addr(), "bystander");
    // Default limits: a burst of 20 lines, 4 a second, 8 KiB waiting.
    for _ in 0..2_000 {
        if flooder.try_send_message(Message::text("PRIVMSG #lobby :x")).is_err() {
            break;
        }
    }
    let (lines, frame) = flooder.expect_closed(TIMEOUT);
    assert!(lines.iter().any(|l| l.is("ERROR") && l.last().contains("(Excess Flood)")), "{lines:?}");
    let frame = frame.expect("a close frame");
    assert_eq!((u16::from(frame.code), frame.reason.as_str()), (1008, "Excess Flood"));
    let quit = tcp.expect(|l| l.is_from("QUIT", "flooder"), TIMEOUT);
    assert!(quit.last().contains("Excess Flood"), "{}", quit.raw);
    tcp.sync();
}

#[test]
fn a_listener_of_its_own_serves_only_the_socket() {
    let server = Server::start_with("[websocket]\nlisten = [\"127.0.0.1:0\"]\n");
    let own = server.addr("websocket").expect("the readiness line names the WebSocket listener");
    let mut web = WsClient::registered(own, "separate");
    let mut tcp = Client::registered(server.irc_addr(), "tcpy");
    web.send("PRIVMSG #lobby :from the separate listener");
    assert_eq!(tcp.expect(|l| l.is_from("PRIVMSG", "separate"), TIMEOUT).last(), "from the separate listener");
    // Nothing else is there.
    let mut http = std::net::TcpStream::connect(own).expect("connect");
    std::io::Write::write_all(&mut http, b"GET /files HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut http, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
}

#[test]
fn websocket_clients_count_under_the_connection_limits() {
    let server = Server::start_with("[limits]\nmax_connections_per_ip = 2\n");
    let _tcp = Client::registered(server.irc_addr(), "first");
    let _web = WsClient::registered(http(&server), "second");
    let refused = WsClient::open(http(&server), &Open { protocols: &["text.ircv3.net"], origin: None });
    let shown = describe(&refused.err().expect("a third connection from one address is refused"));
    assert!(shown.starts_with("HTTP 503") && shown.contains("Too many connections from your address"), "{shown}");
}

#[test]
fn a_message_over_the_websocket_limit_ends_only_that_connection_with_1009() {
    let server = Server::start();
    let mut big = WsClient::registered(http(&server), "biggie");
    let mut tcp = Client::registered(server.irc_addr(), "watcher");
    // Over max_line_bytes + max_tag_bytes + 1 KiB: refused by the
    // WebSocket layer before framing.
    let _ = big.try_send_message(Message::text(format!("PRIVMSG #lobby :{}", "a".repeat(20_000))));
    let (_, frame) = big.expect_closed(TIMEOUT);
    // RFC 6455's "message too big" (the IRCv3 extension names no code).
    let frame = frame.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1009, "{frame:?}");
    tcp.expect(|l| l.is_from("QUIT", "biggie"), TIMEOUT);
    tcp.expect_none(|l| l.is("PRIVMSG"), "the oversized message");
}

#[test]
fn the_clients_close_frame_ends_the_session_with_a_quit() {
    let server = Server::start();
    let mut web = WsClient::registered(http(&server), "closer");
    let mut tcp = Client::registered(server.irc_addr(), "watcher");
    tcp.sync();
    let bye = parley_testkit::ws::tungstenite::protocol::CloseFrame {
        code: parley_testkit::ws::tungstenite::protocol::frame::coding::CloseCode::Normal,
        reason: "bye".into(),
    };
    web.send_message(Message::Close(Some(bye)));
    // The server answers with the same frame (RFC 6455, 5.5.1).
    let (_, frame) = web.expect_closed(TIMEOUT);
    let frame = frame.expect("the server answers the close frame");
    assert_eq!((u16::from(frame.code), frame.reason.as_str()), (1000, "bye"));
    tcp.expect(|l| l.is_from("QUIT", "closer"), TIMEOUT);
}

/// CPU time (clock ticks) of the server's threads named `parley-files`
/// (the file store's runtime) and of all the others, from /proc.
fn cpu_ticks_by_runtime(pid: u32) -> (u64, u64) {
    let (mut files, mut others) = (0, 0);
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("the server's threads") {
        let dir = task.expect("a thread").path();
        let (Ok(comm), Ok(stat)) =
            (std::fs::read_to_string(dir.join("comm")), std::fs::read_to_string(dir.join("stat")))
        else {
            continue; // a thread that just ended
        };
        // utime and stime are fields 14 and 15, counted after the
        // parenthesised name (which may hold spaces).
        let fields: Vec<&str> = stat[stat.rfind(')').expect("stat") + 2..].split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        if comm.trim() == "parley-files" {
            files += ticks;
        } else {
            others += ticks;
        }
    }
    (files, others)
}

#[test]
fn a_plain_websocket_session_is_served_on_the_chat_thread_like_tcp() {
    // One chat thread: the file store then runs on a runtime of its own,
    // whose thread accepts the upgrade and must hand the session over.
    let server = Server::start_with("[limits]\nworker_threads = 1\nflood_burst = 100000\nrecvq_bytes = 1048576\n");
    let mut web = WsClient::registered(http(&server), "mover");
    let (files_before, chat_before) = cpu_ticks_by_runtime(server.pid());
    let pings = 50_000;
    for i in 0..pings {
        web.send(&format!("PING :{i}"));
    }
    let last = (pings - 1).to_string();
    web.expect(|l| l.is("PONG") && l.last() == last, TIMEOUT);
    let (files_after, chat_after) = cpu_ticks_by_runtime(server.pid());
    let (files, chat) = (files_after - files_before, chat_after - chat_before);
    assert!(chat > 0 && files * 4 <= chat, "{pings} PINGs cost the file store's thread {files} ticks, the rest {chat}");
}
