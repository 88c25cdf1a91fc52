//! The node's part in the cluster while the server runs: the main loop
//! (what other nodes say, heartbeats, timeouts, the NATS connection's
//! ups and downs) and the outbox task that publishes what the registry
//! hands over. Kept apart from `mod.rs`, which the registry and the
//! server's state name, because this is the part that needs the server.

use super::{files, inbound, reclaim, shutdown, wire, Cluster, Out, BEATS_PER_TIMEOUT, SWEEP_EVERY};
use crate::server::ServerState;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use wire::StateMsg;

impl Cluster {
    /// Serves the cluster until shutdown: subscribes, starts the outbox
    /// task, and handles what other nodes say, heartbeats and timeouts.
    pub async fn run(self: Arc<Self>, server: Arc<ServerState>) {
        let subscribe = |subject: String| self.client.subscribe(subject);
        let (Ok(mut states), Ok(mut beats), Ok(mut direct), Ok(mut file_news), Ok(mut orders)) = (
            subscribe(wire::STATE_ALL.into()).await,
            subscribe(wire::HEARTBEAT_ALL.into()).await,
            subscribe(wire::user_subject(&self.origin.node)).await,
            subscribe(files::SUBJECT.into()).await,
            subscribe(shutdown::SUBJECT.into()).await,
        ) else {
            tracing::error!("cannot subscribe to the cluster's subjects");
            return;
        };
        let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner()).take();
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(queue) = queue {
            let task = tokio::spawn(outbox_loop(self.clone(), server.clone(), queue));
            *self.outbox_task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        }
        let beat = Duration::from_secs(self.config.node_timeout_secs) / BEATS_PER_TIMEOUT;
        let mut tick = tokio::time::interval(beat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let hb_subject = wire::heartbeat_subject(&self.origin.node);
        let hb: bytes::Bytes = serde_json::to_vec(&self.origin).unwrap_or_default().into();
        let mut stop = server.shutdown.listener();
        let heard = || crate::metrics::get().cluster_events_in.inc();
        // Claiming the nicks again after a return (`reclaim`), owned here.
        let mut reclaiming: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            tokio::select! {
                Some(m) = states.next() => { heard(); inbound::state(&self, &server, &m.payload) }
                Some(m) = beats.next() => { heard(); inbound::heartbeat(&self, &server, &m.payload) }
                Some(m) = direct.next() => { heard(); inbound::direct(&self, &server, &m.payload) }
                Some(m) = file_news.next() => { heard(); files::news(&self, &server, &m.payload) }
                Some(m) = orders.next() => { heard(); shutdown::order(&self, &server, &m.payload) }
                Some(event) = recv(&mut events) => {
                    let back = self.connection_event(&server, event);
                    // Lost again, or back: a reclaim under way stops; back,
                    // a new one starts.
                    if let Some(task) = reclaiming.take() {
                        task.abort();
                    }
                    if back == Some(true) {
                        reclaiming = Some(tokio::spawn(reclaim::after_return(self.clone(), server.clone())));
                    }
                }
                _ = tick.tick() => {
                    // Cut off, a publish would wait for room: none then, and
                    // bounded anyway, so the sweep and the inbound work go on.
                    if self.client.connection_state() == async_nats::connection::State::Connected {
                        let publish = self.client.publish(hb_subject.clone(), hb.clone());
                        if let Ok(Ok(())) = tokio::time::timeout(Duration::from_millis(100), publish).await {
                            crate::metrics::get().cluster_events_out.inc();
                        }
                    }
                }
                _ = sweep.tick() => {
                    let _batch = crate::outbound::OutBatch::begin();
                    let q = server.config.irc.quiet_lobby_above;
                    for node in self.nodes.sweep(Instant::now()) {
                        let reason = format!("Quit: {node} lost contact");
                        let n = server.registry.drop_node(&node, None, &reason, q);
                        tracing::warn!(node = %node, users = n, "cluster node timed out");
                        inbound::log_node(&server, "cluster_node_lost", &node, n);
                    }
                }
                _ = stop.recv() => break,
            }
        }
        if let Some(task) = reclaiming {
            task.abort();
        }
    }

    /// Says so when contact with NATS is lost (`Some(false)`) or back
    /// (`Some(true)`).
    fn connection_event(&self, server: &ServerState, event: async_nats::Event) -> Option<bool> {
        let (text, back) = match event {
            async_nats::Event::Disconnected if self.connected.swap(false, Ordering::Relaxed) => {
                ("This server has lost contact with the rest of the chat: you can still talk to the users here, and the rest will be back when it returns.", false)
            }
            async_nats::Event::Connected if !self.connected.swap(true, Ordering::Relaxed) => {
                self.reload_files();
                ("This server is back in contact with the rest of the chat.", true)
            }
            _ => return None,
        };
        tracing::warn!(%event, "cluster connection");
        server.log.record(
            "cluster",
            crate::activity_log::Actor::server(),
            &[("nats", crate::activity_log::Value::Text(&event.to_string()))],
        );
        crate::files::Chat::announce(server, text);
        Some(back)
    }
}

async fn recv<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Publishes what the registry hands over, in order, and keeps the
/// channel subscriptions: one task, so each node's events leave in the
/// order they happened.
async fn outbox_loop(cluster: Arc<Cluster>, server: Arc<ServerState>, mut queue: mpsc::Receiver<Out>) {
    let client = &cluster.client;
    let state_subject = wire::state_subject(&cluster.origin.node);
    let mut channels: HashMap<String, tokio::task::AbortHandle> = HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    while let Some(out) = queue.recv().await {
        while tasks.try_join_next().is_some() {}
        let (subject, payload) = match out {
            Out::State(event) => {
                let msg = StateMsg { from: cluster.origin.clone(), event };
                (state_subject.clone(), serde_json::to_vec(&msg))
            }
            Out::ToChannel { key, msg } => (wire::channel_subject(&key), serde_json::to_vec(&msg)),
            Out::ToNode { node, msg } => (wire::user_subject(&node), serde_json::to_vec(&msg)),
            Out::Subscribe(key) => {
                if let Some(old) = channels.remove(&key) {
                    old.abort();
                }
                match client.subscribe(wire::channel_subject(&key)).await {
                    Ok(sub) => {
                        let handle = tasks.spawn(inbound::channel(cluster.clone(), server.clone(), sub));
                        channels.insert(key, handle);
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot subscribe to a channel's cluster traffic"),
                }
                continue;
            }
            Out::Unsubscribe(key) => {
                // Dropping the subscription (with its task) unsubscribes.
                if let Some(old) = channels.remove(&key) {
                    old.abort();
                }
                continue;
            }
            Out::Forget(id) => {
                let claims = cluster.claims.clone();
                tasks.spawn(async move { claims.release_all(id).await });
                continue;
            }
            Out::Files(news) => (files::SUBJECT.to_string(), serde_json::to_vec(&news)),
            Out::Shutdown(order) => (shutdown::SUBJECT.to_string(), serde_json::to_vec(&order)),
            Out::Flush(done) => {
                let _ = client.flush().await;
                let _ = done.send(());
                continue;
            }
        };
        match payload {
            Ok(payload) => match client.publish(subject, payload.into()).await {
                Ok(()) => {
                    crate::metrics::get().cluster_events_out.inc();
                }
                Err(e) => tracing::warn!(error = %e, "cluster publish failed"),
            },
            Err(e) => tracing::error!(error = %e, "cluster message not serialisable"),
        }
    }
    tasks.abort_all();
}
