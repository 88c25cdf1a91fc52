//! MONITOR (IRCv3): a client names nicks it wants to follow and hears when
//! each comes online (`730` with its hostmask) or goes offline (`731`),
//! including through nick changes. The lists live in the registry, which
//! sends those notifications; this module answers the command itself:
//!
//! - `MONITOR + a,b`: adds them (at most `limits.monitor_max` in all; the
//!   rest get `734`) and says which are online now;
//! - `MONITOR - a,b`: removes them, silently;
//! - `MONITOR C`: clears the list, silently;
//! - `MONITOR L`: the list (`732`, `733`);
//! - `MONITOR S`: the state of every nick on the list (`730`, `731`).
//!
//! Only valid nicks can be monitored (`432` otherwise): never masks.

use super::split_list;
use crate::session::Ctx;
use parley_proto::numeric::*;
use parley_proto::{irc_eq, validate_nick, MessageRef};

/// How many bytes of nicks (or hostmasks) go in one reply line, leaving
/// room for the prefix, the numeric and the client's nick in 512 bytes.
const LINE_BUDGET: usize = 400;

pub fn monitor(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let sub = msg.params[0];
    let targets = msg.param(1).unwrap_or("");
    match sub {
        "+" | "-" if split_list(targets).next().is_none() => {
            ctx.reply(ERR_NEEDMOREPARAMS, &["MONITOR", "Not enough parameters"]);
        }
        "+" => add(ctx, targets),
        "-" => {
            let nicks: Vec<&str> = split_list(targets).collect();
            ctx.server.registry.monitor_remove(ctx.session.id, &nicks);
        }
        "C" | "c" => ctx.server.registry.monitor_clear(ctx.session.id),
        "L" | "l" => {
            let list = ctx.server.registry.read().monitored(ctx.session.id).to_vec();
            send_joined(ctx, RPL_MONLIST, &list);
            ctx.reply(RPL_ENDOFMONLIST, &["End of MONITOR list"]);
        }
        "S" | "s" => {
            let (online, offline) = {
                let view = ctx.server.registry.read();
                let mut online = Vec::new();
                let mut offline = Vec::new();
                for nick in view.monitored(ctx.session.id) {
                    match view.user_by_nick(nick) {
                        Some(user) => online.push(user.hostmask()),
                        None => offline.push(nick.clone()),
                    }
                }
                (online, offline)
            };
            send_joined(ctx, RPL_MONONLINE, &online);
            send_joined(ctx, RPL_MONOFFLINE, &offline);
        }
        _ => ctx.reply(ERR_UNKNOWNERROR, &["MONITOR", sub, "Unknown MONITOR subcommand; use + - C L or S"]),
    }
}

fn add(ctx: &mut Ctx<'_>, targets: &str) {
    let limits = &ctx.server.config.limits;
    let mut nicks: Vec<&str> = Vec::new();
    for nick in split_list(targets) {
        if let Err(e) = validate_nick(nick, limits.nick_len) {
            ctx.reply(ERR_ERRONEUSNICKNAME, &[nick, &format!("Erroneous nickname: {e}")]);
        } else if !nicks.iter().any(|n| irc_eq(n, nick)) {
            nicks.push(nick);
        }
    }
    let found = ctx.server.registry.monitor_add(ctx.session.id, &nicks, limits.monitor_max);
    send_joined(ctx, RPL_MONONLINE, &found.online);
    send_joined(ctx, RPL_MONOFFLINE, &found.offline);
    if !found.refused.is_empty() {
        let limit = limits.monitor_max.to_string();
        ctx.reply(ERR_MONLISTFULL, &[&limit, &found.refused.join(","), "Monitor list is full"]);
    }
}

/// `code` replies carrying `items` comma-separated, as few lines as fit.
fn send_joined(ctx: &Ctx<'_>, code: &str, items: &[String]) {
    let mut line = String::new();
    for item in items {
        if !line.is_empty() && line.len() + item.len() + 1 > LINE_BUDGET {
            ctx.reply(code, &[line.as_str()]);
            line.clear();
        }
        if !line.is_empty() {
            line.push(',');
        }
        line.push_str(item);
    }
    if !line.is_empty() {
        ctx.reply(code, &[line.as_str()]);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{codes, Harness};

    #[test]
    fn adding_says_who_is_online_and_later_arrivals_are_told() {
        let (h, [mut alice, _bob]) = Harness::start(["alice", "bob"]);
        let out = h.run(&mut alice, "MONITOR + Bob,carol,BOB");
        assert_eq!(
            out, ":parley.local 730 alice bob!~bob@127.0.0.1\r\n:parley.local 731 alice carol\r\n",
            "each nick once"
        );
        h.received(&alice);
        let mut carol = h.user("carol");
        assert!(h.received(&alice).starts_with(":parley.local 730 alice carol!~carol@127.0.0.1\r\n"));
        h.run(&mut carol, "NICK caroline");
        assert!(h.received(&alice).starts_with(":parley.local 731 alice carol\r\n"));
        let list = h.run(&mut alice, "MONITOR L");
        assert_eq!(list, ":parley.local 732 alice Bob,carol\r\n:parley.local 733 alice :End of MONITOR list\r\n");
        let status = h.run(&mut alice, "MONITOR S");
        assert_eq!(codes(&status), ["730", "731"]);
    }

    #[test]
    fn removing_and_clearing_say_nothing_and_stop_the_news() {
        let (h, [mut alice]) = Harness::start(["alice"]);
        h.run(&mut alice, "MONITOR + bob,carol");
        assert!(h.run(&mut alice, "MONITOR - BOB").is_empty());
        let _bob = h.user("bob");
        assert!(!h.received(&alice).contains(" 730 "), "bob is no longer monitored");
        assert!(h.run(&mut alice, "MONITOR C").is_empty());
        assert_eq!(codes(&h.run(&mut alice, "MONITOR L")), ["733"]);
    }

    #[test]
    fn a_full_list_masks_and_unknown_subcommands_get_their_numerics() {
        let h = Harness::with(|c| c.limits.monitor_max = 2);
        let mut alice = h.user("alice");
        let out = h.run(&mut alice, "MONITOR + a,b,c,d");
        assert_eq!(codes(&out), ["731", "734"], "{out}");
        assert!(out.ends_with(" 734 alice 2 c,d :Monitor list is full\r\n"), "{out}");
        assert_eq!(codes(&h.run(&mut alice, "MONITOR + *!*@host")), ["432"]);
        assert_eq!(codes(&h.run(&mut alice, "MONITOR X")), ["400"]);
        assert_eq!(codes(&h.run(&mut alice, "MONITOR +")), ["461"]);
        assert_eq!(codes(&h.run(&mut alice, "MONITOR")), ["461"]);
    }
}
