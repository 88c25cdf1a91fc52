//! Accept loops and connection limits (total and per IP address).
//!
//! A connection over a limit gets one `ERROR` line saying which limit, and
//! is closed; it never reaches the registry.

use crate::activity_log::{Actor, Value};
use crate::connection::{self, Output};
use crate::outbound::TcpOut;
use crate::server::ServerState;
use crate::shutdown::ShutdownListener;
use parley_proto::Message;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

/// Counts open connections, in total and per address.
pub struct ConnectionLimits {
    total: usize,
    per_ip: usize,
    counts: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One admitted connection; releases its place when dropped.
pub struct Slot {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl ConnectionLimits {
    pub fn new(total: usize, per_ip: usize) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits { total, per_ip, counts: Mutex::new((0, HashMap::new())) })
    }

    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, &'static str> {
        let mut guard = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let (total, by_ip) = &mut *guard;
        if *total >= self.total {
            return Err("Server is full");
        }
        let n = by_ip.entry(ip).or_insert(0);
        if *n >= self.per_ip {
            return Err("Too many connections from your address");
        }
        *n += 1;
        *total += 1;
        Ok(Slot { limits: self.clone(), ip })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut guard = self.limits.counts.lock().unwrap_or_else(|p| p.into_inner());
        let (total, by_ip) = &mut *guard;
        *total -= 1;
        if let Some(n) = by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                by_ip.remove(&self.ip);
            }
        }
    }
}

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
            let (rd, wr) = tokio::io::split(tls_stream);
            connection::serve(rd, Output::Task(wr), peer, slot, server).await;
        }
        Ok(Err(e)) => tls_failed(&server, peer, &e.to_string()),
        Err(_) => tls_failed(&server, peer, "handshake timed out"),
    }
}

/// A failed TLS handshake (plain text on the TLS port, a client that
/// rejects our certificate, a stall): logged, and the socket is dropped.
pub fn tls_failed(server: &ServerState, peer: SocketAddr, why: &str) {
    let actor = Actor { conn: 0, addr: Some(peer), nick: None };
    server.log.record("tls_failed", actor, &[("reason", Value::Text(why))]);
}

async fn refuse(mut stream: TcpStream, peer: SocketAddr, why: &'static str) {
    let host = ServerState::host_for(peer.ip());
    let line = Message::new("ERROR", vec![format!("Closing Link: {host} ({why})")]).to_bytes();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        stream.write_all(&line).await?;
        stream.shutdown().await
    })
    .await;
}
