//! The socket under tungstenite, with a queue of the session's data frames
//! in front of it. Lines leave as whole frames that tungstenite's
//! `FrameHeader` formats, several hundred of them per write, instead of
//! one message at a time through tungstenite's sink (each with its own
//! frame object, a copy into the sink's buffer and a memmove of that
//! buffer after a partial write). Tungstenite still writes its own frames
//! (pongs, the close frame) through this same socket, and the queue always
//! goes out first, so frames never interleave: a frame is queued only once
//! tungstenite has nothing half-written (see `transport`).

use crate::spare;
use bytes::{Buf, BytesMut};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;

pub struct Outlet<S> {
    io: S,
    /// Whole frames not yet written. Given up (to the thread's spare
    /// output slot) whenever it empties, so an idle session holds none.
    frames: BytesMut,
}

impl<S> Outlet<S> {
    pub fn new(io: S) -> Outlet<S> {
        Outlet { io, frames: BytesMut::new() }
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.frames.len()
    }

    /// The queued bytes (tests).
    #[cfg(test)]
    pub fn queued_bytes(&self) -> &[u8] {
        &self.frames
    }

    /// Makes room for `additional` more bytes of frames.
    pub fn reserve(&mut self, additional: usize) {
        if self.frames.capacity() == 0 {
            self.frames = spare::take(spare::Slot::Output);
        }
        self.frames.reserve(additional);
    }

    /// Queues one unmasked, final data frame (the server never masks).
    pub fn queue(&mut self, binary: bool, payload: &[u8]) {
        let opcode = OpCode::Data(if binary { Data::Binary } else { Data::Text });
        let header = FrameHeader { opcode, ..FrameHeader::default() };
        // Formatted on the stack, then copied in with the payload.
        let mut head = [0; MAX_HEADER];
        let mut cursor = io::Cursor::new(&mut head[..]);
        // An unmasked header is at most 10 bytes: it always fits.
        let _ = header.format(payload.len() as u64, &mut cursor);
        let len = cursor.position() as usize;
        let head = &head[..len];
        self.reserve(head.len() + payload.len());
        self.frames.extend_from_slice(head);
        self.frames.extend_from_slice(payload);
    }
}

/// The longest frame header (RFC 6455 section 5.2: 2 bytes, 8 of length,
/// 4 of mask).
const MAX_HEADER: usize = 14;

impl<S: AsyncWrite + Unpin> Outlet<S> {
    /// Writes queued frames until none are left (or the socket is full).
    pub fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.frames.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.frames))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.frames.advance(n);
        }
        if self.frames.capacity() > 0 {
            spare::give(spare::Slot::Output, &mut self.frames);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Outlet<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

/// What tungstenite writes goes after the queued frames.
impl<S: AsyncWrite + Unpin> AsyncWrite for Outlet<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;

    #[tokio::test]
    async fn queued_frames_are_whole_frames_and_go_before_later_writes() {
        let mut out = Outlet::new(Vec::new());
        out.queue(false, b"PING :a");
        out.queue(true, &[b'x'; 300]);
        tokio::io::AsyncWriteExt::write_all(&mut out, b"after").await.unwrap();
        assert_eq!(out.queued(), 0);
        let mut want = Vec::new();
        Frame::message(&b"PING :a"[..], OpCode::Data(Data::Text), true).format(&mut want).unwrap();
        Frame::message(vec![b'x'; 300], OpCode::Data(Data::Binary), true).format(&mut want).unwrap();
        want.extend_from_slice(b"after");
        assert_eq!(out.io, want);
    }
}
