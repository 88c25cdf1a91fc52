//! `parleyd`'s command line: flags, their environment variables, and the
//! subcommands. Only `clap` and `std` here: `xtask` compiles this file on
//! its own to write the man pages and shell completions, so what the
//! package documents is what the binary parses. For the same reason the
//! texts come from doc comments, never from Cargo's package fields (in the
//! xtask those would be the xtask's).

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Parley chat server: IRC for chat, HTTP for files.
#[derive(Parser, Debug)]
#[command(name = "parleyd", version)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, short = 'c', env = "PARLEY_CONFIG")]
    pub config: Option<PathBuf>,
    /// IRC listen addresses, comma separated (e.g. 0.0.0.0:6667,[::]:6667).
    #[arg(long, env = "PARLEY_IRC_LISTEN", value_delimiter = ',')]
    pub irc_listen: Option<Vec<SocketAddr>>,
    /// HTTP (file store) listen addresses, comma separated.
    #[arg(long, env = "PARLEY_HTTP_LISTEN", value_delimiter = ',')]
    pub http_listen: Option<Vec<SocketAddr>>,
    /// TLS IRC listen addresses, comma separated (e.g. 0.0.0.0:6697).
    #[arg(long, env = "PARLEY_IRC_TLS_LISTEN", value_delimiter = ',')]
    pub irc_tls_listen: Option<Vec<SocketAddr>>,
    /// HTTPS (file store) listen addresses, comma separated.
    #[arg(long, env = "PARLEY_HTTP_TLS_LISTEN", value_delimiter = ',')]
    pub http_tls_listen: Option<Vec<SocketAddr>>,
    /// PEM certificate chain for the TLS listeners (default: self-signed, generated).
    #[arg(long, env = "PARLEY_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for the TLS listeners.
    #[arg(long, env = "PARLEY_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Public URL of the file store, advertised to clients (default: http:// + first HTTP address).
    #[arg(long, env = "PARLEY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Data directory (files, activity log, server state).
    #[arg(long, env = "PARLEY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Server name used in IRC replies.
    #[arg(long, env = "PARLEY_SERVER_NAME")]
    pub server_name: Option<String>,
    /// Network name (ISUPPORT NETWORK).
    #[arg(long, env = "PARLEY_NETWORK")]
    pub network: Option<String>,
    /// The lobby channel every user joins.
    #[arg(long, env = "PARLEY_LOBBY")]
    pub lobby: Option<String>,
    /// Connection password clients must send with PASS.
    #[arg(long, env = "PARLEY_IRC_PASSWORD", hide_env_values = true)]
    pub irc_password: Option<String>,
    /// Record message bodies in the activity log (default: metadata only).
    #[arg(long, env = "PARLEY_LOG_MESSAGE_BODIES")]
    pub log_message_bodies: Option<bool>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Read a password (without echo) and print its argon2id hash for `[[oper]]`.
    HashPassword,
    /// Load and validate the configuration, print it, and exit.
    CheckConfig,
    /// Copy the data directory's state (database, file store, keys) into
    /// DIR, which must be new or empty; safe while the server runs.
    Backup { dir: PathBuf },
    /// Put a backup made by `backup` into the data directory, which must
    /// be new or empty.
    Restore { dir: PathBuf },
    /// Manage accounts offline, in the data directory's database (safe
    /// while the server runs).
    Account {
        #[command(subcommand)]
        action: AccountAction,
    },
    /// Message history in the data directory's database (safe while the
    /// server runs; a running server's lobby replay keeps deleted lobby
    /// lines until it restarts: use `HISTORY` on IRC there instead).
    History {
        #[command(subcommand)]
        action: HistoryAction,
    },
}

#[derive(Subcommand, Debug)]
pub enum HistoryAction {
    /// Print the messages an account sent, as JSON (for its owner).
    Export { account: String },
    /// Delete the messages an account sent.
    Delete { account: String },
    /// Delete a channel's whole history.
    Purge { channel: String },
}

#[derive(Subcommand, Debug)]
pub enum AccountAction {
    /// Create an account; the password is read without echo (or from stdin).
    Add {
        name: String,
        /// Give the account operator rights.
        #[arg(long)]
        oper: bool,
    },
    /// Set an account's password (read without echo, or from stdin).
    Passwd { name: String },
    /// Delete an account.
    Del { name: String },
    /// List the accounts.
    List,
    /// Give an account operator rights (`--revoke` takes them away).
    GrantOper {
        name: String,
        #[arg(long)]
        revoke: bool,
    },
    /// Register a TLS client certificate's SHA-256 fingerprint to an
    /// account, for SASL EXTERNAL (`--remove` takes it off); with no
    /// fingerprint, list the account's.
    Cert {
        name: String,
        fingerprint: Option<String>,
        #[arg(long)]
        remove: bool,
    },
}
