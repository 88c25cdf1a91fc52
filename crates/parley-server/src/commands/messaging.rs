//! PRIVMSG, NOTICE and TAGMSG to channels and nicks.
//!
//! The line is serialised once per capability set (see `relay.rs`) and the
//! same bytes are queued for every recipient, under the registry's read lock
//! so senders in different tasks fan out in parallel. NOTICE never gets an
//! error reply, as RFC 2812 requires, so bots cannot loop on each other.

use crate::activity_log::Value;
use crate::caps;
use crate::relay::Relay;
use crate::session::Ctx;
use parley_proto::numeric::*;
use parley_proto::{casefold, irc_eq, MessageRef, Tag};
use std::sync::atomic::Ordering;

pub fn message(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let command = msg.command;
    let is_notice = command == "NOTICE";
    let is_tagmsg = command == "TAGMSG";
    let err = |ctx: &Ctx<'_>, code: &str, params: &[&str]| {
        if !is_notice {
            ctx.reply(code, params);
        }
    };
    let Some(targets) = msg.param(0).filter(|t| !t.is_empty()) else {
        err(ctx, ERR_NORECIPIENT, &[&format!("No recipient given ({command})")]);
        return;
    };
    let text = msg.param(1).unwrap_or("");
    if !is_tagmsg && text.is_empty() {
        err(ctx, ERR_NOTEXTTOSEND, &["No text to send"]);
        return;
    }
    let client_tags: Vec<Tag> = if ctx.session.has_cap(caps::MESSAGE_TAGS) {
        msg.tags.iter().filter(|t| t.key.starts_with('+')).cloned().collect()
    } else {
        Vec::new()
    };
    if is_tagmsg && client_tags.is_empty() {
        return;
    }
    // Each target once (the first spelling wins), without collecting them.
    let distinct = || {
        super::split_list(targets)
            .enumerate()
            .filter(|&(i, t)| !super::split_list(targets).take(i).any(|seen| irc_eq(seen, t)))
            .map(|(_, t)| t)
    };
    // The usual case, one target, skips the list handling.
    let single = !targets.contains(',');
    let max = ctx.server.config.limits.max_targets;
    let too_many = if single { max == 0 } else { distinct().nth(max).is_some() };
    if too_many {
        err(ctx, ERR_TOOMANYTARGETS, &[targets, &format!("Too many recipients (at most {max})")]);
        return;
    }
    let (one, many) = if single { (Some(targets), None) } else { (None, Some(distinct())) };
    let ctx: &Ctx<'_> = ctx;
    let mask = ctx.session.mask();
    let echo = ctx.session.has_cap(caps::ECHO_MESSAGE);
    // One clock reading for the idle time (WHOIS) and the activity log.
    let now = std::time::SystemTime::now();
    ctx.session.client.last_spoke.store(crate::clock::unix_seconds(now), Ordering::Relaxed);
    for target in one.into_iter().chain(many.into_iter().flatten()) {
        let params: &[&str] = if is_tagmsg { &[target] } else { &[target, text] };
        let relay = Relay::line(mask, command, params, client_tags.clone());
        let delivered = if target.starts_with('#') {
            to_channel(ctx, target, mask, &relay, is_notice)
        } else {
            to_user(ctx, target, &relay, is_notice, is_tagmsg)
        };
        let Some(recipients) = delivered else {
            continue;
        };
        if echo {
            ctx.session.client.push(relay.bytes_for(ctx.session.caps));
        }
        let kind = if is_notice {
            "notice"
        } else if is_tagmsg {
            "tagmsg"
        } else {
            "message"
        };
        let fields = [
            ("target", Value::Text(target)),
            ("bytes", Value::Num(text.len() as u64)),
            ("recipients", Value::Num(recipients as u64)),
            ("body", Value::Text(text)),
        ];
        let logged = if ctx.server.log.records_bodies() { &fields[..] } else { &fields[..3] };
        ctx.server.log.record_as(now, kind, ctx.session.logged_as(), logged);
    }
}

/// Returns how many members got the message, or `None` if it was refused.
fn to_channel(ctx: &Ctx<'_>, target: &str, mask: &str, relay: &Relay, is_notice: bool) -> Option<usize> {
    let id = ctx.session.id;
    let key = casefold(target);
    let state = ctx.server.registry.read();
    let Some(chan) = state.channels.get(&key) else {
        drop(state);
        if !is_notice {
            ctx.reply(ERR_NOSUCHCHANNEL, &[target, "No such channel"]);
        }
        return None;
    };
    let flags = chan.flags(id);
    let privileged = flags.is_some_and(|f| f.op || f.voice);
    let refusal = if flags.is_none() && chan.modes.no_external {
        Some("Cannot send to channel (+n): you are not in it")
    } else if chan.modes.moderated && !privileged {
        Some("Cannot send to channel (+m): you need voice")
    } else if !privileged && chan.is_banned(mask) {
        Some("Cannot send to channel (+b): you are banned")
    } else {
        None
    };
    if let Some(text) = refusal {
        let name = chan.name.clone();
        drop(state);
        if !is_notice {
            ctx.reply(ERR_CANNOTSENDTOCHAN, &[name.as_str(), text]);
        }
        return None;
    }
    Some(state.send_to_channel(&key, relay, Some(id)))
}

fn to_user(ctx: &Ctx<'_>, target: &str, relay: &Relay, is_notice: bool, is_tagmsg: bool) -> Option<usize> {
    let state = ctx.server.registry.read();
    let Some(user) = state.user_by_nick(target) else {
        drop(state);
        if !is_notice {
            ctx.reply(ERR_NOSUCHNICK, &[target, "No such nick/channel"]);
        }
        return None;
    };
    let caps = user.client.caps();
    if !is_tagmsg || caps & caps::MESSAGE_TAGS != 0 {
        user.client.push(relay.bytes_for(caps));
    }
    let away = if is_notice || is_tagmsg { None } else { user.away.clone().map(|a| (user.nick.clone(), a)) };
    drop(state);
    if let Some((nick, text)) = away {
        ctx.reply(RPL_AWAY, &[nick, text]);
    }
    Some(1)
}
