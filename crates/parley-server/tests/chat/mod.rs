//! Client helpers the history, login and PostgreSQL tests share: a client
//! registered with the history capabilities (logged in with SASL PLAIN if
//! asked), CHATHISTORY and SEARCH requests, and a whole SCRAM-SHA-256
//! exchange. Each test binary uses some of them, hence `dead_code`.
#![allow(dead_code)]

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use parley_server::scram;
use parley_testkit::{Client, Line, Server, TIMEOUT};

pub const CAPS: &[&str] =
    &["batch", "draft/chathistory", "echo-message", "message-tags", "server-time", "soju.im/search"];

/// Registers `nick` with [`CAPS`] (and more), logged in to the account of
/// the same name (password `pw-<nick>`) when `account` is set.
pub fn connect(server: &Server, nick: &str, account: bool, more: &[&str]) -> Client {
    let mut c = Client::connect(server.irc_addr());
    let mut caps: Vec<&str> = CAPS.iter().chain(more).copied().collect();
    if account {
        caps.push("sasl");
    }
    c.send("CAP LS 302");
    c.send(&format!("NICK {nick}"));
    c.send(&format!("USER {nick} 0 * :{nick}"));
    c.send(&format!("CAP REQ :{}", caps.join(" ")));
    c.expect(|l| l.is("CAP") && l.param(1) == "ACK", TIMEOUT);
    if account {
        c.send("AUTHENTICATE PLAIN");
        c.expect(|l| l.is("AUTHENTICATE"), TIMEOUT);
        let token = B64.encode(format!("{nick}\0{nick}\0pw-{nick}"));
        c.send(&format!("AUTHENTICATE {token}"));
        c.expect(|l| l.is("903"), TIMEOUT);
    }
    c.send("CAP END");
    c.expect(|l| l.is("366") && l.param(1) == "#lobby", TIMEOUT);
    c.sync();
    c
}

/// Sends a CHATHISTORY request; returns the PRIVMSG texts of the batch,
/// or the FAIL line's code.
pub fn history(c: &mut Client, request: &str) -> Result<Vec<String>, String> {
    batch_texts(c, &format!("CHATHISTORY {request}"))
}

/// Sends `command`, which answers with one batch of PRIVMSGs or a FAIL;
/// returns the texts, or the FAIL line's code.
fn batch_texts(c: &mut Client, command: &str) -> Result<Vec<String>, String> {
    // What arrived before (live messages) is not the answer.
    c.sync();
    c.send(command);
    let lines = c.collect_until(|l| (l.is("BATCH") && l.param(0).starts_with('-')) || l.is("FAIL"), TIMEOUT);
    let last = lines.last().expect("a last line");
    if last.is("FAIL") {
        return Err(last.param(1).to_string());
    }
    Ok(lines.iter().filter(|l| l.is("PRIVMSG") && l.tag("batch").is_some()).map(|l| l.last().to_string()).collect())
}

pub fn said(c: &mut Client, target: &str, text: &str) -> Line {
    c.send(&format!("PRIVMSG {target} :{text}"));
    c.expect(|l| l.is("PRIVMSG") && l.last() == text, TIMEOUT)
}

/// Sends a SEARCH; returns the texts found, or the FAIL code.
pub fn search(c: &mut Client, attrs: &str) -> Result<Vec<String>, String> {
    batch_texts(c, &format!("SEARCH {attrs}"))
}

/// Starts SASL: `CAP LS 302`, `CAP REQ sasl`, NICK, USER, `AUTHENTICATE mechanism`.
pub fn start_sasl(server: &Server, nick: &str, mechanism: &str) -> Client {
    let mut c = Client::connect(server.irc_addr());
    c.send("CAP LS 302");
    let ls = c.expect(|l| l.is("CAP") && l.param(1) == "LS", TIMEOUT);
    assert!(ls.last().contains("sasl=PLAIN,EXTERNAL,SCRAM-SHA-256"), "{}", ls.raw);
    c.send("CAP REQ sasl");
    c.expect(|l| l.is("CAP") && l.param(1) == "ACK", TIMEOUT);
    c.send(&format!("NICK {nick}"));
    c.send("USER u 0 * :U");
    c.send(&format!("AUTHENTICATE {mechanism}"));
    c
}

/// A whole SCRAM-SHA-256 exchange; returns the client and the numeric that
/// ends it (903 or 904).
pub fn scram_login(server: &Server, nick: &str, name: &str, password: &str) -> (Client, String) {
    let mut c = start_sasl(server, nick, "SCRAM-SHA-256");
    c.expect(|l| l.is("AUTHENTICATE") && l.param(0) == "+", TIMEOUT);
    let first_bare = format!("n={name},r=fyko+d2lbbFgONRv9qkxdawL");
    c.send(&format!("AUTHENTICATE {}", B64.encode(format!("n,,{first_bare}"))));
    let challenge = c.expect(|l| l.is("AUTHENTICATE") || l.is("904"), TIMEOUT);
    assert!(challenge.is("AUTHENTICATE"), "{}", challenge.raw);
    let server_first = String::from_utf8(B64.decode(challenge.param(0)).unwrap()).unwrap();
    assert!(server_first.starts_with("r=fyko+d2lbbFgONRv9qkxdawL"), "{server_first}");
    let (client_final, expected) = scram::client_final(password, &first_bare, &server_first).unwrap();
    c.send(&format!("AUTHENTICATE {}", B64.encode(client_final)));
    let answer = c.expect(|l| l.is("AUTHENTICATE") || l.is("904"), TIMEOUT);
    if answer.is("904") {
        return (c, "904".into());
    }
    let server_final = String::from_utf8(B64.decode(answer.param(0)).unwrap()).unwrap();
    assert_eq!(server_final, expected, "the server proves it knows the credentials");
    c.send("AUTHENTICATE +");
    let end = c.expect(|l| l.is("903") || l.is("904"), TIMEOUT);
    (c, end.command.clone())
}
