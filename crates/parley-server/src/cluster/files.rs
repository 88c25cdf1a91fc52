//! The shared file store's news between nodes (docs/CLUSTER.md, "The file
//! store"): every commit, delete and share-link change made through one
//! node is published on `parley.files`, so the others bring that name's
//! entry up to date from the shared directory at once and tell their own
//! lobby members what the uploading node told its own. The directory
//! stays the truth: a node that may have missed news (back in contact,
//! or another node new to it) reads it whole again.

use super::wire::Origin;
use super::{Cluster, Out};
use crate::files::storage::Store;
use crate::server::ServerState;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Every node publishes and subscribes here.
pub const SUBJECT: &str = "parley.files";

/// A name of the store changed on node `from`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileNews {
    pub from: Origin,
    pub name: String,
    /// The lobby notice the node gave its users, for the others' users.
    pub announce: Option<String>,
}

impl Cluster {
    /// The file store this node serves: a directory all nodes share.
    pub fn attach_store(&self, store: Arc<Store>) {
        let _ = self.store.set(store);
    }

    /// Tells the other nodes that `name` changed here.
    pub fn file_changed(&self, name: &str, announce: Option<&str>) {
        let news =
            FileNews { from: self.origin.clone(), name: name.to_string(), announce: announce.map(str::to_string) };
        self.outbox.send(Out::Files(Box::new(news)));
    }

    /// Reads the shared directory whole again: this node may have missed
    /// news (NATS was lost and is back, or a node was new to it). On the
    /// blocking pool: the directory may be large and on a network file
    /// system, and the caller is the cluster's loop on the chat thread.
    pub(super) fn reload_files(&self) {
        if let Some(store) = self.store.get().cloned() {
            tokio::task::spawn_blocking(move || {
                if let Err(e) = store.reload() {
                    tracing::warn!(error = %e, "reading the shared file store again");
                }
            });
        }
    }
}

/// News from another node: the name brought up to date, the notice shown.
pub(super) fn news(cluster: &Cluster, server: &ServerState, payload: &[u8]) {
    let Ok(news) = serde_json::from_slice::<FileNews>(payload) else {
        tracing::warn!("unreadable file-store news from the cluster");
        return;
    };
    if news.from.node == cluster.origin.node {
        return;
    }
    if let Some(store) = cluster.store.get() {
        store.refresh(&news.name);
    }
    if let Some(text) = &news.announce {
        crate::files::Chat::announce(server, text);
    }
}
