//! A channel's mask lists beyond bans — exceptions (`+e`) and invite
//! exceptions (`+I`) — and LIST with filters (ELIST), over real sockets.

use parley_testkit::numeric::*;
use parley_testkit::{Client, Line, Server, TIMEOUT};

const RPL_INVEXLIST: &str = "346";
const RPL_ENDOFINVEXLIST: &str = "347";
const RPL_EXCEPTLIST: &str = "348";
const RPL_ENDOFEXCEPTLIST: &str = "349";
const ERR_UNKNOWNERROR: &str = "400";
const ERR_INVALIDMODEPARAM: &str = "696";

fn join(c: &mut Client, channel: &str) {
    c.send(&format!("JOIN {channel}"));
    c.expect(|l| l.is(RPL_ENDOFNAMES) && l.param(1) == channel, TIMEOUT);
}

fn mode(c: &mut Client, line: &str) -> Line {
    c.send(line);
    c.expect(|l| l.is("MODE"), TIMEOUT)
}

#[test]
fn a_ban_exception_lets_a_banned_user_in_and_an_invite_exception_passes_invite_only() {
    let server = Server::start();
    let mut op = Client::registered(server.irc_addr(), "op");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    join(&mut op, "#club");
    mode(&mut op, "MODE #club +b bo*!*@*");
    bob.send("JOIN #club");
    bob.expect(|l| l.is(ERR_BANNEDFROMCHAN), TIMEOUT);
    let set = mode(&mut op, "MODE #club +e *ob!*@*");
    assert_eq!(set.params, ["#club", "+e", "*ob!*@*"]);
    join(&mut bob, "#club");
    bob.send("PART #club");

    mode(&mut op, "MODE #club +i");
    bob.send("JOIN #club");
    bob.expect(|l| l.is(ERR_INVITEONLYCHAN), TIMEOUT);
    let set = mode(&mut op, "MODE #club +I bob");
    assert_eq!(set.params, ["#club", "+I", "bob!*@*"], "the mask is completed");
    join(&mut bob, "#club");
    bob.send("PART #club");
    mode(&mut op, "MODE #club -I bob!*@*");
    bob.send("JOIN #club");
    bob.expect(|l| l.is(ERR_INVITEONLYCHAN), TIMEOUT);
}

#[test]
fn exception_lists_are_shown_to_operators_with_their_numerics_and_bounded() {
    let server = Server::start_with("[limits]\nmax_bans = 1\n");
    let mut op = Client::registered(server.irc_addr(), "op");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    join(&mut op, "#club");
    join(&mut bob, "#club");
    mode(&mut op, "MODE #club +eI a!*@* b!*@*");

    op.send("MODE #club e");
    let lines = op.collect_until(|l| l.is(RPL_ENDOFEXCEPTLIST), TIMEOUT);
    let entry = lines.iter().find(|l| l.is(RPL_EXCEPTLIST)).expect("348");
    assert_eq!(entry.params[..4], ["op", "#club", "a!*@*", "op"]);
    op.send("MODE #club +I");
    let lines = op.collect_until(|l| l.is(RPL_ENDOFINVEXLIST), TIMEOUT);
    assert_eq!(lines.iter().filter(|l| l.is(RPL_INVEXLIST)).count(), 1);

    bob.send("MODE #club +I");
    bob.expect(|l| l.is(ERR_CHANOPRIVSNEEDED), TIMEOUT);
    op.send("MODE #club +e c!*@*");
    let full = op.expect(|l| l.is(ERR_INVALIDMODEPARAM), TIMEOUT);
    assert_eq!(full.params[1..4], ["#club", "e", "c!*@*"], "{}", full.raw);
}

/// The channels a LIST names, sorted.
fn list(c: &mut Client, param: &str) -> Vec<String> {
    c.send(&format!("LIST {param}"));
    let lines = c.collect_until(|l| l.is("323"), TIMEOUT);
    let mut names: Vec<String> = lines.iter().filter(|l| l.is("322")).map(|l| l.param(1).to_string()).collect();
    names.sort();
    names
}

#[test]
fn list_filters_by_mask_negated_mask_member_count_and_age() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    join(&mut alice, "#chan1");
    join(&mut alice, "#chan2");
    join(&mut bob, "#chan2");
    alice.send("TOPIC #chan1 :first");
    alice.sync();

    assert_eq!(list(&mut bob, "*an1"), ["#chan1"]);
    assert_eq!(list(&mut bob, "#c*,!#c*n2"), ["#chan1"]);
    assert_eq!(list(&mut bob, "!#l*"), ["#chan1", "#chan2"]);
    assert_eq!(list(&mut bob, ">1"), ["#chan2", "#lobby"]);
    assert_eq!(list(&mut bob, "<2"), ["#chan1"]);
    assert_eq!(list(&mut bob, "C<60,#chan*"), ["#chan1", "#chan2"]);
    assert_eq!(list(&mut bob, "C>60"), Vec::<String>::new(), "nothing is an hour old");
    assert_eq!(list(&mut bob, "T<60"), ["#chan1"], "only #chan1 has a topic");
}

#[test]
fn a_malformed_list_filter_gets_400_and_the_end_of_the_list() {
    let server = Server::start();
    let mut c = Client::registered(server.irc_addr(), "lister");
    c.send("LIST C<soon");
    let lines = c.collect_until(|l| l.is("323"), TIMEOUT);
    assert_eq!(lines.len(), 2, "400 then 323:\n{}", parley_testkit::show(&lines));
    assert!(lines[0].is(ERR_UNKNOWNERROR), "{}", lines[0].raw);
    assert_eq!(lines[0].param(1), "LIST");
    assert!(lines[0].last().contains("\"C<soon\""), "names the filter: {}", lines[0].raw);
}
