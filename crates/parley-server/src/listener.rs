//! Accept loops and connection limits (total and per IP address).
//!
//! A connection over a limit gets one `ERROR` line saying which limit, and
//! is closed; it never reaches the registry.

use crate::activity_log::{Actor, Value};
use crate::admission::{ConnectionLimits, Slot};
use crate::connection::{self, Output};
use crate::outbound::TcpOut;
use crate::server::ServerState;
use crate::shutdown::ShutdownListener;
use parley_proto::Message;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

/// Accepts IRC connections until shutdown; every connection task is
/// spawned on `tracker` so the server can wait for them to finish.
pub async fn accept_irc(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    server: Arc<ServerState>,
    limits: Arc<ConnectionLimits>,
    tracker: TaskTracker,
    mut shutdown: ShutdownListener,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.recv() => return,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly
                // instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match limits.try_acquire(peer.ip()) {
            Ok(slot) => {
                let server = server.clone();
                // Two kinds of task, so a plain connection's (the many) holds
                // nothing of TLS's; the slot goes with the connection.
                match tls.clone() {
                    None => {
                        // Shared: other tasks write to it directly (see `outbound`).
                        let stream = Arc::new(stream);
                        let out = Output::<TcpOut>::Direct(stream.clone());
                        tracker.spawn(connection::serve(stream, out, peer, slot, server));
                    }
                    // Boxed: the TLS state is large.
                    Some(acceptor) => {
                        tracker.spawn(async move { Box::pin(serve_tls(acceptor, stream, peer, slot, server)).await });
                    }
                }
            }
            Err(why) => {
                let actor = Actor { conn: 0, addr: Some(peer), nick: None };
                server.log.record(
                    "limit",
                    actor,
                    &[("what", Value::Text("connections")), ("reason", Value::Text(why))],
                );
                tracker.spawn(refuse(stream, peer, why));
            }
        }
    }
}

async fn serve_tls(acceptor: TlsAcceptor, stream: TcpStream, peer: SocketAddr, slot: Slot, server: Arc<ServerState>) {
    let limit = Duration::from_secs(server.config.tls.handshake_timeout_secs);
    match tokio::time::timeout(limit, acceptor.accept(stream)).await {
        Ok(Ok(tls_stream)) => {
            let certfp = tls_stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| crate::tls::client_fingerprint(c).into_boxed_str());
            let (rd, wr) = tokio::io::split(tls_stream);
            let out = Output::Task { writer: wr, certfp, transport: connection::Transport::Tls };
            connection::serve(rd, out, peer, slot, server).await;
        }
        Ok(Err(e)) => crate::tls::log_failed_handshake(&server.log, peer, &e.to_string()),
        Err(_) => crate::tls::log_failed_handshake(&server.log, peer, "handshake timed out"),
    }
}

async fn refuse(mut stream: TcpStream, peer: SocketAddr, why: &'static str) {
    let host = crate::hostname::host_for(peer.ip());
    let line = Message::new("ERROR", vec![format!("Closing Link: {host} ({why})")]).to_bytes();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        stream.write_all(&line).await?;
        stream.shutdown().await
    })
    .await;
}
