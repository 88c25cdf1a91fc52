//! `server_log.txt`: the append-only record of what happened on the server,
//! a product feature inherited from the seed project.
//!
//! One line per event: an RFC 3339 UTC timestamp, the event kind, then
//! `key=value` fields (logfmt). Every value a user controls is quoted and
//! escaped, so a nick or a message cannot contain a line break or a fake
//! `key=` and forge an entry. Passwords never reach this module: no event
//! carries one.
//!
//! Events are kept in memory as compact records behind a mutex (never held
//! across an await): the time, the kind, the fields, and their texts copied
//! as they are. The ticker thread (`ticker.rs`) formats them into lines,
//! writes them to the file and syncs it every second (an idle second syncs
//! nothing), and [`ActivityLog::flush`] is called on shutdown, so nothing is
//! lost on a clean stop. The thread that records a message therefore makes
//! no system call for it, and formats nothing: the quoting, the numbers and
//! the timestamp are the writer's work, off the message path. The records are
//! bounded (`log.buffer_bytes`): a thread that fills them writes them out
//! itself.

mod rotation;

pub use rotation::Rotation;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The activity log file.
pub struct ActivityLog {
    /// Events not yet handed to the OS.
    pending: Mutex<Records>,
    /// The file and what formats into it. Held while taken records are
    /// formatted and written, so they reach the file in the order they were
    /// taken. Lock order: `writer`, then `pending`.
    writer: Mutex<Writer>,
    /// The same file, for `sync_data` without holding `writer`'s lock: a
    /// message's record never waits for the disk. Replaced when the file is.
    sync: Mutex<File>,
    /// Set by `SIGHUP`: the next write reopens the file by name.
    reopen: AtomicBool,
    path: PathBuf,
    /// Lines were written since the last sync: an idle second costs no
    /// disk sync.
    unsynced: AtomicBool,
    /// `pending` is written out by the recording thread beyond this size.
    buffer_limit: usize,
    /// `log.message_bodies`; a reload may change it.
    message_bodies: AtomicBool,
}

/// Events as recorded, before formatting.
#[derive(Default)]
struct Records {
    events: Vec<Event>,
    /// Every event's fields, one event's after the other's.
    fields: Vec<(&'static str, Field)>,
    /// Every event's texts, back to back: its actor (already formatted),
    /// then its text fields as they were given (quoted when formatted).
    text: String,
}

struct Event {
    at: SystemTime,
    kind: &'static str,
    /// Length of the actor's part at the front of this event's texts.
    actor_len: usize,
    /// How many of `Records::fields` are this event's.
    fields: usize,
}

enum Field {
    Num(u64),
    /// A text of this length, next in `Records::text`.
    Text(usize),
}

/// Formats taken records and writes them.
struct Writer {
    file: File,
    /// When to start a new file (a reload may change it).
    rotation: Rotation,
    /// Bytes in the file, and when it was started: for rotation.
    written: u64,
    opened: SystemTime,
    clock: Clock,
    /// The records being written (swapped with `pending`, so both keep
    /// their room from one second to the next).
    taken: Records,
    lines: String,
}

/// Buffers beyond this many bytes, and beyond twice what the last second
/// used, are given back after a write, so a burst (ten thousand
/// registrations) leaves no large buffer behind.
const KEEP_BYTES: usize = 64 * 1024;

/// Who an event is about: connection id, address and nick (when known).
#[derive(Clone, Copy)]
pub struct Actor<'a> {
    pub conn: u64,
    pub addr: Option<SocketAddr>,
    pub nick: Option<&'a str>,
}

impl<'a> Actor<'a> {
    pub fn server() -> Actor<'static> {
        Actor { conn: 0, addr: None, nick: None }
    }
}

/// A field value. Plain values are written as they are; text values are
/// quoted and escaped.
#[derive(Clone, Copy)]
pub enum Value<'a> {
    Num(u64),
    Text(&'a str),
}

impl ActivityLog {
    /// Opens (creating if needed) the log at `path` for appending; at most
    /// `buffer_limit` bytes of events wait in memory for the next flush.
    pub fn open(path: &Path, buffer_limit: usize, message_bodies: bool) -> std::io::Result<ActivityLog> {
        let file = rotation::open_append(path)?;
        let sync = file.try_clone()?;
        let written = file.metadata()?.len();
        Ok(ActivityLog {
            pending: Mutex::new(Records::default()),
            writer: Mutex::new(Writer {
                file,
                rotation: Rotation::default(),
                written,
                opened: SystemTime::now(),
                clock: Clock::default(),
                taken: Records::default(),
                lines: String::new(),
            }),
            sync: Mutex::new(sync),
            reopen: AtomicBool::new(false),
            path: path.to_path_buf(),
            unsynced: AtomicBool::new(false),
            buffer_limit,
            message_bodies: AtomicBool::new(message_bodies),
        })
    }

    /// Rotates the file by `rotation` from now on.
    pub fn with_rotation(self, rotation: Rotation) -> ActivityLog {
        self.set_rotation(rotation);
        self
    }

    /// Rotates the file by `rotation` from its next write on (a reload).
    pub fn set_rotation(&self, rotation: Rotation) {
        self.writer.lock().unwrap_or_else(|p| p.into_inner()).rotation = rotation;
    }

    /// Records message bodies from now on, or stops (a reload).
    pub fn set_message_bodies(&self, on: bool) {
        self.message_bodies.store(on, Ordering::Relaxed);
    }

    /// Asks the writer to reopen the file by name at its next write
    /// (`SIGHUP`, after an outside tool moved it).
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Release);
    }

    /// Whether message bodies are to be recorded.
    pub fn records_bodies(&self) -> bool {
        self.message_bodies.load(Ordering::Relaxed)
    }

    /// Records one event. The kind and the field names are fixed words
    /// of the server (`'static`); values are copied.
    pub fn record(&self, kind: &'static str, actor: Actor<'_>, fields: &[(&'static str, Value<'_>)]) {
        self.record_at(SystemTime::now(), kind, actor, fields);
    }

    /// [`record`](Self::record) with the time already read, for a caller
    /// that needs it too (reading the clock costs about as much as a short
    /// record).
    pub fn record_at(
        &self,
        at: SystemTime,
        kind: &'static str,
        actor: Actor<'_>,
        fields: &[(&'static str, Value<'_>)],
    ) {
        self.append(at, kind, Who::Actor(actor), fields);
    }

    /// An actor as its lines name it (` conn=.. addr=.. nick=".."`), for a
    /// caller that records many events as the same actor: see
    /// [`record_as`](Self::record_as).
    pub fn actor_text(actor: Actor<'_>) -> String {
        let mut text = String::new();
        push_actor(&mut text, actor);
        text
    }

    /// [`record_at`](Self::record_at) with the actor formatted once before
    /// by [`actor_text`](Self::actor_text) (the sender of every message).
    pub fn record_as(
        &self,
        at: SystemTime,
        kind: &'static str,
        actor_text: &str,
        fields: &[(&'static str, Value<'_>)],
    ) {
        self.append(at, kind, Who::Text(actor_text), fields);
    }

    /// Every PRIVMSG records one event, so this is on the message path: it
    /// copies, and leaves all formatting to the writer.
    fn append(&self, at: SystemTime, kind: &'static str, who: Who<'_>, fields: &[(&'static str, Value<'_>)]) {
        let full = {
            let mut records = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let records = &mut *records;
            let start = records.text.len();
            match who {
                Who::Actor(actor) => push_actor(&mut records.text, actor),
                Who::Text(text) => records.text.push_str(text),
            }
            let actor_len = records.text.len() - start;
            for (key, value) in fields {
                let field = match value {
                    Value::Num(n) => Field::Num(*n),
                    Value::Text(t) => {
                        records.text.push_str(t);
                        Field::Text(t.len())
                    }
                };
                records.fields.push((key, field));
            }
            records.events.push(Event { at, kind, actor_len, fields: fields.len() });
            records.bytes() >= self.buffer_limit
        };
        if full {
            self.write_pending();
        }
    }

    /// Formats the recorded events, writes the lines to the file and asks
    /// the OS to persist them. Blocks on the disk (the ticker thread calls
    /// it); events recorded meanwhile only wait for the records' lock, held
    /// while they are swapped out.
    pub fn flush(&self) {
        self.write_pending();
        if !self.unsynced.swap(false, Ordering::AcqRel) {
            return;
        }
        let sync = self.sync.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = sync.sync_data() {
            tracing::error!(error = %e, "activity log sync failed");
        }
    }

    /// Formats the recorded events and hands the lines to the OS.
    fn write_pending(&self) {
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let w = &mut *writer;
        // The recording threads wait only for this swap, not for the
        // formatting or the write.
        std::mem::swap(&mut w.taken, &mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        // After SIGHUP the lines go to the file now at the path.
        if self.reopen.swap(false, Ordering::AcqRel) {
            if let Err(e) = self.replace_file(w, false) {
                tracing::error!(error = %e, path = %self.path.display(), "activity log reopen failed");
            }
        }
        let used = w.taken.bytes();
        w.lines.clear();
        if !w.taken.events.is_empty() {
            w.taken.format(&mut w.clock, &mut w.lines);
            if let Err(e) = w.file.write_all(w.lines.as_bytes()) {
                tracing::error!(error = %e, "activity log write failed");
            }
            w.written += w.lines.len() as u64;
            self.unsynced.store(true, Ordering::Release);
        }
        // Between two writes of whole lines: nothing is split or lost.
        if w.rotation.due(w.written, w.opened, SystemTime::now()) {
            if let Err(e) = self.replace_file(w, true) {
                tracing::error!(error = %e, path = %self.path.display(), "activity log rotation failed");
            }
        }
        // Under a steady load the buffers keep their room, so recording never
        // grows (and copies) them; after a burst, or when idle, what the last
        // second did not need is given back.
        if w.lines.capacity() > KEEP_BYTES.max(2 * w.lines.len()) {
            w.lines = String::new();
        }
        if w.taken.capacity_bytes() > KEEP_BYTES.max(2 * used) {
            w.taken = Records::default();
        }
        w.taken.clear();
    }
}

impl ActivityLog {
    /// Starts a new file at the log's path: after moving the old one aside
    /// (`rotate`), or after an outside tool did (reopen).
    fn replace_file(&self, w: &mut Writer, rotate: bool) -> std::io::Result<()> {
        if rotate {
            w.file.sync_data()?;
            rotation::shift(&self.path, w.rotation.keep)?;
        }
        let file = rotation::open_append(&self.path)?;
        *self.sync.lock().unwrap_or_else(|p| p.into_inner()) = file.try_clone()?;
        w.written = file.metadata()?.len();
        w.opened = SystemTime::now();
        w.file = file;
        Ok(())
    }
}

impl Records {
    /// Roughly the memory the records hold (what `log.buffer_bytes` bounds).
    fn bytes(&self) -> usize {
        self.events.len() * std::mem::size_of::<Event>()
            + self.fields.len() * std::mem::size_of::<(&str, Field)>()
            + self.text.len()
    }

    fn capacity_bytes(&self) -> usize {
        self.events.capacity() * std::mem::size_of::<Event>()
            + self.fields.capacity() * std::mem::size_of::<(&str, Field)>()
            + self.text.capacity()
    }

    /// Emptied, keeping the room.
    fn clear(&mut self) {
        self.events.clear();
        self.fields.clear();
        self.text.clear();
    }

    /// Appends one line per event: `<time> <kind><actor> key=value...`.
    fn format(&self, clock: &mut Clock, lines: &mut String) {
        let (mut field, mut text) = (0, 0);
        for event in &self.events {
            clock.push(event.at, lines);
            lines.push(' ');
            lines.push_str(event.kind);
            lines.push_str(&self.text[text..text + event.actor_len]);
            text += event.actor_len;
            for (key, value) in &self.fields[field..field + event.fields] {
                lines.push(' ');
                lines.push_str(key);
                lines.push('=');
                match *value {
                    Field::Num(n) => push_num(lines, n),
                    Field::Text(len) => {
                        push_quoted(lines, &self.text[text..text + len]);
                        text += len;
                    }
                }
            }
            field += event.fields;
            lines.push('\n');
        }
    }
}

/// The RFC 3339 date and time of the current second, formatted once per second.
#[derive(Default)]
struct Clock {
    second: i64,
    text: String,
}

impl Clock {
    /// Appends `at` in UTC, as `2026-11-27T13:10:30.123456789Z`.
    fn push(&mut self, at: SystemTime, line: &mut String) {
        let now = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        let second = now.as_secs() as i64;
        if second != self.second || self.text.is_empty() {
            self.second = second;
            let date = OffsetDateTime::from_unix_timestamp(second).unwrap_or(OffsetDateTime::UNIX_EPOCH);
            self.text = date.format(&Rfc3339).unwrap_or_default();
            // Formatted without a fraction: "...:30Z"; the fraction goes before the Z.
            self.text.pop();
        }
        line.push_str(&self.text);
        line.push('.');
        let mut digits = itoa::Buffer::new();
        let nanos = digits.format(now.subsec_nanos());
        for _ in nanos.len()..9 {
            line.push('0');
        }
        line.push_str(nanos);
        line.push('Z');
    }
}

/// Who a line is about: an actor, or one already formatted.
enum Who<'a> {
    Actor(Actor<'a>),
    Text(&'a str),
}

/// ` conn=.. addr=.. nick=".."`, the parts known.
fn push_actor(line: &mut String, actor: Actor<'_>) {
    line.push_str(" conn=");
    push_num(line, actor.conn);
    if let Some(addr) = actor.addr {
        line.push_str(" addr=");
        push_addr(line, addr);
    }
    if let Some(nick) = actor.nick {
        line.push_str(" nick=");
        push_quoted(line, nick);
    }
}

fn push_num(line: &mut String, n: u64) {
    line.push_str(itoa::Buffer::new().format(n));
}

fn push_addr(line: &mut String, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(v4) => {
            for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    line.push('.');
                }
                line.push_str(itoa::Buffer::new().format(octet));
            }
            line.push(':');
            line.push_str(itoa::Buffer::new().format(v4.port()));
        }
        SocketAddr::V6(_) => {
            let _ = write!(line, "{addr}");
        }
    }
}

/// Appends `s` in double quotes with `\"`, `\\`, and every control or
/// invisible-format character as `\u{..}`: one event can never become two
/// lines, nor hide text with bidi overrides.
fn push_quoted(line: &mut String, s: &str) {
    line.push('"');
    // Most text needs no escaping at all: copy it in one go.
    if s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\') {
        line.push_str(s);
        line.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            c if c.is_control()
                || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}') =>
            {
                let _ = write!(line, "\\u{{{:x}}}", c as u32);
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log in a fresh temporary directory (kept alive with it).
    fn temp_log(buffer_limit: usize) -> (tempfile::TempDir, std::path::PathBuf, ActivityLog) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.txt");
        let log = ActivityLog::open(&path, buffer_limit, false).unwrap();
        (dir, path, log)
    }

    #[test]
    fn user_text_cannot_forge_a_line() {
        let mut s = String::new();
        push_quoted(&mut s, "hi\n2026-01-01T00:00:00Z die conn=0 by=\"x\"\u{202E}");
        assert!(!s.contains('\n'));
        assert_eq!(s, "\"hi\\u{a}2026-01-01T00:00:00Z die conn=0 by=\\\"x\\\"\\u{202e}\"");
    }

    #[test]
    fn addresses_print_as_std_does() {
        for addr in ["127.0.0.1:5000", "10.200.0.255:65535", "[::1]:6667", "[2001:db8::7]:1"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let mut s = String::new();
            push_addr(&mut s, addr);
            assert_eq!(s, addr.to_string());
        }
    }

    #[test]
    fn events_wait_for_the_flush_unless_the_buffer_is_full() {
        let (_dir, path, log) = temp_log(200);
        let actor = Actor { conn: 1, addr: None, nick: Some("al") };
        log.record("message", actor, &[("target", Value::Text("#lobby"))]);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "", "held until the flush");
        // Past the limit, the recording thread writes everything itself, in order.
        for n in 2..=4 {
            log.record("message", actor, &[("n", Value::Num(n))]);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.lines().count() >= 2, "{text}");
        log.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        let kinds: Vec<_> = text.lines().map(|l| l.split_once(" conn=1 ").unwrap().1).collect();
        assert_eq!(kinds, ["nick=\"al\" target=\"#lobby\"", "nick=\"al\" n=2", "nick=\"al\" n=3", "nick=\"al\" n=4"]);
    }

    #[test]
    fn records_keep_each_events_fields_apart() {
        let (_dir, path, log) = temp_log(1 << 20);
        let actor = Actor { conn: 3, addr: None, nick: None };
        let at = SystemTime::now();
        log.record_at(
            at,
            "upload",
            actor,
            &[("name", Value::Text("a\"b")), ("bytes", Value::Num(5)), ("to", Value::Text("x"))],
        );
        log.record_at(at, "kill", actor, &[("n", Value::Num(1))]);
        log.record_as(at, "message", " conn=4", &[("target", Value::Text("")), ("body", Value::Text("line\nbreak"))]);
        log.record_at(at, "shutdown", Actor::server(), &[]);
        log.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        let tails: Vec<_> = text.lines().map(|l| l.split_once(' ').unwrap().1).collect();
        assert_eq!(
            tails,
            [
                "upload conn=3 name=\"a\\\"b\" bytes=5 to=\"x\"",
                "kill conn=3 n=1",
                "message conn=4 target=\"\" body=\"line\\u{a}break\"",
                "shutdown conn=0",
            ]
        );
    }

    #[test]
    fn a_burst_leaves_no_large_buffer_behind() {
        let (_dir, path, log) = temp_log(1 << 30);
        let actor = Actor { conn: 1, addr: None, nick: Some("al") };
        for n in 0..5_000 {
            log.record("message", actor, &[("target", Value::Text("#lobby")), ("n", Value::Num(n))]);
        }
        assert!(log.pending.lock().unwrap().capacity_bytes() > KEEP_BYTES);
        // The flush writes the burst; the two after it, idle, give both sets
        // of buffers back (the burst's, then the one recorded into meanwhile).
        log.flush();
        log.flush();
        log.flush();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 5_000);
        assert!(log.pending.lock().unwrap().capacity_bytes() <= KEEP_BYTES);
        let writer = log.writer.lock().unwrap();
        assert!(writer.taken.capacity_bytes() <= KEEP_BYTES && writer.lines.capacity() <= KEEP_BYTES);
    }

    #[test]
    fn a_steady_load_keeps_its_room() {
        let (_dir, _path, log) = temp_log(1 << 30);
        let actor = Actor { conn: 1, addr: None, nick: Some("al") };
        let second = |log: &ActivityLog| {
            for n in 0..5_000 {
                log.record("message", actor, &[("target", Value::Text("#lobby")), ("n", Value::Num(n))]);
            }
        };
        second(&log);
        let used = log.pending.lock().unwrap().bytes();
        log.flush();
        second(&log);
        log.flush();
        // Back to the first second's buffers, which have room for another.
        assert!(log.pending.lock().unwrap().capacity_bytes() >= used);
    }

    #[test]
    fn an_actor_formatted_once_logs_the_same_line() {
        let (_dir, path, log) = temp_log(1 << 20);
        let actor = Actor { conn: 9, addr: Some("10.0.0.1:7".parse().unwrap()), nick: Some("b\"ob") };
        let at = SystemTime::now();
        log.record_at(at, "message", actor, &[("target", Value::Text("#a"))]);
        log.record_as(at, "message", &ActivityLog::actor_text(actor), &[("target", Value::Text("#a"))]);
        log.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], lines[1]);
        assert!(lines[0].ends_with(" message conn=9 addr=10.0.0.1:7 nick=\"b\\\"ob\" target=\"#a\""), "{text}");
    }

    #[test]
    fn events_are_one_line_each_and_flushed() {
        let (_dir, path, log) = temp_log(1 << 20);
        let actor = Actor { conn: 7, addr: Some("127.0.0.1:5000".parse().unwrap()), nick: Some("al\rice") };
        log.record("message", actor, &[("target", Value::Text("#lobby")), ("bytes", Value::Num(5))]);
        log.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1);
        // RFC 3339 UTC with nanoseconds: 2026-11-27T13:10:30.123456789Z
        let stamp = text.split(' ').next().unwrap();
        let shape = stamp.bytes().map(|b| if b.is_ascii_digit() { b'd' } else { b }).collect::<Vec<_>>();
        assert_eq!(String::from_utf8(shape).unwrap(), "dddd-dd-ddTdd:dd:dd.dddddddddZ", "{stamp}");
        assert!(
            text.contains(" message conn=7 addr=127.0.0.1:5000 nick=\"al\\u{d}ice\" target=\"#lobby\" bytes=5"),
            "{text}"
        );
    }

    #[test]
    fn a_storm_across_rotations_keeps_every_line_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.txt");
        let rotation = Rotation { max_bytes: 8 * 1024, max_age: None, keep: 1000 };
        let log = std::sync::Arc::new(ActivityLog::open(&path, 4096, false).unwrap().with_rotation(rotation));
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..2000u64 {
                        log.record("probe", Actor::server(), &[("id", Value::Num(t * 1_000_000 + i))]);
                    }
                })
            })
            .collect();
        let flusher = {
            let log = log.clone();
            std::thread::spawn(move || {
                for _ in 0..200 {
                    log.flush();
                }
            })
        };
        for w in writers {
            w.join().unwrap();
        }
        flusher.join().unwrap();
        log.flush();
        let mut seen = std::collections::HashSet::new();
        let mut files = 0;
        for n in 0..=1000 {
            let p = if n == 0 { path.clone() } else { rotation::numbered(&path, n) };
            let Ok(text) = std::fs::read_to_string(&p) else { continue };
            files += 1;
            for line in text.lines() {
                assert!(line.contains(" probe ") && line.ends_with(|c: char| c.is_ascii_digit()), "whole: {line:?}");
                let id = line.rsplit("id=").next().unwrap().to_string();
                assert!(seen.insert(id), "once: {line}");
            }
        }
        assert_eq!(seen.len(), 8000, "every line");
        assert!(files > 10, "it rotated ({files} files)");
    }

    #[test]
    fn a_reopen_follows_a_file_moved_away() {
        let (dir, path, log) = temp_log(1 << 20);
        log.record("first", Actor::server(), &[]);
        log.flush();
        std::fs::rename(&path, dir.path().join("moved")).unwrap();
        log.reopen();
        log.record("second", Actor::server(), &[]);
        log.flush();
        log.record("third", Actor::server(), &[]);
        log.flush();
        let moved = std::fs::read_to_string(dir.path().join("moved")).unwrap();
        let now = std::fs::read_to_string(&path).unwrap();
        assert!(moved.contains(" first") && !moved.contains(" second"), "{moved}");
        assert!(now.contains(" second") && now.contains(" third") && !now.contains(" first"), "{now}");
    }
}
