//! How incoming IRC messages look on screen: one line each, with the time
//! and the sender. Pure functions over `Message`, so the wording is tested
//! without a server. Text from other people is cleaned of control and
//! escape characters here, so nobody can repaint someone else's terminal.

use crate::irc::{reply_error, source_nick};
use parley_proto::{irc_eq, Message};
use std::sync::OnceLock;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

static LOCAL_OFFSET: OnceLock<UtcOffset> = OnceLock::new();

/// Records the local time zone. Must run while the process has one thread:
/// the `time` crate refuses to read it later (the C library call is not
/// thread-safe).
pub fn init_local_offset() {
    let offset = UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC);
    let _ = LOCAL_OFFSET.set(offset);
}

fn local_offset() -> UtcOffset {
    *LOCAL_OFFSET.get().unwrap_or(&UtcOffset::UTC)
}

/// `HH:MM` of the message's `time` tag (server-time), or of now.
pub fn clock(msg: Option<&Message>) -> String {
    let at = msg
        .and_then(|m| m.tag("time"))
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .unwrap_or_else(OffsetDateTime::now_utc)
        .to_offset(local_offset());
    format!("{:02}:{:02}", at.hour(), at.minute())
}

/// The line to show for an incoming message, or `None` for protocol chatter
/// nobody needs to see. `me` is our nick, `lobby` the lobby channel.
pub fn describe(msg: &Message, me: &str, lobby: &str) -> Option<String> {
    let time = clock(Some(msg));
    let from = source_nick(msg).map(clean).unwrap_or_default();
    let p = |i: usize| msg.param(i).map(clean).unwrap_or_default();
    let text = match msg.command.as_str() {
        "PRIVMSG" | "NOTICE" => {
            let target = msg.param(0).unwrap_or("");
            let body = msg.param(1).unwrap_or("");
            let is_notice = msg.command == "NOTICE";
            let server = msg.source.as_deref().is_some_and(|s| !s.contains('!'));
            let (open, close) = if is_notice { ("-", "-") } else { ("<", ">") };
            let where_ = if irc_eq(target, me) {
                if server {
                    String::new()
                } else {
                    "[private] ".to_string()
                }
            } else if irc_eq(target, lobby) {
                String::new()
            } else {
                format!("{} ", clean(target))
            };
            if let Some(action) = body.strip_prefix("\u{1}ACTION ").map(|a| a.trim_end_matches('\u{1}')) {
                format!("{where_}* {from} {}", clean(action))
            } else if body.starts_with('\u{1}') {
                return None; // other CTCP requests
            } else if server {
                format!("{where_}-{from}- {}", clean(body))
            } else {
                format!("{where_}{open}{from}{close} {}", clean(body))
            }
        }
        "JOIN" if irc_eq(&from, me) => format!("--> you joined {}", p(0)),
        "JOIN" => format!("--> {from} joined {}", p(0)),
        "PART" => match msg.param(1) {
            Some(r) if !r.is_empty() => format!("<-- {from} left {} ({})", p(0), clean(r)),
            _ => format!("<-- {from} left {}", p(0)),
        },
        "QUIT" => match msg.param(0) {
            Some(r) if !r.is_empty() => format!("<-- {from} quit ({})", clean(r)),
            _ => format!("<-- {from} quit"),
        },
        // The session follows its own change first, so `me` may be the new nick.
        "NICK" if irc_eq(&from, me) || irc_eq(&p(0), me) => format!("You are now known as {}", p(0)),
        "NICK" => format!("{from} is now known as {}", p(0)),
        "KICK" => format!("<-- {} was kicked from {} by {from} ({})", p(1), p(0), p(2)),
        "TOPIC" => format!("{from} set the topic of {}: {}", p(0), p(1)),
        "INVITE" => format!("{from} invites you to {}", p(1)),
        "KILL" => format!("You were killed by {from}: {}", p(1)),
        // The lobby replay when we join: earlier messages, in a batch.
        "BATCH" if msg.param(0).is_some_and(|r| r.starts_with('+')) && msg.param(1) == Some("chathistory") => {
            format!("--- earlier in {} ---", p(2))
        }
        "BATCH" if msg.param(0).is_some_and(|r| r.starts_with('-')) => "--- now ---".to_string(),
        "BATCH" => return None,
        "FAIL" | "WARN" | "NOTE" => format!("{}: {}", msg.command, clean(msg.params.last().map_or("", |s| s))),
        _ => {
            let e = reply_error(msg)?;
            format!("! {}", clean(&e.to_string()))
        }
    };
    Some(format!("[{time}] {text}"))
}

/// Removes control characters (including ESC) and IRC formatting codes.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{3}' {
            // Colour: ^C then up to two digits, optionally ,two digits.
            for _ in 0..2 {
                if chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                    chars.next();
                }
            }
            let mut look = chars.clone();
            if look.next() == Some(',') && look.peek().is_some_and(|d| d.is_ascii_digit()) {
                chars.next();
                for _ in 0..2 {
                    if chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                        chars.next();
                    }
                }
            }
            continue;
        }
        if c == '\t' {
            out.push(' ');
        } else if !c.is_control() && !is_bidi_control(c) {
            out.push(c);
        }
    }
    out
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A byte count for people: `1.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(line: &str) -> Option<String> {
        let msg = Message::parse(&format!("@time=2024-05-01T12:34:56.000Z {line}")).unwrap();
        // Strip the clock so tests do not depend on the time zone.
        describe(&msg, "me", "#lobby").map(|s| s.split_once("] ").unwrap().1.to_string())
    }

    #[test]
    fn lobby_and_private_messages() {
        assert_eq!(d(":alice!a@h PRIVMSG #lobby :hello").unwrap(), "<alice> hello");
        assert_eq!(d(":srv BATCH +1 chathistory #lobby").unwrap(), "--- earlier in #lobby ---");
        assert_eq!(d(":srv BATCH -1").unwrap(), "--- now ---");
        assert_eq!(d(":srv BATCH +2 labeled-response"), None);
        assert_eq!(d(":alice!a@h PRIVMSG me :psst").unwrap(), "[private] <alice> psst");
        assert_eq!(d(":alice!a@h PRIVMSG #other :hi").unwrap(), "#other <alice> hi");
        assert_eq!(d(":alice!a@h PRIVMSG #lobby :\u{1}ACTION waves\u{1}").unwrap(), "* alice waves");
        assert_eq!(d(":alice!a@h PRIVMSG me :\u{1}VERSION\u{1}"), None);
    }

    #[test]
    fn server_notices_and_membership() {
        assert_eq!(
            d(":parley.local NOTICE #lobby :bob uploaded a.txt (3 bytes)").unwrap(),
            "-parley.local- bob uploaded a.txt (3 bytes)"
        );
        assert_eq!(
            d(":parley.local NOTICE me :*** Server shutting down").unwrap(),
            "-parley.local- *** Server shutting down"
        );
        assert_eq!(d(":bob!b@h JOIN #lobby").unwrap(), "--> bob joined #lobby");
        assert_eq!(d(":bob!b@h QUIT :Quit: bye").unwrap(), "<-- bob quit (Quit: bye)");
        assert_eq!(d(":bob!b@h NICK robert").unwrap(), "bob is now known as robert");
    }

    #[test]
    fn errors_show_and_chatter_does_not() {
        assert_eq!(d(":srv 401 me bob :No such nick/channel").unwrap(), "! bob: No such nick/channel");
        assert_eq!(d(":srv 372 me :- motd"), None);
        assert_eq!(d(":me!m@h MODE me +o"), None);
        assert_eq!(d(":srv PONG srv tok"), None);
    }

    #[test]
    fn escape_sequences_and_formatting_are_removed() {
        assert_eq!(clean("a\u{1b}[2Jb"), "a[2Jb");
        assert_eq!(clean("\u{3}04,12red\u{3} \u{2}bold\u{2}"), "red bold");
        assert_eq!(clean("x\u{202E}y\rz"), "xyz");
    }

    #[test]
    fn server_time_is_used() {
        let msg = Message::parse("@time=2024-05-01T12:34:56.000Z :a!b@c PRIVMSG #lobby :x").unwrap();
        let expected = OffsetDateTime::parse("2024-05-01T12:34:56Z", &Rfc3339).unwrap().to_offset(local_offset());
        assert_eq!(clock(Some(&msg)), format!("{:02}:{:02}", expected.hour(), expected.minute()));
    }

    #[test]
    fn byte_counts_read_well() {
        assert_eq!(human_bytes(5), "5 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
