//! The server's configuration: one typed struct with every default beside its
//! field, loaded from embedded defaults, then a TOML file, then `PARLEY_*`
//! environment variables and command-line flags (flags win over the
//! environment, both win over the file). Validation happens here, at start,
//! so a bad value stops the server with a message naming the key instead of
//! failing later at runtime.

mod accounts;
mod cluster;
mod database;
mod files;
mod history;
mod metrics;
mod websocket;

pub use accounts::{AccountsConfig, NickEnforcement};
pub use cluster::ClusterConfig;
pub use database::{redacted_url, DatabaseConfig, PASSWORD_ENV as DATABASE_PASSWORD_ENV};
pub use files::FilesConfig;
pub use history::{HistoryConfig, Retention, MAX_BATCH_WINDOW_MS};
pub use metrics::MetricsConfig;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use thiserror::Error;
pub use websocket::WebSocketConfig;

/// Why the configuration could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid value for `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// The longest busy-polling window `limits.busy_poll_us` may set: 10 ms.
pub const MAX_BUSY_POLL_US: u64 = 10_000;

/// The most nicks `limits.monitor_max` may let one client watch: every
/// entry is kept in memory, so one client must not hold a great many.
pub const MAX_MONITOR: usize = 10_000;

/// The longest realname `limits.realname_len` may allow: a realname must
/// fit in a 512-byte line together with the rest of a WHOIS reply.
pub const MAX_REALNAME_LEN: usize = 390;

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key, reason: reason.into() }
}

/// Everything `parleyd` can be told. Field docs are the reference for the
/// README's configuration table.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The server's name in IRC replies (`:parley.local 001 ...`).
    pub server_name: String,
    /// The network name advertised in ISUPPORT `NETWORK=`.
    pub network: String,
    /// What this server is, in a few words: LINKS and WHOIS (312) show it.
    pub description: String,
    /// Where files, the activity log and the server's own state live.
    pub data_dir: PathBuf,
    /// Message of the day lines; empty means "no MOTD" (422).
    pub motd: Vec<String>,
    pub irc: IrcConfig,
    pub files: FilesConfig,
    pub tls: TlsConfig,
    pub limits: Limits,
    pub log: LogConfig,
    pub admin: AdminConfig,
    pub accounts: AccountsConfig,
    pub metrics: MetricsConfig,
    pub history: HistoryConfig,
    /// Where accounts and history are kept: SQLite in the data directory,
    /// or PostgreSQL (shared by a cluster's nodes).
    pub database: DatabaseConfig,
    pub websocket: WebSocketConfig,
    /// Several nodes as one chat over NATS; `None` (no `[cluster]`
    /// section): a single node, nothing extra to start.
    pub cluster: Option<ClusterConfig>,
    /// Operators from the config file. When empty, an `admin` operator is
    /// created on first run (see `operators.rs`).
    #[serde(rename = "oper")]
    pub opers: Vec<OperConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IrcConfig {
    /// Plain-text IRC listeners. `0.0.0.0:6667` and `[::]:6667` listen on all
    /// interfaces.
    pub listen: Vec<SocketAddr>,
    /// TLS IRC listeners (conventionally port 6697); see `[tls]`.
    pub tls_listen: Vec<SocketAddr>,
    /// Offer the IRCv3 `sts` policy with this duration (seconds): plain-text
    /// clients are told to reconnect over TLS. Needs a TLS listener.
    pub sts_duration_secs: Option<u64>,
    /// Connection password (`PASS`), if the server is private.
    pub password: Option<String>,
    /// The channel every user lands in, and that `parley` talks to.
    pub lobby: String,
    /// Channels every user is joined to on registration (the lobby first).
    pub auto_join: Vec<String>,
    /// Above this many members, joins, parts and quits in auto-join channels
    /// are no longer broadcast and NAMES on join shows only you and the
    /// operators (explicit NAMES still lists everyone).
    pub quiet_lobby_above: usize,
}

/// Certificates for the TLS listeners. Without `cert` and `key`, a
/// self-signed certificate is created in `<data_dir>/tls/` on first use.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
    /// Seconds a client has to finish the TLS handshake.
    pub handshake_timeout_secs: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig { cert: None, key: None, handshake_timeout_secs: 10 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Longest line without tags, CR LF included (RFC 1459: 512).
    pub max_line_bytes: usize,
    /// Longest tag section a client may send (`@...` and its space): 4,096,
    /// as IRCv3 message-tags says (8,191 is the limit with the tags the
    /// server adds).
    pub max_tag_bytes: usize,
    /// Bytes queued for one client before it is cut with "SendQ exceeded".
    pub sendq_bytes: usize,
    /// Bytes of unprocessed input one client may have waiting before it is
    /// cut with "Excess Flood".
    pub recvq_bytes: usize,
    /// Lines a client may send in a burst before being throttled.
    pub flood_burst: u32,
    /// Lines per second a client may sustain.
    pub flood_lines_per_second: f64,
    /// Connections in total.
    pub max_connections: usize,
    /// Threads running connections: 1 = a single event loop, as classic IRC
    /// servers have (the default: no cross-thread wake-ups, busy polling,
    /// and on two cores the most deliveries per second too); 0 = one per
    /// core; N = N threads.
    pub worker_threads: usize,
    /// With a single thread: how long, at most, the runtime keeps polling
    /// for input after input instead of sleeping, in microseconds (the
    /// window adapts to the pauses it sees; 0 = always sleep). See
    /// `busy_poll`.
    pub busy_poll_us: u64,
    /// Pending connects the kernel queues for each listener (capped by
    /// `net.core.somaxconn`).
    pub listen_backlog: u32,
    /// Connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Channels one user may be in (ISUPPORT CHANLIMIT).
    pub max_channels_per_user: usize,
    /// Targets in one PRIVMSG/NOTICE/TAGMSG (ISUPPORT TARGMAX).
    pub max_targets: usize,
    /// Seconds an unregistered connection may take to register.
    pub registration_timeout_secs: u64,
    /// Seconds of silence before the server sends PING.
    pub ping_interval_secs: u64,
    /// Seconds to answer that PING before "Ping timeout".
    pub ping_timeout_secs: u64,
    /// Seconds to wait for connections to flush on shutdown.
    pub shutdown_grace_secs: u64,
    /// Every this many seconds, give free heap memory back to the OS
    /// (`memory.rs`); 0 turns it off.
    pub memory_trim_secs: u64,
    pub nick_len: usize,
    pub channel_len: usize,
    pub topic_len: usize,
    pub away_len: usize,
    pub kick_len: usize,
    /// Entries in each of a channel's mask lists: bans (`+b`), ban
    /// exceptions (`+e`) and invite exceptions (`+I`) (ISUPPORT `MAXLIST`).
    pub max_bans: usize,
    /// Nicks one client may watch with MONITOR (ISUPPORT `MONITOR`); each
    /// costs the server a little memory until the client drops it or leaves.
    pub monitor_max: usize,
    /// Longest realname (USER, SETNAME), in bytes: USER cuts a longer one,
    /// SETNAME refuses it.
    pub realname_len: usize,
    /// Departed nicks WHOWAS remembers, the oldest forgotten first (0: none).
    pub whowas_entries: usize,
    /// Failed OPER attempts allowed per address within the window.
    pub oper_failures_per_ip: u32,
    /// Failed OPER attempts allowed from all addresses within the window.
    pub oper_failures_global: u32,
    /// The window for the two limits above, in seconds.
    pub oper_failure_window_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// File name of the activity log inside the data directory.
    pub file: String,
    /// Also record message bodies (off by default: metadata only).
    pub message_bodies: bool,
    /// Events wait in memory for the once-a-second write, up to this many
    /// bytes; a thread that fills the buffer writes it out at once.
    pub buffer_bytes: usize,
    /// Start a new file once the log holds this many bytes (0: never by size).
    pub rotate_bytes: u64,
    /// Start a new file once the log is this old (0: never by age).
    pub rotate_age_secs: u64,
    /// Old files kept as `server_log.txt.1` (newest) to `.N`.
    pub keep: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Name of the operator created on first run when no `[[oper]]` exists.
    pub default_name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperConfig {
    pub name: String,
    /// An argon2id PHC string, as printed by `parleyd hash-password`.
    pub password_hash: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server_name: "parley.local".into(),
            network: "Parley".into(),
            description: "Parley chat server".into(),
            data_dir: PathBuf::from("parley-data"),
            motd: vec!["Welcome to Parley. Say hello in #lobby.".into()],
            irc: IrcConfig::default(),
            files: FilesConfig::default(),
            tls: TlsConfig::default(),
            limits: Limits::default(),
            log: LogConfig::default(),
            admin: AdminConfig::default(),
            accounts: AccountsConfig::default(),
            metrics: MetricsConfig::default(),
            history: HistoryConfig::default(),
            database: DatabaseConfig::default(),
            websocket: WebSocketConfig::default(),
            cluster: None,
            opers: Vec::new(),
        }
    }
}

impl Default for IrcConfig {
    fn default() -> Self {
        IrcConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 6667))],
            tls_listen: Vec::new(),
            sts_duration_secs: None,
            password: None,
            lobby: "#lobby".into(),
            auto_join: vec!["#lobby".into()],
            quiet_lobby_above: 200,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_bytes: 512,
            max_tag_bytes: 4096,
            sendq_bytes: 1 << 20,
            recvq_bytes: 8192,
            flood_burst: 20,
            flood_lines_per_second: 4.0,
            max_connections: 16384,
            listen_backlog: 4096,
            worker_threads: 1,
            busy_poll_us: 200,
            max_connections_per_ip: 16,
            max_channels_per_user: 50,
            max_targets: 4,
            registration_timeout_secs: 30,
            ping_interval_secs: 90,
            ping_timeout_secs: 60,
            shutdown_grace_secs: 5,
            memory_trim_secs: 10,
            nick_len: 30,
            channel_len: 50,
            topic_len: 390,
            away_len: 390,
            kick_len: 390,
            max_bans: 100,
            monitor_max: 100,
            realname_len: 100,
            whowas_entries: 1000,
            oper_failures_per_ip: 3,
            oper_failures_global: 20,
            oper_failure_window_secs: 60,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            file: "server_log.txt".into(),
            message_bodies: false,
            buffer_bytes: 1 << 20,
            rotate_bytes: 64 << 20,
            rotate_age_secs: 0,
            keep: 10,
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { default_name: "admin".into() }
    }
}

/// Values given as flags or `PARLEY_*` variables; `None` leaves the file's or
/// the default value alone.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub irc_listen: Option<Vec<SocketAddr>>,
    pub http_listen: Option<Vec<SocketAddr>>,
    pub irc_tls_listen: Option<Vec<SocketAddr>>,
    pub http_tls_listen: Option<Vec<SocketAddr>>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub public_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub server_name: Option<String>,
    pub network: Option<String>,
    pub lobby: Option<String>,
    pub password: Option<String>,
    pub log_message_bodies: Option<bool>,
}

impl Config {
    /// Defaults, then the file (if any), then overrides; validated.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        config.apply(overrides);
        config.validate()?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Config::from_toml(&text).map_err(|message| ConfigError::Parse { path: path.to_path_buf(), message })
    }

    /// Parses TOML text; the error names the offending key and line.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
    }

    pub fn apply(&mut self, o: &Overrides) {
        if let Some(v) = &o.irc_listen {
            self.irc.listen = v.clone();
        }
        if let Some(v) = &o.http_listen {
            self.files.listen = v.clone();
        }
        if let Some(v) = &o.irc_tls_listen {
            self.irc.tls_listen = v.clone();
        }
        if let Some(v) = &o.http_tls_listen {
            self.files.tls_listen = v.clone();
        }
        if let Some(v) = &o.tls_cert {
            self.tls.cert = Some(v.clone());
        }
        if let Some(v) = &o.tls_key {
            self.tls.key = Some(v.clone());
        }
        if let Some(v) = &o.public_url {
            self.files.public_url = Some(v.clone());
        }
        if let Some(v) = &o.data_dir {
            self.data_dir = v.clone();
        }
        if let Some(v) = &o.server_name {
            self.server_name = v.clone();
        }
        if let Some(v) = &o.network {
            self.network = v.clone();
        }
        if let Some(v) = &o.lobby {
            let old = std::mem::replace(&mut self.irc.lobby, v.clone());
            self.irc.auto_join.retain(|c| !parley_proto::irc_eq(c, &old));
            self.irc.auto_join.insert(0, v.clone());
        }
        if let Some(v) = &o.password {
            self.irc.password = Some(v.clone());
        }
        if let Some(v) = o.log_message_bodies {
            self.log.message_bodies = v;
        }
    }

    /// A copy fit to show (`parleyd check-config`): every secret (the
    /// server password, operator password hashes) replaced by `<set>`.
    pub fn redacted(&self) -> Config {
        let mut shown = self.clone();
        if shown.irc.password.is_some() {
            shown.irc.password = Some("<set>".into());
        }
        for oper in &mut shown.opers {
            oper.password_hash = "<set>".into();
        }
        if let Some(url) = &shown.database.url {
            shown.database.url = Some(redacted_url(url));
        }
        shown
    }

    /// The activity log's rotation policy.
    pub fn log_rotation(&self) -> crate::activity_log::Rotation {
        crate::activity_log::Rotation {
            max_bytes: self.log.rotate_bytes,
            max_age: (self.log.rotate_age_secs > 0).then(|| std::time::Duration::from_secs(self.log.rotate_age_secs)),
            keep: self.log.keep,
        }
    }

    /// The file store's directory.
    pub fn files_dir(&self) -> PathBuf {
        self.data_dir.join(&self.files.dir)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let name_ok = !self.server_name.is_empty()
            && self.server_name.contains('.')
            && self.server_name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if !name_ok {
            return Err(invalid("server_name", "must look like a host name with a dot, e.g. parley.local"));
        }
        if self.network.is_empty() || self.network.contains([' ', ',', '\r', '\n']) {
            return Err(invalid("network", "must be one word"));
        }
        if self.description.is_empty() || self.description.len() > 100 || self.description.contains(['\r', '\n', '\0'])
        {
            return Err(invalid("description", "must be one line of 1 to 100 bytes"));
        }
        if self.irc.listen.is_empty() && self.irc.tls_listen.is_empty() {
            return Err(invalid("irc.listen", "needs at least one address (or irc.tls_listen)"));
        }
        if self.irc.sts_duration_secs.is_some() && self.irc.tls_listen.is_empty() {
            return Err(invalid("irc.sts_duration_secs", "an STS policy needs a TLS listener in irc.tls_listen"));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(invalid("tls.cert", "set both tls.cert and tls.key, or neither for a self-signed certificate"));
        }
        if self.tls.handshake_timeout_secs == 0 {
            return Err(invalid("tls.handshake_timeout_secs", "must be at least 1 second"));
        }
        self.accounts.validate()?;
        self.history.validate()?;
        self.database.validate()?;
        self.websocket.validate()?;
        if let Some(cluster) = &self.cluster {
            cluster.validate()?;
        }
        let l = &self.limits;
        if l.channel_len < 2 {
            return Err(invalid("limits.channel_len", "must be at least 2"));
        }
        if parley_proto::validate_channel(&self.irc.lobby, l.channel_len).is_err() {
            return Err(invalid("irc.lobby", format!("{:?} is not a valid channel name", self.irc.lobby)));
        }
        for c in &self.irc.auto_join {
            if let Err(e) = parley_proto::validate_channel(c, l.channel_len) {
                return Err(invalid("irc.auto_join", format!("{c:?}: {e}")));
            }
        }
        if let Some(p) = &self.irc.password {
            if p.is_empty() || p.contains([' ', '\r', '\n', '\0']) {
                return Err(invalid("irc.password", "must be non-empty without spaces or line breaks"));
            }
        }
        if !(1..=MAX_MONITOR).contains(&l.monitor_max) {
            return Err(invalid("limits.monitor_max", format!("must be between 1 and {MAX_MONITOR}")));
        }
        if !(1..=MAX_REALNAME_LEN).contains(&l.realname_len) {
            return Err(invalid("limits.realname_len", format!("must be between 1 and {MAX_REALNAME_LEN}")));
        }
        if l.max_line_bytes < 512 {
            return Err(invalid("limits.max_line_bytes", "must be at least 512 (RFC 1459)"));
        }
        if l.busy_poll_us > MAX_BUSY_POLL_US {
            return Err(invalid(
                "limits.busy_poll_us",
                format!("must be at most {MAX_BUSY_POLL_US} (a spin longer than that only burns CPU; 0 turns it off)"),
            ));
        }
        if l.sendq_bytes < 4096 {
            return Err(invalid("limits.sendq_bytes", "must be at least 4096"));
        }
        if l.recvq_bytes < l.max_line_bytes {
            return Err(invalid("limits.recvq_bytes", "must be at least limits.max_line_bytes"));
        }
        if l.flood_burst == 0 || l.flood_lines_per_second.is_nan() || l.flood_lines_per_second <= 0.0 {
            return Err(invalid("limits.flood_lines_per_second", "burst and rate must be positive"));
        }
        for (key, v) in [
            ("limits.max_connections", l.max_connections),
            ("limits.max_connections_per_ip", l.max_connections_per_ip),
            ("limits.max_channels_per_user", l.max_channels_per_user),
            ("limits.max_targets", l.max_targets),
            ("limits.nick_len", l.nick_len),
            ("limits.topic_len", l.topic_len),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        for (key, v) in [
            ("limits.registration_timeout_secs", l.registration_timeout_secs),
            ("limits.ping_interval_secs", l.ping_interval_secs),
            ("limits.ping_timeout_secs", l.ping_timeout_secs),
            ("limits.oper_failure_window_secs", l.oper_failure_window_secs),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be at least 1 second"));
            }
        }
        for (i, o) in self.opers.iter().enumerate() {
            if o.name.is_empty() || o.name.contains(' ') {
                return Err(invalid("oper.name", format!("entry {} has an empty name or a space", i + 1)));
            }
            if argon2::PasswordHash::new(&o.password_hash).is_err() {
                return Err(invalid(
                    "oper.password_hash",
                    format!("entry {:?} is not a PHC hash; make one with `parleyd hash-password`", o.name),
                ));
            }
        }
        self.files.validate()?;
        if self.admin.default_name.is_empty() || self.admin.default_name.contains(' ') {
            return Err(invalid("admin.default_name", "must be one word"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_toml("[limits]\nsendq = 5\n").unwrap_err();
        assert!(err.contains("sendq"), "{err}");
    }

    #[test]
    fn bad_value_names_the_key() {
        let mut c = Config::from_toml("[irc]\nlobby = \"nolobby\"\n").unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("irc.lobby"), "{err}");
        c.irc.lobby = "#ok".into();
        c.irc.auto_join = vec!["#ok".into()];
        c.limits.sendq_bytes = 10;
        assert!(c.validate().unwrap_err().to_string().contains("limits.sendq_bytes"));
        let mut c = Config::default();
        c.limits.busy_poll_us = MAX_BUSY_POLL_US + 1;
        assert!(c.validate().unwrap_err().to_string().contains("limits.busy_poll_us"));
        let mut c = Config::default();
        c.limits.monitor_max = 0;
        assert!(c.validate().unwrap_err().to_string().contains("limits.monitor_max"));
        c.limits.monitor_max = MAX_MONITOR + 1;
        assert!(c.validate().unwrap_err().to_string().contains("limits.monitor_max"));
        let mut c = Config::default();
        c.limits.realname_len = MAX_REALNAME_LEN + 1;
        assert!(c.validate().unwrap_err().to_string().contains("limits.realname_len"));
        let c = Config { description: "two\nlines".into(), ..Config::default() };
        assert!(c.validate().unwrap_err().to_string().contains("description"));
    }

    #[test]
    fn overrides_win_over_file() {
        let mut c = Config::from_toml("server_name = \"a.example\"\n").unwrap();
        c.apply(&Overrides {
            server_name: Some("b.example".into()),
            lobby: Some("#main".into()),
            ..Default::default()
        });
        assert_eq!(c.server_name, "b.example");
        assert_eq!(c.irc.lobby, "#main");
        assert_eq!(c.irc.auto_join, vec!["#main".to_string()]);
    }
}
