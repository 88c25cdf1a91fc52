//! IRCv3 batches (the `batch` capability): reference tags, and the `BATCH
//! +id type [params]` ... `BATCH -id` lines around a group of lines already
//! serialised, each of which gets a `batch=id` tag. Labeled responses wrap
//! a command's replies this way (`labeled_response.rs`), and history
//! playback will wrap its lines as a `chathistory` batch (`Ctx::batch`).
//!
//! Only clients that negotiated `batch` may be sent one; deciding that is
//! the caller's part. (Not to be confused with `outbound::OutBatch`, which
//! coalesces socket writes and says nothing on the wire.)

use bytes::BytesMut;
use parley_proto::{write_line, write_tags, Tag};
use std::sync::atomic::{AtomicU64, Ordering};

/// The next reference tag. One counter for the whole server: a reference
/// tag only has to differ from the others open on the same connection, and
/// a counter that never repeats in the process's life does that without
/// any per-connection state.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A new reference tag: letters and digits only, as the spec requires.
pub fn new_id() -> String {
    let mut n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    // Base 36 keeps ids short (a million batches in four characters).
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut id = Vec::with_capacity(8);
    loop {
        id.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    id.reverse();
    String::from_utf8(id).expect("ASCII digits")
}

/// Appends `[@tags] :server BATCH +id kind params...`.
pub fn write_start(out: &mut BytesMut, server: &str, id: &str, kind: &str, params: &[&str], tags: &[Tag]) {
    let reference = format!("+{id}");
    write_tags(tags, out);
    let all = [reference.as_str(), kind].into_iter().chain(params.iter().copied()).collect::<Vec<_>>();
    write_line(Some(server), "BATCH", all.into_iter(), out);
}

/// Appends `:server BATCH -id`.
pub fn write_end(out: &mut BytesMut, server: &str, id: &str) {
    write_line(Some(server), "BATCH", [format!("-{id}").as_str()].into_iter(), out);
}

/// Wraps the lines in `out` from byte `from` on in a batch: the start line
/// (with `start_tags`, e.g. a label), each line tagged `batch=id`, the end
/// line. A line that already names a batch (the lines inside a nested
/// batch) keeps its tag: its batch's own start and end lines carry ours.
pub fn wrap(out: &mut BytesMut, from: usize, server: &str, kind: &str, params: &[&str], start_tags: &[Tag]) {
    let lines = out.split_off(from);
    let id = new_id();
    write_start(out, server, &id, kind, params, start_tags);
    let tag = format!("batch={id}");
    for line in lines_of(&lines) {
        if has_tag(line, "batch") {
            out.extend_from_slice(line);
        } else {
            add_tag(line, tag.as_bytes(), out);
        }
    }
    write_end(out, server, &id);
}

/// The serialised lines in `buf`, each with its CR LF.
pub fn lines_of(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    buf.split_inclusive(|&b| b == b'\n').filter(|l| l.len() > 2)
}

/// Appends `line` with `tag` (`key=value`, already escaped) as its first tag.
pub fn add_tag(line: &[u8], tag: &[u8], out: &mut BytesMut) {
    out.extend_from_slice(b"@");
    out.extend_from_slice(tag);
    match line.strip_prefix(b"@") {
        Some(tags) => {
            out.extend_from_slice(b";");
            out.extend_from_slice(tags);
        }
        None => {
            out.extend_from_slice(b" ");
            out.extend_from_slice(line);
        }
    }
}

/// The tags of a serialised line, escaped, without the `@`.
fn tags_of(line: &[u8]) -> &[u8] {
    match line.strip_prefix(b"@") {
        Some(rest) => rest.split(|&b| b == b' ').next().unwrap_or_default(),
        None => &[],
    }
}

/// True when a serialised line has the tag `key`.
pub fn has_tag(line: &[u8], key: &str) -> bool {
    tags_of(line).split(|&b| b == b';').any(|t| t.split(|&b| b == b'=').next() == Some(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(buf: &[u8]) -> &str {
        std::str::from_utf8(buf).unwrap()
    }

    #[test]
    fn ids_are_distinct_and_alphanumeric() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        assert!(a.bytes().chain(b.bytes()).all(|c| c.is_ascii_alphanumeric()), "{a} {b}");
    }

    #[test]
    fn wrapping_tags_every_line_after_the_mark_and_keeps_nested_batches() {
        let mut out = BytesMut::new();
        out.extend_from_slice(b":srv NOTICE me :before\r\n");
        let from = out.len();
        out.extend_from_slice(
            b":srv 311 me a b c * :x\r\n@time=t :srv 318 me a :End\r\n@batch=in :n!u@h PRIVMSG me hi\r\n",
        );
        wrap(&mut out, from, "srv", "example/kind", &["p1"], &[Tag { key: "label".into(), value: Some("a b".into()) }]);
        let lines: Vec<&str> = text(&out).split("\r\n").collect();
        assert_eq!(lines[0], ":srv NOTICE me :before", "lines before the mark are left alone");
        let start = lines[1];
        assert!(start.starts_with("@label=a\\sb :srv BATCH +") && start.ends_with(" example/kind p1"), "{start}");
        let id = start.split(' ').nth(3).unwrap().trim_start_matches('+');
        assert_eq!(lines[2], format!("@batch={id} :srv 311 me a b c * :x"));
        assert_eq!(lines[3], format!("@batch={id};time=t :srv 318 me a :End"));
        assert_eq!(lines[4], "@batch=in :n!u@h PRIVMSG me hi", "a nested batch's line keeps its own tag");
        assert_eq!(lines[5], format!(":srv BATCH -{id}"));
        assert_eq!(lines[6], "");
    }

    #[test]
    fn tags_are_found_by_key_only_among_the_tags() {
        assert!(has_tag(b"@a=1;batch=x :s CMD\r\n", "batch"));
        assert!(has_tag(b"@batch :s CMD\r\n", "batch"));
        assert!(!has_tag(b"@batches=1 :s CMD batch=x\r\n", "batch"));
        assert!(!has_tag(b":s CMD batch\r\n", "batch"));
    }
}
