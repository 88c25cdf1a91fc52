//! Labeled responses (IRCv3 labeled-response, `labeled_response.rs`) end
//! to end through `dispatch`: which replies carry the label, and when; and
//! server batches (`Ctx::batch`), alone and inside a labeled response.
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

#[tokio::test]
async fn a_message_to_nickserv_is_labeled_once_nickserv_answers() {
    let h = Harness::new();
    let mut s = labeling(&h, "alice", "");
    let help = h.run_deferred(&mut s, "@label=ns PRIVMSG NickServ :HELP").await;
    assert!(help.starts_with("@label=ns :parley.local BATCH +"), "{help}");
    assert!(codes(&help)[1..help.lines().count() - 1].iter().all(|c| *c == "NOTICE"), "{help}");
    let unknown = h.run_deferred(&mut s, "@label=ns2 PRIVMSG NickServ :FROB").await;
    assert!(unknown.starts_with("@label=ns2 :NickServ!") && unknown.lines().count() == 1, "{unknown}");
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

#[test]
fn a_labeled_response_that_is_one_batch_labels_it_and_more_nests_it() {
    let h = Harness::new();
    let mut s = labeling(&h, "alice", "");
    let label = [parley_proto::Tag { key: "label".into(), value: Some("h1".into()) }];
    let run = |s: &mut Session, also: bool| {
        let mut ctx = crate::session::Ctx::new(&h.server, s);
        ctx.set_label(&label);
        ctx.batch("chathistory", &["#c"], |ctx| ctx.server_notice("from history"));
        if also {
            ctx.server_notice("after it");
        }
        String::from_utf8(ctx.take_output().to_vec()).unwrap()
    };
    let one = run(&mut s, false);
    assert!(one.starts_with("@label=h1 :parley.local BATCH +") && one.contains(" chathistory #c\r\n"), "{one}");
    assert_eq!(codes(&one), ["BATCH", "NOTICE", "BATCH"], "no second batch around the one: {one}");
    let nested = run(&mut s, true);
    let lines: Vec<&str> = nested.lines().collect();
    assert!(lines[0].starts_with("@label=h1 ") && lines[0].ends_with(" labeled-response"), "{nested}");
    let outer = lines[0].split(' ').nth(3).unwrap().trim_start_matches('+');
    assert!(
        lines[1].starts_with(&format!("@batch={outer} :parley.local BATCH +")),
        "inner start in the outer: {nested}"
    );
    let inner = lines[1].split(' ').nth(3).unwrap().trim_start_matches('+');
    assert!(lines[2].starts_with(&format!("@batch={inner} ")), "{nested}");
    assert_eq!(lines[3], format!("@batch={outer} :parley.local BATCH -{inner}"));
    assert!(lines[4].starts_with(&format!("@batch={outer} ")) && lines[4].ends_with("after it"), "{nested}");
    assert_eq!(lines[5], format!(":parley.local BATCH -{outer}"));
}
