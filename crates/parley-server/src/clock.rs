//! Wall-clock readings in the forms the protocol shows them: Unix seconds
//! (signon, topic and ban times) and the IRCv3 `server-time` tag.

use std::time::{SystemTime, UNIX_EPOCH};

/// A day in milliseconds (history's retention ages).
pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Unix time in seconds.
pub fn unix_now() -> i64 {
    unix_seconds(SystemTime::now())
}

/// `at` as Unix time in seconds.
pub fn unix_seconds(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Exactly three fraction digits, as the server-time spec requires (the
/// generic RFC 3339 format drops trailing zeros).
const TAG_FORMAT: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// The current time as a `server-time` tag value (RFC 3339, milliseconds, UTC).
pub fn now_tag() -> String {
    time::OffsetDateTime::now_utc().format(TAG_FORMAT).unwrap_or_default()
}

/// Unix time in milliseconds.
pub fn unix_millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Unix milliseconds as a `server-time` tag value.
pub fn tag_for_millis(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000);
    at.ok().and_then(|t| t.format(TAG_FORMAT).ok()).unwrap_or_default()
}

/// A `server-time` value (or any RFC 3339 time) as Unix milliseconds.
pub fn parse_tag_millis(text: &str) -> Option<i64> {
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tag_times_round_trip_in_milliseconds() {
        let ms = 1_700_000_000_123;
        let tag = super::tag_for_millis(ms);
        assert_eq!(tag, "2023-11-14T22:13:20.123Z");
        assert_eq!(super::parse_tag_millis(&tag), Some(ms));
        assert_eq!(super::parse_tag_millis("2020-01-01T00:00:00Z"), Some(1_577_836_800_000));
        assert_eq!(super::parse_tag_millis("yesterday"), None);
    }
}
