//! Nick claims, cluster-wide: one key per casefolded nick in a JetStream
//! key-value bucket, taken with compare-and-set (`create`, or `update` at
//! the revision read), so of two nodes racing for a nick exactly one wins.
//! A claim names its holder (node, incarnation, client id). A dead node
//! does not release its claims; instead a claim whose node is not alive
//! (in that incarnation) counts as free and is taken over, again by
//! compare-and-set. A node just started cannot tell a silent node from a
//! dead one until it has listened for a whole node timeout: until then it
//! counts other nodes' claims as held, unless their node has restarted.

use super::nodes::Nodes;
use super::wire::{claim_key, ClaimValue, Origin};
use crate::outbound::ClientId;
use async_nats::jetstream::kv;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The bucket's name.
pub const BUCKET: &str = "parley_nicks";

/// How long one JetStream operation of a claim may take.
const OP_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a claim keeps trying while JetStream does not answer.
const CLAIM_BUDGET: Duration = Duration::from_secs(8);

#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    Won,
    /// Held by a live user elsewhere: 433.
    Lost,
    /// The node is cut off from NATS: the nick is checked against its own
    /// users only (docs/CLUSTER.md, "cut off").
    Unavailable,
}

pub struct Claims {
    kv: kv::Store,
    client: async_nats::Client,
    me: Origin,
    nodes: Arc<Nodes>,
    started: Instant,
    timeout: Duration,
    /// Key → (holder, revision), for the claims this node holds.
    held: Mutex<HashMap<String, (ClientId, u64)>>,
}

impl Claims {
    pub fn new(kv: kv::Store, client: async_nats::Client, me: Origin, nodes: Arc<Nodes>, timeout: Duration) -> Claims {
        Claims { kv, client, me, nodes, started: Instant::now(), timeout, held: Mutex::default() }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, (ClientId, u64)>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims the casefolded nick `folded` for local client `id`. While
    /// JetStream does not answer (a new stream leader being elected after a
    /// NATS server died) it tries again, for up to `CLAIM_BUDGET`.
    pub async fn claim(&self, folded: &str, id: ClientId) -> Claim {
        let key = claim_key(folded);
        if let Some((holder, _)) = self.held().get(&key) {
            return if *holder == id { Claim::Won } else { Claim::Lost };
        }
        let deadline = Instant::now() + CLAIM_BUDGET;
        loop {
            match self.attempt(&key, id).await {
                Some(claim) => return claim,
                None if Instant::now() < deadline && self.connected() => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                None => return self.unanswered(),
            }
        }
    }

    /// Claims `folded` for local client `id` again, after this node was
    /// cut off: whatever this node thought it held is checked against the
    /// bucket (another node may have taken a claim it saw as dead).
    /// `Unavailable` if JetStream does not answer.
    pub async fn reclaim(&self, folded: &str, id: ClientId) -> Claim {
        let key = claim_key(folded);
        self.held().remove(&key);
        match self.attempt(&key, id).await {
            Some(claim) => claim,
            None => Claim::Unavailable,
        }
    }

    fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// One try: `None` if JetStream did not answer.
    async fn attempt(&self, key: &str, id: ClientId) -> Option<Claim> {
        let key = key.to_string();
        let value = ClaimValue { node: self.me.node.clone(), inc: self.me.inc, id };
        let bytes: bytes::Bytes = serde_json::to_vec(&value).unwrap_or_default().into();
        let created = match tokio::time::timeout(OP_TIMEOUT, self.kv.create(&key, bytes.clone())).await {
            Err(_) => return None,
            Ok(r) => r,
        };
        let revision = match created {
            Ok(revision) => revision,
            // Taken, or lost to a racing claim: who holds it decides.
            Err(e) => {
                let entry = match tokio::time::timeout(OP_TIMEOUT, self.kv.entry(key.clone())).await {
                    Ok(Ok(Some(entry))) => entry,
                    Ok(Ok(None)) => {
                        tracing::debug!(error = %e, "nick claim refused with no holder to be seen");
                        return Some(Claim::Lost);
                    }
                    _ => return None,
                };
                let holder = serde_json::from_slice::<ClaimValue>(&entry.value).ok();
                // Ours already: an earlier try whose answer timed out (a NATS
                // server failing over) did write it.
                if entry.operation == kv::Operation::Put && holder.as_ref() == Some(&value) {
                    self.held().insert(key, (id, entry.revision));
                    return Some(Claim::Won);
                }
                let free = entry.operation != kv::Operation::Put || holder.is_none_or(|o| self.is_stale(&o));
                if !free {
                    return Some(Claim::Lost);
                }
                match tokio::time::timeout(OP_TIMEOUT, self.kv.update(&key, bytes, entry.revision)).await {
                    Ok(Ok(revision)) => revision,
                    Ok(Err(_)) => return Some(Claim::Lost),
                    Err(_) => return None,
                }
            }
        };
        self.held().insert(key, (id, revision));
        Some(Claim::Won)
    }

    /// JetStream did not answer: cut off from NATS, the node goes by its
    /// own users; still connected (JetStream slow, or without a quorum),
    /// the nick is refused rather than risk two holders.
    fn unanswered(&self) -> Claim {
        if self.connected() {
            tracing::warn!("a nick claim got no answer from JetStream: refused");
            Claim::Lost
        } else {
            Claim::Unavailable
        }
    }

    /// A claim whose holder is gone: this node's earlier incarnation, a
    /// client of this node that no longer holds it, or a node not heard
    /// from (once this node has listened for a whole timeout).
    fn is_stale(&self, owner: &ClaimValue) -> bool {
        if owner.node == self.me.node {
            return owner.inc != self.me.inc || !self.held().values().any(|(id, _)| *id == owner.id);
        }
        if self.nodes.incarnation(&owner.node).is_some_and(|inc| inc != owner.inc) {
            return true; // its node restarted since
        }
        let now = Instant::now();
        !self.nodes.alive(&owner.node, owner.inc, now) && now.duration_since(self.started) >= self.timeout
    }

    /// Gives up client `id`'s claim on `folded` (after a rename).
    pub async fn release(&self, folded: &str, id: ClientId) {
        let key = claim_key(folded);
        let revision = {
            let mut held = self.held();
            match held.get(&key) {
                Some((holder, revision)) if *holder == id => {
                    let revision = *revision;
                    held.remove(&key);
                    revision
                }
                _ => return,
            }
        };
        // Only if it is still ours at that revision: never someone else's.
        let delete = self.kv.delete_expect_revision(&key, Some(revision));
        if let Ok(Err(e)) = tokio::time::timeout(OP_TIMEOUT, delete).await {
            tracing::debug!(error = %e, "releasing a nick claim");
        }
    }

    /// Gives up every claim of client `id` (it left).
    pub async fn release_all(&self, id: ClientId) {
        let keys: Vec<(String, u64)> =
            self.held().iter().filter(|(_, (holder, _))| *holder == id).map(|(k, (_, r))| (k.clone(), *r)).collect();
        for (key, revision) in keys {
            self.held().remove(&key);
            let delete = self.kv.delete_expect_revision(&key, Some(revision));
            let _ = tokio::time::timeout(OP_TIMEOUT, delete).await;
        }
    }
}
