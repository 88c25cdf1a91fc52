//! Several `parleyd` nodes as one chat, over NATS (docs/CLUSTER.md). Off
//! unless the config has a `[cluster]` section; then the registry hands
//! every change of a local user (registration, nick, join, part, kick,
//! topic, quit) and every message for a remote member to the [`Outbox`],
//! and this module publishes them (`running`, the main loop and the
//! outbox task), applies what the other nodes publish (`inbound`), claims
//! nicks cluster-wide (`claims`) and watches which nodes are alive
//! (`nodes`).
//!
//! It never blocks the chat: the registry's hand-off is a `try_send` onto
//! a bounded queue (full: dropped, counted, logged), and everything that
//! waits on NATS waits in this module's tasks.

mod claims;
pub mod files;
mod inbound;
mod nodes;
mod reclaim;
mod running;
pub mod shutdown;
pub mod snapshot;
pub mod wire;

pub use claims::Claim;

use crate::config::ClusterConfig;
use crate::outbound::ClientId;
use crate::relay::Relay;
use async_nats::jetstream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use wire::{Event, Origin, Relayed};

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
    /// A name of the shared file store changed here.
    Files(Box<files::FileNews>),
    /// An operator closed the whole cluster (`DIE CLUSTER`).
    Shutdown(Box<shutdown::Order>),
}

/// The registry's handle: hands over without ever waiting.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Out>,
    origin: Arc<Origin>,
    dropped: Arc<AtomicU64>,
    /// The most JSON one snapshot part may carry: a quarter of the NATS
    /// server's `max_payload`, at most `snapshot::PART_BYTES`.
    part_bytes: usize,
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

    /// How big a snapshot part may be (see `snapshot`).
    pub fn part_bytes(&self) -> usize {
        self.part_bytes
    }

    /// This node's name, for stamps.
    pub fn node(&self) -> &str {
        &self.origin.node
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
    /// Other nodes' snapshots, part by part.
    snapshots: snapshot::Pending,
    /// The shared file store, when this node serves one (`files`).
    store: std::sync::OnceLock<Arc<crate::files::storage::Store>>,
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
        let part_bytes = (client.server_info().max_payload / 4).clamp(4096, snapshot::PART_BYTES);
        let outbox = Outbox { tx, origin: Arc::new(origin.clone()), dropped: Arc::default(), part_bytes };
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
            snapshots: snapshot::Pending::default(),
            store: std::sync::OnceLock::new(),
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

    /// For `/metrics`: other nodes alive now, and what the outbox dropped
    /// since start.
    pub fn counts(&self) -> (usize, u64) {
        let alive = self.nodes.alive_count(std::time::Instant::now());
        (alive, self.outbox.dropped.load(Ordering::Relaxed))
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
}
