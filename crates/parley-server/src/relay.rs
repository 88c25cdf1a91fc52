//! A line relayed from one user to many: serialised once per distinct
//! capability set among the recipients; each recipient's queue copies it.
//!
//! Recipients differ only in whether they get the `time` tag (server-time)
//! and the `msgid` plus client-only tags (message-tags), so there are at
//! most four encodings of any relayed line: the plain line, built at once,
//! and up to three tagged ones, each built on first use as a tag prefix
//! followed by the plain line.

use crate::caps;
use bytes::BytesMut;
use parley_proto::{write_line, write_tags, Message, Tag};
use std::cell::OnceCell;
use std::sync::atomic::{AtomicU64, Ordering};
use time::OffsetDateTime;

static MSGID: AtomicU64 = AtomicU64::new(1);
/// Server start time, so message ids stay unique across restarts.
static START: std::sync::OnceLock<i64> = std::sync::OnceLock::new();

/// A relayed message and its lazily built encodings.
pub struct Relay {
    /// The line without tags, CR LF included.
    plain: BytesMut,
    tags_only: bool,
    /// Formatted only if some recipient wants it (most clients of a plain
    /// lobby negotiate no tags at all).
    time: OnceCell<String>,
    msgid: u64,
    client_tags: Vec<Tag>,
    /// With time; with msgid and client tags; with both.
    tagged: [OnceCell<BytesMut>; 3],
}

impl Relay {
    /// `msg` must carry no tags; `client_tags` are the sender's `+` tags.
    pub fn new(msg: Message, client_tags: Vec<Tag>) -> Relay {
        let tags_only = msg.command == "TAGMSG";
        Relay::with_line(msg.to_bytes(), tags_only, client_tags)
    }

    /// A relayed line from borrowed parts, without assembling a `Message`
    /// (the message path: PRIVMSG and NOTICE).
    pub fn line(source: &str, command: &str, params: &[&str], client_tags: Vec<Tag>) -> Relay {
        let len = source.len() + command.len() + params.iter().map(|p| p.len() + 2).sum::<usize>() + 4;
        let mut plain = BytesMut::with_capacity(len);
        write_line(Some(source), command, params.iter().copied(), &mut plain);
        Relay::with_line(plain, command == "TAGMSG", client_tags)
    }

    fn with_line(plain: BytesMut, tags_only: bool, client_tags: Vec<Tag>) -> Relay {
        let msgid = MSGID.fetch_add(1, Ordering::Relaxed);
        Relay { plain, tags_only, time: OnceCell::new(), msgid, client_tags, tagged: Default::default() }
    }

    /// The encoding for a recipient with capability bits `caps`.
    pub fn bytes_for(&self, caps: u32) -> &[u8] {
        let with_time = caps & caps::SERVER_TIME != 0;
        let with_tags = caps & caps::MESSAGE_TAGS != 0;
        let slot = usize::from(with_time) | (usize::from(with_tags) << 1);
        if slot == 0 {
            return &self.plain;
        }
        self.tagged[slot - 1].get_or_init(|| {
            let mut tags = Vec::new();
            if with_tags {
                let start = START.get_or_init(|| OffsetDateTime::now_utc().unix_timestamp());
                tags.push(Tag { key: "msgid".into(), value: Some(format!("{start:x}-{:x}", self.msgid)) });
                tags.extend(self.client_tags.iter().cloned());
            }
            if with_time {
                let time = self.time.get_or_init(crate::clock::now_tag).clone();
                tags.push(Tag { key: "time".into(), value: Some(time) });
            }
            let mut line = BytesMut::new();
            write_tags(&tags, &mut line);
            line.extend_from_slice(&self.plain);
            line
        })
    }

    /// True when the relayed message has nothing for recipients without
    /// message-tags (a TAGMSG).
    pub fn tags_only(&self) -> bool {
        self.tags_only
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cap_set_gets_its_own_encoding_built_once() {
        let m = Message::new("PRIVMSG", vec!["#a".into(), "hi there".into()]).with_source("n!u@h");
        let r = Relay::new(m, vec![Tag { key: "+react".into(), value: Some("x".into()) }]);
        let plain = r.bytes_for(0);
        assert_eq!(plain, b":n!u@h PRIVMSG #a :hi there\r\n");
        let timed = r.bytes_for(caps::SERVER_TIME);
        assert!(timed.starts_with(b"@time="));
        let tagged = r.bytes_for(caps::MESSAGE_TAGS | caps::SERVER_TIME);
        let text = std::str::from_utf8(tagged).unwrap();
        assert!(text.contains("msgid=") && text.contains("+react=x") && text.contains("time="), "{text}");
        // Same allocation the second time: serialised once.
        assert_eq!(r.bytes_for(0).as_ptr(), plain.as_ptr());
        assert_eq!(r.bytes_for(caps::SERVER_TIME).as_ptr(), timed.as_ptr());
        // Built from parts, the same bytes as from a message.
        let parts = Relay::line("n!u@h", "PRIVMSG", &["#a", "hi there"], Vec::new());
        assert_eq!(parts.bytes_for(0), plain);
        assert!(!parts.tags_only() && Relay::line("n!u@h", "TAGMSG", &["#a"], Vec::new()).tags_only());
    }
}
