//! Counters for operators, exported in the Prometheus text format by the
//! admin listener (`http.rs`, off unless `[metrics] listen` is set).
//!
//! The counters are process-wide atomics (`prometheus-client`'s `Counter`)
//! in one static, so any module can count without holding the server's
//! state; the message path adds to them once per message (not per
//! recipient: deliveries are added as one sum). Gauges that describe the
//! whole server (users, connections, memory, open files) are read only
//! when scraped.

pub mod http;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::LazyLock;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportLabel {
    /// `plain`, `tls` or `websocket`.
    pub transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `granted`, `denied`, `rate_limited`, `error`.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// `sendq`, `flood`, `ping_timeout`, `registration_timeout`, `killed`,
    /// `write_error`, `quit`, `shutdown`.
    pub reason: &'static str,
}

/// Every counter Parley keeps.
#[derive(Default)]
pub struct Metrics {
    pub connections: Family<TransportLabel, Counter>,
    pub registrations: Counter,
    pub logins: Family<ResultLabel, Counter>,
    pub messages_in: Counter,
    pub deliveries: Counter,
    pub disconnects: Family<ReasonLabel, Counter>,
    pub uploads: Counter,
    pub upload_bytes: Counter,
    pub downloads: Counter,
    pub download_bytes: Counter,
    /// On a cluster node: what it published to NATS, and what it heard
    /// from the other nodes (changes, messages, news, heartbeats).
    pub cluster_events_out: Counter,
    pub cluster_events_in: Counter,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::default);

/// The process's counters.
pub fn get() -> &'static Metrics {
    &METRICS
}

/// What the server reports about itself at a scrape.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub connections_open: i64,
    pub users: i64,
    pub channels: i64,
    pub store_bytes: Option<i64>,
    pub history: Option<HistoryCounts>,
    pub cluster: Option<ClusterCounts>,
}

/// A cluster node's view of the cluster (`cluster/`), with `[cluster]`.
#[derive(Debug, Default, Clone)]
pub struct ClusterCounts {
    /// Users of other nodes known here.
    pub remote_users: i64,
    /// Other nodes heard from within the node timeout.
    pub nodes_alive: i64,
    /// Since start: changes and messages dropped, the outbox full.
    pub outbox_dropped: i64,
}

/// History's queue and losses (`history/`), when history is on.
#[derive(Debug, Default, Clone)]
pub struct HistoryCounts {
    pub queued: i64,
    /// How long the oldest message not yet written has waited.
    pub lag_seconds: f64,
    /// Since start: dropped because the queue was full.
    pub dropped: i64,
    /// Since start: lost to write errors.
    pub failed: i64,
}

/// The Prometheus text exposition of the counters and `snapshot`.
pub fn render(snapshot: &Snapshot) -> String {
    let m = get();
    let mut registry = Registry::with_prefix("parley");
    registry.register("connections", "Connections accepted, by transport", m.connections.clone());
    registry.register("registrations", "Connections that completed IRC registration", m.registrations.clone());
    registry.register("logins", "Account logins (SASL, PASS, NickServ, REGISTER), by result", m.logins.clone());
    registry.register("messages_in", "PRIVMSG, NOTICE and TAGMSG received", m.messages_in.clone());
    registry.register("deliveries", "Copies of those messages queued for recipients", m.deliveries.clone());
    registry.register("disconnects", "Connections closed, by reason", m.disconnects.clone());
    registry.register("uploads", "Files stored", m.uploads.clone());
    registry.register("upload_bytes", "Bytes of files stored", m.upload_bytes.clone());
    registry.register("downloads", "File downloads served", m.downloads.clone());
    registry.register("download_bytes", "Bytes of file downloads served", m.download_bytes.clone());
    let gauge = |registry: &mut Registry, name: &str, help: &str, value: i64| {
        let g: Gauge = Gauge::default();
        g.set(value);
        registry.register(name, help, g);
    };
    gauge(&mut registry, "connections_open", "IRC connections open now", snapshot.connections_open);
    gauge(&mut registry, "users", "Registered users online", snapshot.users);
    gauge(&mut registry, "channels", "Channels", snapshot.channels);
    if let Some(bytes) = snapshot.store_bytes {
        gauge(&mut registry, "store_bytes", "Bytes held by the file store", bytes);
    }
    if let Some(h) = &snapshot.history {
        gauge(&mut registry, "history_queue", "Messages waiting for the history writer", h.queued);
        let lag: Gauge<f64, std::sync::atomic::AtomicU64> = Gauge::default();
        lag.set(h.lag_seconds);
        registry.register("history_lag_seconds", "How long the oldest message not yet on disk has waited", lag);
        gauge(&mut registry, "history_dropped", "Messages not kept since start: history's queue was full", h.dropped);
        gauge(&mut registry, "history_write_failed", "Messages not kept since start: writing failed", h.failed);
    }
    if let Some(c) = &snapshot.cluster {
        registry.register(
            "cluster_events_out",
            "Events and messages published to the other nodes",
            m.cluster_events_out.clone(),
        );
        registry.register(
            "cluster_events_in",
            "Events, messages and heartbeats heard from the other nodes",
            m.cluster_events_in.clone(),
        );
        gauge(&mut registry, "cluster_remote_users", "Users of other nodes", c.remote_users);
        gauge(&mut registry, "cluster_nodes_alive", "Other nodes heard from within the node timeout", c.nodes_alive);
        gauge(
            &mut registry,
            "cluster_outbox_dropped",
            "Events not published since start: the outbox was full",
            c.outbox_dropped,
        );
    }
    if let Some(rss) = crate::sys::resident_bytes() {
        gauge(&mut registry, "process_resident_memory_bytes", "Resident memory", rss as i64);
    }
    if let Some(fds) = crate::sys::open_files() {
        gauge(&mut registry, "process_open_fds", "Open file descriptors", fds as i64);
    }
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).expect("writing to a String");
    out
}

/// Counts a closed connection under its reason.
pub fn disconnected(reason: &crate::close_reason::CloseReason) {
    use crate::close_reason::CloseReason as R;
    let reason = match reason {
        R::Left(_) => "quit",
        R::SendQExceeded => "sendq",
        R::ExcessFlood => "flood",
        R::RegistrationTimeout => "registration_timeout",
        R::PingTimeout { .. } => "ping_timeout",
        R::WriteError => "write_error",
        R::Killed(_) => "killed",
        R::Shutdown(_) => "shutdown",
    };
    get().disconnects.get_or_create(&ReasonLabel { reason }).inc();
}

/// Counts a login attempt's result.
pub fn login(result: &'static str) {
    get().logins.get_or_create(&ResultLabel { result }).inc();
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_text_format_names_every_counter() {
        super::get().registrations.inc();
        super::login("granted");
        let history = Some(super::HistoryCounts { queued: 2, lag_seconds: 0.25, dropped: 5, failed: 0 });
        let cluster = Some(super::ClusterCounts { remote_users: 7, nodes_alive: 2, outbox_dropped: 0 });
        let text = super::render(&super::Snapshot { users: 3, history, cluster, ..Default::default() });
        assert!(text.contains("parley_cluster_remote_users 7") && text.contains("parley_cluster_nodes_alive 2"));
        assert!(text.contains("parley_cluster_events_in_total") && text.contains("parley_cluster_outbox_dropped 0"));
        assert!(text.contains("parley_history_queue 2") && text.contains("parley_history_dropped 5"), "{text}");
        assert!(text.contains("parley_history_lag_seconds 0.25"), "{text}");
        for name in ["parley_registrations_total", "parley_logins_total{result=\"granted\"}", "parley_users 3"] {
            assert!(text.contains(name), "{name} in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
