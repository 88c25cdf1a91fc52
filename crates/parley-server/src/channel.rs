//! One channel's state and its own rules: members and their prefixes,
//! topic, modes, the mask lists (bans, ban exceptions, invite exceptions)
//! and invites; who may join, who may speak, and how a
//! MODE command changes it. The registry owns the map of channels, takes
//! the lock and does the broadcasting; it never changes a channel's modes
//! by hand.

pub use crate::cluster::wire::ModeChange;
use crate::outbound::{Client, ClientId, IdMap};
use crate::refusal::Refusal;
use parley_proto::casefold;
use parley_proto::mask::{mask_matches, normalize_mask};
use std::collections::HashSet;
use std::sync::Arc;

/// A member's channel privileges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemberFlags {
    pub op: bool,
    pub voice: bool,
}

impl MemberFlags {
    /// Whether these privileges reach a STATUSMSG prefix: `@` operators,
    /// `+` voiced members and operators.
    pub fn reaches(&self, prefix: char) -> bool {
        match prefix {
            '@' => self.op,
            '+' => self.op || self.voice,
            _ => false,
        }
    }

    /// The prefix shown in NAMES/WHO: all of them with multi-prefix,
    /// otherwise only the highest.
    pub fn prefix(&self, multi: bool) -> &'static str {
        match (self.op, self.voice, multi) {
            (true, true, true) => "@+",
            (true, _, _) => "@",
            (false, true, _) => "+",
            _ => "",
        }
    }
}

pub struct Member {
    pub flags: MemberFlags,
    pub client: Arc<Client>,
}

#[derive(Debug, Clone)]
pub struct Topic {
    pub text: String,
    pub set_by: String,
    pub set_at: i64,
}

/// An entry of one of a channel's mask lists: bans (`+b`), ban exceptions
/// (`+e`) and invite exceptions (`+I`).
#[derive(Debug, Clone)]
pub struct ListEntry {
    pub mask: String,
    pub set_by: String,
    pub set_at: i64,
}

/// The list modes, each a list of masks: `b` bans, `e` exceptions to bans,
/// `I` masks that may join past `+i` (ISUPPORT `CHANMODES` type A).
pub const LIST_MODES: [char; 3] = ['b', 'e', 'I'];

/// Channel modes `i k l m n p s t` (b, e, I, o, v live in their own lists).
#[derive(Debug, Clone, Default)]
pub struct ChannelModes {
    pub invite_only: bool,
    pub key: Option<String>,
    pub limit: Option<usize>,
    pub moderated: bool,
    pub no_external: bool,
    /// `+p`: NAMES shows it as private (`*`).
    pub private: bool,
    /// `+s`: hidden from LIST, NAMES, WHO and WHOIS for non-members.
    pub secret: bool,
    pub topic_ops_only: bool,
}

impl ChannelModes {
    /// The mode string and its parameters, e.g. `+knt` and `["secret"]`.
    /// The key is shown only to members.
    pub fn describe(&self, show_key: bool) -> (String, Vec<String>) {
        let mut s = String::from("+");
        let mut params = Vec::new();
        if self.invite_only {
            s.push('i');
        }
        if let Some(k) = &self.key {
            s.push('k');
            params.push(if show_key { k.clone() } else { "*".into() });
        }
        if let Some(l) = self.limit {
            s.push('l');
            params.push(l.to_string());
        }
        if self.moderated {
            s.push('m');
        }
        if self.no_external {
            s.push('n');
        }
        if self.private {
            s.push('p');
        }
        if self.secret {
            s.push('s');
        }
        if self.topic_ops_only {
            s.push('t');
        }
        (s, params)
    }

    /// The channel's symbol in `353 RPL_NAMREPLY`: `@` secret, `*` private,
    /// `=` public.
    pub fn names_symbol(&self) -> &'static str {
        if self.secret {
            "@"
        } else if self.private {
            "*"
        } else {
            "="
        }
    }
}

/// When a mode was last changed and by which node (Unix milliseconds,
/// node name; empty on a single node): across a cluster, of two
/// conflicting changes the later pair wins (docs/CLUSTER.md).
pub type ModeStamp = (i64, String);

pub struct Channel {
    pub name: String,
    pub created: i64,
    pub topic: Option<Topic>,
    pub modes: ChannelModes,
    pub bans: Vec<ListEntry>,
    /// `+e`: masks the bans do not apply to.
    pub excepts: Vec<ListEntry>,
    /// `+I`: masks that may join past `+i` without an invitation.
    pub invex: Vec<ListEntry>,
    pub invites: HashSet<ClientId>,
    pub members: IdMap<Member>,
    /// Members on other cluster nodes (their ids are the registry's
    /// remote ids): listed, counted, never sent to (their node relays).
    /// Empty on a single node.
    pub remote_members: IdMap<MemberFlags>,
    /// An auto-join channel: above `quiet_lobby_above` members its joins,
    /// parts and quits are not broadcast.
    pub is_lobby: bool,
    /// The stamp of each mode's last change (`i k l m n p s t b e I`),
    /// for a cluster; a mode never changed has none.
    pub stamps: Vec<(char, ModeStamp)>,
}

impl Channel {
    pub fn new(name: &str, is_lobby: bool, now: i64) -> Channel {
        Channel {
            name: name.to_string(),
            created: now,
            topic: None,
            modes: ChannelModes { no_external: true, topic_ops_only: true, ..Default::default() },
            bans: Vec::new(),
            excepts: Vec::new(),
            invex: Vec::new(),
            invites: HashSet::new(),
            members: IdMap::default(),
            remote_members: IdMap::default(),
            is_lobby,
            stamps: Vec::new(),
        }
    }

    /// The stamp of mode `mode`'s last change, if it changed.
    pub fn stamp(&self, mode: char) -> Option<&ModeStamp> {
        self.stamps.iter().find(|(m, _)| *m == mode).map(|(_, s)| s)
    }

    /// Records `stamp` for `mode` if it is not older than the one kept;
    /// false if it is (a later change won).
    pub fn take_stamp(&mut self, mode: char, stamp: &ModeStamp) -> bool {
        match self.stamps.iter_mut().find(|(m, _)| *m == mode) {
            Some((_, kept)) if *kept > *stamp => false,
            Some((_, kept)) => {
                *kept = stamp.clone();
                true
            }
            None => {
                self.stamps.push((mode, stamp.clone()));
                true
            }
        }
    }

    /// Whether `id` is a member, here or on another node.
    pub fn has_member(&self, id: ClientId) -> bool {
        self.members.contains_key(&id) || self.remote_members.contains_key(&id)
    }

    /// A member's privileges to change (`o`/`v`), here or on another node.
    fn flags_mut(&mut self, id: ClientId) -> Option<&mut MemberFlags> {
        match self.members.get_mut(&id) {
            Some(m) => Some(&mut m.flags),
            None => self.remote_members.get_mut(&id),
        }
    }

    /// Applies one mode change made on another cluster node, whose node
    /// checked the rules (list lengths too): unless a later change of the
    /// same mode is kept (`stamp`). `target`: the member `o`/`v` names;
    /// `nick`: the setter, for list entries. True if it changed anything.
    pub fn apply_remote(
        &mut self,
        change: &ModeChange,
        stamp: &ModeStamp,
        target: Option<ClientId>,
        nick: &str,
    ) -> bool {
        let adding = change.adding;
        if let 'o' | 'v' = change.mode {
            let Some(flags) = target.and_then(|t| self.flags_mut(t)) else { return false };
            let flag = if change.mode == 'o' { &mut flags.op } else { &mut flags.voice };
            return std::mem::replace(flag, adding) != adding;
        }
        if LIST_MODES.contains(&change.mode) {
            let Some(mask) = &change.arg else { return false };
            // Adds and removals of different masks commute: applied in
            // any order; the stamp only decides what a snapshot replaces.
            if self.stamp(change.mode).is_none_or(|kept| kept < stamp) {
                self.take_stamp(change.mode, stamp);
            }
            let list = self.list_mut(change.mode);
            let exists = list.iter().position(|b| casefold(&b.mask) == casefold(mask));
            return match (adding, exists) {
                (true, None) => {
                    list.push(ListEntry { mask: mask.clone(), set_by: nick.to_string(), set_at: stamp.0 / 1000 });
                    true
                }
                (false, Some(i)) => {
                    list.remove(i);
                    true
                }
                _ => false,
            };
        }
        if !self.take_stamp(change.mode, stamp) {
            return false;
        }
        let flag = |slot: &mut bool| std::mem::replace(slot, adding) != adding;
        match change.mode {
            'i' => flag(&mut self.modes.invite_only),
            'm' => flag(&mut self.modes.moderated),
            'n' => flag(&mut self.modes.no_external),
            't' => flag(&mut self.modes.topic_ops_only),
            'p' => flag(&mut self.modes.private),
            's' => flag(&mut self.modes.secret),
            'k' => {
                let key = if adding { change.arg.clone() } else { None };
                std::mem::replace(&mut self.modes.key, key.clone()) != key
            }
            'l' => {
                let limit = if adding { change.arg.as_deref().and_then(|l| l.parse().ok()) } else { None };
                std::mem::replace(&mut self.modes.limit, limit) != limit
            }
            _ => false,
        }
    }

    /// The channel's modes as a list of changes from nothing (`+i`, `-m`,
    /// `+k key`, ...), each simple mode either way, for a snapshot.
    pub fn mode_state(&self) -> Vec<ModeChange> {
        let m = &self.modes;
        let mut out: Vec<ModeChange> = [
            ('i', m.invite_only),
            ('m', m.moderated),
            ('n', m.no_external),
            ('p', m.private),
            ('s', m.secret),
            ('t', m.topic_ops_only),
        ]
        .into_iter()
        .map(|(mode, adding)| ModeChange { adding, mode, arg: None })
        .collect();
        out.push(ModeChange { adding: m.key.is_some(), mode: 'k', arg: m.key.clone() });
        out.push(ModeChange { adding: m.limit.is_some(), mode: 'l', arg: m.limit.map(|l| l.to_string()) });
        out
    }

    /// Replaces list `mode` with `entries` if `stamp` is later than the
    /// list's own (a snapshot from the node that changed it last).
    pub fn replace_list(&mut self, mode: char, entries: Vec<ListEntry>, stamp: &ModeStamp) {
        if self.stamp(mode).is_none_or(|kept| kept < stamp) {
            self.take_stamp(mode, stamp);
            *self.list_mut(mode) = entries;
        }
    }

    pub fn flags(&self, id: ClientId) -> Option<MemberFlags> {
        self.members.get(&id).map(|m| m.flags)
    }

    pub fn is_op(&self, id: ClientId) -> bool {
        self.flags(id).is_some_and(|f| f.op)
    }

    /// Banned: matched by a ban and by no ban exception.
    pub fn is_banned(&self, hostmask: &str) -> bool {
        let matches = |list: &[ListEntry]| list.iter().any(|b| mask_matches(&b.mask, hostmask));
        matches(&self.bans) && !matches(&self.excepts)
    }

    /// The list a list mode (`b`, `e`, `I`) names.
    pub fn list(&self, mode: char) -> &[ListEntry] {
        match mode {
            'e' => &self.excepts,
            'I' => &self.invex,
            _ => &self.bans,
        }
    }

    fn list_mut(&mut self, mode: char) -> &mut Vec<ListEntry> {
        match mode {
            'e' => &mut self.excepts,
            'I' => &mut self.invex,
            _ => &mut self.bans,
        }
    }

    /// Whether `id` may see the channel in LIST, NAMES, WHO and WHOIS.
    pub fn visible_to(&self, id: ClientId) -> bool {
        !self.modes.secret || self.members.contains_key(&id)
    }

    /// Whether membership changes are announced to everyone.
    pub fn is_quiet(&self, quiet_above: usize) -> bool {
        self.is_lobby && self.member_count() > quiet_above
    }

    /// Members here and on other cluster nodes.
    pub fn member_count(&self) -> usize {
        self.members.len() + self.remote_members.len()
    }

    /// Every member's id and privileges, local ones first.
    pub fn all_members(&self) -> impl Iterator<Item = (ClientId, MemberFlags)> + '_ {
        let local = self.members.iter().map(|(id, m)| (*id, m.flags));
        local.chain(self.remote_members.iter().map(|(id, f)| (*id, *f)))
    }

    /// Whether `id` (hostmask `mask`) may join with `key`: invite-only,
    /// key, limit and bans, in that order; an invitation passes all but the
    /// key, an invite exception (`+I`) only invite-only.
    pub fn check_join(&self, id: ClientId, key: Option<&str>, mask: &str) -> Result<(), Refusal> {
        let invited = self.invites.contains(&id);
        let name = || self.name.clone();
        let excepted = || self.invex.iter().any(|e| mask_matches(&e.mask, mask));
        if self.modes.invite_only && !invited && !excepted() {
            Err(Refusal::InviteOnly(name()))
        } else if self.modes.key.is_some() && self.modes.key.as_deref() != key {
            Err(Refusal::BadKey(name()))
        } else if self.modes.limit.is_some_and(|l| self.member_count() >= l) && !invited {
            Err(Refusal::ChannelFull(name()))
        } else if !invited && self.is_banned(mask) {
            Err(Refusal::Banned(name()))
        } else {
            Ok(())
        }
    }

    /// Whether `id` (hostmask `mask`) may send to the channel: `+n`, `+m`
    /// and bans; voice and operator status lift the last two.
    pub fn check_send(&self, id: ClientId, mask: &str) -> Result<(), Refusal> {
        let flags = self.flags(id);
        let privileged = flags.is_some_and(|f| f.op || f.voice);
        let why = if flags.is_none() && self.modes.no_external {
            "Cannot send to channel (+n): you are not in it"
        } else if self.modes.moderated && !privileged {
            "Cannot send to channel (+m): you need voice"
        } else if !privileged && self.is_banned(mask) {
            "Cannot send to channel (+b): you are banned"
        } else {
            return Ok(());
        };
        Err(Refusal::CannotSend { channel: self.name.clone(), why })
    }

    /// Applies a MODE command's parsed changes on behalf of `id`, in order.
    /// `targets` maps the casefolded nicks named by `+o`/`+v` to ids; `nick`
    /// goes on new list entries as their setter; each list holds at most
    /// `max_list` entries. Anyone may see the ban list, only operators
    /// the exception lists.
    pub fn apply_modes(
        &mut self,
        id: ClientId,
        ops: Vec<ModeOp>,
        targets: &[(String, ClientId)],
        nick: &str,
        max_list: usize,
    ) -> ModeOutcome {
        let mut out = ModeOutcome { channel: self.name.clone(), ..Default::default() };
        let is_op = self.is_op(id);
        let mut denied = false;
        for op in ops {
            let args_before = out.args.len();
            let (adding, mode, arg) = match op {
                ModeOp::Unknown(c) => {
                    out.errors.push(ModeError::Unknown(c));
                    continue;
                }
                ModeOp::MissingParam(c) => {
                    out.errors.push(ModeError::MissingParam(c));
                    continue;
                }
                ModeOp::List(mode) => {
                    if mode == 'b' || is_op {
                        out.lists.push((mode, self.list(mode).to_vec()));
                    } else {
                        denied = true;
                    }
                    continue;
                }
                ModeOp::Set { adding, mode, arg } => (adding, mode, arg),
            };
            if !is_op {
                denied = true;
                continue;
            }
            let changed = match (mode, arg) {
                ('i', _) => std::mem::replace(&mut self.modes.invite_only, adding) != adding,
                ('m', _) => std::mem::replace(&mut self.modes.moderated, adding) != adding,
                ('n', _) => std::mem::replace(&mut self.modes.no_external, adding) != adding,
                ('t', _) => std::mem::replace(&mut self.modes.topic_ops_only, adding) != adding,
                ('p', _) => std::mem::replace(&mut self.modes.private, adding) != adding,
                ('s', _) => std::mem::replace(&mut self.modes.secret, adding) != adding,
                ('k', Some(k)) => {
                    if k.contains([',', ' ']) || k.is_empty() || k.len() > 23 {
                        out.errors.push(ModeError::InvalidKey);
                        false
                    } else {
                        self.modes.key = Some(k.clone());
                        out.args.push(k);
                        true
                    }
                }
                ('k', None) => {
                    let had = self.modes.key.take().is_some();
                    if had {
                        out.args.push("*".into());
                    }
                    had
                }
                ('l', Some(l)) => match l.parse::<usize>() {
                    Ok(n) if n > 0 => {
                        self.modes.limit = Some(n);
                        out.args.push(n.to_string());
                        true
                    }
                    _ => {
                        out.errors.push(ModeError::BadLimit(l));
                        false
                    }
                },
                ('l', None) => self.modes.limit.take().is_some(),
                ('o' | 'v', Some(target)) => {
                    let folded = casefold(&target);
                    let tid = targets.iter().find(|(k, _)| *k == folded).map(|(_, id)| *id);
                    let Some(tid) = tid else {
                        out.errors.push(ModeError::NoSuchNick(target));
                        continue;
                    };
                    match self.flags_mut(tid) {
                        Some(flags) => {
                            let flag = if mode == 'o' { &mut flags.op } else { &mut flags.voice };
                            let changed = std::mem::replace(flag, adding) != adding;
                            if changed {
                                out.args.push(target);
                            }
                            changed
                        }
                        None => {
                            out.errors.push(ModeError::NotInChannel(target));
                            false
                        }
                    }
                }
                ('b' | 'e' | 'I', Some(raw)) => {
                    let m = normalize_mask(&raw);
                    let list = self.list_mut(mode);
                    let exists = list.iter().position(|b| casefold(&b.mask) == casefold(&m));
                    match (adding, exists) {
                        (true, None) if list.len() < max_list => {
                            list.push(ListEntry {
                                mask: m.clone(),
                                set_by: nick.to_string(),
                                set_at: crate::clock::unix_now(),
                            });
                            out.args.push(m);
                            true
                        }
                        (true, None) => {
                            out.errors.push(ModeError::ListFull(mode, m));
                            false
                        }
                        (false, Some(i)) => {
                            list.remove(i);
                            out.args.push(m);
                            true
                        }
                        _ => false,
                    }
                }
                _ => false,
            };
            if changed {
                out.applied.push(adding, mode);
                let arg = out.args.get(args_before).cloned();
                out.changes.push(ModeChange { adding, mode, arg });
            }
        }
        if denied {
            out.errors.push(ModeError::NotOperator);
        }
        out
    }
}

/// One step of a MODE command, as parsed (parameters already assigned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModeOp {
    Set {
        adding: bool,
        mode: char,
        arg: Option<String>,
    },
    Unknown(char),
    /// A mode that needs a parameter came without one.
    MissingParam(char),
    /// A list mode (`b`, `e`, `I`) without a mask: show the list.
    List(char),
}

/// Why one mode change was not made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModeError {
    Unknown(char),
    MissingParam(char),
    InvalidKey,
    BadLimit(String),
    NoSuchNick(String),
    NotInChannel(String),
    /// The list of this mode is full; the mask was not added.
    ListFull(char, String),
    NotOperator,
}

/// What a MODE command did to a channel.
#[derive(Debug, Default)]
pub struct ModeOutcome {
    pub channel: String,
    /// The changes made; `args` are their parameters.
    pub applied: ModeString,
    pub args: Vec<String>,
    pub errors: Vec<ModeError>,
    /// The lists asked for, by mode.
    pub lists: Vec<(char, Vec<ListEntry>)>,
    /// The changes made, one by one (for the other cluster nodes).
    pub changes: Vec<ModeChange>,
}

/// Changes as a mode string (`+ov-k`), a sign only where it changes.
#[derive(Debug, Default)]
pub struct ModeString {
    text: String,
    last_sign: Option<bool>,
}

impl ModeString {
    pub fn push(&mut self, adding: bool, mode: char) {
        if self.last_sign != Some(adding) {
            self.text.push(if adding { '+' } else { '-' });
            self.last_sign = Some(adding);
        }
        self.text.push(mode);
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(adding: bool, mode: char, arg: Option<&str>) -> ModeChange {
        ModeChange { adding, mode, arg: arg.map(str::to_string) }
    }

    #[test]
    fn of_two_conflicting_remote_changes_the_later_stamp_wins_in_any_order() {
        let early: ModeStamp = (1_000, "b".into());
        let late: ModeStamp = (1_000, "c".into());
        for order in [[&early, &late], [&late, &early]] {
            let mut chan = Channel::new("#x", false, 0);
            for stamp in order {
                let key = if *stamp == late { "late" } else { "early" };
                chan.apply_remote(&change(true, 'k', Some(key)), stamp, None, "n");
            }
            assert_eq!(chan.modes.key.as_deref(), Some("late"), "same time: the node name decides");
        }
        let mut chan = Channel::new("#x", false, 0);
        assert!(chan.apply_remote(&change(true, 'b', Some("a!*@*")), &late, None, "ann"));
        assert!(chan.apply_remote(&change(true, 'b', Some("b!*@*")), &early, None, "bob"), "lists: both kept");
        assert_eq!(chan.bans.len(), 2);
        chan.replace_list('b', Vec::new(), &early);
        assert_eq!(chan.bans.len(), 2, "an older snapshot does not replace the list");
    }
}
