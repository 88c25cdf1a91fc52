//! Reading `server_log.txt`, the server's activity log: one event a line,
//! `<RFC 3339 UTC time> <kind> key=value ...`. Only reads text a test has
//! already taken from [`Server::log_text`](crate::Server::log_text) or
//! [`Server::wait_for_log`](crate::Server::wait_for_log); never the file.

/// The activity-log lines of event `kind` (the word after the timestamp).
pub fn log_events<'a>(log: &'a str, kind: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.split(' ').nth(1) == Some(kind)).collect()
}

/// The first activity-log line of event `kind` that holds every one of
/// `fields` (written as they appear, e.g. `nick="alice"` or `bytes=5`).
/// Panics, showing the log, when there is none.
pub fn log_event<'a>(log: &'a str, kind: &str, fields: &[&str]) -> &'a str {
    let found = log_events(log, kind).into_iter().find(|line| {
        let mut words = line.split(' ');
        let stamp = words.next().unwrap_or("");
        // RFC 3339 UTC, e.g. 2026-01-02T03:04:05.123456Z.
        let stamped = stamp.len() >= 20 && stamp.as_bytes()[10] == b'T' && stamp.ends_with('Z');
        stamped && fields.iter().all(|f| line.contains(&format!(" {f}")))
    });
    found.unwrap_or_else(|| panic!("no `{kind}` event with {fields:?} in the activity log:\n{log}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "2026-01-02T03:04:05.123456Z connect addr=127.0.0.1:5000\n\
                       2026-01-02T03:04:05.223456Z register nick=\"alice\" addr=127.0.0.1:5000\n\
                       unstamped register nick=\"bob\"\n\
                       2026-01-02T03:04:06.000001Z register nick=\"carol\"\n";

    #[test]
    fn events_are_chosen_by_the_word_after_the_timestamp() {
        assert_eq!(log_events(LOG, "register").len(), 3);
        assert_eq!(log_events(LOG, "connect").len(), 1);
        assert!(log_events(LOG, "nick=\"alice\"").is_empty());
    }

    #[test]
    fn an_event_needs_a_timestamp_and_every_field() {
        assert!(log_event(LOG, "register", &["nick=\"carol\""]).ends_with("carol\""));
        let missing = std::panic::catch_unwind(|| log_event(LOG, "register", &["nick=\"bob\""]));
        assert!(missing.is_err(), "a line without a timestamp is not an event");
    }
}
