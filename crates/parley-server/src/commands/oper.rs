//! The administrator's commands: OPER, KILL, DIE, REHASH, WALLOPS.
//!
//! OPER answers 464 whether the name or the password was wrong, so a
//! guesser learns nothing about which operator names exist. Failed attempts
//! are limited per address and in total (`operators.rs`), and every attempt
//! is logged with the name tried but never the password.

use crate::activity_log::Value;
use crate::close_reason::CloseReason;
use crate::operators::OperOutcome;
use crate::relay::Relay;
use crate::session::Ctx;
use crate::shutdown::ShutdownCause;
use parley_proto::numeric::*;
use parley_proto::{irc_eq, Message, MessageRef};

pub async fn oper(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let name = msg.params[0];
    let password = msg.params[1];
    let ip = ctx.session.addr.ip();
    let operators = ctx.server.operators.clone();
    let outcome = operators.check(ip, name, password, &ctx.server.accounts).await;
    match outcome {
        OperOutcome::Granted => {
            let nick = ctx.session.nick.clone().unwrap_or_default();
            ctx.server.registry.set_oper(ctx.session.id, Some(name.to_string()));
            ctx.reply(RPL_YOUREOPER, &["You are now an IRC operator"]);
            ctx.send(Message::new("MODE", vec![nick.clone(), "+o".into()]).with_source(nick));
            ctx.server.log.record(
                "oper",
                ctx.actor(),
                &[("name", Value::Text(name)), ("result", Value::Text("granted"))],
            );
        }
        OperOutcome::Denied => {
            ctx.reply(ERR_PASSWDMISMATCH, &["Password incorrect"]);
            ctx.server.log.record(
                "oper",
                ctx.actor(),
                &[("name", Value::Text(name)), ("result", Value::Text("denied"))],
            );
        }
        OperOutcome::RateLimited(secs) => {
            let text = format!("Too many failed OPER attempts; try again in {secs} seconds");
            ctx.reply(ERR_PASSWDMISMATCH, &[text.as_str()]);
            ctx.fail("OPER", "RATE_LIMITED", &[], &text);
            ctx.server.log.record(
                "oper",
                ctx.actor(),
                &[
                    ("name", Value::Text(name)),
                    ("result", Value::Text("rate_limited")),
                    ("retry_secs", Value::Num(secs)),
                ],
            );
        }
    }
}

/// The oper name of this session's user, or sends 481 and returns `None`.
fn require_oper(ctx: &Ctx<'_>) -> Option<String> {
    let oper = ctx.server.registry.read().user(ctx.session.id).and_then(|u| u.oper.clone());
    if oper.is_none() {
        ctx.reply(ERR_NOPRIVILEGES, &["Permission Denied- You're not an IRC operator"]);
    }
    oper
}

pub fn kill(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let Some(_) = require_oper(ctx) else { return };
    let target = msg.params[0];
    let reason =
        super::truncate(msg.param(1).unwrap_or("No reason given"), ctx.server.config.limits.kick_len).to_string();
    if irc_eq(target, &ctx.server.config.server_name) {
        ctx.reply(ERR_CANTKILLSERVER, &["You can't kill a server!"]);
        return;
    }
    let me = ctx.session.nick.clone().unwrap_or_default();
    let found = {
        let view = ctx.server.registry.read();
        view.id_by_nick(target)
            .and_then(|id| Some((id, view.user(id)?)))
            .map(|(id, u)| (id, u.client.clone(), u.nick.clone(), u.host.clone()))
    };
    let Some((id, client, nick, host)) = found else {
        ctx.reply(ERR_NOSUCHNICK, &[target, "No such nick/channel"]);
        return;
    };
    if crate::registry::remote::is_remote(id) {
        // Its own node closes it; everyone then sees its QUIT.
        ctx.server.registry.kill_remote(&nick, &me, &reason);
    } else {
        let why = CloseReason::Killed(Box::new((me, reason.clone())));
        let error = Message::new("ERROR", vec![format!("Closing Link: {host} ({})", why.text())]).to_bytes().to_vec();
        client.close(why, Some(error));
    }
    ctx.server_notice(&format!("Killed {nick}: {reason}"));
    ctx.server.log.record("kill", ctx.actor(), &[("target", Value::Text(&nick)), ("reason", Value::Text(&reason))]);
}

/// WALLOPS :text — from an operator to every user with `+w` (the sender
/// too, if it has `+w`).
pub fn wallops(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let Some(_) = require_oper(ctx) else { return };
    let text = msg.params[0];
    if text.is_empty() {
        ctx.reply(ERR_NEEDMOREPARAMS, &["WALLOPS", "Not enough parameters"]);
        return;
    }
    let relay = Relay::new(Message::new("WALLOPS", vec![text.to_string()]).with_source(ctx.session.mask()), Vec::new())
        .with_account(ctx.session.account());
    let (recipients, echo) = ctx.server.registry.wallops(ctx.session.id, &relay);
    if echo {
        ctx.send_relay(&relay);
    }
    ctx.server.log.record("wallops", ctx.actor(), &[("recipients", Value::Num(recipients as u64))]);
}

/// DIE [:reason] closes this server; DIE CLUSTER [:reason] closes every
/// node of its cluster (`cluster/shutdown.rs`), and is refused with
/// `FAIL DIE NOT_CLUSTERED` on a server that is not in one.
pub fn die(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let Some(oper_name) = require_oper(ctx) else {
        return;
    };
    let cluster_wide = msg.param(0).is_some_and(|p| p.eq_ignore_ascii_case("CLUSTER"));
    let reason_at = usize::from(cluster_wide);
    let nick = ctx.session.nick.clone().unwrap_or_default();
    let reason = msg.param(reason_at).filter(|r| !r.is_empty()).unwrap_or("no reason given").to_string();
    let by = format!("{nick} (operator {oper_name})");
    if cluster_wide {
        let Some(cluster) = &ctx.server.cluster else {
            let text = "This server is not part of a cluster: DIE without CLUSTER closes it";
            ctx.fail("DIE", "NOT_CLUSTERED", &[], text);
            return;
        };
        cluster.shut_down_all(&by, &reason);
    }
    let kind = if cluster_wide { "die_cluster" } else { "die" };
    ctx.server.log.record(kind, ctx.actor(), &[("oper", Value::Text(&oper_name)), ("reason", Value::Text(&reason))]);
    ctx.server.shutdown.trigger(ShutdownCause { by, reason });
}

/// REHASH: reads the configuration file again (`reload/`, on the
/// blocking pool). 382 when applied, with a NOTICE naming the settings that
/// wait for a restart; `FAIL REHASH CONFIG_INVALID` with the reason (the
/// key named) when refused, the old configuration staying in force.
pub async fn rehash(ctx: &mut Ctx<'_>) {
    let Some(oper_name) = require_oper(ctx) else { return };
    let Some(server) = ctx.server.shared() else {
        ctx.fail("REHASH", "UNAVAILABLE", &[], "This server cannot reload its configuration");
        return;
    };
    let by = format!("{} (operator {oper_name})", ctx.session.nick.as_deref().unwrap_or("*"));
    let result = tokio::task::spawn_blocking(move || crate::reload::reload(&server, &by)).await;
    match result {
        Ok(Ok(applied)) => {
            ctx.reply(RPL_REHASHING, &[applied.file.as_str(), "Rehashing"]);
            if !applied.restart.is_empty() {
                let keys = applied.restart.join(", ");
                ctx.server_notice(&format!("*** REHASH: these settings need a restart to change: {keys}"));
            }
        }
        Ok(Err(refused)) => {
            let text = format!("{}; the old configuration stays", refused.message);
            ctx.fail("REHASH", "CONFIG_INVALID", &[], &text);
        }
        Err(_) => ctx.fail("REHASH", "UNAVAILABLE", &[], "The reload did not finish"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{codes, Harness, OPER_PASSWORD};

    #[test]
    fn kill_and_die_need_an_operator() {
        let (h, [mut alice, _bob]) = Harness::start(["alice", "bob"]);
        assert_eq!(codes(&h.run(&mut alice, "KILL bob :bye")), ["481"]);
        assert_eq!(codes(&h.run(&mut alice, "DIE")), ["481"]);
        assert!(h.server.shutdown.cause().is_none());
    }

    #[tokio::test]
    async fn rehash_needs_an_operator() {
        let (h, [mut alice]) = Harness::start(["alice"]);
        assert_eq!(codes(&h.run_deferred(&mut alice, "REHASH").await), ["481"]);
    }

    #[tokio::test]
    async fn wallops_is_for_operators_and_reaches_users_with_w() {
        let (h, [mut alice, mut bob, carol]) = Harness::start(["alice", "bob", "carol"]);
        assert_eq!(codes(&h.run(&mut alice, "WALLOPS :hi")), ["481"]);
        assert!(h.run(&mut bob, "MODE bob +w").contains("MODE bob +w"));
        h.run_deferred(&mut alice, &format!("OPER admin :{OPER_PASSWORD}")).await;
        h.received(&bob);
        assert!(h.run(&mut alice, "WALLOPS :maintenance at noon").is_empty(), "alice has no +w");
        assert_eq!(h.received(&bob), ":alice!~alice@127.0.0.1 WALLOPS :maintenance at noon\r\n");
        assert!(!h.received(&carol).contains("WALLOPS"), "carol has no +w");
        h.run(&mut alice, "MODE alice +w");
        assert!(h.run(&mut alice, "WALLOPS :again").contains("WALLOPS again"), "the sender with +w too");
        assert_eq!(codes(&h.run(&mut alice, "WALLOPS :")), ["461"]);
    }

    #[tokio::test]
    async fn an_operator_can_kill_and_close_the_server() {
        let (h, [mut alice, bob]) = Harness::start(["alice", "bob"]);
        h.received(&alice);
        let wrong = h.run_deferred(&mut alice, "OPER admin wrong").await;
        assert_eq!(codes(&wrong), ["464"]);
        let granted = h.run_deferred(&mut alice, &format!("OPER admin :{OPER_PASSWORD}")).await;
        assert_eq!(codes(&granted), ["381", "MODE"]);
        assert!(h.run(&mut alice, "KILL bob :spam").contains("Killed bob: spam"));
        let reason = bob.client.close_reason().expect("bob is being closed");
        assert_eq!(reason.text(), "Killed (alice (spam))");
        assert_eq!(codes(&h.run(&mut alice, "KILL parley.local")), ["483"]);
        let refused = h.run(&mut alice, "DIE CLUSTER :all of it");
        assert!(refused.contains("FAIL DIE NOT_CLUSTERED :This server is not part of a cluster"), "{refused}");
        assert!(h.server.shutdown.cause().is_none(), "refused: nothing closes");
        h.run(&mut alice, "DIE :maintenance");
        let cause = h.server.shutdown.cause().expect("shutting down");
        assert_eq!((cause.by.as_str(), cause.reason.as_str()), ("alice (operator admin)", "maintenance"));
    }
}
