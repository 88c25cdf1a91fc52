//! The built-in services' identity: NickServ's reserved nick and the
//! NOTICEs it sends, for the NickServ commands and for the account code
//! that speaks in its name (the nick claim).

use crate::session::Ctx;
use parley_proto::{irc_eq, Message};

/// The service's nick; nobody else may take it.
pub const NICK: &str = "NickServ";
const SOURCE: &str = "NickServ!NickServ@services.parley";

/// Whether a PRIVMSG target is NickServ.
pub fn is_target(target: &str) -> bool {
    irc_eq(target, NICK)
}

/// A NOTICE from NickServ to this client.
pub fn notice(ctx: &Ctx<'_>, text: &str) {
    ctx.send(Message::new("NOTICE", vec![ctx.target().to_string(), text.to_string()]).with_source(SOURCE));
}
