//! A line relayed from one user to many: serialised once per distinct
//! capability set among the recipients; each recipient's queue copies it.
//!
//! Recipients differ only in whether they get the `time` tag (server-time)
//! and the `msgid` plus client-only tags (message-tags), so there are at
//! most four encodings of any relayed line, each built on first use.

use crate::caps;
use bytes::BytesMut;
use parley_proto::{Message, Tag};
use std::cell::OnceCell;
use std::sync::atomic::{AtomicU64, Ordering};
use time::OffsetDateTime;

static MSGID: AtomicU64 = AtomicU64::new(1);
/// Server start time, so message ids stay unique across restarts.
static START: std::sync::OnceLock<i64> = std::sync::OnceLock::new();

/// A relayed message and its lazily built encodings.
pub struct Relay {
    msg: Message,
    /// Formatted only if some recipient wants it (most clients of a plain
    /// lobby negotiate no tags at all).
    time: OnceCell<String>,
    msgid: u64,
    client_tags: Vec<Tag>,
    encoded: [OnceCell<BytesMut>; 4],
}

impl Relay {
    /// `msg` must carry no tags; `client_tags` are the sender's `+` tags.
    pub fn new(msg: Message, client_tags: Vec<Tag>) -> Relay {
        let msgid = MSGID.fetch_add(1, Ordering::Relaxed);
        Relay { msg, time: OnceCell::new(), msgid, client_tags, encoded: Default::default() }
    }

    /// The encoding for a recipient with capability bits `caps`.
    pub fn bytes_for(&self, caps: u32) -> &[u8] {
        let with_time = caps & caps::SERVER_TIME != 0;
        let with_tags = caps & caps::MESSAGE_TAGS != 0;
        let slot = usize::from(with_time) | (usize::from(with_tags) << 1);
        self.encoded[slot].get_or_init(|| {
            if slot == 0 {
                return self.msg.to_bytes();
            }
            let mut tags = Vec::new();
            if with_tags {
                let start = START.get_or_init(|| OffsetDateTime::now_utc().unix_timestamp());
                tags.push(Tag { key: "msgid".into(), value: Some(format!("{start:x}-{:x}", self.msgid)) });
                tags.extend(self.client_tags.iter().cloned());
            }
            if with_time {
                let time = self.time.get_or_init(crate::session::now_tag).clone();
                tags.push(Tag { key: "time".into(), value: Some(time) });
            }
            self.msg.to_bytes_with_tags(&tags)
        })
    }

    /// True when the relayed message has nothing for recipients without
    /// message-tags (a TAGMSG).
    pub fn tags_only(&self) -> bool {
        self.msg.command == "TAGMSG"
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
    }
}
