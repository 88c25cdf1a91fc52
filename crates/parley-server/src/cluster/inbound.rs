//! What other nodes say, applied to this node's registry: each inside an
//! output batch, so a line for many local members is written as the
//! connection path would write it.

use super::nodes::Seen;
use super::snapshot::Arrived;
use super::wire::{Event, Origin, Relayed, StateMsg};
use super::{Cluster, Out};
use crate::outbound::OutBatch;
use crate::relay::Relay;
use crate::server::ServerState;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Instant;

/// Notes that `from` is alive; false if what it sent is to be ignored.
fn heard(cluster: &Cluster, server: &ServerState, from: &Origin) -> bool {
    if from.node == cluster.origin.node {
        return false;
    }
    match cluster.nodes.seen(from, Instant::now()) {
        Seen::Stale => return false,
        Seen::Known => {}
        Seen::New => {
            tracing::info!(node = %from.node, "cluster node joined");
            cluster.reload_files();
            log_node(server, "cluster_node_joined", &from.node, 0);
            cluster.outbox.send(Out::State(Event::SyncRequest { to: from.node.clone() }));
        }
        Seen::Restarted => {
            let q = server.config.irc.quiet_lobby_above;
            let reason = format!("Quit: {} restarted", from.node);
            let _batch = OutBatch::begin();
            server.registry.drop_node(&from.node, Some(from.inc), &reason, q);
            cluster.outbox.send(Out::State(Event::SyncRequest { to: from.node.clone() }));
        }
    }
    true
}

pub(super) fn heartbeat(cluster: &Cluster, server: &ServerState, payload: &[u8]) {
    if let Ok(from) = serde_json::from_slice::<Origin>(payload) {
        heard(cluster, server, &from);
    }
}

pub(super) fn state(cluster: &Cluster, server: &ServerState, payload: &[u8]) {
    let msg: StateMsg = match serde_json::from_slice(payload) {
        Ok(msg) => msg,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable cluster event");
            return;
        }
    };
    if !heard(cluster, server, &msg.from) {
        return;
    }
    let registry = &server.registry;
    let q = server.config.irc.quiet_lobby_above;
    let node = msg.from.node.as_str();
    let _batch = OutBatch::begin();
    match msg.event {
        Event::SyncRequest { to } => {
            if to == cluster.origin.node {
                registry.publish_snapshot();
            }
        }
        Event::Snapshot { users, topics, channels, part, last } => {
            match cluster.snapshots.add(node, msg.from.inc, part, last, users, topics, channels) {
                Arrived::Partial => {}
                Arrived::Whole(s) => registry.remote_snapshot(&msg.from, s.users, s.topics, s.channels, q),
                Arrived::Gap => {
                    tracing::warn!(node, "a cluster snapshot part went missing: asking again");
                    cluster.outbox.send(Out::State(Event::SyncRequest { to: node.to_string() }));
                }
            }
        }
        Event::Register { user } => registry.remote_register(&msg.from, user, q),
        Event::Rename { id, nick } => registry.remote_rename(node, id, &nick),
        Event::Join { id, channel, op } => registry.remote_join(node, id, &channel, op, q),
        Event::Part { id, channel, line } => registry.remote_part(node, id, &channel, &line, q),
        Event::Kick { nick, channel, line } => registry.remote_kick(&nick, &channel, &line),
        Event::Topic { topic, line } => registry.remote_topic(topic, &line),
        Event::Quit { id, line } => registry.remote_quit(node, id, line.as_deref(), q),
        Event::ChanMode { channel, source, nick, stamp, changes } => {
            registry.remote_modes(&channel, &source, &nick, &stamp, &changes)
        }
        Event::Invite { nick, channel, source, account } => {
            registry.remote_invite(&nick, &channel, &source, account.as_deref())
        }
        Event::Kill { nick, by, reason } => kill(server, &nick, by, reason),
        Event::Away { id, text } => {
            if let Some((id, mask)) = registry.remote_user(node, id) {
                registry.set_away(id, text, &mask);
            }
        }
        Event::SetName { id, realname } => {
            if let Some((id, mask)) = registry.remote_user(node, id) {
                registry.set_realname(id, &realname, &mask);
            }
        }
        Event::Account { id, account } => {
            if let Some((id, mask)) = registry.remote_user(node, id) {
                registry.set_account(id, account.as_deref(), &mask);
            }
        }
        Event::Invisible { id, on } => {
            if let Some((id, _)) = registry.remote_user(node, id) {
                registry.set_invisible(id, on);
            }
        }
        Event::Oper { id, on } => {
            if let Some((id, _)) = registry.remote_user(node, id) {
                registry.set_oper(id, on.then(|| crate::registry::remote::REMOTE_OPER.to_string()));
            }
        }
    }
}

/// An operator on another node killed `nick`: if the user is here, it is
/// closed as a local KILL would close it, and its QUIT goes out as usual.
fn kill(server: &ServerState, nick: &str, by: String, reason: String) {
    let found = {
        let view = server.registry.read();
        view.id_by_nick(nick)
            .filter(|id| !crate::registry::remote::is_remote(*id))
            .and_then(|id| view.user(id))
            .map(|u| (u.client.clone(), u.nick.clone(), u.host.clone()))
    };
    let Some((client, nick, host)) = found else { return };
    use crate::activity_log::{Actor, Value};
    server.log.record(
        "kill",
        Actor::server(),
        &[("target", Value::Text(&nick)), ("by", Value::Text(&by)), ("reason", Value::Text(&reason))],
    );
    let why = crate::close_reason::CloseReason::Killed(Box::new((by, reason)));
    let error = parley_proto::Message::new("ERROR", vec![format!("Closing Link: {host} ({})", why.text())]);
    client.close(why, Some(error.to_bytes().to_vec()));
}

fn relay_of(msg: &Relayed) -> Relay {
    Relay::from_cluster(msg.line.as_bytes(), msg.client_tags(), Some((&msg.msgid, msg.at)))
        .with_account(msg.account.as_deref())
}

/// A private message for a user here.
pub(super) fn direct(cluster: &Cluster, server: &ServerState, payload: &[u8]) {
    let Ok(msg) = serde_json::from_slice::<Relayed>(payload) else { return };
    if msg.from.node == cluster.origin.node {
        return;
    }
    let Some((id, nick)) = &msg.to else { return };
    let relay = relay_of(&msg);
    let _batch = OutBatch::begin();
    if server.registry.deliver_to_user(*id, nick, &relay) {
        record(server, &msg, Some(*id));
    }
}

/// A relayed message into this node's history, when the store is this
/// node's own (`History::relayed`); `to` is the user here a private
/// message was for.
fn record(server: &ServerState, msg: &Relayed, to: Option<crate::outbound::ClientId>) {
    let Some(history) = server.history.as_ref().filter(|h| !h.shares_store()) else { return };
    let recipient = match to {
        Some(id) => {
            let view = server.registry.read();
            let Some(user) = view.user(id) else { return };
            Some(crate::history::party_key(user.account.as_deref(), &user.nick))
        }
        None => None,
    };
    let tags = msg.client_tags();
    history.relayed(&msg.line, &msg.msgid, msg.at, msg.account.as_deref(), &tags, recipient.as_deref());
}

/// One channel's messages from other nodes, for its members here, until
/// the subscription is dropped (the task aborted).
pub(super) async fn channel(cluster: Arc<Cluster>, server: Arc<ServerState>, mut sub: async_nats::Subscriber) {
    while let Some(m) = sub.next().await {
        crate::metrics::get().cluster_events_in.inc();
        let Ok(msg) = serde_json::from_slice::<Relayed>(&m.payload) else { continue };
        if msg.from.node == cluster.origin.node {
            continue;
        }
        let Some(channel) = &msg.channel else { continue };
        let relay = relay_of(&msg);
        let _batch = OutBatch::begin();
        server.registry.deliver_to_channel(channel, msg.status, &relay);
        if msg.status.is_none() {
            record(&server, &msg, None);
        }
    }
}

/// A node joined or was lost, in the activity log.
pub(super) fn log_node(server: &ServerState, what: &'static str, node: &str, users: usize) {
    use crate::activity_log::{Actor, Value};
    server.log.record(what, Actor::server(), &[("node", Value::Text(node)), ("users", Value::Num(users as u64))]);
}
