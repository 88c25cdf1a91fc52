//! MODE for channels (`b i k l m n o t v`) and users (`i o`).

use crate::activity_log::Value;
use crate::channel::Ban;
use crate::relay::Relay;
use crate::session::Ctx;
use parley_proto::mask::normalize_mask;
use parley_proto::numeric::*;
use parley_proto::{casefold, irc_eq, Message, MessageRef};

/// Parameter-taking modes applied per MODE command (ISUPPORT MODES).
const MAX_PARAM_MODES: usize = 4;

/// `+ov-k` as (true, 'o'), (true, 'v'), (false, 'k').
fn signed_modes(changes: &str) -> impl Iterator<Item = (bool, char)> + '_ {
    let mut adding = true;
    changes.chars().filter_map(move |c| match c {
        '+' => {
            adding = true;
            None
        }
        '-' => {
            adding = false;
            None
        }
        c => Some((adding, c)),
    })
}

/// The applied changes as a mode string (`+ov-k`), a sign only where it
/// changes.
#[derive(Default)]
struct Applied {
    text: String,
    last_sign: Option<bool>,
}

impl Applied {
    fn push(&mut self, adding: bool, mode: char) {
        if self.last_sign != Some(adding) {
            self.text.push(if adding { '+' } else { '-' });
            self.last_sign = Some(adding);
        }
        self.text.push(mode);
    }
}

pub fn mode(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    if msg.params[0].starts_with('#') {
        channel_mode(ctx, msg);
    } else {
        user_mode(ctx, msg);
    }
}

fn user_mode(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let target = msg.params[0];
    let me = ctx.session.nick.clone().unwrap_or_default();
    if !irc_eq(target, &me) {
        if ctx.server.registry.read().id_by_nick(target).is_none() {
            ctx.reply(ERR_NOSUCHNICK, &[target, "No such nick/channel"]);
        } else {
            ctx.reply(ERR_USERSDONTMATCH, &["Can't change mode for other users"]);
        }
        return;
    }
    let id = ctx.session.id;
    let Some(changes) = msg.param(1) else {
        let state = ctx.server.registry.read();
        let mut modes = String::from("+");
        if let Some(u) = state.users.get(&id) {
            if u.invisible {
                modes.push('i');
            }
            if u.oper.is_some() {
                modes.push('o');
            }
        }
        drop(state);
        ctx.reply(RPL_UMODEIS, &[modes]);
        return;
    };
    let mut applied = Applied::default();
    let mut unknown = false;
    {
        let mut state = ctx.server.registry.write();
        if !state.users.contains_key(&id) {
            return;
        }
        for (adding, c) in signed_modes(changes) {
            let changed = match c {
                'i' => state.set_invisible(id, adding),
                // Operator status is gained only through OPER.
                'o' if !adding => state.set_oper(id, None),
                'o' => false,
                _ => {
                    unknown = true;
                    false
                }
            };
            if changed {
                applied.push(adding, c);
            }
        }
    }
    if unknown {
        ctx.reply(ERR_UMODEUNKNOWNFLAG, &["Unknown MODE flag"]);
    }
    if !applied.text.is_empty() {
        ctx.send(Message::new("MODE", vec![me.clone(), applied.text]).with_source(me));
    }
}

fn channel_mode(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let name = msg.params[0];
    let key = casefold(name);
    let id = ctx.session.id;
    let Some(changes) = msg.param(1) else {
        let state = ctx.server.registry.read();
        let Some(chan) = state.channels.get(&key) else {
            drop(state);
            ctx.reply(ERR_NOSUCHCHANNEL, &[name, "No such channel"]);
            return;
        };
        let (modes, params) = chan.modes.describe(chan.members.contains_key(&id));
        let (chan_name, created) = (chan.name.clone(), chan.created);
        drop(state);
        let mut all = vec![chan_name.clone(), modes];
        all.extend(params);
        ctx.reply(RPL_CHANNELMODEIS, &all);
        ctx.reply(RPL_CREATIONTIME, &[chan_name, created.to_string()]);
        return;
    };
    let mut args = msg.params[2..].iter();
    let mut errors: Vec<(&str, Vec<String>)> = Vec::new();
    let mut applied = Applied::default();
    let mut applied_args: Vec<String> = Vec::new();
    let mut param_modes = 0;
    let mut ban_list = None;
    let nick = ctx.session.nick.clone().unwrap_or_default();
    let mask = ctx.session.hostmask();
    let max_bans = ctx.server.config.limits.max_bans;
    let mut state = ctx.server.registry.write();
    let target_ids: Vec<(String, Option<u64>)> =
        msg.params[2..].iter().map(|a| (casefold(a), state.id_by_nick(a))).collect();
    let Some(chan) = state.channels.get_mut(&key) else {
        drop(state);
        ctx.reply(ERR_NOSUCHCHANNEL, &[name, "No such channel"]);
        return;
    };
    let chan_name = chan.name.clone();
    let is_op = chan.is_op(id);
    let mut denied = false;
    for (adding, c) in signed_modes(changes) {
        let takes_param = match c {
            'o' | 'v' | 'b' => true,
            'k' | 'l' => adding,
            'i' | 'm' | 'n' | 't' => false,
            _ => {
                errors.push((ERR_UNKNOWNMODE, vec![c.to_string(), format!("is an unknown mode char for {chan_name}")]));
                continue;
            }
        };
        let arg = if takes_param {
            if param_modes >= MAX_PARAM_MODES {
                continue;
            }
            match args.next() {
                Some(a) => {
                    param_modes += 1;
                    Some(a.to_string())
                }
                None if c == 'b' => {
                    ban_list = Some(chan.bans.clone());
                    continue;
                }
                None => {
                    errors.push((
                        ERR_INVALIDMODEPARAM,
                        vec![chan_name.clone(), c.to_string(), "*".into(), "This mode needs a parameter".into()],
                    ));
                    continue;
                }
            }
        } else {
            None
        };
        if !is_op {
            denied = true;
            continue;
        }
        let changed = match (c, arg) {
            ('i', _) => std::mem::replace(&mut chan.modes.invite_only, adding) != adding,
            ('m', _) => std::mem::replace(&mut chan.modes.moderated, adding) != adding,
            ('n', _) => std::mem::replace(&mut chan.modes.no_external, adding) != adding,
            ('t', _) => std::mem::replace(&mut chan.modes.topic_ops_only, adding) != adding,
            ('k', Some(k)) => {
                if k.contains([',', ' ']) || k.is_empty() || k.len() > 23 {
                    errors.push((ERR_INVALIDKEY, vec![chan_name.clone(), "Key is not well-formed".into()]));
                    false
                } else {
                    chan.modes.key = Some(k.clone());
                    applied_args.push(k);
                    true
                }
            }
            ('k', None) => {
                let had = chan.modes.key.take().is_some();
                if had {
                    applied_args.push("*".into());
                }
                had
            }
            ('l', Some(l)) => match l.parse::<usize>() {
                Ok(n) if n > 0 => {
                    chan.modes.limit = Some(n);
                    applied_args.push(n.to_string());
                    true
                }
                _ => {
                    errors.push((
                        ERR_INVALIDMODEPARAM,
                        vec![chan_name.clone(), "l".into(), l, "Limit must be a positive number".into()],
                    ));
                    false
                }
            },
            ('l', None) => chan.modes.limit.take().is_some(),
            ('o' | 'v', Some(target)) => {
                let folded = casefold(&target);
                let tid = target_ids.iter().find(|(k, _)| *k == folded).and_then(|(_, id)| *id);
                match tid.and_then(|t| chan.members.get_mut(&t)) {
                    Some(member) => {
                        let flag = if c == 'o' { &mut member.flags.op } else { &mut member.flags.voice };
                        let changed = std::mem::replace(flag, adding) != adding;
                        if changed {
                            applied_args.push(target);
                        }
                        changed
                    }
                    None => {
                        errors.push((
                            ERR_USERNOTINCHANNEL,
                            vec![target, chan_name.clone(), "They aren't on that channel".into()],
                        ));
                        false
                    }
                }
            }
            ('b', Some(raw)) => {
                let m = normalize_mask(&raw);
                let exists = chan.bans.iter().position(|b| casefold(&b.mask) == casefold(&m));
                match (adding, exists) {
                    (true, None) if chan.bans.len() < max_bans => {
                        chan.bans.push(Ban { mask: m.clone(), set_by: nick.clone(), set_at: crate::clock::unix_now() });
                        applied_args.push(m);
                        true
                    }
                    (true, None) => {
                        errors.push((
                            ERR_INVALIDMODEPARAM,
                            vec![chan_name.clone(), "b".into(), m, "The ban list is full".into()],
                        ));
                        false
                    }
                    (false, Some(i)) => {
                        chan.bans.remove(i);
                        applied_args.push(m);
                        true
                    }
                    _ => false,
                }
            }
            _ => false,
        };
        if changed {
            applied.push(adding, c);
        }
    }
    if denied {
        errors.push((ERR_CHANOPRIVSNEEDED, vec![chan_name.clone(), "You're not channel operator".into()]));
    }
    if !applied.text.is_empty() {
        let mut params = vec![chan_name.clone(), applied.text.clone()];
        params.extend(applied_args.iter().cloned());
        let relay = Relay::new(Message::new("MODE", params).with_source(mask), Vec::new());
        state.send_to_channel(&key, &relay, None);
    }
    drop(state);
    for (code, params) in errors {
        ctx.reply(code, &params);
    }
    if let Some(bans) = ban_list {
        for b in bans {
            ctx.reply(RPL_BANLIST, &[chan_name.clone(), b.mask, b.set_by, b.set_at.to_string()]);
        }
        ctx.reply(RPL_ENDOFBANLIST, &[chan_name.as_str(), "End of channel ban list"]);
    }
    if !applied.text.is_empty() {
        let mut text = applied.text;
        for a in &applied_args {
            text.push(' ');
            text.push_str(a);
        }
        ctx.server.log.record(
            "mode",
            ctx.actor(),
            &[("channel", Value::Text(&chan_name)), ("modes", Value::Text(&text))],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_carry_over_until_changed() {
        let got: Vec<_> = signed_modes("+ov-k+l").collect();
        assert_eq!(got, vec![(true, 'o'), (true, 'v'), (false, 'k'), (true, 'l')]);
        assert_eq!(signed_modes("i").collect::<Vec<_>>(), vec![(true, 'i')]);
        let mut applied = Applied::default();
        for (adding, c) in [(true, 'o'), (true, 'v'), (false, 'k')] {
            applied.push(adding, c);
        }
        assert_eq!(applied.text, "+ov-k");
    }
}
