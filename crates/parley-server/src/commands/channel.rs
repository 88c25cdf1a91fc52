//! Channel membership and channel facts: JOIN, PART, TOPIC, NAMES, LIST,
//! INVITE, KICK.
//!
//! Auto-join channels (the lobby) switch to quiet mode above
//! `irc.quiet_lobby_above` members: joins, parts and quits are then not
//! broadcast (a broadcast per join grows with the square of the member
//! count) and NAMES on join lists only you and the channel operators.

use super::elist::ListFilter;
use super::{split_list, truncate};
use crate::activity_log::Value;
use crate::channel::Topic;
use crate::registry::JoinLimits;
use crate::session::Ctx;
use parley_proto::numeric::*;
use parley_proto::{validate_channel, MessageRef};

pub fn join(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    if msg.params[0] == "0" {
        let channels = ctx.server.registry.read().user(ctx.session.id).map(|u| u.channels.clone());
        for key in channels.unwrap_or_default() {
            part_one(ctx, &key, "Left all channels");
        }
        return;
    }
    let keys: Vec<&str> = msg.param(1).map(|k| k.split(',').collect()).unwrap_or_default();
    for (i, name) in split_list(msg.params[0]).enumerate() {
        join_one(ctx, name, keys.get(i).copied().filter(|k| !k.is_empty()));
    }
}

/// Joins one channel, creating it (with the joiner as operator) if needed.
pub fn join_one(ctx: &mut Ctx<'_>, name: &str, key: Option<&str>) {
    let limits = &ctx.server.config.limits;
    if let Err(e) = validate_channel(name, limits.channel_len) {
        ctx.reply(ERR_BADCHANMASK, &[name, &format!("Bad channel name: {e}")]);
        return;
    }
    let join_limits =
        JoinLimits { max_channels: limits.max_channels_per_user, quiet_above: ctx.server.config.irc.quiet_lobby_above };
    let mask = ctx.session.hostmask();
    let joined = match ctx.server.registry.join(ctx.session.id, name, key, &mask, ctx.session.caps, &join_limits) {
        Ok(Some(joined)) => joined,
        Ok(None) => return,
        Err(refusal) => {
            ctx.refuse(&refusal);
            return;
        }
    };
    ctx.send_relay(&joined.relay);
    if let Some(topic) = &joined.topic {
        send_topic(ctx, &joined.name, topic);
    }
    super::markread::on_join(ctx, &joined.name);
    send_names(ctx, joined.symbol, &joined.name, &joined.names);
    super::chathistory::replay_on_join(ctx, &joined.name);
    if joined.quiet {
        ctx.server_notice(&format!(
            "{} has {} members, so joins and quits there are not announced. /NAMES {} lists everyone.",
            joined.name, joined.members, joined.name
        ));
    }
    if let Some(history) = &ctx.server.history {
        history.membership(ctx.session, &joined.name, true);
    }
    ctx.server.log.record("join", ctx.actor(), &[("channel", Value::Text(&joined.name))]);
}

pub fn part(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let reason = msg.param(1).map(|r| truncate(r, ctx.server.config.limits.kick_len).to_string());
    for name in split_list(msg.params[0]) {
        part_one(ctx, name, reason.as_deref().unwrap_or(""));
    }
}

fn part_one(ctx: &mut Ctx<'_>, name: &str, reason: &str) {
    let mask = ctx.session.hostmask();
    let quiet_above = ctx.server.config.irc.quiet_lobby_above;
    match ctx.server.registry.part(ctx.session.id, name, reason, &mask, quiet_above) {
        Ok(parted) => {
            ctx.send_relay(&parted.relay);
            if let Some(history) = &ctx.server.history {
                history.membership(ctx.session, &parted.channel, false);
            }
            ctx.server.log.record(
                "part",
                ctx.actor(),
                &[("channel", Value::Text(&parted.channel)), ("reason", Value::Text(reason))],
            );
        }
        Err(refusal) => ctx.refuse(&refusal),
    }
}

pub fn topic(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let name = msg.params[0];
    let Some(new_text) = msg.param(1) else {
        let found = ctx.server.registry.read().channel(name).map(|c| (c.name.clone(), c.topic.clone()));
        match found {
            None => ctx.reply(ERR_NOSUCHCHANNEL, &[name, "No such channel"]),
            Some((chan_name, Some(t))) => send_topic(ctx, &chan_name, &t),
            Some((chan_name, None)) => ctx.reply(RPL_NOTOPIC, &[chan_name.as_str(), "No topic is set"]),
        }
        return;
    };
    let text = truncate(new_text, ctx.server.config.limits.topic_len);
    let nick = ctx.session.nick.clone().unwrap_or_default();
    let mask = ctx.session.hostmask();
    match ctx.server.registry.set_topic(ctx.session.id, name, text, &nick, &mask) {
        Ok(set) => {
            ctx.send_relay(&set.relay);
            if let Some(history) = &ctx.server.history {
                history.topic(ctx.session, &set.channel, text, &set.relay);
            }
            ctx.server.log.record(
                "topic",
                ctx.actor(),
                &[("channel", Value::Text(&set.channel)), ("bytes", Value::Num(text.len() as u64))],
            );
        }
        Err(refusal) => ctx.refuse(&refusal),
    }
}

pub fn names(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let Some(list) = msg.param(0) else {
        ctx.reply(RPL_ENDOFNAMES, &["*", "End of /NAMES list"]);
        return;
    };
    for name in split_list(list).take(1) {
        let view = ctx.server.registry.read();
        let found = view
            .channel(name)
            .filter(|chan| chan.visible_to(ctx.session.id))
            .map(|chan| (chan.modes.names_symbol(), chan.name.clone(), view.name_entries(chan, ctx.session.caps)));
        drop(view);
        match found {
            Some((symbol, chan_name, entries)) => send_names(ctx, symbol, &chan_name, &entries),
            None => ctx.reply(RPL_ENDOFNAMES, &[name, "End of /NAMES list"]),
        }
    }
}

/// LIST [filters]: the channels you may see, filtered as `elist` says.
pub fn list(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let filter = match ListFilter::parse(msg.param(0).unwrap_or("")) {
        Ok(filter) => filter,
        Err(bad) => {
            ctx.reply(ERR_UNKNOWNERROR, &["LIST", &format!("Bad filter {:?}: {}", bad.item, bad.why)]);
            ctx.reply(RPL_LISTEND, &["End of /LIST"]);
            return;
        }
    };
    let now = crate::clock::unix_now();
    let rows: Vec<(String, usize, String)> = {
        let view = ctx.server.registry.read();
        let mut rows: Vec<_> = view
            .channels()
            .filter(|(_, c)| c.visible_to(ctx.session.id) && filter.accepts(c, now))
            .map(|(_, c)| {
                let (modes, _) = c.modes.describe(false);
                let topic = c.topic.as_ref().map_or("", |t| t.text.as_str());
                (c.name.clone(), c.member_count(), format!("[{modes}] {topic}"))
            })
            .collect();
        rows.sort();
        rows
    };
    ctx.reply(RPL_LISTSTART, &["Channel", "Users  Name"]);
    for (name, count, topic) in rows {
        ctx.reply(RPL_LIST, &[name, count.to_string(), topic]);
    }
    ctx.reply(RPL_LISTEND, &["End of /LIST"]);
}

/// INVITE nick #channel; INVITE alone lists the channels you are invited to.
pub fn invite(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let (nick, name) = match msg.params[..] {
        [] => {
            let channels = ctx.server.registry.read().invitations(ctx.session.id);
            for name in channels {
                ctx.reply(RPL_INVITELIST, &[name]);
            }
            ctx.reply(RPL_ENDOFINVITELIST, &["End of /INVITE list"]);
            return;
        }
        [nick, name, ..] => (nick, name),
        _ => {
            ctx.reply(ERR_NEEDMOREPARAMS, &["INVITE", "Not enough parameters"]);
            return;
        }
    };
    let mask = ctx.session.hostmask();
    match ctx.server.registry.invite(ctx.session.id, nick, name, &mask) {
        Ok((target_nick, chan_name)) => ctx.reply(RPL_INVITING, &[target_nick, chan_name]),
        Err(refusal) => ctx.refuse(&refusal),
    }
}

pub fn kick(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let name = msg.params[0];
    let mask = ctx.session.hostmask();
    let reason = msg
        .param(2)
        .map(|r| truncate(r, ctx.server.config.limits.kick_len).to_string())
        .unwrap_or_else(|| ctx.session.nick.clone().unwrap_or_default());
    for nick in split_list(msg.params[1]).take(1) {
        match ctx.server.registry.kick(ctx.session.id, name, nick, &reason, &mask) {
            Ok((kicked, target_nick)) => {
                ctx.send_relay(&kicked.relay);
                if let Some(history) = &ctx.server.history {
                    let account = ctx.server.registry.read().user_by_nick(&target_nick).and_then(|u| u.account.clone());
                    if let Some(account) = account {
                        let now = crate::clock::unix_millis(std::time::SystemTime::now());
                        history.record_member(&account, &kicked.channel, Some(now));
                    }
                }
                ctx.server.log.record(
                    "kick",
                    ctx.actor(),
                    &[
                        ("channel", Value::Text(&kicked.channel)),
                        ("target", Value::Text(&target_nick)),
                        ("reason", Value::Text(&reason)),
                    ],
                );
            }
            Err(refusal) => {
                ctx.refuse(&refusal);
                return;
            }
        }
    }
}

/// `353` lines for `entries`, then `366`; `symbol` says whether the
/// channel is public (`=`), private (`*`) or secret (`@`).
fn send_names(ctx: &Ctx<'_>, symbol: &str, chan_name: &str, entries: &[String]) {
    // Keep each 353 line comfortably under 512 bytes.
    let budget = 400usize.saturating_sub(chan_name.len() + ctx.target().len());
    let mut line = String::new();
    for entry in entries {
        if !line.is_empty() && line.len() + entry.len() + 1 > budget {
            ctx.reply(RPL_NAMREPLY, &[symbol, chan_name, line.as_str()]);
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(entry);
    }
    if !line.is_empty() {
        ctx.reply(RPL_NAMREPLY, &[symbol, chan_name, line.as_str()]);
    }
    ctx.reply(RPL_ENDOFNAMES, &[chan_name, "End of /NAMES list"]);
}

fn send_topic(ctx: &Ctx<'_>, chan_name: &str, topic: &Topic) {
    ctx.reply(RPL_TOPIC, &[chan_name, topic.text.as_str()]);
    ctx.reply(RPL_TOPICWHOTIME, &[chan_name, topic.set_by.as_str(), &topic.set_at.to_string()]);
}

#[cfg(test)]
mod tests {
    use super::super::testing::{codes, Harness};

    #[test]
    fn the_creator_of_a_channel_is_its_operator_and_sees_the_names() {
        let (h, [mut alice]) = Harness::start(["alice"]);
        let out = h.run(&mut alice, "JOIN #Room");
        assert!(out.starts_with(":alice!~alice@127.0.0.1 JOIN #Room\r\n"), "{out}");
        assert!(out.contains(" 353 alice = #Room @alice"), "{out}");
        assert_eq!(codes(&h.run(&mut alice, "JOIN nohash")), [parley_proto::numeric::ERR_BADCHANMASK]);
    }

    #[test]
    fn joins_are_answered_in_order_one_channel_after_another() {
        let (h, [mut alice]) = Harness::start(["alice"]);
        let out = h.run(&mut alice, "JOIN #a,#b");
        let order: Vec<&str> = out.lines().filter_map(|l| l.split(' ').nth(1)).collect();
        assert_eq!(order, ["JOIN", "353", "366", "JOIN", "353", "366"], "{out}");
    }

    #[test]
    fn part_and_kick_follow_the_rules() {
        let h = Harness::new();
        let [mut alice, mut bob] = h.in_channel("#room", ["alice", "bob"]);
        assert_eq!(codes(&h.run(&mut bob, "KICK #room alice")), ["482"]);
        assert_eq!(codes(&h.run(&mut alice, "KICK #room nobody")), ["441"]);
        h.received(&bob);
        assert!(h.run(&mut alice, "KICK #room bob :behave").contains("KICK #room bob behave"));
        assert!(h.received(&bob).contains("KICK #room bob behave"), "the kicked user is told");
        assert_eq!(codes(&h.run(&mut bob, "PART #room")), ["442"]);
        assert_eq!(codes(&h.run(&mut bob, "PART #elsewhere")), ["403"]);
    }

    #[test]
    fn topic_needs_an_operator_under_t_and_reaches_everyone() {
        let h = Harness::new();
        let [mut alice, mut bob] = h.in_channel("#room", ["alice", "bob"]);
        assert_eq!(codes(&h.run(&mut bob, "TOPIC #room :mine")), ["482"]);
        h.received(&bob);
        assert!(h.run(&mut alice, "TOPIC #room :plans").contains("TOPIC #room plans"));
        assert!(h.received(&bob).contains("TOPIC #room plans"));
        assert_eq!(codes(&h.run(&mut bob, "TOPIC #room")), ["332", "333"]);
    }

    #[test]
    fn an_invitation_opens_an_invite_only_channel() {
        let (h, [mut alice, mut bob]) = Harness::start(["alice", "bob"]);
        h.run(&mut alice, "JOIN #club");
        h.run(&mut alice, "MODE #club +i");
        assert_eq!(codes(&h.run(&mut bob, "JOIN #club")), ["473"]);
        assert_eq!(codes(&h.run(&mut alice, "INVITE bob #club")), ["341"]);
        assert!(h.received(&bob).contains("INVITE bob #club"));
        assert!(h.run(&mut bob, "JOIN #club").contains("JOIN #club"));
    }

    #[test]
    fn invite_alone_lists_your_invitations() {
        let (h, [mut alice, mut bob]) = Harness::start(["alice", "bob"]);
        h.run(&mut alice, "JOIN #b,#a");
        h.run(&mut alice, "INVITE bob #b");
        h.run(&mut alice, "INVITE bob #a");
        let out = h.run(&mut bob, "INVITE");
        assert_eq!(
            out,
            ":parley.local 336 bob #a\r\n:parley.local 336 bob #b\r\n:parley.local 337 bob :End of /INVITE list\r\n"
        );
        h.run(&mut bob, "JOIN #a");
        assert_eq!(codes(&h.run(&mut bob, "INVITE")), ["336", "337"], "a join uses the invitation up");
        assert_eq!(codes(&h.run(&mut bob, "INVITE alice")), ["461"]);
    }

    #[test]
    fn members_with_invite_notify_see_invitations() {
        let h = Harness::new();
        let [mut alice, mut bob, carol] = h.in_channel("#room", ["alice", "bob", "carol"]);
        h.run(&mut bob, "CAP REQ invite-notify");
        let dave = h.user("dave");
        h.received(&bob);
        assert!(h.run(&mut alice, "INVITE dave #room").contains(" 341 alice dave #room"));
        assert_eq!(h.received(&bob), ":alice!~alice@127.0.0.1 INVITE dave #room\r\n");
        assert!(!h.received(&carol).contains("INVITE"), "no invite-notify, no INVITE");
        assert!(h.received(&dave).contains("INVITE dave #room"));
    }

    #[test]
    fn list_shows_channels_with_their_counts() {
        let (h, [mut alice]) = Harness::start(["alice"]);
        h.run(&mut alice, "JOIN #room");
        let out = h.run(&mut alice, "LIST");
        assert!(out.contains(" 322 alice #lobby 1 :") && out.contains(" 322 alice #room 1 :"), "{out}");
        assert!(codes(&out).ends_with(&["323"]));
    }

    #[test]
    fn list_filters_by_mask_and_count_and_names_a_bad_filter() {
        let (h, [mut alice, mut bob]) = Harness::start(["alice", "bob"]);
        h.run(&mut alice, "JOIN #one,#two");
        h.run(&mut bob, "JOIN #two");
        let names = |out: String| -> Vec<String> {
            out.lines().filter(|l| l.contains(" 322 ")).map(|l| l.split(' ').nth(3).unwrap().to_string()).collect()
        };
        let mut sorted = |param: &str| {
            let mut n = names(h.run(&mut alice, &format!("LIST {param}")));
            n.sort();
            n
        };
        assert_eq!(sorted("#t*"), ["#two"]);
        assert_eq!(sorted("!#t*,!#l*"), ["#one"]);
        assert_eq!(sorted(">1"), ["#lobby", "#two"]);
        assert_eq!(sorted("<2,C<5"), ["#one"]);
        assert_eq!(sorted("T>0"), Vec::<String>::new(), "no topics");
        let out = h.run(&mut alice, "LIST >many");
        assert_eq!(codes(&out), ["400", "323"], "{out}");
        assert!(out.contains(" 400 alice LIST :Bad filter \">many\""), "{out}");
    }

    #[test]
    fn an_away_user_joining_is_announced_to_away_notify_members() {
        let h = Harness::new();
        let [mut alice] = h.in_channel("#room", ["alice"]);
        h.run(&mut alice, "CAP REQ away-notify");
        let mut bob = h.user("bob");
        h.run(&mut bob, "AWAY :lunch");
        h.received(&alice);
        let joined = h.run(&mut bob, "JOIN #room");
        assert!(!joined.contains("AWAY"), "not to the joiner: {joined}");
        let seen = h.received(&alice);
        assert!(seen.contains("JOIN #room") && seen.contains(":bob!~bob@127.0.0.1 AWAY lunch"), "{seen}");
    }
}
