//! The shared state's own helpers, used by the registry's methods under
//! their lock: lookups, fan-out to a channel's members and to a user's
//! neighbours, leaving a channel, removing a user, and the WHOWAS memory.

use super::{State, User, WasUser};
use crate::caps;
use crate::channel::{Channel, MemberFlags};
use crate::outbound::{Client, ClientId};
use crate::refusal::Refusal;
use crate::relay::Relay;
use parley_proto::{casefold, casefolded};
use std::collections::HashSet;
use std::sync::Arc;

impl State {
    /// Hands a change to the cluster, if there is one (the event is made
    /// only then).
    pub(super) fn tell_cluster(&self, event: impl FnOnce() -> crate::cluster::Out) {
        if let Some(cluster) = &self.cluster {
            cluster.send(event());
        }
    }

    /// A stamp for a change made here now: the time, and this node's name
    /// (empty on a single node).
    pub(super) fn stamp(&self) -> crate::channel::ModeStamp {
        let now = crate::clock::unix_millis(std::time::SystemTime::now());
        (now, self.cluster.as_ref().map(|c| c.node().to_string()).unwrap_or_default())
    }

    pub(super) fn was(user: &User) -> WasUser {
        WasUser {
            nick: user.nick.clone(),
            user: user.user.clone(),
            host: user.host.clone(),
            realname: user.realname.clone(),
            until: crate::clock::unix_now(),
        }
    }

    /// Adds a departed nick to the WHOWAS history, forgetting the oldest.
    pub(super) fn remember(&mut self, was: WasUser) {
        if self.whowas_entries == 0 {
            return;
        }
        if self.whowas.len() == self.whowas_entries {
            self.whowas.pop_front();
        }
        self.whowas.push_back(was);
    }

    /// Channel `name` (with its casefolded key) if it exists and `id` is
    /// in it.
    pub(super) fn channel_of(&mut self, id: ClientId, name: &str) -> Result<(String, &mut Channel), Refusal> {
        let key = casefold(name);
        let chan = self.channels.get_mut(&key).ok_or_else(|| Refusal::NoSuchChannel(name.to_string()))?;
        if !chan.members.contains_key(&id) {
            return Err(Refusal::NotOnChannel(chan.name.clone()));
        }
        Ok((key, chan))
    }

    /// `id` no longer holds nick `key` (casefolded). If another user holds
    /// it too (a clash from a cluster split), the nick now finds that one.
    pub(super) fn release_nick(&mut self, key: &str, id: ClientId) {
        if self.nicks.get(key) == Some(&id) {
            self.nicks.remove(key);
        }
        if self.nick_clashes.contains(key) {
            let other = self.users.iter().find(|(uid, u)| **uid != id && casefold(&u.nick) == key).map(|(uid, _)| *uid);
            match other {
                Some(other) => {
                    self.nicks.entry(key.to_string()).or_insert(other);
                }
                None => {
                    self.nick_clashes.remove(key);
                }
            }
        }
    }

    /// Notes that `key` is held by `id` and by whoever the map names.
    pub(super) fn note_clash(&mut self, key: &str, id: ClientId) {
        if self.nicks.get(key).is_some_and(|holder| *holder != id) {
            tracing::warn!(nick = %key, "two users hold one nick (a cluster split): the loser is renamed when its node returns");
            self.nick_clashes.insert(key.to_string());
        }
    }

    pub(super) fn id_by_nick(&self, nick: &str) -> Option<ClientId> {
        self.nicks.get(casefolded(nick).as_ref()).copied()
    }

    pub(super) fn user_by_nick(&self, nick: &str) -> Option<&User> {
        self.id_by_nick(nick).and_then(|id| self.users.get(&id)).map(|u| &**u)
    }

    /// Delivers `relay` to every member of channel `key` except `except`.
    /// Members without message-tags skip tag-only messages (TAGMSG).
    /// Returns how many recipients it was queued for.
    pub(super) fn send_to_channel(&self, key: &str, relay: &Relay, except: Option<ClientId>) -> usize {
        self.send_to_channel_with(key, relay, except, 0)
    }

    /// [`send_to_channel`](Self::send_to_channel) to the members that have
    /// every capability in `needs`.
    pub(super) fn send_to_channel_with(&self, key: &str, relay: &Relay, except: Option<ClientId>, needs: u32) -> usize {
        self.send_to_members(key, relay, except, needs, |_| true)
    }

    /// [`send_to_channel_with`](Self::send_to_channel_with) to the members
    /// whose channel privileges pass `privileged`.
    pub(super) fn send_to_members(
        &self,
        key: &str,
        relay: &Relay,
        except: Option<ClientId>,
        needs: u32,
        privileged: impl Fn(&MemberFlags) -> bool,
    ) -> usize {
        let Some(chan) = self.channels.get(key) else {
            return 0;
        };
        let tags_only = relay.tags_only();
        let mut n = 0;
        for (id, member) in &chan.members {
            if Some(*id) == except || !privileged(&member.flags) {
                continue;
            }
            let caps = member.client.caps();
            if tags_only && caps & caps::MESSAGE_TAGS == 0 || caps & needs != needs {
                continue;
            }
            member.client.push(relay.bytes_for(caps));
            n += 1;
        }
        n
    }

    /// Every other user sharing a channel with `id`, once each. Channels in
    /// quiet (crowded lobby) mode are skipped unless `include_quiet`.
    pub(super) fn neighbours(&self, id: ClientId, include_quiet: bool, quiet_above: usize) -> Vec<Arc<Client>> {
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

    /// NAMES entries for `chan` as seen by a client with `caps`. With
    /// `only`, just that member and the channel operators (a crowded lobby
    /// on join).
    pub(super) fn name_entries(&self, chan: &Channel, caps: u32, only: Option<ClientId>) -> Vec<String> {
        let multi = caps & caps::MULTI_PREFIX != 0;
        let userhost = caps & caps::USERHOST_IN_NAMES != 0;
        chan.all_members()
            .filter(|(id, f)| only.is_none_or(|o| *id == o || f.op))
            .filter_map(|(id, f)| {
                let user = self.users.get(&id)?;
                let prefix = f.prefix(multi);
                Some(if userhost { format!("{prefix}{}", user.hostmask()) } else { format!("{prefix}{}", user.nick) })
            })
            .collect()
    }

    /// Removes `id` from channel `key`, deleting the channel when it empties
    /// (unless it is an auto-join channel, which lives for the server's life).
    pub(super) fn leave_channel(&mut self, id: ClientId, key: &str) {
        if let Some(chan) = self.channels.get_mut(key) {
            let was_local = chan.members.remove(&id).is_some();
            chan.remote_members.remove(&id);
            chan.invites.remove(&id);
            let last_here = was_local && chan.members.is_empty();
            if chan.member_count() == 0 && !chan.is_lobby {
                self.channels.remove(key);
            }
            if last_here {
                // This node no longer needs the channel's cluster traffic.
                self.tell_cluster(|| crate::cluster::Out::Unsubscribe(key.to_string()));
            }
        }
        if let Some(user) = self.users.get_mut(&id) {
            user.channels.retain(|c| c != key);
        }
    }

    /// Removes a user from every channel, the nick map and MONITOR (its
    /// own list; those monitoring it hear that it is offline).
    pub(super) fn remove_user(&mut self, id: ClientId) -> Option<User> {
        let channels = self.users.get(&id)?.channels.clone();
        for key in &channels {
            self.leave_channel(id, key);
        }
        let user = self.users.remove(&id)?;
        self.remember(State::was(&user));
        self.release_nick(&casefold(&user.nick), id);
        self.monitors.clear(id);
        self.tell_watchers(&user.nick, None);
        self.invisible_count -= usize::from(user.invisible);
        self.oper_count -= usize::from(user.oper.is_some());
        Some(*user)
    }
}
