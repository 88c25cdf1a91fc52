//! The `parleyd` command: the subcommands (flags and environment are in
//! `cli.rs`), first-run admin, signals, and the readiness line that scripts
//! and tests wait for (and systemd, through `systemd.rs`).

mod cli;

use anyhow::Context;
use clap::Parser;
use cli::{AccountAction, Cli, Command, HistoryAction};
use parley_server::accounts::Accounts;
use parley_server::busy_poll;
use parley_server::config::{Config, Overrides};
use parley_server::db::Db;
use parley_server::operators::{self, Bootstrap, Operators};
use parley_server::shutdown::ShutdownCause;
use parley_server::systemd;
use parley_server::Server;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Diagnostics shown when `PARLEY_LOG` sets nothing: warnings and errors,
/// and what a reload did (SIGHUP's answer is on stderr).
const DEFAULT_LOG_FILTER: &str = "warn,parley_server::reload=info";

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_diagnostics();
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
    let source = parley_server::reload::Source { file: cli.config.clone(), overrides: overrides.clone() };
    let config = match Config::load(cli.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            say(Level::Error, &e.to_string());
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
    let result = runtime.block_on(serve(config, source, files_runtime.as_ref().map(|r| r.handle().clone())));
    if let Some(files) = files_runtime {
        // Its transfers ended with the server; only idle blocking threads remain.
        files.shutdown_timeout(Duration::from_secs(1));
    }
    result
}

/// Diagnostics on stderr through `tracing`: as text, or as one JSON object
/// per line with `PARLEY_LOG_FORMAT=json` (for a log collector); the
/// filter from `PARLEY_LOG`.
fn init_diagnostics() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("PARLEY_LOG").unwrap_or_else(|_| DEFAULT_LOG_FILTER.into());
    // Colours only for a person at a terminal, not for the journal or a file.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match std::env::var("PARLEY_LOG_FORMAT").as_deref() {
        Ok("json") => {
            JSON_DIAGNOSTICS.store(true, Ordering::Relaxed);
            builder.json().init()
        }
        Ok("text") | Ok("") | Err(_) => builder.init(),
        Ok(other) => {
            eprintln!("parleyd: PARLEY_LOG_FORMAT must be `text` or `json`, not {other:?}");
            std::process::exit(2);
        }
    }
}

/// Set when diagnostics are JSON lines (`PARLEY_LOG_FORMAT=json`).
static JSON_DIAGNOSTICS: AtomicBool = AtomicBool::new(false);

enum Level {
    Info,
    Error,
}

/// One of parleyd's own messages to whoever started it (the first
/// administrator's password, the TLS fingerprint, why it stopped):
/// `parleyd: TEXT` on stderr, or with JSON diagnostics one JSON line shaped
/// like `tracing`'s. Never filtered by `PARLEY_LOG`: some are shown once.
fn say(level: Level, text: &str) {
    if !JSON_DIAGNOSTICS.load(Ordering::Relaxed) {
        eprintln!("parleyd: {text}");
        return;
    }
    let now = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339);
    let line = serde_json::json!({
        "timestamp": now.unwrap_or_default(),
        "level": match level { Level::Info => "INFO", Level::Error => "ERROR" },
        "fields": { "message": text },
        "target": "parleyd",
    });
    eprintln!("{line}");
}

async fn serve(
    config: Config,
    source: parley_server::reload::Source,
    files_runtime: Option<tokio::runtime::Handle>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let env_password = std::env::var(operators::ADMIN_PASSWORD_ENV).ok();
    // Blocking work (PostgreSQL's client runs a runtime of its own, which
    // may not be started on this one's threads).
    let (accounts, ops, boot) = tokio::task::spawn_blocking({
        let config = config.clone();
        move || -> anyhow::Result<_> {
            let db = std::sync::Arc::new(Db::open_configured(&config.data_dir, &config.database)?);
            let accounts = Accounts::new(db, config.limits.nick_len)?;
            let (ops, boot) = Operators::bootstrap(&config, env_password, &accounts).context("setting up operators")?;
            Ok((accounts, ops, boot))
        }
    })
    .await??;
    match boot {
        Bootstrap::Created { name, password } => announce_first_admin(&config, &name, &password)?,
        Bootstrap::FromEnv { name } => {
            say(Level::Info, &format!("administrator '{name}' password set from {}", operators::ADMIN_PASSWORD_ENV));
        }
        Bootstrap::Imported { name } => {
            say(Level::Info, &format!("administrator '{name}' of admin.toml is now an account (admin.toml.imported)"));
        }
        Bootstrap::Existing | Bootstrap::FromConfig => {}
    }
    let mut server = match Server::bind(config, ops, accounts).await {
        Ok(s) => s,
        Err(e) => {
            say(Level::Error, &e.to_string());
            std::process::exit(1);
        }
    };
    if let Some(files) = files_runtime {
        server.run_files_on(files);
    }
    let reload = server.reload_handle();
    reload.set_source(source);
    if let Some(tls) = server.tls_info() {
        let origin = if tls.generated { "generated a self-signed" } else { "using the" };
        say(Level::Info, &format!("TLS: {origin} certificate {}", tls.cert_path.display()));
        say(Level::Info, &format!("TLS certificate SHA-256 fingerprint: {}", tls.fingerprint));
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
        ("websocket", server.websocket_addrs()),
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
    // Under systemd (`Type=notify`) the same moment, over $NOTIFY_SOCKET.
    if let Err(e) = systemd::notify_ready(&ready) {
        say(Level::Error, &format!("could not tell systemd the server is ready: {e}"));
    }
    let shutdown = server.shutdown_handle();
    let mut stopping = shutdown.listener();
    let signals = tokio::spawn(async move {
        let cause = signals.wait(reload).await;
        shutdown.trigger(cause);
    });
    let stopping = tokio::spawn(async move {
        stopping.recv().await;
        let _ = systemd::notify_stopping();
    });
    let cause = server.run().await;
    signals.abort();
    stopping.abort();
    say(Level::Info, &format!("stopped by {} ({})", cause.by, cause.reason));
    Ok(())
}

/// Tells whoever started the server the generated administrator password,
/// once. On a terminal that is stderr; under systemd stderr is the journal,
/// which many may read and which keeps it, so the password goes into a
/// file only the server's user can read, and the journal gets its path.
fn announce_first_admin(config: &Config, name: &str, password: &str) -> anyhow::Result<()> {
    if systemd::supervised() {
        let path = systemd::write_initial_password(&config.data_dir, password).with_context(|| {
            format!(
                "writing the first administrator's password into {} (set one with `parleyd account passwd {name}`)",
                config.data_dir.display()
            )
        })?;
        say(
            Level::Info,
            &format!(
                "created administrator account '{name}'; its password is in {}, \
                 readable only by this user (delete the file once you have it)",
                path.display()
            ),
        );
    } else {
        say(Level::Info, &format!("created administrator account '{name}' with password: {password}"));
        say(
            Level::Info,
            &format!(
                "this is shown once; only its hash is kept in {}.",
                match &config.database.url {
                    Some(url) => parley_server::config::redacted_url(url),
                    None => config.data_dir.join(parley_server::db::FILE).display().to_string(),
                }
            ),
        );
    }
    Ok(())
}

/// SIGTERM and SIGINT, both stopping the server like DIE; SIGHUP, reloading.
#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    /// Reloads the configuration and reopens the activity log by name
    /// (`reload/`); also what a closed terminal or logrotate sends, whose
    /// default action would kill the server uncleanly.
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

    async fn wait(mut self, reload: parley_server::reload::Handle) -> ShutdownCause {
        let name = loop {
            tokio::select! {
                _ = self.term.recv() => break "SIGTERM",
                _ = self.int.recv() => break "SIGINT",
                // The outcome is logged (stderr and the activity log) by the reload.
                _ = self.hup.recv() => { let _ = reload.reload("signal SIGHUP").await; }
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

    async fn wait(self, _reload: parley_server::reload::Handle) -> ShutdownCause {
        let _ = tokio::signal::ctrl_c().await;
        ShutdownCause { by: "signal SIGINT".into(), reason: "the server process was asked to stop".into() }
    }
}

/// `parleyd history ...`: one export or deletion, then exit.
fn history(config: &Config, action: HistoryAction) -> anyhow::Result<()> {
    use parley_server::history::manage;
    let db = Db::open_configured(&config.data_dir, &config.database)?;
    let mut lease = db.get()?;
    let conn = lease.conn();
    match action {
        HistoryAction::Export { account } => {
            let all = manage::export(conn, &account)?;
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
        HistoryAction::Delete { account } => {
            println!("deleted {} messages of {account}", manage::delete_own(conn, &account)?);
        }
        HistoryAction::Purge { channel } => {
            let n = manage::purge(conn, &parley_proto::casefold(&channel))?;
            println!("deleted {n} messages of {channel}");
        }
    }
    Ok(())
}

/// `parleyd account ...`: one change to the account store, then exit.
fn account(config: &Config, action: AccountAction) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let db = std::sync::Arc::new(Db::open_configured(&config.data_dir, &config.database)?);
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
