//! Nick clashes made while this node was cut off from NATS: it let its
//! users take nicks checked against its own users only, and the other
//! nodes, taking it for dead, let theirs take over its claims. Back in
//! contact, once it has heard every live node again (one node timeout),
//! it claims each of its users' nicks again; where another node's user
//! holds the claim now, its own user loses: renamed to a guest nick, told
//! why in a NOTICE (docs/CLUSTER.md, failure cases).

use super::{Claim, Cluster};
use crate::outbound::{ClientId, OutBatch};
use crate::registry::remote::is_remote;
use crate::server::ServerState;
use parley_proto::{casefold, irc_eq, Message};
use std::sync::Arc;
use std::time::Duration;

/// Guest nicks tried before giving up on one loser (each a claim).
const GUEST_TRIES: usize = 10;

/// Claims every local user's nick again; run after contact with NATS is
/// back. Stops if contact is lost again (the next return starts over).
pub(super) async fn after_return(cluster: Arc<Cluster>, server: Arc<ServerState>) {
    tokio::time::sleep(Duration::from_secs(cluster.config.node_timeout_secs)).await;
    let users: Vec<(ClientId, String)> = {
        let view = server.registry.read();
        view.users().filter(|(id, _)| !is_remote(*id)).map(|(id, u)| (id, u.nick.clone())).collect()
    };
    let mut renamed = 0u64;
    for (id, nick) in &users {
        match cluster.claims.reclaim(&casefold(nick), *id).await {
            Claim::Won => {}
            Claim::Unavailable => return,
            Claim::Lost => renamed += u64::from(rename_loser(&cluster, &server, *id, nick).await),
        }
    }
    tracing::info!(users = users.len(), renamed, "nick claims made again after a split");
    use crate::activity_log::{Actor, Value};
    server.log.record(
        "cluster_nicks_reclaimed",
        Actor::server(),
        &[("users", Value::Num(users.len() as u64)), ("renamed", Value::Num(renamed))],
    );
}

/// Local user `id` lost `nick` to a user of another node: it becomes a
/// guest. False if it had changed nick meanwhile, or left.
async fn rename_loser(cluster: &Cluster, server: &ServerState, id: ClientId, nick: &str) -> bool {
    for _ in 0..GUEST_TRIES {
        let guest = format!("Guest{}", rand::random::<u32>() % 100_000);
        let folded = casefold(&guest);
        if cluster.claims.claim(&folded, id).await != Claim::Won {
            continue;
        }
        let found = {
            let view = server.registry.read();
            view.user(id).filter(|u| irc_eq(&u.nick, nick)).map(|u| (u.client.clone(), u.hostmask()))
        };
        let Some((client, mask)) = found else {
            cluster.claims.release(&folded, id).await;
            return false;
        };
        let _batch = OutBatch::begin();
        let Ok(relay) = server.registry.rename(id, &guest, mask) else {
            drop(_batch);
            cluster.claims.release(&folded, id).await;
            continue;
        };
        client.push(relay.bytes_for(client.caps()));
        let text = format!(
            "While this server was cut off from the rest of the chat, {nick} was taken by a user elsewhere: \
             your nick is now {guest}."
        );
        let notice = Message::new("NOTICE", vec![guest.clone(), text]).with_source(server.config.server_name.clone());
        client.push(&notice.to_bytes());
        // The connection follows the new nick at its next turn.
        client.set_deadline(0);
        client.tick(0);
        use crate::activity_log::{Actor, Value};
        server.log.record(
            "nick",
            Actor::server(),
            &[("old", Value::Text(nick)), ("new", Value::Text(&guest)), ("why", Value::Text("cluster_clash"))],
        );
        return true;
    }
    false
}
