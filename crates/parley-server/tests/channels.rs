//! Channels beyond the lobby: JOIN/PART, channel operator on creation,
//! TOPIC, KICK, INVITE (with invite-notify and the list of your
//! invitations), the modes that gate entry and speech (+i +k +t +m +b, and
//! voice), and messages to a channel's operators or voiced members only
//! (STATUSMSG).

use parley_testkit::numeric::*;
use parley_testkit::{Client, Line, Server, TIMEOUT};

/// Joins `channel` and returns the NAMES entries from the join burst.
fn join(c: &mut Client, channel: &str) -> Vec<String> {
    c.send(&format!("JOIN {channel}"));
    let lines = c.collect_until(|l| l.is(RPL_ENDOFNAMES) && l.param(1) == channel, TIMEOUT);
    assert!(
        lines.iter().any(|l| l.is_from("JOIN", &c.nick) && l.param(0) == channel),
        "no JOIN echo for {} in {channel}: {lines:?}",
        c.nick
    );
    names_in(&lines)
}

fn names_in(lines: &[Line]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.is(RPL_NAMREPLY))
        .flat_map(|l| l.last().split(' ').map(str::to_string).collect::<Vec<_>>())
        .collect()
}

#[test]
fn creator_of_a_channel_is_its_operator_and_later_joiners_are_not() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    assert_eq!(join(&mut alice, "#room"), ["@alice"]);
    let mut names = join(&mut bob, "#room");
    names.sort();
    assert_eq!(names, ["@alice", "bob"]);
    let seen = alice.expect(|l| l.is_from("JOIN", "bob"), TIMEOUT);
    assert_eq!(seen.param(0), "#room");

    // Default modes of a new channel: no outside messages, ops set topic.
    alice.send("MODE #room");
    let modes = alice.expect(|l| l.is(RPL_CHANNELMODEIS), TIMEOUT);
    assert_eq!(modes.param(2), "+nt");
}

#[test]
fn part_is_seen_by_the_channel_with_its_reason() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    join(&mut alice, "#room");
    join(&mut bob, "#room");
    bob.send("PART #room :see you");
    for c in [&mut alice, &mut bob] {
        let part = c.expect(|l| l.is_from("PART", "bob"), TIMEOUT);
        assert_eq!(part.params, ["#room", "see you"]);
    }
    bob.send("PART #room");
    let reply = bob.expect(|l| l.is(ERR_NOTONCHANNEL), TIMEOUT);
    assert_eq!(reply.param(1), "#room");
}

#[test]
fn invite_only_channel_refuses_with_473_until_an_operator_invites() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    join(&mut alice, "#private");
    alice.send("MODE #private +i");
    let mode = alice.expect(|l| l.is_from("MODE", "alice"), TIMEOUT);
    assert_eq!(mode.params, ["#private", "+i"]);

    bob.send("JOIN #private");
    let refused = bob.expect(|l| l.is(ERR_INVITEONLYCHAN), TIMEOUT);
    assert_eq!(refused.param(1), "#private");

    alice.send("INVITE bob #private");
    let inviting = alice.expect(|l| l.is(RPL_INVITING), TIMEOUT);
    assert_eq!(inviting.params[1..], ["bob", "#private"]);
    let invite = bob.expect(|l| l.is_from("INVITE", "alice"), TIMEOUT);
    assert_eq!(invite.params, ["bob", "#private"]);
    join(&mut bob, "#private");
}

#[test]
fn keyed_channel_refuses_with_475_without_the_right_key() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    join(&mut alice, "#keyed");
    alice.send("MODE #keyed +k s3cret");
    alice.expect(|l| l.is_from("MODE", "alice") && l.param(1) == "+k", TIMEOUT);

    bob.send("JOIN #keyed");
    bob.expect(|l| l.is(ERR_BADCHANNELKEY), TIMEOUT);
    bob.send("JOIN #keyed wrong");
    bob.expect(|l| l.is(ERR_BADCHANNELKEY), TIMEOUT);
    bob.send("JOIN #keyed s3cret");
    bob.expect(|l| l.is_from("JOIN", "bob") && l.param(0) == "#keyed", TIMEOUT);
}

#[test]
fn kick_removes_the_member_and_every_member_sees_it() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    let mut carol = Client::registered(server.irc_addr(), "carol");
    for c in [&mut alice, &mut bob, &mut carol] {
        join(c, "#room");
    }
    // Only an operator may kick.
    bob.send("KICK #room carol :no");
    bob.expect(|l| l.is(ERR_CHANOPRIVSNEEDED), TIMEOUT);

    alice.send("KICK #room bob :behave");
    for c in [&mut alice, &mut bob, &mut carol] {
        let kick = c.expect(|l| l.is_from("KICK", "alice"), TIMEOUT);
        assert_eq!(kick.params, ["#room", "bob", "behave"]);
    }
    // Bob is out: he cannot speak there (+n), and NAMES no longer lists him.
    bob.send("PRIVMSG #room :still here?");
    bob.expect(|l| l.is(ERR_CANNOTSENDTOCHAN), TIMEOUT);
    carol.send("NAMES #room");
    let mut names = names_in(&carol.collect_until(|l| l.is(RPL_ENDOFNAMES), TIMEOUT));
    names.sort();
    assert_eq!(names, ["@alice", "carol"]);
}

#[test]
fn topic_is_set_by_operators_and_refused_with_482_for_others_under_plus_t() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    join(&mut alice, "#room");
    join(&mut bob, "#room");

    bob.send("TOPIC #room :bob's topic");
    let refused = bob.expect(|l| l.is(ERR_CHANOPRIVSNEEDED), TIMEOUT);
    assert_eq!(refused.param(1), "#room");

    alice.send("TOPIC #room :Welcome to the room");
    for c in [&mut alice, &mut bob] {
        let topic = c.expect(|l| l.is_from("TOPIC", "alice"), TIMEOUT);
        assert_eq!(topic.params, ["#room", "Welcome to the room"]);
    }
    bob.send("TOPIC #room");
    let current = bob.expect(|l| l.is(RPL_TOPIC), TIMEOUT);
    assert_eq!(current.params[1..], ["#room", "Welcome to the room"]);

    // Without +t anyone in the channel may set it.
    alice.send("MODE #room -t");
    bob.expect(|l| l.is_from("MODE", "alice") && l.param(1) == "-t", TIMEOUT);
    bob.send("TOPIC #room :bob's topic");
    let topic = alice.expect(|l| l.is_from("TOPIC", "bob"), TIMEOUT);
    assert_eq!(topic.last(), "bob's topic");
}

#[test]
fn moderated_channel_refuses_unvoiced_members_with_404_and_voice_lets_them_speak() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    join(&mut alice, "#quiet");
    join(&mut bob, "#quiet");
    alice.send("MODE #quiet +m");
    bob.expect(|l| l.is_from("MODE", "alice") && l.param(1) == "+m", TIMEOUT);

    bob.send("PRIVMSG #quiet :can I speak?");
    let refused = bob.expect(|l| l.is(ERR_CANNOTSENDTOCHAN), TIMEOUT);
    assert_eq!(refused.param(1), "#quiet");
    alice.expect_none(|l| l.is("PRIVMSG"), "message from an unvoiced member");

    alice.send("MODE #quiet +v bob");
    let voice = bob.expect(|l| l.is_from("MODE", "alice"), TIMEOUT);
    assert_eq!(voice.params, ["#quiet", "+v", "bob"]);
    bob.send("PRIVMSG #quiet :now I can");
    let got = alice.expect(|l| l.is_from("PRIVMSG", "bob"), TIMEOUT);
    assert_eq!(got.params, ["#quiet", "now I can"]);
}

#[test]
fn banned_user_cannot_join_and_gets_474() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut carol = Client::registered(server.irc_addr(), "carol");
    join(&mut alice, "#room");
    alice.send("MODE #room +b carol!*@*");
    let ban = alice.expect(|l| l.is_from("MODE", "alice"), TIMEOUT);
    assert_eq!(ban.params, ["#room", "+b", "carol!*@*"]);

    carol.send("JOIN #room");
    let refused = carol.expect(|l| l.is(ERR_BANNEDFROMCHAN), TIMEOUT);
    assert_eq!(refused.param(1), "#room");
    alice.expect_none(|l| l.is_from("JOIN", "carol"), "JOIN from a banned user");

    // Lifting the ban lets her in.
    alice.send("MODE #room -b carol!*@*");
    alice.expect(|l| l.is_from("MODE", "alice") && l.param(1) == "-b", TIMEOUT);
    join(&mut carol, "#room");
}

#[test]
fn mode_changes_by_non_operators_are_refused_with_482() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    join(&mut alice, "#room");
    join(&mut bob, "#room");
    bob.send("MODE #room +i");
    bob.expect(|l| l.is(ERR_CHANOPRIVSNEEDED), TIMEOUT);
    bob.send("MODE #room +o bob");
    bob.expect(|l| l.is(ERR_CHANOPRIVSNEEDED), TIMEOUT);
    alice.expect_none(|l| l.is("MODE"), "MODE change by a non-operator");
}

#[test]
fn quit_and_nick_change_reach_a_member_of_several_shared_channels_once() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    for c in [&mut alice, &mut bob] {
        join(c, "#one");
        join(c, "#two");
    }
    bob.send("NICK robert");
    alice.expect(|l| l.is_from("NICK", "bob"), TIMEOUT);
    alice.expect_none(|l| l.is("NICK"), "a second NICK line for the same change");
    bob.send("QUIT :leaving");
    alice.expect(|l| l.is_from("QUIT", "robert"), TIMEOUT);
    alice.expect_none(|l| l.is("QUIT"), "a second QUIT line for the same user");
}

#[test]
fn lobby_has_no_channel_operator_even_for_its_first_member() {
    let server = Server::start();
    let mut first = Client::connect(server.irc_addr());
    let burst = first.register("first");
    assert_eq!(names_in(&burst), ["first"]);
    // So nobody can take the lobby over.
    first.send("MODE #lobby +i");
    first.expect(|l| l.is(ERR_CHANOPRIVSNEEDED), TIMEOUT);
}

#[test]
fn a_status_message_reaches_only_members_with_that_status() {
    let server = Server::start();
    let mut op = Client::registered(server.irc_addr(), "op");
    let mut voiced = Client::registered(server.irc_addr(), "voiced");
    let mut plain = Client::registered(server.irc_addr(), "plain");
    for c in [&mut op, &mut voiced, &mut plain] {
        join(c, "#room");
    }
    op.send("MODE #room +v voiced");
    voiced.expect(|l| l.is("MODE"), TIMEOUT);
    plain.expect(|l| l.is("MODE"), TIMEOUT);

    plain.send("PRIVMSG @#room :for the operators");
    assert!(plain.sync().is_empty(), "accepted without a reply");
    let got = op.expect(|l| l.is("PRIVMSG"), TIMEOUT);
    assert_eq!(got.params, ["@#room", "for the operators"]);
    voiced.expect_none(|l| l.is("PRIVMSG"), "an @#room message without operator status");

    op.send("PRIVMSG +#room :for voices");
    let got = voiced.expect(|l| l.is("PRIVMSG"), TIMEOUT);
    assert_eq!(got.params, ["+#room", "for voices"]);
    plain.expect_none(|l| l.is("PRIVMSG"), "a +#room message without voice");

    let mut outsider = Client::registered(server.irc_addr(), "outsider");
    outsider.send("PRIVMSG @#room :let me in");
    outsider.expect(|l| l.is(ERR_CANNOTSENDTOCHAN), TIMEOUT);
}

#[test]
fn members_with_invite_notify_see_invitations_and_invite_alone_lists_yours() {
    let server = Server::start();
    let mut op = Client::registered(server.irc_addr(), "op");
    let mut watcher = Client::connect(server.irc_addr());
    watcher.register_with_caps("watcher", &["invite-notify"]);
    let mut plain = Client::registered(server.irc_addr(), "plain");
    let mut guest = Client::registered(server.irc_addr(), "guest");
    for c in [&mut op, &mut watcher, &mut plain] {
        join(c, "#room");
    }
    op.send("INVITE guest #room");
    op.expect(|l| l.is(RPL_INVITING), TIMEOUT);
    let seen = watcher.expect(|l| l.is("INVITE"), TIMEOUT);
    assert_eq!((seen.nick(), seen.params.as_slice()), ("op", &["guest".to_string(), "#room".to_string()][..]));
    plain.expect_none(|l| l.is("INVITE"), "an INVITE without invite-notify");

    guest.send("INVITE");
    let lines = guest.collect_until(|l| l.is("337"), TIMEOUT);
    let listed: Vec<&str> = lines.iter().filter(|l| l.is("336")).map(|l| l.param(1)).collect();
    assert_eq!(listed, ["#room"]);
    guest.send("INVITE op");
    guest.expect(|l| l.is(ERR_NEEDMOREPARAMS), TIMEOUT);
}
