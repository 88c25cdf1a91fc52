//! Every way of logging in, over real sockets to the real parleyd: SASL
//! SCRAM-SHA-256 and EXTERNAL (a TLS client certificate), PASS
//! `account:password`, NickServ, REGISTER (with two clients racing for
//! one name), the failure limit, and what a registered nick does to
//! someone using it without logging in.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
mod chat;

use chat::{scram_login, start_sasl};
use parley_testkit::{Client, Server, TIMEOUT};
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::Instant;

#[test]
fn scram_sha_256_logs_in_without_sending_the_password() {
    let server = Server::start();
    server.add_account("carol", "hunter22");
    let (_wrong, answer) = scram_login(&server, "eve", "carol", "guess");
    assert_eq!(answer, "904", "a wrong password fails at the proof");
    let (_nobody, answer) = scram_login(&server, "eve2", "nobody", "guess");
    assert_eq!(answer, "904", "an unknown account fails the same way, at the same step");
    let (mut c, answer) = scram_login(&server, "carol", "carol", "hunter22");
    assert_eq!(answer, "903");
    c.send("CAP END");
    c.expect(|l| l.is("001"), TIMEOUT);
    let mut d = Client::registered(server.irc_addr(), "dan");
    d.send("WHOIS carol");
    d.expect(|l| l.is("330") && l.param(2) == "carol", TIMEOUT);
}

#[test]
fn sasl_failures_are_cut_off_even_for_the_right_password() {
    let server = Server::start_with("[limits]\noper_failures_per_ip = 2\n");
    server.add_account("carol", "hunter22");
    for i in 0..2 {
        assert_eq!(scram_login(&server, &format!("eve{i}"), "carol", "guess").1, "904");
    }
    let mut c = start_sasl(&server, "carol", "PLAIN");
    c.expect(|l| l.is("AUTHENTICATE"), TIMEOUT);
    c.send(&format!("AUTHENTICATE {}", B64.encode("\0carol\0hunter22")));
    let refused = c.expect(|l| l.is("904") || l.is("903"), TIMEOUT);
    assert!(refused.is("904") && refused.last().contains("too many failed logins"), "{}", refused.raw);
}

#[test]
fn pass_with_account_and_password_logs_in_or_closes() {
    let server = Server::start();
    server.add_account("gus", "sesame");
    let mut wrong = Client::connect(server.irc_addr());
    wrong.send("PASS gus:nope");
    wrong.send("NICK gus");
    wrong.send("USER g 0 * :G");
    wrong.expect(|l| l.is("464"), TIMEOUT);
    wrong.expect_closed(TIMEOUT);
    let mut right = Client::connect(server.irc_addr());
    right.send("PASS gus:sesame");
    right.send("NICK gus");
    right.send("USER g 0 * :G");
    right.expect(|l| l.is("900") && l.param(2) == "gus", TIMEOUT);
    right.expect(|l| l.is("001"), TIMEOUT);
}

#[test]
fn nickserv_register_identify_and_the_account_survives_a_restart() {
    let server = Server::start_with("[accounts]\nnick_enforcement = \"off\"\n");
    let mut a = Client::registered(server.irc_addr(), "hana");
    a.send("PRIVMSG NickServ :REGISTER a-good-password");
    a.expect(|l| l.is("900"), TIMEOUT);
    a.expect(|l| l.is_from("NOTICE", "NickServ") && l.last().contains("registered"), TIMEOUT);
    let server = server.kill_and_restart();
    let mut b = Client::registered(server.irc_addr(), "hana");
    b.send("PRIVMSG NickServ :IDENTIFY wrong");
    b.expect(|l| l.is_from("NOTICE", "NickServ") && l.last().contains("Wrong"), TIMEOUT);
    b.send("PRIVMSG NickServ :IDENTIFY a-good-password");
    b.expect(|l| l.is("900") && l.param(2) == "hana", TIMEOUT);
}

#[test]
fn two_clients_registering_one_name_at_once_exactly_one_wins() {
    let server = Server::start_with("[accounts]\nregistrations_per_ip = 100\n");
    for round in 0..5 {
        let name = format!("racer{round}");
        let start = Arc::new(Barrier::new(2));
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let (addr, start, name) = (server.irc_addr(), start.clone(), name.clone());
                std::thread::spawn(move || {
                    let mut c = Client::connect(addr);
                    c.send("CAP LS 302");
                    c.send(&format!("NICK {name}"));
                    c.sync();
                    start.wait();
                    c.send("REGISTER * * a-good-password");
                    let answer = c.expect(|l| l.is("REGISTER") || l.is("FAIL"), TIMEOUT);
                    let code = if answer.is("FAIL") { answer.param(1) } else { answer.param(0) };
                    (answer.command.clone(), code.to_string())
                })
            })
            .collect();
        let answers: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        let won = answers.iter().filter(|(c, p)| c == "REGISTER" && p == "SUCCESS").count();
        let lost = answers.iter().filter(|(c, p)| c == "FAIL" && p == "ACCOUNT_EXISTS").count();
        assert_eq!((won, lost), (1, 1), "{answers:?}");
    }
}

#[test]
fn a_registered_nick_is_taken_back_after_the_grace_period() {
    let server = Server::start_with("[accounts]\nnick_grace_secs = 1\n");
    server.add_account("ivy", "sesame");
    let mut squatter = Client::connect(server.irc_addr());
    squatter.send("NICK ivy");
    squatter.send("USER s 0 * :S");
    squatter.expect(|l| l.is_from("NOTICE", "NickServ") && l.last().contains("Log in within 1 seconds"), TIMEOUT);
    let renamed = squatter.expect(|l| l.is("NICK"), TIMEOUT);
    assert!(renamed.param(0).starts_with("Guest"), "{}", renamed.raw);
    // Whoever logs in first is never given a grace period at all.
    let mut owner = Client::connect(server.irc_addr());
    owner.send("PASS ivy:sesame");
    owner.send("NICK ivy");
    owner.send("USER o 0 * :O");
    owner.expect(|l| l.is("001"), TIMEOUT);
    owner.expect_none(|l| l.is_from("NOTICE", "NickServ"), "a grace period for the owner");
}

#[test]
fn refusing_mode_keeps_registered_nicks_for_their_owners() {
    let server = Server::start_with("[accounts]\nnick_enforcement = \"refuse\"\n");
    server.add_account("jo", "sesame");
    let mut other = Client::registered(server.irc_addr(), "kim");
    other.send("NICK jo");
    let refused = other.expect(|l| l.is("433"), TIMEOUT);
    assert!(refused.last().contains("registered to an account"), "{}", refused.raw);
    let mut owner = Client::connect(server.irc_addr());
    owner.send("PASS jo:sesame");
    owner.send("NICK jo");
    owner.send("USER j 0 * :J");
    owner.expect(|l| l.is("001"), TIMEOUT);
}

#[test]
fn account_changes_reach_peers_that_asked() {
    let server = Server::start_with("[accounts]\nnick_enforcement = \"off\"\n");
    server.add_account("lea", "sesame");
    let mut watcher = Client::connect(server.irc_addr());
    watcher.register_with_caps("max", &["account-notify", "extended-join", "account-tag"]);
    watcher.send("JOIN #room");
    watcher.expect(|l| l.is("366"), TIMEOUT);
    let mut lea = Client::registered(server.irc_addr(), "lea");
    lea.send("JOIN #room");
    let joined = watcher.expect(|l| l.is_from("JOIN", "lea"), TIMEOUT);
    assert_eq!((joined.param(1), joined.param(2)), ("*", "Test user lea"), "{}", joined.raw);
    lea.send("PRIVMSG NickServ :IDENTIFY sesame");
    let account = watcher.expect(|l| l.is_from("ACCOUNT", "lea"), TIMEOUT);
    assert_eq!(account.param(0), "lea");
    lea.send("PRIVMSG #room :hello");
    let said = watcher.expect(|l| l.is_from("PRIVMSG", "lea"), TIMEOUT);
    assert_eq!(said.tag("account"), Some("lea"), "{}", said.raw);
}

// EXTERNAL: a TLS client certificate registered to the account.

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn tls_client(server: &Server, identity: Option<&rcgen::CertifiedKey<rcgen::KeyPair>>) -> BufReader<Tls> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(server.tls_cert()).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some(made) => {
            let key = PrivateKeyDer::from_pem_slice(made.signing_key.serialize_pem().as_bytes()).unwrap();
            builder.with_client_auth_cert(vec![made.cert.der().clone()], key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    let tcp = TcpStream::connect(server.addr("ircs").expect("a TLS listener")).unwrap();
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    let conn = ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap()).unwrap();
    BufReader::new(StreamOwned::new(conn, tcp))
}

fn send(c: &mut BufReader<Tls>, line: &str) {
    c.get_mut().write_all(format!("{line}\r\n").as_bytes()).unwrap();
}

/// Reads lines until one contains `needle`; returns it.
fn read_until(c: &mut BufReader<Tls>, needle: &str) -> String {
    let deadline = Instant::now() + TIMEOUT;
    let mut seen = String::new();
    while Instant::now() < deadline {
        let mut line = String::new();
        if c.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if line.contains(needle) {
            return line;
        }
        seen.push_str(&line);
    }
    panic!("no line with {needle:?}; saw:\n{seen}");
}

#[test]
fn external_logs_in_with_a_registered_client_certificate() {
    let server = Server::start_with("[irc]\ntls_listen = [\"127.0.0.1:0\"]\n");
    server.add_account("mia", "sesame");
    let made = rcgen::generate_simple_self_signed(vec!["mia".into()]).unwrap();
    let fingerprint = parley_server::tls::client_fingerprint(made.cert.der());

    // Without a certificate, EXTERNAL is refused at once.
    let mut bare = tls_client(&server, None);
    send(&mut bare, "CAP REQ sasl");
    send(&mut bare, "AUTHENTICATE EXTERNAL");
    assert!(read_until(&mut bare, " 904 ").contains("client certificate"));

    // With an unregistered certificate: refused at the end.
    let mut c = tls_client(&server, Some(&made));
    send(&mut c, "CAP REQ sasl");
    send(&mut c, "AUTHENTICATE EXTERNAL");
    read_until(&mut c, "AUTHENTICATE +");
    send(&mut c, "AUTHENTICATE +");
    read_until(&mut c, " 904 ");

    // Logged in by password, the user adds the certificate it holds.
    send(&mut c, "NICK mia");
    send(&mut c, "USER m 0 * :M");
    send(&mut c, "CAP END");
    read_until(&mut c, " 001 ");
    send(&mut c, "PRIVMSG NickServ :IDENTIFY sesame");
    read_until(&mut c, " 900 ");
    send(&mut c, "PRIVMSG NickServ :CERT ADD");
    assert!(read_until(&mut c, "Added certificate").contains(&fingerprint));

    // Next time the certificate alone logs in.
    let mut again = tls_client(&server, Some(&made));
    send(&mut again, "CAP REQ sasl");
    send(&mut again, "AUTHENTICATE EXTERNAL");
    read_until(&mut again, "AUTHENTICATE +");
    send(&mut again, "AUTHENTICATE +");
    assert!(read_until(&mut again, " 900 ").contains(" mia "));
    read_until(&mut again, " 903 ");
}
