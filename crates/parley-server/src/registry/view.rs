//! Reading the registry: a [`View`] holds the read lock and answers
//! questions; it changes nothing.

use super::{State, User, WasUser};
use crate::channel::Channel;
use crate::outbound::ClientId;
use parley_proto::casefolded;
use std::sync::RwLockReadGuard;

/// A read-only look at users and channels. Holds the read lock: drop it
/// before anything slow, and it cannot be kept across an `.await`.
pub struct View<'a>(pub(super) RwLockReadGuard<'a, State>);

/// The numbers LUSERS reports.
pub struct Counts {
    pub users: usize,
    pub invisible: usize,
    pub opers: usize,
    pub channels: usize,
    pub max_users: usize,
    /// Of `users`, those on other cluster nodes, and how many nodes they
    /// are on (0 and 0 on a single node).
    pub remote_users: usize,
    pub other_nodes: usize,
}

impl View<'_> {
    pub fn user(&self, id: ClientId) -> Option<&User> {
        self.0.users.get(&id).map(|u| &**u)
    }

    pub fn user_by_nick(&self, nick: &str) -> Option<&User> {
        self.0.id_by_nick(nick).and_then(|id| self.user(id))
    }

    pub fn id_by_nick(&self, nick: &str) -> Option<ClientId> {
        self.0.id_by_nick(nick)
    }

    pub fn channel(&self, name: &str) -> Option<&Channel> {
        self.0.channels.get(casefolded(name).as_ref())
    }

    /// By casefolded name, as kept in [`User::channels`].
    pub fn channel_by_key(&self, key: &str) -> Option<&Channel> {
        self.0.channels.get(key)
    }

    /// Every channel, with its casefolded name.
    pub fn channels(&self) -> impl Iterator<Item = (&str, &Channel)> {
        self.0.channels.iter().map(|(k, c)| (k.as_str(), c))
    }

    /// Every registered user.
    pub fn users(&self) -> impl Iterator<Item = (ClientId, &User)> {
        self.0.users.iter().map(|(id, u)| (*id, &**u))
    }

    /// NAMES entries for `chan` as a client with `caps` sees them.
    pub fn name_entries(&self, chan: &Channel, caps: u32) -> Vec<String> {
        self.0.name_entries(chan, caps, None)
    }

    /// Departed users whose nick matches `mask` (a nick or a wildcard
    /// mask), newest first, at most `count` (0: all).
    pub fn whowas(&self, mask: &str, count: usize) -> Vec<WasUser> {
        let found = self.0.whowas.iter().rev().filter(|w| parley_proto::mask::mask_matches(mask, &w.nick));
        if count == 0 {
            found.cloned().collect()
        } else {
            found.take(count).cloned().collect()
        }
    }

    /// The nicks `id` monitors, as it spelled them, in the order added.
    pub fn monitored(&self, id: ClientId) -> &[String] {
        self.0.monitors.list(id)
    }

    /// The names of the channels `id` has been invited to and not joined.
    pub fn invitations(&self, id: ClientId) -> Vec<String> {
        let mut names: Vec<String> =
            self.0.channels.values().filter(|c| c.invites.contains(&id)).map(|c| c.name.clone()).collect();
        names.sort();
        names
    }

    pub fn shares_channel(&self, a: ClientId, b: ClientId) -> bool {
        let (Some(ua), Some(ub)) = (self.user(a), self.user(b)) else {
            return false;
        };
        ua.channels.iter().any(|c| ub.channels.contains(c))
    }

    pub fn is_member(&self, id: ClientId, channel: &str) -> bool {
        self.channel(channel).is_some_and(|c| c.members.contains_key(&id))
    }

    pub fn counts(&self) -> Counts {
        let st = &self.0;
        Counts {
            users: st.users.len(),
            invisible: st.invisible_count,
            opers: st.oper_count,
            channels: st.channels.len(),
            max_users: st.max_users,
            remote_users: st.remotes.count().0,
            other_nodes: st.remotes.count().1,
        }
    }
}
