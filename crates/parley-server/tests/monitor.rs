//! MONITOR over real connections: the watcher hears of arrivals, nick
//! changes and departures of the nicks it names, and nothing of others;
//! the limit and bad input get their numerics; extended-monitor passes on
//! AWAY to watchers who share no channel.

use parley_testkit::numeric::*;
use parley_testkit::{Client, Server, TIMEOUT};

const RPL_MONONLINE: &str = "730";
const RPL_MONOFFLINE: &str = "731";
const RPL_MONLIST: &str = "732";
const RPL_ENDOFMONLIST: &str = "733";
const ERR_MONLISTFULL: &str = "734";
const ERR_UNKNOWNERROR: &str = "400";

#[test]
fn a_watcher_hears_when_a_monitored_nick_comes_renames_and_goes() {
    let server = Server::start();
    let mut watcher = Client::registered(server.irc_addr(), "watcher");
    watcher.send("MONITOR + bob");
    let offline = watcher.expect(|l| l.is(RPL_MONOFFLINE), TIMEOUT);
    assert_eq!(offline.params, ["watcher", "bob"]);

    let mut bob = Client::registered(server.irc_addr(), "bob");
    let online = watcher.expect(|l| l.is(RPL_MONONLINE), TIMEOUT);
    assert_eq!(online.params, ["watcher", "bob!~bob@127.0.0.1"]);

    bob.send("NICK Bob");
    bob.sync();
    watcher.expect_none(|l| l.is(RPL_MONONLINE) || l.is(RPL_MONOFFLINE), "news of a change of case");
    bob.send("NICK robert");
    let renamed = watcher.expect(|l| l.is(RPL_MONOFFLINE), TIMEOUT);
    assert_eq!(renamed.params, ["watcher", "Bob"], "offline under the nick as it was");
    bob.send("NICK bob");
    watcher.expect(|l| l.is(RPL_MONONLINE) && l.last() == "bob!~bob@127.0.0.1", TIMEOUT);

    bob.send("QUIT :bye");
    bob.expect_closed(TIMEOUT);
    let gone = watcher.expect(|l| l.is(RPL_MONOFFLINE), TIMEOUT);
    assert_eq!(gone.last(), "bob");
}

#[test]
fn list_status_remove_and_clear() {
    let server = Server::start();
    let mut watcher = Client::registered(server.irc_addr(), "watcher");
    let _alice = Client::registered(server.irc_addr(), "alice");
    watcher.send("MONITOR + alice,carol");
    watcher.sync();
    watcher.send("MONITOR L");
    let lines = watcher.collect_until(|l| l.is(RPL_ENDOFMONLIST), TIMEOUT);
    let listed: Vec<&str> = lines.iter().filter(|l| l.is(RPL_MONLIST)).flat_map(|l| l.last().split(',')).collect();
    assert_eq!(listed, ["alice", "carol"]);
    watcher.send("MONITOR S");
    let status = watcher.sync();
    let codes: Vec<&str> = status.iter().map(|l| l.command.as_str()).collect();
    assert_eq!(codes, [RPL_MONONLINE, RPL_MONOFFLINE]);

    watcher.send("MONITOR - carol");
    assert!(watcher.sync().is_empty(), "MONITOR - answers nothing");
    let _carol = Client::registered(server.irc_addr(), "carol");
    watcher.expect_none(|l| l.is(RPL_MONONLINE), "730 for a nick no longer monitored");
    watcher.send("MONITOR C");
    watcher.send("MONITOR L");
    let lines = watcher.collect_until(|l| l.is(RPL_ENDOFMONLIST), TIMEOUT);
    assert!(!lines.iter().any(|l| l.is(RPL_MONLIST)), "cleared");
}

#[test]
fn an_over_limit_list_a_mask_and_an_unknown_subcommand_get_clear_numerics() {
    let server = Server::start_with("[limits]\nmonitor_max = 2\n");
    let mut c = Client::registered(server.irc_addr(), "watcher");
    c.send("MONITOR + a,b,c");
    let full = c.expect(|l| l.is(ERR_MONLISTFULL), TIMEOUT);
    assert_eq!(full.params[1..3], ["2", "c"], "{}", full.raw);
    c.send("MONITOR + *!*@127.0.0.1");
    c.expect(|l| l.is(ERR_ERRONEUSNICKNAME), TIMEOUT);
    c.send("MONITOR Q");
    let unknown = c.expect(|l| l.is(ERR_UNKNOWNERROR), TIMEOUT);
    assert_eq!(unknown.params[1..3], ["MONITOR", "Q"], "{}", unknown.raw);
    c.send("MONITOR +");
    c.expect(|l| l.is(ERR_NEEDMOREPARAMS), TIMEOUT);
    c.send("VERSION");
    let isupport: Vec<String> =
        c.collect_until(|l| l.is(RPL_ISUPPORT) && l.raw.contains("MONITOR="), TIMEOUT).pop().unwrap().params;
    assert!(isupport.contains(&"MONITOR=2".to_string()), "{isupport:?}");
}

#[test]
fn extended_monitor_passes_on_away_to_a_watcher_in_no_shared_channel() {
    let server = Server::start();
    let mut watcher = Client::connect(server.irc_addr());
    watcher.register_with_caps("watcher", &["extended-monitor", "away-notify"]);
    watcher.send("PART #lobby");
    watcher.send("MONITOR + bob");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    watcher.expect(|l| l.is(RPL_MONONLINE), TIMEOUT);
    bob.send("AWAY :lunch");
    let away = watcher.expect(|l| l.is("AWAY"), TIMEOUT);
    assert_eq!((away.nick(), away.last()), ("bob", "lunch"));
}
