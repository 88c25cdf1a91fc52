//! Questions about users and the server: WHOIS, WHOWAS, AWAY, ISON,
//! USERHOST, VERSION, TIME, INFO, LINKS, LUSERS, MOTD, and the ISUPPORT
//! burst. WHO has a module of its own (`who`).

use super::{split_list, truncate};
use crate::session::Ctx;
use parley_proto::mask::mask_matches;
use parley_proto::numeric::*;
use parley_proto::MessageRef;

/// Sends RPL_ISUPPORT, at most 13 tokens per line. The file store's URL
/// is offered under both names clients look for: `soju.im/FILEHOST`
/// (goguma, gamja, halloy, senpai) and `draft/FILEHOST`.
pub fn isupport(ctx: &Ctx<'_>) {
    let mut tokens = ctx.server.isupport.clone();
    if let Some(url) = ctx.server.filehost_for(ctx.session.secure) {
        tokens.push(format!("soju.im/FILEHOST={url}"));
        tokens.push(format!("draft/FILEHOST={url}"));
    }
    for chunk in tokens.chunks(13) {
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
    // In a cluster the other nodes count as servers; "local" is this node.
    let (local, others) = (users - counts.remote_users, counts.other_nodes);
    let servers = others + 1;
    ctx.reply(
        RPL_LUSERCLIENT,
        &[format!("There are {} users and {invisible} invisible on {servers} servers", users - invisible)],
    );
    if opers > 0 {
        ctx.reply(RPL_LUSEROP, &[opers.to_string(), "operator(s) online".into()]);
    }
    if unknown > 0 {
        ctx.reply(RPL_LUSERUNKNOWN, &[unknown.to_string(), "unknown connection(s)".into()]);
    }
    ctx.reply(RPL_LUSERCHANNELS, &[channels.to_string(), "channels formed".into()]);
    ctx.reply(RPL_LUSERME, &[format!("I have {local} clients and {others} servers")]);
    let local_max = if others == 0 { max } else { local };
    ctx.reply(
        RPL_LOCALUSERS,
        &[local.to_string(), local_max.to_string(), format!("Current local users {local}, max {local_max}")],
    );
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

/// What WHOIS tells about a user, gathered under the read lock.
struct Whois {
    nick: String,
    user: String,
    host: String,
    realname: String,
    channels: Vec<String>,
    oper: bool,
    bot: bool,
    account: Option<Box<str>>,
    away: Option<String>,
    idle: i64,
    signon: i64,
}

pub fn whois(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    // WHOIS [server] nick: the nick is the last parameter.
    let nick = msg.params.last().copied().unwrap_or("");
    let nick = split_list(nick).next().unwrap_or(nick);
    let me = ctx.session.id;
    let info = {
        let view = ctx.server.registry.read();
        view.user_by_nick(nick).map(|u| Whois {
            nick: u.nick.clone(),
            user: u.user.clone(),
            host: u.host.clone(),
            realname: u.realname.clone(),
            channels: u
                .channels
                .iter()
                .filter_map(|k| view.channel_by_key(k))
                .filter(|c| c.visible_to(me))
                .map(|c| format!("{}{}", c.flags(u.client.id).map_or("", |f| f.prefix(false)), c.name))
                .collect(),
            oper: u.oper.is_some(),
            bot: u.bot,
            account: u.account.clone(),
            away: u.away.clone(),
            idle: (crate::clock::unix_now() - u.client.last_spoke().max(u.signon)).max(0),
            signon: u.signon,
        })
    };
    let Some(w) = info else {
        ctx.reply(ERR_NOSUCHNICK, &[nick, "No such nick/channel"]);
        ctx.reply(RPL_ENDOFWHOIS, &[nick, "End of /WHOIS list"]);
        return;
    };
    let cfg = &ctx.server.config;
    let nick = w.nick.as_str();
    ctx.reply(RPL_WHOISUSER, &[nick, &w.user, &w.host, "*", &w.realname]);
    if !w.channels.is_empty() {
        ctx.reply(RPL_WHOISCHANNELS, &[nick, &w.channels.join(" ")]);
    }
    ctx.reply(RPL_WHOISSERVER, &[nick, &cfg.server_name, &cfg.description]);
    if w.oper {
        ctx.reply(RPL_WHOISOPERATOR, &[nick, "is an IRC operator"]);
    }
    if w.bot {
        ctx.reply(RPL_WHOISBOT, &[nick, "is a bot"]);
    }
    if let Some(account) = &w.account {
        ctx.reply(RPL_WHOISACCOUNT, &[nick, account, "is logged in as"]);
    }
    if let Some(a) = &w.away {
        ctx.reply(RPL_AWAY, &[nick, a]);
    }
    let (idle, signon) = (w.idle.to_string(), w.signon.to_string());
    ctx.reply(RPL_WHOISIDLE, &[nick, &idle, &signon, "seconds idle, signon time"]);
    ctx.reply(RPL_ENDOFWHOIS, &[nick, "End of /WHOIS list"]);
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

/// LINKS [[server] mask]: this server alone (Parley is never linked to
/// another), if it matches the mask.
pub fn links(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let mask = msg.params.last().copied().unwrap_or("*");
    let cfg = &ctx.server.config;
    if mask_matches(mask, &cfg.server_name) {
        ctx.reply(RPL_LINKS, &[&cfg.server_name, &cfg.server_name, &format!("0 {}", cfg.description)]);
    }
    ctx.reply(RPL_ENDOFLINKS, &[mask, "End of /LINKS list"]);
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
    fn extended_monitor_tells_away_changes_to_watchers_outside_shared_channels() {
        let (h, [mut alice, mut bob, mut carol]) = Harness::start(["alice", "bob", "carol"]);
        h.run(&mut bob, "PART #lobby");
        h.run(&mut alice, "CAP REQ :extended-monitor away-notify");
        h.run(&mut carol, "CAP REQ away-notify");
        h.run(&mut alice, "MONITOR + bob,carol");
        h.run(&mut carol, "MONITOR + bob");
        h.received(&alice);
        h.received(&carol);
        h.run(&mut bob, "AWAY :gone");
        assert_eq!(h.received(&alice), ":bob!~bob@127.0.0.1 AWAY gone\r\n");
        assert!(h.received(&carol).is_empty(), "no extended-monitor");
        h.run(&mut carol, "AWAY :also gone");
        assert_eq!(h.received(&alice).matches("AWAY").count(), 1, "once, though they share the lobby too");
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
    fn whois_names_bots() {
        let (h, [mut alice, mut bot]) = Harness::start(["alice", "bot"]);
        h.run(&mut bot, "MODE bot +B");
        let out = h.run(&mut alice, "WHOIS bot");
        assert_eq!(codes(&out), ["311", "319", "312", "335", "317", "318"], "{out}");
        assert!(out.contains(" 335 alice bot :is a bot\r\n"), "{out}");
        assert!(out.contains(" 312 alice bot parley.local :Parley chat server\r\n"), "{out}");
    }

    #[test]
    fn links_shows_this_server_alone() {
        let (h, [mut alice]) = Harness::start(["alice"]);
        let out = h.run(&mut alice, "LINKS");
        assert_eq!(out, ":parley.local 364 alice parley.local parley.local :0 Parley chat server\r\n:parley.local 365 alice * :End of /LINKS list\r\n");
        assert_eq!(codes(&h.run(&mut alice, "LINKS other.server")), ["365"]);
        assert_eq!(codes(&h.run(&mut alice, "LINKS * *.local")), ["364", "365"]);
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
