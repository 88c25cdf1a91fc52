//! Several `parleyd` nodes as one chat, over NATS (docs/CLUSTER.md). Off
//! unless the config has a `[cluster]` section; then the registry hands
//! every change of a local user (registration, nick, join, part, kick,
//! topic, quit) and every message for a remote member to the [`Outbox`],
//! and this module publishes them, applies what the other nodes publish
//! (`inbound`), claims nicks cluster-wide (`claims`) and watches which
//! nodes are alive (`nodes`).
//!
//! It never blocks the chat: the registry's hand-off is a `try_send` onto
//! a bounded queue (full: dropped, counted, logged), and everything that
//! waits on NATS waits in this module's tasks.

mod claims;
mod inbound;
mod nodes;
pub mod wire;

pub use claims::Claim;

use crate::config::ClusterConfig;
use crate::outbound::ClientId;
use crate::relay::Relay;
use crate::server::ServerState;
use async_nats::jetstream;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use wire::{Event, Origin, Relayed, StateMsg};

/// How many changes and messages may wait for NATS before more are
/// dropped (a node cut off from NATS fills it).
const OUTBOX_CAPACITY: usize = 65_536;

/// How often silent nodes are looked for.
const SWEEP_EVERY: Duration = Duration::from_millis(500);

/// Heartbeats per node timeout: a node is taken for dead only after
/// missing about this many in a row.
const BEATS_PER_TIMEOUT: u32 = 4;

#[derive(Debug, Error)]
pub enum ClusterError {
    #[error("cannot reach NATS at {urls} within {secs} s (cluster.nats_urls; JetStream must be on): {reason}")]
    Connect { urls: String, secs: u64, reason: String },
}

/// What the registry (and the connections) hand to the cluster.
pub enum Out {
    /// A change of a local user, for `parley.state.<node>`.
    State(Event),
    /// A message for the members of a channel on other nodes.
    ToChannel { key: String, msg: Box<Relayed> },
    /// A private message for a user of node `node`.
    ToNode { node: Arc<str>, msg: Box<Relayed> },
    /// The first local member joined channel `key` (casefolded): listen.
    Subscribe(String),
    /// The last local member left it: stop listening.
    Unsubscribe(String),
    /// Client `id` is gone: release its nick claims.
    Forget(ClientId),
    /// Publish everything before this, then answer.
    Flush(oneshot::Sender<()>),
}

/// The registry's handle: hands over without ever waiting.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Out>,
    origin: Arc<Origin>,
    dropped: Arc<AtomicU64>,
}

impl Outbox {
    pub fn send(&self, out: Out) {
        if self.tx.try_send(out).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() {
                tracing::warn!(dropped = n + 1, "the cluster outbox is full: changes are not reaching other nodes");
            }
        }
    }

    fn relayed(&self, relay: &Relay) -> Box<Relayed> {
        Box::new(Relayed {
            from: (*self.origin).clone(),
            channel: None,
            status: None,
            to: None,
            line: relay.plain_text(),
            tags: relay.client_tags().iter().map(|t| (t.key.clone(), t.value.clone())).collect(),
            msgid: relay.msgid(),
            at: relay.at_millis(),
            account: relay.account().map(str::to_string),
        })
    }

    /// A channel message for the channel's members on other nodes.
    pub fn relay_to_channel(&self, key: &str, name: &str, status: Option<char>, relay: &Relay) {
        let mut msg = self.relayed(relay);
        msg.channel = Some(name.to_string());
        msg.status = status;
        self.send(Out::ToChannel { key: key.to_string(), msg });
    }

    /// A private message for user `rid` (`nick`) of node `node`.
    pub fn relay_to_user(&self, node: &Arc<str>, rid: ClientId, nick: &str, relay: &Relay) {
        let mut msg = self.relayed(relay);
        msg.to = Some((rid, nick.to_string()));
        self.send(Out::ToNode { node: node.clone(), msg });
    }
}

/// This node's membership of the cluster.
pub struct Cluster {
    config: ClusterConfig,
    origin: Origin,
    client: async_nats::Client,
    claims: Arc<claims::Claims>,
    nodes: Arc<nodes::Nodes>,
    outbox: Outbox,
    queue: Mutex<Option<mpsc::Receiver<Out>>>,
    /// NATS connection events (lost, back), for the main loop to say so.
    events: Mutex<Option<mpsc::Receiver<async_nats::Event>>>,
    connected: AtomicBool,
    /// The outbox task, joined by [`Cluster::flush`].
    outbox_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Cluster {
    /// Connects to NATS and opens the claims bucket, within
    /// `cluster.connect_timeout_secs`, or says why not.
    pub async fn connect(config: &ClusterConfig) -> Result<Cluster, ClusterError> {
        let secs = config.connect_timeout_secs;
        let connect_error = |reason: String| ClusterError::Connect { urls: config.nats_urls.join(","), secs, reason };
        let inc = crate::clock::unix_millis(std::time::SystemTime::now()) as u64;
        let origin = Origin { node: config.node_name.clone(), inc };
        let (event_tx, event_rx) = mpsc::channel(64);
        let options = async_nats::ConnectOptions::new()
            .name(format!("parleyd {}", config.node_name))
            .no_echo()
            .connection_timeout(Duration::from_secs(secs))
            .retry_on_initial_connect()
            .event_callback(move |event| {
                let tx = event_tx.clone();
                async move {
                    let _ = tx.try_send(event);
                }
            });
        let urls: Vec<&str> = config.nats_urls.iter().map(String::as_str).collect();
        let last_error = Mutex::new(String::new());
        let connecting = async {
            let client = options.connect(urls).await.map_err(|e| connect_error(e.to_string()))?;
            let js = jetstream::new(client.clone());
            // The bucket's stream made by hand, as `create_key_value` would
            // make it: that call first reads the account's JetStream info,
            // which the client cannot parse from Debian's nats-server 2.9.
            let stream_config = jetstream::stream::Config {
                name: format!("KV_{}", claims::BUCKET),
                description: Some("parleyd nick claims".into()),
                subjects: vec![format!("$KV.{}.>", claims::BUCKET)],
                max_messages_per_subject: 1,
                storage: jetstream::stream::StorageType::File,
                allow_rollup: true,
                deny_delete: true,
                // Reads through the stream's leader: a direct read may be
                // answered by a replica that has not seen the write a
                // racing claim just lost to.
                allow_direct: false,
                num_replicas: config.kv_replicas,
                discard: jetstream::stream::DiscardPolicy::New,
                ..Default::default()
            };
            // A NATS cluster just started may still be electing its
            // JetStream leader: tried again until the timeout.
            let kv = loop {
                let made = js.get_or_create_stream(stream_config.clone()).await;
                match made.map(|_| ()) {
                    // Writable, too: the bucket's stream has a leader (a
                    // claim made before that would wait, and be refused).
                    Ok(()) => match js.get_key_value(claims::BUCKET).await {
                        Ok(kv) if kv.put(format!("node.{}", origin.node), inc.to_string().into()).await.is_ok() => {
                            break kv
                        }
                        Ok(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                        Err(e) => {
                            *last_error.lock().unwrap_or_else(|p| p.into_inner()) = e.to_string();
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                    },
                    // Made already by another node, perhaps differently.
                    Err(create) => match js.get_key_value(claims::BUCKET).await {
                        Ok(kv) => break kv,
                        Err(_) => {
                            *last_error.lock().unwrap_or_else(|p| p.into_inner()) = create.to_string();
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                    },
                }
            };
            Ok::<_, ClusterError>((client, kv))
        };
        let (client, kv) = tokio::time::timeout(Duration::from_secs(secs), connecting).await.map_err(|_| {
            let last = last_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if last.is_empty() {
                connect_error("timed out".into())
            } else {
                connect_error(format!("timed out opening the JetStream bucket {} ({last})", claims::BUCKET))
            }
        })??;
        // Silent this long, a node is dead: with one sweep per
        // `SWEEP_EVERY`, its users are seen to quit within the timeout.
        let timeout = Duration::from_secs(config.node_timeout_secs) - SWEEP_EVERY;
        let nodes = Arc::new(nodes::Nodes::new(timeout));
        let claims = Arc::new(claims::Claims::new(kv, client.clone(), origin.clone(), nodes.clone(), timeout));
        let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
        let outbox = Outbox { tx, origin: Arc::new(origin.clone()), dropped: Arc::default() };
        Ok(Cluster {
            config: config.clone(),
            origin,
            client,
            claims,
            nodes,
            outbox,
            queue: Mutex::new(Some(rx)),
            events: Mutex::new(Some(event_rx)),
            connected: AtomicBool::new(true),
            outbox_task: Mutex::new(None),
        })
    }

    pub fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }

    pub fn node_name(&self) -> &str {
        &self.origin.node
    }

    /// Claims `nick` cluster-wide for local client `id`.
    pub async fn claim_nick(&self, nick: &str, id: ClientId) -> Claim {
        self.claims.claim(&parley_proto::casefold(nick), id).await
    }

    /// Gives up `id`'s claim on `nick` (it changed nick, or a local rule
    /// refused the nick after all).
    pub async fn release_nick(&self, nick: &str, id: ClientId) {
        self.claims.release(&parley_proto::casefold(nick), id).await;
    }

    /// Client `id` is gone: its claims are released in the background.
    pub fn forget(&self, id: ClientId) {
        self.outbox.send(Out::Forget(id));
    }

    /// Publishes what is queued and waits for NATS to have it, at most
    /// `within` (at shutdown, after every connection said goodbye).
    pub async fn flush(&self, within: Duration) {
        let (tx, rx) = oneshot::channel();
        self.outbox.send(Out::Flush(tx));
        let _ = tokio::time::timeout(within, rx).await;
        let task = self.outbox_task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            task.abort();
        }
    }

    /// Serves the cluster until shutdown: subscribes, starts the outbox
    /// task, and handles what other nodes say, heartbeats and timeouts.
    pub async fn run(self: Arc<Self>, server: Arc<ServerState>) {
        let subscribe = |subject: String| self.client.subscribe(subject);
        let (Ok(mut states), Ok(mut beats), Ok(mut direct)) = (
            subscribe(wire::STATE_ALL.into()).await,
            subscribe(wire::HEARTBEAT_ALL.into()).await,
            subscribe(wire::user_subject(&self.origin.node)).await,
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
        loop {
            tokio::select! {
                Some(m) = states.next() => inbound::state(&self, &server, &m.payload),
                Some(m) = beats.next() => inbound::heartbeat(&self, &server, &m.payload),
                Some(m) = direct.next() => inbound::direct(&self, &server, &m.payload),
                Some(event) = recv(&mut events) => self.connection_event(&server, event),
                _ = tick.tick() => {
                    // Cut off, a publish would wait for room: none then, and
                    // bounded anyway, so the sweep and the inbound work go on.
                    if self.client.connection_state() == async_nats::connection::State::Connected {
                        let publish = self.client.publish(hb_subject.clone(), hb.clone());
                        let _ = tokio::time::timeout(Duration::from_millis(100), publish).await;
                    }
                }
                _ = sweep.tick() => {
                    let _batch = crate::outbound::OutBatch::begin();
                    let q = server.config.irc.quiet_lobby_above;
                    for node in self.nodes.sweep(Instant::now()) {
                        let reason = format!("Quit: {node} lost contact");
                        let n = server.registry.drop_node(&node, None, &reason, q);
                        tracing::warn!(node = %node, users = n, "cluster node timed out");
                        log_node(&server, "cluster_node_lost", &node, n);
                    }
                }
                _ = stop.recv() => break,
            }
        }
    }

    fn connection_event(&self, server: &ServerState, event: async_nats::Event) {
        let text = match event {
            async_nats::Event::Disconnected if self.connected.swap(false, Ordering::Relaxed) => {
                "This server has lost contact with the rest of the chat: you can still talk to the users here, and the rest will be back when it returns."
            }
            async_nats::Event::Connected if !self.connected.swap(true, Ordering::Relaxed) => {
                "This server is back in contact with the rest of the chat."
            }
            _ => return,
        };
        tracing::warn!(%event, "cluster connection");
        server.log.record(
            "cluster",
            crate::activity_log::Actor::server(),
            &[("nats", crate::activity_log::Value::Text(&event.to_string()))],
        );
        crate::files::Chat::announce(server, text);
    }
}

async fn recv<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn log_node(server: &ServerState, what: &'static str, node: &str, users: usize) {
    use crate::activity_log::{Actor, Value};
    server.log.record(what, Actor::server(), &[("node", Value::Text(node)), ("users", Value::Num(users as u64))]);
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
            Out::Flush(done) => {
                let _ = client.flush().await;
                let _ = done.send(());
                continue;
            }
        };
        match payload {
            Ok(payload) => {
                if let Err(e) = client.publish(subject, payload.into()).await {
                    tracing::warn!(error = %e, "cluster publish failed");
                }
            }
            Err(e) => tracing::error!(error = %e, "cluster message not serialisable"),
        }
    }
    tasks.abort_all();
}
