//! SETNAME (IRCv3 `setname`): changes your realname after registration.
//! You and the users sharing a channel with you who have the capability
//! (and, with `extended-monitor`, those monitoring you) see
//! `:you SETNAME :new name`; clients without it are never sent one. A
//! realname that is empty or longer than `limits.realname_len` is refused
//! with `FAIL SETNAME INVALID_REALNAME`.

use crate::activity_log::Value;
use crate::caps;
use crate::session::Ctx;
use parley_proto::MessageRef;

pub fn setname(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    // Control characters have no place in a name others see (as in USER).
    let realname: String = msg.params[0].chars().filter(|c| !c.is_control()).collect();
    let max = ctx.server.config.limits.realname_len;
    if realname.is_empty() || realname.len() > max {
        let text = format!("A realname must be 1 to {max} bytes long");
        ctx.fail("SETNAME", "INVALID_REALNAME", &[], &text);
        return;
    }
    let relay = ctx.server.registry.set_realname(ctx.session.id, &realname, ctx.session.mask());
    if ctx.session.has_cap(caps::SETNAME) {
        ctx.send_relay(&relay);
    }
    ctx.server.log.record("setname", ctx.actor(), &[("bytes", Value::Num(realname.len() as u64))]);
}

#[cfg(test)]
mod tests {
    use super::super::testing::Harness;

    #[test]
    fn setname_reaches_you_and_peers_with_the_capability_only() {
        let h = Harness::new();
        let [mut alice, mut bob, carol] = h.in_channel("#room", ["alice", "bob", "carol"]);
        h.run(&mut alice, "CAP REQ setname");
        h.run(&mut bob, "CAP REQ setname");
        h.received(&bob);
        let out = h.run(&mut alice, "SETNAME :Alice Liddell");
        assert_eq!(out, ":alice!~alice@127.0.0.1 SETNAME :Alice Liddell\r\n");
        assert_eq!(h.received(&bob), out);
        assert!(h.received(&carol).is_empty(), "no setname capability, no SETNAME");
        assert!(h.run(&mut bob, "WHOIS alice").contains(" 311 bob alice ~alice 127.0.0.1 * :Alice Liddell\r\n"));
    }

    #[test]
    fn an_empty_or_overlong_realname_is_refused() {
        let h = Harness::with(|c| c.limits.realname_len = 5);
        let mut alice = h.user("alice");
        let fail = ":parley.local FAIL SETNAME INVALID_REALNAME :A realname must be 1 to 5 bytes long\r\n";
        assert_eq!(h.run(&mut alice, "SETNAME :toolong"), fail);
        assert_eq!(h.run(&mut alice, "SETNAME :\x07"), fail, "nothing left once control characters go");
        let whois = h.run(&mut alice, "WHOIS alice");
        assert!(whois.contains(" 127.0.0.1 * alice\r\n"), "unchanged, as USER cut it: {whois}");
    }
}
