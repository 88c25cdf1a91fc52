//! EXTJWT (IRCv3 draft): hands the client a signed token for the file store.

use crate::session::Ctx;
use parley_proto::numeric::*;
use parley_proto::{Message, MessageRef};

pub fn extjwt(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let target = msg.params[0];
    if target != "*" && !ctx.server.registry.read().is_member(ctx.session.id, target) {
        ctx.reply(ERR_NOSUCHCHANNEL, &[target, "No such channel, or you are not in it"]);
        return;
    }
    if let Some(service) = msg.param(1).filter(|s| *s != "*") {
        ctx.fail("EXTJWT", "NO_SUCH_SERVICE", &[service], "Only the default service `*` (the file store) is offered");
        return;
    }
    let nick = ctx.session.nick.clone().unwrap_or_default();
    let token = ctx.server.tokens.issue(&nick, ctx.session.id, crate::clock::unix_now());
    let server = ctx.server.config.server_name.clone();
    ctx.send(Message::new("EXTJWT", vec![target.to_string(), "*".into(), token]).with_source(server));
    ctx.server.log.record("token_issued", ctx.actor(), &[]);
}

#[cfg(test)]
mod tests {
    use super::super::testing::{codes, Harness};

    #[test]
    fn a_token_is_issued_for_the_file_store_and_names_the_session() {
        let (h, [mut alice]) = Harness::start(["alice"]);
        let out = h.run(&mut alice, "EXTJWT *");
        let token = out.trim_end().rsplit(' ').next().expect("a token");
        let claims = h.server.tokens.verify(token, crate::clock::unix_now()).expect("a valid token");
        assert_eq!(claims.sid, alice.id);
        assert_eq!(codes(&h.run(&mut alice, "EXTJWT #elsewhere")), ["403"]);
        assert!(h.run(&mut alice, "EXTJWT * other").starts_with(":parley.local FAIL EXTJWT NO_SUCH_SERVICE"));
    }
}
