//! The `parleyd` command: flags and environment, first-run admin, signals,
//! and the readiness line that scripts and tests wait for.

use anyhow::Context;
use clap::{Parser, Subcommand};
use parley_server::accounts::Accounts;
use parley_server::busy_poll;
use parley_server::config::{Config, Overrides};
use parley_server::db::Db;
use parley_server::operators::{self, Bootstrap, Operators};
use parley_server::shutdown::ShutdownCause;
use parley_server::Server;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Parley chat server: IRC for chat, HTTP for files.
#[derive(Parser, Debug)]
#[command(name = "parleyd", version, about)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, short = 'c', env = "PARLEY_CONFIG")]
    config: Option<PathBuf>,
    /// IRC listen addresses, comma separated (e.g. 0.0.0.0:6667,[::]:6667).
    #[arg(long, env = "PARLEY_IRC_LISTEN", value_delimiter = ',')]
    irc_listen: Option<Vec<SocketAddr>>,
    /// HTTP (file store) listen addresses, comma separated.
    #[arg(long, env = "PARLEY_HTTP_LISTEN", value_delimiter = ',')]
    http_listen: Option<Vec<SocketAddr>>,
    /// TLS IRC listen addresses, comma separated (e.g. 0.0.0.0:6697).
    #[arg(long, env = "PARLEY_IRC_TLS_LISTEN", value_delimiter = ',')]
    irc_tls_listen: Option<Vec<SocketAddr>>,
    /// HTTPS (file store) listen addresses, comma separated.
    #[arg(long, env = "PARLEY_HTTP_TLS_LISTEN", value_delimiter = ',')]
    http_tls_listen: Option<Vec<SocketAddr>>,
    /// PEM certificate chain for the TLS listeners (default: self-signed, generated).
    #[arg(long, env = "PARLEY_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for the TLS listeners.
    #[arg(long, env = "PARLEY_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Public URL of the file store, advertised to clients (default: http:// + first HTTP address).
    #[arg(long, env = "PARLEY_PUBLIC_URL")]
    public_url: Option<String>,
    /// Data directory (files, activity log, server state).
    #[arg(long, env = "PARLEY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Server name used in IRC replies.
    #[arg(long, env = "PARLEY_SERVER_NAME")]
    server_name: Option<String>,
    /// Network name (ISUPPORT NETWORK).
    #[arg(long, env = "PARLEY_NETWORK")]
    network: Option<String>,
    /// The lobby channel every user joins.
    #[arg(long, env = "PARLEY_LOBBY")]
    lobby: Option<String>,
    /// Connection password clients must send with PASS.
    #[arg(long, env = "PARLEY_IRC_PASSWORD", hide_env_values = true)]
    irc_password: Option<String>,
    /// Record message bodies in the activity log (default: metadata only).
    #[arg(long, env = "PARLEY_LOG_MESSAGE_BODIES")]
    log_message_bodies: Option<bool>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
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
enum HistoryAction {
    /// Print the messages an account sent, as JSON (for its owner).
    Export { account: String },
    /// Delete the messages an account sent.
    Delete { account: String },
    /// Delete a channel's whole history.
    Purge { channel: String },
}

#[derive(Subcommand, Debug)]
enum AccountAction {
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

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("PARLEY_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    if let Some(Command::HashPassword) = cli.command {
        return hash_password();
    }
    let overrides = Overrides {
        irc_listen: cli.irc_listen.clone(),
        http_listen: cli.http_listen.clone(),
        irc_tls_listen: cli.irc_tls_listen.clone(),
        http_tls_listen: cli.http_tls_listen.clone(),
        tls_cert: cli.tls_cert.clone(),
        tls_key: cli.tls_key.clone(),
        public_url: cli.public_url.clone(),
        data_dir: cli.data_dir.clone(),
        server_name: cli.server_name.clone(),
        network: cli.network.clone(),
        lobby: cli.lobby.clone(),
        password: cli.irc_password.clone(),
        log_message_bodies: cli.log_message_bodies,
    };
    let config = match Config::load(cli.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("parleyd: {e}");
            std::process::exit(2);
        }
    };
    match cli.command {
        Some(Command::CheckConfig) => {
            println!("configuration is valid: {:#?}", config.redacted());
            return Ok(());
        }
        Some(Command::Backup { dir }) => match parley_server::backup::backup(&config, &dir) {
            Ok(s) => {
                println!(
                    "backed up {} into {}: database {}, {} file entries, {} blobs, {} keys",
                    config.data_dir.display(),
                    dir.display(),
                    if s.database { "copied" } else { "none" },
                    s.files,
                    s.blobs,
                    s.keys
                );
                return Ok(());
            }
            Err(e) => {
                eprintln!("parleyd backup: {e}");
                std::process::exit(1);
            }
        },
        Some(Command::Restore { dir }) => match parley_server::backup::restore(&config, &dir) {
            Ok(_) => {
                println!("restored {} into {}", dir.display(), config.data_dir.display());
                return Ok(());
            }
            Err(e) => {
                eprintln!("parleyd restore: {e}");
                std::process::exit(1);
            }
        },
        Some(Command::Account { action }) => {
            if let Err(e) = account(&config, action) {
                eprintln!("parleyd account: {e:#}");
                std::process::exit(1);
            }
            return Ok(());
        }
        Some(Command::History { action }) => {
            if let Err(e) = history(&config, action) {
                eprintln!("parleyd history: {e:#}");
                std::process::exit(1);
            }
            return Ok(());
        }
        _ => {}
    }
    parley_server::memory::configure();
    let mut spins = false;
    let mut builder = match config.limits.worker_threads {
        1 => {
            let mut b = tokio::runtime::Builder::new_current_thread();
            spins = busy_poll::configure(&mut b, Duration::from_micros(config.limits.busy_poll_us));
            b
        }
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            if n > 1 {
                b.worker_threads(n);
            }
            b
        }
    };
    let runtime = builder.enable_all().build().context("starting the async runtime")?;
    if spins {
        runtime.spawn(busy_poll::spinner());
    }
    // With chat on one thread, the file store gets a thread of its own: a
    // large transfer then never delays a chat message.
    let has_files = !config.files.listen.is_empty() || !config.files.tls_listen.is_empty();
    let files_runtime = if config.limits.worker_threads == 1 && has_files {
        let files = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("parley-files")
            .enable_all()
            .build()
            .context("starting the file store's runtime")?;
        Some(files)
    } else {
        None
    };
    let result = runtime.block_on(serve(config, files_runtime.as_ref().map(|r| r.handle().clone())));
    if let Some(files) = files_runtime {
        // Its transfers ended with the server; only idle blocking threads remain.
        files.shutdown_timeout(Duration::from_secs(1));
    }
    result
}

async fn serve(config: Config, files_runtime: Option<tokio::runtime::Handle>) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let env_password = std::env::var(operators::ADMIN_PASSWORD_ENV).ok();
    let db = std::sync::Arc::new(Db::open(&config.data_dir)?);
    let accounts = Accounts::new(db, config.limits.nick_len)?;
    let (ops, boot) = Operators::bootstrap(&config, env_password, &accounts).context("setting up operators")?;
    match boot {
        Bootstrap::Created { name, password } => {
            eprintln!(
                "parleyd: created administrator account '{name}' with password: {password}\n\
                 parleyd: this is shown once; only its hash is kept in {}.",
                config.data_dir.join(parley_server::db::FILE).display()
            );
        }
        Bootstrap::FromEnv { name } => {
            eprintln!("parleyd: administrator '{name}' password set from {}", operators::ADMIN_PASSWORD_ENV);
        }
        Bootstrap::Imported { name } => {
            eprintln!("parleyd: administrator '{name}' of admin.toml is now an account (admin.toml.imported)");
        }
        Bootstrap::Existing | Bootstrap::FromConfig => {}
    }
    let mut server = match Server::bind(config, ops, accounts).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("parleyd: {e}");
            std::process::exit(1);
        }
    };
    if let Some(files) = files_runtime {
        server.run_files_on(files);
    }
    if let Some(tls) = server.tls_info() {
        let origin = if tls.generated { "generated a self-signed" } else { "using the" };
        eprintln!(
            "parleyd: TLS: {origin} certificate {}\nparleyd: TLS certificate SHA-256 fingerprint: {}",
            tls.cert_path.display(),
            tls.fingerprint
        );
    }
    // Signal handlers go in before the readiness line, so a SIGTERM sent
    // the moment a script sees it still stops the server cleanly.
    let signals = Signals::install().context("installing signal handlers")?;
    // The readiness line: tests and scripts wait for it instead of sleeping.
    let mut ready = String::from("parleyd ready");
    for (key, addrs) in [
        ("irc", server.irc_addrs()),
        ("ircs", server.ircs_addrs()),
        ("http", server.http_addrs()),
        ("https", server.https_addrs()),
        ("metrics", server.admin_addrs()),
    ] {
        if !addrs.is_empty() {
            let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
            ready.push_str(&format!(" {key}={}", list.join(",")));
        }
    }
    if let Some(tls) = server.tls_info() {
        ready.push_str(&format!(" tls-sha256={}", tls.fingerprint));
    }
    println!("{ready}");
    std::io::stdout().flush().ok();
    let shutdown = server.shutdown_handle();
    let log = server.activity_log();
    let signals = tokio::spawn(async move {
        let cause = signals.wait(log).await;
        shutdown.trigger(cause);
    });
    let cause = server.run().await;
    signals.abort();
    eprintln!("parleyd: stopped by {} ({})", cause.by, cause.reason);
    Ok(())
}

/// SIGTERM and SIGINT, both stopping the server like DIE.
#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    /// A closed terminal or logrotate: reopens the activity log by name
    /// (its default action would kill the server uncleanly). Reloading the
    /// config on it is still to come.
    hup: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn wait(mut self, log: std::sync::Arc<parley_server::activity_log::ActivityLog>) -> ShutdownCause {
        let name = loop {
            tokio::select! {
                _ = self.term.recv() => break "SIGTERM",
                _ = self.int.recv() => break "SIGINT",
                _ = self.hup.recv() => {
                    log.reopen();
                    eprintln!("parleyd: SIGHUP: reopening the activity log (reloading the configuration is not supported yet)");
                }
            }
        };
        ShutdownCause { by: format!("signal {name}"), reason: "the server process was asked to stop".into() }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> std::io::Result<Signals> {
        Ok(Signals)
    }

    async fn wait(self, _log: std::sync::Arc<parley_server::activity_log::ActivityLog>) -> ShutdownCause {
        let _ = tokio::signal::ctrl_c().await;
        ShutdownCause { by: "signal SIGINT".into(), reason: "the server process was asked to stop".into() }
    }
}

/// `parleyd history ...`: one export or deletion, then exit.
fn history(config: &Config, action: HistoryAction) -> anyhow::Result<()> {
    use parley_server::history::manage;
    let db = Db::open(&config.data_dir)?;
    let conn = db.lock();
    match action {
        HistoryAction::Export { account } => {
            let all = manage::export(&conn, &account)?;
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
        HistoryAction::Delete { account } => {
            println!("deleted {} messages of {account}", manage::delete_own(&conn, &account)?);
        }
        HistoryAction::Purge { channel } => {
            let n = manage::purge(&conn, &parley_proto::casefold(&channel))?;
            println!("deleted {n} messages of {channel}");
        }
    }
    Ok(())
}

/// `parleyd account ...`: one change to the account store, then exit.
fn account(config: &Config, action: AccountAction) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let db = std::sync::Arc::new(Db::open(&config.data_dir)?);
    let accounts = Accounts::new(db, config.limits.nick_len)?;
    match action {
        AccountAction::Add { name, oper } => {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let made = accounts.create(&name, &read_password()?, oper, now)?;
            println!("created account {}{}", made.name, if oper { " (operator)" } else { "" });
        }
        AccountAction::Passwd { name } => {
            accounts.set_password(&name, &read_password()?)?;
            println!("password of {name} changed");
        }
        AccountAction::Del { name } => {
            accounts.delete(&name)?;
            println!("deleted account {name}");
        }
        AccountAction::List => {
            for a in accounts.list()? {
                println!("{}{}", a.name, if a.oper { " oper" } else { "" });
            }
        }
        AccountAction::GrantOper { name, revoke } => {
            accounts.set_oper(&name, !revoke)?;
            println!("{name} is {}an operator", if revoke { "no longer " } else { "" });
        }
        AccountAction::Cert { name, fingerprint: None, .. } => {
            anyhow::ensure!(accounts.get(&name)?.is_some(), "there is no account {name}");
            for fp in accounts.certfps(&name)? {
                println!("{fp}");
            }
        }
        AccountAction::Cert { name, fingerprint: Some(fp), remove: false } => {
            let fp = accounts.add_certfp(&name, &fp)?;
            println!("certificate {fp} logs in to {name}");
        }
        AccountAction::Cert { name, fingerprint: Some(fp), remove: true } => {
            anyhow::ensure!(accounts.remove_certfp(&name, &fp)?, "{name} has no certificate {fp}");
            println!("certificate {fp} removed from {name}");
        }
    }
    Ok(())
}

fn hash_password() -> anyhow::Result<()> {
    println!("{}", operators::hash_password(&read_password()?)?);
    Ok(())
}

/// A new password: asked twice without echo on a terminal, else one line
/// of stdin.
fn read_password() -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Again: ")?;
        anyhow::ensure!(first == again, "the two passwords differ");
        first
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    anyhow::ensure!(!password.is_empty(), "the password is empty");
    Ok(password)
}
