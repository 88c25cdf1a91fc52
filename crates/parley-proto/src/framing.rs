//! Bytes in, lines out: where one IRC line ends, whether it is within the
//! line and tag limits, and whether it is UTF-8. The server, the client and
//! the load generator all cut their input here, whatever transport it came
//! over (a WebSocket message is one line and is checked with [`check`]).
//!
//! No I/O and no buffer of its own: callers keep their bytes where they
//! like (the server in a pooled `BytesMut`) and advance past what a
//! [`Next`] says was consumed.

/// How long a line may be. As in the IRCv3 message-tags spec, the tags
/// section has a budget of its own, apart from the rest of the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Bytes of the line without its tags, counting the final CR LF.
    pub max_line_bytes: usize,
    /// Bytes of the tags section, from `@` to the space after it.
    pub max_tag_bytes: usize,
}

impl FrameLimits {
    /// RFC 1459's 512 bytes and the message-tags spec's 8,191.
    pub const STANDARD: FrameLimits = FrameLimits { max_line_bytes: 512, max_tag_bytes: 8191 };

    /// The most bytes one line may take up, tags and all: past this without
    /// a line feed, the line is over-long whatever comes next.
    pub fn max_total(&self) -> usize {
        self.max_line_bytes + self.max_tag_bytes
    }
}

/// What one line is, once cut and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A line within the limits, without its CR LF.
    Line(&'a str),
    /// An empty line (clients send them as keep-alives): ignored.
    Blank,
    /// Over `max_line_bytes` or `max_tag_bytes`.
    TooLong,
    /// Within the limits, but not UTF-8; the raw bytes, for the error reply.
    NotUtf8(&'a [u8]),
}

/// Checks one line, given without its line feed (a trailing CR is dropped).
pub fn check(raw: &[u8], limits: FrameLimits) -> Frame<'_> {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    if raw.is_empty() {
        return Frame::Blank;
    }
    let (tags_len, rest_len) = match raw.first() {
        Some(b'@') => match memchr::memchr(b' ', raw) {
            Some(space) => (space + 1, raw.len() - space - 1),
            None => (raw.len(), 0),
        },
        _ => (0, raw.len()),
    };
    // The line limit counts the CR LF that ended it.
    if tags_len > limits.max_tag_bytes || rest_len + 2 > limits.max_line_bytes {
        return Frame::TooLong;
    }
    match std::str::from_utf8(raw) {
        Ok(text) => Frame::Line(text),
        Err(_) => Frame::NotUtf8(raw),
    }
}

/// The next line in `buf`, without its CR LF, and how many bytes it took
/// (line feed included). No limits, no UTF-8 check: for readers that trust
/// their peer, such as the load generator reading a server.
pub fn split_line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let end = memchr::memchr(b'\n', buf)?;
    let line = &buf[..end];
    Some((line.strip_suffix(b"\r").unwrap_or(line), end + 1))
}

/// What [`Framer::next`] found at the front of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next<'a> {
    /// A line, checked. The caller handles it, then drops `consumed` bytes.
    Line { frame: Frame<'a>, consumed: usize },
    /// No line end within `max_total` bytes: the line is too long. Reported
    /// once, here; drop `consumed` bytes (the rest follows as [`Next::Skip`]).
    Overflow { consumed: usize },
    /// The rest of an over-long line, already reported: drop `consumed`
    /// bytes and ask again.
    Skip { consumed: usize },
    /// No complete line yet: read more.
    Incomplete,
}

/// Cuts a stream of bytes into checked lines. Its only state is whether it
/// is dropping the rest of an over-long line, so a line of any length costs
/// at most `max_total` bytes of buffer.
#[derive(Debug, Clone)]
pub struct Framer {
    limits: FrameLimits,
    discarding: bool,
}

impl Framer {
    pub fn new(limits: FrameLimits) -> Framer {
        Framer { limits, discarding: false }
    }

    /// Looks at the front of `buf`. Calling it again on the same bytes
    /// gives the same answer for a [`Next::Line`], so a caller may look,
    /// hold the line back (flood control) and come back later.
    pub fn next<'a>(&mut self, buf: &'a [u8]) -> Next<'a> {
        if self.discarding {
            return match memchr::memchr(b'\n', buf) {
                Some(end) => {
                    self.discarding = false;
                    Next::Skip { consumed: end + 1 }
                }
                None if buf.is_empty() => Next::Incomplete,
                None => Next::Skip { consumed: buf.len() },
            };
        }
        match memchr::memchr(b'\n', buf) {
            Some(end) => Next::Line { frame: check(&buf[..end], self.limits), consumed: end + 1 },
            None if buf.len() > self.limits.max_total() => {
                // Reported once, now; the rest is dropped as it comes.
                self.discarding = true;
                Next::Overflow { consumed: buf.len() }
            }
            None => Next::Incomplete,
        }
    }
}

/// A token bucket for lines: `burst` at once, then `rate` per second,
/// refilled continuously. The caller supplies the clock.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    burst: f64,
    rate: f64,
    last: std::time::Instant,
}

impl TokenBucket {
    pub fn new(burst: u32, rate: f64, now: std::time::Instant) -> TokenBucket {
        TokenBucket { tokens: burst as f64, burst: burst as f64, rate, last: now }
    }

    /// Takes a token, or says when one will be there.
    pub fn take(&mut self, now: std::time::Instant) -> Result<(), std::time::Instant> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(now + std::time::Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    const SMALL: FrameLimits = FrameLimits { max_line_bytes: 18, max_tag_bytes: 8 };

    /// Feeds `input` in pieces of `chunk` bytes, as reads would, and lists
    /// what comes out.
    fn frames(input: &[u8], chunk: usize) -> Vec<String> {
        let mut framer = Framer::new(SMALL);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            buf.extend_from_slice(piece);
            loop {
                match framer.next(&buf) {
                    Next::Line { frame, consumed } => {
                        out.push(match frame {
                            Frame::Line(t) => t.to_string(),
                            Frame::Blank => "<blank>".into(),
                            Frame::TooLong => "<too long>".into(),
                            Frame::NotUtf8(_) => "<not utf-8>".into(),
                        });
                        buf.drain(..consumed);
                    }
                    Next::Overflow { consumed } => {
                        out.push("<too long>".into());
                        buf.drain(..consumed);
                    }
                    Next::Skip { consumed } => {
                        buf.drain(..consumed);
                    }
                    Next::Incomplete => break,
                }
            }
        }
        out
    }

    #[test]
    fn lines_come_out_whole_however_the_reads_split_them() {
        let input = b"PING a\r\nNICK b\n\r\nPRIVMSG #c :d\r\n";
        for chunk in 1..input.len() {
            assert_eq!(frames(input, chunk), ["PING a", "NICK b", "<blank>", "PRIVMSG #c :d"], "chunk {chunk}");
        }
    }

    #[test]
    fn an_over_long_line_is_reported_once_and_the_next_line_survives() {
        let mut input = vec![b'x'; 100];
        input.extend_from_slice(b"\r\nPING ok\r\n");
        for chunk in [1, 7, 30, 200] {
            assert_eq!(frames(&input, chunk), ["<too long>", "PING ok"], "chunk {chunk}");
        }
        // Complete but over the limit (CR LF counted): too long as well.
        assert_eq!(check(b"PRIVMSG #a :12345", SMALL), Frame::TooLong);
        assert_eq!(check(b"PRIVMSG #a :1234", SMALL), Frame::Line("PRIVMSG #a :1234"));
    }

    #[test]
    fn tags_have_their_own_budget() {
        assert_eq!(check(b"@a=1234 PRIVMSG #a :1234", SMALL), Frame::Line("@a=1234 PRIVMSG #a :1234"));
        assert_eq!(check(b"@a=12345 PING x", SMALL), Frame::TooLong);
        assert_eq!(check(b"@a=123456789", SMALL), Frame::TooLong);
    }

    #[test]
    fn invalid_utf8_is_named_with_its_bytes() {
        assert_eq!(check(b"PRIVMSG #a :\xff\r", SMALL), Frame::NotUtf8(b"PRIVMSG #a :\xff"));
        assert_eq!(frames(b"PING \xc3\r\nPING \xc3\xa9\r\n", 3), ["<not utf-8>", "PING é"]);
    }

    #[test]
    fn split_line_trims_cr_lf_and_counts_it() {
        assert_eq!(split_line(b"abc\r\ndef"), Some((&b"abc"[..], 5)));
        assert_eq!(split_line(b"abc\n"), Some((&b"abc"[..], 4)));
        assert_eq!(split_line(b"abc"), None);
    }

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(3, 10.0, start);
        for _ in 0..3 {
            assert!(bucket.take(start).is_ok());
        }
        let at = bucket.take(start).unwrap_err();
        assert_eq!(at - start, Duration::from_millis(100));
        assert!(bucket.take(at).is_ok());
        // A long pause refills to the burst, no further.
        let later = at + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(bucket.take(later).is_ok());
        }
        assert!(bucket.take(later).is_err());
    }
}
