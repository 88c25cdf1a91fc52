//! A registered connection: the reader task (PING, replies, events) and
//! the requests the rest of the client makes (messages, NAMES, OPER, DIE,
//! QUIT, EXTJWT tokens).

use super::{
    reply_error, source_nick, strip_prefixes, Event, IrcError, LineReader, Welcome, Writer, CLOSE_TIMEOUT,
    DEFAULT_LOBBY, REPLY_TIMEOUT,
};
use crate::tls::Trust;
use parley_proto::numeric::*;
use parley_proto::Message;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, watch};

struct State {
    nick: String,
    lobby: String,
    filehost: Option<String>,
    token: Option<String>,
}

/// A request waiting for the PONG that follows its replies.
struct Waiter {
    token: String,
    /// The request is answered in a batch (history, search): batch lines
    /// are its replies. Otherwise they are shown (the lobby replay).
    batches: bool,
    collected: Vec<Message>,
    done: oneshot::Sender<Vec<Message>>,
}

struct Shared {
    writer: tokio::sync::Mutex<Writer>,
    /// One request at a time, so replies can be told apart by order.
    request_lock: tokio::sync::Mutex<()>,
    waiter: Mutex<Option<Waiter>>,
    state: Mutex<State>,
    /// `Some(reason)` once the connection has ended.
    closed: watch::Sender<Option<String>>,
    /// The TLS trust settings, for the file store's HTTPS too.
    trust: Trust,
    expect_close: AtomicBool,
    next_token: AtomicU64,
}

impl Shared {
    async fn send(&self, msg: &Message) -> Result<(), IrcError> {
        if let Some(reason) = self.closed.borrow().clone() {
            return Err(IrcError::Closed(reason));
        }
        self.writer.lock().await.send(msg).await.map_err(IrcError::Io)
    }

    /// Gives `msg` to the pending request if it is a reply; returns it back
    /// if it is for display instead.
    fn offer(&self, msg: Message) -> Option<Message> {
        let mut slot = self.waiter.lock().unwrap_or_else(|e| e.into_inner());
        let Some(waiter) = slot.as_mut() else { return Some(msg) };
        if msg.command == "PONG" && msg.params.last() == Some(&waiter.token) {
            let waiter = slot.take().expect("checked above");
            let _ = waiter.done.send(waiter.collected);
            return None;
        }
        if is_reply(&msg) || (waiter.batches && in_batch(&msg)) {
            waiter.collected.push(msg);
            return None;
        }
        Some(msg)
    }
}

/// Replies to our own commands: numerics, standard replies and EXTJWT.
fn is_reply(msg: &Message) -> bool {
    let c = msg.command.as_str();
    (c.len() == 3 && c.bytes().all(|b| b.is_ascii_digit())) || matches!(c, "FAIL" | "WARN" | "NOTE" | "EXTJWT")
}

/// A batch's start or end, or a line inside one.
fn in_batch(msg: &Message) -> bool {
    msg.command == "BATCH" || msg.tag("batch").is_some()
}

async fn read_loop(shared: Arc<Shared>, mut reader: LineReader, events: mpsc::Sender<Event>) {
    let mut error_text: Option<String> = None;
    let reason = loop {
        match reader.next().await {
            Ok(Some(msg)) => {
                match msg.command.as_str() {
                    "PING" => {
                        let token = msg.params.last().cloned().unwrap_or_default();
                        let _ = shared.send(&Message::new("PONG", vec![token])).await;
                        continue;
                    }
                    "ERROR" => error_text = msg.params.last().cloned(),
                    "NICK" => {
                        let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
                        if source_nick(&msg).is_some_and(|n| parley_proto::irc_eq(n, &st.nick)) {
                            st.nick = msg.param(0).unwrap_or_default().to_string();
                        }
                    }
                    _ => {}
                }
                if let Some(msg) = shared.offer(msg) {
                    // A dropped receiver means nobody displays events.
                    let _ = events.send(Event::Message(msg)).await;
                }
            }
            Ok(None) => break error_text.unwrap_or_else(|| "the server closed the connection".into()),
            Err(e) => break error_text.unwrap_or_else(|| format!("connection error: {e}")),
        }
    };
    shared.closed.send_replace(Some(reason.clone()));
    // Fails the pending request, if any: its sender is dropped.
    shared.waiter.lock().unwrap_or_else(|e| e.into_inner()).take();
    let _ = events.send(Event::Closed { reason }).await;
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Clears the waiter if a request is cancelled before its PONG arrives.
struct WaiterGuard<'a>(&'a Shared, String);

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        let mut slot = self.0.waiter.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_some_and(|w| w.token == self.1) {
            slot.take();
        }
    }
}

/// A registered connection. Cheap to clone; the reader task stops when the
/// last clone is dropped.
#[derive(Clone)]
pub struct Session {
    shared: Arc<Shared>,
    _reader: Arc<AbortOnDrop>,
}

/// The replies to a request, and whether the connection ended meanwhile.
#[derive(Debug, Default)]
pub struct Reply {
    pub messages: Vec<Message>,
    pub closed: Option<String>,
}

impl Reply {
    /// The first error numeric or FAIL among the replies, as an error.
    pub fn error(&self) -> Option<IrcError> {
        self.messages.iter().find_map(reply_error)
    }

    /// `Ok` unless the replies hold an error or the connection ended.
    pub fn check(self) -> Result<Vec<Message>, IrcError> {
        if let Some(e) = self.error() {
            return Err(e);
        }
        match self.closed {
            Some(reason) => Err(IrcError::Closed(reason)),
            None => Ok(self.messages),
        }
    }
}

impl Session {
    /// Starts the reader task for a registered connection.
    pub(super) fn start(
        reader: LineReader,
        writer: Writer,
        welcome: &Welcome,
        trust: Trust,
    ) -> (Session, mpsc::Receiver<Event>) {
        let (events_tx, events_rx) = mpsc::channel(256);
        let (closed_tx, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            writer: tokio::sync::Mutex::new(writer),
            request_lock: tokio::sync::Mutex::new(()),
            waiter: Mutex::new(None),
            state: Mutex::new(State {
                nick: welcome.nick.clone(),
                lobby: welcome.lobby.clone().unwrap_or_else(|| DEFAULT_LOBBY.to_string()),
                filehost: welcome.filehost.clone(),
                token: None,
            }),
            trust,
            closed: closed_tx,
            expect_close: AtomicBool::new(false),
            next_token: AtomicU64::new(1),
        });
        let task = tokio::spawn(read_loop(shared.clone(), reader, events_tx));
        (Session { shared, _reader: Arc::new(AbortOnDrop(task)) }, events_rx)
    }

    pub fn nick(&self) -> String {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner()).nick.clone()
    }

    pub fn lobby(&self) -> String {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner()).lobby.clone()
    }

    /// The TLS trust settings this session was opened with.
    pub fn trust(&self) -> &Trust {
        &self.shared.trust
    }

    pub fn filehost(&self) -> Option<String> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner()).filehost.clone()
    }

    /// Why the connection ended, once it has.
    pub fn closed_reason(&self) -> Option<String> {
        self.shared.closed.borrow().clone()
    }

    /// Sends lines, then a PING, and collects every reply (numerics, FAIL,
    /// EXTJWT) that arrives before the PONG. The server handles one client's
    /// lines in order, so those are the replies to these lines.
    pub async fn request(&self, msgs: &[Message]) -> Result<Reply, IrcError> {
        self.request_with(msgs, false).await
    }

    /// [`request`](Self::request), collecting batches too when `batches`.
    async fn request_with(&self, msgs: &[Message], batches: bool) -> Result<Reply, IrcError> {
        let _one_at_a_time = self.shared.request_lock.lock().await;
        let token = format!("parley-{}", self.shared.next_token.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        {
            let mut slot = self.shared.waiter.lock().unwrap_or_else(|e| e.into_inner());
            *slot = Some(Waiter { token: token.clone(), batches, collected: Vec::new(), done: tx });
        }
        let _guard = WaiterGuard(&self.shared, token.clone());
        for m in msgs {
            self.shared.send(m).await?;
        }
        self.shared.send(&Message::new("PING", vec![token])).await?;
        match tokio::time::timeout(REPLY_TIMEOUT, rx).await {
            Ok(Ok(messages)) => Ok(Reply { messages, closed: None }),
            // The reader dropped the waiter: the connection ended.
            Ok(Err(_)) => Ok(Reply { messages: Vec::new(), closed: Some(self.closed_reason().unwrap_or_default()) }),
            Err(_) => Err(IrcError::Timeout),
        }
    }

    /// Sends a PRIVMSG and waits until the server has accepted it.
    pub async fn privmsg(&self, target: &str, text: &str) -> Result<(), IrcError> {
        self.request(&[Message::new("PRIVMSG", vec![target.to_string(), text.to_string()])]).await?.check()?;
        Ok(())
    }

    /// NICK: `Ok` once the server took it (the session follows the echo),
    /// the server's refusal (432, 433) otherwise.
    pub async fn change_nick(&self, nick: &str) -> Result<(), IrcError> {
        self.request(&[Message::new("NICK", vec![nick.to_string()])]).await?.check()?;
        Ok(())
    }

    /// The last `n` messages of `target` in the server's history, oldest
    /// first.
    pub async fn history(&self, target: &str, n: usize) -> Result<Vec<Message>, IrcError> {
        let request = Message::new("CHATHISTORY", vec!["LATEST".into(), target.into(), "*".into(), n.to_string()]);
        Ok(messages_of(self.request_with(&[request], true).await?.check()?))
    }

    /// Messages with all the words of `text` that we may read, oldest first.
    pub async fn search(&self, text: &str, limit: usize) -> Result<Vec<Message>, IrcError> {
        let attrs = format!("text={};limit={limit}", escape_tag_value(text));
        Ok(messages_of(self.request_with(&[Message::new("SEARCH", vec![attrs])], true).await?.check()?))
    }

    /// The nicks in `channel`.
    pub async fn names(&self, channel: &str) -> Result<Vec<String>, IrcError> {
        let replies = self.request(&[Message::new("NAMES", vec![channel.to_string()])]).await?.check()?;
        let mut names = Vec::new();
        for m in replies.iter().filter(|m| m.command == RPL_NAMREPLY) {
            let list = m.params.last().map(String::as_str).unwrap_or("");
            names.extend(list.split(' ').filter(|n| !n.is_empty()).map(strip_prefixes));
        }
        Ok(names)
    }

    /// OPER: `Ok` on 381, the server's refusal otherwise.
    pub async fn oper(&self, name: &str, password: &str) -> Result<(), IrcError> {
        let replies = self.request(&[Message::new("OPER", vec![name.to_string(), password.to_string()])]).await?;
        // With a rate limit the server sends 464 and a FAIL that says more.
        if let Some(fail) = replies.messages.iter().find(|m| m.command == "FAIL") {
            return Err(reply_error(fail).expect("FAIL is an error"));
        }
        let messages = replies.check()?;
        if messages.iter().any(|m| m.command == RPL_YOUREOPER) {
            Ok(())
        } else {
            Err(IrcError::Rejected {
                code: ERR_PASSWDMISMATCH.into(),
                text: "the server did not grant operator status".into(),
            })
        }
    }

    /// DIE: asks the server to shut down, then waits for it to close this
    /// connection. Needs a successful [`Session::oper`] first.
    pub async fn die(&self, reason: &str) -> Result<(), IrcError> {
        self.shared.expect_close.store(true, Ordering::SeqCst);
        let reply = self.request(&[Message::new("DIE", vec![reason.to_string()])]).await;
        let reply = match reply {
            Ok(r) => r,
            Err(IrcError::Closed(_)) => return Ok(()),
            Err(e) => {
                self.shared.expect_close.store(false, Ordering::SeqCst);
                return Err(e);
            }
        };
        if let Some(e) = reply.error() {
            self.shared.expect_close.store(false, Ordering::SeqCst);
            return Err(e);
        }
        self.wait_closed().await;
        Ok(())
    }

    /// QUIT, then waits (briefly) for the server to close the connection.
    pub async fn quit(&self, reason: &str) {
        self.shared.expect_close.store(true, Ordering::SeqCst);
        let msg = if reason.is_empty() {
            Message::new("QUIT", vec![])
        } else {
            Message::new("QUIT", vec![reason.to_string()])
        };
        if self.shared.send(&msg).await.is_ok() {
            self.wait_closed().await;
        }
    }

    /// Whether the connection's end was asked for (QUIT or DIE).
    pub fn close_expected(&self) -> bool {
        self.shared.expect_close.load(Ordering::SeqCst)
    }

    async fn wait_closed(&self) {
        let mut rx = self.shared.closed.subscribe();
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, rx.wait_for(|c| c.is_some())).await;
    }

    /// A token for the file store (EXTJWT). Cached until `refresh` asks for a
    /// new one, which the caller does after a 401.
    pub async fn file_token(&self, refresh: bool) -> Result<String, IrcError> {
        if !refresh {
            if let Some(t) = self.shared.state.lock().unwrap_or_else(|e| e.into_inner()).token.clone() {
                return Ok(t);
            }
        }
        let replies = self.request(&[Message::new("EXTJWT", vec!["*".into()])]).await?.check()?;
        let token = extjwt_token(&replies).ok_or_else(|| IrcError::Rejected {
            code: "EXTJWT".into(),
            text: "the server gave no file store token".into(),
        })?;
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner()).token = Some(token.clone());
        Ok(token)
    }
}

/// Joins an EXTJWT reply, which a long token may split over several lines
/// (`EXTJWT <target> <service> * <part>` for all but the last).
/// The PRIVMSGs and NOTICEs among the replies.
fn messages_of(replies: Vec<Message>) -> Vec<Message> {
    replies.into_iter().filter(|m| matches!(m.command.as_str(), "PRIVMSG" | "NOTICE")).collect()
}

/// `text` as a tag value (SEARCH's attributes are written like tags).
fn escape_tag_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            ';' => out.push_str("\\:"),
            ' ' => out.push_str("\\s"),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn extjwt_token(replies: &[Message]) -> Option<String> {
    let mut token = String::new();
    for m in replies.iter().filter(|m| m.command == "EXTJWT") {
        token.push_str(m.params.last()?);
    }
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extjwt_tokens_are_joined() {
        let parts =
            [Message::parse(":srv EXTJWT * * * :abc").unwrap(), Message::parse(":srv EXTJWT * * :def").unwrap()];
        assert_eq!(extjwt_token(&parts).as_deref(), Some("abcdef"));
        assert_eq!(extjwt_token(&[]), None);
    }
}
