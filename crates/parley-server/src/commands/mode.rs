//! MODE for channels (`b e I i k l m n o p s t v`) and users (`B i o w`): the mode
//! string is parsed here, applied by the channel's own rules (`channel.rs`,
//! through the registry), and the outcome rendered here as replies.

use crate::activity_log::Value;
use crate::channel::{ModeError, ModeOp, ModeString};
use crate::registry::UserFlag;
use crate::session::Ctx;
use parley_proto::numeric::*;
use parley_proto::{irc_eq, Message, MessageRef};

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
        let view = ctx.server.registry.read();
        let mut modes = String::from("+");
        if let Some(u) = view.user(id) {
            for (on, c) in [(u.invisible, 'i'), (u.oper.is_some(), 'o'), (u.wallops, 'w'), (u.bot, 'B')] {
                if on {
                    modes.push(c);
                }
            }
        }
        drop(view);
        ctx.reply(RPL_UMODEIS, &[modes]);
        return;
    };
    let mut applied = ModeString::default();
    let mut unknown = false;
    let registry = &ctx.server.registry;
    for (adding, c) in signed_modes(changes) {
        let changed = match c {
            'i' => registry.set_invisible(id, adding),
            'w' => registry.set_flag(id, UserFlag::Wallops, adding),
            'B' => {
                ctx.session.bot = adding;
                registry.set_flag(id, UserFlag::Bot, adding)
            }
            // Operator status is gained only through OPER.
            'o' if !adding => registry.set_oper(id, None),
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
    if unknown {
        ctx.reply(ERR_UMODEUNKNOWNFLAG, &["Unknown MODE flag"]);
    }
    if !applied.is_empty() {
        ctx.send(Message::new("MODE", vec![me.clone(), applied.as_str().to_string()]).with_source(me));
    }
}

fn channel_mode(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let name = msg.params[0];
    let Some(changes) = msg.param(1) else {
        let view = ctx.server.registry.read();
        let Some(chan) = view.channel(name) else {
            drop(view);
            ctx.reply(ERR_NOSUCHCHANNEL, &[name, "No such channel"]);
            return;
        };
        let (modes, params) = chan.modes.describe(chan.members.contains_key(&ctx.session.id));
        let (chan_name, created) = (chan.name.clone(), chan.created);
        drop(view);
        let mut all = vec![chan_name.clone(), modes];
        all.extend(params);
        ctx.reply(RPL_CHANNELMODEIS, &all);
        ctx.reply(RPL_CREATIONTIME, &[chan_name, created.to_string()]);
        return;
    };
    let ops = parse_channel_modes(changes, &msg.params[2..]);
    let nick = ctx.session.nick.clone().unwrap_or_default();
    let mask = ctx.session.hostmask();
    let max_list = ctx.server.config.limits.max_bans;
    let (outcome, relay) =
        match ctx.server.registry.change_channel_modes(ctx.session.id, name, ops, &nick, &mask, max_list) {
            Ok(done) => done,
            Err(refusal) => {
                ctx.refuse(&refusal);
                return;
            }
        };
    if let Some(relay) = &relay {
        ctx.send_relay(relay);
    }
    let chan_name = outcome.channel.as_str();
    for error in &outcome.errors {
        render_mode_error(ctx, chan_name, error);
    }
    for (mode, entries) in &outcome.lists {
        let (entry, end, text) = match mode {
            'e' => (RPL_EXCEPTLIST, RPL_ENDOFEXCEPTLIST, "End of channel exception list"),
            'I' => (RPL_INVEXLIST, RPL_ENDOFINVEXLIST, "End of channel invite exception list"),
            _ => (RPL_BANLIST, RPL_ENDOFBANLIST, "End of channel ban list"),
        };
        for b in entries {
            ctx.reply(entry, &[chan_name, &b.mask, &b.set_by, &b.set_at.to_string()]);
        }
        ctx.reply(end, &[chan_name, text]);
    }
    if !outcome.applied.is_empty() {
        let mut text = outcome.applied.as_str().to_string();
        for a in &outcome.args {
            text.push(' ');
            text.push_str(a);
        }
        ctx.server.log.record(
            "mode",
            ctx.actor(),
            &[("channel", Value::Text(chan_name)), ("modes", Value::Text(&text))],
        );
    }
}

/// Assigns parameters to a channel MODE's changes, in order: `o v` and the
/// list modes `b e I` always take one (a list mode without one shows its
/// list), `k l` when set; at most `MAX_PARAM_MODES` are used.
fn parse_channel_modes(changes: &str, params: &[&str]) -> Vec<ModeOp> {
    let mut args = params.iter();
    let mut param_modes = 0;
    let mut ops = Vec::new();
    for (adding, c) in signed_modes(changes) {
        let takes_param = match c {
            'o' | 'v' | 'b' | 'e' | 'I' => true,
            'k' | 'l' => adding,
            'i' | 'm' | 'n' | 'p' | 's' | 't' => false,
            _ => {
                ops.push(ModeOp::Unknown(c));
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
                None if crate::channel::LIST_MODES.contains(&c) => {
                    ops.push(ModeOp::List(c));
                    continue;
                }
                None => {
                    ops.push(ModeOp::MissingParam(c));
                    continue;
                }
            }
        } else {
            None
        };
        ops.push(ModeOp::Set { adding, mode: c, arg });
    }
    ops
}

fn render_mode_error(ctx: &Ctx<'_>, chan: &str, error: &ModeError) {
    match error {
        ModeError::Unknown(c) => {
            ctx.reply(ERR_UNKNOWNMODE, &[c.to_string(), format!("is an unknown mode char for {chan}")])
        }
        ModeError::MissingParam(c) => {
            ctx.reply(ERR_INVALIDMODEPARAM, &[chan, &c.to_string(), "*", "This mode needs a parameter"])
        }
        ModeError::InvalidKey => ctx.reply(ERR_INVALIDKEY, &[chan, "Key is not well-formed"]),
        ModeError::BadLimit(l) => {
            // An empty value would not survive as a middle parameter.
            let shown = if l.is_empty() { "*" } else { l.as_str() };
            ctx.reply(ERR_INVALIDMODEPARAM, &[chan, "l", shown, "Limit must be a positive number"])
        }
        ModeError::NoSuchNick(nick) => ctx.reply(ERR_NOSUCHNICK, &[nick, "No such nick/channel"]),
        ModeError::NotInChannel(nick) => ctx.reply(ERR_USERNOTINCHANNEL, &[nick, chan, "They aren't on that channel"]),
        ModeError::ListFull(mode, mask) => {
            let text = format!("The +{mode} list is full (at most {} entries)", ctx.server.config.limits.max_bans);
            ctx.reply(ERR_INVALIDMODEPARAM, &[chan, &mode.to_string(), mask, &text])
        }
        ModeError::NotOperator => ctx.reply(ERR_CHANOPRIVSNEEDED, &[chan, "You're not channel operator"]),
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
        let mut applied = ModeString::default();
        for (adding, c) in [(true, 'o'), (true, 'v'), (false, 'k')] {
            applied.push(adding, c);
        }
        assert_eq!(applied.as_str(), "+ov-k");
    }
}

#[cfg(test)]
mod apply_tests {
    use super::super::testing::{codes, Harness};

    #[test]
    fn channel_modes_are_applied_by_operators_only() {
        let h = Harness::new();
        let [mut alice, mut bob] = h.in_channel("#room", ["alice", "bob"]);
        assert_eq!(codes(&h.run(&mut bob, "MODE #room +m")), ["482"]);
        h.received(&bob);
        assert!(h.run(&mut alice, "MODE #room +mv bob").contains("MODE #room +mv bob"));
        assert!(h.received(&bob).contains("MODE #room +mv bob"));
        let out = h.run(&mut alice, "MODE #room");
        assert!(out.contains(" 324 alice #room +mnt"), "{out}");
    }

    #[test]
    fn bad_parameters_get_their_own_numerics() {
        let (h, [mut alice]) = Harness::start(["alice"]);
        h.run(&mut alice, "JOIN #room");
        assert_eq!(codes(&h.run(&mut alice, "MODE #room +l zero")), ["696"]);
        assert_eq!(codes(&h.run(&mut alice, "MODE #room +k")), ["696"]);
        assert_eq!(codes(&h.run(&mut alice, "MODE #room +z")), ["472"]);
        assert_eq!(codes(&h.run(&mut alice, "MODE #room +o ghost")), ["401"]);
        let _bob = h.user("bob");
        assert_eq!(codes(&h.run(&mut alice, "MODE #room +o bob")), ["441"], "there, but not in the channel");
        assert_eq!(codes(&h.run(&mut alice, "MODE #nowhere +m")), ["403"]);
    }

    #[test]
    fn bans_are_listed_and_keep_banned_users_out() {
        let (h, [mut alice, mut bob]) = Harness::start(["alice", "bob"]);
        h.run(&mut alice, "JOIN #room");
        h.run(&mut alice, "MODE #room +b bob!*@*");
        let list = h.run(&mut alice, "MODE #room b");
        assert_eq!(codes(&list), ["367", "368"], "{list}");
        assert_eq!(codes(&h.run(&mut bob, "JOIN #room")), ["474"]);
    }

    #[test]
    fn exception_lists_are_listed_to_operators_only() {
        let h = Harness::new();
        let [mut alice, mut bob] = h.in_channel("#room", ["alice", "bob"]);
        assert!(h.run(&mut alice, "MODE #room +eI bob!*@* *!*@trusted").contains("MODE #room +eI bob!*@* *!*@trusted"));
        let out = h.run(&mut alice, "MODE #room e");
        assert_eq!(codes(&out), ["348", "349"], "{out}");
        assert!(out.starts_with(":parley.local 348 alice #room bob!*@* alice "), "{out}");
        assert_eq!(codes(&h.run(&mut alice, "MODE #room +I")), ["346", "347"]);
        assert_eq!(codes(&h.run(&mut bob, "MODE #room +I")), ["482"]);
        assert_eq!(codes(&h.run(&mut bob, "MODE #room +b")), ["368"], "the ban list is for everyone");
        assert!(h.run(&mut alice, "MODE #room -e bob").contains("MODE #room -e bob!*@*"));
    }

    #[test]
    fn a_full_list_is_named_in_696() {
        let h = Harness::with(|c| c.limits.max_bans = 1);
        let [mut alice] = h.in_channel("#room", ["alice"]);
        h.run(&mut alice, "MODE #room +I a!*@*");
        let out = h.run(&mut alice, "MODE #room +I b!*@*");
        assert!(out.contains(" 696 alice #room I b!*@* :The +I list is full (at most 1 entries)"), "{out}");
    }

    #[test]
    fn user_modes_change_only_your_own() {
        let (h, [mut alice, _bob]) = Harness::start(["alice", "bob"]);
        assert_eq!(codes(&h.run(&mut alice, "MODE bob +i")), ["502"]);
        assert!(h.run(&mut alice, "MODE alice +i").contains("MODE alice +i"));
        assert!(h.run(&mut alice, "MODE alice +o").is_empty(), "+o only through OPER");
        assert!(h.run(&mut alice, "MODE alice").contains(" 221 alice +i"));
        assert!(h.run(&mut alice, "MODE alice +wB").contains("MODE alice +wB"));
        assert!(h.run(&mut alice, "MODE alice").contains(" 221 alice +iwB"));
        assert!(h.run(&mut alice, "MODE alice -B").contains("MODE alice -B"));
    }

    #[test]
    fn mode_errors_name_what_was_wrong() {
        let h = Harness::new();
        let [mut alice] = h.in_channel("#room", ["alice"]);
        assert!(h.run(&mut alice, "MODE #room +l :").contains(" 696 alice #room l * :"), "an empty value shows as *");
        assert!(h.run(&mut alice, "MODE #room +ps").contains("MODE #room +ps"));
    }
}
