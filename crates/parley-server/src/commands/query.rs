//! Questions about users and the server: WHO, WHOIS, AWAY, ISON, USERHOST,
//! VERSION, TIME, LUSERS, MOTD, and the ISUPPORT burst.

use super::{split_list, truncate};
use crate::caps;
use crate::registry::User;
use crate::session::Ctx;
use parley_proto::mask::mask_matches;
use parley_proto::numeric::*;
use parley_proto::MessageRef;

/// Sends RPL_ISUPPORT, at most 13 tokens per line.
pub fn isupport(ctx: &Ctx<'_>) {
    for chunk in ctx.server.isupport.chunks(13) {
        let mut params: Vec<String> = chunk.to_vec();
        params.push("are supported by this server".into());
        ctx.reply(RPL_ISUPPORT, &params);
    }
}

pub fn lusers(ctx: &Ctx<'_>) {
    let counts = ctx.server.registry.read().counts();
    let (users, invisible, opers, channels, max) =
        (counts.users, counts.invisible, counts.opers, counts.channels, counts.max_users);
    let unknown = ctx.server.connections.unregistered();
    ctx.reply(
        RPL_LUSERCLIENT,
        &[format!("There are {} users and {invisible} invisible on 1 servers", users - invisible)],
    );
    if opers > 0 {
        ctx.reply(RPL_LUSEROP, &[opers.to_string(), "operator(s) online".into()]);
    }
    if unknown > 0 {
        ctx.reply(RPL_LUSERUNKNOWN, &[unknown.to_string(), "unknown connection(s)".into()]);
    }
    ctx.reply(RPL_LUSERCHANNELS, &[channels.to_string(), "channels formed".into()]);
    ctx.reply(RPL_LUSERME, &[format!("I have {users} clients and 0 servers")]);
    ctx.reply(RPL_LOCALUSERS, &[users.to_string(), max.to_string(), format!("Current local users {users}, max {max}")]);
    ctx.reply(
        RPL_GLOBALUSERS,
        &[users.to_string(), max.to_string(), format!("Current global users {users}, max {max}")],
    );
}

pub fn motd(ctx: &Ctx<'_>) {
    let cfg = &ctx.server.config;
    if cfg.motd.is_empty() {
        ctx.reply(ERR_NOMOTD, &["MOTD File is missing"]);
        return;
    }
    ctx.reply(RPL_MOTDSTART, &[format!("- {} Message of the day - ", cfg.server_name)]);
    for line in &cfg.motd {
        ctx.reply(RPL_MOTD, &[format!("- {line}")]);
    }
    ctx.reply(RPL_ENDOFMOTD, &["End of /MOTD command."]);
}

pub fn version(ctx: &mut Ctx<'_>, _msg: &MessageRef<'_>) {
    let server = ctx.server.config.server_name.clone();
    ctx.reply(RPL_VERSION, &[crate::server::VERSION, server.as_str(), "Parley IRC server"]);
    isupport(ctx);
}

pub fn time(ctx: &mut Ctx<'_>, _msg: &MessageRef<'_>) {
    let now =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc2822).unwrap_or_default();
    let server = ctx.server.config.server_name.clone();
    ctx.reply(RPL_TIME, &[server, now]);
}

/// The H/G, `*` and prefix flags of a WHO reply.
fn who_flags(user: &User, prefix: &str) -> String {
    let mut flags = String::from(if user.away.is_some() { "G" } else { "H" });
    if user.oper.is_some() {
        flags.push('*');
    }
    flags.push_str(prefix);
    flags
}

pub fn who(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let mask = msg.params[0];
    let id = ctx.session.id;
    let multi = ctx.session.has_cap(caps::MULTI_PREFIX);
    let server = ctx.server.config.server_name.clone();
    let rows: Vec<Vec<String>> = {
        let view = ctx.server.registry.read();
        let row = |chan: &str, u: &User, prefix: &str| {
            vec![
                chan.to_string(),
                u.user.clone(),
                u.host.clone(),
                server.clone(),
                u.nick.clone(),
                who_flags(u, prefix),
                format!("0 {}", u.realname),
            ]
        };
        if mask.starts_with('#') {
            match view.channel(mask).filter(|chan| chan.visible_to(id)) {
                Some(chan) => chan
                    .members
                    .iter()
                    .filter_map(|(mid, m)| view.user(*mid).map(|u| row(&chan.name, u, m.flags.prefix(multi))))
                    .collect(),
                None => Vec::new(),
            }
        } else if let Some(u) = view.user_by_nick(mask) {
            vec![row("*", u, "")]
        } else {
            view.users()
                .filter(|(uid, u)| !u.invisible || *uid == id || view.shares_channel(id, *uid))
                .filter(|(_, u)| {
                    mask_matches(mask, &u.nick) || mask_matches(mask, &u.host) || mask_matches(mask, &u.realname)
                })
                .take(1000)
                .map(|(_, u)| row("*", u, ""))
                .collect()
        }
    };
    for r in rows {
        ctx.reply(RPL_WHOREPLY, &r);
    }
    ctx.reply(RPL_ENDOFWHO, &[mask, "End of WHO list"]);
}

pub fn whois(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    // WHOIS [server] nick: the nick is the last parameter.
    let nick = msg.params.last().copied().unwrap_or("");
    let nick = split_list(nick).next().unwrap_or(nick);
    let server = ctx.server.config.server_name.clone();
    let network = ctx.server.config.network.clone();
    let me = ctx.session.id;
    let info = {
        let view = ctx.server.registry.read();
        view.user_by_nick(nick).map(|u| {
            let chans: Vec<String> = u
                .channels
                .iter()
                .filter_map(|k| view.channel_by_key(k))
                .filter(|c| c.visible_to(me))
                .map(|c| format!("{}{}", c.flags(u.client.id).map_or("", |f| f.prefix(false)), c.name))
                .collect();
            let idle = (crate::clock::unix_now() - u.client.last_spoke().max(u.signon)).max(0);
            (
                u.nick.clone(),
                u.user.clone(),
                u.host.clone(),
                u.realname.clone(),
                chans,
                u.oper.is_some(),
                u.account.clone(),
                u.away.clone(),
                idle,
                u.signon,
            )
        })
    };
    let Some((nick, user, host, realname, chans, oper, account, away, idle, signon)) = info else {
        ctx.reply(ERR_NOSUCHNICK, &[nick, "No such nick/channel"]);
        ctx.reply(RPL_ENDOFWHOIS, &[nick, "End of /WHOIS list"]);
        return;
    };
    ctx.reply(RPL_WHOISUSER, &[nick.clone(), user, host, "*".into(), realname]);
    if !chans.is_empty() {
        ctx.reply(RPL_WHOISCHANNELS, &[nick.clone(), chans.join(" ")]);
    }
    ctx.reply(RPL_WHOISSERVER, &[nick.clone(), server, format!("{network} server")]);
    if oper {
        ctx.reply(RPL_WHOISOPERATOR, &[nick.clone(), "is an IRC operator".into()]);
    }
    if let Some(account) = account {
        ctx.reply(RPL_WHOISACCOUNT, &[nick.clone(), account.into(), "is logged in as".into()]);
    }
    if let Some(a) = away {
        ctx.reply(RPL_AWAY, &[nick.clone(), a]);
    }
    ctx.reply(RPL_WHOISIDLE, &[nick.clone(), idle.to_string(), signon.to_string(), "seconds idle, signon time".into()]);
    ctx.reply(RPL_ENDOFWHOIS, &[nick, "End of /WHOIS list".into()]);
}

/// WHOWAS nick[,nick] [count]: what the history remembers of nicks
/// that left, newest first; a count of 0 or less (or none) means all.
pub fn whowas(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let Some(nicks) = msg.param(0).filter(|n| !n.is_empty()) else {
        ctx.reply(ERR_NONICKNAMEGIVEN, &["No nickname given"]);
        return;
    };
    let count = msg.param(1).and_then(|c| c.parse::<i64>().ok()).filter(|c| *c > 0).map_or(0, |c| c as usize);
    let server = ctx.server.config.server_name.clone();
    for nick in split_list(nicks).take(ctx.server.config.limits.max_targets.max(1)) {
        let found = ctx.server.registry.read().whowas(nick, count);
        if found.is_empty() {
            ctx.reply(ERR_WASNOSUCHNICK, &[nick, "There was no such nickname"]);
        }
        for was in found {
            ctx.reply(RPL_WHOWASUSER, &[&was.nick, &was.user, &was.host, "*", &was.realname]);
            let when = time::OffsetDateTime::from_unix_timestamp(was.until)
                .ok()
                .and_then(|t| t.format(&time::format_description::well_known::Rfc2822).ok())
                .unwrap_or_default();
            ctx.reply(RPL_WHOISSERVER, &[was.nick.as_str(), server.as_str(), when.as_str()]);
        }
        ctx.reply(RPL_ENDOFWHOWAS, &[nick, "End of WHOWAS"]);
    }
}

/// INFO: what this server is.
pub fn info(ctx: &mut Ctx<'_>, _msg: &MessageRef<'_>) {
    let lines = [
        format!("{} (Parley), a chat server with a shared file store", crate::server::VERSION),
        "It speaks IRC, with the IRCv3 capabilities CAP LS lists, and".to_string(),
        "serves files over HTTP (ISUPPORT draft/FILEHOST).".to_string(),
        format!("This server was created {}", ctx.server.created),
    ];
    for line in lines {
        ctx.reply(RPL_INFO, &[line]);
    }
    ctx.reply(RPL_ENDOFINFO, &["End of INFO list"]);
}

pub fn away(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let text =
        msg.param(0).filter(|t| !t.is_empty()).map(|t| truncate(t, ctx.server.config.limits.away_len).to_string());
    let mask = ctx.session.hostmask();
    ctx.server.registry.set_away(ctx.session.id, text.clone(), &mask);
    match text {
        Some(_) => ctx.reply(RPL_NOWAWAY, &["You have been marked as being away"]),
        None => ctx.reply(RPL_UNAWAY, &["You are no longer marked as being away"]),
    }
}

pub fn ison(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let online: Vec<String> = {
        let view = ctx.server.registry.read();
        msg.params
            .iter()
            .flat_map(|p| p.split(' '))
            .filter(|n| !n.is_empty())
            .take(100)
            .filter_map(|n| view.user_by_nick(n).map(|u| u.nick.clone()))
            .collect()
    };
    ctx.reply(RPL_ISON, &[online.join(" ")]);
}

pub fn userhost(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let replies: Vec<String> = {
        let view = ctx.server.registry.read();
        msg.params
            .iter()
            .flat_map(|p| p.split(' '))
            .filter(|n| !n.is_empty())
            .take(5)
            .filter_map(|n| {
                view.user_by_nick(n).map(|u| {
                    let oper = if u.oper.is_some() { "*" } else { "" };
                    let away = if u.away.is_some() { '-' } else { '+' };
                    format!("{}{oper}={away}{}@{}", u.nick, u.user, u.host)
                })
            })
            .collect()
    };
    ctx.reply(RPL_USERHOST, &[replies.join(" ")]);
}

#[cfg(test)]
mod tests {
    use super::super::testing::{codes, Harness};

    #[test]
    fn whois_describes_a_user_and_names_unknown_ones() {
        let (h, [mut alice, _bob]) = Harness::start(["alice", "bob"]);
        let out = h.run(&mut alice, "WHOIS bob");
        assert_eq!(codes(&out), ["311", "319", "312", "317", "318"], "{out}");
        assert!(out.contains(" 319 alice bob #lobby"));
        assert_eq!(codes(&h.run(&mut alice, "WHOIS ghost")), ["401", "318"]);
    }

    #[test]
    fn who_hides_invisible_users_from_strangers_only() {
        let (h, [mut alice, mut bob]) = Harness::start(["alice", "bob"]);
        h.run(&mut bob, "MODE bob +i");
        // They share the lobby, so alice still sees bob.
        assert!(h.run(&mut alice, "WHO b*").contains(" 352 alice * ~bob "));
        h.run(&mut bob, "PART #lobby");
        h.run(&mut alice, "PART #lobby");
        assert_eq!(codes(&h.run(&mut alice, "WHO b*")), ["315"]);
        assert_eq!(codes(&h.run(&mut alice, "WHO bob")), ["352", "315"], "by exact nick, always");
    }

    #[test]
    fn ison_userhost_and_lusers_count_what_is_there() {
        let (h, [mut alice, _bob]) = Harness::start(["alice", "bob"]);
        assert!(h.run(&mut alice, "ISON bob ghost alice").contains(" 303 alice :bob alice"));
        assert!(h.run(&mut alice, "USERHOST bob").contains(" 302 alice bob=+~bob@127.0.0.1"));
        let out = h.run(&mut alice, "LUSERS");
        assert!(out.contains("There are 2 users and 0 invisible"), "{out}");
        assert!(out.contains(" 254 alice 1 :channels formed"), "{out}");
    }

    #[test]
    fn away_is_set_cleared_and_told_to_away_notify_peers() {
        let (h, [mut alice, mut bob]) = Harness::start(["alice", "bob"]);
        h.run(&mut bob, "CAP REQ away-notify");
        h.received(&bob);
        assert_eq!(codes(&h.run(&mut alice, "AWAY :out")), ["306"]);
        assert!(h.received(&bob).contains(":alice!~alice@127.0.0.1 AWAY out"));
        assert_eq!(codes(&h.run(&mut alice, "AWAY")), ["305"]);
    }

    #[test]
    fn whowas_remembers_departed_nicks_newest_first() {
        let (h, [mut alice, mut bob]) = Harness::start(["alice", "bob"]);
        h.run(&mut bob, "NICK robert");
        let mut second = h.user("bob");
        h.server.registry.quit(second.id, None, 0);
        let out = h.run(&mut alice, "WHOWAS bob");
        assert_eq!(codes(&out), ["314", "312", "314", "312", "369"], "{out}");
        assert_eq!(codes(&h.run(&mut alice, "WHOWAS bob 1")), ["314", "312", "369"]);
        assert_eq!(codes(&h.run(&mut alice, "WHOWAS bob -1")).len(), 5, "a count below 1 means all");
        assert_eq!(codes(&h.run(&mut alice, "WHOWAS ghost")), ["406", "369"]);
        assert_eq!(codes(&h.run(&mut alice, "WHOWAS")), ["431"]);
        assert!(h.run(&mut second, "PING x").contains("PONG"), "the harness still runs the session");
    }

    #[test]
    fn info_ends_with_its_end_numeric() {
        let (h, [mut alice]) = Harness::start(["alice"]);
        let out = h.run(&mut alice, "INFO");
        assert!(codes(&out).iter().all(|c| *c == "371" || *c == "374"), "{out}");
        assert_eq!(codes(&out).last(), Some(&"374"));
    }

    #[test]
    fn secret_channels_hide_from_strangers() {
        let (h, [mut alice, mut bob]) = Harness::start(["alice", "bob"]);
        h.run(&mut alice, "JOIN #hidden");
        h.run(&mut alice, "MODE #hidden +s");
        assert!(!h.run(&mut bob, "LIST").contains("#hidden"));
        assert_eq!(codes(&h.run(&mut bob, "NAMES #hidden")), ["366"]);
        assert_eq!(codes(&h.run(&mut bob, "WHO #hidden")), ["315"]);
        assert!(!h.run(&mut bob, "WHOIS alice").contains("#hidden"));
        assert!(h.run(&mut alice, "NAMES #hidden").contains(" 353 alice @ #hidden @alice"));
        assert!(h.run(&mut alice, "WHOIS alice").contains("#hidden"), "members see it");
    }
}
