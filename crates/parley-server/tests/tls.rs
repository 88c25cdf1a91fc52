//! TLS on both listeners: a real rustls client over the IRC and HTTPS ports,
//! a client that does not trust the certificate, plain text on the TLS port,
//! and the STS policy.

use parley_testkit::{Client, Server, TIMEOUT};
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Instant;

const TLS_CONFIG: &str = "[irc]\ntls_listen = [\"127.0.0.1:0\"]\n[files]\ntls_listen = [\"127.0.0.1:0\"]\n";

fn client_config(trusted: &[CertificateDer<'static>]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in trusted {
        roots.add(c.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn server_cert(server: &Server) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(server.tls_cert()).unwrap().map(|c| c.unwrap()).collect()
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn connect_tls(addr: SocketAddr, config: Arc<ClientConfig>) -> std::io::Result<Tls> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(TIMEOUT))?;
    let conn = ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    let mut tls = StreamOwned::new(conn, tcp);
    // Drive the handshake now so certificate errors show here.
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// Reads lines until one contains `needle`.
fn read_until(reader: &mut BufReader<Tls>, needle: &str) -> String {
    let deadline = Instant::now() + TIMEOUT;
    let mut seen = String::new();
    loop {
        assert!(Instant::now() < deadline, "no line with {needle:?}; saw:\n{seen}");
        let mut line = String::new();
        let n = reader.read_line(&mut line).unwrap_or(0);
        assert!(n > 0, "connection closed before {needle:?}; saw:\n{seen}");
        if line.contains(needle) {
            return line;
        }
        seen.push_str(&line);
    }
}

#[test]
fn irc_over_tls_chats_with_plain_text_users() {
    let server = Server::start_with(TLS_CONFIG);
    // The fingerprint is announced (in the readiness line as well as on
    // stderr) and is the SHA-256 of the certificate the server presents.
    let announced = server.ready_field("tls-sha256").expect("tls-sha256 in the readiness line").to_string();
    assert_eq!(announced, parley_server::tls::fingerprint(&server_cert(&server)[0]));
    let mut tls = connect_tls(server.addr("ircs").unwrap(), client_config(&server_cert(&server))).unwrap();
    tls.write_all(b"NICK secure\r\nUSER s 0 * :S\r\n").unwrap();
    let mut reader = BufReader::new(tls);
    read_until(&mut reader, " 366 ");
    let mut plain = Client::registered(server.irc_addr(), "plain");
    reader.get_mut().write_all(b"PRIVMSG #lobby :over tls\r\n").unwrap();
    let got = plain.expect(|l| l.is("PRIVMSG") && l.nick() == "secure", TIMEOUT);
    assert_eq!(got.last(), "over tls");
    plain.send("PRIVMSG secure :back in plain text");
    let line = read_until(&mut reader, "PRIVMSG secure");
    assert!(line.contains("back in plain text"));
    server.wait_for_log(|t| t.contains("transport=\"tls\""), TIMEOUT);
}

#[test]
fn a_client_that_does_not_trust_the_certificate_refuses_it() {
    let server = Server::start_with(TLS_CONFIG);
    let other = Server::start_with(TLS_CONFIG);
    // Trusting another server's self-signed certificate is not trusting this one.
    let Err(err) = connect_tls(server.addr("ircs").unwrap(), client_config(&server_cert(&other))) else {
        panic!("the handshake must fail");
    };
    assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");
    // The server is unharmed.
    Client::registered(server.irc_addr(), "after");
}

#[test]
fn plain_text_on_the_tls_port_is_dropped_without_harm() {
    let server = Server::start_with(TLS_CONFIG);
    let mut s = TcpStream::connect(server.addr("ircs").unwrap()).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(b"NICK sneaky\r\nUSER s 0 * :S\r\n").unwrap();
    let mut buf = Vec::new();
    // The server answers with a TLS alert or nothing, then closes.
    let _ = s.read_to_end(&mut buf);
    assert!(!String::from_utf8_lossy(&buf).contains("001"), "no IRC over the TLS port without TLS");
    Client::registered(server.irc_addr(), "fine");
    let tls = connect_tls(server.addr("ircs").unwrap(), client_config(&server_cert(&server)));
    assert!(tls.is_ok(), "the TLS port still works");
    server.wait_for_log(|t| t.contains("tls_failed"), TIMEOUT);
}

#[test]
fn the_file_store_over_https_is_advertised_and_works() {
    let server = Server::start_with(TLS_CONFIG);
    let mut c = Client::connect(server.irc_addr());
    c.send("NICK web");
    c.send("USER w 0 * :W");
    let https = server.addr("https").unwrap();
    let line = c.expect(|l| l.params.iter().any(|p| p.starts_with("draft/FILEHOST=")), TIMEOUT);
    let url = line.params.iter().find_map(|p| p.strip_prefix("draft/FILEHOST=")).unwrap().to_string();
    assert_eq!(url, format!("https://{https}/files"));
    c.expect(|l| l.is("366"), TIMEOUT);
    c.send("EXTJWT *");
    let token = c.expect(|l| l.is("EXTJWT"), TIMEOUT).last().to_string();
    let mut tls = connect_tls(https, client_config(&server_cert(&server))).unwrap();
    let body = b"secret plans";
    let req = format!(
        "PUT /files/plans.txt HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(req.as_bytes()).unwrap();
    tls.write_all(body).unwrap();
    let mut answer = String::new();
    let _ = tls.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
}

#[test]
fn sts_tells_plain_clients_the_tls_port_and_tls_clients_the_duration() {
    let server =
        Server::start_with(&format!("{TLS_CONFIG}\n").replace("[irc]\n", "[irc]\nsts_duration_secs = 86400\n"));
    let ircs = server.addr("ircs").unwrap();
    let mut plain = Client::connect(server.irc_addr());
    plain.send("CAP LS 302");
    let ls = plain.expect(|l| l.is("CAP"), TIMEOUT);
    assert!(ls.last().split(' ').any(|c| c == format!("sts=port={}", ircs.port())), "{}", ls.last());
    let mut tls = connect_tls(ircs, client_config(&server_cert(&server))).unwrap();
    tls.write_all(b"CAP LS 302\r\n").unwrap();
    let mut reader = BufReader::new(tls);
    let line = read_until(&mut reader, " LS ");
    assert!(line.contains("sts=duration=86400"), "{line}");
}

/// Registers over TLS and returns every line up to the end of the MOTD.
fn register_over_tls(server: &Server) -> String {
    let mut tls = connect_tls(server.addr("ircs").unwrap(), client_config(&server_cert(server))).unwrap();
    tls.write_all(b"NICK secure\r\nUSER s 0 * :S\r\n").unwrap();
    let mut reader = BufReader::new(tls);
    let mut seen = String::new();
    loop {
        let line = read_until(&mut reader, "");
        seen.push_str(&line);
        if line.contains(" 376 ") || line.contains(" 422 ") {
            return seen;
        }
    }
}

#[test]
fn filehost_over_tls_is_offered_only_as_https() {
    let server = Server::start_with(TLS_CONFIG);
    let lines = register_over_tls(&server);
    let https = format!("https://{}/files", server.addr("https").unwrap());
    assert!(lines.contains(&format!("soju.im/FILEHOST={https}")), "{lines}");
    assert!(lines.contains(&format!("draft/FILEHOST={https}")), "{lines}");
    // With the store on plain HTTP only, a TLS connection is offered no
    // upload URL: FILEHOST clients must refuse http under TLS anyway.
    let server = Server::start_with("[irc]\ntls_listen = [\"127.0.0.1:0\"]\n");
    let lines = register_over_tls(&server);
    assert!(!lines.contains("FILEHOST="), "{lines}");
    let mut plain = Client::connect(server.irc_addr());
    let seen = plain.register("plain");
    assert!(seen.iter().flat_map(|l| l.params.iter()).any(|p| p.starts_with("soju.im/FILEHOST=http://")));
}

#[test]
fn a_websocket_over_https_is_a_secure_session() {
    use parley_testkit::ws::{tungstenite, Message};
    let server = Server::start_with(TLS_CONFIG);
    let https = server.addr("https").unwrap();
    let tls = connect_tls(https, client_config(&server_cert(&server))).unwrap();
    let uri: tungstenite::http::Uri = format!("ws://localhost:{}/socket", https.port()).parse().unwrap();
    let request = tungstenite::ClientRequestBuilder::new(uri).with_sub_protocol("text.ircv3.net");
    let (mut ws, _) = tungstenite::client::client(request, tls).unwrap_or_else(|e| panic!("handshake: {e}"));
    ws.send(Message::text("NICK secure")).unwrap();
    ws.send(Message::text("USER secure 0 * :over https")).unwrap();
    // A secure session is offered the store's https URL (plain: http).
    let want = format!("soju.im/FILEHOST=https://{https}/files");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        assert!(Instant::now() < deadline, "no FILEHOST in the welcome");
        match ws.read().unwrap() {
            Message::Text(line) if line.contains("FILEHOST=") => {
                assert!(line.contains(&want), "{line}");
                break;
            }
            _ => {}
        }
    }
    let log = server.wait_for_log(|log| log.contains("transport=\"websocket\""), TIMEOUT);
    assert!(log.contains("registered"), "{log}");
}
