//! The `[metrics]` section: the admin listener for `/metrics` and `/healthz`.

use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where to serve Prometheus metrics and the health check, for example
    /// `["127.0.0.1:9680"]`. Empty (the default): no admin listener. It has
    /// no authentication: keep it on loopback or a private network.
    pub listen: Vec<SocketAddr>,
}
