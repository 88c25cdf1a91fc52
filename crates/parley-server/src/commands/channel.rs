//! Channel membership and channel facts: JOIN, PART, TOPIC, NAMES, LIST,
//! INVITE, KICK.
//!
//! Auto-join channels (the lobby) switch to quiet mode above
//! `irc.quiet_lobby_above` members: joins, parts and quits are then not
//! broadcast (a broadcast per join grows with the square of the member
//! count) and NAMES on join lists only you and the channel operators.

use super::{split_list, truncate};
use crate::activity_log::Value;
use crate::caps;
use crate::channel::{Channel, Member, MemberFlags, Topic};
use crate::registry::State;
use crate::relay::Relay;
use crate::session::Ctx;
use parley_proto::numeric::*;
use parley_proto::{casefold, validate_channel, Message, MessageRef};

pub fn join(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    if msg.params[0] == "0" {
        let channels = ctx.server.registry.read().users.get(&ctx.session.id).map(|u| u.channels.clone());
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

/// What a join needs to send after the lock is released.
struct Joined {
    name: String,
    topic: Option<Topic>,
    names: Vec<String>,
    quiet: bool,
    members: usize,
}

/// Joins one channel, creating it (with the joiner as operator) if needed.
pub fn join_one(ctx: &mut Ctx<'_>, name: &str, key: Option<&str>) {
    let limits = &ctx.server.config.limits;
    if let Err(e) = validate_channel(name, limits.channel_len) {
        ctx.reply(ERR_BADCHANMASK, &[name, &format!("Bad channel name: {e}")]);
        return;
    }
    let id = ctx.session.id;
    let folded = casefold(name);
    let mask = ctx.session.hostmask();
    let quiet_above = ctx.server.config.irc.quiet_lobby_above;
    let joined = {
        let mut state = ctx.server.registry.write();
        let Some(user) = state.users.get(&id) else {
            return;
        };
        if user.channels.contains(&folded) {
            return;
        }
        if user.channels.len() >= limits.max_channels_per_user {
            drop(state);
            ctx.reply(ERR_TOOMANYCHANNELS, &[name, "You have joined too many channels"]);
            return;
        }
        let client = user.client.clone();
        let creating = !state.channels.contains_key(&folded);
        if creating {
            state.channels.insert(folded.clone(), Channel::new(name, false, crate::clock::unix_now()));
        }
        let chan = state.channels.get_mut(&folded).expect("inserted above");
        if !creating {
            let invited = chan.invites.contains(&id);
            let refusal = if chan.modes.invite_only && !invited {
                Some((ERR_INVITEONLYCHAN, "Cannot join channel (+i): you need an invitation"))
            } else if chan.modes.key.is_some() && chan.modes.key.as_deref() != key {
                Some((ERR_BADCHANNELKEY, "Cannot join channel (+k): wrong or missing key"))
            } else if chan.modes.limit.is_some_and(|l| chan.members.len() >= l) && !invited {
                Some((ERR_CHANNELISFULL, "Cannot join channel (+l): it is full"))
            } else if !invited && chan.is_banned(&mask) {
                Some((ERR_BANNEDFROMCHAN, "Cannot join channel (+b): you are banned"))
            } else {
                None
            };
            if let Some((code, text)) = refusal {
                let chan_name = chan.name.clone();
                drop(state);
                ctx.reply(code, &[chan_name.as_str(), text]);
                return;
            }
        }
        let flags = MemberFlags { op: creating, voice: false };
        chan.members.insert(id, Member { flags, client: client.clone() });
        chan.invites.remove(&id);
        let quiet = chan.is_quiet(quiet_above);
        let chan_name = chan.name.clone();
        let relay = Relay::new(Message::new("JOIN", vec![chan_name.clone()]).with_source(mask), Vec::new());
        if quiet {
            client.push(relay.bytes_for(client.caps()));
        } else {
            state.send_to_channel(&folded, &relay, None);
        }
        if let Some(user) = state.users.get_mut(&id) {
            user.channels.push(folded.clone());
        }
        let chan = &state.channels[&folded];
        Joined {
            name: chan_name,
            topic: chan.topic.clone(),
            names: name_entries(&state, chan, ctx.session.caps, quiet.then_some(id)),
            quiet,
            members: chan.members.len(),
        }
    };
    if let Some(topic) = &joined.topic {
        send_topic(ctx, &joined.name, topic);
    }
    send_names(ctx, &joined.name, &joined.names);
    if joined.quiet {
        ctx.server_notice(&format!(
            "{} has {} members, so joins and quits there are not announced. /NAMES {} lists everyone.",
            joined.name, joined.members, joined.name
        ));
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
    let id = ctx.session.id;
    let key = casefold(name);
    let mask = ctx.session.hostmask();
    let quiet_above = ctx.server.config.irc.quiet_lobby_above;
    let mut state = ctx.server.registry.write();
    let Some(chan) = state.channels.get(&key) else {
        drop(state);
        ctx.reply(ERR_NOSUCHCHANNEL, &[name, "No such channel"]);
        return;
    };
    if !chan.members.contains_key(&id) {
        let chan_name = chan.name.clone();
        drop(state);
        ctx.reply(ERR_NOTONCHANNEL, &[chan_name.as_str(), "You're not on that channel"]);
        return;
    }
    let chan_name = chan.name.clone();
    let mut params = vec![chan_name.clone()];
    if !reason.is_empty() {
        params.push(reason.to_string());
    }
    let relay = Relay::new(Message::new("PART", params).with_source(mask), Vec::new());
    if chan.is_quiet(quiet_above) {
        ctx.session.client.push(relay.bytes_for(ctx.session.caps));
    } else {
        state.send_to_channel(&key, &relay, None);
    }
    state.leave_channel(id, &key);
    drop(state);
    ctx.server.log.record(
        "part",
        ctx.actor(),
        &[("channel", Value::Text(&chan_name)), ("reason", Value::Text(reason))],
    );
}

pub fn topic(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let name = msg.params[0];
    let key = casefold(name);
    let id = ctx.session.id;
    let Some(new_text) = msg.param(1) else {
        let state = ctx.server.registry.read();
        let Some(chan) = state.channels.get(&key) else {
            drop(state);
            ctx.reply(ERR_NOSUCHCHANNEL, &[name, "No such channel"]);
            return;
        };
        let (chan_name, topic) = (chan.name.clone(), chan.topic.clone());
        drop(state);
        match topic {
            Some(t) => send_topic(ctx, &chan_name, &t),
            None => ctx.reply(RPL_NOTOPIC, &[chan_name.as_str(), "No topic is set"]),
        }
        return;
    };
    let text = truncate(new_text, ctx.server.config.limits.topic_len).to_string();
    let nick = ctx.session.nick.clone().unwrap_or_default();
    let mask = ctx.session.hostmask();
    let mut state = ctx.server.registry.write();
    let Some(chan) = state.channels.get_mut(&key) else {
        drop(state);
        ctx.reply(ERR_NOSUCHCHANNEL, &[name, "No such channel"]);
        return;
    };
    let chan_name = chan.name.clone();
    let error = if !chan.members.contains_key(&id) {
        Some((ERR_NOTONCHANNEL, "You're not on that channel"))
    } else if chan.modes.topic_ops_only && !chan.is_op(id) {
        Some((ERR_CHANOPRIVSNEEDED, "You're not channel operator"))
    } else {
        None
    };
    if let Some((code, text)) = error {
        drop(state);
        ctx.reply(code, &[chan_name.as_str(), text]);
        return;
    }
    chan.topic =
        (!text.is_empty()).then(|| Topic { text: text.clone(), set_by: nick, set_at: crate::clock::unix_now() });
    let relay = Relay::new(Message::new("TOPIC", vec![chan_name.clone(), text.clone()]).with_source(mask), Vec::new());
    state.send_to_channel(&key, &relay, None);
    drop(state);
    ctx.server.log.record(
        "topic",
        ctx.actor(),
        &[("channel", Value::Text(&chan_name)), ("bytes", Value::Num(text.len() as u64))],
    );
}

pub fn names(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let Some(list) = msg.param(0) else {
        ctx.reply(RPL_ENDOFNAMES, &["*", "End of /NAMES list"]);
        return;
    };
    for name in split_list(list).take(1) {
        let state = ctx.server.registry.read();
        let found =
            state.channel(name).map(|chan| (chan.name.clone(), name_entries(&state, chan, ctx.session.caps, None)));
        drop(state);
        match found {
            Some((chan_name, entries)) => send_names(ctx, &chan_name, &entries),
            None => ctx.reply(RPL_ENDOFNAMES, &[name, "End of /NAMES list"]),
        }
    }
}

pub fn list(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let filter: Option<Vec<String>> = msg.param(0).map(|l| split_list(l).map(casefold).collect());
    let rows: Vec<(String, usize, String)> = {
        let state = ctx.server.registry.read();
        let mut rows: Vec<_> = state
            .channels
            .iter()
            .filter(|(key, _)| filter.as_ref().is_none_or(|f| f.contains(key)))
            .map(|(_, c)| {
                let (modes, _) = c.modes.describe(false);
                let topic = c.topic.as_ref().map_or("", |t| t.text.as_str());
                (c.name.clone(), c.members.len(), format!("[{modes}] {topic}"))
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

pub fn invite(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let (nick, name) = (msg.params[0], msg.params[1]);
    let id = ctx.session.id;
    let mask = ctx.session.hostmask();
    let mut state = ctx.server.registry.write();
    let Some(target) = state.id_by_nick(nick) else {
        drop(state);
        ctx.reply(ERR_NOSUCHNICK, &[nick, "No such nick/channel"]);
        return;
    };
    let Some(chan) = state.channel_mut(name) else {
        drop(state);
        ctx.reply(ERR_NOSUCHCHANNEL, &[name, "No such channel"]);
        return;
    };
    let chan_name = chan.name.clone();
    let error = if !chan.members.contains_key(&id) {
        Some((ERR_NOTONCHANNEL, vec![chan_name.clone(), "You're not on that channel".into()]))
    } else if chan.members.contains_key(&target) {
        Some((ERR_USERONCHANNEL, vec![nick.to_string(), chan_name.clone(), "is already on channel".into()]))
    } else if chan.modes.invite_only && !chan.is_op(id) {
        Some((ERR_CHANOPRIVSNEEDED, vec![chan_name.clone(), "You're not channel operator".into()]))
    } else {
        None
    };
    if let Some((code, params)) = error {
        drop(state);
        ctx.reply(code, &params);
        return;
    }
    chan.invites.insert(target);
    let target_user = &state.users[&target];
    let target_nick = target_user.nick.clone();
    let relay =
        Relay::new(Message::new("INVITE", vec![target_nick.clone(), chan_name.clone()]).with_source(mask), Vec::new());
    target_user.client.push(relay.bytes_for(target_user.client.caps()));
    drop(state);
    ctx.reply(RPL_INVITING, &[target_nick, chan_name]);
}

pub fn kick(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let name = msg.params[0];
    let key = casefold(name);
    let id = ctx.session.id;
    let mask = ctx.session.hostmask();
    let reason = msg
        .param(2)
        .map(|r| truncate(r, ctx.server.config.limits.kick_len).to_string())
        .unwrap_or_else(|| ctx.session.nick.clone().unwrap_or_default());
    for nick in split_list(msg.params[1]).take(1) {
        let mut state = ctx.server.registry.write();
        let target = state.id_by_nick(nick);
        let Some(chan) = state.channels.get(&key) else {
            drop(state);
            ctx.reply(ERR_NOSUCHCHANNEL, &[name, "No such channel"]);
            return;
        };
        let chan_name = chan.name.clone();
        let error = if !chan.members.contains_key(&id) {
            Some((ERR_NOTONCHANNEL, vec![chan_name.clone(), "You're not on that channel".into()]))
        } else if !chan.is_op(id) {
            Some((ERR_CHANOPRIVSNEEDED, vec![chan_name.clone(), "You're not channel operator".into()]))
        } else if !target.is_some_and(|t| chan.members.contains_key(&t)) {
            Some((
                ERR_USERNOTINCHANNEL,
                vec![nick.to_string(), chan_name.clone(), "They aren't on that channel".into()],
            ))
        } else {
            None
        };
        if let Some((code, params)) = error {
            drop(state);
            ctx.reply(code, &params);
            return;
        }
        let target = target.expect("checked above");
        let target_nick = state.users[&target].nick.clone();
        let relay = Relay::new(
            Message::new("KICK", vec![chan_name.clone(), target_nick.clone(), reason.clone()])
                .with_source(mask.clone()),
            Vec::new(),
        );
        state.send_to_channel(&key, &relay, None);
        state.leave_channel(target, &key);
        drop(state);
        ctx.server.log.record(
            "kick",
            ctx.actor(),
            &[
                ("channel", Value::Text(&chan_name)),
                ("target", Value::Text(&target_nick)),
                ("reason", Value::Text(&reason)),
            ],
        );
    }
}

/// NAMES entries for `chan` as seen by a client with `caps`. With `only`,
/// just that member and the channel operators (crowded lobby on join).
fn name_entries(state: &State, chan: &Channel, caps: u32, only: Option<u64>) -> Vec<String> {
    let multi = caps & caps::MULTI_PREFIX != 0;
    let userhost = caps & caps::USERHOST_IN_NAMES != 0;
    chan.members
        .iter()
        .filter(|(id, m)| only.is_none_or(|o| **id == o || m.flags.op))
        .filter_map(|(id, m)| {
            let user = state.users.get(id)?;
            let prefix = m.flags.prefix(multi);
            Some(if userhost { format!("{prefix}{}", user.hostmask()) } else { format!("{prefix}{}", user.nick) })
        })
        .collect()
}

fn send_names(ctx: &Ctx<'_>, chan_name: &str, entries: &[String]) {
    // Keep each 353 line comfortably under 512 bytes.
    let budget = 400usize.saturating_sub(chan_name.len() + ctx.target().len());
    let mut line = String::new();
    for entry in entries {
        if !line.is_empty() && line.len() + entry.len() + 1 > budget {
            ctx.reply(RPL_NAMREPLY, &["=", chan_name, line.as_str()]);
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(entry);
    }
    if !line.is_empty() {
        ctx.reply(RPL_NAMREPLY, &["=", chan_name, line.as_str()]);
    }
    ctx.reply(RPL_ENDOFNAMES, &[chan_name, "End of /NAMES list"]);
}

fn send_topic(ctx: &Ctx<'_>, chan_name: &str, topic: &Topic) {
    ctx.reply(RPL_TOPIC, &[chan_name, topic.text.as_str()]);
    ctx.reply(RPL_TOPICWHOTIME, &[chan_name, topic.set_by.as_str(), &topic.set_at.to_string()]);
}
