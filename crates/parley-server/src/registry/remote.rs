//! Users on other cluster nodes, as this node's registry holds them
//! (docs/CLUSTER.md). A remote user is a [`User`] like any other, so
//! WHOIS, WHO, NAMES, LUSERS and nick lookups need nothing new; it has an
//! id with [`REMOTE_ID`] set, a client handle with no socket (a push to it
//! goes nowhere), and sits in a channel's `remote_members`, never in its
//! `members`, so local fan-out never walks it: its node relays to it.
//!
//! The methods here apply what other nodes said (`cluster::inbound` calls
//! them) and tell the local members, as the local methods in `mod.rs` do.

use super::{Registry, State, User};
use crate::caps;
use crate::channel::{Channel, ListEntry, MemberFlags, ModeStamp, ModeString, Topic, LIST_MODES};
use crate::cluster::wire::{ChannelInfo, Event, ListInfo, ModeChange, Origin, TopicInfo, UserInfo};
use crate::cluster::Out;
use crate::outbound::{Client, ClientId, IdMap};
use crate::relay::Relay;
use parley_proto::{casefold, Message};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Set in every remote user's id; local ids count up from 1 and never
/// reach it.
pub const REMOTE_ID: ClientId = 1 << 63;

/// The oper name a remote operator has here: its rights are those of its
/// own node, and no command runs here on its behalf.
pub const REMOTE_OPER: &str = "(another node)";

pub fn is_remote(id: ClientId) -> bool {
    id & REMOTE_ID != 0
}

/// Where a remote user lives: its node, that node's incarnation and the
/// user's id there.
pub(super) struct RemoteUser {
    pub node: Arc<str>,
    pub inc: u64,
    pub rid: ClientId,
}

#[derive(Default)]
pub(super) struct Remotes {
    pub by_id: IdMap<RemoteUser>,
    by_origin: HashMap<(Arc<str>, ClientId), ClientId>,
    /// Users per node, for LUSERS.
    per_node: HashMap<Arc<str>, usize>,
    next: u64,
}

impl Remotes {
    pub fn lookup(&self, node: &str, rid: ClientId) -> Option<ClientId> {
        self.by_origin.get(&(Arc::from(node), rid)).copied()
    }

    fn add(&mut self, from: &Origin, rid: ClientId) -> ClientId {
        self.next += 1;
        let id = REMOTE_ID | self.next;
        let node: Arc<str> = Arc::from(from.node.as_str());
        self.by_origin.insert((node.clone(), rid), id);
        *self.per_node.entry(node.clone()).or_default() += 1;
        self.by_id.insert(id, RemoteUser { node, inc: from.inc, rid });
        id
    }

    fn remove(&mut self, id: ClientId) {
        if let Some(r) = self.by_id.remove(&id) {
            if let Some(n) = self.per_node.get_mut(&r.node) {
                *n -= 1;
                if *n == 0 {
                    self.per_node.remove(&r.node);
                }
            }
            self.by_origin.remove(&(r.node, r.rid));
        }
    }

    /// How many users, and on how many other nodes.
    pub fn count(&self) -> (usize, usize) {
        (self.by_id.len(), self.per_node.len())
    }

    fn of_node(&self, node: &str) -> Vec<(ClientId, u64)> {
        self.by_id.iter().filter(|(_, r)| &*r.node == node).map(|(id, r)| (*id, r.inc)).collect()
    }
}

impl State {
    /// What other nodes need to know of local user `id`.
    pub(super) fn user_info(&self, id: ClientId) -> Option<UserInfo> {
        let u = self.users.get(&id)?;
        let channels = u
            .channels
            .iter()
            .filter_map(|key| {
                let chan = self.channels.get(key)?;
                let f = chan.members.get(&id)?.flags;
                Some((chan.name.clone(), f.op, f.voice))
            })
            .collect();
        Some(UserInfo {
            id,
            nick: u.nick.clone(),
            user: u.user.clone(),
            host: u.host.clone(),
            realname: u.realname.clone(),
            account: u.account.as_deref().map(str::to_string),
            signon: u.signon,
            channels,
            away: u.away.clone(),
            invisible: u.invisible,
            oper: u.oper.is_some(),
        })
    }

    fn remote_join(&mut self, id: ClientId, name: &str, flags: MemberFlags, quiet_above: usize) {
        let folded = casefold(name);
        let Some(user) = self.users.get(&id) else { return };
        if user.channels.contains(&folded) {
            if let Some(chan) = self.channels.get_mut(&folded) {
                chan.remote_members.insert(id, flags);
            }
            return;
        }
        let mask = user.hostmask();
        let account = user.account.clone();
        let realname = user.realname.clone();
        let chan =
            self.channels.entry(folded.clone()).or_insert_with(|| Channel::new(name, false, crate::clock::unix_now()));
        chan.remote_members.insert(id, flags);
        if !chan.is_quiet(quiet_above) {
            let relay = Relay::new(Message::new("JOIN", vec![chan.name.clone()]).with_source(mask.clone()), Vec::new())
                .with_account(account.as_deref());
            let extended = std::cell::OnceCell::new();
            for member in chan.members.values() {
                let caps = member.client.caps();
                let line = if caps & caps::EXTENDED_JOIN != 0 {
                    extended.get_or_init(|| {
                        let params =
                            vec![chan.name.clone(), account.as_deref().unwrap_or("*").to_string(), realname.clone()];
                        Relay::new(Message::new("JOIN", params).with_source(mask.clone()), Vec::new())
                            .with_account(account.as_deref())
                    })
                } else {
                    &relay
                };
                member.client.push(line.bytes_for(caps));
            }
        }
        if let Some(user) = self.users.get_mut(&id) {
            user.channels.push(folded);
        }
    }

    fn remote_register(&mut self, from: &Origin, info: UserInfo, quiet_above: usize) -> ClientId {
        if let Some(id) = self.remotes.lookup(&from.node, info.id) {
            return id;
        }
        let id = self.remotes.add(from, info.id);
        let key = casefold(&info.nick);
        // Claims make a clash impossible but across a split; the local
        // user keeps the nick here until one of the two is renamed.
        self.note_clash(&key, id);
        if self.nicks.get(&key).is_none_or(|holder| is_remote(*holder)) {
            self.nicks.insert(key, id);
        }
        let user = User {
            client: Arc::new(Client::new(id, 0, None)),
            addr: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
            nick: info.nick,
            user: info.user,
            host: info.host,
            realname: info.realname,
            away: info.away,
            invisible: info.invisible,
            wallops: false,
            bot: false,
            oper: info.oper.then(|| REMOTE_OPER.to_string()),
            account: info.account.map(Into::into),
            channels: Vec::new(),
            signon: info.signon,
        };
        self.tell_watchers(&user.nick, Some(&user.hostmask()));
        self.invisible_count += usize::from(user.invisible);
        self.oper_count += usize::from(user.oper.is_some());
        self.users.insert(id, Box::new(user));
        self.max_users = self.max_users.max(self.users.len());
        for (name, op, voice) in info.channels {
            self.remote_join(id, &name, MemberFlags { op, voice }, quiet_above);
        }
        id
    }

    fn remote_quit(&mut self, id: ClientId, line: Option<&str>, quiet_above: usize) {
        let Some(user) = self.users.get(&id) else { return };
        let relay = match line {
            Some(line) => Relay::from_cluster(line.as_bytes(), Vec::new(), None),
            None => Relay::new(
                Message::new("QUIT", vec!["Quit: its server shut down".into()]).with_source(user.hostmask()),
                Vec::new(),
            ),
        };
        for other in self.neighbours(id, false, quiet_above) {
            other.push(relay.bytes_for(other.caps()));
        }
        self.remove_user(id);
        self.remotes.remove(id);
    }

    fn remote_rename(&mut self, id: ClientId, new: &str) {
        let Some(user) = self.users.get_mut(&id) else { return };
        let old_mask = user.hostmask();
        let was = State::was(user);
        let old_nick = std::mem::replace(&mut user.nick, new.to_string());
        let new_mask = user.hostmask();
        self.remember(was);
        let old = casefold(&old_nick);
        self.release_nick(&old, id);
        let key = casefold(new);
        self.note_clash(&key, id);
        if self.nicks.get(&key).is_none_or(|h| is_remote(*h)) {
            self.nicks.insert(key.clone(), id);
        }
        if old != key {
            self.tell_watchers(&old_nick, None);
            self.tell_watchers(new, Some(&new_mask));
        }
        let relay = Relay::new(Message::new("NICK", vec![new.to_string()]).with_source(old_mask), Vec::new());
        for client in self.neighbours(id, true, usize::MAX) {
            client.push(relay.bytes_for(client.caps()));
        }
    }

    /// Applies mode changes made elsewhere to channel `key` and tells the
    /// local members those that took effect, as a MODE line from `source`.
    fn apply_remote_modes(&mut self, key: &str, source: &str, nick: &str, stamp: &ModeStamp, changes: &[ModeChange]) {
        let targets: Vec<Option<ClientId>> = changes
            .iter()
            .map(|c| match (c.mode, &c.arg) {
                ('o' | 'v', Some(n)) => self.id_by_nick(n),
                _ => None,
            })
            .collect();
        let Some(chan) = self.channels.get_mut(key) else { return };
        let mut applied = ModeString::default();
        let mut params = vec![chan.name.clone(), String::new()];
        for (change, target) in changes.iter().zip(targets) {
            if chan.apply_remote(change, stamp, target, nick) {
                applied.push(change.adding, change.mode);
                params.extend(change.arg.clone());
            }
        }
        if applied.is_empty() {
            return;
        }
        params[1] = applied.as_str().to_string();
        let relay = Relay::new(Message::new("MODE", params).with_source(source), Vec::new());
        self.send_to_channel(key, &relay, None);
    }

    /// A snapshot's channel modes and lists: each mode taken unless a later
    /// change of it is kept here.
    fn apply_channel_info(&mut self, info: ChannelInfo) {
        let key = casefold(&info.channel);
        let stamp_of = |mode: char| info.stamps.iter().find(|(m, _)| *m == mode).map(|(_, s)| s.clone());
        let server = self.server_name.clone();
        for change in &info.modes {
            let stamp = stamp_of(change.mode).unwrap_or_default();
            // `-k *` is how a key's removal shows; the state has none.
            let change = if change.adding { change.clone() } else { ModeChange { arg: None, ..change.clone() } };
            self.apply_remote_modes(&key, &server, "", &stamp, std::slice::from_ref(&change));
        }
        let Some(chan) = self.channels.get_mut(&key) else { return };
        chan.created = chan.created.min(info.created);
        for mode in LIST_MODES {
            let Some(stamp) = stamp_of(mode) else { continue };
            let entries = info
                .lists
                .iter()
                .filter(|l| l.mode == mode)
                .map(|l| ListEntry { mask: l.mask.clone(), set_by: l.set_by.clone(), set_at: l.set_at })
                .collect();
            chan.replace_list(mode, entries, &stamp);
        }
    }

    fn set_remote_topic(&mut self, topic: TopicInfo) -> Option<String> {
        let key = casefold(&topic.channel);
        let chan = self.channels.get_mut(&key)?;
        if chan.topic.as_ref().is_some_and(|t| t.set_at > topic.set_at) {
            return None;
        }
        chan.topic =
            (!topic.text.is_empty()).then_some(Topic { text: topic.text, set_by: topic.set_by, set_at: topic.set_at });
        Some(key)
    }
}

impl Registry {
    /// A user registered on another node.
    pub fn remote_register(&self, from: &Origin, info: UserInfo, quiet_above: usize) {
        self.write().remote_register(from, info, quiet_above);
    }

    pub fn remote_join(&self, node: &str, rid: ClientId, channel: &str, op: bool, quiet_above: usize) {
        let mut st = self.write();
        if let Some(id) = st.remotes.lookup(node, rid) {
            st.remote_join(id, channel, MemberFlags { op, voice: false }, quiet_above);
        }
    }

    pub fn remote_part(&self, node: &str, rid: ClientId, channel: &str, line: &str, quiet_above: usize) {
        let mut st = self.write();
        let Some(id) = st.remotes.lookup(node, rid) else { return };
        let key = casefold(channel);
        if st.channels.get(&key).is_some_and(|c| !c.is_quiet(quiet_above)) {
            st.send_to_channel(&key, &Relay::from_cluster(line.as_bytes(), Vec::new(), None), None);
        }
        st.leave_channel(id, &key);
    }

    /// A KICK on another node: the kicked user, local or not, leaves.
    pub fn remote_kick(&self, nick: &str, channel: &str, line: &str) {
        let mut st = self.write();
        let Some(target) = st.id_by_nick(nick) else { return };
        let key = casefold(channel);
        st.send_to_channel(&key, &Relay::from_cluster(line.as_bytes(), Vec::new(), None), None);
        st.leave_channel(target, &key);
    }

    pub fn remote_topic(&self, topic: TopicInfo, line: &str) {
        let mut st = self.write();
        if let Some(key) = st.set_remote_topic(topic) {
            st.send_to_channel(&key, &Relay::from_cluster(line.as_bytes(), Vec::new(), None), None);
        }
    }

    /// Channel modes changed on another node.
    pub fn remote_modes(&self, channel: &str, source: &str, nick: &str, stamp: &ModeStamp, changes: &[ModeChange]) {
        self.write().apply_remote_modes(&casefold(channel), source, nick, stamp, changes);
    }

    /// An invitation made on another node: if the invitee is here, it may
    /// now pass `+i` and gets the INVITE line; the channel's members here
    /// with `invite-notify` see it too.
    pub fn remote_invite(&self, nick: &str, channel: &str, source: &str, account: Option<&str>) {
        let mut st = self.write();
        let Some(target) = st.id_by_nick(nick) else { return };
        let key = casefold(channel);
        let Some(chan) = st.channels.get_mut(&key) else { return };
        let name = chan.name.clone();
        let relay = Relay::new(Message::new("INVITE", vec![nick.to_string(), name]).with_source(source), Vec::new())
            .with_account(account);
        if !is_remote(target) {
            chan.invites.insert(target);
            if let Some(user) = st.users.get(&target) {
                user.client.push(relay.bytes_for(user.client.caps()));
            }
        }
        st.send_to_channel_with(&key, &relay, Some(target), caps::INVITE_NOTIFY);
    }

    /// Asks the node of remote user `nick` to close it: an operator here
    /// (`by`) killed it.
    pub fn kill_remote(&self, nick: &str, by: &str, reason: &str) {
        let st = self.read();
        st.0.tell_cluster(|| {
            Out::State(Event::Kill { nick: nick.to_string(), by: by.to_string(), reason: reason.to_string() })
        });
    }

    /// Another node's user `rid`: its id and hostmask here.
    pub fn remote_user(&self, node: &str, rid: ClientId) -> Option<(ClientId, String)> {
        let st = self.read();
        let id = st.0.remotes.lookup(node, rid)?;
        Some((id, st.0.users.get(&id)?.hostmask()))
    }

    pub fn remote_rename(&self, node: &str, rid: ClientId, nick: &str) {
        let mut st = self.write();
        if let Some(id) = st.remotes.lookup(node, rid) {
            st.remote_rename(id, nick);
        }
    }

    /// A remote user left: its QUIT line (or, at its node's shutdown, one
    /// made here) goes to the local users sharing a channel with it.
    pub fn remote_quit(&self, node: &str, rid: ClientId, line: Option<&str>, quiet_above: usize) {
        let mut st = self.write();
        if let Some(id) = st.remotes.lookup(node, rid) {
            st.remote_quit(id, line, quiet_above);
        }
    }

    /// Node `node` is gone (`keep`: but for its incarnation `keep`, when it
    /// restarted): each of its users is seen to quit with `reason`.
    pub fn drop_node(&self, node: &str, keep: Option<u64>, reason: &str, quiet_above: usize) -> usize {
        let mut st = self.write();
        let gone: Vec<ClientId> =
            st.remotes.of_node(node).into_iter().filter(|(_, inc)| Some(*inc) != keep).map(|(id, _)| id).collect();
        for id in &gone {
            let Some(mask) = st.users.get(id).map(|u| u.hostmask()) else { continue };
            let line = Message::new("QUIT", vec![reason.to_string()]).with_source(mask).to_bytes();
            st.remote_quit(*id, std::str::from_utf8(&line).ok(), quiet_above);
        }
        gone.len()
    }

    /// Node `from`'s whole state: its users not in it are gone, new ones
    /// arrive, known ones are brought up to date.
    pub fn remote_snapshot(
        &self,
        from: &Origin,
        users: Vec<UserInfo>,
        topics: Vec<TopicInfo>,
        channels: Vec<ChannelInfo>,
        quiet_above: usize,
    ) {
        let mut st = self.write();
        let listed: HashSet<ClientId> = users.iter().map(|u| u.id).collect();
        let known = st.remotes.of_node(&from.node);
        for (id, _) in known {
            let rid = st.remotes.by_id.get(&id).map(|r| r.rid);
            if rid.is_some_and(|rid| !listed.contains(&rid)) {
                st.remote_quit(id, None, quiet_above);
            }
        }
        for info in users {
            let Some(id) = st.remotes.lookup(&from.node, info.id) else {
                st.remote_register(from, info, quiet_above);
                continue;
            };
            if st.users.get(&id).is_some_and(|u| u.nick != info.nick) {
                st.remote_rename(id, &info.nick);
            }
            if let Some(user) = st.users.get_mut(&id) {
                let was_invisible = std::mem::replace(&mut user.invisible, info.invisible);
                user.away = info.away.clone();
                user.realname = info.realname.clone();
                user.account = info.account.as_deref().map(Into::into);
                st.invisible_count = st.invisible_count + usize::from(info.invisible) - usize::from(was_invisible);
                if info.oper != st.users.get(&id).is_some_and(|u| u.oper.is_some()) {
                    set_remote_oper(&mut st, id, info.oper);
                }
            }
            let wanted: HashSet<String> = info.channels.iter().map(|(n, _, _)| casefold(n)).collect();
            let had = st.users.get(&id).map(|u| u.channels.clone()).unwrap_or_default();
            for key in had.iter().filter(|k| !wanted.contains(*k)) {
                st.leave_channel(id, key);
            }
            for (name, op, voice) in &info.channels {
                st.remote_join(id, name, MemberFlags { op: *op, voice: *voice }, quiet_above);
            }
        }
        for topic in topics {
            st.set_remote_topic(topic);
        }
        for info in channels {
            st.apply_channel_info(info);
        }
    }

    /// A message relayed from another node to channel `channel`'s local
    /// members (`status`: only those with `@` or `+`).
    pub fn deliver_to_channel(&self, channel: &str, status: Option<char>, relay: &Relay) -> usize {
        let key = casefold(channel);
        let st = self.read();
        match status {
            None => st.0.send_to_channel(&key, relay, None),
            Some(prefix) => st.0.send_to_members(&key, relay, None, 0, |f| f.reaches(prefix)),
        }
    }

    /// A private message relayed from another node to local user `id`, if
    /// it still has `nick`.
    pub fn deliver_to_user(&self, id: ClientId, nick: &str, relay: &Relay) -> bool {
        let st = self.read();
        let Some(user) = st.user(id).filter(|u| !is_remote(id) && parley_proto::irc_eq(&u.nick, nick)) else {
            return false;
        };
        let caps = user.client.caps();
        if !relay.tags_only() || caps & caps::MESSAGE_TAGS != 0 {
            user.client.push(relay.bytes_for(caps));
        }
        true
    }

    /// Publishes everything other nodes need to know of this node's users.
    /// Queued under the lock, so no change made after it was taken can be
    /// queued before it (others would apply the older snapshot last).
    pub fn publish_snapshot(&self) {
        let st = self.read();
        if let Some(cluster) = &st.0.cluster {
            for part in local_snapshot(&st.0, cluster.part_bytes()) {
                cluster.send(Out::State(part));
            }
        }
    }
}

/// Brings a remote user's operator status in line with its snapshot.
fn set_remote_oper(st: &mut State, id: ClientId, on: bool) {
    let Some(user) = st.users.get_mut(&id) else { return };
    user.oper = on.then(|| REMOTE_OPER.to_string());
    if on {
        st.oper_count += 1;
    } else {
        st.oper_count -= 1;
    }
}

/// Everything other nodes need to know of this node's users, in parts
/// that each fit a NATS message.
fn local_snapshot(st: &State, part_bytes: usize) -> Vec<Event> {
    let users: Vec<UserInfo> =
        st.users.keys().filter(|id| !is_remote(**id)).filter_map(|id| st.user_info(*id)).collect();
    let topics = st
        .channels
        .values()
        .filter(|c| !c.members.is_empty())
        .filter_map(|c| {
            let t = c.topic.as_ref()?;
            Some(TopicInfo {
                channel: c.name.clone(),
                text: t.text.clone(),
                set_by: t.set_by.clone(),
                set_at: t.set_at,
            })
        })
        .collect();
    let channels = st
        .channels
        .values()
        .filter(|c| !c.members.is_empty())
        .map(|c| ChannelInfo {
            channel: c.name.clone(),
            created: c.created,
            modes: c.mode_state(),
            lists: LIST_MODES
                .iter()
                .flat_map(|m| {
                    c.list(*m).iter().map(|e| ListInfo {
                        mode: *m,
                        mask: e.mask.clone(),
                        set_by: e.set_by.clone(),
                        set_at: e.set_at,
                    })
                })
                .collect(),
            stamps: c.stamps.clone(),
        })
        .collect();
    crate::cluster::snapshot::split(users, topics, channels, part_bytes)
}
