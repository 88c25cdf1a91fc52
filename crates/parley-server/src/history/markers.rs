//! Read markers (`draft/read-marker`): per account and target, the time up
//! to which the account has read. Kept in memory (loaded at start, small)
//! so MARKREAD and JOIN answer without the disk, and written through the
//! writer's queue. A connection without an account has markers of its
//! own, in memory only, forgotten when it closes. With a store shared by
//! several nodes (PostgreSQL), another node may move an account's markers:
//! they are read again from the store when the account logs in here.

use super::{History, Op};
use crate::db::{Conn, DbError};
use std::collections::HashMap;

/// Whose markers: an account (casefolded) or one connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    Account(String),
    Connection(u64),
}

/// Every marker known, by owner, then target (casefolded).
#[derive(Default)]
pub struct Markers {
    by_owner: HashMap<Owner, HashMap<String, i64>>,
}

/// What setting a marker did.
#[derive(Debug, PartialEq, Eq)]
pub enum Set {
    /// The marker is now this time (the new one, or a newer one kept:
    /// a marker never moves back).
    Now(i64),
    /// The owner has `max` markers already.
    TooMany,
}

impl Markers {
    pub(super) fn load(conn: Conn<'_>) -> Result<Markers, DbError> {
        const SELECT: &str = "SELECT account, target, at FROM read_markers";
        let rows: Vec<(String, String, i64)> = match conn {
            Conn::Sqlite(c) => c
                .prepare(SELECT)?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?,
            Conn::Postgres(c) => c.query(SELECT, &[])?.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect(),
        };
        let mut markers = Markers::default();
        for (account, target, at) in rows {
            markers.by_owner.entry(Owner::Account(account)).or_default().insert(target, at);
        }
        Ok(markers)
    }

    pub fn get(&self, owner: &Owner, target: &str) -> Option<i64> {
        self.by_owner.get(owner)?.get(target).copied()
    }

    fn set(&mut self, owner: &Owner, target: &str, at: i64, max: usize) -> Set {
        let targets = self.by_owner.entry(owner.clone()).or_default();
        if let Some(old) = targets.get_mut(target) {
            *old = (*old).max(at);
            return Set::Now(*old);
        }
        if targets.len() >= max {
            return Set::TooMany;
        }
        targets.insert(target.to_string(), at);
        Set::Now(at)
    }
}

impl History {
    /// The marker of `owner` on `target` (casefolded).
    pub fn marker(&self, owner: &Owner, target: &str) -> Option<i64> {
        self.markers.lock().unwrap_or_else(|p| p.into_inner()).get(owner, target)
    }

    /// Every marker of `owner`, by target, in name order.
    pub fn markers_of(&self, owner: &Owner) -> Vec<(String, i64)> {
        let markers = self.markers.lock().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<(String, i64)> =
            markers.by_owner.get(owner).map(|t| t.iter().map(|(k, v)| (k.clone(), *v)).collect()).unwrap_or_default();
        all.sort();
        all
    }

    /// Moves a marker forward (never back); an account's is queued for
    /// the writer.
    pub fn set_marker(&self, owner: &Owner, target: &str, at: i64) -> Set {
        let max = self.config.max_read_markers;
        let set = self.markers.lock().unwrap_or_else(|p| p.into_inner()).set(owner, target, at, max);
        if let (Set::Now(now), Owner::Account(account)) = (&set, owner) {
            if *now == at {
                self.push(Op::Marker { account: account.as_str().into(), target: target.into(), at });
            }
        }
        set
    }

    /// Whether other nodes write the same store (PostgreSQL).
    pub fn shares_store(&self) -> bool {
        self.shared
    }

    /// With a shared store, reads the account's markers again (blocking:
    /// run it on the blocking pool), keeping the newer of each: another
    /// node may have moved them. Nothing to do when the store is this
    /// node's own.
    pub fn reload_markers(&self, account: &str) -> Result<(), DbError> {
        if !self.shared {
            return Ok(());
        }
        let key = parley_proto::casefold(account);
        const SELECT: &str = "SELECT target, at FROM read_markers WHERE account = $1";
        let rows: Vec<(String, i64)> = match self.reader()?.conn() {
            Conn::Sqlite(c) => {
                c.prepare(SELECT)?.query_map([&key], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?
            }
            Conn::Postgres(c) => c.query(SELECT, &[&key])?.iter().map(|r| (r.get(0), r.get(1))).collect(),
        };
        let mut markers = self.markers.lock().unwrap_or_else(|p| p.into_inner());
        let targets = markers.by_owner.entry(Owner::Account(key)).or_default();
        for (target, at) in rows {
            let kept = targets.entry(target).or_insert(at);
            *kept = (*kept).max(at);
        }
        Ok(())
    }

    /// Forgets a connection's own markers (it closed).
    pub fn forget_markers(&self, connection: u64) {
        self.markers.lock().unwrap_or_else(|p| p.into_inner()).by_owner.remove(&Owner::Connection(connection));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_only_moves_forward_and_owners_are_bounded() {
        let mut m = Markers::default();
        let alice = Owner::Account("alice".into());
        assert_eq!(m.set(&alice, "#a", 10, 2), Set::Now(10));
        assert_eq!(m.set(&alice, "#a", 5, 2), Set::Now(10), "never back");
        assert_eq!(m.set(&alice, "#b", 1, 2), Set::Now(1));
        assert_eq!(m.set(&alice, "#c", 1, 2), Set::TooMany);
        assert_eq!(m.set(&alice, "#b", 3, 2), Set::Now(3), "an existing one still moves");
        assert_eq!(m.get(&Owner::Connection(1), "#a"), None);
    }
}
