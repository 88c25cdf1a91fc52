//! The state every connection shares: config, registry, the connection
//! set, activity log, operators and the shutdown trigger, plus facts
//! derived from the config (ISUPPORT tokens, rebuilt by a reload) or fixed
//! at start (creation time).

use crate::accounts::Accounts;
use crate::activity_log::ActivityLog;
use crate::admission::ConnectionLimits;
use crate::config::{Config, HistoryConfig};
use crate::history::History;
use crate::lifecycle::connections::Connections;
use crate::live::Live;
use crate::operators::Operators;
use crate::registry::Registry;
use crate::shutdown::Shutdown;
use crate::tokens::Tokens;
use std::sync::{Arc, Weak};

pub const VERSION: &str = concat!("parley-", env!("CARGO_PKG_VERSION"));

/// Who is who: operators, accounts, and the file store's tokens.
pub struct Identity {
    pub operators: Operators,
    pub accounts: Accounts,
    pub tokens: Tokens,
}

pub struct ServerState {
    /// The configuration in force: read it where it is used (`live.rs`),
    /// so a reload (`reload/`) reaches every new use. The file store
    /// shares the same handle.
    pub config: Arc<Live<Config>>,
    pub registry: Registry,
    pub log: Arc<ActivityLog>,
    pub operators: Arc<Operators>,
    /// Accounts, for SASL (calls block: run them on the blocking pool).
    pub accounts: Arc<Accounts>,
    pub shutdown: Shutdown,
    /// Signs and checks the file store's EXTJWT tokens.
    pub tokens: Arc<Tokens>,
    /// The file store's public `/files` URL for IRC connections without
    /// TLS, if the store is on.
    pub filehost: Option<String>,
    /// The same over `https`, for IRC connections with TLS: FILEHOST
    /// clients refuse a plain `http` upload URL there, so without one
    /// those connections are offered none.
    pub filehost_tls: Option<String>,
    /// The TLS port named by the `sts` policy, when one is configured.
    pub sts_port: Option<u16>,
    /// "This server was created ..." text for 003.
    pub created: String,
    /// ISUPPORT tokens in the order they are sent, but for the FILEHOST
    /// ones, which depend on the connection (see `filehost_for`); rebuilt
    /// by a reload.
    pub isupport: Live<Vec<String>>,
    /// Open IRC connections, in total and per address
    /// (`limits.max_connections*`; a reload changes the limits).
    pub irc_limits: Arc<ConnectionLimits>,
    /// The same for the file store's HTTP connections (`files.max_connections*`).
    pub http_limits: Arc<ConnectionLimits>,
    /// The certificate both TLS listeners present, when there are any; a
    /// reload reads it again.
    pub tls: Option<Arc<crate::tls::Certificate>>,
    /// What a reload reads again and how it is serialised (`reload/`).
    pub reload: crate::reload::source::Reloader,
    /// This state's own `Arc`, for work it hands to the blocking pool
    /// (a reload from REHASH); see [`ServerState::into_shared`].
    me: Weak<ServerState>,
    /// Every open IRC connection (see `lifecycle`).
    pub connections: Connections,
    /// Self-registrations (REGISTER, NickServ REGISTER) per address and in
    /// total over a window: each costs a password hash and a name.
    pub registrations: crate::login_failures::LoginFailures,
    /// Message history, when `history.enabled`.
    pub history: Option<Arc<History>>,
    /// This node's part in a cluster, when the config has `[cluster]`.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

impl ServerState {
    pub fn new(
        config: Config,
        log: ActivityLog,
        identity: Identity,
        filehost: Option<String>,
        sts_port: Option<u16>,
        shutdown: Shutdown,
    ) -> ServerState {
        let created =
            time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc2822).unwrap_or_default();
        let config_has_sts = config.irc.sts_duration_secs.is_some();
        let isupport = isupport_tokens(&config, None);
        let l = &config.limits;
        let irc_limits = ConnectionLimits::new(l.max_connections, l.max_connections_per_ip);
        let http_limits = ConnectionLimits::new(config.files.max_connections, config.files.max_connections_per_ip);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let registry = Registry::new(&config.server_name, &config.irc.auto_join, now, config.limits.whowas_entries);
        let a = &config.accounts;
        let registrations = crate::login_failures::LoginFailures::new(
            a.registrations_per_ip,
            a.registrations_total,
            std::time::Duration::from_secs(a.registration_window_secs),
        );
        ServerState {
            config: Arc::new(Live::new(config)),
            registry,
            log: Arc::new(log),
            operators: Arc::new(identity.operators),
            accounts: Arc::new(identity.accounts),
            shutdown,
            tokens: Arc::new(identity.tokens),
            filehost_tls: filehost.clone().filter(|u| u.starts_with("https://")),
            filehost,
            sts_port: sts_port.filter(|_| config_has_sts),
            created,
            isupport: Live::new(isupport),
            irc_limits,
            http_limits,
            tls: None,
            reload: Default::default(),
            me: Weak::new(),
            connections: Connections::default(),
            registrations,
            history: None,
            cluster: None,
        }
    }

    /// Adds history (and its ISUPPORT tokens).
    pub fn with_history(mut self, history: Option<Arc<History>>) -> ServerState {
        self.history = history;
        self.isupport = Live::new(isupport_tokens(&self.config, self.history.as_ref().map(|h| h.config())));
        self
    }

    /// The state in its `Arc`, knowing it (so a command can hand work
    /// that outlives its borrow to the blocking pool).
    pub fn into_shared(mut self) -> Arc<ServerState> {
        Arc::new_cyclic(|me| {
            self.me = me.clone();
            self
        })
    }

    /// This state's `Arc` (see [`ServerState::into_shared`]).
    pub fn shared(&self) -> Option<Arc<ServerState>> {
        self.me.upgrade()
    }
}

impl ServerState {
    /// The file store URL to offer a connection: `https` only over TLS.
    pub fn filehost_for(&self, secure: bool) -> Option<&str> {
        if secure {
            self.filehost_tls.as_deref()
        } else {
            self.filehost.as_deref()
        }
    }
}

/// The ISUPPORT tokens for a configuration (and history's, when on).
pub(crate) fn isupport_tokens(c: &Config, history: Option<&HistoryConfig>) -> Vec<String> {
    let l = &c.limits;
    let t = l.max_targets;
    let b = l.max_bans;
    let mut tokens = vec![
        format!("AWAYLEN={}", l.away_len),
        "BOT=B".into(),
        format!("CASEMAPPING={}", parley_proto::casemap::CASEMAPPING),
        format!("CHANLIMIT=#:{}", l.max_channels_per_user),
        "CHANMODES=beI,k,l,imnpst".into(),
        format!("CHANNELLEN={}", l.channel_len),
        "CHANTYPES=#".into(),
        format!("ELIST={}", crate::commands::elist::SUPPORTED),
        "EXCEPTS".into(),
        "HOSTLEN=64".into(),
        "INVEX".into(),
        format!("KICKLEN={}", l.kick_len),
        format!("MAXLIST=b:{b},e:{b},I:{b}"),
        "MODES=4".into(),
        format!("MONITOR={}", l.monitor_max),
        format!("NETWORK={}", c.network),
        format!("NICKLEN={}", l.nick_len),
        "PREFIX=(ov)@+".into(),
        "STATUSMSG=@+".into(),
        format!(
            "TARGMAX=PRIVMSG:{t},NOTICE:{t},TAGMSG:{t},JOIN:,PART:,KICK:1,WHOIS:1,NAMES:1,ISON:,USERHOST:5,MONITOR:"
        ),
        format!("TOPICLEN={}", l.topic_len),
        "USERLEN=18".into(),
        "UTF8ONLY".into(),
        "WHOX".into(),
        "EXTJWT=1".into(),
    ];
    if let Some(h) = history {
        tokens.push(format!("CHATHISTORY={}", h.max_query_messages));
        tokens.push("MSGREFTYPES=msgid,timestamp".into());
    }
    tokens
}
