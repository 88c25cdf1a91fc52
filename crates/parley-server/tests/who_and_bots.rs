//! WHOX (`WHO <mask> %fields[,token]` answered with 354) and bot mode
//! (`+B`: WHOIS 335, the WHO flag `B`, the `bot` tag on its messages), as
//! clients see them over a socket.

use parley_testkit::numeric::*;
use parley_testkit::{Client, Line, Server, TIMEOUT};

const RPL_WHOISBOT: &str = "335";
const RPL_WHOSPCRPL: &str = "354";

fn isupport(burst: &[Line]) -> Vec<String> {
    burst.iter().filter(|l| l.is(RPL_ISUPPORT)).flat_map(|l| l.params[1..l.params.len() - 1].to_vec()).collect()
}

#[test]
fn whox_answers_with_the_fields_asked_for_in_their_fixed_order() {
    let server = Server::start();
    let mut alice = Client::connect(server.irc_addr());
    let burst = alice.register("alice");
    let tokens = isupport(&burst);
    for wanted in ["WHOX", "BOT=B", "STATUSMSG=@+", "EXCEPTS", "INVEX", "ELIST=CMNTU", "CHANMODES=beI,k,l,imnpst"] {
        assert!(tokens.iter().any(|t| t == wanted), "ISUPPORT lacks {wanted}: {tokens:?}");
    }
    let mut bob = Client::registered(server.irc_addr(), "bob");
    bob.send("AWAY :out");
    bob.sync();
    alice.sync();

    alice.send("WHO bob %rahnut,7");
    let lines = alice.collect_until(|l| l.is(RPL_ENDOFWHO), TIMEOUT);
    assert_eq!(lines.len(), 2, "one 354 and the end:\n{}", parley_testkit::show(&lines));
    assert_eq!(lines[0].command, RPL_WHOSPCRPL);
    assert_eq!(lines[0].params, ["alice", "7", "~bob", "127.0.0.1", "bob", "0", "Test user bob"]);

    alice.send("WHO #lobby %nf");
    let lines = alice.collect_until(|l| l.is(RPL_ENDOFWHO), TIMEOUT);
    let mut rows: Vec<Vec<String>> = lines.iter().filter(|l| l.is(RPL_WHOSPCRPL)).map(|l| l.params.clone()).collect();
    rows.sort();
    assert_eq!(rows, [vec!["alice", "alice", "H"], vec!["alice", "bob", "G"]]);
}

#[test]
fn a_bot_is_flagged_in_whois_and_who_and_its_messages_are_tagged() {
    let server = Server::start();
    let mut bot = Client::registered(server.irc_addr(), "bot");
    let mut tagged = Client::connect(server.irc_addr());
    tagged.register_with_caps("tagged", &["message-tags"]);
    let mut plain = Client::registered(server.irc_addr(), "plain");

    bot.send("MODE bot +B");
    let mode = bot.expect(|l| l.is("MODE"), TIMEOUT);
    assert_eq!(mode.params, ["bot", "+B"]);

    plain.send("WHOIS bot");
    let whois = plain.collect_until(|l| l.is(RPL_ENDOFWHOIS), TIMEOUT);
    let flagged: Vec<&Line> = whois.iter().filter(|l| l.is(RPL_WHOISBOT)).collect();
    assert_eq!(flagged.len(), 1, "{}", parley_testkit::show(&whois));
    assert_eq!(flagged[0].params[..2], ["plain", "bot"]);
    plain.send("WHO bot");
    let row = plain.expect(|l| l.is(RPL_WHOREPLY), TIMEOUT);
    assert_eq!(row.param(6), "HB");

    tagged.sync();
    plain.sync();
    bot.send("PRIVMSG #lobby :beep boop");
    let seen = tagged.expect(|l| l.is("PRIVMSG"), TIMEOUT);
    assert_eq!(seen.tag("bot"), Some(""), "{}", seen.raw);
    let seen = plain.expect(|l| l.is("PRIVMSG"), TIMEOUT);
    assert!(seen.tags.is_empty(), "no tags without message-tags: {}", seen.raw);
}
