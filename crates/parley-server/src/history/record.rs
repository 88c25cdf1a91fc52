//! What the command handlers call once a line has been relayed: turning a
//! delivered message, a topic change or a membership change into an entry
//! for the writer's queue. Nothing here waits on the disk.

use super::entry::{escape_tags, Entry, Kind, Parts};
use super::History;
use crate::registry::Registry;
use crate::relay::Relay;
use crate::session::Session;
use parley_proto::casefold;

impl History {
    /// A PRIVMSG, NOTICE or TAGMSG from `from` just delivered to `target`
    /// (a channel, or a nick: then the conversation of the two parties).
    pub fn message(&self, registry: &Registry, from: &Session, target: &str, command: &str, text: &str, relay: &Relay) {
        if target.starts_with(['@', '+']) {
            // STATUSMSG (`@#chan`): only part of the channel saw it, and a
            // channel's history is for all its members; not kept.
            return;
        }
        let key = if target.starts_with('#') {
            casefold(target)
        } else {
            let Some(to) =
                registry.read().user_by_nick(target).map(|u| super::party_key(u.account.as_deref(), &u.nick))
            else {
                return;
            };
            super::conversation_key(&super::party_key(from.account(), from.nick.as_deref().unwrap_or("*")), &to)
        };
        self.line(&key, Kind::from_command(command), from, target, text, relay);
    }

    /// A PRIVMSG, NOTICE or TAGMSG relayed in from another node (`line` as
    /// relayed: `:mask COMMAND target :text`), recorded only when this
    /// node's store is its own: with a shared store (PostgreSQL) the
    /// sender's node records it, once for the cluster. `recipient` is the
    /// party key of the user here a private message is for; `None` for a
    /// channel line.
    pub fn relayed(
        &self,
        line: &str,
        msgid: &str,
        at: i64,
        account: Option<&str>,
        tags: &[parley_proto::Tag],
        recipient: Option<&str>,
    ) {
        if self.shared {
            return;
        }
        let Ok(msg) = parley_proto::MessageRef::parse(line.trim_end_matches(['\r', '\n'])) else { return };
        let (Some(sender), Some(target)) = (msg.source, msg.params.first().copied()) else { return };
        let key = match recipient {
            // STATUSMSG reached part of the channel only: not kept (as here).
            None if target.starts_with(['@', '+']) => return,
            None => casefold(target),
            Some(to) => {
                let nick = sender.split('!').next().unwrap_or(sender);
                super::conversation_key(&super::party_key(account, nick), to)
            }
        };
        let tags = escape_tags(tags);
        let parts = Parts {
            target: &key,
            msgid,
            sender,
            account,
            shown: target,
            tags: &tags,
            text: msg.params.get(1).copied().unwrap_or(""),
        };
        let entry = Entry::new(at, Kind::from_command(msg.command), &parts);
        self.recent.offer(&entry);
        self.record(entry);
    }

    /// A channel's new topic.
    pub fn topic(&self, from: &Session, channel: &str, text: &str, relay: &Relay) {
        self.line(&casefold(channel), Kind::Topic, from, channel, text, relay);
    }

    fn line(&self, key: &str, kind: Kind, from: &Session, shown: &str, text: &str, relay: &Relay) {
        let tags = escape_tags(relay.client_tags());
        let msgid = relay.msgid();
        let parts = Parts {
            target: key,
            msgid: &msgid,
            sender: from.mask(),
            account: from.account(),
            shown,
            tags: &tags,
            text,
        };
        let entry = Entry::new(relay.at_millis(), kind, &parts);
        self.recent.offer(&entry);
        self.record(entry);
    }

    /// `from` (if logged in) joined `channel`, or left it.
    pub fn membership(&self, from: &Session, channel: &str, joined: bool) {
        if let Some(account) = from.account() {
            let left = (!joined).then(|| crate::clock::unix_millis(std::time::SystemTime::now()));
            self.record_member(account, channel, left);
        }
    }
}
