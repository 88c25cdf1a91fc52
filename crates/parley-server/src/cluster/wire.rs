//! What cluster nodes say to each other over NATS, and on which subjects.
//! JSON: every node runs the same code, the volume is one object per
//! event, and a human can read it with `nats sub` while debugging.

use parley_proto::Tag;
use serde::{Deserialize, Serialize};

/// Membership, nick and topic changes and snapshots, from node `<node>`:
/// every node subscribes to `parley.state.*`. One subject per node, so
/// one subscription sees each node's events in the order it sent them.
pub fn state_subject(node: &str) -> String {
    format!("parley.state.{node}")
}
pub const STATE_ALL: &str = "parley.state.*";

/// A channel's messages: subscribed only by nodes with members in it.
/// The casefolded name is hex-encoded: channel names may hold `.`, `*`
/// and `>`, which mean something in a subject.
pub fn channel_subject(key: &str) -> String {
    format!("parley.chan.{}", hex::encode(key))
}

/// Private messages for the users of node `<node>`.
pub fn user_subject(node: &str) -> String {
    format!("parley.user.{node}")
}

/// Node `<node>`'s heartbeats.
pub fn heartbeat_subject(node: &str) -> String {
    format!("parley.node.{node}.hb")
}
pub const HEARTBEAT_ALL: &str = "parley.node.*.hb";

/// Who sent something: the node and its incarnation (its start time in
/// Unix milliseconds), so a restarted node's old users can be told from
/// its new ones.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Origin {
    pub node: String,
    pub inc: u64,
}

/// A user as other nodes need to know it. `id` is its id on its own node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserInfo {
    pub id: u64,
    pub nick: String,
    pub user: String,
    pub host: String,
    pub realname: String,
    pub account: Option<String>,
    pub signon: i64,
    /// Channel names (as spelled) with the member's `@` and `+`.
    pub channels: Vec<(String, bool, bool)>,
    #[serde(default)]
    pub away: Option<String>,
    /// User mode `+i`.
    #[serde(default)]
    pub invisible: bool,
    /// An IRC operator (on its own node: the rights stay there).
    #[serde(default)]
    pub oper: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopicInfo {
    pub channel: String,
    pub text: String,
    pub set_by: String,
    pub set_at: i64,
}

/// When a change was made and by which node: of two conflicting changes
/// the later pair wins (time in Unix milliseconds, then node name).
pub type Stamp = (i64, String);

/// One applied channel mode change: `arg` is the nick for `o`/`v`, the
/// mask for `b`/`e`/`I`, the key or limit for `+k`/`+l`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ModeChange {
    pub adding: bool,
    pub mode: char,
    #[serde(default)]
    pub arg: Option<String>,
}

/// A list mode entry (`b`, `e`, `I`) as snapshots carry it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListInfo {
    pub mode: char,
    pub mask: String,
    pub set_by: String,
    pub set_at: i64,
}

/// A channel's modes and lists as a snapshot carries them, with the stamp
/// of the last change of each mode (`stamps`: mode letter and stamp).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelInfo {
    pub channel: String,
    pub created: i64,
    pub modes: Vec<ModeChange>,
    pub lists: Vec<ListInfo>,
    pub stamps: Vec<(char, Stamp)>,
}

/// A change on the sending node, or its whole state.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Event {
    /// Asks node `to` for a snapshot (it is new to the asker).
    SyncRequest {
        to: String,
    },
    /// Everything about the sender's users: replaces what others knew.
    /// Sent in parts that each fit a NATS message: `part` counts from 0,
    /// and only the part with `last` set applies the whole (so users
    /// missing from it quit only then).
    Snapshot {
        users: Vec<UserInfo>,
        topics: Vec<TopicInfo>,
        #[serde(default)]
        channels: Vec<ChannelInfo>,
        #[serde(default)]
        part: u32,
        #[serde(default = "yes")]
        last: bool,
    },
    Register {
        user: UserInfo,
    },
    Rename {
        id: u64,
        nick: String,
    },
    Join {
        id: u64,
        channel: String,
        op: bool,
    },
    /// `line`: the PART line as the channel saw it (CR LF included).
    Part {
        id: u64,
        channel: String,
        line: String,
    },
    Kick {
        nick: String,
        channel: String,
        line: String,
    },
    Topic {
        topic: TopicInfo,
        line: String,
    },
    /// `line`: the QUIT line, or none at a shutdown.
    Quit {
        id: u64,
        line: Option<String>,
    },
    /// Channel modes changed by `source` (a hostmask) at `stamp`; the
    /// setter's nick goes on new list entries.
    ChanMode {
        channel: String,
        source: String,
        nick: String,
        stamp: Stamp,
        changes: Vec<ModeChange>,
    },
    /// `nick` was invited to `channel` by `source`.
    Invite {
        nick: String,
        channel: String,
        source: String,
        account: Option<String>,
    },
    /// An operator (`by`) killed `nick`, a user of another node: its own
    /// node closes it with `reason`.
    Kill {
        nick: String,
        by: String,
        reason: String,
    },
    /// User `id` went away (`text`) or came back (`None`).
    Away {
        id: u64,
        text: Option<String>,
    },
    /// User `id` changed its realname (SETNAME).
    SetName {
        id: u64,
        realname: String,
    },
    /// User `id` logged in to `account`, or out (`None`).
    Account {
        id: u64,
        account: Option<String>,
    },
    /// User `id` set or cleared user mode `+i`.
    Invisible {
        id: u64,
        on: bool,
    },
    /// User `id` became an IRC operator on its node, or stopped being one.
    Oper {
        id: u64,
        on: bool,
    },
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateMsg {
    pub from: Origin,
    pub event: Event,
}

/// A PRIVMSG, NOTICE or TAGMSG relayed to a channel's members elsewhere
/// (`status`: only those with `@` or `+`), or to one user (`to`: its id
/// on the receiving node, and the nick it was sent to).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Relayed {
    pub from: Origin,
    pub channel: Option<String>,
    pub status: Option<char>,
    pub to: Option<(u64, String)>,
    /// The line without tags, CR LF included.
    pub line: String,
    pub tags: Vec<(String, Option<String>)>,
    pub msgid: String,
    pub at: i64,
    pub account: Option<String>,
}

impl Relayed {
    pub fn client_tags(&self) -> Vec<Tag> {
        self.tags.iter().map(|(k, v)| Tag { key: k.clone(), value: v.clone() }).collect()
    }
}

/// What a nick claim in the KV bucket holds: who holds it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClaimValue {
    pub node: String,
    pub inc: u64,
    pub id: u64,
}

/// A claim's key: the casefolded nick, hex-encoded (KV keys allow only
/// letters, digits and `-/_=.`).
pub fn claim_key(folded_nick: &str) -> String {
    format!("nick.{}", hex::encode(folded_nick))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_keys_survive_any_channel_or_nick() {
        assert_eq!(channel_subject("#a.b*>"), "parley.chan.23612e622a3e");
        assert_eq!(claim_key("[bob]"), "nick.5b626f625d");
        let m =
            StateMsg { from: Origin { node: "n1".into(), inc: 5 }, event: Event::Rename { id: 3, nick: "x".into() } };
        let back: StateMsg = serde_json::from_slice(&serde_json::to_vec(&m).unwrap()).unwrap();
        assert!(matches!(back.event, Event::Rename { id: 3, .. }));
    }
}
