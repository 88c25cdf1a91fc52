//! One IRC message: `[@tags] [:source] COMMAND [params...] [:trailing]`.
//!
//! Parsing follows the "Modern IRC Client Protocol" grammar and the IRCv3
//! message-tags escaping rules. Serialising is the exact inverse for every
//! message whose middle parameters are well formed (non-empty, no space, not
//! starting with `:`), which the property test in this module checks.

use bytes::{BufMut, BytesMut};
use smallvec::SmallVec;
use std::fmt;
use thiserror::Error;

/// A message tag. `value` is stored unescaped; `None` means no `=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: Option<String>,
}

/// An IRC message with owned parts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub tags: Vec<Tag>,
    pub source: Option<String>,
    pub command: String,
    pub params: Vec<String>,
}

/// Why a line is not an IRC message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("empty line")]
    Empty,
    #[error("no command after the tags or source")]
    NoCommand,
    #[error("command must be letters or a three-digit numeric")]
    BadCommand,
    #[error("a tag has an empty key")]
    EmptyTagKey,
    #[error("line contains NUL, CR or LF")]
    ForbiddenByte,
}

impl Message {
    /// A message with a command and parameters, no tags, no source.
    pub fn new<C: Into<String>>(command: C, params: Vec<String>) -> Self {
        Message { tags: Vec::new(), source: None, command: command.into(), params }
    }

    /// Sets the source (`nick!user@host` or a server name).
    pub fn with_source<S: Into<String>>(mut self, source: S) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Adds a tag.
    pub fn with_tag<K: Into<String>>(mut self, key: K, value: Option<String>) -> Self {
        self.tags.push(Tag { key: key.into(), value });
        self
    }

    /// The value of the tag `key`, if present (`Some("")` for a bare key).
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|t| t.key == key).map(|t| t.value.as_deref().unwrap_or(""))
    }

    /// Parameter `i`, if present.
    pub fn param(&self, i: usize) -> Option<&str> {
        self.params.get(i).map(String::as_str)
    }

    /// Parses one line (without its trailing CR LF; a trailing CR or LF is
    /// tolerated and dropped). The command is upper-cased.
    pub fn parse(line: &str) -> Result<Message, ParseError> {
        MessageRef::parse(line).map(|m| m.to_message())
    }

    /// A borrowed view, for code written against [`MessageRef`].
    pub fn borrowed(&self) -> MessageRef<'_> {
        MessageRef {
            tags: self.tags.clone(),
            source: self.source.as_deref(),
            command: &self.command,
            params: self.params.iter().map(String::as_str).collect(),
        }
    }

    /// Appends the wire form, including the final CR LF, to `buf`.
    pub fn write_to(&self, buf: &mut BytesMut) {
        buf.reserve(self.estimated_len());
        write_tags(&self.tags, buf);
        write_line(self.source.as_deref(), &self.command, self.params.iter().map(String::as_str), buf);
    }

    /// The wire form as a new buffer, including CR LF.
    pub fn to_bytes(&self) -> BytesMut {
        let mut buf = BytesMut::new();
        self.write_to(&mut buf);
        buf
    }

    fn estimated_len(&self) -> usize {
        let tags: usize =
            self.tags.iter().map(|t| t.key.len() + t.value.as_ref().map_or(0, |v| v.len() * 2 + 1) + 1).sum();
        let params: usize = self.params.iter().map(|p| p.len() + 2).sum();
        tags + 2 + self.source.as_ref().map_or(0, |s| s.len() + 2) + self.command.len() + params + 2
    }
}

/// An IRC message that borrows its text from the line it was parsed from.
/// A server's message path parses every line this way: with no tags and at
/// most eight parameters it allocates nothing, where [`Message`] takes an
/// allocation per part.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageRef<'a> {
    /// Unescaped, so owned (rare on the message path: no tags, no allocation).
    pub tags: Vec<Tag>,
    pub source: Option<&'a str>,
    /// As sent: letters in any case, or a three-digit numeric.
    pub command: &'a str,
    /// Inline up to eight (every common command), so parsing a line
    /// allocates nothing.
    pub params: SmallVec<[&'a str; 8]>,
}

impl<'a> MessageRef<'a> {
    /// Parses one line (without its trailing CR LF; a trailing CR or LF is
    /// tolerated and dropped). The command keeps the case it was sent in.
    pub fn parse(line: &'a str) -> Result<MessageRef<'a>, ParseError> {
        let line = line.trim_end_matches(['\r', '\n']);
        if memchr::memchr3(0, b'\r', b'\n', line.as_bytes()).is_some() {
            return Err(ParseError::ForbiddenByte);
        }
        let mut rest = line.trim_start_matches(' ');
        if rest.is_empty() {
            return Err(ParseError::Empty);
        }
        let mut msg = MessageRef::default();
        if let Some(after) = rest.strip_prefix('@') {
            let (tags, tail) = split_word(after);
            msg.tags = parse_tags(tags)?;
            rest = tail;
        }
        if let Some(after) = rest.strip_prefix(':') {
            let (source, tail) = split_word(after);
            if !source.is_empty() {
                msg.source = Some(source);
            }
            rest = tail;
        }
        let (command, mut rest) = split_word(rest);
        if command.is_empty() {
            return Err(ParseError::NoCommand);
        }
        let is_numeric = command.len() == 3 && command.bytes().all(|b| b.is_ascii_digit());
        if !is_numeric && !command.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(ParseError::BadCommand);
        }
        msg.command = command;
        loop {
            rest = rest.trim_start_matches(' ');
            if rest.is_empty() {
                break;
            }
            if let Some(trailing) = rest.strip_prefix(':') {
                msg.params.push(trailing);
                break;
            }
            let (word, tail) = split_word(rest);
            msg.params.push(word);
            rest = tail;
        }
        Ok(msg)
    }

    /// The tags of a line that need not parse as a message, so that the
    /// error sent back can still carry them (a label): `None` for a line
    /// without tags or with malformed ones.
    pub fn tags_of(line: &str) -> Option<Vec<Tag>> {
        let raw = line.trim_start_matches(' ').strip_prefix('@')?;
        parse_tags(split_word(raw).0).ok()
    }

    /// Parameter `i`, if present.
    pub fn param(&self, i: usize) -> Option<&'a str> {
        self.params.get(i).copied()
    }

    /// The owned message, its command upper-cased.
    pub fn to_message(&self) -> Message {
        Message {
            tags: self.tags.clone(),
            source: self.source.map(str::to_string),
            command: self.command.to_ascii_uppercase(),
            params: self.params.iter().map(|p| p.to_string()).collect(),
        }
    }
}

/// Appends `@key=value;... ` (values escaped), or nothing for no tags.
pub fn write_tags<'a>(tags: impl IntoIterator<Item = &'a Tag>, buf: &mut BytesMut) {
    let mut any = false;
    for tag in tags {
        buf.extend_from_slice(if any { b";" } else { b"@" });
        any = true;
        buf.extend_from_slice(tag.key.as_bytes());
        if let Some(v) = &tag.value {
            buf.extend_from_slice(b"=");
            escape_tag_value(v, buf);
        }
    }
    if any {
        buf.extend_from_slice(b" ");
    }
}

/// Appends `[:source] COMMAND params...` and CR LF: the part of a message
/// after its tags, from borrowed parts (a relayed line is built this way
/// without assembling a [`Message`]). The last parameter gets a `:` when it
/// needs one.
pub fn write_line<'a>(
    source: Option<&str>,
    command: &str,
    params: impl ExactSizeIterator<Item = &'a str>,
    buf: &mut BytesMut,
) {
    if let Some(source) = source {
        buf.extend_from_slice(b":");
        buf.extend_from_slice(source.as_bytes());
        buf.extend_from_slice(b" ");
    }
    buf.extend_from_slice(command.as_bytes());
    let n = params.len();
    for (i, p) in params.enumerate() {
        buf.extend_from_slice(if i + 1 == n && needs_trailing(p) { b" :" } else { b" " });
        buf.extend_from_slice(p.as_bytes());
    }
    buf.extend_from_slice(b"\r\n");
}

impl fmt::Display for Message {
    /// The wire form without the final CR LF.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.to_bytes();
        let text = String::from_utf8_lossy(&bytes[..bytes.len() - 2]);
        f.write_str(&text)
    }
}

fn needs_trailing(p: &str) -> bool {
    p.is_empty() || p.starts_with(':') || p.contains(' ')
}

/// Splits at the first space: (word, rest after the space). A plain byte
/// scan: `str::find` with a `char` pattern sets up a searcher per call,
/// which cost as much as the rest of the parse on words a few bytes long.
fn split_word(s: &str) -> (&str, &str) {
    match s.bytes().position(|b| b == b' ') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    }
}

fn parse_tags(raw: &str) -> Result<Vec<Tag>, ParseError> {
    let mut tags: Vec<Tag> = Vec::new();
    for item in raw.split(';').filter(|s| !s.is_empty()) {
        let (key, value) = match item.split_once('=') {
            Some((k, v)) => (k, Some(unescape_tag_value(v))),
            None => (item, None),
        };
        if key.is_empty() {
            return Err(ParseError::EmptyTagKey);
        }
        // The last occurrence of a key wins, as the spec says.
        if let Some(existing) = tags.iter_mut().find(|t| t.key == key) {
            existing.value = value;
        } else {
            tags.push(Tag { key: key.to_string(), value });
        }
    }
    Ok(tags)
}

/// Undoes IRCv3 tag escaping. An unknown escape drops the backslash; a
/// trailing lone backslash is dropped.
pub fn unescape_tag_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('\\') => out.push('\\'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

fn escape_tag_value(v: &str, buf: &mut BytesMut) {
    for b in v.bytes() {
        match b {
            b';' => buf.put_slice(b"\\:"),
            b' ' => buf.put_slice(b"\\s"),
            b'\\' => buf.put_slice(b"\\\\"),
            b'\r' => buf.put_slice(b"\\r"),
            b'\n' => buf.put_slice(b"\\n"),
            other => buf.put_u8(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(line: &str) -> Message {
        Message::parse(line).unwrap()
    }

    #[test]
    fn plain_command_with_trailing() {
        let m = p("PRIVMSG #lobby :hello there");
        assert_eq!(m.command, "PRIVMSG");
        assert_eq!(m.params, vec!["#lobby", "hello there"]);
        assert!(m.source.is_none() && m.tags.is_empty());
    }

    #[test]
    fn source_and_lowercase_command() {
        let m = p(":nick!u@h privmsg bob :hi");
        assert_eq!(m.source.as_deref(), Some("nick!u@h"));
        assert_eq!(m.command, "PRIVMSG");
    }

    #[test]
    fn tags_with_escapes_and_bare_keys() {
        let m = p("@time=2020-01-01T00:00:00Z;+x=a\\sb\\:c\\\\;flag;bad=z\\ :s CMD");
        assert_eq!(m.tag("time"), Some("2020-01-01T00:00:00Z"));
        assert_eq!(m.tag("+x"), Some("a b;c\\"));
        assert_eq!(m.tag("flag"), Some(""));
        assert_eq!(m.tags[2].value, None);
        assert_eq!(m.tag("bad"), Some("z"));
        assert_eq!(m.source.as_deref(), Some("s"));
    }

    #[test]
    fn the_tags_of_a_line_that_is_no_message_can_still_be_read() {
        assert_eq!(MessageRef::parse("@label=a\\sb BAD_CMD x"), Err(ParseError::BadCommand));
        let tags = MessageRef::tags_of("@label=a\\sb BAD_CMD x").unwrap();
        assert_eq!(tags, vec![Tag { key: "label".into(), value: Some("a b".into()) }]);
        assert_eq!(MessageRef::tags_of("BAD_CMD x"), None);
        assert_eq!(MessageRef::tags_of("@=x BAD_CMD"), None, "malformed");
    }

    #[test]
    fn empty_trailing_is_a_parameter() {
        let m = p("TOPIC #c :");
        assert_eq!(m.params, vec!["#c", ""]);
        assert_eq!(m.to_string(), "TOPIC #c :");
    }

    #[test]
    fn colon_inside_a_middle_param_is_kept() {
        let m = p("MODE #c +k a:b :x y");
        assert_eq!(m.params, vec!["#c", "+k", "a:b", "x y"]);
    }

    #[test]
    fn trailing_keeps_leading_colon_and_spaces() {
        let m = p("PRIVMSG a ::-)  spaced ");
        assert_eq!(m.params, vec!["a", ":-)  spaced "]);
        assert_eq!(m.to_string(), "PRIVMSG a ::-)  spaced ");
    }

    #[test]
    fn repeated_spaces_between_params_are_one_separator() {
        assert_eq!(p("USER  a   0 *  :Real Name").params, vec!["a", "0", "*", "Real Name"]);
    }

    #[test]
    fn crlf_is_stripped_and_numerics_accepted() {
        let m = p(":srv 001 alice :Welcome\r\n");
        assert_eq!(m.command, "001");
        assert_eq!(m.params, vec!["alice", "Welcome"]);
    }

    #[test]
    fn bad_lines_are_errors() {
        assert_eq!(Message::parse(""), Err(ParseError::Empty));
        assert_eq!(Message::parse("   "), Err(ParseError::Empty));
        assert_eq!(Message::parse(":onlysource"), Err(ParseError::NoCommand));
        assert_eq!(Message::parse("@a=b"), Err(ParseError::NoCommand));
        assert_eq!(Message::parse("PRIV-MSG x"), Err(ParseError::BadCommand));
        assert_eq!(Message::parse("12 x"), Err(ParseError::BadCommand));
        assert_eq!(Message::parse("A\0B"), Err(ParseError::ForbiddenByte));
        assert_eq!(Message::parse("@=v CMD"), Err(ParseError::EmptyTagKey));
    }

    #[test]
    fn last_duplicate_tag_wins() {
        assert_eq!(p("@a=1;a=2 X").tag("a"), Some("2"));
    }

    #[test]
    fn serialise_puts_colon_only_where_needed() {
        let m = Message::new("PRIVMSG", vec!["#a".into(), "word".into()]).with_source("s");
        assert_eq!(m.to_string(), ":s PRIVMSG #a word");
        let m = Message::new("QUIT", vec![]);
        assert_eq!(&m.to_bytes()[..], b"QUIT\r\n");
    }

    #[test]
    fn borrowed_parse_keeps_the_command_as_sent_and_points_into_the_line() {
        let line = "@+x=1 :a!b@c privmsg #chan :hello there\r\n";
        let m = MessageRef::parse(line).unwrap();
        assert_eq!(m.command, "privmsg");
        assert_eq!(m.source, Some("a!b@c"));
        assert_eq!(&m.params[..], ["#chan", "hello there"]);
        assert_eq!(m.param(1), Some("hello there"));
        assert_eq!(m.param(2), None);
        let inside = line.as_bytes().as_ptr_range();
        assert!(inside.contains(&m.params[1].as_ptr()), "the text is borrowed, not copied");
        let owned = m.to_message();
        assert_eq!(owned.command, "PRIVMSG");
        assert_eq!(owned.borrowed().params, m.params);
        assert_eq!(MessageRef::parse("  "), Err(ParseError::Empty));
        assert_eq!(MessageRef::parse("PRIV-MSG x"), Err(ParseError::BadCommand));
    }

    fn tag_strategy() -> impl Strategy<Value = Tag> {
        ("\\+?[a-zA-Z0-9/.-]{1,12}", proptest::option::of("[^\u{0}]{0,12}")).prop_map(|(key, value)| Tag { key, value })
    }

    fn message_strategy() -> impl Strategy<Value = Message> {
        let tags = proptest::collection::vec(tag_strategy(), 0..4).prop_map(|mut v| {
            // Keys are unique after parsing; keep the generated ones unique too.
            let mut seen = std::collections::HashSet::new();
            v.retain(|t| seen.insert(t.key.clone()));
            v
        });
        let source = proptest::option::of("[^ \r\n\u{0}:@][^ \r\n\u{0}]{0,20}");
        let command = prop_oneof!["[A-Z]{1,10}", "[0-9]{3}"];
        let middle = proptest::collection::vec("[^ \r\n\u{0}:][^ \r\n\u{0}]{0,10}", 0..5);
        let trailing = proptest::option::of("[^\r\n\u{0}]{0,30}");
        (tags, source, command, middle, trailing).prop_map(|(tags, source, command, mut params, trailing)| {
            params.extend(trailing);
            Message { tags, source, command, params }
        })
    }

    proptest! {
        #[test]
        fn parse_inverts_serialise(m in message_strategy()) {
            let wire = m.to_bytes();
            let text = std::str::from_utf8(&wire).unwrap();
            prop_assert_eq!(Message::parse(text).unwrap(), m);
        }

        #[test]
        fn parse_never_panics(line in "\\PC{0,200}") {
            let _ = Message::parse(&line);
        }
    }
}
