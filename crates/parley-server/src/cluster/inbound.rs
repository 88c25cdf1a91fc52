//! What other nodes say, applied to this node's registry: each inside an
//! output batch, so a line for many local members is written as the
//! connection path would write it.

use super::nodes::Seen;
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
        Event::Snapshot { users, topics } => registry.remote_snapshot(&msg.from, users, topics, q),
        Event::Register { user } => registry.remote_register(&msg.from, user, q),
        Event::Rename { id, nick } => registry.remote_rename(node, id, &nick),
        Event::Join { id, channel, op } => registry.remote_join(node, id, &channel, op, q),
        Event::Part { id, channel, line } => registry.remote_part(node, id, &channel, &line, q),
        Event::Kick { nick, channel, line } => registry.remote_kick(&nick, &channel, &line),
        Event::Topic { topic, line } => registry.remote_topic(topic, &line),
        Event::Quit { id, line } => registry.remote_quit(node, id, line.as_deref(), q),
    }
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
    server.registry.deliver_to_user(*id, nick, &relay);
}

/// One channel's messages from other nodes, for its members here, until
/// the subscription is dropped (the task aborted).
pub(super) async fn channel(cluster: Arc<Cluster>, server: Arc<ServerState>, mut sub: async_nats::Subscriber) {
    while let Some(m) = sub.next().await {
        let Ok(msg) = serde_json::from_slice::<Relayed>(&m.payload) else { continue };
        if msg.from.node == cluster.origin.node {
            continue;
        }
        let Some(channel) = &msg.channel else { continue };
        let relay = relay_of(&msg);
        let _batch = OutBatch::begin();
        server.registry.deliver_to_channel(channel, msg.status, &relay);
    }
}

/// A node joined or was lost, in the activity log.
pub(super) fn log_node(server: &ServerState, what: &'static str, node: &str, users: usize) {
    use crate::activity_log::{Actor, Value};
    server.log.record(what, Actor::server(), &[("node", Value::Text(node)), ("users", Value::Num(users as u64))]);
}
