//! PRIVMSG, NOTICE and TAGMSG to channels and nicks.
//!
//! The line is serialised once per capability set (see `relay.rs`); the
//! registry checks the channel's rules and queues the same bytes for every
//! recipient under its read lock, so senders in different tasks fan out in
//! parallel. NOTICE never gets an
//! error reply, as RFC 2812 requires, so bots cannot loop on each other.

use crate::activity_log::Value;
use crate::caps;
use crate::relay::Relay;
use crate::session::Ctx;
use parley_proto::numeric::*;
use parley_proto::{irc_eq, MessageRef, Tag};

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
    let mut client_tags: Vec<Tag> = if ctx.session.has_cap(caps::MESSAGE_TAGS) {
        msg.tags.iter().filter(|t| t.key.starts_with('+')).cloned().collect()
    } else {
        Vec::new()
    };
    if is_tagmsg && client_tags.is_empty() {
        return;
    }
    // Bot mode: recipients with message-tags see that a bot sent it.
    if ctx.session.bot {
        client_tags.push(Tag { key: "bot".into(), value: None });
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
    ctx.session.client.note_spoke(crate::clock::unix_seconds(now));
    for target in one.into_iter().chain(many.into_iter().flatten()) {
        let params: &[&str] = if is_tagmsg { &[target] } else { &[target, text] };
        let relay = Relay::line(mask, command, params, client_tags.clone()).with_account(ctx.session.account());
        let metrics = crate::metrics::get();
        metrics.messages_in.inc();
        let Some(recipients) = deliver(ctx, target, mask, &relay, is_notice) else {
            continue;
        };
        metrics.deliveries.inc_by(recipients as u64);
        if echo {
            ctx.send_relay(&relay);
        }
        if let Some(history) = &ctx.server.history {
            history.message(&ctx.server.registry, ctx.session, target, command, text, &relay);
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

/// Delivers to a channel, the members of a channel with a status
/// (STATUSMSG: `@#chan`, `+#chan`) or a nick; returns how many got it, or
/// `None` if it was refused (NOTICE is refused silently).
fn deliver(ctx: &Ctx<'_>, target: &str, mask: &str, relay: &Relay, is_notice: bool) -> Option<usize> {
    let registry = &ctx.server.registry;
    let (status, channel) = match target.as_bytes() {
        [p @ (b'@' | b'+'), b'#', ..] => (Some(char::from(*p)), &target[1..]),
        _ => (None, target),
    };
    let delivered = if channel.starts_with('#') {
        registry.message_channel(ctx.session.id, channel, status, mask, relay)
    } else {
        registry.message_user(target, relay).map(|away| {
            // Only a PRIVMSG hears that its recipient is away.
            if let Some((nick, text)) = away.filter(|_| !is_notice && !relay.tags_only()) {
                ctx.reply(RPL_AWAY, &[nick, text]);
            }
            1
        })
    };
    match delivered {
        Ok(n) => Some(n),
        Err(refusal) => {
            if !is_notice {
                ctx.refuse(&refusal);
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{codes, Harness};

    #[test]
    fn a_channel_message_reaches_every_other_member_once() {
        let (h, [mut alice, bob, carol]) = Harness::start(["alice", "bob", "carol"]);
        for s in [&alice, &bob, &carol] {
            h.received(s);
        }
        assert!(h.run(&mut alice, "PRIVMSG #lobby :hello all").is_empty(), "no echo without echo-message");
        assert_eq!(h.received(&bob), ":alice!~alice@127.0.0.1 PRIVMSG #lobby :hello all\r\n");
        assert_eq!(h.received(&carol), ":alice!~alice@127.0.0.1 PRIVMSG #lobby :hello all\r\n");
        assert!(h.received(&alice).is_empty());
    }

    #[test]
    fn errors_name_the_target_and_notices_never_get_one() {
        let (h, [mut alice]) = Harness::start(["alice"]);
        assert_eq!(codes(&h.run(&mut alice, "PRIVMSG nobody :hi")), ["401"]);
        assert_eq!(codes(&h.run(&mut alice, "PRIVMSG #nowhere :hi")), ["403"]);
        assert_eq!(codes(&h.run(&mut alice, "PRIVMSG alice")), ["412"]);
        assert!(h.run(&mut alice, "NOTICE nobody :hi").is_empty());
        let mut bob = h.user("bob");
        h.run(&mut bob, "JOIN #closed");
        assert_eq!(codes(&h.run(&mut alice, "PRIVMSG #closed :let me in")), ["404"], "+n by default");
    }

    #[test]
    fn a_private_message_reports_away_and_echoes_when_asked() {
        let (h, [mut alice, mut bob]) = Harness::start(["alice", "bob"]);
        h.run(&mut bob, "AWAY :lunch");
        let reply = h.run(&mut alice, "PRIVMSG bob :are you there");
        assert!(reply.contains(" 301 alice bob lunch"), "{reply}");
        assert!(h.received(&bob).ends_with("PRIVMSG bob :are you there\r\n"));
        h.run(&mut alice, "CAP REQ echo-message");
        let echoed = h.run(&mut alice, "PRIVMSG bob :again");
        assert!(echoed.ends_with(":alice!~alice@127.0.0.1 PRIVMSG bob again\r\n"), "{echoed}");
    }

    #[test]
    fn a_status_message_reaches_members_with_that_status_or_higher() {
        let h = Harness::new();
        let [mut op, mut voiced, plain] = h.in_channel("#room", ["op", "voiced", "plain"]);
        h.run(&mut op, "MODE #room +v voiced");
        for s in [&op, &voiced, &plain] {
            h.received(s);
        }
        assert!(h.run(&mut voiced, "PRIVMSG @#room :ops only").is_empty());
        assert_eq!(h.received(&op), ":voiced!~voiced@127.0.0.1 PRIVMSG @#room :ops only\r\n");
        assert!(h.received(&plain).is_empty());
        h.run(&mut op, "NOTICE +#room :voices and ops");
        assert!(h.received(&voiced).contains("NOTICE +#room :voices and ops"));
        assert!(h.received(&plain).is_empty());
        let mut outsider = h.user("outsider");
        assert_eq!(codes(&h.run(&mut outsider, "PRIVMSG @#room :hi")), ["404"], "+n still applies");
        assert_eq!(codes(&h.run(&mut outsider, "PRIVMSG @#nowhere :hi")), ["403"]);
    }

    #[test]
    fn a_bots_messages_carry_the_bot_tag_for_message_tags_clients() {
        let (h, [mut bot, mut tagged, plain]) = Harness::start(["bot", "tagged", "plain"]);
        h.run(&mut tagged, "CAP REQ message-tags");
        h.run(&mut bot, "MODE bot +B");
        h.received(&tagged);
        h.received(&plain);
        h.run(&mut bot, "PRIVMSG #lobby :beep");
        let seen = h.received(&tagged);
        assert!(seen.starts_with("@msgid=") && seen.contains(";bot :bot!~bot@127.0.0.1 PRIVMSG"), "{seen}");
        assert_eq!(h.received(&plain), ":bot!~bot@127.0.0.1 PRIVMSG #lobby beep\r\n");
        h.run(&mut bot, "MODE bot -B");
        h.run(&mut bot, "PRIVMSG #lobby :human again");
        assert!(!h.received(&tagged).contains("bot "), "no tag once -B");
    }

    #[test]
    fn too_many_targets_are_refused_whole() {
        let h = Harness::with(|c| c.limits.max_targets = 2);
        let mut alice = h.user("alice");
        let bob = h.user("bob");
        h.received(&bob);
        assert_eq!(codes(&h.run(&mut alice, "PRIVMSG bob,alice,#lobby :x")), ["407"]);
        assert!(h.received(&bob).is_empty(), "nothing was delivered");
        // The same target twice counts once.
        assert!(h.run(&mut alice, "PRIVMSG bob,BOB :x").is_empty());
        assert_eq!(h.received(&bob).lines().count(), 1);
    }
}
