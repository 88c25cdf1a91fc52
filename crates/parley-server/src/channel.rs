//! One channel's state: members and their prefixes, topic, modes, bans and
//! invites. Pure data with small rules; the registry owns the map of
//! channels and does the broadcasting.

use crate::outbound::{Client, ClientId, IdMap};
use parley_proto::mask::mask_matches;
use std::collections::HashSet;
use std::sync::Arc;

/// A member's channel privileges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemberFlags {
    pub op: bool,
    pub voice: bool,
}

impl MemberFlags {
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

#[derive(Debug, Clone)]
pub struct Ban {
    pub mask: String,
    pub set_by: String,
    pub set_at: i64,
}

/// Channel modes `i k l m n t` (b, o, v live in their own lists).
#[derive(Debug, Clone, Default)]
pub struct ChannelModes {
    pub invite_only: bool,
    pub key: Option<String>,
    pub limit: Option<usize>,
    pub moderated: bool,
    pub no_external: bool,
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
        if self.topic_ops_only {
            s.push('t');
        }
        (s, params)
    }
}

pub struct Channel {
    pub name: String,
    pub created: i64,
    pub topic: Option<Topic>,
    pub modes: ChannelModes,
    pub bans: Vec<Ban>,
    pub invites: HashSet<ClientId>,
    pub members: IdMap<Member>,
    /// An auto-join channel: above `quiet_lobby_above` members its joins,
    /// parts and quits are not broadcast.
    pub is_lobby: bool,
}

impl Channel {
    pub fn new(name: &str, is_lobby: bool, now: i64) -> Channel {
        Channel {
            name: name.to_string(),
            created: now,
            topic: None,
            modes: ChannelModes { no_external: true, topic_ops_only: true, ..Default::default() },
            bans: Vec::new(),
            invites: HashSet::new(),
            members: IdMap::default(),
            is_lobby,
        }
    }

    pub fn flags(&self, id: ClientId) -> Option<MemberFlags> {
        self.members.get(&id).map(|m| m.flags)
    }

    pub fn is_op(&self, id: ClientId) -> bool {
        self.flags(id).is_some_and(|f| f.op)
    }

    pub fn is_banned(&self, hostmask: &str) -> bool {
        self.bans.iter().any(|b| mask_matches(&b.mask, hostmask))
    }

    /// Whether membership changes are announced to everyone.
    pub fn is_quiet(&self, quiet_above: usize) -> bool {
        self.is_lobby && self.members.len() > quiet_above
    }
}
