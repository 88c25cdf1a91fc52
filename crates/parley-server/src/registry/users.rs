//! Changes to one user that others may follow: the user modes kept as
//! flags (`+w`, `+B`), the realname (SETNAME), WALLOPS to the users with
//! `+w`, and MONITOR: the lists, and telling watchers when a nick comes,
//! goes or changes. A second `impl` of the registry's types, split from
//! `mod.rs` to keep channel membership and messaging there.

use super::{Registry, State};
use crate::caps;
use crate::outbound::{Client, ClientId};
use crate::relay::Relay;
use parley_proto::numeric::{RPL_MONOFFLINE, RPL_MONONLINE};
use parley_proto::{casefold, casefolded, Message, Tag};
use std::sync::Arc;

/// What `MONITOR +` found: the nicks added (or already there), online
/// ones as their users' hostmasks; and those that did not fit the limit.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Monitored {
    pub online: Vec<String>,
    pub offline: Vec<String>,
    pub refused: Vec<String>,
}

/// The user modes kept as flags (`+i` has its own method: it is counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserFlag {
    Wallops,
    Bot,
}

impl Registry {
    /// Sets or clears a user mode kept as a flag; true if it changed.
    pub fn set_flag(&self, id: ClientId, flag: UserFlag, on: bool) -> bool {
        let mut st = self.write();
        let Some(user) = st.users.get_mut(&id) else { return false };
        let slot = match flag {
            UserFlag::Wallops => &mut user.wallops,
            UserFlag::Bot => &mut user.bot,
        };
        std::mem::replace(slot, on) != on
    }

    /// Sends a WALLOPS line to every user with `+w` but `id`, who sent it.
    /// Returns how many got it and whether the sender has `+w` too.
    pub fn wallops(&self, id: ClientId, relay: &Relay) -> (usize, bool) {
        let st = self.read();
        let mut n = 0;
        for (uid, user) in st.0.users.iter().filter(|(_, u)| u.wallops) {
            if *uid != id {
                user.client.push(relay.bytes_for(user.client.caps()));
                n += 1;
            }
        }
        (n, st.0.users.get(&id).is_some_and(|u| u.wallops))
    }

    /// Sets the realname (SETNAME) and tells the neighbours and monitors
    /// that asked for `setname`. Returns the SETNAME line for the user's
    /// own copy.
    pub fn set_realname(&self, id: ClientId, realname: &str, mask: &str) -> Relay {
        let mut st = self.write();
        let Some(user) = st.users.get_mut(&id) else {
            return Relay::new(Message::new("SETNAME", vec![realname.to_string()]).with_source(mask), Vec::new());
        };
        user.realname = realname.to_string();
        let account = user.account.clone();
        if !super::remote::is_remote(id) {
            let realname = realname.to_string();
            st.tell_cluster(|| crate::cluster::Out::State(crate::cluster::wire::Event::SetName { id, realname }));
        }
        let relay = Relay::new(Message::new("SETNAME", vec![realname.to_string()]).with_source(mask), Vec::new())
            .with_account(account.as_deref());
        for client in st.followers(id, caps::SETNAME) {
            client.push(relay.bytes_for(client.caps()));
        }
        relay
    }

    /// Adds `nicks` to `id`'s MONITOR list, at most `limit` entries in all,
    /// and says which of them are online.
    pub fn monitor_add(&self, id: ClientId, nicks: &[&str], limit: usize) -> Monitored {
        let mut st = self.write();
        let mut out = Monitored::default();
        for nick in nicks {
            let listed = st.monitors.list(id).iter().any(|n| parley_proto::irc_eq(n, nick));
            if !listed && st.monitors.count(id) >= limit {
                out.refused.push(nick.to_string());
                continue;
            }
            st.monitors.add(id, nick);
            match st.user_by_nick(nick) {
                Some(user) => out.online.push(user.hostmask()),
                None => out.offline.push(nick.to_string()),
            }
        }
        out
    }

    /// Takes `nicks` off `id`'s MONITOR list.
    pub fn monitor_remove(&self, id: ClientId, nicks: &[&str]) {
        let mut st = self.write();
        for nick in nicks {
            st.monitors.remove(id, nick);
        }
    }

    /// Empties `id`'s MONITOR list.
    pub fn monitor_clear(&self, id: ClientId) {
        self.write().monitors.clear(id);
    }
}

impl State {
    /// Tells whoever monitors `nick` that it is online now (as the
    /// hostmask `online`) or offline.
    pub(super) fn tell_watchers(&self, nick: &str, online: Option<&str>) {
        let watchers = self.monitors.watchers(casefolded(nick).as_ref());
        if watchers.is_empty() {
            return;
        }
        let (code, text) = match online {
            Some(mask) => (RPL_MONONLINE, mask),
            None => (RPL_MONOFFLINE, nick),
        };
        for watcher in watchers.iter().filter_map(|w| self.users.get(w)) {
            let mut msg =
                Message::new(code, vec![watcher.nick.clone(), text.to_string()]).with_source(self.server_name.clone());
            if watcher.client.caps() & caps::SERVER_TIME != 0 {
                msg.tags.push(Tag { key: "time".into(), value: Some(crate::clock::now_tag()) });
            }
            watcher.client.push(&msg.to_bytes());
        }
    }

    /// Everyone who follows `id`'s changes through capability `cap`
    /// (`away-notify`, `setname`): the neighbours with it, and, with
    /// `extended-monitor` too, those monitoring its nick; once each.
    pub(super) fn followers(&self, id: ClientId, cap: u32) -> Vec<Arc<Client>> {
        let mut out: Vec<Arc<Client>> =
            self.neighbours(id, true, usize::MAX).into_iter().filter(|c| c.caps() & cap != 0).collect();
        let Some(user) = self.users.get(&id) else { return out };
        let needs = cap | caps::EXTENDED_MONITOR;
        for watcher in self.monitors.watchers(&casefold(&user.nick)).iter().filter_map(|w| self.users.get(w)) {
            let client = &watcher.client;
            if client.id != id && client.caps() & needs == needs && !out.iter().any(|c| c.id == client.id) {
                out.push(client.clone());
            }
        }
        out
    }
}
