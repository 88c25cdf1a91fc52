//! AUTHENTICATE: logging in to an account with SASL (IRCv3 `sasl` 3.2).
//!
//! Only PLAIN for now. The client names the mechanism, the server answers
//! `AUTHENTICATE +`, and the client sends `authzid NUL authcid NUL
//! password` in base64, in chunks of 400 bytes (a chunk shorter than 400,
//! or `+`, ends it). The password is checked on the blocking pool under
//! the same failure limits as OPER, and a wrong name costs as much as a
//! wrong password, so neither can be guessed at speed.

use crate::accounts::AccountError;
use crate::activity_log::Value;
use crate::session::{Ctx, Login};
use base64::Engine;
use parley_proto::numeric::*;
use parley_proto::MessageRef;

/// The mechanisms offered, as `CAP LS 302` and `908` list them.
pub const MECHANISMS: &str = "PLAIN";
/// The longest chunk of an AUTHENTICATE payload.
const CHUNK: usize = 400;
/// The longest payload, all chunks together (name, name, password).
const MAX_PAYLOAD: usize = 4 * CHUNK;

pub async fn authenticate(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let arg = msg.params[0];
    let login = ctx.session.login.get_or_insert_with(Box::default);
    if login.account.is_some() {
        ctx.reply(ERR_SASLALREADY, &["You have already authenticated using SASL"]);
        return;
    }
    if arg == "*" {
        login.pending = None;
        ctx.reply(ERR_SASLABORTED, &["SASL authentication aborted"]);
        return;
    }
    let Some(pending) = login.pending.as_mut() else {
        if arg.eq_ignore_ascii_case("PLAIN") {
            login.pending = Some(String::new());
            ctx.send_bytes(b"AUTHENTICATE +\r\n");
        } else {
            ctx.reply(RPL_SASLMECHS, &[MECHANISMS, "are available SASL mechanisms"]);
            ctx.reply(ERR_SASLFAIL, &["SASL authentication failed"]);
        }
        return;
    };
    if arg.len() > CHUNK {
        login.pending = None;
        ctx.reply(ERR_SASLTOOLONG, &["SASL message too long: at most 400 bytes a line"]);
        return;
    }
    if pending.len() + arg.len() > MAX_PAYLOAD {
        login.pending = None;
        ctx.reply(ERR_SASLFAIL, &["SASL authentication failed: the credentials are too long"]);
        return;
    }
    if arg != "+" {
        pending.push_str(arg);
    }
    if arg.len() == CHUNK {
        return; // more to come
    }
    let payload = login.pending.take().unwrap_or_default();
    let Some((name, password)) = plain_credentials(&payload) else {
        ctx.reply(ERR_SASLFAIL, &["SASL authentication failed: the PLAIN payload is malformed"]);
        return;
    };
    let ip = ctx.session.addr.ip();
    let failures = ctx.server.operators.failures().clone();
    if let Some(wait) = failures.limited(ip) {
        ctx.reply(
            ERR_SASLFAIL,
            &[format!("SASL authentication failed: too many failed logins; try again in {wait} seconds")],
        );
        log(ctx, &name, "rate_limited");
        return;
    }
    let accounts = ctx.server.accounts.clone();
    let checked = tokio::task::spawn_blocking(move || (accounts.verify(&name, &password), name)).await;
    match checked {
        Ok((Ok(account), _)) => {
            let mask = ctx.session.hostmask();
            ctx.reply(
                RPL_LOGGEDIN,
                &[mask.as_str(), &account.name, &format!("You are now logged in as {}", account.name)],
            );
            ctx.reply(RPL_SASLSUCCESS, &["SASL authentication successful"]);
            log(ctx, &account.name, "granted");
            if ctx.session.registered {
                ctx.server.registry.set_account(ctx.session.id, Some(&account.name));
            }
            ctx.session.login = Some(Box::new(Login { account: Some(account.name), pending: None }));
        }
        Ok((Err(AccountError::Refused), name)) => {
            failures.note(ip);
            ctx.reply(ERR_SASLFAIL, &["SASL authentication failed"]);
            log(ctx, &name, "denied");
        }
        // The store failed (a disk error): not the client's fault, not counted.
        Ok((Err(e), name)) => {
            tracing::error!(error = %e, "account lookup failed");
            ctx.reply(ERR_SASLFAIL, &["SASL authentication failed: the account store is unavailable; try again later"]);
            log(ctx, &name, "error");
        }
        Err(_) => ctx.reply(ERR_SASLFAIL, &["SASL authentication failed: internal error"]),
    }
}

/// The account name and password of a PLAIN payload: `authzid NUL authcid
/// NUL password` in base64, where the authzid is empty or the authcid.
fn plain_credentials(payload: &str) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD.decode(payload).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut parts = text.split('\0');
    let (authzid, authcid, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || authcid.is_empty() || !(authzid.is_empty() || authzid == authcid) {
        return None;
    }
    Some((authcid.to_string(), password.to_string()))
}

/// A login attempt in the activity log: the account tried, never the password.
fn log(ctx: &Ctx<'_>, account: &str, result: &'static str) {
    let fields =
        [("mechanism", Value::Text("PLAIN")), ("account", Value::Text(account)), ("result", Value::Text(result))];
    ctx.server.log.record("login", ctx.actor(), &fields);
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
        assert_eq!(super::plain_credentials(&plain("", "alice", "pw")), Some(("alice".into(), "pw".into())));
        assert_eq!(super::plain_credentials(&plain("alice", "alice", "pw")), Some(("alice".into(), "pw".into())));
        assert_eq!(super::plain_credentials(&plain("bob", "alice", "pw")), None, "no logging in as another");
        assert_eq!(super::plain_credentials("not base64!"), None);
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
