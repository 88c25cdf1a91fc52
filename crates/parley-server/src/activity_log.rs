//! `server_log.txt`: the append-only record of what happened on the server,
//! a product feature inherited from the seed project.
//!
//! One line per event: an RFC 3339 UTC timestamp, the event kind, then
//! `key=value` fields (logfmt). Every value a user controls is quoted and
//! escaped, so a nick or a message cannot contain a line break or a fake
//! `key=` and forge an entry. Passwords never reach this module: no event
//! carries one.
//!
//! Writes go to a buffered file behind a mutex (never held across an await);
//! a ticker flushes it every second and [`ActivityLog::flush`] is called on
//! shutdown, so nothing is lost on a clean stop.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Mutex;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The activity log file.
pub struct ActivityLog {
    out: Mutex<BufWriter<File>>,
    message_bodies: bool,
}

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
pub enum Value<'a> {
    Num(u64),
    Text(&'a str),
}

impl ActivityLog {
    /// Opens (creating if needed) the log at `path` for appending.
    pub fn open(path: &Path, message_bodies: bool) -> std::io::Result<ActivityLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(ActivityLog { out: Mutex::new(BufWriter::new(file)), message_bodies })
    }

    /// Whether message bodies are to be recorded.
    pub fn records_bodies(&self) -> bool {
        self.message_bodies
    }

    /// Records one event.
    pub fn record(&self, kind: &str, actor: Actor<'_>, fields: &[(&str, Value<'_>)]) {
        let now = OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default();
        let mut line = String::with_capacity(128);
        let _ = write!(line, "{now} {kind} conn={}", actor.conn);
        if let Some(addr) = actor.addr {
            let _ = write!(line, " addr={addr}");
        }
        if let Some(nick) = actor.nick {
            line.push_str(" nick=");
            push_quoted(&mut line, nick);
        }
        for (key, value) in fields {
            line.push(' ');
            line.push_str(key);
            line.push('=');
            match value {
                Value::Num(n) => {
                    let _ = write!(line, "{n}");
                }
                Value::Text(t) => push_quoted(&mut line, t),
            }
        }
        line.push('\n');
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = out.write_all(line.as_bytes()) {
            tracing::error!(error = %e, "activity log write failed");
        }
    }

    /// Writes buffered lines to the file and asks the OS to persist them.
    pub fn flush(&self) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = out.flush().and_then(|_| out.get_ref().sync_data()) {
            tracing::error!(error = %e, "activity log flush failed");
        }
    }
}

/// Appends `s` in double quotes with `\"`, `\\`, and every control or
/// invisible-format character as `\u{..}`: one event can never become two
/// lines, nor hide text with bidi overrides.
fn push_quoted(line: &mut String, s: &str) {
    line.push('"');
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

    #[test]
    fn user_text_cannot_forge_a_line() {
        let mut s = String::new();
        push_quoted(&mut s, "hi\n2026-01-01T00:00:00Z die conn=0 by=\"x\"\u{202E}");
        assert!(!s.contains('\n'));
        assert_eq!(s, "\"hi\\u{a}2026-01-01T00:00:00Z die conn=0 by=\\\"x\\\"\\u{202e}\"");
    }

    #[test]
    fn events_are_one_line_each_and_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.txt");
        let log = ActivityLog::open(&path, false).unwrap();
        let actor = Actor { conn: 7, addr: Some("127.0.0.1:5000".parse().unwrap()), nick: Some("al\rice") };
        log.record("message", actor, &[("target", Value::Text("#lobby")), ("bytes", Value::Num(5))]);
        log.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(
            text.contains(" message conn=7 addr=127.0.0.1:5000 nick=\"al\\u{d}ice\" target=\"#lobby\" bytes=5"),
            "{text}"
        );
    }
}
