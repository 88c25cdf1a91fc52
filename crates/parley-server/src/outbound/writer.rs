//! Getting pending bytes out when they cannot go straight to a plain
//! socket: the writer task (TLS, WebSocket), and the last, bounded flush of
//! a closing client (its remaining lines, then its last words).

use super::Client;
use crate::close_reason::CloseReason;
use bytes::BytesMut;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where a writer task puts a client's lines: a byte stream, which is
/// told why the connection ends just before its last words go out. A
/// WebSocket puts the reason in its close frame; a byte stream has
/// nowhere to put it (the `ERROR` line says it).
pub trait LineOut: AsyncWrite + Unpin {
    fn closing(&mut self, _why: &CloseReason) {}
}

impl LineOut for TcpOut {}
impl<S: tokio::io::AsyncRead + AsyncWrite> LineOut for tokio::io::WriteHalf<S> {}
impl LineOut for Vec<u8> {}
impl<W: LineOut + ?Sized> LineOut for &mut W {
    fn closing(&mut self, why: &CloseReason) {
        (**self).closing(why)
    }
}

/// What the writer task takes in one go.
enum Work {
    Lines(BytesMut),
    /// The last pending lines, then the last words.
    Close {
        rest: BytesMut,
        last_words: Option<Vec<u8>>,
        why: CloseReason,
    },
}

/// Takes the writer's next piece of work, if it owns the socket (or the
/// client is closing: then it takes ownership for good).
fn take_work(client: &Client) -> Option<Work> {
    let mut q = client.lock();
    if !q.writer_owns && q.close.is_none() {
        return None;
    }
    q.writer_owns = true;
    if let Some(why) = q.close.clone() {
        let rest = std::mem::take(&mut q.pending);
        return Some(Work::Close { rest, last_words: q.last_words.take(), why });
    }
    if !q.pending.is_empty() {
        let buf = std::mem::take(&mut q.pending);
        q.in_flight = buf.len();
        return Some(Work::Lines(buf));
    }
    // Drained: direct writes may resume.
    q.writer_owns = false;
    None
}

/// Writes what it is handed in `client`'s queue to `out` until the client is
/// closed or the socket fails. `write_timeout` bounds the final flush on
/// close.
pub async fn run_writer<W: LineOut>(mut out: W, client: &Client, write_timeout: Duration) {
    loop {
        let work = std::future::poll_fn(|cx| {
            // Register before looking, so a hand-off in between is not missed.
            client.writer_waker.register(cx.waker());
            take_work(client).map_or(Poll::Pending, Poll::Ready)
        })
        .await;
        match work {
            Work::Lines(buf) => {
                let res = tokio::select! {
                    r = write_counted(&mut out, &buf, client) => r,
                    // A client cut for SendQ while we were blocked writing to
                    // it: stop now, it is not reading anyway.
                    _ = std::future::poll_fn(|cx| client.poll_writer_closing(cx)) => {
                        Err(std::io::ErrorKind::ConnectionAborted.into())
                    }
                };
                if res.is_err() {
                    if client.close_reason().is_none() {
                        client.close(CloseReason::WriteError, None);
                    }
                    // A final, bounded attempt at the ERROR line.
                    let last = client.lock().last_words.take();
                    Box::pin(finish(&mut out, BytesMut::new(), last, true, write_timeout)).await;
                    return;
                }
            }
            Work::Close { rest, last_words, why } => {
                let sendq = why == CloseReason::SendQExceeded;
                out.closing(&why);
                // Boxed: the closing path would otherwise enlarge every idle writer.
                Box::pin(finish(&mut out, rest, last_words, sendq, write_timeout)).await;
                return;
            }
        }
    }
}

/// Writes `buf`, releasing each chunk from the SendQ count as the socket
/// takes it, so a reader that keeps up is never counted as behind by a whole
/// batch.
async fn write_counted<W: AsyncWrite + Unpin>(out: &mut W, buf: &[u8], client: &Client) -> std::io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let n = out.write(&buf[done..]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        done += n;
        let mut q = client.lock();
        q.in_flight = q.in_flight.saturating_sub(n);
    }
    out.flush().await
}

pub(super) async fn finish<W: AsyncWrite + Unpin>(
    out: &mut W,
    mut rest: BytesMut,
    last_words: Option<Vec<u8>>,
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

/// A plain TCP socket shared with direct writes, as an `AsyncWrite`.
pub struct TcpOut(pub Arc<TcpStream>);

impl AsyncWrite for TcpOut {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // Sends FIN now, while other handles may still keep the socket open.
        Poll::Ready(socket2::SockRef::from(&*self.0).shutdown(std::net::Shutdown::Write))
    }
}
