//! Connection registration and upkeep: CAP, PASS, NICK, USER, PING, QUIT,
//! and the welcome burst that ends registration.

use super::{account, channel, nickserv, query};
use crate::activity_log::Value;
use crate::caps;
use crate::registry::User;
use crate::session::Ctx;
use parley_proto::numeric::*;
use parley_proto::{irc_eq, validate_nick, Message, MessageRef};

pub fn cap(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let sub = msg.params[0].to_ascii_uppercase();
    let server = ctx.server.config.server_name.clone();
    let target = ctx.target().to_string();
    let reply = |ctx: &Ctx<'_>, params: Vec<String>| {
        let mut all = vec![target.clone()];
        all.extend(params);
        ctx.send_bytes(&Message::new("CAP", all).with_source(server.clone()).to_bytes());
    };
    match sub.as_str() {
        "LS" => {
            if !ctx.session.registered {
                ctx.session.cap_negotiating = true;
            }
            let version = msg.param(1).and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
            if version >= 302 {
                ctx.session.cap_version = 302;
                // CAP LS 302 implies cap-notify.
                ctx.session.caps |= caps::CAP_NOTIFY;
                ctx.session.client.set_caps(ctx.session.caps);
            }
            let mut list = caps::ALL
                .iter()
                .filter(|(_, bit)| *bit != caps::ACCOUNT_REGISTRATION || ctx.server.config.accounts.self_registration)
                .filter(|(_, bit)| *bit & caps::HISTORY == 0 || ctx.server.history.is_some())
                .map(|(n, bit)| match *bit {
                    caps::SASL if version >= 302 => format!("{n}={}", super::sasl::MECHANISMS),
                    caps::ACCOUNT_REGISTRATION if version >= 302 => {
                        let flags = super::register::cap_value(&ctx.server.config.accounts);
                        if flags.is_empty() {
                            n.to_string()
                        } else {
                            format!("{n}={flags}")
                        }
                    }
                    _ => n.to_string(),
                })
                .collect::<Vec<_>>();
            // The STS policy (IRCv3 sts): plain-text clients learn the TLS
            // port, TLS clients how long to remember the policy.
            if let (Some(port), Some(duration)) = (ctx.server.sts_port, ctx.server.config.irc.sts_duration_secs) {
                let value = if ctx.session.secure { format!("duration={duration}") } else { format!("port={port}") };
                list.push(if version >= 302 { format!("sts={value}") } else { "sts".into() });
            }
            let list = list.join(" ");
            reply(ctx, vec!["LS".into(), list]);
        }
        "LIST" => reply(ctx, vec!["LIST".into(), caps::names(ctx.session.caps)]),
        "REQ" => {
            if !ctx.session.registered {
                ctx.session.cap_negotiating = true;
            }
            let requested = msg.param(1).unwrap_or("");
            let mut add = 0u32;
            let mut remove = 0u32;
            let mut ok = true;
            for item in requested.split(' ').filter(|s| !s.is_empty()) {
                let (negate, name) = match item.strip_prefix('-') {
                    Some(n) => (true, n),
                    None => (false, item),
                };
                match caps::by_name(name) {
                    Some(bit) if bit & caps::HISTORY != 0 && ctx.server.history.is_none() => ok = false,
                    Some(bit) if negate => remove |= bit,
                    Some(bit) => add |= bit,
                    None => ok = false,
                }
            }
            if ok && !requested.trim().is_empty() {
                ctx.session.caps = (ctx.session.caps | add) & !remove;
                ctx.session.client.set_caps(ctx.session.caps);
                reply(ctx, vec!["ACK".into(), requested.trim().to_string()]);
            } else {
                reply(ctx, vec!["NAK".into(), requested.to_string()]);
            }
        }
        "END" => {
            if !ctx.session.registered {
                ctx.session.cap_negotiating = false;
                try_complete(ctx);
            }
        }
        _ => ctx.reply(ERR_INVALIDCAPCMD, &[msg.params[0], "Invalid CAP subcommand"]),
    }
}

/// PASS: the server password (`irc.password`), checked at registration;
/// or, on a server without one, `account:password` to log in
/// ([`pass_login`]), for clients that know no SASL.
pub fn pass(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    if ctx.session.registered {
        ctx.reply(ERR_ALREADYREGISTERED, &["You may not reregister"]);
        return;
    }
    ctx.session.pass = Some(msg.params[0].to_string());
}

/// Whether a PASS logs in to an account (and so has to be awaited).
pub fn pass_logs_in(ctx: &Ctx<'_>, msg: &MessageRef<'_>) -> bool {
    !ctx.session.registered
        && ctx.session.account().is_none()
        && ctx.server.config.irc.password.is_none()
        && msg.params[0].contains(':')
}

/// PASS `account:password`. A wrong password ends the connection (464).
pub async fn pass_login(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let Some((name, password)) = msg.params[0].split_once(':') else { return };
    let ip = ctx.session.addr.ip();
    let failures = ctx.server.operators.failures().clone();
    if let Some(wait) = failures.limited(ip) {
        ctx.reply(ERR_PASSWDMISMATCH, &[format!("Too many failed logins; try again in {wait} seconds")]);
        account::log(ctx, "PASS", name, "rate_limited");
        ctx.session.quit = Some("Bad password".into());
        return;
    }
    let accounts = ctx.server.accounts.clone();
    let (owned, password) = (name.to_string(), password.to_string());
    match tokio::task::spawn_blocking(move || accounts.verify(&owned, &password)).await {
        Ok(Ok(found)) => account::log_in(ctx, &found.name, "PASS").await,
        Ok(Err(crate::accounts::AccountError::Refused)) => {
            failures.note(ip);
            ctx.reply(ERR_PASSWDMISMATCH, &["Password incorrect (account:password)"]);
            account::log(ctx, "PASS", name, "denied");
            ctx.session.quit = Some("Bad password".into());
        }
        _ => {
            ctx.reply(ERR_PASSWDMISMATCH, &["The account store is unavailable; try again later"]);
            ctx.session.quit = Some("Account store unavailable".into());
        }
    }
}

pub fn nick(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let Some(new) = msg.param(0).filter(|n| !n.is_empty()) else {
        ctx.reply(ERR_NONICKNAMEGIVEN, &["No nickname given"]);
        return;
    };
    if let Err(e) = validate_nick(new, ctx.server.config.limits.nick_len) {
        ctx.reply(ERR_ERRONEUSNICKNAME, &[new, &format!("Erroneous nickname: {e}")]);
        return;
    }
    if nickserv::is_target(new) {
        ctx.reply(ERR_ERRONEUSNICKNAME, &[new, "Erroneous nickname: reserved for services"]);
        return;
    }
    if !ctx.session.registered {
        if ctx.server.registry.read().id_by_nick(new).is_some() {
            ctx.reply(ERR_NICKNAMEINUSE, &[new, "Nickname is already in use"]);
            ctx.session.login_mut().refused_nick = Some(new.to_string());
            return;
        }
        ctx.session.set_nick(new);
        try_complete(ctx);
        return;
    }
    let old = ctx.session.nick.clone().unwrap_or_default();
    if old == new {
        return;
    }
    if !irc_eq(&old, new) && account::refuse_claimed(ctx, new) {
        return;
    }
    let old_mask = ctx.session.hostmask();
    match ctx.server.registry.rename(ctx.session.id, new, old_mask) {
        Ok(relay) => ctx.send_relay(&relay),
        Err(refusal) => {
            ctx.refuse(&refusal);
            return;
        }
    }
    ctx.server.log.record("nick", ctx.actor(), &[("new", Value::Text(new))]);
    ctx.session.set_nick(new);
    if !irc_eq(&old, new) {
        account::check_claim(ctx);
    }
}

/// NICK on a cluster node: the nick is claimed cluster-wide (compare-and-set
/// in JetStream, docs/CLUSTER.md) before the usual rules run, so of two
/// clients on different nodes racing for it one gets `433`. Cut off from
/// NATS, the node goes by its own users alone.
pub async fn nick_in_cluster(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let (Some(cluster), Some(new)) = (ctx.server.cluster.clone(), msg.param(0).filter(|n| !n.is_empty())) else {
        return nick(ctx, msg);
    };
    let old = ctx.session.nick.clone();
    let plain = validate_nick(new, ctx.server.config.limits.nick_len).is_err()
        || nickserv::is_target(new)
        || old.as_deref().is_some_and(|o| irc_eq(o, new));
    if plain {
        return nick(ctx, msg);
    }
    let id = ctx.session.id;
    if cluster.claim_nick(new, id).await == crate::cluster::Claim::Lost {
        ctx.reply(ERR_NICKNAMEINUSE, &[new, "Nickname is already in use"]);
        if !ctx.session.registered {
            ctx.session.login_mut().refused_nick = Some(new.to_string());
        }
        return;
    }
    nick(ctx, msg);
    if ctx.session.nick.as_deref() == Some(new) {
        if let Some(old) = old {
            cluster.release_nick(&old, id).await;
        }
    } else {
        cluster.release_nick(new, id).await;
    }
}

/// The server renamed this session's user from outside the connection
/// (a cluster nick clash after a split, `cluster/reclaim.rs`): the
/// session takes the nick the registry holds.
pub fn follow_nick(session: &mut crate::session::Session, server: &crate::server::ServerState) {
    if !session.registered {
        return;
    }
    let held = server.registry.read().user(session.id).map(|u| u.nick.clone());
    if let Some(nick) = held.filter(|n| session.nick.as_deref() != Some(n.as_str())) {
        session.set_nick(&nick);
    }
}

pub fn user(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    if ctx.session.registered {
        ctx.reply(ERR_ALREADYREGISTERED, &["You may not reregister"]);
        return;
    }
    // The username and realname must not be empty (Modern IRC).
    if msg.params[0].is_empty() || msg.params[3].is_empty() {
        ctx.reply(ERR_NEEDMOREPARAMS, &["USER", "Not enough parameters"]);
        return;
    }
    let clean: String =
        msg.params[0].chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')).take(17).collect();
    let username = format!("~{}", if clean.is_empty() { "user" } else { &clean });
    // Control characters (CTCP, colours, bells) have no place in a name
    // others see in WHO and WHOIS.
    let max = ctx.server.config.limits.realname_len;
    let realname: String = super::truncate(msg.params[3], max).chars().filter(|c| !c.is_control()).collect();
    ctx.session.user = Some((username, realname));
    try_complete(ctx);
}

pub fn ping(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let Some(token) = msg.param(0) else {
        ctx.reply(ERR_NOORIGIN, &["No origin specified"]);
        return;
    };
    let server = ctx.server.config.server_name.clone();
    ctx.send(Message::new("PONG", vec![server.clone(), token.to_string()]).with_source(server));
}

pub fn quit(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let reason = match msg.param(0).filter(|r| !r.is_empty()) {
        Some(r) => format!("Quit: {}", super::truncate(r, ctx.server.config.limits.kick_len)),
        None => "Quit".to_string(),
    };
    ctx.session.quit = Some(reason);
}

/// Finishes registration once NICK, USER (and CAP END, if negotiating) are in.
fn try_complete(ctx: &mut Ctx<'_>) {
    let s = &ctx.session;
    if s.registered || s.cap_negotiating || s.nick.is_none() || s.user.is_none() {
        return;
    }
    if let Some(expected) = &ctx.server.config.irc.password {
        if ctx.session.pass.as_deref() != Some(expected.as_str()) {
            ctx.reply(ERR_PASSWDMISMATCH, &["Password incorrect"]);
            ctx.server.log.record("auth_failed", ctx.actor(), &[("what", Value::Text("server password"))]);
            ctx.session.quit = Some("Bad password".into());
            return;
        }
    }
    let nick = ctx.session.nick.clone().unwrap_or_default();
    // SASL may have come after NICK: a reserved nick is refused only now.
    if account::refuse_claimed(ctx, &nick) {
        ctx.session.nick = None;
        return;
    }
    let (username, realname) = ctx.session.user.clone().unwrap_or_default();
    let user = User {
        client: ctx.session.client.clone(),
        addr: ctx.session.addr,
        nick: nick.clone(),
        user: username,
        host: ctx.session.host.clone(),
        realname,
        away: None,
        invisible: false,
        wallops: false,
        bot: false,
        oper: None,
        account: ctx.session.account().map(Into::into),
        channels: Vec::new(),
        signon: crate::clock::unix_now(),
    };
    if let Err(refusal) = ctx.server.registry.register(ctx.session.id, user) {
        ctx.refuse(&refusal);
        ctx.session.nick = None;
        return;
    }
    ctx.session.set_registered();
    ctx.server.connections.registered();
    crate::metrics::get().registrations.inc();
    ctx.server.log.record("registered", ctx.actor(), &[("user", Value::Text(ctx.session.mask()))]);
    // The registry holds the realname now; the session keeps only what it uses.
    if let Some((_, realname)) = ctx.session.user.as_mut() {
        *realname = String::new();
    }
    welcome(ctx);
    super::markread::on_registration(ctx);
    account::check_claim(ctx);
    for name in ctx.server.config.irc.auto_join.clone() {
        channel::join_one(ctx, &name, None);
    }
}

fn welcome(ctx: &mut Ctx<'_>) {
    let cfg = &ctx.server.config;
    let mask = ctx.session.hostmask();
    ctx.reply(RPL_WELCOME, &[format!("Welcome to the {} IRC Network, {mask}", cfg.network)]);
    ctx.reply(RPL_YOURHOST, &[format!("Your host is {}, running version {}", cfg.server_name, crate::server::VERSION)]);
    ctx.reply(RPL_CREATED, &[format!("This server was created {}", ctx.server.created)]);
    ctx.reply(RPL_MYINFO, &[cfg.server_name.as_str(), crate::server::VERSION, "Biow", "Ibeiklmnopstv", "Ibeklov"]);
    query::isupport(ctx);
    query::lusers(ctx);
    query::motd(ctx);
}

#[cfg(test)]
mod tests {
    use super::super::testing::{codes, Harness};

    #[test]
    fn a_taken_nick_is_refused_with_433_and_another_is_accepted() {
        let (h, [_alice]) = Harness::start(["alice"]);
        let mut s = h.connect();
        assert_eq!(codes(&h.run(&mut s, "NICK Alice")), ["433"]);
        assert_eq!(codes(&h.run(&mut s, "NICK bad!nick")), ["432"]);
        assert!(h.run(&mut s, "NICK bob").is_empty());
        let burst = h.run(&mut s, "USER bob 0 * :Bob");
        assert_eq!(codes(&burst)[..4], ["001", "002", "003", "004"]);
        assert!(burst.contains("JOIN #lobby"), "auto-joined: {burst}");
    }

    #[test]
    fn registration_waits_for_cap_end() {
        let h = Harness::new();
        let mut s = h.connect();
        let ls = h.run(&mut s, "CAP LS 302");
        assert!(ls.contains("CAP * LS :") && ls.contains("message-tags"), "{ls}");
        assert!(h.run(&mut s, "CAP REQ :server-time echo-message").contains("ACK"));
        assert!(h.run(&mut s, "CAP REQ :no-such-cap").contains("NAK"));
        h.run(&mut s, "NICK carol");
        assert!(h.run(&mut s, "USER c 0 * :C").is_empty(), "no welcome before CAP END");
        assert!(codes(&h.run(&mut s, "CAP END")).contains(&"001"));
    }

    #[test]
    fn a_nick_change_reaches_channel_peers_and_frees_the_old_nick() {
        let (h, [mut alice, bob]) = Harness::start(["alice", "bob"]);
        h.received(&bob);
        assert!(h.run(&mut alice, "NICK alicia").starts_with(":alice!~alice@127.0.0.1 NICK alicia"));
        assert!(h.received(&bob).contains(":alice!~alice@127.0.0.1 NICK alicia"));
        let mut s = h.connect();
        assert!(h.run(&mut s, "NICK alice").is_empty(), "the old nick is free");
    }

    #[test]
    fn ping_is_answered_and_quit_ends_the_session_with_its_reason() {
        let (h, [mut s]) = Harness::start(["dave"]);
        assert!(h.run(&mut s, "PING token").contains("PONG parley.local token"));
        assert_eq!(codes(&h.run(&mut s, "PING")), ["409"]);
        h.run(&mut s, "QUIT :gone fishing");
        assert_eq!(s.quit.as_deref(), Some("Quit: gone fishing"));
    }

    #[test]
    fn a_wrong_server_password_ends_the_connection() {
        let h = Harness::with(|c| c.irc.password = Some("sesame".into()));
        let mut s = h.connect();
        h.run(&mut s, "PASS wrong");
        h.run(&mut s, "NICK eve");
        assert_eq!(codes(&h.run(&mut s, "USER e 0 * :E")), ["464"]);
        assert!(s.quit.is_some() && !s.registered);
    }

    #[test]
    fn an_empty_username_or_realname_is_not_enough() {
        let h = Harness::new();
        let mut s = h.connect();
        h.run(&mut s, "NICK foo");
        assert_eq!(codes(&h.run(&mut s, "USER username * * :")), ["461"]);
        assert_eq!(codes(&h.run(&mut s, "USER : * * :Real")), ["461"]);
        assert!(!s.registered);
    }
}
