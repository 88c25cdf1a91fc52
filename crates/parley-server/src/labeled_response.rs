//! IRCv3 labeled-response: a client tags a command `@label=x`, and
//! everything the server says back to it about that command carries the
//! label exactly once. No reply becomes a labeled `ACK`; one reply is
//! labeled itself; several are wrapped in a `labeled-response` batch whose
//! start line carries the label (or, when the replies already are one
//! batch, that batch's start line does).
//!
//! `Ctx` collects a command's replies (the client's own echo copy
//! included), so the label is applied once, when they are queued: no
//! handler knows about labels. Lines the command sends to others, and the
//! copy a client gets of a message to itself, never carry it.

use crate::batch;
use crate::caps;
use bytes::BytesMut;
use parley_proto::{write_line, write_tags, MessageRef, Tag};

/// The longest label the spec allows, in bytes.
pub const MAX_LABEL_BYTES: usize = 64;

/// The batch type for a response of several lines.
const BATCH_TYPE: &str = "labeled-response";

/// The label a command's replies must carry, if any. Only for a client
/// that negotiated `labeled-response` and `batch` (the spec requires
/// both, and a response of several lines cannot be sent without a batch).
/// A label the spec does not allow (empty, or over 64 bytes) is not
/// repeated: the command is answered as if it had none.
pub fn label_of(caps: u32, tags: &[Tag]) -> Option<Box<str>> {
    let needed = caps::LABELED_RESPONSE | caps::BATCH;
    if caps & needed != needed {
        return None;
    }
    let value = tags.iter().find(|t| t.key == "label")?.value.as_deref()?;
    (!value.is_empty() && value.len() <= MAX_LABEL_BYTES).then(|| value.into())
}

/// Makes `out`, everything one command said to its client, the labeled
/// response to it.
pub fn finish(out: &mut BytesMut, label: &str, server: &str) {
    let label_tag = Tag { key: "label".into(), value: Some(label.into()) };
    match batch::lines_of(out).take(2).count() {
        0 => {
            write_tags([&label_tag], out);
            write_line(Some(server), "ACK", std::iter::empty(), out);
        }
        1 => label_first_line(out, &label_tag),
        _ if is_one_batch(out) => label_first_line(out, &label_tag),
        _ => batch::wrap(out, 0, server, BATCH_TYPE, &[], &[label_tag]),
    }
}

fn label_first_line(out: &mut BytesMut, label_tag: &Tag) {
    let mut tag = BytesMut::new();
    write_tags([label_tag], &mut tag);
    // `@label=... ` without its `@` and space.
    let tag = &tag[1..tag.len() - 1];
    let lines = out.split();
    let first_len = batch::lines_of(&lines).next().map_or(0, <[u8]>::len);
    batch::add_tag(&lines[..first_len], tag, out);
    out.extend_from_slice(&lines[first_len..]);
}

/// True when `out` is exactly one batch: a `BATCH +id` line, lines that
/// all name a batch, and `BATCH -id`. That batch then is the response.
fn is_one_batch(out: &[u8]) -> bool {
    let lines: Vec<&[u8]> = batch::lines_of(out).collect();
    let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
        return false;
    };
    let reference = |line: &[u8]| {
        let text = std::str::from_utf8(line).ok()?;
        let msg = MessageRef::parse(text).ok()?;
        (msg.command == "BATCH").then(|| msg.param(0).map(str::to_string)).flatten()
    };
    let (Some(start), Some(end)) = (reference(first), reference(last)) else {
        return false;
    };
    start.strip_prefix('+').is_some_and(|id| end.strip_prefix('-') == Some(id))
        && !batch::has_tag(first, "batch")
        && lines[1..lines.len() - 1].iter().all(|l| batch::has_tag(l, "batch"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(out: &str, label: &str) -> String {
        let mut buf = BytesMut::from(out);
        finish(&mut buf, label, "srv");
        String::from_utf8(buf.to_vec()).unwrap()
    }

    #[test]
    fn a_label_counts_only_with_both_caps_and_within_the_limit() {
        let both = caps::LABELED_RESPONSE | caps::BATCH;
        let tag = |v: &str| vec![Tag { key: "label".into(), value: Some(v.into()) }];
        assert_eq!(label_of(both, &tag("abc")).as_deref(), Some("abc"));
        assert_eq!(label_of(caps::LABELED_RESPONSE, &tag("abc")), None, "batch is required too");
        assert_eq!(label_of(both, &tag("")), None);
        assert_eq!(label_of(both, &[Tag { key: "label".into(), value: None }]), None);
        assert!(label_of(both, &tag(&"x".repeat(64))).is_some());
        assert_eq!(label_of(both, &tag(&"x".repeat(65))), None, "over 64 bytes");
    }

    #[test]
    fn no_reply_is_an_ack_and_one_reply_carries_the_label() {
        assert_eq!(finished("", "a;b"), "@label=a\\:b :srv ACK\r\n");
        assert_eq!(finished(":srv PONG srv x\r\n", "l"), "@label=l :srv PONG srv x\r\n");
        assert_eq!(finished("@time=t :srv PONG srv x\r\n", "l"), "@label=l;time=t :srv PONG srv x\r\n");
    }

    #[test]
    fn several_replies_are_one_labeled_batch() {
        let out = finished(":srv 311 me a\r\n:srv 318 me a\r\n", "l");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        let id = lines[0].strip_prefix("@label=l :srv BATCH +").unwrap().strip_suffix(" labeled-response").unwrap();
        assert_eq!(lines[1], format!("@batch={id} :srv 311 me a"));
        assert_eq!(lines[3], format!(":srv BATCH -{id}"));
    }

    #[test]
    fn replies_that_are_one_batch_already_label_its_start() {
        let one = ":srv BATCH +h chathistory #c\r\n@batch=h :n PRIVMSG #c hi\r\n:srv BATCH -h\r\n";
        assert_eq!(finished(one, "l"), format!("@label=l {one}"));
        let two = ":srv BATCH +h chathistory #c\r\n:srv BATCH -h\r\n:srv NOTICE me x\r\n";
        assert!(finished(two, "l").contains(" labeled-response\r\n"), "more than the batch: wrapped");
    }
}
