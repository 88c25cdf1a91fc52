//! Labeled responses (IRCv3 labeled-response, `labeled_response.rs`) end
//! to end through `dispatch`: which replies carry the label, and when.
//! (Here, not beside `labeled_response.rs`, which `session` uses: its tests
//! would make the harness and the session depend on each other.)

use crate::commands::testing::{codes, Harness, OPER_PASSWORD};
use crate::session::Session;

fn labeling(h: &Harness, nick: &str, extra: &str) -> Session {
    let mut s = h.user(nick);
    assert!(h.run(&mut s, &format!("CAP REQ :batch labeled-response {extra}")).contains(" ACK "));
    s
}

#[test]
fn a_command_without_replies_is_acknowledged_and_one_reply_is_labeled() {
    let h = Harness::new();
    let mut s = labeling(&h, "alice", "");
    assert_eq!(h.run(&mut s, "@label=p1 PONG x"), "@label=p1 :parley.local ACK\r\n");
    assert_eq!(h.run(&mut s, "@label=p2 PING x"), "@label=p2 :parley.local PONG parley.local x\r\n");
    let unknown = h.run(&mut s, "@label=p3 FROB");
    assert!(unknown.starts_with("@label=p3 :parley.local 421 alice FROB "), "{unknown}");
    assert_eq!(h.run(&mut s, "PING y"), ":parley.local PONG parley.local y\r\n", "no label, as before");
}

#[test]
fn several_replies_come_as_one_labeled_batch() {
    let h = Harness::new();
    let mut s = labeling(&h, "alice", "");
    let out = h.run(&mut s, "@label=w WHOIS alice");
    let lines: Vec<&str> = out.lines().collect();
    let id = lines[0].strip_prefix("@label=w :parley.local BATCH +").expect(&out);
    let id = id.strip_suffix(" labeled-response").expect(&out);
    let tag = format!("@batch={id} ");
    assert!(lines[1..lines.len() - 1].iter().all(|l| l.starts_with(&tag)), "{out}");
    assert_eq!(codes(&out)[1..lines.len() - 1].last(), Some(&"318"));
    assert_eq!(lines.last().copied(), Some(format!(":parley.local BATCH -{id}").as_str()));
}

#[test]
fn the_echo_is_labeled_and_what_others_get_is_not() {
    let h = Harness::new();
    let mut alice = labeling(&h, "alice", "echo-message");
    let bob = h.user("bob");
    h.received(&alice);
    h.received(&bob);
    let echo = h.run(&mut alice, "@label=m PRIVMSG bob :hi");
    assert_eq!(echo, "@label=m :alice!~alice@127.0.0.1 PRIVMSG bob hi\r\n");
    assert_eq!(h.received(&bob), ":alice!~alice@127.0.0.1 PRIVMSG bob hi\r\n");
    // To itself: the delivered copy plain, the echo labeled.
    let echo = h.run(&mut alice, "@label=self PRIVMSG alice :me");
    assert!(echo.starts_with("@label=self ") && echo.lines().count() == 1, "{echo}");
    assert_eq!(h.received(&alice), ":alice!~alice@127.0.0.1 PRIVMSG alice me\r\n");
    // Two targets, two echoes: a batch.
    let two = h.run(&mut alice, "@label=2 PRIVMSG bob,alice :both");
    assert!(two.starts_with("@label=2 :parley.local BATCH +") && two.lines().count() == 4, "{two}");
}

#[test]
fn no_label_without_both_caps_or_over_64_bytes() {
    let h = Harness::new();
    let mut s = h.user("alice");
    h.run(&mut s, "CAP REQ labeled-response");
    assert_eq!(h.run(&mut s, "@label=x PING a"), ":parley.local PONG parley.local a\r\n", "no batch cap");
    assert!(h.run(&mut s, "@label=x PONG a").is_empty());
    h.run(&mut s, "CAP REQ batch");
    let long = "x".repeat(65);
    assert_eq!(h.run(&mut s, &format!("@label={long} PING a")), ":parley.local PONG parley.local a\r\n");
    assert!(h.run(&mut s, &format!("@label={long} PONG a")).is_empty(), "not even an ACK");
}

#[tokio::test]
async fn a_command_that_awaits_is_labeled_once_it_is_answered() {
    let h = Harness::new();
    let mut s = labeling(&h, "alice", "");
    let denied = h.run_deferred(&mut s, "@label=o1 OPER admin wrong").await;
    assert!(denied.starts_with("@label=o1 :parley.local 464 "), "{denied}");
    let granted = h.run_deferred(&mut s, &format!("@label=o2 OPER admin :{OPER_PASSWORD}")).await;
    assert!(granted.starts_with("@label=o2 :parley.local BATCH +"), "381 and MODE: {granted}");
    assert_eq!(codes(&granted), ["BATCH", "381", "MODE", "BATCH"]);
}

#[test]
fn a_server_batch_goes_only_to_clients_with_the_cap() {
    let h = Harness::new();
    let mut plain = h.user("plain");
    let lines = |ctx: &crate::session::Ctx<'_>| {
        ctx.server_notice("one");
        ctx.server_notice("two");
    };
    let run = |s: &mut Session| {
        let mut ctx = crate::session::Ctx::new(&h.server, s);
        ctx.batch("example.com/test", &["p"], lines);
        String::from_utf8(ctx.take_output().to_vec()).unwrap()
    };
    assert_eq!(codes(&run(&mut plain)), ["NOTICE", "NOTICE"]);
    h.run(&mut plain, "CAP REQ batch");
    let out = run(&mut plain);
    assert_eq!(codes(&out), ["BATCH", "NOTICE", "NOTICE", "BATCH"]);
    assert!(out.starts_with(":parley.local BATCH +") && out.contains(" example.com/test p\r\n@batch="));
}
