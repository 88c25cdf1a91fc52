//! Users and channels: the shared state, and nothing else.
//!
//! One `RwLock` guards the maps. Messaging takes the read lock, so senders
//! in different tasks fan out concurrently; joins, parts, nick changes and
//! quits take the write lock briefly. The lock is a `std` lock and is never
//! held across an `.await` (the guard is not `Send`, so the compiler checks).
//! Delivery to a member is a push onto its bounded queue, which never blocks.
//!
//! This is the boundary a multi-node Parley would move into Redis or NATS:
//! nothing outside the command handlers reaches into it.

use crate::channel::Channel;
use crate::outbound::{Client, ClientId, IdMap};
use crate::relay::Relay;
use parley_proto::{casefold, casefolded};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A registered user as others see it.
pub struct User {
    pub client: Arc<Client>,
    pub addr: SocketAddr,
    pub nick: String,
    pub user: String,
    pub host: String,
    pub realname: String,
    pub away: Option<String>,
    pub invisible: bool,
    /// The operator name this user authenticated as, if any.
    pub oper: Option<String>,
    /// Casefolded names of the channels this user is in.
    pub channels: Vec<String>,
    /// Unix time of registration.
    pub signon: i64,
}

impl User {
    /// `nick!user@host`, the source of everything this user sends.
    pub fn hostmask(&self) -> String {
        parley_proto::mask::hostmask(&self.nick, &self.user, &self.host)
    }
}

/// The shared maps. Reached through [`Registry::read`] and [`Registry::write`].
#[derive(Default)]
pub struct State {
    /// Boxed: the map keeps spare slots, and a slot is then a pointer
    /// rather than a whole `User`.
    pub users: IdMap<Box<User>>,
    /// Casefolded nick → user.
    pub nicks: HashMap<String, ClientId>,
    /// Casefolded channel name → channel.
    pub channels: HashMap<String, Channel>,
    /// Most users seen at once (LUSERS).
    pub max_users: usize,
    /// Users with `+i` and operators, kept as counts so LUSERS (sent on
    /// every registration) does not scan every user.
    pub invisible_count: usize,
    pub oper_count: usize,
}

#[derive(Default)]
pub struct Registry {
    state: RwLock<State>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    pub fn user_by_nick(&self, nick: &str) -> Option<&User> {
        self.nicks.get(casefolded(nick).as_ref()).and_then(|id| self.users.get(id)).map(|u| &**u)
    }

    pub fn id_by_nick(&self, nick: &str) -> Option<ClientId> {
        self.nicks.get(casefolded(nick).as_ref()).copied()
    }

    pub fn channel(&self, name: &str) -> Option<&Channel> {
        self.channels.get(casefolded(name).as_ref())
    }

    pub fn channel_mut(&mut self, name: &str) -> Option<&mut Channel> {
        self.channels.get_mut(casefolded(name).as_ref())
    }

    /// Adds a user; false if the nick is taken (checked and inserted under
    /// one write lock, so two registrations cannot both win a nick).
    pub fn add_user(&mut self, id: ClientId, user: User) -> bool {
        let key = casefold(&user.nick);
        if self.nicks.contains_key(&key) {
            return false;
        }
        self.nicks.insert(key, id);
        self.invisible_count += usize::from(user.invisible);
        self.oper_count += usize::from(user.oper.is_some());
        self.users.insert(id, Box::new(user));
        self.max_users = self.max_users.max(self.users.len());
        true
    }

    /// Delivers `relay` to every member of channel `key` except `except`.
    /// Members without message-tags skip tag-only messages (TAGMSG).
    /// Returns how many recipients it was queued for.
    pub fn send_to_channel(&self, key: &str, relay: &Relay, except: Option<ClientId>) -> usize {
        let Some(chan) = self.channels.get(key) else {
            return 0;
        };
        let tags_only = relay.tags_only();
        let mut n = 0;
        for (id, member) in &chan.members {
            if Some(*id) == except {
                continue;
            }
            let caps = member.client.caps();
            if tags_only && caps & crate::caps::MESSAGE_TAGS == 0 {
                continue;
            }
            member.client.push(relay.bytes_for(caps));
            n += 1;
        }
        n
    }

    /// Every other user sharing a channel with `id`, once each. Channels in
    /// quiet (crowded lobby) mode are skipped unless `include_quiet`.
    pub fn neighbours(&self, id: ClientId, include_quiet: bool, quiet_above: usize) -> Vec<Arc<Client>> {
        let Some(user) = self.users.get(&id) else {
            return Vec::new();
        };
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for key in &user.channels {
            let Some(chan) = self.channels.get(key) else {
                continue;
            };
            if !include_quiet && chan.is_quiet(quiet_above) {
                continue;
            }
            for (mid, member) in &chan.members {
                if *mid != id && seen.insert(*mid) {
                    out.push(member.client.clone());
                }
            }
        }
        out
    }

    /// Removes `id` from channel `key`, deleting the channel when it empties
    /// (unless it is an auto-join channel, which lives for the server's life).
    pub fn leave_channel(&mut self, id: ClientId, key: &str) {
        if let Some(chan) = self.channels.get_mut(key) {
            chan.members.remove(&id);
            chan.invites.remove(&id);
            if chan.members.is_empty() && !chan.is_lobby {
                self.channels.remove(key);
            }
        }
        if let Some(user) = self.users.get_mut(&id) {
            user.channels.retain(|c| c != key);
        }
    }

    /// Removes a user from every channel and the nick map.
    pub fn remove_user(&mut self, id: ClientId) -> Option<User> {
        let channels = self.users.get(&id)?.channels.clone();
        for key in &channels {
            self.leave_channel(id, key);
        }
        let user = self.users.remove(&id)?;
        self.nicks.remove(&casefold(&user.nick));
        self.invisible_count -= usize::from(user.invisible);
        self.oper_count -= usize::from(user.oper.is_some());
        Some(*user)
    }

    /// Sets or clears `+i`; true if it changed.
    pub fn set_invisible(&mut self, id: ClientId, on: bool) -> bool {
        let Some(user) = self.users.get_mut(&id) else { return false };
        if user.invisible == on {
            return false;
        }
        user.invisible = on;
        if on {
            self.invisible_count += 1;
        } else {
            self.invisible_count -= 1;
        }
        true
    }

    /// Grants (with the oper name) or drops operator status; true if it
    /// changed whether the user is an operator.
    pub fn set_oper(&mut self, id: ClientId, oper: Option<String>) -> bool {
        let Some(user) = self.users.get_mut(&id) else { return false };
        let (was, now) = (user.oper.is_some(), oper.is_some());
        user.oper = oper;
        match (was, now) {
            (false, true) => self.oper_count += 1,
            (true, false) => self.oper_count -= 1,
            _ => {}
        }
        was != now
    }

    /// How many registered users are IRC operators.
    pub fn opers_online(&self) -> usize {
        self.oper_count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(nick: &str) -> User {
        User {
            client: Arc::new(Client::new(1, 4096, None)),
            addr: "127.0.0.1:1".parse().unwrap(),
            nick: nick.into(),
            user: "~u".into(),
            host: "127.0.0.1".into(),
            realname: "R".into(),
            away: None,
            invisible: false,
            oper: None,
            channels: Vec::new(),
            signon: 0,
        }
    }

    #[test]
    fn nicks_are_unique_across_case_and_counts_follow_modes() {
        let mut st = State::default();
        assert!(st.add_user(1, user("Alice")));
        assert!(!st.add_user(2, user("alice")), "the same nick in another case is taken");
        assert!(st.add_user(2, user("bob")));
        assert!(st.set_invisible(1, true) && !st.set_invisible(1, true));
        assert!(st.set_oper(2, Some("admin".into())));
        assert_eq!((st.invisible_count, st.opers_online()), (1, 1));
        st.remove_user(1);
        st.remove_user(2);
        assert_eq!((st.invisible_count, st.opers_online(), st.nicks.len()), (0, 0, 0));
    }
}
