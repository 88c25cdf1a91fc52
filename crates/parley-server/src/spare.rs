//! One spare buffer per thread for input, one for output and one for a
//! command's replies, so that a message's trip through the server
//! allocates no buffer for reading it, answering it or queueing it, while
//! an idle connection still holds none: a buffer
//! that empties goes back to its thread's slot, and the next connection
//! that needs one there takes it.

use bytes::BytesMut;
use std::cell::Cell;

/// A larger emptied buffer (after a burst) is freed rather than kept.
const KEEP_AT_MOST: usize = 16 * 1024;

thread_local! {
    static INPUT: Cell<BytesMut> = Cell::new(BytesMut::new());
    static OUTPUT: Cell<BytesMut> = Cell::new(BytesMut::new());
    static REPLIES: Cell<BytesMut> = Cell::new(BytesMut::new());
}

/// Which slot.
#[derive(Clone, Copy)]
pub enum Slot {
    Input,
    Output,
    /// What a command says to its own client, before it is queued.
    Replies,
}

fn with<R>(slot: Slot, f: impl FnOnce(&Cell<BytesMut>) -> R) -> R {
    match slot {
        Slot::Input => INPUT.with(f),
        Slot::Output => OUTPUT.with(f),
        Slot::Replies => REPLIES.with(f),
    }
}

/// This thread's spare buffer for `slot` (empty, possibly without capacity).
pub fn take(slot: Slot) -> BytesMut {
    with(slot, Cell::take)
}

/// Hands an emptied buffer back, leaving `buf` without one.
pub fn give(slot: Slot, buf: &mut BytesMut) {
    let buf = std::mem::take(buf);
    debug_assert!(buf.is_empty());
    // Capacity counts from the read position; `reserve` gets the rest back.
    if buf.capacity() <= KEEP_AT_MOST {
        with(slot, |cell| cell.set(buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emptied_buffer_is_reused_on_its_thread_and_a_big_one_is_not_kept() {
        let mut buf = take(Slot::Output);
        buf.extend_from_slice(b"PRIVMSG bob :hi\r\n");
        let ptr = buf.as_ptr();
        buf.clear();
        give(Slot::Output, &mut buf);
        assert_eq!(buf.capacity(), 0, "the connection keeps nothing");
        // The input slot is another one; the output slot hands the same memory back.
        assert_eq!(take(Slot::Input).capacity(), 0);
        let mut again = take(Slot::Output);
        again.reserve(16);
        assert_eq!(again.as_ptr(), ptr);
        assert_eq!(take(Slot::Output).capacity(), 0, "one spare, taken once");
        let mut big = BytesMut::with_capacity(KEEP_AT_MOST + 1);
        give(Slot::Input, &mut big);
        assert_eq!(take(Slot::Input).capacity(), 0, "a grown buffer is freed");
    }
}
