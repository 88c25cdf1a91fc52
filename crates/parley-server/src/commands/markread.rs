//! MARKREAD (IRCv3 `draft/read-marker`): where a client has read up to in
//! a channel or conversation. An account's markers are shared by all its
//! connections (a change is sent to each that has the capability) and kept
//! in the database; a connection without an account keeps its own until it
//! closes. A marker only ever moves forward.

use crate::caps;
use crate::history::markers::{Owner, Set};
use crate::session::Ctx;
use parley_proto::{casefold, Message, MessageRef};

const COMMAND: &str = "MARKREAD";

pub fn markread(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let Some(history) = ctx.server.history.as_ref() else {
        ctx.reply(parley_proto::numeric::ERR_UNKNOWNCOMMAND, &[COMMAND, "Unknown command"]);
        return;
    };
    let Some(target) = msg.param(0).filter(|t| !t.is_empty()) else {
        ctx.fail(COMMAND, "NEED_MORE_PARAMS", &[], "Missing parameters");
        return;
    };
    let owner = owner(ctx);
    let key = casefold(target);
    let Some(value) = msg.param(1) else {
        ctx.send(line(ctx, target, history.marker(&owner, &key)));
        return;
    };
    let Some(at) = value.strip_prefix("timestamp=").and_then(crate::clock::parse_tag_millis) else {
        ctx.fail(COMMAND, "INVALID_PARAMS", &[target], "Invalid timestamp");
        return;
    };
    match history.set_marker(&owner, &key, at) {
        Set::TooMany => ctx.fail(COMMAND, "INVALID_PARAMS", &[target], "Too many read markers"),
        Set::Now(now) => {
            let update = line(ctx, target, Some(now));
            if let Owner::Account(account) = &owner {
                tell_other_connections(ctx, account, &update);
            }
            ctx.send(update);
        }
    }
}

/// The MARKREAD a client with the capability gets on joining `channel`
/// (before the end of NAMES).
pub fn on_join(ctx: &Ctx<'_>, channel: &str) {
    let Some(history) = ctx.server.history.as_ref().filter(|_| ctx.session.has_cap(caps::READ_MARKER)) else {
        return;
    };
    ctx.send(line(ctx, channel, history.marker(&owner(ctx), &casefold(channel))));
}

/// At the end of the welcome burst, a logged-in client with the
/// capability learns every marker of its account: a new connection of the
/// account starts where the others left off.
pub fn on_registration(ctx: &Ctx<'_>) {
    let Some(history) = ctx.server.history.as_ref().filter(|_| ctx.session.has_cap(caps::READ_MARKER)) else {
        return;
    };
    let Owner::Account(account) = owner(ctx) else {
        return;
    };
    for (target, at) in history.markers_of(&Owner::Account(account)) {
        ctx.send(line(ctx, &target, Some(at)));
    }
}

fn owner(ctx: &Ctx<'_>) -> Owner {
    match ctx.session.account() {
        Some(account) => Owner::Account(casefold(account)),
        None => Owner::Connection(ctx.session.id),
    }
}

/// `:server MARKREAD <target> timestamp=<time>` (or `*`).
fn line(ctx: &Ctx<'_>, target: &str, at: Option<i64>) -> Message {
    let value = at.map_or_else(|| "*".to_string(), |at| format!("timestamp={}", crate::clock::tag_for_millis(at)));
    Message::new(COMMAND, vec![target.to_string(), value]).with_source(ctx.server.config.server_name.clone())
}

/// Sends `update` to the account's other connections that asked for
/// read markers.
fn tell_other_connections(ctx: &Ctx<'_>, account: &str, update: &Message) {
    let bytes = update.to_bytes();
    let view = ctx.server.registry.read();
    for (id, user) in view.users() {
        let same = user.account.as_deref().is_some_and(|a| casefold(a) == account);
        if id != ctx.session.id && same && user.client.caps() & caps::READ_MARKER != 0 {
            user.client.push(&bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Harness;

    #[test]
    fn a_marker_is_read_back_and_never_moves_back() {
        let h = Harness::with_history();
        let mut alice = h.user("alice");
        h.run(&mut alice, "CAP REQ draft/read-marker");
        assert!(h.run(&mut alice, "MARKREAD #a").ends_with("MARKREAD #a *\r\n"));
        let set = h.run(&mut alice, "MARKREAD #a timestamp=2020-01-01T00:00:01.000Z");
        assert!(set.ends_with("MARKREAD #a timestamp=2020-01-01T00:00:01.000Z\r\n"), "{set}");
        let back = h.run(&mut alice, "MARKREAD #A timestamp=2019-01-01T00:00:00.000Z");
        assert!(back.ends_with("MARKREAD #A timestamp=2020-01-01T00:00:01.000Z\r\n"), "{back}");
        assert!(h.run(&mut alice, "MARKREAD #a *").contains("FAIL MARKREAD INVALID_PARAMS #a"));
        assert!(h.run(&mut alice, "MARKREAD").contains("FAIL MARKREAD NEED_MORE_PARAMS"));
        let joined = h.run(&mut alice, "JOIN #a");
        let (marker, names_end) = (joined.find("MARKREAD #a timestamp=").unwrap(), joined.find(" 366 ").unwrap());
        assert!(marker < names_end, "{joined}");
    }
}
