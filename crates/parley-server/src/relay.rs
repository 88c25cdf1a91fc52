//! A line relayed from one user to many: serialised once per distinct
//! capability set among the recipients; each recipient's queue copies it.
//!
//! Recipients differ only in whether they get the `time` tag (server-time),
//! the `msgid` plus client-only tags (message-tags) and the sender's
//! `account` tag (account-tag), so there are at most eight encodings of any
//! relayed line: the plain line, built at once, and up to seven tagged
//! ones, each built on first use as a tag prefix followed by the plain line.

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
    /// When it was sent, Unix milliseconds: read from the clock on first
    /// use, so the `time` tag and history agree.
    at: OnceCell<i64>,
    msgid: u64,
    /// The `msgid` given on another cluster node, for a line relayed from
    /// there: every node shows the same id.
    foreign_msgid: Option<Box<str>>,
    client_tags: Vec<Tag>,
    /// The sender's account, for recipients with account-tag.
    account: Option<Box<str>>,
    /// Indexed by the slot bits of [`Relay::bytes_for`], less one.
    tagged: [OnceCell<BytesMut>; 7],
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
        Relay {
            plain,
            tags_only,
            time: OnceCell::new(),
            at: OnceCell::new(),
            msgid,
            foreign_msgid: None,
            client_tags,
            account: None,
            tagged: Default::default(),
        }
    }

    /// A line relayed from another cluster node: its plain bytes (CR LF
    /// included) and the msgid and time it was given there.
    /// (`origin`: none for membership lines, which get an id here).
    pub fn from_cluster(plain: &[u8], client_tags: Vec<Tag>, origin: Option<(&str, i64)>) -> Relay {
        let tags_only = plain.split(|b| *b == b' ').nth(1) == Some(b"TAGMSG");
        let mut relay = Relay::with_line(BytesMut::from(plain), tags_only, client_tags);
        if let Some((msgid, at_millis)) = origin {
            relay.foreign_msgid = Some(msgid.into());
            let _ = relay.at.set(at_millis);
        }
        relay
    }

    /// The line without tags, CR LF included (what a cluster node passes on).
    pub fn plain_line(&self) -> &[u8] {
        &self.plain
    }

    /// The same as text, for the cluster's JSON (lines are UTF-8 here).
    pub fn plain_text(&self) -> String {
        String::from_utf8_lossy(&self.plain).into_owned()
    }

    /// The sender's account, if the line carries one.
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }

    /// Tags the line with the sender's account for clients with account-tag.
    pub fn with_account(mut self, account: Option<&str>) -> Relay {
        self.account = account.map(Into::into);
        self
    }

    /// The encoding for a recipient with capability bits `caps`.
    pub fn bytes_for(&self, caps: u32) -> &[u8] {
        let with_time = caps & caps::SERVER_TIME != 0;
        let with_tags = caps & caps::MESSAGE_TAGS != 0;
        let with_account = caps & caps::ACCOUNT_TAG != 0 && self.account.is_some();
        let slot = usize::from(with_time) | (usize::from(with_tags) << 1) | (usize::from(with_account) << 2);
        if slot == 0 {
            return &self.plain;
        }
        self.tagged[slot - 1].get_or_init(|| {
            let mut tags = Vec::new();
            if with_tags {
                tags.push(Tag { key: "msgid".into(), value: Some(self.msgid()) });
                tags.extend(self.client_tags.iter().cloned());
            }
            if let Some(account) = self.account.as_deref().filter(|_| with_account) {
                tags.push(Tag { key: "account".into(), value: Some(account.to_string()) });
            }
            if with_time {
                let time = self.time.get_or_init(|| crate::clock::tag_for_millis(self.at_millis())).clone();
                tags.push(Tag { key: "time".into(), value: Some(time) });
            }
            let mut line = BytesMut::new();
            write_tags(&tags, &mut line);
            line.extend_from_slice(&self.plain);
            line
        })
    }

    /// Its `msgid` tag's value: unique across restarts (the start time
    /// in seconds, then a counter).
    pub fn msgid(&self) -> String {
        if let Some(id) = &self.foreign_msgid {
            return id.to_string();
        }
        let start = START.get_or_init(|| OffsetDateTime::now_utc().unix_timestamp());
        format!("{start:x}-{:x}", self.msgid)
    }

    /// When it was sent (its `time` tag), Unix milliseconds.
    pub fn at_millis(&self) -> i64 {
        *self.at.get_or_init(|| crate::clock::unix_millis(std::time::SystemTime::now()))
    }

    /// The sender's client-only (`+`) tags.
    pub fn client_tags(&self) -> &[Tag] {
        &self.client_tags
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

    #[test]
    fn the_account_tag_goes_only_to_those_who_asked() {
        let r = Relay::line("n!u@h", "PRIVMSG", &["#a", "hi"], Vec::new()).with_account(Some("alice"));
        assert_eq!(r.bytes_for(caps::ACCOUNT_TAG), b"@account=alice :n!u@h PRIVMSG #a hi\r\n");
        assert_eq!(r.bytes_for(caps::MESSAGE_TAGS), r.bytes_for(caps::MESSAGE_TAGS), "built once");
        assert!(!std::str::from_utf8(r.bytes_for(caps::MESSAGE_TAGS)).unwrap().contains("account="));
        let anonymous = Relay::line("n!u@h", "PRIVMSG", &["#a", "hi"], Vec::new());
        assert_eq!(anonymous.bytes_for(caps::ACCOUNT_TAG), anonymous.bytes_for(0), "no account, no tag");
    }
}
