//! NickServ: account commands for clients that know no SASL or REGISTER,
//! as `/msg NickServ <command>` (or `/ns`, `/nickserv`), answered in
//! NOTICEs from `NickServ`. The commands are those ergo offers: REGISTER,
//! IDENTIFY, GHOST, INFO, DROP, SET PASSWORD, CERT, HELP. NickServ is no
//! user in the registry; its nick is reserved.

use super::account::{self, Registered};
use crate::accounts::AccountError;
use crate::activity_log::Value;
use crate::close_reason::CloseReason;
use crate::session::Ctx;
use parley_proto::{irc_eq, Message};

pub use super::services::{is_target, notice, NICK};

const HELP: &[&str] = &[
    "NickServ keeps accounts: a name (your nick), a password, and what you may do with them.",
    "REGISTER <password> [email]  make an account named after your current nick, and log in",
    "IDENTIFY [account] <password>  log in (clients with SASL do it on connecting)",
    "GHOST <nick>                 disconnect a connection using your account's nick",
    "INFO [account]               when an account was registered",
    "SET PASSWORD <new password>  change your password",
    "CERT ADD [fingerprint] | CERT DEL <fingerprint> | CERT LIST   TLS certificates that log you in (SASL EXTERNAL)",
    "DROP <account>               delete your account (name it to confirm)",
];

/// Runs one NickServ command line (the text of the PRIVMSG).
pub async fn run(ctx: &mut Ctx<'_>, line: &str) {
    let mut words = line.split_whitespace();
    let command = words.next().unwrap_or("HELP").to_ascii_uppercase();
    let args: Vec<&str> = words.collect();
    match (command.as_str(), args.as_slice()) {
        ("HELP", _) => HELP.iter().for_each(|l| notice(ctx, l)),
        ("REGISTER", [password, rest @ ..]) => register(ctx, password, rest.first().copied()).await,
        ("IDENTIFY", [password]) => {
            let nick = ctx.session.nick.clone().unwrap_or_default();
            identify(ctx, &nick, password).await
        }
        ("IDENTIFY", [name, password]) => identify(ctx, name, password).await,
        ("GHOST", [nick]) => ghost(ctx, nick),
        ("INFO", []) => {
            let name = ctx.session.account().or(ctx.session.nick.as_deref()).unwrap_or_default().to_string();
            info(ctx, &name).await
        }
        ("INFO", [name]) => info(ctx, name).await,
        ("DROP", [name]) => drop_account(ctx, name).await,
        ("SET", [what, password]) if what.eq_ignore_ascii_case("PASSWORD") => set_password(ctx, password).await,
        ("CERT", [sub, rest @ ..]) => cert(ctx, &sub.to_ascii_uppercase(), rest.first().copied()).await,
        ("REGISTER" | "IDENTIFY" | "GHOST" | "INFO" | "DROP" | "SET" | "CERT", _) => {
            notice(ctx, &format!("Wrong parameters for {command}; see /msg NickServ HELP"))
        }
        _ => notice(ctx, &format!("Unknown command {command}; see /msg NickServ HELP")),
    }
}

async fn register(ctx: &mut Ctx<'_>, password: &str, email: Option<&str>) {
    match account::register(ctx, "*", email, password).await {
        Ok(Registered::Done(name)) => notice(ctx, &format!("Account {name} registered; you are logged in.")),
        Ok(Registered::NeedsVerification(name)) => notice(
            ctx,
            &format!("Account {name} registered; a code was sent to you. Send /quote VERIFY {name} <code> to use it."),
        ),
        Err(refusal) => notice(ctx, &refusal.text()),
    }
}

async fn identify(ctx: &mut Ctx<'_>, name: &str, password: &str) {
    if ctx.session.account().is_some() {
        notice(ctx, "You are already logged in.");
        return;
    }
    let ip = ctx.session.addr.ip();
    let failures = ctx.server.operators.failures().clone();
    if let Some(wait) = failures.limited(ip) {
        notice(ctx, &format!("Too many failed logins; try again in {wait} seconds."));
        account::log(ctx, "IDENTIFY", name, "rate_limited");
        return;
    }
    let accounts = ctx.server.accounts.clone();
    let (owned, password) = (name.to_string(), password.to_string());
    match tokio::task::spawn_blocking(move || accounts.verify(&owned, &password)).await {
        Ok(Ok(found)) => {
            account::log_in(ctx, &found.name, "IDENTIFY").await;
            notice(ctx, &format!("You are now logged in as {}.", found.name));
        }
        Ok(Err(AccountError::Refused)) => {
            failures.note(ip);
            notice(ctx, "Wrong account name or password.");
            account::log(ctx, "IDENTIFY", name, "denied");
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "account lookup failed");
            notice(ctx, "The account store is unavailable; try again later.");
        }
        Err(_) => notice(ctx, "Internal error; try again later."),
    }
}

/// Disconnects whoever uses a nick that is the caller's account, or whose
/// connection is logged in to the caller's account.
/// The reason a ghost is closed with, as its QUIT shows it.
const GHOST_REASON: &str = "GHOST command used";

fn ghost(ctx: &mut Ctx<'_>, nick: &str) {
    let Some(mine) = ctx.session.account().map(str::to_string) else {
        notice(ctx, "Log in first (IDENTIFY) to disconnect your ghosts.");
        return;
    };
    let found = {
        let view = ctx.server.registry.read();
        view.user_by_nick(nick)
            .map(|u| {
                let owned = irc_eq(&u.nick, &mine) || u.account.as_deref().is_some_and(|a| irc_eq(a, &mine));
                (u.client.clone(), u.nick.clone(), u.host.clone(), owned, u.client.id == ctx.session.id)
            })
            .map(|(client, nick, host, owned, me)| {
                let remote = view.id_by_nick(&nick).is_some_and(crate::registry::remote::is_remote);
                (client, nick, host, owned, me, remote)
            })
    };
    match found {
        None => notice(ctx, &format!("Nobody is using the nick {nick}.")),
        Some((.., true, _)) => notice(ctx, "That is you."),
        Some((_, nick, _, false, ..)) => {
            notice(ctx, &format!("{nick} is neither your account's nick nor logged in to it."))
        }
        Some((client, nick, host, true, false, remote)) => {
            let by = ctx.session.nick.clone().unwrap_or_default();
            if remote {
                // On another cluster node: that node closes it, as a KILL.
                ctx.server.registry.kill_remote(&nick, &by, GHOST_REASON);
            } else {
                let why = CloseReason::Killed(Box::new((by, GHOST_REASON.into())));
                let error =
                    Message::new("ERROR", vec![format!("Closing Link: {host} ({})", why.text())]).to_bytes().to_vec();
                client.close(why, Some(error));
            }
            notice(ctx, &format!("{nick} has been disconnected."));
            ctx.server.log.record("ghost", ctx.actor(), &[("target", Value::Text(&nick))]);
        }
    }
}

async fn info(ctx: &mut Ctx<'_>, name: &str) {
    let accounts = ctx.server.accounts.clone();
    let owned = name.to_string();
    match tokio::task::spawn_blocking(move || accounts.get(&owned)).await {
        Ok(Ok(Some(found))) => {
            let when = time::OffsetDateTime::from_unix_timestamp(found.created)
                .ok()
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                .unwrap_or_default();
            notice(ctx, &format!("Account: {}", found.name));
            notice(ctx, &format!("Registered: {when}"));
            if found.oper {
                notice(ctx, "Operator: yes");
            }
        }
        Ok(Ok(None)) => notice(ctx, &format!("There is no account {name}.")),
        _ => notice(ctx, "The account store is unavailable; try again later."),
    }
}

async fn drop_account(ctx: &mut Ctx<'_>, name: &str) {
    let Some(mine) = ctx.session.account().map(str::to_string) else {
        notice(ctx, "Log in to the account first (IDENTIFY).");
        return;
    };
    if !irc_eq(name, &mine) {
        notice(ctx, &format!("To delete your account, name it: DROP {mine}"));
        return;
    }
    let accounts = ctx.server.accounts.clone();
    let owned = mine.clone();
    match tokio::task::spawn_blocking(move || accounts.delete(&owned)).await {
        Ok(Ok(())) => {
            ctx.server.log.record("account_dropped", ctx.actor(), &[("account", Value::Text(&mine))]);
            account::log_out(ctx);
            notice(ctx, &format!("The account {mine} is deleted."));
        }
        _ => notice(ctx, "The account store is unavailable; try again later."),
    }
}

async fn set_password(ctx: &mut Ctx<'_>, password: &str) {
    let Some(mine) = ctx.session.account().map(str::to_string) else {
        notice(ctx, "Log in first (IDENTIFY).");
        return;
    };
    if password.chars().count() < 4 {
        notice(ctx, "Choose a password of at least 4 characters.");
        return;
    }
    let accounts = ctx.server.accounts.clone();
    let password = password.to_string();
    match tokio::task::spawn_blocking(move || accounts.set_password(&mine, &password)).await {
        Ok(Ok(())) => notice(ctx, "Password changed."),
        _ => notice(ctx, "The account store is unavailable; try again later."),
    }
}

async fn cert(ctx: &mut Ctx<'_>, sub: &str, fingerprint: Option<&str>) {
    let Some(mine) = ctx.session.account().map(str::to_string) else {
        notice(ctx, "Log in first (IDENTIFY).");
        return;
    };
    let accounts = ctx.server.accounts.clone();
    let fingerprint = fingerprint.map(str::to_string).or_else(|| ctx.session.certfp().map(str::to_string));
    let result = match (sub, fingerprint) {
        ("LIST", _) => tokio::task::spawn_blocking(move || accounts.certfps(&mine).map(|l| l.join(" "))).await,
        ("ADD", Some(fp)) => {
            tokio::task::spawn_blocking(move || {
                accounts.add_certfp(&mine, &fp).map(|fp| format!("Added certificate {fp}."))
            })
            .await
        }
        ("DEL", Some(fp)) => {
            tokio::task::spawn_blocking(move || {
                accounts.remove_certfp(&mine, &fp).map(|gone| {
                    if gone {
                        format!("Removed certificate {fp}.")
                    } else {
                        format!("No certificate {fp} on your account.")
                    }
                })
            })
            .await
        }
        ("ADD" | "DEL", None) => {
            notice(ctx, "Give a fingerprint, or connect with the client certificate to add.");
            return;
        }
        _ => {
            notice(ctx, "CERT ADD [fingerprint] | CERT DEL <fingerprint> | CERT LIST");
            return;
        }
    };
    match result {
        Ok(Ok(text)) if sub == "LIST" && text.is_empty() => notice(ctx, "No certificates on your account."),
        Ok(Ok(text)) if sub == "LIST" => notice(ctx, &format!("Certificates: {text}")),
        Ok(Ok(text)) => notice(ctx, &text),
        Ok(Err(e @ (AccountError::BadFingerprint(_) | AccountError::FingerprintTaken(_)))) => {
            notice(ctx, &format!("{e}."))
        }
        _ => notice(ctx, "The account store is unavailable; try again later."),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{codes, Harness};

    #[tokio::test]
    async fn register_identify_and_ghost_through_nickserv() {
        let h = Harness::new();
        let mut alice = h.user("alice");
        let made = h.run_deferred(&mut alice, "PRIVMSG NickServ :REGISTER sesame").await;
        assert!(made.contains(" 900 ") && made.contains("Account alice registered"), "{made}");
        assert_eq!(alice.account(), Some("alice"));
        // A second connection of alice's, under another nick, logs in and
        // takes the nick back from the first one.
        let mut again = h.user("alice2");
        let wrong = h.run_deferred(&mut again, "NS IDENTIFY alice wrong").await;
        assert!(wrong.contains("Wrong account name or password"), "{wrong}");
        assert!(h.run_deferred(&mut again, "PRIVMSG NickServ :GHOST alice").await.contains("Log in first"));
        let ok = h.run_deferred(&mut again, "NICKSERV IDENTIFY alice sesame").await;
        assert!(ok.contains(" 900 alice2 ") || ok.contains(" 900 "), "{ok}");
        let ghost = h.run_deferred(&mut again, "PRIVMSG NickServ :GHOST alice").await;
        assert!(ghost.contains("alice has been disconnected"), "{ghost}");
        assert!(alice.client.close_reason().is_some(), "the ghost was closed");
    }

    #[tokio::test]
    async fn info_set_password_cert_and_drop() {
        let h = Harness::new();
        h.server.accounts.create("bob", "old-pass", false, 0).unwrap();
        let mut bob = h.user("bob");
        h.received(&bob);
        assert!(h.run_deferred(&mut bob, "NS INFO bob").await.contains("Account: bob"));
        assert!(h.run_deferred(&mut bob, "NS INFO nobody").await.contains("There is no account nobody"));
        assert!(h.run_deferred(&mut bob, "NS SET PASSWORD new-pass").await.contains("Log in first"));
        h.run_deferred(&mut bob, "NS IDENTIFY old-pass").await;
        assert!(h.run_deferred(&mut bob, "NS SET PASSWORD new-pass").await.contains("Password changed"));
        assert!(h.server.accounts.verify("bob", "new-pass").is_ok());
        let fp = "ab".repeat(32);
        assert!(h.run_deferred(&mut bob, &format!("NS CERT ADD {fp}")).await.contains("Added certificate"));
        assert!(h.run_deferred(&mut bob, "NS CERT ADD nothex").await.contains("not a SHA-256"));
        assert!(h.run_deferred(&mut bob, "NS CERT LIST").await.contains(&fp));
        assert!(h.run_deferred(&mut bob, "NS DROP someone").await.contains("DROP bob"));
        let dropped = h.run_deferred(&mut bob, "NS DROP bob").await;
        assert!(dropped.contains(" 901 ") && dropped.contains("deleted"), "{dropped}");
        assert!(h.server.accounts.get("bob").unwrap().is_none());
        assert!(h.run_deferred(&mut bob, "NS FROB").await.contains("Unknown command FROB"));
    }

    #[test]
    fn nobody_may_take_the_nick_nickserv() {
        let h = Harness::new();
        let mut s = h.user("carol");
        assert_eq!(codes(&h.run(&mut s, "NICK nickserv")), ["432"]);
    }
}
