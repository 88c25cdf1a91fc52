//! The lobby's last lines, in memory, for the replay a client without
//! `draft/chathistory` gets when it joins the lobby: JOIN runs on the
//! event loop and must not wait for the database, so the last
//! `history.join_replay_lines` PRIVMSGs and NOTICEs are kept here as they
//! are recorded (loaded from the database at start).

use super::entry::{Entry, Field, Kind, Parts};
use super::query::{self, Scope, Selector, Stored};
use crate::db::{Conn, DbError};
use std::collections::VecDeque;
use std::sync::Mutex;

pub struct Recent {
    /// The lobby's history key (casefolded).
    key: String,
    max: usize,
    lines: Mutex<VecDeque<Entry>>,
}

impl Recent {
    pub(super) fn load(conn: Conn<'_>, lobby: &str, max: usize) -> Result<Recent, DbError> {
        let key = parley_proto::casefold(lobby);
        let mut lines = VecDeque::with_capacity(max);
        if max > 0 {
            let scope = Scope { target: &key, until: i64::MAX, events: false };
            for m in query::select(conn, &scope, &Selector::Latest(None), max)? {
                lines.push_back(entry_of(&key, &m));
            }
        }
        Ok(Recent { key, max, lines: Mutex::new(lines) })
    }

    /// Keeps `entry` if it is a lobby message.
    pub(super) fn offer(&self, entry: &Entry) {
        if self.max == 0 || entry.kind.is_event() || entry.get(Field::Target) != self.key {
            return;
        }
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() == self.max {
            lines.pop_front();
        }
        lines.push_back(entry.clone());
    }

    /// The lobby's last lines, oldest first.
    pub fn lines(&self) -> Vec<Stored> {
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        lines
            .iter()
            .map(|e| Stored {
                at: e.at,
                msgid: e.get(Field::Msgid).to_string(),
                kind: e.kind,
                sender: e.get(Field::Sender).to_string(),
                account: e.account().map(str::to_string),
                shown: e.get(Field::Shown).to_string(),
                tags: e.get(Field::Tags).to_string(),
                text: e.get(Field::Text).to_string(),
            })
            .collect()
    }

    /// Forgets what the database no longer has (after deletions), reloading.
    pub(super) fn reload(&self, conn: Conn<'_>) -> Result<(), DbError> {
        let fresh = Recent::load(conn, &self.key, self.max)?;
        *self.lines.lock().unwrap_or_else(|p| p.into_inner()) = fresh.lines.into_inner().unwrap_or_default();
        Ok(())
    }
}

fn entry_of(key: &str, m: &Stored) -> Entry {
    let parts = Parts {
        target: key,
        msgid: &m.msgid,
        sender: &m.sender,
        account: m.account.as_deref(),
        shown: &m.shown,
        tags: &m.tags,
        text: &m.text,
    };
    let kind = if m.kind == Kind::Notice { Kind::Notice } else { Kind::Privmsg };
    Entry::new(m.at, kind, &parts)
}
