//! A client's pending output: the bytes not yet given to the socket, who
//! may write them, and why the client is closing. Only ever touched under
//! the client's lock (`Client::lock`).

use crate::close_reason::CloseReason;
use crate::spare;
use bytes::{Buf, BytesMut};
use tokio::net::TcpStream;

pub(super) struct Queue {
    /// Lines not yet given to the socket. Given up whenever it empties
    /// (to the thread's spare slot, see `spare`), so an idle client holds
    /// no buffer. A `BytesMut`, so taking the written part
    /// off the front after a partial write is O(1).
    pub(super) pending: BytesMut,
    /// Bytes the TLS writer task has taken and the socket has not yet accepted.
    pub(super) in_flight: usize,
    /// The write side was handed to the connection's own task or its writer
    /// (direct writes wait until it is handed back).
    pub(super) writer_owns: bool,
    pub(super) close: Option<CloseReason>,
    /// The final line (ERROR ...) to write before closing.
    pub(super) last_words: Option<Vec<u8>>,
}

/// What one non-blocking write of the pending bytes did.
pub(super) enum Wrote {
    All,
    /// Some or none: the socket is full for now.
    Part,
    /// The socket failed; the pending bytes are dropped.
    Failed,
}

impl Queue {
    /// Writes as much of the pending bytes as `sock` takes now, without
    /// blocking. Called under the client's lock, so no other line can slip
    /// in between.
    pub(super) fn write_to(&mut self, sock: &TcpStream) -> Wrote {
        match sock.try_write(&self.pending) {
            Ok(n) if n == self.pending.len() => {
                self.pending.clear();
                spare::give(spare::Slot::Output, &mut self.pending);
                Wrote::All
            }
            Ok(n) => {
                self.pending.advance(n);
                Wrote::Part
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Wrote::Part,
            Err(_) => {
                self.pending = BytesMut::new();
                Wrote::Failed
            }
        }
    }
}
