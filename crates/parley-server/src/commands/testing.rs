//! Running commands without a network, for the command modules' unit
//! tests: a real `ServerState` over a temporary data directory, sessions
//! whose clients have no socket, and what each one was sent, as text.

use crate::activity_log::ActivityLog;
use crate::config::Config;
use crate::operators::Operators;
use crate::outbound::Client;
use crate::server::ServerState;
use crate::session::{Ctx, Session};
use crate::shutdown::Shutdown;
use crate::tokens::Tokens;
use parley_proto::MessageRef;
use std::sync::Arc;

pub const OPER_PASSWORD: &str = "correct horse";

pub struct Harness {
    pub server: ServerState,
    /// Before the directory: the writer stops before it goes.
    _history_writer: Option<crate::history::Writer>,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with(|_| {})
    }

    /// A server whose default config `tweak` adjusts first.
    pub fn with(tweak: impl FnOnce(&mut Config)) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config { data_dir: dir.path().to_path_buf(), ..Default::default() };
        tweak(&mut config);
        let server = server_state(config, dir.path());
        Harness { server, _history_writer: None, _dir: dir }
    }

    /// A server with default config and history on.
    pub fn with_history() -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config { data_dir: dir.path().to_path_buf(), ..Default::default() };
        let server = server_state(config, dir.path());
        let (history, writer) =
            crate::history::History::open(server.accounts.db(), &server.config.history, &server.config.irc.lobby, "")
                .expect("history");
        Harness { server: server.with_history(Some(history)), _history_writer: Some(writer), _dir: dir }
    }

    /// A server with default config and these users registered, in order.
    pub fn start<const N: usize>(nicks: [&str; N]) -> (Harness, [Session; N]) {
        let h = Harness::new();
        let users = nicks.map(|nick| h.user(nick));
        (h, users)
    }

    /// A connected, not yet registered session.
    pub fn connect(&self) -> Session {
        let id = self.server.connections.next_id();
        let client = Arc::new(Client::new(id, 1 << 20, None));
        self.server.connections.open(&client);
        Session::new(id, "127.0.0.1:40000".parse().expect("addr"), client)
    }

    /// A registered session named `nick` (in the lobby, as every user
    /// is), with its welcome burst already read.
    pub fn user(&self, nick: &str) -> Session {
        let mut s = self.connect();
        self.run(&mut s, &format!("NICK {nick}"));
        let burst = self.run(&mut s, &format!("USER {nick} 0 * :{nick} here"));
        assert!(burst.contains(" 001 "), "{nick} did not register: {burst}");
        s
    }

    /// Registered users who all joined `channel`, in order (so the first
    /// is its operator), with nothing left unread.
    pub fn in_channel<const N: usize>(&self, channel: &str, nicks: [&str; N]) -> [Session; N] {
        let sessions = nicks.map(|nick| {
            let mut s = self.user(nick);
            self.run(&mut s, &format!("JOIN {channel}"));
            s
        });
        for s in &sessions {
            self.received(s);
        }
        sessions
    }

    /// Runs one line as `s` and returns what `s` was sent, as text.
    pub fn run(&self, s: &mut Session, line: &str) -> String {
        let msg = MessageRef::parse(line).expect("a parsable line");
        let mut ctx = Ctx::new(&self.server, s);
        let deferred = super::dispatch(&mut ctx, msg);
        assert!(deferred.is_none(), "{line} has to be awaited: use run_deferred");
        let out = ctx.take_output();
        String::from_utf8(out.to_vec()).expect("UTF-8 output")
    }

    /// Runs one line that has to be awaited (OPER) and returns what `s`
    /// was sent (its context queues it when done, as on a connection).
    pub async fn run_deferred(&self, s: &mut Session, line: &str) -> String {
        let msg = MessageRef::parse(line).expect("a parsable line");
        let deferred = super::dispatch(&mut Ctx::new(&self.server, s), msg).expect("a command that awaits");
        super::run_deferred(&self.server, s, deferred).await;
        self.received(s)
    }

    /// What others have queued for `s` since it last looked.
    pub fn received(&self, s: &Session) -> String {
        String::from_utf8(s.client.take_pending().to_vec()).expect("UTF-8 output")
    }
}

/// A real `ServerState` over `dir` (no listeners): the activity log, an
/// administrator (`admin` / [`OPER_PASSWORD`]), the token key, accounts.
pub fn server_state(config: Config, dir: &std::path::Path) -> ServerState {
    let log = ActivityLog::open(&dir.join("server_log.txt"), 1 << 20, false).expect("log");
    let tokens = Tokens::load_or_create(&dir.join("jwt.key"), &config.server_name, 60).expect("tokens");
    let db = Arc::new(crate::db::Db::open(dir).expect("database"));
    let accounts = crate::accounts::Accounts::new(db, config.limits.nick_len).expect("accounts");
    let (operators, _) = Operators::bootstrap(&config, Some(OPER_PASSWORD.into()), &accounts).expect("operators");
    let identity = crate::server::Identity { operators, accounts, tokens };
    ServerState::new(config, log, identity, None, None, Shutdown::new())
}

/// The numeric codes (or commands) of each line of `text`, in order
/// (after the tags of a line that has them).
pub fn codes(text: &str) -> Vec<&str> {
    text.lines()
        .map(|l| if l.starts_with('@') { l.split_once(' ').map_or("", |(_, rest)| rest) } else { l })
        .filter_map(|l| l.split(' ').nth(1))
        .collect()
}
