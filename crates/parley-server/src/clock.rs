//! Wall-clock readings in the forms the protocol shows them: Unix seconds
//! (signon, topic and ban times) and the IRCv3 `server-time` tag.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in seconds.
pub fn unix_now() -> i64 {
    unix_seconds(SystemTime::now())
}

/// `at` as Unix time in seconds.
pub fn unix_seconds(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The current time as a `server-time` tag value (RFC 3339, milliseconds, UTC).
pub fn now_tag() -> String {
    // Exactly three fraction digits, as the server-time spec requires (the
    // generic RFC 3339 format drops trailing zeros).
    const FORMAT: &[time::format_description::FormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    time::OffsetDateTime::now_utc().format(FORMAT).unwrap_or_default()
}
