//! The admin listener: `GET /metrics` (Prometheus text, OpenMetrics
//! flavour) and `GET /healthz` (200 while serving, 503 once stopping).

use crate::files::storage::Store;
use crate::server::ServerState;
use crate::shutdown::ShutdownListener;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;
use tokio::net::TcpListener;

/// What a scrape reads: the chat's state and the file store, when there is one.
#[derive(Clone)]
struct Sources {
    state: Arc<ServerState>,
    store: Option<Arc<Store>>,
}

/// Serves until the server stops.
pub async fn serve(
    listener: TcpListener,
    state: Arc<ServerState>,
    store: Option<Arc<Store>>,
    mut stop: ShutdownListener,
) {
    let router = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(Sources { state, store });
    let served = axum::serve(listener, router).with_graceful_shutdown(async move {
        stop.recv().await;
    });
    if let Err(e) = served.await {
        tracing::error!(error = %e, "the metrics listener failed");
    }
}

async fn metrics(axum::extract::State(Sources { state, store }): axum::extract::State<Sources>) -> impl IntoResponse {
    let counts = state.registry.read().counts();
    let mut open = 0i64;
    state.connections.for_each(|_| open += 1);
    let snapshot = super::Snapshot {
        connections_open: open,
        users: counts.users as i64,
        channels: counts.channels as i64,
        history: state.history.as_ref().map(|h| {
            let (dropped, failed) = h.losses();
            super::HistoryCounts {
                queued: h.queued() as i64,
                lag_seconds: h.lag().as_secs_f64(),
                dropped: dropped as i64,
                failed: failed as i64,
            }
        }),
        store_bytes: store.map(|s| s.total_bytes() as i64),
        cluster: state.cluster.as_ref().map(|c| {
            let (nodes_alive, outbox_dropped) = c.counts();
            super::ClusterCounts {
                remote_users: counts.remote_users as i64,
                nodes_alive: nodes_alive as i64,
                outbox_dropped: outbox_dropped as i64,
            }
        }),
    };
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], super::render(&snapshot))
}

async fn healthz(axum::extract::State(Sources { state, .. }): axum::extract::State<Sources>) -> impl IntoResponse {
    if state.shutdown.cause().is_some() {
        (StatusCode::SERVICE_UNAVAILABLE, "stopping\n")
    } else {
        (StatusCode::OK, "ok\n")
    }
}
