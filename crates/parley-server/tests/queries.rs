//! Questions about users and the server (WHO, WHOIS, ISON, USERHOST, AWAY,
//! LUSERS, MOTD, HELP, LINKS), PING/PONG, SETNAME, and QUIT as others see
//! it.

use parley_testkit::numeric::*;
use parley_testkit::{Client, Line, Server, TIMEOUT};

fn position(lines: &[Line], command: &str) -> usize {
    lines
        .iter()
        .position(|l| l.is(command))
        .unwrap_or_else(|| panic!("no {command} in the registration burst:\n{}", parley_testkit::show(lines)))
}

#[test]
fn registration_burst_has_welcome_isupport_lusers_and_motd_in_order() {
    let server = Server::start();
    let _first = Client::registered(server.irc_addr(), "first");
    let mut c = Client::connect(server.irc_addr());
    let burst = c.register("second");

    let order = [
        RPL_WELCOME,
        "002",
        "003",
        "004",
        RPL_ISUPPORT,
        RPL_LUSERCLIENT,
        RPL_LUSERME,
        RPL_MOTDSTART,
        RPL_MOTD,
        RPL_ENDOFMOTD,
    ];
    let positions: Vec<usize> = order.iter().map(|code| position(&burst, code)).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "burst out of order: {order:?} at {positions:?}");
    assert!(position(&burst, RPL_ENDOFMOTD) < position(&burst, "JOIN"), "auto-join before the end of the MOTD");

    let tokens: Vec<&str> = burst
        .iter()
        .filter(|l| l.is(RPL_ISUPPORT))
        .flat_map(|l| l.params[1..l.params.len() - 1].iter().map(String::as_str))
        .collect();
    for wanted in ["CHANTYPES=#", "PREFIX=(ov)@+", "NETWORK=Parley", "UTF8ONLY"] {
        assert!(tokens.contains(&wanted), "ISUPPORT lacks {wanted}: {tokens:?}");
    }
    let lusers = &burst[position(&burst, RPL_LUSERCLIENT)];
    assert!(lusers.last().contains("There are 2 users"), "{}", lusers.raw);
    let motd = &burst[position(&burst, RPL_MOTD)];
    assert!(motd.last().contains("Welcome to Parley"), "{}", motd.raw);

    // Both can be asked for again.
    c.send("LUSERS");
    c.expect(|l| l.is(RPL_LUSERME), TIMEOUT);
    c.send("MOTD");
    c.expect(|l| l.is(RPL_ENDOFMOTD), TIMEOUT);
}

#[test]
fn configured_motd_is_sent_line_by_line() {
    let server = Server::start_with("motd = [\"first line\", \"second line\"]\n");
    let mut c = Client::connect(server.irc_addr());
    let burst = c.register("reader");
    let motd: Vec<&str> = burst.iter().filter(|l| l.is(RPL_MOTD)).map(|l| l.last()).collect();
    assert_eq!(motd, ["- first line", "- second line"]);
}

#[test]
fn ping_gets_pong_with_the_same_token() {
    let server = Server::start();
    let mut c = Client::registered(server.irc_addr(), "pinger");
    c.send("PING :token with spaces 123");
    let pong = c.expect(|l| l.is("PONG"), TIMEOUT);
    assert_eq!(pong.source.as_deref(), Some("parley.local"));
    assert_eq!(pong.params, ["parley.local", "token with spaces 123"]);
}

#[test]
fn who_lists_channel_members_and_whois_describes_a_user() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let _bob = Client::registered(server.irc_addr(), "bob");

    alice.send("WHO #lobby");
    let lines = alice.collect_until(|l| l.is(RPL_ENDOFWHO), TIMEOUT);
    let mut rows: Vec<(String, String, String, String)> = lines
        .iter()
        .filter(|l| l.is(RPL_WHOREPLY))
        .map(|l| (l.param(5).to_string(), l.param(2).to_string(), l.param(3).to_string(), l.param(6).to_string()))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("alice".into(), "~alice".into(), "127.0.0.1".into(), "H".into()),
            ("bob".into(), "~bob".into(), "127.0.0.1".into(), "H".into())
        ]
    );

    alice.send("WHOIS bob");
    let lines = alice.collect_until(|l| l.is(RPL_ENDOFWHOIS), TIMEOUT);
    let user = lines.iter().find(|l| l.is(RPL_WHOISUSER)).expect("311");
    assert_eq!(user.params[1..5], ["bob", "~bob", "127.0.0.1", "*"]);
    assert_eq!(user.last(), "Test user bob");
    let channels = lines.iter().find(|l| l.is(RPL_WHOISCHANNELS)).expect("319");
    assert!(channels.last().split(' ').any(|c| c.trim_start_matches(['@', '+']) == "#lobby"), "{}", channels.raw);
    assert!(lines.iter().any(|l| l.is(RPL_WHOISSERVER)), "no 312");
    assert!(lines.iter().any(|l| l.is(RPL_WHOISIDLE)), "no 317");
    assert!(!lines.iter().any(|l| l.is(RPL_WHOISOPERATOR)), "bob is no operator");

    alice.send("WHOIS nobody");
    alice.expect(|l| l.is(ERR_NOSUCHNICK), TIMEOUT);
    alice.expect(|l| l.is(RPL_ENDOFWHOIS), TIMEOUT);
}

#[test]
fn ison_and_userhost_report_who_is_online() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let _bob = Client::registered(server.irc_addr(), "bob");
    alice.send("ISON bob nobody ALICE");
    let ison = alice.expect(|l| l.is(RPL_ISON), TIMEOUT);
    let mut online: Vec<&str> = ison.last().split(' ').filter(|s| !s.is_empty()).collect();
    online.sort();
    assert_eq!(online, ["alice", "bob"]);

    alice.send("USERHOST bob nobody");
    let userhost = alice.expect(|l| l.is(RPL_USERHOST), TIMEOUT);
    assert_eq!(userhost.last().trim(), "bob=+~bob@127.0.0.1");
}

#[test]
fn messaging_an_away_user_gets_301_with_the_away_text_until_they_return() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    bob.send("AWAY :out to lunch");
    bob.expect(|l| l.is(RPL_NOWAWAY), TIMEOUT);

    alice.send("PRIVMSG bob :are you there?");
    let away = alice.expect(|l| l.is(RPL_AWAY), TIMEOUT);
    assert_eq!(away.params, ["alice", "bob", "out to lunch"]);
    // The message is still delivered.
    bob.expect(|l| l.is_from("PRIVMSG", "alice"), TIMEOUT);
    alice.send("USERHOST bob");
    let userhost = alice.expect(|l| l.is(RPL_USERHOST), TIMEOUT);
    assert_eq!(userhost.last().trim(), "bob=-~bob@127.0.0.1");

    bob.send("AWAY");
    bob.expect(|l| l.is(RPL_UNAWAY), TIMEOUT);
    alice.send("PRIVMSG bob :back?");
    alice.expect_none(|l| l.is(RPL_AWAY), "301 after bob came back");
}

#[test]
fn quit_reason_is_visible_to_the_others() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let mut bob = Client::registered(server.irc_addr(), "bob");
    bob.send("QUIT :gone fishing");
    let lines = bob.expect_closed(TIMEOUT);
    let error = lines.last().expect("an ERROR before the close");
    assert!(error.is("ERROR") && error.last().contains("Quit: gone fishing"), "{lines:?}");
    let quit = alice.expect(|l| l.is_from("QUIT", "bob"), TIMEOUT);
    assert_eq!(quit.source.as_deref(), Some("bob!~bob@127.0.0.1"));
    assert_eq!(quit.params, ["Quit: gone fishing"]);

    // A client that just disconnects is announced too.
    let mut carol = Client::registered(server.irc_addr(), "carol");
    carol.sync();
    drop(carol);
    let quit = alice.expect(|l| l.is_from("QUIT", "carol"), TIMEOUT);
    assert!(!quit.last().is_empty(), "{}", quit.raw);
}

#[test]
fn user_mode_i_is_set_shown_counted_and_only_for_yourself() {
    let server = Server::start();
    let mut alice = Client::registered(server.irc_addr(), "alice");
    let _bob = Client::registered(server.irc_addr(), "bob");
    alice.send("MODE alice +i");
    let set = alice.expect(|l| l.is("MODE") && l.param(0) == "alice", TIMEOUT);
    assert_eq!(set.last(), "+i");
    alice.send("MODE alice");
    assert_eq!(alice.expect(|l| l.is("221"), TIMEOUT).last(), "+i");
    alice.send("LUSERS");
    let count = alice.expect(|l| l.is("251"), TIMEOUT);
    assert!(count.last().contains("There are 1 users and 1 invisible"), "{}", count.last());
    alice.send("MODE bob +i");
    alice.expect(|l| l.is("502"), TIMEOUT);
    alice.send("MODE alice +o");
    alice.send("MODE alice -i");
    let unset = alice.expect(|l| l.is("MODE") && l.param(0) == "alice", TIMEOUT);
    assert_eq!(unset.last(), "-i", "+o is ignored without OPER; -i applies");
}

#[test]
fn help_answers_a_topic_in_704_705_706_and_an_unknown_one_with_524() {
    let server = Server::start();
    let mut c = Client::registered(server.irc_addr(), "reader");
    for command in ["HELP", "HELPOP"] {
        c.send(&format!("{command} monitor"));
        let lines = c.collect_until(|l| l.is("706"), TIMEOUT);
        let codes: Vec<&str> = lines.iter().map(|l| l.command.as_str()).collect();
        assert_eq!(codes, ["704", "705", "705", "706"], "{command}");
        assert!(lines.iter().all(|l| l.param(1) == "MONITOR"), "{}", parley_testkit::show(&lines));
        assert!(lines[0].last().starts_with("MONITOR + <nicks>"), "{}", lines[0].raw);
    }
    c.send("HELP");
    let index = c.collect_until(|l| l.is("706"), TIMEOUT);
    assert!(index.iter().any(|l| l.is("705") && l.last().contains("WHOIS")), "{}", parley_testkit::show(&index));
    c.send("HELP NOSUCHCOMMAND");
    let missing = c.expect(|l| l.is("524"), TIMEOUT);
    assert_eq!(missing.params[..2], ["reader", "NOSUCHCOMMAND"]);
}

#[test]
fn links_names_this_server_with_its_description() {
    let server = Server::start_with("description = \"Our own server\"\n");
    let mut c = Client::registered(server.irc_addr(), "reader");
    c.send("LINKS");
    let lines = c.collect_until(|l| l.is("365"), TIMEOUT);
    assert_eq!(lines.len(), 2, "{}", parley_testkit::show(&lines));
    assert_eq!(lines[0].params, ["reader", "parley.local", "parley.local", "0 Our own server"]);
    assert_eq!(lines[1].params[..2], ["reader", "*"]);
    c.send("WHOIS reader");
    let server_line = c.expect(|l| l.is(RPL_WHOISSERVER), TIMEOUT);
    assert_eq!(server_line.last(), "Our own server");
}

#[test]
fn setname_changes_the_realname_for_whois_and_tells_setname_peers() {
    let server = Server::start();
    let mut alice = Client::connect(server.irc_addr());
    alice.register_with_caps("alice", &["setname"]);
    let mut bob = Client::connect(server.irc_addr());
    bob.register_with_caps("bob", &["setname"]);
    let mut carol = Client::registered(server.irc_addr(), "carol");
    alice.sync();

    alice.send("SETNAME :Alice Liddell");
    let own = alice.expect(|l| l.is("SETNAME"), TIMEOUT);
    assert_eq!((own.nick(), own.last()), ("alice", "Alice Liddell"));
    let seen = bob.expect(|l| l.is("SETNAME"), TIMEOUT);
    assert_eq!((seen.nick(), seen.last()), ("alice", "Alice Liddell"));
    carol.expect_none(|l| l.is("SETNAME"), "SETNAME without the setname capability");
    carol.send("WHOIS alice");
    assert_eq!(carol.expect(|l| l.is(RPL_WHOISUSER), TIMEOUT).last(), "Alice Liddell");

    alice.send(&format!("SETNAME :{}", "x".repeat(101)));
    let fail = alice.expect(|l| l.is("FAIL"), TIMEOUT);
    assert_eq!(fail.params[..2], ["SETNAME", "INVALID_REALNAME"], "{}", fail.raw);
}
