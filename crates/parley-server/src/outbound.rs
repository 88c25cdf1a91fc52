//! A client's outgoing side: the bounded send queue that every other task
//! pushes into, and the writer task that drains it to the socket.
//!
//! Broadcast lines arrive as shared `Bytes` (serialised once by the sender),
//! so pushing to a member costs a reference count, not a copy. The queue is
//! bounded in bytes (the SendQ): a push that would exceed it closes the
//! client with "SendQ exceeded" instead of blocking the sender, so one slow
//! reader never slows anyone else down. Bytes count against the SendQ until
//! the socket has taken them, so the bound covers in-flight data too.
//!
//! The writer takes everything queued at once and writes it as one coalesced
//! buffer: one syscall per wake-up however many lines arrived.

use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

pub type ClientId = u64;

/// Why a connection is being closed by the server (not by the client's QUIT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    SendQExceeded,
    /// Anything else; the text goes into the ERROR line and the QUIT.
    Other(String),
}

impl CloseReason {
    pub fn text(&self) -> &str {
        match self {
            CloseReason::SendQExceeded => "SendQ exceeded",
            CloseReason::Other(s) => s,
        }
    }
}

/// The handle other tasks hold to reach one client.
pub struct Client {
    pub id: ClientId,
    /// Negotiated capabilities (`caps::Caps` bits), read by broadcasters to
    /// pick the right serialisation.
    caps: AtomicU32,
    /// Unix time of the last PRIVMSG/NOTICE this client sent (WHOIS idle).
    pub last_spoke: std::sync::atomic::AtomicI64,
    queue: Mutex<Queue>,
    wake: Notify,
    /// Set (and `closing_wake` notified) when the server decides to drop
    /// this client. A flag and a `Notify` rather than a cancellation token,
    /// which would cost every idle connection another allocation.
    closing: AtomicBool,
    closing_wake: Notify,
    sendq_limit: usize,
}

struct Queue {
    lines: VecDeque<Bytes>,
    /// Queued plus in-flight bytes.
    bytes: usize,
    close: Option<CloseReason>,
    /// The final line (ERROR ...) to write before closing.
    last_words: Option<Bytes>,
}

impl Client {
    pub fn new(id: ClientId, sendq_limit: usize) -> Client {
        Client {
            id,
            caps: AtomicU32::new(0),
            last_spoke: std::sync::atomic::AtomicI64::new(0),
            queue: Mutex::new(Queue { lines: VecDeque::new(), bytes: 0, close: None, last_words: None }),
            wake: Notify::new(),
            closing: AtomicBool::new(false),
            closing_wake: Notify::new(),
            sendq_limit,
        }
    }

    pub fn caps(&self) -> u32 {
        self.caps.load(Ordering::Relaxed)
    }

    pub fn set_caps(&self, caps: u32) {
        self.caps.store(caps, Ordering::Relaxed);
    }

    /// Queues a line. Returns false when the client is closing, or has just
    /// been closed because this line would exceed its SendQ.
    pub fn push(&self, line: Bytes) -> bool {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if q.close.is_some() {
            return false;
        }
        if q.bytes + line.len() > self.sendq_limit {
            q.close = Some(CloseReason::SendQExceeded);
            q.lines.clear();
            drop(q);
            self.signal_closing();
            return false;
        }
        q.bytes += line.len();
        let was_empty = q.lines.is_empty();
        q.lines.push_back(line);
        drop(q);
        if was_empty {
            self.wake.notify_one();
        }
        true
    }

    /// Closes the client: queued lines are still written, then `last_words`
    /// (normally an ERROR line), then the socket is shut down. The first
    /// reason wins.
    pub fn close(&self, reason: CloseReason, last_words: Option<Bytes>) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if q.close.is_none() {
            q.close = Some(reason);
        }
        if q.last_words.is_none() {
            q.last_words = last_words;
        }
        drop(q);
        self.signal_closing();
    }

    fn signal_closing(&self) {
        self.closing.store(true, Ordering::Release);
        self.closing_wake.notify_waiters();
        self.wake.notify_one();
    }

    /// The reason the server is closing this client, if it is.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).close.clone()
    }

    /// Resolves once the server has decided to drop this client.
    pub async fn closed(&self) {
        loop {
            // Register before checking, so a close in between is not missed.
            let notified = self.closing_wake.notified();
            if self.closing.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

/// What the writer takes from the queue in one go.
enum Batch {
    Lines(Vec<u8>),
    Close { rest: Vec<u8>, last_words: Option<Bytes>, sendq: bool },
}

fn take_batch(client: &Client, buf: &mut Vec<u8>) -> Option<Batch> {
    let mut q = client.queue.lock().unwrap_or_else(|p| p.into_inner());
    buf.clear();
    let mut taken = 0;
    while let Some(line) = q.lines.pop_front() {
        taken += line.len();
        buf.extend_from_slice(&line);
        if buf.len() >= 64 * 1024 {
            break;
        }
    }
    if q.lines.is_empty() {
        if let Some(reason) = &q.close {
            let sendq = *reason == CloseReason::SendQExceeded;
            return Some(Batch::Close { rest: std::mem::take(buf), last_words: q.last_words.take(), sendq });
        }
    }
    if taken == 0 {
        return None;
    }
    Some(Batch::Lines(std::mem::take(buf)))
}

/// Drains `client`'s queue into `out` until the client is closed or the
/// socket fails. `write_timeout` bounds the final flush on close.
pub async fn run_writer<W: AsyncWrite + Unpin>(mut out: W, client: &Client, write_timeout: Duration) {
    let mut spare = Vec::new();
    loop {
        let batch = loop {
            // Register interest before looking, so a push between the look
            // and the wait is not missed.
            let notified = client.wake.notified();
            if let Some(b) = take_batch(client, &mut spare) {
                break b;
            }
            notified.await;
        };
        match batch {
            Batch::Lines(buf) => {
                let res = tokio::select! {
                    r = write_counted(&mut out, &buf, client) => r,
                    // A client cut for SendQ while we were blocked writing to
                    // it: stop now, it is not reading anyway.
                    _ = client.closed() => Err(std::io::ErrorKind::ConnectionAborted.into()),
                };
                let drained = {
                    let mut q = client.queue.lock().unwrap_or_else(|p| p.into_inner());
                    if q.lines.is_empty() && q.lines.capacity() > 0 {
                        // An idle client keeps no queue storage.
                        q.lines = VecDeque::new();
                    }
                    q.lines.is_empty()
                };
                // Reuse the buffer while more is queued; release it when idle.
                spare = if drained { Vec::new() } else { buf };
                if res.is_err() {
                    if client.close_reason().is_none() {
                        client.close(CloseReason::Other("Write error".into()), None);
                    }
                    // Fall through to a final, bounded attempt at the ERROR line.
                    let last = client.queue.lock().unwrap_or_else(|p| p.into_inner()).last_words.take();
                    Box::pin(finish(&mut out, Vec::new(), last, true, write_timeout)).await;
                    return;
                }
            }
            Batch::Close { rest, last_words, sendq } => {
                // Boxed: the closing path would otherwise enlarge every idle writer.
                Box::pin(finish(&mut out, rest, last_words, sendq, write_timeout)).await;
                return;
            }
        }
    }
}

/// Writes `buf`, releasing each chunk from the SendQ count as the socket
/// takes it, so a reader that keeps up is never counted as behind by a whole
/// batch. Returns the bytes written (all of them on success).
async fn write_counted<W: AsyncWrite + Unpin>(out: &mut W, buf: &[u8], client: &Client) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let n = out.write(&buf[done..]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        done += n;
        let mut q = client.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.bytes = q.bytes.saturating_sub(n);
    }
    out.flush().await?;
    Ok(done)
}

async fn finish<W: AsyncWrite + Unpin>(
    out: &mut W,
    mut rest: Vec<u8>,
    last_words: Option<Bytes>,
    short: bool,
    write_timeout: Duration,
) {
    if let Some(words) = last_words {
        rest.extend_from_slice(&words);
    }
    // A client that stopped reading gets a short grace, others the full one.
    let limit = if short { Duration::from_millis(200).min(write_timeout) } else { write_timeout };
    let _ = tokio::time::timeout(limit, async {
        out.write_all(&rest).await?;
        out.shutdown().await
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_over_sendq_closes_and_drops_queue() {
        let c = Client::new(1, 10);
        assert!(c.push(Bytes::from_static(b"12345")));
        assert!(c.push(Bytes::from_static(b"12345")));
        assert!(!c.push(Bytes::from_static(b"1")));
        assert_eq!(c.close_reason(), Some(CloseReason::SendQExceeded));
        assert!(!c.push(Bytes::from_static(b"x")));
    }

    #[tokio::test]
    async fn writer_coalesces_then_writes_last_words() {
        let c = Client::new(1, 1 << 20);
        c.push(Bytes::from_static(b"a\r\n"));
        c.push(Bytes::from_static(b"b\r\n"));
        c.close(CloseReason::Other("bye".into()), Some(Bytes::from_static(b"ERROR :bye\r\n")));
        let mut out = Vec::new();
        run_writer(&mut out, &c, Duration::from_secs(1)).await;
        assert_eq!(out, b"a\r\nb\r\nERROR :bye\r\n");
    }
}
