//! One client's connection: reading and framing lines, the input limits
//! (line length, UTF-8, flood), liveness (PING, registration timeout), and
//! the orderly end of the connection. Commands never see the socket; they
//! get parsed messages and reply through the session's queue.
//!
//! Flood control is a token bucket per client: each line costs a token;
//! with the bucket empty, lines wait (the client is throttled) while input
//! keeps being read, and once more than `recvq_bytes` of input is waiting the
//! client is cut with "Excess Flood". Memory per client is therefore bounded
//! on both sides: `recvq_bytes` in, `sendq_bytes` out.

use crate::activity_log::{Actor, Value};
use crate::admission::Slot;
use crate::busy_poll;
use crate::close_reason::CloseReason;
use crate::commands;
use crate::lifecycle;
use crate::outbound::{self, Attention, Client, LineOut, OutBatch};
use crate::server::ServerState;
use crate::session::{Ctx, Session};
use crate::spare;
use crate::ticker;
use bytes::{Buf, BytesMut};
use parley_proto::framing::{Frame, FrameLimits, Framer, Next, TokenBucket};
use parley_proto::numeric::*;
use parley_proto::{Message, MessageRef, ParseError};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::{Instant, Sleep};

/// A connection's reading half. Plain TCP waits for readiness before it
/// allocates a buffer, so an idle connection holds no read buffer at all.
pub trait Incoming: Unpin + Send {
    /// Waits for input and appends it to `buf`; `Ok(0)` is end of stream.
    fn read_into<'a>(
        &'a mut self,
        buf: &'a mut BytesMut,
    ) -> impl std::future::Future<Output = std::io::Result<usize>> + Send + 'a;
}

/// Bytes to make room for before a read.
const READ_CHUNK: usize = 4096;
/// The first read into an empty buffer (the usual case: each read's lines
/// are handled and the buffer freed). Small enough for glibc's per-thread
/// cache (requests up to 1,032 bytes), so a message costs no trip into the
/// main allocator, whose larger requests also consolidate its free lists.
/// A read that fills it leaves the readiness set, and the next read grows
/// the buffer by `READ_CHUNK`.
const FIRST_READ: usize = 1024;

/// Makes room in `buf` for the next read.
fn make_room(buf: &mut BytesMut) {
    if buf.capacity() == 0 {
        *buf = spare::take(spare::Slot::Input);
        buf.reserve(FIRST_READ);
    } else if buf.capacity() - buf.len() < READ_CHUNK / 4 {
        buf.reserve(READ_CHUNK);
    }
}

impl Incoming for Arc<tokio::net::TcpStream> {
    /// Poll-based, so the waiting future holds two references and nothing
    /// else (an idle connection waits here).
    fn read_into<'a>(
        &'a mut self,
        buf: &'a mut BytesMut,
    ) -> impl std::future::Future<Output = std::io::Result<usize>> + Send + 'a {
        std::future::poll_fn(move |cx| loop {
            if let Err(e) = std::task::ready!(self.poll_read_ready(cx)) {
                return std::task::Poll::Ready(Err(e));
            }
            make_room(buf);
            let space = buf.capacity() - buf.len();
            let mut read = 0;
            // A read that did not fill the space drained the socket (epoll):
            // it clears the readiness, as tokio's own `poll_read` does, which
            // saves the next wake-up a read that would only say "nothing".
            // (The clear is skipped if new data was signalled meanwhile.)
            let result = self.try_io(tokio::io::Interest::READABLE, || {
                read = self.try_read_buf(buf)?;
                if read > 0 && read < space {
                    Err(std::io::ErrorKind::WouldBlock.into())
                } else {
                    Ok(read)
                }
            });
            match result {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if read > 0 {
                        return std::task::Poll::Ready(Ok(read));
                    }
                    // Readiness was stale: nothing came. Do not sit on an
                    // empty buffer while waiting again.
                    if buf.is_empty() {
                        spare::give(spare::Slot::Input, buf);
                    }
                }
                other => return std::task::Poll::Ready(other),
            }
        })
    }
}

impl<S: AsyncRead + Send> Incoming for tokio::io::ReadHalf<S> {
    async fn read_into(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        make_room(buf);
        self.read_buf(buf).await
    }
}

/// Where a connection's output goes.
pub enum Output<W> {
    /// A plain TCP socket: written directly by senders and by the connection
    /// task itself (see `outbound`).
    Direct(Arc<tokio::net::TcpStream>),
    /// Any other stream (TLS, WebSocket): written by a writer task.
    /// `certfp` is the fingerprint of the client's certificate, if it
    /// showed one.
    Task { writer: W, certfp: Option<Box<str>>, transport: Transport },
}

/// What a client came over: the metrics label, the activity log's
/// `transport`, and whether the connection is encrypted (`session.secure`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Plain,
    Tls,
    /// IRC over WebSocket; `secure` when the HTTP connection was HTTPS.
    WebSocket {
        secure: bool,
    },
}

impl Transport {
    pub fn label(self) -> &'static str {
        match self {
            Transport::Plain => "plain",
            Transport::Tls => "tls",
            Transport::WebSocket { .. } => "websocket",
        }
    }

    pub fn secure(self) -> bool {
        matches!(self, Transport::Tls | Transport::WebSocket { secure: true })
    }
}

/// Serves one accepted connection until it ends, then cleans up after it.
/// A plain function returning an `async move` block rather than an `async
/// fn`, which would store its arguments twice in every connection's task.
#[allow(clippy::manual_async_fn)]
pub fn serve<R, W>(
    rd: R,
    out: Output<W>,
    peer: SocketAddr,
    slot: Slot,
    server: Arc<ServerState>,
) -> impl std::future::Future<Output = ()> + Send
where
    R: Incoming + 'static,
    W: LineOut + Send + 'static,
{
    async move {
        let id = server.connections.next_id();
        let grace = Duration::from_secs(server.config.limits.shutdown_grace_secs);
        let sendq = server.config.limits.sendq_bytes;
        let mut certfp = None;
        let mut transport = Transport::Plain;
        let (client, writer) = match out {
            Output::Direct(sock) => (Arc::new(Client::new(id, sendq, Some(sock))), None),
            Output::Task { writer: wr, certfp: fp, transport: kind } => {
                certfp = fp;
                transport = kind;
                let client = Arc::new(Client::new(id, sendq, None));
                let writer_client = client.clone();
                // Owned by this task: awaited (bounded) below, so it never outlives us.
                let writer = tokio::spawn(async move { outbound::run_writer(wr, &writer_client, grace).await });
                (client, Some(writer))
            }
        };
        let label = transport.label();
        crate::metrics::get().connections.get_or_create(&crate::metrics::TransportLabel { transport: label }).inc();
        server.log.record(
            "connect",
            Actor { conn: id, addr: Some(peer), nick: None },
            &[("transport", Value::Text(label))],
        );
        // Listed, so a shutdown can wake this task (see `lifecycle`).
        server.connections.open(&client);
        let mut session = Session::new(id, peer, client.clone());
        session.secure = transport.secure();
        if certfp.is_some() {
            session.login = Some(Box::new(crate::session::Login { certfp, ..Default::default() }));
        }
        let reason = read_loop(&mut session, rd, &server).await;
        {
            let _batch = OutBatch::begin();
            lifecycle::farewell(&mut session, &server, reason);
        }
        server.connections.closed(id, session.registered);
        match writer {
            Some(writer) => {
                if tokio::time::timeout(grace + Duration::from_secs(1), writer).await.is_err() {
                    tracing::warn!(conn = id, "writer did not finish in time");
                }
            }
            // Boxed: the closing path would otherwise enlarge every idle connection.
            None => Box::pin(client.finish_direct(grace)).await,
        }
        // The connection's place under the connection limits.
        drop(slot);
    }
}

/// Input state carried between reads.
struct Reader {
    buf: BytesMut,
    bucket: TokenBucket,
    framer: Framer,
}

/// What handling the buffered input came to.
enum Step {
    /// Wait for more input (or until the throttle lifts).
    Wait(Option<Instant>),
    /// A command that awaits (OPER), run outside the output batch.
    Deferred(commands::Deferred),
    End(CloseReason),
}

/// The connection's life: read, handle, wait. (An `async move` block, not
/// an `async fn`, for the same reason as `serve`.)
#[allow(clippy::manual_async_fn)]
fn read_loop<'a, R: Incoming + 'a>(
    s: &'a mut Session,
    mut rd: R,
    server: &'a ServerState,
) -> impl std::future::Future<Output = CloseReason> + Send + 'a {
    async move {
        let limits = &server.config.limits;
        let mut input = Reader {
            buf: BytesMut::new(),
            bucket: TokenBucket::new(limits.flood_burst, limits.flood_lines_per_second, std::time::Instant::now()),
            framer: Framer::new(FrameLimits {
                max_line_bytes: limits.max_line_bytes,
                max_tag_bytes: limits.max_tag_bytes,
            }),
        };
        let connected = Instant::now();
        let mut last_input = connected;
        // Set by a read: the next turn's clock reading is its time.
        let mut just_read = false;
        let mut ping_sent: Option<Instant> = None;
        let client = s.client.clone();
        // The liveness deadline as last published for the ticker (see
        // `ticker`): published again only when it must fire earlier or has
        // fired. Input does not touch it (the ticker may then wake this task
        // early, and it is published again), so a message costs nothing here.
        let mut published: Option<Instant> = None;
        // The flood throttle's timer: made the first time the bucket holds
        // input back, and polled only while it does. Otherwise the runtime's
        // timer wheel holds nothing of this connection, and an idle
        // connection's task carries no timer.
        let mut throttle: Option<Pin<Box<Sleep>>> = None;
        // A shutdown that began before this connection was listed woke
        // nobody here: it is seen now. Later ones wake `attention`.
        if let Some(cause) = server.shutdown.cause() {
            return CloseReason::Shutdown(Box::new(cause));
        }
        loop {
            // One clock reading per turn, for the flood bucket and liveness.
            let now = Instant::now();
            if std::mem::take(&mut just_read) {
                last_input = now;
            }
            // Matched in place, so the step is not kept across the wait below.
            let throttled_until = match handle_input(s, server, &mut input, now) {
                Step::Wait(until) => until,
                Step::Deferred(command) => {
                    commands::run_deferred(server, s, command).await;
                    continue;
                }
                Step::End(end) => return end,
            };
            let deadline = if !s.registered {
                connected + Duration::from_secs(limits.registration_timeout_secs)
            } else if let Some(sent) = ping_sent {
                sent + Duration::from_secs(limits.ping_timeout_secs)
            } else {
                last_input + Duration::from_secs(limits.ping_interval_secs)
            };
            // A registered nick used without logging in is taken back at
            // its claim deadline, which the ticker watches too.
            let wake = commands::account::claim_deadline(s).map_or(deadline, |claim| claim.min(deadline));
            if published.is_none_or(|at| wake < at) {
                published = Some(wake);
                client.set_deadline(ticker::millis(wake.into_std()));
            }
            if let Some(until) = throttled_until {
                match throttle.as_mut() {
                    Some(timer) => timer.as_mut().reset(until),
                    None => throttle = Some(Box::pin(tokio::time::sleep_until(until))),
                }
            }
            tokio::select! {
                biased;
                // Also writes this client's output when handed the write side.
                why = client.attention() => {
                    if why == Attention::Due {
                        published = None;
                        if commands::account::claim_deadline(s).is_some() {
                            // Awaits the guest nick's claim on a cluster node
                            // (batches its output itself).
                            commands::account::enforce_claim(&mut Ctx::new(server, s)).await;
                        }
                        if server.cluster.is_some() {
                            commands::registration::follow_nick(s, server);
                        }
                        match check_liveness(s, server, deadline, ping_sent) {
                            Ok(sent) => {
                                ping_sent = sent;
                                continue;
                            }
                            Err(end) => return end,
                        }
                    }
                    if let Some(cause) = server.shutdown.cause() {
                        return CloseReason::Shutdown(Box::new(cause));
                    }
                    return client.close_reason().unwrap_or_else(|| CloseReason::Left("Closed".into()));
                }
                read = rd.read_into(&mut input.buf) => match read {
                    Ok(0) => return CloseReason::Left("Connection closed".into()),
                    Ok(_) => {
                        just_read = true;
                        busy_poll::note_input();
                        ping_sent = None;
                    }
                    Err(e) => return CloseReason::Left(format!("Read error: {}", e.kind())),
                },
                _ = async {
                    match throttle.as_mut() {
                        Some(timer) => timer.await,
                        None => std::future::pending().await,
                    }
                }, if throttled_until.is_some() => {}
            }
        }
    }
}

/// What the liveness deadline calls for once the ticker says it has
/// passed: nothing yet (it moved later with input), a PING (the new
/// `ping_sent`), or the end of the connection.
fn check_liveness(
    s: &mut Session,
    server: &ServerState,
    deadline: Instant,
    ping_sent: Option<Instant>,
) -> Result<Option<Instant>, CloseReason> {
    let limits = &server.config.limits;
    if Instant::now() < deadline {
        return Ok(ping_sent);
    }
    if !s.registered {
        log_limit(server, s, "registration_timeout", 0);
        return Err(CloseReason::RegistrationTimeout);
    }
    if ping_sent.is_some() {
        log_limit(server, s, "ping_timeout", 0);
        return Err(CloseReason::PingTimeout { secs: limits.ping_timeout_secs });
    }
    let name = server.config.server_name.clone();
    s.client.push(&Message::new("PING", vec![name]).to_bytes());
    Ok(Some(Instant::now()))
}

/// Handles every complete line in the buffer that the flood bucket allows,
/// in one output batch: what they send to anyone goes out in one write per
/// recipient when it returns, before the connection task waits again.
fn handle_input(s: &mut Session, server: &ServerState, input: &mut Reader, now: Instant) -> Step {
    let _batch = OutBatch::begin();
    let limits = &server.config.limits;
    loop {
        if let Some(reason) = s.quit.take() {
            return Step::End(CloseReason::Left(reason));
        }
        let buf = &mut input.buf;
        let (frame, consumed) = match input.framer.next(buf) {
            Next::Incomplete => return Step::Wait(None),
            Next::Line { frame, consumed } => (frame, consumed),
            Next::Overflow { consumed } => {
                too_long(s, server);
                consume(buf, consumed);
                continue;
            }
            Next::Skip { consumed } => {
                consume(buf, consumed);
                continue;
            }
        };
        match input.bucket.take(now.into_std()) {
            Ok(()) => {
                // Handled in place: splitting the line off would allocate.
                let deferred = handle_line(s, server, frame);
                consume(buf, consumed);
                if let Some(command) = deferred {
                    return Step::Deferred(command);
                }
            }
            Err(at) => {
                if buf.len() > limits.recvq_bytes {
                    log_limit(server, s, "flood", buf.len());
                    return Step::End(CloseReason::ExcessFlood);
                }
                return Step::Wait(Some(Instant::from_std(at)));
            }
        }
    }
}

/// Drops handled input; an emptied buffer goes back to the thread's spare
/// slot, so idle connections keep no buffer.
fn consume(buf: &mut BytesMut, n: usize) {
    buf.advance(n);
    if buf.is_empty() {
        spare::give(spare::Slot::Input, buf);
    }
}

/// Answers a line that framing refused, or parses and dispatches it.
/// Returns a command that has to be awaited.
fn handle_line(s: &mut Session, server: &ServerState, frame: Frame<'_>) -> Option<commands::Deferred> {
    let text = match frame {
        Frame::Line(text) => text,
        Frame::Blank => return None,
        Frame::TooLong => {
            too_long(s, server);
            return None;
        }
        Frame::NotUtf8(raw) => {
            let mut ctx = Ctx::new(server, s);
            let lossy = String::from_utf8_lossy(raw);
            let parsed = MessageRef::parse(&lossy);
            if let Ok(msg) = &parsed {
                ctx.set_label(&msg.tags);
            }
            let command = parsed.map(|m| m.command.to_ascii_uppercase()).unwrap_or_else(|_| "*".into());
            ctx.fail(
                &command,
                "INVALID_UTF8",
                &[],
                "Message rejected: it is not valid UTF-8 (this server is UTF8ONLY)",
            );
            log_limit(server, ctx.session, "invalid_utf8", raw.len());
            return None;
        }
    };
    let mut ctx = Ctx::new(server, s);
    let error = match MessageRef::parse(text) {
        Ok(msg) => return commands::dispatch(&mut ctx, msg),
        Err(ParseError::Empty) => return None,
        Err(e) => e,
    };
    // The error answers a labeled line too.
    if let Some(tags) = MessageRef::tags_of(text) {
        ctx.set_label(&tags);
    }
    match error {
        ParseError::BadCommand => {
            let word = text.split(' ').find(|w| !w.starts_with(['@', ':'])).unwrap_or("");
            let word = commands::truncate(word, 32).to_string();
            ctx.reply(ERR_UNKNOWNCOMMAND, &[word.as_str(), "Unknown command"]);
        }
        e => ctx.fail("*", "INVALID_MESSAGE", &[], &format!("Could not parse that line: {e}")),
    }
    None
}

fn too_long(s: &mut Session, server: &ServerState) {
    Ctx::new(server, s).reply(ERR_INPUTTOOLONG, &["Input line was too long"]);
    log_limit(server, s, "line_too_long", 0);
}

fn log_limit(server: &ServerState, s: &Session, what: &str, bytes: usize) {
    server.log.record("limit", s.actor(), &[("what", Value::Text(what)), ("bytes", Value::Num(bytes as u64))]);
}
