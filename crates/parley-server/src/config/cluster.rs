//! The `[cluster]` section: several `parleyd` nodes as one chat, over NATS
//! (docs/CLUSTER.md). Without the section there is no cluster: no NATS
//! connection, nothing extra to start.

use super::{invalid, ConfigError};
use serde::Deserialize;

/// The longest `cluster.node_timeout_secs`: a dead node's users linger
/// that long, so it must stay short.
pub const MAX_NODE_TIMEOUT_SECS: u64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// The NATS servers to connect to (any of them will do; the client
    /// moves to another when one fails), e.g. `["nats://127.0.0.1:4222"]`.
    pub nats_urls: Vec<String>,
    /// This node's name, unique in the cluster: letters, digits, `-` and
    /// `_`. It names the node's NATS subjects and its nick claims.
    pub node_name: String,
    /// A node not heard from for this long is dead: its users are seen to
    /// quit everywhere and its nick claims become free.
    pub node_timeout_secs: u64,
    /// How long to try to reach NATS at start before refusing to start.
    pub connect_timeout_secs: u64,
    /// Copies JetStream keeps of the claims bucket: 3 on a three-server
    /// NATS cluster, so one server's loss changes nothing; 1 on a single
    /// NATS server.
    pub kv_replicas: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            nats_urls: vec!["nats://127.0.0.1:4222".into()],
            node_name: String::new(),
            node_timeout_secs: 10,
            connect_timeout_secs: 10,
            kv_replicas: 1,
        }
    }
}

impl ClusterConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.nats_urls.is_empty() {
            return Err(invalid("cluster.nats_urls", "needs at least one NATS server, like \"nats://127.0.0.1:4222\""));
        }
        for url in &self.nats_urls {
            if url.parse::<async_nats::ServerAddr>().is_err() {
                return Err(invalid("cluster.nats_urls", format!("{url:?} is not a NATS server address")));
            }
        }
        let name_ok = !self.node_name.is_empty()
            && self.node_name.len() <= 32
            && self.node_name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err(invalid(
                "cluster.node_name",
                "must be 1 to 32 letters, digits, '-' or '_', and unique in the cluster",
            ));
        }
        if !(2..=MAX_NODE_TIMEOUT_SECS).contains(&self.node_timeout_secs) {
            return Err(invalid(
                "cluster.node_timeout_secs",
                format!("must be from 2 to {MAX_NODE_TIMEOUT_SECS} seconds"),
            ));
        }
        if self.connect_timeout_secs == 0 {
            return Err(invalid("cluster.connect_timeout_secs", "must be at least 1 second"));
        }
        if !(1..=5).contains(&self.kv_replicas) {
            return Err(invalid("cluster.kv_replicas", "must be from 1 to 5 (JetStream's limit)"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> ClusterConfig {
        ClusterConfig { node_name: name.into(), ..ClusterConfig::default() }
    }

    #[test]
    fn a_node_needs_a_plain_unique_name_and_a_bounded_timeout() {
        assert!(named("node-1").validate().is_ok());
        let err = |c: ClusterConfig| c.validate().unwrap_err().to_string();
        assert!(err(named("")).contains("cluster.node_name"));
        assert!(err(named("a.b")).contains("cluster.node_name"), "a dot would split a subject");
        assert!(err(ClusterConfig { node_timeout_secs: 0, ..named("a") }).contains("cluster.node_timeout_secs"));
        assert!(err(ClusterConfig { nats_urls: vec![], ..named("a") }).contains("cluster.nats_urls"));
        assert!(err(ClusterConfig { kv_replicas: 0, ..named("a") }).contains("cluster.kv_replicas"));
    }
}
