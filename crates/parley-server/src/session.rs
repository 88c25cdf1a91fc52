//! One connection's private state (what only its own task touches) and the
//! context command handlers run in, which collects their replies.
//! Everything other users can see lives in the registry instead.

use crate::caps;
pub use crate::login::Login;
use crate::outbound::Client;
use crate::refusal::Refusal;
use crate::relay::Relay;
use crate::server::ServerState;
use crate::spare;
use bytes::BytesMut;
use parley_proto::{write_line, Message};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;

pub struct Session {
    pub id: u64,
    pub addr: SocketAddr,
    pub host: String,
    pub client: Arc<Client>,
    /// The nick requested (before registration) or held (after).
    pub nick: Option<String>,
    /// USER's username (already prefixed with `~`) and realname.
    pub user: Option<(String, String)>,
    /// The password given with PASS, checked at registration.
    pub pass: Option<String>,
    /// CAP LS/REQ seen before registration: wait for CAP END.
    pub cap_negotiating: bool,
    pub cap_version: u32,
    pub caps: u32,
    pub registered: bool,
    /// The connection came in over TLS.
    pub secure: bool,
    /// User mode `+B`, kept here too: every message it sends is tagged.
    pub bot: bool,
    /// Set when the connection must end; the text is the QUIT reason.
    pub quit: Option<String>,
    /// SASL in progress, the account logged in, the client certificate.
    pub login: Option<Box<Login>>,
    /// `nick!user@host` from registration on, renewed on NICK: the source
    /// of every message this user sends, kept rather than built per line.
    mask: String,
    /// This connection as activity-log lines name it, formatted when the
    /// user first sends a message (idle users never pay for it), renewed
    /// on NICK.
    logged_as: std::cell::OnceCell<String>,
}

impl Session {
    pub fn new(id: u64, addr: SocketAddr, client: Arc<Client>) -> Session {
        Session {
            id,
            addr,
            host: crate::hostname::host_for(addr.ip()),
            client,
            nick: None,
            user: None,
            pass: None,
            cap_negotiating: false,
            cap_version: 0,
            caps: 0,
            registered: false,
            secure: false,
            bot: false,
            quit: None,
            login: None,
            mask: String::new(),
            logged_as: std::cell::OnceCell::new(),
        }
    }

    pub fn has_cap(&self, cap: u32) -> bool {
        self.caps & cap != 0
    }

    /// `nick!user@host` (`*` for parts not given yet).
    pub fn hostmask(&self) -> String {
        if self.registered {
            return self.mask.clone();
        }
        self.build_mask()
    }

    /// The hostmask of a registered user, without a copy (the message path).
    pub fn mask(&self) -> &str {
        debug_assert!(self.registered, "only registered users have a kept hostmask");
        &self.mask
    }

    fn build_mask(&self) -> String {
        let user = self.user.as_ref().map_or("*", |(u, _)| u.as_str());
        parley_proto::mask::hostmask(self.nick.as_deref().unwrap_or("*"), user, &self.host)
    }

    /// Marks the session registered, keeping its hostmask from now on.
    pub fn set_registered(&mut self) {
        self.registered = true;
        self.mask = self.build_mask();
    }

    /// A new nick, requested or (once registered) taken; the kept hostmask
    /// and log name follow.
    pub fn set_nick(&mut self, nick: &str) {
        self.nick = Some(nick.to_string());
        if let Some(login) = self.login.as_mut() {
            login.refused_nick = None;
        }
        if self.registered {
            self.mask = self.build_mask();
        }
        self.logged_as = std::cell::OnceCell::new();
    }

    /// This connection as the activity log names it.
    pub fn actor(&self) -> crate::activity_log::Actor<'_> {
        crate::activity_log::Actor { conn: self.id, addr: Some(self.addr), nick: self.nick.as_deref() }
    }

    /// The account this connection logged in as.
    pub fn account(&self) -> Option<&str> {
        self.login.as_ref().and_then(|l| l.account.as_deref())
    }

    /// The login state, made on first use.
    pub fn login_mut(&mut self) -> &mut Login {
        self.login.get_or_insert_with(Box::default)
    }

    /// The fingerprint of the client's TLS certificate, if it showed one.
    pub fn certfp(&self) -> Option<&str> {
        self.login.as_ref().and_then(|l| l.certfp.as_deref())
    }

    /// [`actor`](Self::actor) formatted once, for the line of every message.
    pub fn logged_as(&self) -> &str {
        self.logged_as.get_or_init(|| crate::activity_log::ActivityLog::actor_text(self.actor()))
    }
}

/// What a command handler works with: the server, its own session, and
/// the replies it is building. Handlers write nothing to any socket: what
/// they say to their own client collects here, in order, and is queued
/// for it when the `Ctx` is dropped; lines for others go through the
/// registry. So a handler can be run and checked without a connection.
pub struct Ctx<'a> {
    pub server: &'a ServerState,
    pub session: &'a mut Session,
    /// A `RefCell` so the reply helpers can take `&self`.
    out: RefCell<BytesMut>,
    /// The command's label (IRCv3 labeled-response), applied to all it
    /// said when it is queued.
    label: Option<Box<str>>,
}

impl Drop for Ctx<'_> {
    fn drop(&mut self) {
        self.apply_label();
        let out = self.out.get_mut();
        if out.capacity() == 0 {
            return;
        }
        if !out.is_empty() {
            self.session.client.push(out);
            out.clear();
        }
        spare::give(spare::Slot::Replies, out);
    }
}

impl<'a> Ctx<'a> {
    pub fn new(server: &'a ServerState, session: &'a mut Session) -> Ctx<'a> {
        Ctx { server, session, out: RefCell::new(BytesMut::new()), label: None }
    }

    /// Answers the command carrying `tags` as a labeled response, if they
    /// hold a label this client may use (see `labeled_response`).
    pub fn set_label(&mut self, tags: &[parley_proto::Tag]) {
        self.label = crate::labeled_response::label_of(self.session.caps, tags);
    }

    /// Drops the label: the command is handed on, to be answered (and
    /// labeled) in another `Ctx`.
    pub fn hand_on_label(&mut self) {
        self.label = None;
    }

    /// Labels what the command said, once it has said everything.
    fn apply_label(&mut self) {
        if let Some(label) = self.label.take() {
            let out = self.out.get_mut();
            if out.capacity() == 0 {
                *out = spare::take(spare::Slot::Replies);
            }
            crate::labeled_response::finish(out, &label, &self.server.config.server_name);
        }
    }

    /// Takes what the handler has said so far, labeled if the command was
    /// (for tests: then nothing is queued on drop).
    pub fn take_output(&mut self) -> BytesMut {
        self.apply_label();
        std::mem::take(self.out.get_mut())
    }

    /// The nick to address replies to: `*` before one is set.
    pub fn target(&self) -> &str {
        self.session.nick.as_deref().unwrap_or("*")
    }

    /// The reply buffer, taken from the thread's spare on first use.
    fn out(&self) -> std::cell::RefMut<'_, BytesMut> {
        let mut out = self.out.borrow_mut();
        if out.capacity() == 0 {
            *out = spare::take(spare::Slot::Replies);
        }
        out
    }

    /// Adds an encoded line.
    pub fn send_bytes(&self, bytes: &[u8]) {
        self.out().extend_from_slice(bytes);
    }

    /// Adds this client's copy of a line relayed to others.
    pub fn send_relay(&self, relay: &Relay) {
        self.send_bytes(relay.bytes_for(self.session.caps));
    }

    /// Wraps what `lines` says in a batch of type `kind` (IRCv3 `batch`),
    /// for a client that negotiated it; for others, its lines as they are.
    pub fn batch(&self, kind: &str, params: &[&str], lines: impl FnOnce(&Self)) {
        if !self.session.has_cap(caps::BATCH) {
            return lines(self);
        }
        let from = self.out().len();
        lines(self);
        crate::batch::wrap(&mut self.out(), from, &self.server.config.server_name, kind, params, &[]);
    }

    /// Adds a message, with a `time` tag if the client asked for
    /// server-time.
    pub fn send(&self, mut msg: Message) {
        if self.session.has_cap(caps::SERVER_TIME) && msg.tags.is_empty() {
            msg.tags.push(parley_proto::Tag { key: "time".into(), value: Some(crate::clock::now_tag()) });
        }
        msg.write_to(&mut self.out());
    }

    /// A numeric reply: `:server CODE <nick> params...`.
    pub fn reply<P: AsRef<str>>(&self, code: &str, params: &[P]) {
        let mut all = Vec::with_capacity(params.len() + 1);
        all.push(self.target());
        all.extend(params.iter().map(|p| p.as_ref()));
        write_line(Some(&self.server.config.server_name), code, all.into_iter(), &mut self.out());
    }

    /// The numeric for a refusal.
    pub fn refuse(&self, refusal: &Refusal) {
        let (code, params) = refusal.numeric();
        self.reply(code, &params);
    }

    /// An IRCv3 standard reply: `FAIL <command> <code> [context...] :<text>`.
    pub fn fail(&self, command: &str, code: &str, context: &[&str], text: &str) {
        let mut params = vec![command, code];
        params.extend_from_slice(context);
        params.push(text);
        write_line(Some(&self.server.config.server_name), "FAIL", params.into_iter(), &mut self.out());
    }

    /// A line in the shape of a standard reply that is not a failure
    /// (`REGISTER SUCCESS <account> :<text>`): `:server COMMAND params... :text`.
    pub fn send_standard(&self, command: &str, params: &[&str], text: &str) {
        let mut all = params.to_vec();
        all.push(text);
        write_line(Some(&self.server.config.server_name), command, all.into_iter(), &mut self.out());
    }

    /// A server NOTICE to this client.
    pub fn server_notice(&self, text: &str) {
        let msg = Message::new("NOTICE", vec![self.target().to_string(), text.to_string()])
            .with_source(self.server.config.server_name.clone());
        self.send(msg);
    }

    /// This connection as the activity log names it.
    pub fn actor(&self) -> crate::activity_log::Actor<'_> {
        self.session.actor()
    }
}
