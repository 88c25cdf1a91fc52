//! How connections begin and end: the set of open IRC connections (so a
//! shutdown can reach each one, and the ticker can check their liveness),
//! the goodbye when one closes, and the drain of a shutdown with its grace
//! period. `shutdown.rs` holds the trigger; this module is what the server
//! does once it fires.

pub mod connections;

use crate::activity_log::Value;
use crate::close_reason::CloseReason;
use crate::outbound::Client;
use crate::relay::Relay;
use crate::server::ServerState;
use crate::session::Session;
use parley_proto::Message;
use std::time::Duration;
use tokio_util::task::TaskTracker;

/// The end of a connection, once its read loop has stopped: the user
/// leaves the registry (the others see a QUIT, except at shutdown and in
/// crowded lobbies), the activity log records it, and the client gets its
/// closing `ERROR` line after whatever was still queued.
pub fn farewell(s: &mut Session, server: &ServerState, reason: CloseReason) {
    let text = reason.text().into_owned();
    crate::metrics::disconnected(&reason);
    let shutting_down = matches!(reason, CloseReason::Shutdown(_));
    if reason == CloseReason::SendQExceeded {
        let fields = [("what", Value::Text("sendq")), ("bytes", Value::Num(server.config.limits.sendq_bytes as u64))];
        server.log.record("limit", s.actor(), &fields);
    }
    if shutting_down {
        let target = s.nick.clone().unwrap_or_else(|| "*".into());
        let notice =
            Message::new("NOTICE", vec![target, format!("*** {text}")]).with_source(server.config.server_name.clone());
        s.client.push(&notice.to_bytes());
    }
    if let Some(history) = &server.history {
        history.forget_markers(s.id);
    }
    if let (Some(history), Some(account)) = (&server.history, s.account()) {
        let channels = server.registry.read().user(s.id).map(|u| u.channels.clone()).unwrap_or_default();
        let now = crate::clock::unix_millis(std::time::SystemTime::now());
        for channel in channels {
            history.record_member(account, &channel, Some(now));
        }
    }
    if s.registered {
        // At shutdown everyone is leaving; a QUIT per user to every other
        // user would cost the square of the user count for nothing.
        let relay = (!shutting_down)
            .then(|| Relay::new(Message::new("QUIT", vec![text.clone()]).with_source(s.hostmask()), Vec::new()));
        server.registry.quit(s.id, relay.as_ref(), server.config.irc.quiet_lobby_above);
    }
    if let Some(cluster) = &server.cluster {
        cluster.forget(s.id);
    }
    server.log.record("quit", s.actor(), &[("reason", Value::Text(&text))]);
    let error = Message::new("ERROR", vec![format!("Closing Link: {} ({text})", s.host)]).to_bytes().to_vec();
    s.client.close(reason, Some(error));
}

/// After the shutdown has been triggered: wakes every connection (each
/// then says goodbye and flushes on its own) and waits for all tasks on
/// `tracker`, at most the grace period and a little more.
pub async fn drain(server: &ServerState, tracker: &TaskTracker) {
    server.connections.for_each(Client::wake_for_shutdown);
    tracker.close();
    let grace = Duration::from_secs(server.config.limits.shutdown_grace_secs);
    if tokio::time::timeout(grace + Duration::from_secs(2), tracker.wait()).await.is_err() {
        tracing::warn!("some connections did not close within the grace period");
    }
}
