//! A client's outgoing side: the bounded send buffer that every other task
//! appends to, how it reaches the socket, and the writer task for the rest.
//!
//! Lines are copied into the client's `pending` buffer under its lock (one
//! copy per recipient; a broadcast is serialised once by the sender). The
//! buffer is bounded in bytes (the SendQ): an append that would exceed it
//! closes the client with "SendQ exceeded" instead of blocking the sender,
//! so one slow reader never slows anyone else down. Bytes count against the
//! SendQ until the socket has taken them, so the bound covers in-flight data.
//!
//! How pending bytes reach the socket:
//!
//! 1. **Directly, at the end of a batch.** A connection task handles all
//!    the lines of one read inside an [`OutBatch`]; every client that got
//!    its first pending byte during the batch is remembered. When the batch
//!    ends with few of them (a private message, replies, a small channel:
//!    at most `DIRECT_WRITE_MAX`), the sending task writes each one's buffer
//!    with a non-blocking `try_write` on the recipient's TCP socket: a
//!    private message goes out in the same turn that read it, with no
//!    hand-off to another task, as in the single-threaded servers. Pushes
//!    outside a batch (timers) are written at once the same way.
//! 2. **By the recipient's own task.** With many recipients (a busy
//!    channel), or when a socket will not take everything (a slow reader),
//!    the write side is handed to the recipient's connection task, which
//!    writes all that is pending — from every sender in the meantime, in one
//!    system call — as the socket becomes writable ([`Client::attention`],
//!    one branch of its `select!`), while it goes on reading. At close, it
//!    writes what is left and the last words ([`Client::finish_direct`]).
//!    A plain TCP connection therefore has one task, not two.
//! 3. **The writer task (TLS).** The TLS state cannot be shared, so a TLS
//!    connection has a writer task ([`run_writer`]) that is handed the
//!    write side instead, once per batch.
//!
//! Order is kept because only one party writes at a time: a direct write
//! happens under the client's lock and only while the write side has not
//! been handed over, and it is handed back only with the buffer empty.

mod queue;
mod writer;

pub use writer::{run_writer, LineOut, TcpOut};

use crate::close_reason::CloseReason;
use crate::liveness::Liveness;
use crate::spare;
use bytes::BytesMut;
use futures_util::task::AtomicWaker;
use queue::{Queue, Wrote};
use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;

pub type ClientId = u64;

/// A map keyed by client id. Ids are assigned by the server, in sequence,
/// never chosen by a client, so they need no keyed (DoS-resistant) hash:
/// a multiplicative one is a fraction of SipHash's cost on every lookup of
/// the message path.
pub type IdMap<V> = std::collections::HashMap<ClientId, V, rustc_hash::FxBuildHasher>;

/// Why [`Client::attention`] woke the connection task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attention {
    /// The server is closing the client, or shutting down.
    Closing,
    /// The liveness deadline it published has passed (see `ticker`).
    Due,
}

/// The handle other tasks hold to reach one client.
pub struct Client {
    pub id: ClientId,
    /// Negotiated capabilities (`caps::Caps` bits), read by broadcasters to
    /// pick the right serialisation.
    caps: AtomicU32,
    /// Unix time of the last PRIVMSG/NOTICE this client sent (WHOIS idle).
    last_spoke: AtomicI64,
    /// The send queue and who may write it (see `queue`).
    queue: Mutex<Queue>,
    /// Set when the server decides to drop this client.
    closing: AtomicBool,
    /// Set when the server shuts down.
    stopping: AtomicBool,
    /// The connection task: woken at close and, for TCP, when it is handed
    /// the write side. Wakers rather than `Notify`s or a cancellation token:
    /// waiting on them stores nothing in the waiting future, which keeps
    /// every idle connection's task small.
    conn_waker: AtomicWaker,
    /// The TLS writer task: woken when handed the write side, and at close.
    writer_waker: AtomicWaker,
    /// When the connection is next due a liveness check (see `ticker`).
    liveness: Liveness,
    sendq_limit: usize,
    /// The plain TCP socket, for direct writes; `None` for TLS.
    direct: Option<Arc<TcpStream>>,
}

/// The most recipients one batch writes to directly; above it, each one's
/// own task writes (see `OutBatch`'s drop).
const DIRECT_WRITE_MAX: usize = 8;

thread_local! {
    /// Clients that got output during the current batch on this thread.
    static DIRTY: RefCell<Vec<Arc<Client>>> = const { RefCell::new(Vec::new()) };
    static IN_BATCH: Cell<bool> = const { Cell::new(false) };
}

/// While alive, pushes on this thread are collected and written when it is
/// dropped, one write per client. Not `Send`, so it cannot be held across an
/// `.await` in a spawned task: a batch always ends on the thread it began on,
/// before the task yields.
pub struct OutBatch {
    outer: bool,
    _not_send: PhantomData<*const ()>,
}

impl OutBatch {
    pub fn begin() -> OutBatch {
        let outer = !IN_BATCH.replace(true);
        OutBatch { outer, _not_send: PhantomData }
    }
}

impl Drop for OutBatch {
    fn drop(&mut self) {
        if !self.outer {
            return;
        }
        IN_BATCH.set(false);
        let mut dirty = DIRTY.take();
        // A few recipients (a private message, replies, a small channel) are
        // written at once by this task. Many (a busy channel) are handed to
        // their own tasks instead: they run on both cores, and each one
        // writes everything that reached it from every sender in the meantime
        // in one go, where direct writes would cost this task one system call
        // per recipient per batch (docs/BENCHMARKS.md, fan-out).
        let direct = dirty.len() <= DIRECT_WRITE_MAX;
        for client in dirty.drain(..) {
            client.release(direct);
        }
        // Keep the (per-thread) list's storage for the next batch.
        DIRTY.set(dirty);
    }
}

impl Client {
    pub fn new(id: ClientId, sendq_limit: usize, direct: Option<Arc<TcpStream>>) -> Client {
        Client {
            id,
            caps: AtomicU32::new(0),
            last_spoke: AtomicI64::new(0),
            queue: Mutex::new(Queue {
                pending: BytesMut::new(),
                in_flight: 0,
                writer_owns: false,
                close: None,
                last_words: None,
            }),
            closing: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            conn_waker: AtomicWaker::new(),
            writer_waker: AtomicWaker::new(),
            liveness: Liveness::default(),
            sendq_limit,
            direct,
        }
    }

    pub fn caps(&self) -> u32 {
        self.caps.load(Ordering::Relaxed)
    }

    pub fn set_caps(&self, caps: u32) {
        self.caps.store(caps, Ordering::Relaxed);
    }

    /// Takes the bytes queued for a client without a socket (tests read
    /// what a command sent to others this way).
    #[cfg(test)]
    pub fn take_pending(&self) -> BytesMut {
        let mut q = self.lock();
        q.writer_owns = false;
        std::mem::take(&mut q.pending)
    }

    /// Unix time of the last PRIVMSG/NOTICE this client sent.
    pub fn last_spoke(&self) -> i64 {
        self.last_spoke.load(Ordering::Relaxed)
    }

    pub fn note_spoke(&self, at: i64) {
        self.last_spoke.store(at, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a line. Returns false when the client is closing, or has just
    /// been closed because this line would exceed its SendQ.
    pub fn push(self: &Arc<Self>, line: &[u8]) -> bool {
        let mut q = self.lock();
        if q.close.is_some() {
            return false;
        }
        if q.pending.len() + q.in_flight + line.len() > self.sendq_limit {
            q.close = Some(CloseReason::SendQExceeded);
            q.pending = BytesMut::new();
            drop(q);
            self.signal_closing();
            return false;
        }
        let first = q.pending.is_empty();
        if q.pending.capacity() == 0 {
            q.pending = spare::take(spare::Slot::Output);
        }
        q.pending.extend_from_slice(line);
        drop(q);
        // Later lines ride along with the first one's flush.
        if first {
            if IN_BATCH.get() {
                DIRTY.with_borrow_mut(|d| d.push(self.clone()));
            } else {
                self.release(true);
            }
        }
        true
    }

    /// Gets the pending bytes on their way: written now (`direct`, a plain
    /// socket that takes them all), or else handed to the client's own task
    /// (or TLS writer), which writes them when it next runs.
    fn release(&self, direct: bool) {
        let mut q = self.lock();
        if q.writer_owns || q.pending.is_empty() {
            return;
        }
        if let (true, None, Some(sock)) = (direct, &q.close, &self.direct) {
            match q.write_to(sock) {
                Wrote::All => return,
                Wrote::Part => {}
                Wrote::Failed => {
                    drop(q);
                    self.close(CloseReason::WriteError, None);
                    return;
                }
            }
        }
        q.writer_owns = true;
        drop(q);
        // Whoever takes the write side when it is handed over.
        if self.direct.is_some() {
            self.conn_waker.wake();
        } else {
            self.writer_waker.wake();
        }
    }

    /// Closes the client: pending lines are still written, then `last_words`
    /// (normally an ERROR line), then the socket is shut down. The first
    /// reason wins.
    pub fn close(&self, reason: CloseReason, last_words: Option<Vec<u8>>) {
        let mut q = self.lock();
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
        self.conn_waker.wake();
        self.writer_waker.wake();
    }

    /// Wakes the connection task at shutdown (it then reads the cause from
    /// the server). Output goes on: the task writes its goodbye and closes.
    pub fn wake_for_shutdown(&self) {
        self.stopping.store(true, Ordering::Release);
        self.conn_waker.wake();
    }

    /// Publishes the connection's next liveness deadline for the ticker.
    pub fn set_deadline(&self, at_ms: u64) {
        self.liveness.set(at_ms);
    }

    /// For the ticker: wakes the connection task, once, if its deadline
    /// has passed.
    pub fn tick(&self, now_ms: u64) {
        if self.liveness.check(now_ms) {
            self.conn_waker.wake();
        }
    }

    /// The reason the server is closing this client, if it is.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.lock().close.clone()
    }

    /// For the connection task: resolves once the server has decided to
    /// drop this client, or is shutting down, or the ticker found its
    /// liveness deadline passed ([`Attention`]). Meanwhile, for a plain TCP
    /// client, it takes the write turns: when the write side is handed over
    /// (a full socket, or a batch with many recipients), it writes the
    /// pending bytes as the socket takes them and hands the write side back
    /// once they are all written. Cancellation-safe: every byte written
    /// leaves the buffer under the lock at once.
    pub fn attention(&self) -> impl std::future::Future<Output = Attention> + '_ {
        std::future::poll_fn(move |cx| self.poll_attention(cx))
    }

    fn poll_attention(&self, cx: &mut Context<'_>) -> Poll<Attention> {
        self.conn_waker.register(cx.waker());
        if self.closing.load(Ordering::Acquire) || self.stopping.load(Ordering::Acquire) {
            return Poll::Ready(Attention::Closing);
        }
        if self.liveness.take_due() {
            return Poll::Ready(Attention::Due);
        }
        let Some(sock) = &self.direct else {
            return Poll::Pending;
        };
        loop {
            if !self.lock().writer_owns {
                return Poll::Pending;
            }
            if ready!(sock.poll_write_ready(cx)).is_err() {
                self.close(CloseReason::WriteError, None);
                return Poll::Ready(Attention::Closing);
            }
            let mut q = self.lock();
            if q.close.is_some() {
                // `finish_direct` writes the rest.
                return Poll::Ready(Attention::Closing);
            }
            match q.write_to(sock) {
                Wrote::All => {
                    q.writer_owns = false;
                    return Poll::Pending;
                }
                // On `WouldBlock` the readiness is cleared: the next
                // poll_write_ready waits for the socket.
                Wrote::Part => {}
                Wrote::Failed => {
                    drop(q);
                    self.close(CloseReason::WriteError, None);
                    return Poll::Ready(Attention::Closing);
                }
            }
        }
    }

    /// For the TLS writer task: resolves once the client is closing.
    pub(super) fn poll_writer_closing(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.writer_waker.register(cx.waker());
        if self.closing.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// For a plain TCP client, after `close`: writes what is still pending,
    /// then the last words, and shuts the socket down, within
    /// `write_timeout` (200 ms for a client cut for its SendQ).
    pub async fn finish_direct(&self, write_timeout: Duration) {
        let Some(sock) = &self.direct else { return };
        let (rest, last_words, sendq) = {
            let mut q = self.lock();
            q.writer_owns = true;
            let sendq = q.close == Some(CloseReason::SendQExceeded);
            (std::mem::take(&mut q.pending), q.last_words.take(), sendq)
        };
        writer::finish(&mut TcpOut(sock.clone()), rest, last_words, sendq, write_timeout).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_over_sendq_closes_and_drops_queue() {
        let c = Arc::new(Client::new(1, 10, None));
        let _batch = OutBatch::begin();
        assert!(c.push(b"12345"));
        assert!(c.push(b"12345"));
        assert!(!c.push(b"1"));
        assert_eq!(c.close_reason(), Some(CloseReason::SendQExceeded));
        assert!(!c.push(b"x"));
    }

    #[test]
    fn the_ticker_wakes_a_task_once_its_deadline_has_passed() {
        use std::task::Waker;
        let c = Client::new(1, 1 << 20, None);
        let mut cx = Context::from_waker(Waker::noop());
        // No deadline published: the ticker does nothing.
        c.tick(u64::MAX - 1);
        assert_eq!(c.poll_attention(&mut cx), Poll::Pending);
        c.set_deadline(1_000);
        c.tick(999);
        assert_eq!(c.poll_attention(&mut cx), Poll::Pending, "not yet");
        c.tick(1_000);
        c.tick(1_001);
        assert_eq!(c.poll_attention(&mut cx), Poll::Ready(Attention::Due));
        assert_eq!(c.poll_attention(&mut cx), Poll::Pending, "once per tick that finds it passed");
        // Closing wins over a deadline.
        c.tick(1_002);
        c.close(CloseReason::Left("bye".into()), None);
        assert_eq!(c.poll_attention(&mut cx), Poll::Ready(Attention::Closing));
    }

    #[tokio::test]
    async fn writer_coalesces_then_writes_last_words() {
        let c = Arc::new(Client::new(1, 1 << 20, None));
        {
            let _batch = OutBatch::begin();
            c.push(b"a\r\n");
            c.push(b"b\r\n");
        }
        c.close(CloseReason::Left("bye".into()), Some(b"ERROR :bye\r\n".to_vec()));
        let mut out = Vec::new();
        run_writer(&mut out, &c, Duration::from_secs(1)).await;
        assert_eq!(out, b"a\r\nb\r\nERROR :bye\r\n");
    }

    #[tokio::test]
    async fn direct_writes_and_write_turns_keep_order() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut peer = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server_side, _) = listener.accept().await.unwrap();
        let c = Arc::new(Client::new(1, 64 << 20, Some(Arc::new(server_side))));
        // Far more than a socket buffer, so direct writes and write turns
        // alternate; the bytes must arrive complete and in order.
        let line = |i: u32| format!("{i:08}\r\n").into_bytes();
        let count = 400_000;
        let owner = c.clone();
        let sender = tokio::spawn(async move {
            for chunk in (0..count).collect::<Vec<_>>().chunks(1000) {
                {
                    let _batch = OutBatch::begin();
                    for &i in chunk {
                        assert!(owner.push(&line(i)));
                    }
                }
                // What the connection task does between reads: write turns
                // until the write side is handed back.
                while owner.lock().writer_owns {
                    tokio::select! {
                        biased;
                        _ = owner.attention() => unreachable!("not closing"),
                        _ = tokio::task::yield_now() => {}
                    }
                }
            }
            owner.close(CloseReason::Left("done".into()), Some(b"END\r\n".to_vec()));
            owner.finish_direct(Duration::from_secs(5)).await;
        });
        let mut got = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut peer, &mut got).await.unwrap();
        sender.await.unwrap();
        let mut want = Vec::new();
        for i in 0..count {
            want.extend_from_slice(&line(i));
        }
        want.extend_from_slice(b"END\r\n");
        assert!(got == want, "got {} bytes, want {}", got.len(), want.len());
    }
}
