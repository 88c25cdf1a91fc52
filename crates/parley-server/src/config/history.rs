//! The `[history]` section: whether messages are kept, how they are
//! written (batch window, queue), how long they are kept (retention, per
//! target if need be) and how much a client may ask for at once.

use super::{invalid, ConfigError};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The longest batch window `history.batch_window_ms` may set: a crash
/// loses at most one window of messages.
pub const MAX_BATCH_WINDOW_MS: u64 = 1_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// Keep channel and private messages in the database and serve them
    /// (`draft/chathistory`, read markers, search). Off: nothing is
    /// recorded and the capabilities are not offered.
    pub enabled: bool,
    /// How long a message may wait in memory before its batch is written
    /// (one transaction per batch). After a crash at most this much is lost.
    pub batch_window_ms: u64,
    /// Messages (and membership changes) waiting to be written, at most;
    /// beyond, new ones are dropped from history (chat goes on), counted
    /// and logged.
    pub queue_entries: usize,
    /// Messages older than this many days are deleted (0: kept forever).
    pub max_age_days: u64,
    /// At most this many messages are kept per channel or conversation,
    /// the oldest deleted first (0: no limit).
    pub max_messages_per_target: u64,
    /// Per-channel retention instead of the two settings above, keyed by
    /// channel name: `[history.retention."#lobby"] max_age_days = 7`.
    pub retention: BTreeMap<String, Retention>,
    /// How often retention runs, in seconds.
    pub prune_interval_secs: u64,
    /// The most messages one `CHATHISTORY` or `SEARCH` returns (ISUPPORT
    /// `CHATHISTORY=`).
    pub max_query_messages: usize,
    /// Read markers one account (or one connection without an account)
    /// may keep; beyond, MARKREAD on a new target is refused.
    pub max_read_markers: usize,
    /// Lines of recent history sent to a client without
    /// `draft/chathistory` when it joins the lobby (0: none).
    pub join_replay_lines: usize,
}

/// How long one channel's messages are kept.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// Days (0: forever).
    pub max_age_days: u64,
    /// Messages (0: no limit).
    pub max_messages: u64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            enabled: true,
            batch_window_ms: 50,
            queue_entries: 100_000,
            max_age_days: 0,
            max_messages_per_target: 0,
            retention: BTreeMap::new(),
            prune_interval_secs: 60,
            max_query_messages: 1000,
            max_read_markers: 1000,
            join_replay_lines: 50,
        }
    }
}

impl HistoryConfig {
    /// The retention of a target (casefolded), its own or the default.
    pub fn retention_for(&self, folded_target: &str) -> Retention {
        self.retention
            .iter()
            .find(|(name, _)| parley_proto::casefold(name) == folded_target)
            .map(|(_, r)| *r)
            .unwrap_or(Retention { max_age_days: self.max_age_days, max_messages: self.max_messages_per_target })
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.batch_window_ms == 0 || self.batch_window_ms > MAX_BATCH_WINDOW_MS {
            return Err(invalid(
                "history.batch_window_ms",
                format!("must be between 1 and {MAX_BATCH_WINDOW_MS} (a crash loses up to one window)"),
            ));
        }
        for (key, v) in [
            ("history.queue_entries", self.queue_entries as u64),
            ("history.prune_interval_secs", self.prune_interval_secs),
            ("history.max_query_messages", self.max_query_messages as u64),
            ("history.max_read_markers", self.max_read_markers as u64),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if self.max_age_days > 100 * 365 {
            return Err(invalid("history.max_age_days", "must be at most 36500 (0 keeps messages forever)"));
        }
        for name in self.retention.keys() {
            if !name.starts_with('#') {
                return Err(invalid("history.retention", format!("{name:?} is not a channel name")));
            }
        }
        Ok(())
    }
}
