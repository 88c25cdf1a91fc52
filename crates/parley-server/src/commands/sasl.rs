//! AUTHENTICATE: logging in to an account with SASL (IRCv3 `sasl` 3.2).
//!
//! Mechanisms: PLAIN (name and password), SCRAM-SHA-256 (the password never
//! crosses the wire; `crate::scram`) and EXTERNAL (the TLS client
//! certificate registered to the account). The client names the
//! mechanism, the server answers `AUTHENTICATE +`, and each side's
//! messages travel in base64, in chunks of 400 bytes (a chunk shorter than
//! 400, or `+`, ends one). Checks run on the blocking pool under the same
//! failure limits as OPER, and an unknown account costs and looks the same
//! as a wrong password, so neither can be guessed at speed.

use super::account;
use crate::accounts::AccountError;
use crate::login::{Mechanism, Pending, Stage};
use crate::scram;
use crate::session::Ctx;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use parley_proto::numeric::*;
use parley_proto::MessageRef;
use std::sync::OnceLock;

/// The mechanisms offered, as `CAP LS 302` and `908` list them.
pub const MECHANISMS: &str = "PLAIN,EXTERNAL,SCRAM-SHA-256";
/// The longest chunk of an AUTHENTICATE payload.
const CHUNK: usize = 400;
/// The longest payload, all chunks together (name, name, password).
const MAX_PAYLOAD: usize = 4 * CHUNK;

pub async fn authenticate(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let arg = msg.params[0];
    if ctx.session.account().is_some() {
        ctx.reply(ERR_SASLALREADY, &["You have already authenticated using SASL"]);
        return;
    }
    if arg == "*" {
        ctx.session.login_mut().pending = None;
        ctx.reply(ERR_SASLABORTED, &["SASL authentication aborted"]);
        return;
    }
    let secure_with_cert = ctx.session.certfp().is_some();
    let login = ctx.session.login_mut();
    let Some(pending) = login.pending.as_mut() else {
        let mechanism = match arg.to_ascii_uppercase().as_str() {
            "PLAIN" => Mechanism::Plain,
            "SCRAM-SHA-256" => Mechanism::Scram,
            "EXTERNAL" if secure_with_cert => Mechanism::External,
            "EXTERNAL" => {
                fail(ctx, "connect over TLS with a client certificate to use EXTERNAL");
                return;
            }
            _ => {
                ctx.reply(RPL_SASLMECHS, &[MECHANISMS, "are available SASL mechanisms"]);
                ctx.reply(ERR_SASLFAIL, &["SASL authentication failed"]);
                return;
            }
        };
        login.pending = Some(Pending { mechanism, buffer: String::new(), stage: Stage::First });
        ctx.send_bytes(b"AUTHENTICATE +\r\n");
        return;
    };
    if arg.len() > CHUNK {
        login.pending = None;
        ctx.reply(ERR_SASLTOOLONG, &["SASL message too long: at most 400 bytes a line"]);
        return;
    }
    if pending.buffer.len() + arg.len() > MAX_PAYLOAD {
        login.pending = None;
        fail(ctx, "the message is too long");
        return;
    }
    if arg != "+" {
        pending.buffer.push_str(arg);
    }
    if arg.len() == CHUNK {
        return; // more to come
    }
    let Some(mut pending) = login.pending.take() else { return };
    let Ok(payload) = B64.decode(std::mem::take(&mut pending.buffer)) else {
        fail(ctx, "the message is not valid base64");
        return;
    };
    let ip = ctx.session.addr.ip();
    let failures = ctx.server.operators.failures().clone();
    if let Some(wait) = failures.limited(ip) {
        fail(ctx, &format!("too many failed logins; try again in {wait} seconds"));
        account::log(ctx, pending.mechanism.name(), "", "rate_limited");
        return;
    }
    let mechanism = pending.mechanism;
    // The account tried, for the activity log.
    let mut tried = String::new();
    let outcome = match (mechanism, pending.stage) {
        (Mechanism::Plain, _) => match plain_credentials(&payload) {
            Some((name, password)) => {
                tried.clone_from(&name);
                let accounts = ctx.server.accounts.clone();
                blocking(move || accounts.verify(&name, &password).map(|a| a.name)).await
            }
            None => Err(Failure::Malformed("the PLAIN message is malformed")),
        },
        (Mechanism::External, _) => {
            let certfp = ctx.session.certfp().unwrap_or_default().to_string();
            let accounts = ctx.server.accounts.clone();
            let found = blocking(move || Ok(accounts.by_certfp(&certfp)?.map(|a| a.name))).await;
            match (found, std::str::from_utf8(&payload)) {
                (Ok(Some(name)), Ok(authzid)) if authzid.is_empty() || parley_proto::irc_eq(authzid, &name) => Ok(name),
                (Ok(_), _) => Err(Failure::Refused),
                (Err(e), _) => Err(e),
            }
        }
        (Mechanism::Scram, Stage::First) => {
            let first = std::str::from_utf8(&payload).ok().map(scram::ClientFirst::parse);
            let Some(Ok(first)) = first else {
                fail(ctx, "the SCRAM message is malformed");
                return;
            };
            let accounts = ctx.server.accounts.clone();
            let user = first.user.clone();
            let credentials = match blocking(move || accounts.scram(&user)).await {
                Ok(found) => found.unwrap_or_else(|| scram::Credentials::decoy(&first.user, decoy_secret())),
                Err(failure) => {
                    report(ctx, mechanism, &first.user, failure);
                    return;
                }
            };
            let (exchange, server_first) = scram::Exchange::start(first, credentials);
            send_payload(ctx, server_first.as_bytes());
            ctx.session.login_mut().pending =
                Some(Pending { mechanism, buffer: String::new(), stage: Stage::ScramProof(Box::new(exchange)) });
            return;
        }
        (Mechanism::Scram, Stage::ScramProof(exchange)) => {
            match std::str::from_utf8(&payload)
                .map_err(|_| scram::ScramError::Malformed)
                .and_then(|m| exchange.finish(m))
            {
                Ok((user, server_final)) => {
                    send_payload(ctx, server_final.as_bytes());
                    let stage = Stage::ScramDone(user.to_string());
                    ctx.session.login_mut().pending = Some(Pending { mechanism, buffer: String::new(), stage });
                    return;
                }
                Err(scram::ScramError::Refused) => {
                    let user = exchange.user().to_string();
                    report(ctx, mechanism, &user, Failure::Refused);
                    return;
                }
                Err(e) => Err(Failure::Malformed(scram_reason(&e))),
            }
        }
        (Mechanism::Scram, Stage::ScramDone(user)) => {
            tried.clone_from(&user);
            if !payload.is_empty() {
                Err(Failure::Malformed("the SCRAM exchange is over: send +"))
            } else {
                let accounts = ctx.server.accounts.clone();
                match blocking(move || Ok(accounts.get(&user)?.map(|a| a.name))).await {
                    Ok(Some(name)) => Ok(name),
                    Ok(None) => Err(Failure::Refused),
                    Err(e) => Err(e),
                }
            }
        }
    };
    match outcome {
        Ok(name) => {
            account::log_in(ctx, &name, mechanism.name()).await;
            ctx.reply(RPL_SASLSUCCESS, &["SASL authentication successful"]);
        }
        Err(failure) => report(ctx, mechanism, &tried, failure),
    }
}

/// Why an exchange failed.
enum Failure {
    /// Wrong name, password, proof or certificate: counted.
    Refused,
    /// A message that does not follow the mechanism: not counted.
    Malformed(&'static str),
    /// The account store failed (a disk error): not the client's fault.
    Store,
}

fn report(ctx: &mut Ctx<'_>, mechanism: Mechanism, account: &str, failure: Failure) {
    match failure {
        Failure::Refused => {
            ctx.server.operators.failures().note(ctx.session.addr.ip());
            ctx.reply(ERR_SASLFAIL, &["SASL authentication failed"]);
            account::log(ctx, mechanism.name(), account, "denied");
        }
        Failure::Malformed(why) => fail(ctx, why),
        Failure::Store => {
            fail(ctx, "the account store is unavailable; try again later");
            account::log(ctx, mechanism.name(), account, "error");
        }
    }
}

/// Runs an account-store call on the blocking pool; `Refused` and store
/// errors become [`Failure`]s.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, AccountError> + Send + 'static,
) -> Result<T, Failure> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(AccountError::Refused)) => Err(Failure::Refused),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "account lookup failed");
            Err(Failure::Store)
        }
        Err(_) => Err(Failure::Store),
    }
}

fn fail(ctx: &Ctx<'_>, why: &str) {
    ctx.reply(ERR_SASLFAIL, &[format!("SASL authentication failed: {why}")]);
}

fn scram_reason(e: &scram::ScramError) -> &'static str {
    match e {
        scram::ScramError::ChannelBinding => "channel binding is not supported",
        scram::ScramError::Authzid => "logging in as another account is not supported",
        scram::ScramError::Nonce => "the nonce does not match",
        _ => "the SCRAM message is malformed",
    }
}

/// Sends a server SASL message: base64, in 400-byte chunks, with a `+`
/// after a last chunk of exactly 400.
fn send_payload(ctx: &Ctx<'_>, payload: &[u8]) {
    let text = B64.encode(payload);
    let mut rest = text.as_str();
    loop {
        let (chunk, tail) = rest.split_at(rest.len().min(CHUNK));
        ctx.send_bytes(format!("AUTHENTICATE {}\r\n", if chunk.is_empty() { "+" } else { chunk }).as_bytes());
        rest = tail;
        if chunk.len() < CHUNK {
            return;
        }
    }
}

/// The key for decoy SCRAM salts: random per process.
fn decoy_secret() -> &'static [u8] {
    static SECRET: OnceLock<[u8; 32]> = OnceLock::new();
    SECRET.get_or_init(rand::random)
}

/// The account name and password of a PLAIN payload: `authzid NUL authcid
/// NUL password` in base64, where the authzid is empty or the authcid.
fn plain_credentials(payload: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut parts = text.split('\0');
    let (authzid, authcid, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || authcid.is_empty() || !(authzid.is_empty() || authzid == authcid) {
        return None;
    }
    Some((authcid.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{codes, Harness};
    use base64::Engine;

    fn plain(authzid: &str, name: &str, password: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(format!("{authzid}\0{name}\0{password}"))
    }

    #[test]
    fn plain_payloads_name_one_account() {
        let decoded = |s: String| base64::engine::general_purpose::STANDARD.decode(s).unwrap();
        assert_eq!(super::plain_credentials(&decoded(plain("", "alice", "pw"))), Some(("alice".into(), "pw".into())));
        let same = decoded(plain("alice", "alice", "pw"));
        assert_eq!(super::plain_credentials(&same), Some(("alice".into(), "pw".into())));
        assert_eq!(super::plain_credentials(&decoded(plain("bob", "alice", "pw"))), None, "no logging in as another");
        assert_eq!(super::plain_credentials(b"\xff\0a\0b"), None);
    }

    #[tokio::test]
    async fn a_right_password_logs_in_and_a_wrong_one_does_not() {
        let h = Harness::new();
        h.server.accounts.create("alice", "sesame", false, 0).unwrap();
        let mut s = h.connect();
        h.run(&mut s, "CAP REQ sasl");
        assert_eq!(h.run_deferred(&mut s, "AUTHENTICATE PLAIN").await, "AUTHENTICATE +\r\n");
        let wrong = h.run_deferred(&mut s, &format!("AUTHENTICATE {}", plain("", "alice", "wrong"))).await;
        assert_eq!(codes(&wrong), ["904"]);
        h.run_deferred(&mut s, "AUTHENTICATE PLAIN").await;
        let right = h.run_deferred(&mut s, &format!("AUTHENTICATE {}", plain("", "ALICE", "sesame"))).await;
        assert_eq!(codes(&right), ["900", "903"], "{right}");
        assert_eq!(s.account(), Some("alice"));
        h.run(&mut s, "NICK alice");
        h.run(&mut s, "USER a 0 * :A");
        assert!(codes(&h.run(&mut s, "CAP END")).contains(&"001"));
        let mut bob = h.user("bob");
        let whois = h.run(&mut bob, "WHOIS alice");
        assert!(whois.contains(" 330 bob alice alice :is logged in as"), "WHOIS names the account: {whois}");
        h.received(&s);
        assert_eq!(codes(&h.run_deferred(&mut s, "AUTHENTICATE PLAIN").await), ["907"]);
    }

    #[tokio::test]
    async fn unknown_mechanisms_aborts_and_long_payloads_are_refused() {
        let h = Harness::new();
        let mut s = h.connect();
        assert_eq!(codes(&h.run_deferred(&mut s, "AUTHENTICATE SCRAM-SHA-1").await), ["908", "904"]);
        h.run_deferred(&mut s, "AUTHENTICATE PLAIN").await;
        assert_eq!(codes(&h.run_deferred(&mut s, "AUTHENTICATE *").await), ["906"]);
        h.run_deferred(&mut s, "AUTHENTICATE PLAIN").await;
        let chunk = "A".repeat(400);
        for _ in 0..4 {
            assert!(h.run_deferred(&mut s, &format!("AUTHENTICATE {chunk}")).await.is_empty(), "more to come");
        }
        assert_eq!(codes(&h.run_deferred(&mut s, &format!("AUTHENTICATE {chunk}")).await), ["904"], "too long in all");
        h.run_deferred(&mut s, "AUTHENTICATE PLAIN").await;
        assert_eq!(
            codes(&h.run_deferred(&mut s, &format!("AUTHENTICATE {chunk}A")).await),
            ["905"],
            "one line too long"
        );
    }

    #[tokio::test]
    async fn failed_logins_are_limited_like_oper() {
        let h = Harness::with(|c| c.limits.oper_failures_per_ip = 2);
        h.server.accounts.create("alice", "sesame", false, 0).unwrap();
        let mut s = h.connect();
        for _ in 0..2 {
            h.run_deferred(&mut s, "AUTHENTICATE PLAIN").await;
            h.run_deferred(&mut s, &format!("AUTHENTICATE {}", plain("", "alice", "guess"))).await;
        }
        h.run_deferred(&mut s, "AUTHENTICATE PLAIN").await;
        let out = h.run_deferred(&mut s, &format!("AUTHENTICATE {}", plain("", "alice", "sesame"))).await;
        assert!(out.contains(" 904 ") && out.contains("too many failed logins"), "even the right password: {out}");
        assert_eq!(s.account(), None);
    }
}
