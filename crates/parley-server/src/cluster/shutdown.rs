//! The cluster-wide shutdown (`DIE CLUSTER`): an operator's order, published
//! on `parley.cluster.shutdown`, on which every node shuts down as for `DIE`,
//! its users told who closed the chat and why. `DIE` alone still closes
//! only the node it was sent to.
//!
//! Core NATS carries the order: a node cut off from NATS at that moment
//! does not hear it and keeps running (docs/CLUSTER.md).

use super::wire::Origin;
use super::{Cluster, Out};
use crate::activity_log::{Actor, Value};
use crate::server::ServerState;
use crate::shutdown::ShutdownCause;
use serde::{Deserialize, Serialize};

/// Every node listens here.
pub const SUBJECT: &str = "parley.cluster.shutdown";

/// An operator's order to close every node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    pub from: Origin,
    /// Who gave it, as `DIE` names them: `<nick> (operator <name>)`.
    pub by: String,
    pub reason: String,
}

impl Cluster {
    /// Tells every other node to shut down for `by` and `reason` (this
    /// node shuts down as for `DIE`, by its caller).
    pub fn shut_down_all(&self, by: &str, reason: &str) {
        let order = Order { from: self.origin.clone(), by: by.to_string(), reason: reason.to_string() };
        self.outbox.send(Out::Shutdown(Box::new(order)));
    }
}

/// Another node's order: this node shuts down as for `DIE`.
pub(super) fn order(cluster: &Cluster, server: &ServerState, payload: &[u8]) {
    let Ok(order) = serde_json::from_slice::<Order>(payload) else {
        tracing::warn!("unreadable cluster shutdown order");
        return;
    };
    if order.from.node == cluster.origin.node {
        return;
    }
    tracing::warn!(node = %order.from.node, by = %order.by, reason = %order.reason, "cluster-wide shutdown");
    server.log.record(
        "die_cluster",
        Actor::server(),
        &[
            ("node", Value::Text(&order.from.node)),
            ("by", Value::Text(&order.by)),
            ("reason", Value::Text(&order.reason)),
        ],
    );
    server.shutdown.trigger(ShutdownCause { by: order.by, reason: order.reason });
}
