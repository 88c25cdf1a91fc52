//! Reloading the configuration while clients stay connected: SIGHUP and
//! REHASH read the file again, the new MOTD and limits apply, a renewed
//! certificate reaches new TLS clients while old sessions go on, a broken
//! file is refused with its key named and changes nothing, a changed
//! listener waits for a restart, and diagnostics can be JSON lines.
//!
//! Readiness: REHASH waits for its own reply; a SIGHUP for the `reload`
//! record in the activity log.

#[allow(dead_code)] // this test uses a part of the shared support code
mod support;

use parley_testkit::ws::Open;
use parley_testkit::{log_events, Client, Line, Server, Signal, WsClient, ADMIN_NAME, ADMIN_PASSWORD, TIMEOUT};
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;

fn config_file(server: &Server) -> PathBuf {
    server.root_dir().join("parleyd.toml")
}

/// Replaces the server's configuration file (what an operator edits).
fn write_config(server: &Server, toml: &str) {
    std::fs::write(config_file(server), toml).expect("writing the config file");
}

fn operator(server: &Server, nick: &str) -> Client {
    let mut c = Client::registered(server.irc_addr(), nick);
    c.send(&format!("OPER {ADMIN_NAME} {ADMIN_PASSWORD}"));
    c.expect(|l| l.is("381"), TIMEOUT);
    c
}

/// REHASH, and everything up to its answer (382 or FAIL).
fn rehash(c: &mut Client) -> Vec<Line> {
    c.send("REHASH");
    let mut lines = c.collect_until(|l| l.is("382") || l.is("FAIL") || l.is("481"), TIMEOUT);
    // A NOTICE about settings that need a restart follows the 382.
    lines.extend(c.sync());
    lines
}

/// Sends SIGHUP and waits for the activity log's `reload` record number `n`.
fn sighup(server: &Server, n: usize) -> String {
    server.signal(Signal::Hup);
    let log = server.wait_for_log(|t| log_events(t, "reload").len() >= n, TIMEOUT);
    log_events(&log, "reload")[n - 1].to_string()
}

fn motd(c: &mut Client) -> Vec<String> {
    c.send("MOTD");
    let lines = c.collect_until(|l| l.is("376") || l.is("422"), TIMEOUT);
    lines.iter().filter(|l| l.is("372")).map(|l| l.last().trim_start_matches("- ").to_string()).collect()
}

/// Proves `from` can still reach `to` with a private message.
fn still_talks(from: &mut Client, to: &mut Client, to_nick: &str, text: &str) {
    from.send(&format!("PRIVMSG {to_nick} :{text}"));
    let got = to.expect(|l| l.is("PRIVMSG") && l.last() == text, TIMEOUT);
    assert_eq!(got.last(), text);
}

#[test]
fn a_client_stays_connected_through_sighup_and_rehash_and_sees_the_new_motd() {
    let server = Server::start_with("motd = [\"first\"]\n");
    let mut alice = operator(&server, "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    assert_eq!(motd(&mut bob), ["first"]);

    write_config(&server, "motd = [\"second\"]\n");
    let record = sighup(&server, 1);
    assert!(record.contains("result=\"applied\"") && record.contains("by=\"signal SIGHUP\""), "{record}");
    assert_eq!(motd(&mut bob), ["second"]);
    still_talks(&mut alice, &mut bob, "bob", "after the signal");

    write_config(&server, "motd = [\"third\", \"and more\"]\n");
    let answer = rehash(&mut alice);
    let done = answer.iter().find(|l| l.is("382")).unwrap_or_else(|| panic!("no 382 in {answer:?}"));
    assert_eq!(done.param(1), config_file(&server).display().to_string());
    assert_eq!(done.last(), "Rehashing");
    assert_eq!(motd(&mut bob), ["third", "and more"]);
    still_talks(&mut bob, &mut alice, "alice", "after REHASH");
    let log = server.wait_for_log(|t| log_events(t, "reload").len() >= 2, TIMEOUT);
    assert!(log_events(&log, "reload")[1].contains("(operator admin)"), "{log}");
}

#[test]
fn a_lowered_topic_length_applies_to_the_next_topic() {
    let server = Server::start_with("");
    let mut alice = operator(&server, "alice");
    // Her own channel: its creator may set the topic.
    alice.send("JOIN #plans");
    alice.expect(|l| l.is("366"), TIMEOUT);
    alice.send("TOPIC #plans :a topic well over ten bytes");
    assert_eq!(alice.expect(|l| l.is("TOPIC"), TIMEOUT).last(), "a topic well over ten bytes");

    write_config(&server, "[limits]\ntopic_len = 10\n");
    rehash(&mut alice).iter().find(|l| l.is("382")).expect("382");
    alice.send("TOPIC #plans :a topic well over ten bytes");
    assert_eq!(alice.expect(|l| l.is("TOPIC"), TIMEOUT).last(), "a topic we");
    // A client registering now is told the new limit.
    let mut late = Client::connect(server.irc_addr());
    let lines = late.register("late");
    assert!(lines.iter().any(|l| l.is("005") && l.params.iter().any(|p| p == "TOPICLEN=10")), "{lines:?}");
}

#[test]
fn rehash_by_a_non_operator_is_refused_with_481() {
    let server = Server::start_with("motd = [\"kept\"]\n");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    write_config(&server, "motd = [\"changed\"]\n");
    let answer = rehash(&mut bob);
    assert!(answer.iter().any(|l| l.is("481")), "{answer:?}");
    assert_eq!(motd(&mut bob), ["kept"]);
}

#[test]
fn a_broken_config_is_refused_with_the_key_named_and_the_old_one_stays() {
    let server = Server::start_with("motd = [\"kept\"]\n");
    let mut alice = operator(&server, "alice");
    alice.send("JOIN #plans");
    alice.expect(|l| l.is("366"), TIMEOUT);

    // A value the validation refuses.
    write_config(&server, "motd = [\"not applied\"]\n[limits]\ntopic_len = 0\n");
    let answer = rehash(&mut alice);
    let fail = answer.iter().find(|l| l.is("FAIL")).unwrap_or_else(|| panic!("no FAIL in {answer:?}"));
    assert_eq!(&fail.params[..2], ["REHASH", "CONFIG_INVALID"]);
    assert!(fail.last().contains("limits.topic_len"), "{fail:?}");
    assert_eq!(motd(&mut alice), ["kept"]);
    alice.send("TOPIC #plans :still the old length");
    assert_eq!(alice.expect(|l| l.is("TOPIC"), TIMEOUT).last(), "still the old length");

    // A TOML syntax error, by signal: refused, logged with the line.
    write_config(&server, "motd = [\"not applied\"\n");
    let record = sighup(&server, 2);
    assert!(record.contains("result=\"refused\"") && record.contains("line 1"), "{record}");
    let stderr = server.wait_for_stderr(|l| l.contains("reload refused") && l.contains("SIGHUP"), TIMEOUT);
    assert!(stderr.contains("line 1"), "{stderr}");
    assert_eq!(motd(&mut alice), ["kept"]);
    let log = server.log_text();
    assert!(log_events(&log, "reload")[0].contains("key=\"limits.topic_len\""), "{log}");
}

#[test]
fn a_changed_listener_is_reported_as_needing_a_restart_and_the_rest_applies() {
    let server = Server::start_with("");
    let mut alice = operator(&server, "alice");
    write_config(&server, "motd = [\"applied\"]\n[irc]\ntls_listen = [\"127.0.0.1:0\"]\n");
    let answer = rehash(&mut alice);
    assert!(answer.iter().any(|l| l.is("382")), "{answer:?}");
    let notice = answer.iter().find(|l| l.is("NOTICE")).unwrap_or_else(|| panic!("no NOTICE in {answer:?}"));
    assert!(notice.last().contains("need a restart") && notice.last().contains("irc.tls_listen"), "{notice:?}");
    assert_eq!(motd(&mut alice), ["applied"]);
    assert!(server.addr("ircs").is_none());
    let log = server.wait_for_log(|t| !log_events(t, "reload").is_empty(), TIMEOUT);
    assert!(log_events(&log, "reload")[0].contains("restart=\"irc.tls_listen\""), "{log}");
}

#[test]
fn allowed_origins_of_the_file_store_and_the_websocket_change_with_a_reload() {
    let page = "https://chat.example.org";
    let server = Server::start_with("");
    let http = server.http_addr().expect("a file store");
    let preflight = || {
        let headers = [("Origin", page.to_string()), ("Access-Control-Request-Method", "PUT".to_string())];
        support::http::request(http, "OPTIONS", "/files/x.txt", &headers, None)
    };
    let socket = || WsClient::open(http, &Open { protocols: &["text.ircv3.net"], origin: Some(page) });
    assert_eq!(preflight().header("access-control-allow-origin"), None);
    assert!(socket().is_err(), "a page from elsewhere is refused");

    write_config(
        &server,
        &format!("[files]\ncors_allowed_origins = [\"{page}\"]\n[websocket]\nallowed_origins = [\"{page}\"]\n"),
    );
    sighup(&server, 1);
    assert_eq!(preflight().header("access-control-allow-origin"), Some(page));
    assert!(socket().is_ok(), "the listed page may open the socket now");
}

/// A self-signed certificate for `localhost`, written as PEM into `dir`.
fn write_certificate(dir: &std::path::Path) -> CertificateDer<'static> {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), made.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), made.signing_key.serialize_pem()).unwrap();
    CertificateDer::from_pem_file(dir.join("cert.pem")).unwrap()
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A TLS connection that trusts only `cert`; the handshake is done.
fn connect_tls(addr: SocketAddr, cert: &CertificateDer<'static>) -> Tls {
    let mut roots = RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    let conn = ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap()).unwrap();
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).expect("the handshake");
    }
    tls
}

fn presented(tls: &Tls) -> String {
    let chain = tls.conn.peer_certificates().expect("a server certificate");
    parley_server::tls::fingerprint(&chain[0])
}

fn read_until(reader: &mut BufReader<Tls>, needle: &str) -> String {
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).expect("a line before the timeout");
        assert!(n > 0, "connection closed before {needle:?}");
        if line.contains(needle) {
            return line;
        }
    }
}

#[test]
fn a_renewed_certificate_reaches_new_tls_clients_while_old_sessions_continue() {
    let dir = tempfile::tempdir().unwrap();
    let old_cert = write_certificate(dir.path());
    let toml = format!(
        "[irc]\ntls_listen = [\"127.0.0.1:0\"]\n[files]\ntls_listen = [\"127.0.0.1:0\"]\n\
         [tls]\ncert = {:?}\nkey = {:?}\n",
        dir.path().join("cert.pem"),
        dir.path().join("key.pem")
    );
    let server = Server::start_with(&toml);
    let (ircs, https) = (server.addr("ircs").unwrap(), server.addr("https").unwrap());
    let old_fp = parley_server::tls::fingerprint(&old_cert);
    let mut old = BufReader::new(connect_tls(ircs, &old_cert));
    assert_eq!(presented(old.get_ref()), old_fp);
    old.get_mut().write_all(b"NICK early\r\nUSER e 0 * :E\r\n").unwrap();
    read_until(&mut old, " 366 ");

    // The renewal replaces the files in place, as certbot's hook would.
    let new_cert = write_certificate(dir.path());
    let new_fp = parley_server::tls::fingerprint(&new_cert);
    assert_ne!(new_fp, old_fp);
    write_config(&server, &toml);
    let record = sighup(&server, 1);
    assert!(record.contains("result=\"applied\""), "{record}");

    for addr in [ircs, https] {
        assert_eq!(presented(&connect_tls(addr, &new_cert)), new_fp, "new handshakes on {addr}");
    }
    let mut plain = Client::registered(server.irc_addr(), "plain");
    old.get_mut().write_all(b"PRIVMSG plain :the old session goes on\r\n").unwrap();
    plain.expect(|l| l.is("PRIVMSG") && l.last() == "the old session goes on", TIMEOUT);
    plain.send("PRIVMSG early :and hears back");
    assert!(read_until(&mut old, "PRIVMSG early").contains("and hears back"));
    assert_eq!(presented(old.get_ref()), old_fp);
}

#[test]
fn diagnostics_are_json_lines_with_parley_log_format_json() {
    let server = Server::start_with_env("", &[("PARLEY_LOG_FORMAT", Some("json"))]);
    write_config(&server, "[limits]\ntopic_len = 0\n");
    server.signal(Signal::Hup);
    let line = server.wait_for_stderr(|l| l.contains("reload refused"), TIMEOUT);
    let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(event["level"], "ERROR");
    assert_eq!(event["fields"]["key"], "limits.topic_len");
    assert!(event["timestamp"].is_string(), "{event}");
    // Everything else parleyd said on stderr is JSON too.
    for l in server.output().lines().filter_map(|l| l.strip_prefix("[stderr] ")) {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
}
