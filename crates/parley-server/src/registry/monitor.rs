//! Who watches which nick (MONITOR), kept both ways: a nick's watchers
//! are found at once when its user comes, goes or renames, and a watcher's
//! list is shown and cleared without a scan. Nicks only, never masks, so a
//! watcher cannot follow someone across nick changes.
//!
//! Only the registry changes this, under its write lock; it knows nothing
//! of users or of the limit (the caller checks it with [`Monitors::count`]).

use crate::outbound::{ClientId, IdMap};
use parley_proto::{casefold, irc_eq};
use std::collections::HashMap;

#[derive(Default)]
pub(super) struct Monitors {
    /// Casefolded nick → the clients watching it.
    watchers: HashMap<String, Vec<ClientId>>,
    /// Client → the nicks it watches, as it spelled them.
    lists: IdMap<Vec<String>>,
}

impl Monitors {
    /// Adds `nick` to `id`'s list; false if it was there already (in any
    /// case spelling).
    pub(super) fn add(&mut self, id: ClientId, nick: &str) -> bool {
        let list = self.lists.entry(id).or_default();
        if list.iter().any(|n| irc_eq(n, nick)) {
            return false;
        }
        list.push(nick.to_string());
        self.watchers.entry(casefold(nick)).or_default().push(id);
        true
    }

    /// Takes `nick` off `id`'s list, if it is there.
    pub(super) fn remove(&mut self, id: ClientId, nick: &str) {
        let Some(list) = self.lists.get_mut(&id) else { return };
        let before = list.len();
        list.retain(|n| !irc_eq(n, nick));
        if list.len() == before {
            return;
        }
        if list.is_empty() {
            self.lists.remove(&id);
        }
        self.unwatch(id, &casefold(nick));
    }

    /// Empties `id`'s list (MONITOR C, and when it leaves).
    pub(super) fn clear(&mut self, id: ClientId) {
        for nick in self.lists.remove(&id).unwrap_or_default() {
            self.unwatch(id, &casefold(&nick));
        }
    }

    fn unwatch(&mut self, id: ClientId, key: &str) {
        if let Some(ids) = self.watchers.get_mut(key) {
            ids.retain(|w| *w != id);
            if ids.is_empty() {
                self.watchers.remove(key);
            }
        }
    }

    /// The nicks `id` watches, in the order added.
    pub(super) fn list(&self, id: ClientId) -> &[String] {
        self.lists.get(&id).map_or(&[], Vec::as_slice)
    }

    pub(super) fn count(&self, id: ClientId) -> usize {
        self.list(id).len()
    }

    /// Who watches the nick whose casefolded form is `key`.
    pub(super) fn watchers(&self, key: &str) -> &[ClientId] {
        self.watchers.get(key).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_stay_in_step() {
        let mut m = Monitors::default();
        assert!(m.add(1, "Bob") && !m.add(1, "BOB"), "one entry per nick, whatever the case");
        assert!(m.add(2, "bob") && m.add(1, "carol"));
        assert_eq!(m.watchers("bob"), [1, 2]);
        assert_eq!(m.list(1), ["Bob", "carol"]);
        m.remove(1, "bOb");
        assert_eq!((m.watchers("bob"), m.count(1)), (&[2][..], 1));
        m.clear(1);
        m.clear(2);
        assert!(m.watchers.is_empty() && m.lists.is_empty(), "nothing left behind");
        m.remove(3, "nobody");
    }
}
