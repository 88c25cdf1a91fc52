//! Command dispatch: one table saying which commands exist, how many
//! parameters each needs, whether it needs registration, and which handler
//! runs it (one per command, in the module for its family). Handlers say
//! what they have to say through the `Ctx` and change shared state through
//! the registry; none touches a socket.

pub mod account;
pub mod channel;
pub mod chathistory;
pub mod elist;
pub mod extjwt;
pub mod help;
pub mod help_texts;
pub mod history;
#[cfg(test)]
mod labeled_response_tests;
pub mod markread;
pub mod messaging;
pub mod mode;
pub mod monitor;
pub mod nickserv;
pub mod oper;
pub mod query;
pub mod register;
pub mod registration;
pub mod sasl;
pub mod search;
pub mod services;
pub mod setname;
#[cfg(test)]
pub(crate) mod testing;
pub mod who;

use crate::server::ServerState;
use crate::session::{Ctx, Session};
use parley_proto::numeric::*;
use parley_proto::{Message, MessageRef};

/// A command's handler: it reads the message, asks the registry for what
/// it needs, and says what it has to say through the `Ctx`.
type Handler = fn(&mut Ctx<'_>, &MessageRef<'_>);

enum Run {
    Now(Handler),
    /// Has to await (argon2, the database or the disk on the blocking pool:
    /// OPER, AUTHENTICATE, PASS, REGISTER, NickServ, CHATHISTORY, SEARCH,
    /// HISTORY, REHASH): handed back to the
    /// connection, which ends its output batch first.
    Deferred,
    /// Deferred when the test says so (PRIVMSG to NickServ, PASS with an
    /// account), else run now: the usual case stays on the fast path.
    DeferredIf(fn(&Ctx<'_>, &MessageRef<'_>) -> bool, Handler),
}

struct Spec {
    name: &'static str,
    min_params: usize,
    needs_registration: bool,
    run: Run,
}

const fn spec(name: &'static str, min_params: usize, needs_registration: bool, handler: Handler) -> Spec {
    Spec { name, min_params, needs_registration, run: Run::Now(handler) }
}

const fn deferred(name: &'static str, min_params: usize, needs_registration: bool) -> Spec {
    Spec { name, min_params, needs_registration, run: Run::Deferred }
}

/// Every command Parley understands, with its handler, in order of how
/// often clients send them: `dispatch` looks a command up by comparing
/// names from the top.
const COMMANDS: &[Spec] = &[
    Spec {
        name: "PRIVMSG",
        min_params: 0,
        needs_registration: true,
        run: Run::DeferredIf(|_, m| m.params.first().is_some_and(|t| nickserv::is_target(t)), messaging::message),
    },
    spec("PING", 0, false, registration::ping),
    spec("PONG", 0, false, |_, _| {}),
    spec("NOTICE", 0, true, messaging::message),
    spec("TAGMSG", 0, true, messaging::message),
    spec("CAP", 1, false, registration::cap),
    Spec {
        name: "PASS",
        min_params: 1,
        needs_registration: false,
        run: Run::DeferredIf(registration::pass_logs_in, registration::pass),
    },
    Spec {
        name: "NICK",
        min_params: 0,
        needs_registration: false,
        // On a cluster node the nick is claimed cluster-wide first.
        run: Run::DeferredIf(|ctx, _| ctx.server.cluster.is_some(), registration::nick),
    },
    spec("USER", 4, false, registration::user),
    spec("QUIT", 0, false, registration::quit),
    spec("JOIN", 1, true, channel::join),
    spec("PART", 1, true, channel::part),
    spec("TOPIC", 1, true, channel::topic),
    spec("NAMES", 0, true, channel::names),
    spec("LIST", 0, true, channel::list),
    spec("INVITE", 0, true, channel::invite),
    spec("KICK", 2, true, channel::kick),
    spec("MODE", 1, true, mode::mode),
    spec("WHO", 1, true, who::who),
    spec("WHOIS", 1, true, query::whois),
    spec("WHOWAS", 0, true, query::whowas),
    spec("AWAY", 0, true, query::away),
    spec("ISON", 1, true, query::ison),
    spec("USERHOST", 1, true, query::userhost),
    spec("VERSION", 0, true, query::version),
    spec("TIME", 0, true, query::time),
    spec("INFO", 0, true, query::info),
    spec("LUSERS", 0, true, |ctx, _| query::lusers(ctx)),
    spec("MOTD", 0, true, |ctx, _| query::motd(ctx)),
    deferred("OPER", 2, true),
    deferred("AUTHENTICATE", 1, false),
    deferred("REGISTER", 3, false),
    deferred("VERIFY", 2, false),
    deferred("NICKSERV", 0, true),
    deferred("NS", 0, true),
    deferred("CHATHISTORY", 1, true),
    spec("MARKREAD", 0, true, markread::markread),
    deferred("SEARCH", 0, true),
    deferred("HISTORY", 1, true),
    spec("KILL", 1, true, oper::kill),
    spec("DIE", 0, true, oper::die),
    deferred("REHASH", 0, true),
    spec("EXTJWT", 1, true, extjwt::extjwt),
    spec("MONITOR", 1, true, monitor::monitor),
    spec("HELP", 0, true, help::help),
    spec("HELPOP", 0, true, help::help),
    spec("LINKS", 0, true, query::links),
    spec("WALLOPS", 1, true, oper::wallops),
    spec("SETNAME", 1, true, setname::setname),
];

/// The name of every command in the dispatch table (HELP's test).
#[cfg(test)]
pub(crate) fn command_names() -> Vec<&'static str> {
    COMMANDS.iter().map(|s| s.name).collect()
}

/// A command that has to be awaited; see [`Run::Deferred`].
pub struct Deferred(Message);

/// Runs one parsed message from the client; returns it instead if it has to
/// be awaited.
pub fn dispatch(ctx: &mut Ctx<'_>, mut msg: MessageRef<'_>) -> Option<Deferred> {
    if !msg.tags.is_empty() {
        ctx.set_label(&msg.tags);
    }
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
    let hand_on = |ctx: &mut Ctx<'_>| {
        // Answered, and labeled, by `run_deferred`'s own `Ctx`.
        ctx.hand_on_label();
        Some(Deferred(msg.to_message()))
    };
    match spec.run {
        Run::Now(handler) => handler(ctx, &msg),
        Run::DeferredIf(defer, _) if defer(ctx, &msg) => return hand_on(ctx),
        Run::DeferredIf(_, handler) => handler(ctx, &msg),
        Run::Deferred => return hand_on(ctx),
    }
    None
}

/// Runs a command `dispatch` handed back, in a `Ctx` of its own. Boxed
/// whole (the context and the message too), so its state does not enlarge
/// every idle connection's task.
pub fn run_deferred<'a>(
    server: &'a ServerState,
    session: &'a mut Session,
    Deferred(msg): Deferred,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
    Box::pin(async move {
        let mut ctx = Ctx::new(server, session);
        ctx.set_label(&msg.tags);
        let msg = msg.borrowed();
        match msg.command {
            "AUTHENTICATE" => sasl::authenticate(&mut ctx, &msg).await,
            "PASS" => registration::pass_login(&mut ctx, &msg).await,
            "NICK" => registration::nick_in_cluster(&mut ctx, &msg).await,
            "REGISTER" => register::register(&mut ctx, &msg).await,
            "VERIFY" => register::verify(&mut ctx, &msg).await,
            "PRIVMSG" => nickserv::run(&mut ctx, msg.param(1).unwrap_or_default()).await,
            "NICKSERV" | "NS" => nickserv::run(&mut ctx, &msg.params.join(" ")).await,
            "CHATHISTORY" => chathistory::chathistory(&mut ctx, &msg).await,
            "SEARCH" => search::search(&mut ctx, &msg).await,
            "HISTORY" => history::history(&mut ctx, &msg).await,
            "REHASH" => oper::rehash(&mut ctx).await,
            _ => oper::oper(&mut ctx, &msg).await,
        }
    })
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
