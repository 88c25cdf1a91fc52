//! WHO, and its IRCv3 extension WHOX: `WHO <mask> %<fields>[,<token>]`
//! answers with `354` lines holding just the fields asked for, always in
//! the order `t c u i h s n f d l a o r` whatever order they were asked in.
//! Unknown field letters are ignored, as other servers do; a token that is
//! not 1 to 3 digits is ignored too (`t` then shows `0`).

use crate::caps;
use crate::registry::User;
use crate::session::Ctx;
use parley_proto::mask::mask_matches;
use parley_proto::numeric::*;
use parley_proto::MessageRef;

/// The WHOX fields in the order they are sent.
const WHOX_FIELDS: &str = "tcuihsnfdlaor";

/// Rows for a wildcard WHO, at most.
const MAX_ROWS: usize = 1000;

/// One user as a WHO reply shows it.
struct Row {
    channel: String,
    user: String,
    ip: String,
    host: String,
    nick: String,
    flags: String,
    idle: i64,
    account: String,
    realname: String,
}

impl Row {
    fn new(channel: &str, u: &User, prefix: &str, now: i64) -> Row {
        Row {
            channel: channel.to_string(),
            user: u.user.clone(),
            ip: crate::hostname::host_for(u.addr.ip()),
            host: u.host.clone(),
            nick: u.nick.clone(),
            flags: flags(u, prefix),
            idle: (now - u.client.last_spoke().max(u.signon)).max(0),
            account: u.account.as_deref().unwrap_or("0").to_string(),
            realname: u.realname.clone(),
        }
    }
}

/// H (here) or G (gone, away), `*` for an operator, `B` for a bot, then
/// the channel prefix.
fn flags(user: &User, prefix: &str) -> String {
    let mut flags = String::from(if user.away.is_some() { "G" } else { "H" });
    if user.oper.is_some() {
        flags.push('*');
    }
    if user.bot {
        flags.push('B');
    }
    flags.push_str(prefix);
    flags
}

/// What a WHOX request asked for.
struct Whox<'a> {
    fields: &'a str,
    token: Option<&'a str>,
}

impl<'a> Whox<'a> {
    /// `%<fields>[,<token>]`, the `%` already taken off.
    fn parse(spec: &'a str) -> Whox<'a> {
        let (fields, token) = match spec.split_once(',') {
            Some((f, t)) => (f, Some(t)),
            None => (spec, None),
        };
        let token = token.filter(|t| (1..=3).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit()));
        Whox { fields, token }
    }

    /// The `354` parameters (after the client's nick) for `row`.
    fn params(&self, row: &Row, server: &str) -> Vec<String> {
        WHOX_FIELDS
            .chars()
            .filter(|f| self.fields.contains(*f))
            .map(|f| match f {
                't' => self.token.unwrap_or("0").to_string(),
                'c' => row.channel.clone(),
                'u' => row.user.clone(),
                'i' => row.ip.clone(),
                'h' => row.host.clone(),
                's' => server.to_string(),
                'n' => row.nick.clone(),
                'f' => row.flags.clone(),
                'd' => "0".to_string(),
                'l' => row.idle.to_string(),
                'a' => row.account.clone(),
                'o' => "n/a".to_string(),
                _ => row.realname.clone(),
            })
            .collect()
    }
}

/// WHO <#channel|nick|mask> [%fields[,token]]: a channel's members, one
/// user by nick (even if invisible), or the visible users whose nick,
/// host or realname match a mask.
pub fn who(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let mask = msg.params[0];
    let whox = msg.param(1).and_then(|p| p.strip_prefix('%')).map(Whox::parse);
    let id = ctx.session.id;
    let multi = ctx.session.has_cap(caps::MULTI_PREFIX);
    let now = crate::clock::unix_now();
    let rows: Vec<Row> = {
        let view = ctx.server.registry.read();
        if mask.starts_with('#') {
            match view.channel(mask).filter(|chan| chan.visible_to(id)) {
                Some(chan) => chan
                    .all_members()
                    .filter_map(|(mid, f)| view.user(mid).map(|u| Row::new(&chan.name, u, f.prefix(multi), now)))
                    .collect(),
                None => Vec::new(),
            }
        } else if let Some(u) = view.user_by_nick(mask) {
            vec![Row::new("*", u, "", now)]
        } else {
            view.users()
                .filter(|(uid, u)| !u.invisible || *uid == id || view.shares_channel(id, *uid))
                .filter(|(_, u)| {
                    mask_matches(mask, &u.nick) || mask_matches(mask, &u.host) || mask_matches(mask, &u.realname)
                })
                .take(MAX_ROWS)
                .map(|(_, u)| Row::new("*", u, "", now))
                .collect()
        }
    };
    let server = ctx.server.config.server_name.as_str();
    for row in &rows {
        match &whox {
            Some(whox) => ctx.reply(RPL_WHOSPCRPL, &whox.params(row, server)),
            None => ctx.reply(
                RPL_WHOREPLY,
                &[&row.channel, &row.user, &row.host, server, &row.nick, &row.flags, &format!("0 {}", row.realname)],
            ),
        }
    }
    ctx.reply(RPL_ENDOFWHO, &[mask, "End of WHO list"]);
}

#[cfg(test)]
mod tests {
    use super::super::testing::{codes, Harness};

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
    fn whox_sends_the_fields_asked_for_in_their_fixed_order() {
        let (h, [mut alice, mut bob]) = Harness::start(["alice", "bob"]);
        h.run(&mut bob, "AWAY :out");
        let out = h.run(&mut alice, "WHO bob %rnat,42");
        assert_eq!(out.lines().next().unwrap(), ":parley.local 354 alice 42 bob 0 :bob here");
        let all = h.run(&mut alice, "WHO #lobby %tcuihsnfdlaor");
        assert!(all.contains(" 354 alice 0 #lobby ~bob 127.0.0.1 127.0.0.1 parley.local bob G 0 "), "{all}");
        assert!(all.contains(" 0 n/a :bob here\r\n"), "{all}");
        assert_eq!(codes(&all), ["354", "354", "315"]);
    }

    #[test]
    fn whox_ignores_unknown_fields_and_bad_tokens() {
        let (h, [mut alice]) = Harness::start(["alice"]);
        let out = h.run(&mut alice, "WHO alice %nzq,1234");
        assert_eq!(out.lines().next().unwrap(), ":parley.local 354 alice alice");
        let out = h.run(&mut alice, "WHO alice %tn,abc");
        assert_eq!(out.lines().next().unwrap(), ":parley.local 354 alice 0 alice");
    }

    #[test]
    fn bots_and_operators_are_flagged() {
        let (h, [mut alice, mut bot]) = Harness::start(["alice", "bot"]);
        assert!(h.run(&mut bot, "MODE bot +B").contains("MODE bot +B"));
        assert!(h.run(&mut alice, "WHO bot").contains(" bot HB :0 "), "B after H");
        assert!(h.run(&mut alice, "WHO bot %f").contains(" 354 alice HB\r\n"));
    }
}
