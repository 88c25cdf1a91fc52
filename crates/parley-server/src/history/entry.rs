//! One message waiting to be written: every field in one string, so that
//! recording costs a single allocation on the message path.

/// What kind of line a stored message is (the `kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Privmsg = 0,
    Notice = 1,
    Tagmsg = 2,
    Topic = 3,
}

impl Kind {
    pub fn from_command(command: &str) -> Kind {
        match command {
            "NOTICE" => Kind::Notice,
            "TAGMSG" => Kind::Tagmsg,
            "TOPIC" => Kind::Topic,
            _ => Kind::Privmsg,
        }
    }

    pub fn from_code(code: i64) -> Kind {
        match code {
            1 => Kind::Notice,
            2 => Kind::Tagmsg,
            3 => Kind::Topic,
            _ => Kind::Privmsg,
        }
    }

    pub fn command(self) -> &'static str {
        match self {
            Kind::Privmsg => "PRIVMSG",
            Kind::Notice => "NOTICE",
            Kind::Tagmsg => "TAGMSG",
            Kind::Topic => "TOPIC",
        }
    }

    /// Only clients with `draft/event-playback` get these replayed.
    pub fn is_event(self) -> bool {
        matches!(self, Kind::Tagmsg | Kind::Topic)
    }
}

/// The fields, in the order they sit in [`Entry`]'s string.
#[derive(Clone, Copy)]
pub enum Field {
    Target = 0,
    Msgid,
    Sender,
    Account,
    Shown,
    Tags,
    Text,
}

const FIELDS: usize = 7;

/// A message for the writer.
#[derive(Clone)]
pub struct Entry {
    pub at: i64,
    pub kind: Kind,
    has_account: bool,
    ends: [u32; FIELDS],
    buf: String,
}

/// The parts of a message as the message path has them.
pub struct Parts<'a> {
    /// The history target key (casefolded channel, or conversation key).
    pub target: &'a str,
    pub msgid: &'a str,
    pub sender: &'a str,
    pub account: Option<&'a str>,
    /// The target as the line names it.
    pub shown: &'a str,
    /// Client-only tags, escaped as on the wire (`+a=b;+c`), or empty.
    pub tags: &'a str,
    pub text: &'a str,
}

impl Entry {
    pub fn new(at: i64, kind: Kind, p: &Parts<'_>) -> Entry {
        let fields = [p.target, p.msgid, p.sender, p.account.unwrap_or(""), p.shown, p.tags, p.text];
        let mut buf = String::with_capacity(fields.iter().map(|f| f.len()).sum());
        let mut ends = [0u32; FIELDS];
        for (end, field) in ends.iter_mut().zip(fields) {
            buf.push_str(field);
            *end = buf.len() as u32;
        }
        Entry { at, kind, has_account: p.account.is_some(), ends, buf }
    }

    pub fn get(&self, field: Field) -> &str {
        let i = field as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.buf[start..self.ends[i] as usize]
    }

    pub fn account(&self) -> Option<&str> {
        self.has_account.then(|| self.get(Field::Account))
    }
}

/// Client-only tags as they are written on the wire, without the `@`.
pub fn escape_tags(tags: &[parley_proto::Tag]) -> String {
    if tags.is_empty() {
        return String::new();
    }
    let mut out = bytes::BytesMut::new();
    parley_proto::write_tags(tags, &mut out);
    let text = String::from_utf8_lossy(&out);
    text.trim_start_matches('@').trim_end_matches(' ').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_gives_back_each_field() {
        let parts = Parts {
            target: "#a",
            msgid: "m1",
            sender: "n!u@h",
            account: None,
            shown: "#A",
            tags: "+x=1",
            text: "hello",
        };
        let e = Entry::new(5, Kind::Privmsg, &parts);
        assert_eq!(e.get(Field::Target), "#a");
        assert_eq!(e.get(Field::Sender), "n!u@h");
        assert_eq!(e.account(), None);
        assert_eq!(e.get(Field::Shown), "#A");
        assert_eq!(e.get(Field::Text), "hello");
        let e = Entry::new(5, Kind::Notice, &Parts { account: Some(""), ..parts });
        assert_eq!(e.account(), Some(""));
    }

    #[test]
    fn client_tags_are_escaped_as_on_the_wire() {
        let tags = [parley_proto::Tag { key: "+a".into(), value: Some("x y".into()) }];
        assert_eq!(escape_tags(&tags), "+a=x\\sy");
        assert_eq!(escape_tags(&[]), "");
    }
}
