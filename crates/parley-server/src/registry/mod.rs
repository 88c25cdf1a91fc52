//! Users and channels: the shared state, and the rules for changing it.
//!
//! The maps are private. Commands read through a [`View`] and change things
//! through the methods here, each of which checks its rules and returns what
//! happened or a [`Refusal`]. Fan-out to the members of a channel happens
//! here as well, under the same lock as the check, so a line never reaches
//! someone who has just left. A line for the acting client itself is not
//! pushed here: it comes back (a [`Relay`]) for the command to put in its
//! replies, so the client sees everything in the order it happened.
//!
//! One `RwLock` guards the maps: messaging takes the read lock, so senders
//! in different tasks fan out at once; joins, parts, renames and quits take
//! the write lock briefly. It is a `std` lock, never held across an
//! `.await` (the guards are not `Send`). Delivery is a push onto the
//! member's bounded queue, which never blocks.
//!
//! This is the seam a cluster backend sits behind: nothing outside this
//! module knows how users and channels are stored.

mod monitor;
pub mod remote;
mod state;
mod users;
mod view;

pub use crate::refusal::Refusal;
pub use users::{Monitored, UserFlag};
pub use view::{Counts, View};

use crate::caps;
use crate::channel::{Channel, Member, MemberFlags, ModeOp, ModeOutcome, Topic};
use crate::cluster::wire::{Event, TopicInfo};
use crate::cluster::{Out, Outbox};
use crate::outbound::{Client, ClientId, IdMap};
use crate::relay::Relay;
use monitor::Monitors;
use parley_proto::{casefold, casefolded, Message};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock, RwLockWriteGuard};

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
    /// `+w`: receives WALLOPS.
    pub wallops: bool,
    /// `+B`: marks itself as a bot (IRCv3 bot mode).
    pub bot: bool,
    /// The operator name this user authenticated as, if any.
    pub oper: Option<String>,
    /// The account logged in to, if any (boxed: a pointer and a length).
    pub account: Option<Box<str>>,
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

/// A nick as it was when its user left or renamed (WHOWAS).
#[derive(Clone)]
pub struct WasUser {
    pub nick: String,
    pub user: String,
    pub host: String,
    pub realname: String,
    /// Unix time it was given up.
    pub until: i64,
}

#[derive(Default)]
struct State {
    /// Boxed: the map keeps spare slots, and a slot is then a pointer
    /// rather than a whole `User`.
    users: IdMap<Box<User>>,
    /// Casefolded nick → user.
    nicks: HashMap<String, ClientId>,
    /// Casefolded channel name → channel.
    channels: HashMap<String, Channel>,
    /// Most users seen at once (LUSERS).
    max_users: usize,
    /// Users with `+i` and operators, kept as counts so LUSERS (sent on
    /// every registration) does not scan every user.
    invisible_count: usize,
    oper_count: usize,
    /// Departed nicks, newest last, at most `whowas_entries`.
    whowas: std::collections::VecDeque<WasUser>,
    whowas_entries: usize,
    /// Who watches which nick (MONITOR).
    monitors: Monitors,
    /// The source of the numerics the registry sends itself (MONITOR's).
    server_name: String,
    /// Where changes go to be told to the other cluster nodes; `None` on
    /// a single node.
    cluster: Option<Outbox>,
    /// Users on other cluster nodes (see `remote`).
    remotes: remote::Remotes,
    /// Casefolded nicks two users hold at once: made on two sides of a
    /// cluster split, until the loser is renamed (see `release_nick`).
    nick_clashes: std::collections::HashSet<String>,
}

/// What a successful join hands back to the joiner.
pub struct Joined {
    pub name: String,
    pub topic: Option<Topic>,
    /// NAMES entries as the joiner sees them.
    pub names: Vec<String>,
    /// A crowded lobby: the join was not announced.
    pub quiet: bool,
    pub members: usize,
    /// The JOIN line, for the joiner's own copy.
    pub relay: Relay,
    /// The channel's symbol for NAMES (`=`, `*` or `@`).
    pub symbol: &'static str,
}

/// A line that was delivered to others, and the channel's canonical name.
pub struct Announced {
    pub channel: String,
    pub relay: Relay,
}

/// The rules that bound a join.
pub struct JoinLimits {
    pub max_channels: usize,
    pub quiet_above: usize,
}

pub struct Registry {
    state: RwLock<State>,
}

impl Registry {
    /// An empty registry with the auto-join channels already made (they
    /// live for the server's life). `server_name` is the source of the
    /// numerics it sends; `whowas_entries` bounds the WHOWAS history.
    pub fn new(server_name: &str, lobbies: &[String], now: i64, whowas_entries: usize) -> Registry {
        let mut state = State { whowas_entries, server_name: server_name.to_string(), ..State::default() };
        for name in lobbies {
            state.channels.insert(casefold(name), Channel::new(name, true, now));
        }
        Registry { state: RwLock::new(state) }
    }

    /// Tells the other cluster nodes of every change from now on.
    pub fn attach_cluster(&mut self, outbox: Outbox) {
        self.write().cluster = Some(outbox);
    }

    pub fn read(&self) -> View<'_> {
        View(self.state.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a registered user; refused if the nick is taken (checked and
    /// inserted under one lock, so two registrations cannot both win it).
    /// Whoever monitors the nick hears that it is online.
    pub fn register(&self, id: ClientId, user: User) -> Result<(), Refusal> {
        let mut st = self.write();
        let key = casefold(&user.nick);
        if st.nicks.contains_key(&key) {
            return Err(Refusal::NickInUse(user.nick));
        }
        st.nicks.insert(key, id);
        st.invisible_count += usize::from(user.invisible);
        st.oper_count += usize::from(user.oper.is_some());
        st.tell_watchers(&user.nick, Some(&user.hostmask()));
        st.users.insert(id, Box::new(user));
        st.max_users = st.max_users.max(st.users.len());
        st.tell_cluster(|| Out::State(Event::Register { user: st.user_info(id).expect("inserted above") }));
        Ok(())
    }

    /// Renames `id` to `new`, telling everyone who shares a channel with it
    /// (crowded lobbies too: a nick change must not go unseen), and those
    /// monitoring the old nick or the new one (unless only the case
    /// changed). Returns the NICK line for the user's own copy.
    pub fn rename(&self, id: ClientId, new: &str, old_mask: String) -> Result<Relay, Refusal> {
        let mut st = self.write();
        let key = casefold(new);
        if st.nicks.get(&key).is_some_and(|holder| *holder != id) {
            return Err(Refusal::NickInUse(new.to_string()));
        }
        let Some(user) = st.users.get_mut(&id) else {
            return Err(Refusal::NoSuchNick(new.to_string()));
        };
        let was = State::was(user);
        let account = user.account.clone();
        let old_nick = std::mem::replace(&mut user.nick, new.to_string());
        let new_mask = user.hostmask();
        let old = casefold(&old_nick);
        st.remember(was);
        st.release_nick(&old, id);
        if old != key {
            st.tell_watchers(&old_nick, None);
            st.tell_watchers(new, Some(&new_mask));
        }
        st.nicks.insert(key, id);
        st.tell_cluster(|| Out::State(Event::Rename { id, nick: new.to_string() }));
        let relay = Relay::new(Message::new("NICK", vec![new.to_string()]).with_source(old_mask), Vec::new())
            .with_account(account.as_deref());
        for client in st.neighbours(id, true, usize::MAX) {
            client.push(relay.bytes_for(client.caps()));
        }
        Ok(relay)
    }

    /// Joins `id` to channel `name`, creating it (with the joiner as its
    /// operator) if needed. `Ok(None)`: already a member. The JOIN goes to
    /// the other members unless the channel is a crowded lobby.
    pub fn join(
        &self,
        id: ClientId,
        name: &str,
        key: Option<&str>,
        mask: &str,
        caps: u32,
        limits: &JoinLimits,
    ) -> Result<Option<Joined>, Refusal> {
        let folded = casefold(name);
        let mut st = self.write();
        let Some(user) = st.users.get(&id) else {
            return Ok(None);
        };
        if user.channels.contains(&folded) {
            return Ok(None);
        }
        if user.channels.len() >= limits.max_channels {
            return Err(Refusal::TooManyChannels(name.to_string()));
        }
        let client = user.client.clone();
        let away = user.away.clone();
        let account = user.account.clone();
        let realname = user.realname.clone();
        let creating = !st.channels.contains_key(&folded);
        if creating {
            st.channels.insert(folded.clone(), Channel::new(name, false, crate::clock::unix_now()));
        }
        let chan = st.channels.get_mut(&folded).expect("inserted above");
        if !creating {
            chan.check_join(id, key, mask)?;
        }
        let first_here = chan.members.is_empty();
        chan.members.insert(id, Member { flags: MemberFlags { op: creating, voice: false }, client });
        chan.invites.remove(&id);
        let quiet = chan.is_quiet(limits.quiet_above);
        let chan_name = chan.name.clone();
        let relay = Relay::new(Message::new("JOIN", vec![chan_name.clone()]).with_source(mask), Vec::new())
            .with_account(account.as_deref());
        // extended-join: the account (or `*`) and realname too; built only
        // if someone asked for it.
        let make_extended = || {
            let params = vec![chan_name.clone(), account.as_deref().unwrap_or("*").to_string(), realname.clone()];
            Relay::new(Message::new("JOIN", params).with_source(mask), Vec::new()).with_account(account.as_deref())
        };
        let extended = std::cell::OnceCell::new();
        if !quiet {
            for (mid, member) in &chan.members {
                if *mid != id {
                    let caps = member.client.caps();
                    let line =
                        if caps & caps::EXTENDED_JOIN != 0 { extended.get_or_init(make_extended) } else { &relay };
                    member.client.push(line.bytes_for(caps));
                }
            }
            // Members who follow away states learn that this one is away.
            if let Some(text) = away {
                let away = Relay::new(Message::new("AWAY", vec![text]).with_source(mask), Vec::new());
                st.send_to_channel_with(&folded, &away, Some(id), caps::AWAY_NOTIFY);
            }
        }
        if let Some(user) = st.users.get_mut(&id) {
            user.channels.push(folded.clone());
        }
        if let Some(cluster) = &st.cluster {
            if first_here {
                cluster.send(Out::Subscribe(folded.clone()));
            }
            cluster.send(Out::State(Event::Join { id, channel: chan_name.clone(), op: creating }));
        }
        let chan = &st.channels[&folded];
        Ok(Some(Joined {
            name: chan.name.clone(),
            topic: chan.topic.clone(),
            names: st.name_entries(chan, caps, quiet.then_some(id)),
            quiet,
            members: chan.member_count(),
            relay: if caps & caps::EXTENDED_JOIN != 0 {
                extended.into_inner().unwrap_or_else(make_extended)
            } else {
                relay
            },
            symbol: chan.modes.names_symbol(),
        }))
    }

    /// Takes `id` out of channel `name`, telling the others (unless it is
    /// a crowded lobby).
    pub fn part(
        &self,
        id: ClientId,
        name: &str,
        reason: &str,
        mask: &str,
        quiet_above: usize,
    ) -> Result<Announced, Refusal> {
        let mut st = self.write();
        let (key, chan) = st.channel_of(id, name)?;
        let mut params = vec![chan.name.clone()];
        if !reason.is_empty() {
            params.push(reason.to_string());
        }
        let relay = Relay::new(Message::new("PART", params).with_source(mask), Vec::new());
        let channel = chan.name.clone();
        if !chan.is_quiet(quiet_above) {
            st.send_to_channel(&key, &relay, Some(id));
        }
        st.tell_cluster(|| Out::State(Event::Part { id, channel: channel.clone(), line: relay.plain_text() }));
        st.leave_channel(id, &key);
        Ok(Announced { channel, relay })
    }

    /// Sets (or, with an empty text, clears) a channel's topic.
    pub fn set_topic(
        &self,
        id: ClientId,
        name: &str,
        text: &str,
        nick: &str,
        mask: &str,
    ) -> Result<Announced, Refusal> {
        let mut st = self.write();
        let (key, chan) = st.channel_of(id, name)?;
        if chan.modes.topic_ops_only && !chan.is_op(id) {
            return Err(Refusal::ChanOpPrivsNeeded(chan.name.clone()));
        }
        chan.topic = (!text.is_empty()).then(|| Topic {
            text: text.to_string(),
            set_by: nick.to_string(),
            set_at: crate::clock::unix_now(),
        });
        let channel = chan.name.clone();
        let relay =
            Relay::new(Message::new("TOPIC", vec![channel.clone(), text.to_string()]).with_source(mask), Vec::new());
        st.send_to_channel(&key, &relay, Some(id));
        st.tell_cluster(|| {
            let topic = TopicInfo {
                channel: channel.clone(),
                text: text.to_string(),
                set_by: nick.to_string(),
                set_at: crate::clock::unix_now(),
            };
            Out::State(Event::Topic { topic, line: relay.plain_text() })
        });
        Ok(Announced { channel, relay })
    }

    /// Invites `nick` to channel `name` and tells them, and the members
    /// who asked for `invite-notify`. Returns their nick and the channel's
    /// name as stored.
    pub fn invite(&self, id: ClientId, nick: &str, name: &str, mask: &str) -> Result<(String, String), Refusal> {
        let mut st = self.write();
        let target = st.id_by_nick(nick).ok_or_else(|| Refusal::NoSuchNick(nick.to_string()))?;
        let (_, chan) = st.channel_of(id, name)?;
        let channel = chan.name.clone();
        if chan.has_member(target) {
            return Err(Refusal::UserOnChannel { nick: nick.to_string(), channel });
        }
        if chan.modes.invite_only && !chan.is_op(id) {
            return Err(Refusal::ChanOpPrivsNeeded(channel));
        }
        // A remote invitee's invitation is kept by its own node.
        if !remote::is_remote(target) {
            chan.invites.insert(target);
        }
        let account = st.users.get(&id).and_then(|u| u.account.clone());
        let key = casefold(&channel);
        let target_user = &st.users[&target];
        let relay = Relay::new(
            Message::new("INVITE", vec![target_user.nick.clone(), channel.clone()]).with_source(mask),
            Vec::new(),
        )
        .with_account(account.as_deref());
        target_user.client.push(relay.bytes_for(target_user.client.caps()));
        st.send_to_channel_with(&key, &relay, Some(id), caps::INVITE_NOTIFY);
        let target_nick = target_user.nick.clone();
        st.tell_cluster(|| {
            Out::State(Event::Invite {
                nick: target_nick.clone(),
                channel: channel.clone(),
                source: mask.to_string(),
                account: account.as_deref().map(str::to_string),
            })
        });
        Ok((target_nick, channel))
    }

    /// Removes `nick` from channel `name` on behalf of operator `id`.
    /// Returns the KICK (sent to the others) and the kicked nick.
    pub fn kick(
        &self,
        id: ClientId,
        name: &str,
        nick: &str,
        reason: &str,
        mask: &str,
    ) -> Result<(Announced, String), Refusal> {
        let mut st = self.write();
        let target = st.id_by_nick(nick);
        let (key, chan) = st.channel_of(id, name)?;
        let channel = chan.name.clone();
        if !chan.is_op(id) {
            return Err(Refusal::ChanOpPrivsNeeded(channel));
        }
        let Some(target) = target.filter(|t| chan.has_member(*t)) else {
            return Err(Refusal::UserNotInChannel { nick: nick.to_string(), channel });
        };
        let target_nick = st.users[&target].nick.clone();
        let relay = Relay::new(
            Message::new("KICK", vec![channel.clone(), target_nick.clone(), reason.to_string()]).with_source(mask),
            Vec::new(),
        );
        st.send_to_channel(&key, &relay, Some(id));
        st.tell_cluster(|| {
            Out::State(Event::Kick { nick: target_nick.clone(), channel: channel.clone(), line: relay.plain_text() })
        });
        st.leave_channel(target, &key);
        Ok((Announced { channel, relay }, target_nick))
    }

    /// Applies parsed channel mode changes for `id` and tells the channel
    /// what changed. `nick` and the time go on new list entries; each list
    /// holds at most `max_list`.
    pub fn change_channel_modes(
        &self,
        id: ClientId,
        name: &str,
        ops: Vec<ModeOp>,
        nick: &str,
        mask: &str,
        max_list: usize,
    ) -> Result<(ModeOutcome, Option<Relay>), Refusal> {
        let key = casefold(name);
        let mut st = self.write();
        // Nicks named by +o/+v, resolved before the channel is borrowed.
        let targets: Vec<(String, ClientId)> = ops
            .iter()
            .filter_map(|op| match op {
                ModeOp::Set { mode: 'o' | 'v', arg: Some(a), .. } => st.id_by_nick(a).map(|id| (casefold(a), id)),
                _ => None,
            })
            .collect();
        let stamp = st.stamp();
        let chan = st.channels.get_mut(&key).ok_or_else(|| Refusal::NoSuchChannel(name.to_string()))?;
        let outcome = chan.apply_modes(id, ops, &targets, nick, max_list);
        for change in &outcome.changes {
            if !matches!(change.mode, 'o' | 'v') {
                chan.take_stamp(change.mode, &stamp);
            }
        }
        let relay = (!outcome.applied.is_empty()).then(|| {
            let mut params = vec![outcome.channel.clone(), outcome.applied.as_str().to_string()];
            params.extend(outcome.args.iter().cloned());
            Relay::new(Message::new("MODE", params).with_source(mask), Vec::new())
        });
        if let Some(relay) = &relay {
            st.send_to_channel(&key, relay, Some(id));
            st.tell_cluster(|| {
                Out::State(Event::ChanMode {
                    channel: outcome.channel.clone(),
                    source: mask.to_string(),
                    nick: nick.to_string(),
                    stamp,
                    changes: outcome.changes.clone(),
                })
            });
        }
        Ok((outcome, relay))
    }

    /// Sets or clears `+i`; true if it changed.
    pub fn set_invisible(&self, id: ClientId, on: bool) -> bool {
        let mut st = self.write();
        let Some(user) = st.users.get_mut(&id) else { return false };
        if user.invisible == on {
            return false;
        }
        user.invisible = on;
        if !remote::is_remote(id) {
            st.tell_cluster(|| Out::State(Event::Invisible { id, on }));
        }
        if on {
            st.invisible_count += 1;
        } else {
            st.invisible_count -= 1;
        }
        true
    }

    /// Grants (with the oper name) or drops operator status; true if it
    /// changed whether the user is an operator.
    pub fn set_oper(&self, id: ClientId, oper: Option<String>) -> bool {
        let mut st = self.write();
        let Some(user) = st.users.get_mut(&id) else { return false };
        let (was, now) = (user.oper.is_some(), oper.is_some());
        user.oper = oper;
        if was != now && !remote::is_remote(id) {
            st.tell_cluster(|| Out::State(Event::Oper { id, on: now }));
        }
        match (was, now) {
            (false, true) => st.oper_count += 1,
            (true, false) => st.oper_count -= 1,
            _ => {}
        }
        was != now
    }

    /// Sets or clears the account a user is logged in to, and tells the
    /// neighbours and monitors that asked for `account-notify` (`ACCOUNT
    /// name`, or `*`).
    pub fn set_account(&self, id: ClientId, account: Option<&str>, mask: &str) {
        let mut st = self.write();
        let Some(user) = st.users.get_mut(&id) else { return };
        user.account = account.map(Into::into);
        if !remote::is_remote(id) {
            st.tell_cluster(|| Out::State(Event::Account { id, account: account.map(str::to_string) }));
        }
        let relay =
            Relay::new(Message::new("ACCOUNT", vec![account.unwrap_or("*").to_string()]).with_source(mask), Vec::new());
        for client in st.followers(id, caps::ACCOUNT_NOTIFY) {
            client.push(relay.bytes_for(client.caps()));
        }
    }

    /// Sets or clears the away message and tells the neighbours and
    /// monitors that asked for `away-notify`.
    pub fn set_away(&self, id: ClientId, text: Option<String>, mask: &str) {
        let mut st = self.write();
        let Some(user) = st.users.get_mut(&id) else { return };
        user.away = text.clone();
        let account = user.account.clone();
        if !remote::is_remote(id) {
            st.tell_cluster(|| Out::State(Event::Away { id, text: text.clone() }));
        }
        let relay = Relay::new(Message::new("AWAY", text.into_iter().collect()).with_source(mask), Vec::new())
            .with_account(account.as_deref());
        for client in st.followers(id, caps::AWAY_NOTIFY) {
            client.push(relay.bytes_for(client.caps()));
        }
    }

    /// Removes a user, first sending `quit` (if any) to everyone sharing a
    /// channel with it, crowded lobbies excepted.
    pub fn quit(&self, id: ClientId, quit: Option<&Relay>, quiet_above: usize) {
        let mut st = self.write();
        if let Some(relay) = quit {
            for other in st.neighbours(id, false, quiet_above) {
                other.push(relay.bytes_for(other.caps()));
            }
        }
        st.tell_cluster(|| Out::State(Event::Quit { id, line: quit.map(Relay::plain_text) }));
        st.remove_user(id);
    }

    /// Delivers a message from `id` (hostmask `mask`) to channel `target`
    /// if the channel's modes allow it; with `status` (STATUSMSG: `@` or
    /// `+`), only to the members with at least that prefix. Returns how
    /// many members got it.
    pub fn message_channel(
        &self,
        id: ClientId,
        target: &str,
        status: Option<char>,
        mask: &str,
        relay: &Relay,
    ) -> Result<usize, Refusal> {
        let key = casefold(target);
        let st = self.read();
        let chan = st.0.channels.get(&key).ok_or_else(|| Refusal::NoSuchChannel(target.to_string()))?;
        chan.check_send(id, mask)?;
        let n = match status {
            None => st.0.send_to_channel(&key, relay, Some(id)),
            Some(prefix) => st.0.send_to_members(&key, relay, Some(id), 0, |f| f.reaches(prefix)),
        };
        if let Some(cluster) = &st.0.cluster {
            if !chan.remote_members.is_empty() {
                cluster.relay_to_channel(&key, &chan.name, status, relay);
            }
        }
        Ok(n)
    }

    /// Delivers a message to the user `nick` (not a TAGMSG to a client that
    /// cannot take it). Returns the nick and away text when they are away.
    pub fn message_user(&self, nick: &str, relay: &Relay) -> Result<Option<(String, String)>, Refusal> {
        let st = self.read();
        let id = st.id_by_nick(nick).ok_or_else(|| Refusal::NoSuchNick(nick.to_string()))?;
        let user = st.user(id).ok_or_else(|| Refusal::NoSuchNick(nick.to_string()))?;
        if remote::is_remote(id) {
            if let (Some(cluster), Some(home)) = (&st.0.cluster, st.0.remotes.by_id.get(&id)) {
                cluster.relay_to_user(&home.node, home.rid, &user.nick, relay);
            }
            return Ok(None);
        }
        let caps = user.client.caps();
        if !relay.tags_only() || caps & caps::MESSAGE_TAGS != 0 {
            user.client.push(relay.bytes_for(caps));
        }
        Ok(user.away.clone().map(|away| (user.nick.clone(), away)))
    }

    /// Sends a server line to every member of channel `name` (the file
    /// store's upload notices). Returns how many got it.
    pub fn announce(&self, name: &str, relay: &Relay) -> usize {
        self.read().0.send_to_channel(casefolded(name).as_ref(), relay, None)
    }
}

#[cfg(test)]
mod tests;
