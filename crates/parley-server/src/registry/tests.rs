//! The registry's rules, without a server.

use super::*;

fn user(id: ClientId, nick: &str) -> User {
    User {
        client: Arc::new(Client::new(id, 1 << 16, None)),
        addr: "127.0.0.1:1".parse().unwrap(),
        nick: nick.into(),
        user: "~u".into(),
        host: "127.0.0.1".into(),
        realname: "R".into(),
        away: None,
        invisible: false,
        wallops: false,
        bot: false,
        oper: None,
        account: None,
        channels: Vec::new(),
        signon: 0,
    }
}

const LIMITS: JoinLimits = JoinLimits { max_channels: 10, quiet_above: 2 };

#[test]
fn nicks_are_unique_across_case_and_counts_follow_modes() {
    let reg = Registry::new("parley.local", &[], 0, 10);
    assert!(reg.register(1, user(1, "Alice")).is_ok());
    assert_eq!(reg.register(2, user(2, "alice")), Err(Refusal::NickInUse("alice".into())));
    assert!(reg.register(2, user(2, "bob")).is_ok());
    assert!(reg.set_invisible(1, true) && !reg.set_invisible(1, true));
    assert!(reg.set_oper(2, Some("admin".into())));
    let c = reg.read().counts();
    assert_eq!((c.invisible, c.opers), (1, 1));
    reg.quit(1, None, 0);
    reg.quit(2, None, 0);
    let c = reg.read().counts();
    assert_eq!((c.users, c.invisible, c.opers), (0, 0, 0));
    assert!(reg.read().id_by_nick("alice").is_none());
}

#[test]
fn a_rename_frees_the_old_nick_and_refuses_a_taken_one() {
    let reg = Registry::new("parley.local", &[], 0, 10);
    reg.register(1, user(1, "alice")).unwrap();
    reg.register(2, user(2, "bob")).unwrap();
    assert_eq!(reg.rename(1, "BOB", "alice!~u@h".into()).err(), Some(Refusal::NickInUse("BOB".into())));
    assert!(reg.rename(1, "carol", "alice!~u@h".into()).is_ok());
    assert!(reg.read().id_by_nick("alice").is_none());
    assert_eq!(reg.read().id_by_nick("Carol"), Some(1));
    // A change of case only is the user's own nick.
    assert!(reg.rename(1, "Carol", "carol!~u@h".into()).is_ok());
}

#[test]
fn the_creator_is_operator_and_a_keyed_channel_wants_its_key() {
    let reg = Registry::new("parley.local", &[], 0, 10);
    reg.register(1, user(1, "alice")).unwrap();
    reg.register(2, user(2, "bob")).unwrap();
    let joined = reg.join(1, "#Room", None, "alice!~u@h", 0, &LIMITS).unwrap().unwrap();
    assert_eq!(joined.names, vec!["@alice"]);
    assert!(reg.join(1, "#room", None, "alice!~u@h", 0, &LIMITS).unwrap().is_none(), "already in");
    let ops = vec![ModeOp::Set { adding: true, mode: 'k', arg: Some("sesame".into()) }];
    let (outcome, relay) = reg.change_channel_modes(1, "#room", ops, "alice", "alice!~u@h", 10).unwrap();
    assert_eq!((outcome.applied.as_str(), relay.is_some()), ("+k", true));
    assert_eq!(reg.join(2, "#room", None, "bob!~u@h", 0, &LIMITS).err(), Some(Refusal::BadKey("#Room".into())));
    assert!(reg.join(2, "#room", Some("sesame"), "bob!~u@h", 0, &LIMITS).unwrap().is_some());
    assert!(reg.read().is_member(2, "#ROOM"));
}

#[test]
fn the_last_member_leaving_ends_a_channel_but_not_the_lobby() {
    let reg = Registry::new("parley.local", &["#lobby".into()], 0, 10);
    reg.register(1, user(1, "alice")).unwrap();
    reg.join(1, "#lobby", None, "a!u@h", 0, &LIMITS).unwrap();
    reg.join(1, "#side", None, "a!u@h", 0, &LIMITS).unwrap();
    reg.part(1, "#side", "", "a!u@h", 2).unwrap();
    reg.part(1, "#lobby", "", "a!u@h", 2).unwrap();
    assert!(reg.read().channel("#side").is_none());
    assert!(reg.read().channel("#lobby").is_some());
    assert_eq!(reg.part(1, "#lobby", "", "a!u@h", 2).err(), Some(Refusal::NotOnChannel("#lobby".into())));
}

fn pending(reg: &Registry, id: ClientId) -> String {
    let view = reg.read();
    String::from_utf8(view.user(id).unwrap().client.take_pending().to_vec()).unwrap()
}

#[test]
fn monitors_hear_of_arrivals_renames_and_departures_of_their_nicks_only() {
    let reg = Registry::new("parley.local", &[], 0, 10);
    reg.register(1, user(1, "watcher")).unwrap();
    reg.register(2, user(2, "Bob")).unwrap();
    let found = reg.monitor_add(1, &["bob", "carol", "dave"], 2);
    assert_eq!(found.online, ["Bob!~u@127.0.0.1"]);
    assert_eq!((found.offline, found.refused), (vec!["carol".to_string()], vec!["dave".to_string()]));
    assert_eq!(reg.monitor_add(1, &["CAROL"], 2), Monitored { offline: vec!["CAROL".into()], ..Default::default() });
    assert_eq!(reg.read().monitored(1), ["bob", "carol"], "already listed: not refused, not added twice");

    reg.register(3, user(3, "carol")).unwrap();
    assert_eq!(pending(&reg, 1), ":parley.local 730 watcher carol!~u@127.0.0.1\r\n");
    reg.rename(3, "Carol", "carol!~u@127.0.0.1".into()).unwrap();
    assert_eq!(pending(&reg, 1), "", "a change of case is the same nick");
    reg.rename(2, "robert", "Bob!~u@127.0.0.1".into()).unwrap();
    assert_eq!(pending(&reg, 1), ":parley.local 731 watcher Bob\r\n", "offline under the nick it had");
    reg.quit(3, None, 0);
    assert_eq!(pending(&reg, 1), ":parley.local 731 watcher Carol\r\n");
    reg.monitor_remove(1, &["CAROL"]);
    reg.register(4, user(4, "carol")).unwrap();
    assert_eq!(pending(&reg, 1), "", "no longer monitored");
    reg.quit(1, None, 0);
    assert!(reg.read().monitored(1).is_empty(), "a departed user's list goes with it");
}

#[test]
fn ban_exceptions_lift_bans_and_invite_exceptions_open_invite_only() {
    let reg = Registry::new("parley.local", &[], 0, 10);
    reg.register(1, user(1, "alice")).unwrap();
    reg.register(2, user(2, "bob")).unwrap();
    reg.join(1, "#room", None, "alice!~u@h", 0, &LIMITS).unwrap();
    let set = |mode: char, arg: &str| ModeOp::Set { adding: true, mode, arg: Some(arg.into()) };
    let ops = vec![set('b', "bob!*@*"), ModeOp::Set { adding: true, mode: 'i', arg: None }];
    reg.change_channel_modes(1, "#room", ops, "alice", "alice!~u@h", 10).unwrap();
    assert_eq!(reg.join(2, "#room", None, "bob!~u@h", 0, &LIMITS).err(), Some(Refusal::InviteOnly("#room".into())));
    reg.change_channel_modes(1, "#room", vec![set('I', "bob!*@*")], "alice", "alice!~u@h", 10).unwrap();
    assert_eq!(reg.join(2, "#room", None, "bob!~u@h", 0, &LIMITS).err(), Some(Refusal::Banned("#room".into())));
    let (outcome, _) = reg.change_channel_modes(1, "#room", vec![set('e', "*!*@h")], "alice", "a!u@h", 1).unwrap();
    assert_eq!(outcome.applied.as_str(), "+e");
    let (full, _) = reg.change_channel_modes(1, "#room", vec![set('e', "x!*@*")], "alice", "a!u@h", 1).unwrap();
    assert_eq!(full.errors, [crate::channel::ModeError::ListFull('e', "x!*@*".into())], "one list, one limit");
    assert!(reg.join(2, "#room", None, "bob!~u@h", 0, &LIMITS).unwrap().is_some());
}

#[test]
fn a_remote_user_is_listed_and_heard_but_never_sent_to_and_its_quit_reaches_neighbours() {
    use crate::cluster::wire::{ModeChange, Origin, UserInfo};
    let reg = Registry::new("parley.local", &["#lobby".to_string()], 0, 10);
    reg.register(1, user(1, "alice")).unwrap();
    let limits = JoinLimits { max_channels: 10, quiet_above: 100 };
    reg.join(1, "#lobby", None, "alice!~u@h", 0, &limits).unwrap();
    let alice = reg.read().user(1).unwrap().client.clone();
    alice.take_pending();
    let from = Origin { node: "b".into(), inc: 7 };
    let info = UserInfo {
        id: 1,
        nick: "bob".into(),
        user: "~b".into(),
        host: "h".into(),
        realname: "B".into(),
        account: None,
        signon: 0,
        channels: vec![("#lobby".into(), false, false)],
        away: None,
        invisible: true,
        oper: false,
    };
    reg.remote_register(&from, info, 100);
    assert_eq!(reg.read().counts().invisible, 1, "+i came with it");
    assert_eq!(reg.read().counts().users, 2, "LUSERS counts the cluster");
    let bob = reg.read().id_by_nick("BOB").expect("found by nick");
    assert!(remote::is_remote(bob));
    let names = {
        let view = reg.read();
        view.name_entries(view.channel("#lobby").unwrap(), 0)
    };
    assert!(names.contains(&"bob".to_string()) && names.contains(&"alice".to_string()), "{names:?}");
    assert_eq!(String::from_utf8_lossy(&alice.take_pending()), ":bob!~b@h JOIN #lobby\r\n");
    // Alice's message is sent to local members only (none but her).
    let relay = Relay::line("alice!~u@h", "PRIVMSG", &["#lobby", "hi"], Vec::new());
    assert_eq!(reg.message_channel(1, "#lobby", None, "alice!~u@h", &relay), Ok(0));
    // Bob's messages come relayed and reach alice.
    let relayed = Relay::from_cluster(b":bob!~b@h PRIVMSG #lobby :yo\r\n", Vec::new(), Some(("abc-1", 5)));
    assert_eq!(reg.deliver_to_channel("#LOBBY", None, &relayed), 1);
    assert_eq!(relayed.msgid(), "abc-1");
    assert_eq!(String::from_utf8_lossy(&alice.take_pending()), ":bob!~b@h PRIVMSG #lobby :yo\r\n");
    // Modes set on bob's node are applied here and shown as set by him.
    let plus = |mode, arg: Option<&str>| ModeChange { adding: true, mode, arg: arg.map(str::to_string) };
    reg.remote_modes("#lobby", "bob!~b@h", "bob", &(5, "b".into()), &[plus('m', None), plus('o', Some("alice"))]);
    assert_eq!(String::from_utf8_lossy(&alice.take_pending()), ":bob!~b@h MODE #lobby +mo alice\r\n");
    assert!(reg.read().channel("#lobby").is_some_and(|c| c.modes.moderated && c.is_op(1)));
    // Its node is gone: bob quits for alice, and the nick is free.
    assert_eq!(reg.drop_node("b", None, "Quit: b lost contact", 100), 1);
    assert_eq!(String::from_utf8_lossy(&alice.take_pending()), ":bob!~b@h QUIT :Quit: b lost contact\r\n");
    assert!(reg.read().id_by_nick("bob").is_none());
    assert_eq!(reg.read().counts().users, 1);
}
