//! Command dispatch: one table saying which commands exist, how many
//! parameters each needs and whether it needs registration; one handler per
//! command in the module for its family. Handlers only queue replies; no
//! handler touches a socket.

pub mod channel;
pub mod extjwt;
pub mod messaging;
pub mod mode;
pub mod oper;
pub mod query;
pub mod registration;

use crate::session::Ctx;
use parley_proto::numeric::*;
use parley_proto::{Message, MessageRef};

struct Spec {
    name: &'static str,
    min_params: usize,
    needs_registration: bool,
}

const fn spec(name: &'static str, min_params: usize, needs_registration: bool) -> Spec {
    Spec { name, min_params, needs_registration }
}

/// Every command Parley understands,
/// in order of how often clients send them: `dispatch` looks a command up
/// by comparing names from the top.
const COMMANDS: &[Spec] = &[
    spec("PRIVMSG", 0, true),
    spec("PING", 0, false),
    spec("PONG", 0, false),
    spec("NOTICE", 0, true),
    spec("TAGMSG", 0, true),
    spec("CAP", 1, false),
    spec("PASS", 1, false),
    spec("NICK", 0, false),
    spec("USER", 4, false),
    spec("QUIT", 0, false),
    spec("JOIN", 1, true),
    spec("PART", 1, true),
    spec("TOPIC", 1, true),
    spec("NAMES", 0, true),
    spec("LIST", 0, true),
    spec("INVITE", 2, true),
    spec("KICK", 2, true),
    spec("MODE", 1, true),
    spec("WHO", 1, true),
    spec("WHOIS", 1, true),
    spec("AWAY", 0, true),
    spec("ISON", 1, true),
    spec("USERHOST", 1, true),
    spec("VERSION", 0, true),
    spec("TIME", 0, true),
    spec("LUSERS", 0, true),
    spec("MOTD", 0, true),
    spec("OPER", 2, true),
    spec("KILL", 1, true),
    spec("DIE", 0, true),
    spec("EXTJWT", 1, true),
];

/// A command that has to wait for something (OPER: argon2 on the blocking
/// pool). `dispatch` hands it back so the connection can end its output
/// batch first and then await it with `run_deferred`.
pub struct Deferred(Message);

/// Runs one parsed message from the client; returns it instead if it has to
/// be awaited.
pub fn dispatch(ctx: &mut Ctx<'_>, mut msg: MessageRef<'_>) -> Option<Deferred> {
    let Some(spec) = COMMANDS.iter().find(|s| s.name.eq_ignore_ascii_case(msg.command)) else {
        if ctx.session.registered {
            ctx.reply(ERR_UNKNOWNCOMMAND, &[&msg.command.to_ascii_uppercase(), "Unknown command"]);
        } else {
            ctx.reply(ERR_NOTREGISTERED, &["You have not registered"]);
        }
        return None;
    };
    // Handlers see the command's canonical (upper-case) spelling.
    msg.command = spec.name;
    if spec.needs_registration && !ctx.session.registered {
        ctx.reply(ERR_NOTREGISTERED, &["You have not registered"]);
        return None;
    }
    if msg.params.len() < spec.min_params {
        ctx.reply(ERR_NEEDMOREPARAMS, &[spec.name, "Not enough parameters"]);
        return None;
    }
    match spec.name {
        "PRIVMSG" | "NOTICE" | "TAGMSG" => messaging::message(ctx, &msg),
        "PING" => registration::ping(ctx, &msg),
        "PONG" => {}
        "CAP" => registration::cap(ctx, &msg),
        "PASS" => registration::pass(ctx, &msg),
        "NICK" => registration::nick(ctx, &msg),
        "USER" => registration::user(ctx, &msg),
        "QUIT" => registration::quit(ctx, &msg),
        "JOIN" => channel::join(ctx, &msg),
        "PART" => channel::part(ctx, &msg),
        "TOPIC" => channel::topic(ctx, &msg),
        "NAMES" => channel::names(ctx, &msg),
        "LIST" => channel::list(ctx, &msg),
        "INVITE" => channel::invite(ctx, &msg),
        "KICK" => channel::kick(ctx, &msg),
        "MODE" => mode::mode(ctx, &msg),
        "WHO" => query::who(ctx, &msg),
        "WHOIS" => query::whois(ctx, &msg),
        "AWAY" => query::away(ctx, &msg),
        "ISON" => query::ison(ctx, &msg),
        "USERHOST" => query::userhost(ctx, &msg),
        "VERSION" => query::version(ctx, &msg),
        "TIME" => query::time(ctx, &msg),
        "LUSERS" => query::lusers(ctx),
        "MOTD" => query::motd(ctx),
        // The only command that awaits.
        "OPER" => return Some(Deferred(msg.to_message())),
        "KILL" => oper::kill(ctx, &msg),
        "DIE" => oper::die(ctx, &msg),
        "EXTJWT" => extjwt::extjwt(ctx, &msg),
        _ => unreachable!("every command in COMMANDS has a handler"),
    }
    None
}

/// Runs a command `dispatch` handed back. Boxed whole (the message too), so
/// its state does not enlarge every idle connection's task.
pub fn run_deferred<'a, 'b: 'a>(
    ctx: &'a mut Ctx<'b>,
    Deferred(msg): Deferred,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
    Box::pin(async move { oper::oper(ctx, &msg.borrowed()).await })
}

/// Splits a comma-separated list, dropping empty items.
pub(crate) fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').filter(|p| !p.is_empty())
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
