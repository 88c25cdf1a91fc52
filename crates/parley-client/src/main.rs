//! `parley`, the terminal client for Parley: the choice between interactive,
//! pipe and one-shot use, registration under a nickname, and the exit
//! status. The arguments themselves are defined in `cli.rs`.

mod cli;
mod command;
mod console;
mod display;
mod error;
mod files;
mod irc;
mod oneshot;
mod paths;
mod repl;
mod resume;
mod settings;
mod status;
mod sts;
mod sys;
mod tls;

use clap::Parser;
use cli::{Cli, Cmd, DEFAULT_SERVER};
use console::{Console, Input, LineEditor, TerminalState};
use error::ActionError;
use irc::{Attempt, Connector, Endpoint, Event, Session, Welcome};
use status::Status;
use std::io::{IsTerminal, Write};
use tls::Trust;
use tokio::sync::mpsc;

fn main() {
    // Before any thread exists: see `init_local_offset`.
    display::init_local_offset();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("parley: cannot start: {e}");
            std::process::exit(Status::Failure.code());
        }
    };
    let status = runtime.block_on(run(cli));
    let _ = std::io::stdout().flush();
    // Exit without dropping the runtime: that would wait for a thread that
    // may be blocked reading stdin or the terminal.
    std::process::exit(status.code());
}

async fn run(mut cli: Cli) -> Status {
    // The config file's defaults, under flags and PARLEY_* variables.
    let settings = match paths::config_file().map(|p| settings::Settings::load(&p)) {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            eprintln!("parley: config file {e}");
            return Status::Usage;
        }
        None => settings::Settings::default(),
    };
    cli.nick = cli.nick.or(settings.nick);
    cli.ca = cli.ca.or(settings.ca);
    let server = cli.server_arg.or(cli.server).or(settings.server).unwrap_or_else(|| DEFAULT_SERVER.to_string());
    let endpoint = Endpoint::parse(&server, cli.tls || settings.tls.unwrap_or(false));
    let insecure = cli.insecure || settings.insecure.unwrap_or(false);
    let trust = match Trust::new(cli.ca.as_deref(), insecure) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("parley: {e}");
            return Status::Usage;
        }
    };
    let task = match cli.command {
        None if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() => {
            return interactive(endpoint, trust, cli.nick).await;
        }
        None => return pipe(endpoint, trust, cli.nick).await,
        Some(cmd) => task_for(cmd),
    };
    let session = match register_scripted(endpoint, &trust, cli.nick).await {
        Ok((session, _events, _)) => session,
        Err(e) => return report(e),
    };
    match oneshot::run(&session, task).await {
        Ok(()) => Status::Ok,
        Err(e) => report(e),
    }
}

/// With `--insecure`, what the person should check.
fn unverified_warning(trust: &Trust) -> Option<String> {
    let fingerprint = trust.unverified_fingerprint()?;
    Some(format!(
        "parley: warning: the server's TLS certificate was not checked (--insecure); its SHA-256 fingerprint is {fingerprint}"
    ))
}

fn task_for(cmd: Cmd) -> oneshot::Task {
    use oneshot::Task;
    match cmd {
        Cmd::Send { text, to } => Task::Send { target: to, text: text.join(" ") },
        Cmd::Upload { path, name, overwrite, no_overwrite } => {
            let overwrite = if overwrite {
                Some(true)
            } else if no_overwrite {
                Some(false)
            } else {
                None
            };
            Task::Upload { path, name, overwrite }
        }
        Cmd::Download { name, output, force } => Task::Download { name, output, force },
        Cmd::Files { json } => Task::Files { json },
        Cmd::Delete { name } => Task::Delete { name },
        Cmd::Shutdown { admin, reason } => Task::Shutdown { admin, reason },
    }
}

fn report(e: ActionError) -> Status {
    eprintln!("parley: {e}");
    e.status()
}

/// Registers without asking anybody: the given nick or nothing; without
/// one, the login name and a few variations of it.
async fn register_scripted(
    endpoint: Endpoint,
    trust: &Trust,
    nick: Option<String>,
) -> Result<(Session, mpsc::Receiver<Event>, Welcome), ActionError> {
    let mut conn = Connector::connect(endpoint, trust).await?;
    if let Some(warning) = unverified_warning(trust) {
        eprintln!("{warning}");
    }
    let explicit = nick.is_some();
    let candidates = match nick {
        Some(n) => vec![n],
        None => irc::nick_candidates(&irc::default_nick()),
    };
    let mut refusal = None;
    for nick in candidates {
        match conn.attempt(&nick).await? {
            Attempt::Registered(welcome) => {
                let (session, events) = conn.into_session(&welcome);
                return Ok((session, events, *welcome));
            }
            Attempt::Rejected { code, reason } => {
                let e = irc::IrcError::Rejected {
                    code: code.clone(),
                    text: format!("nickname {nick:?} refused: {reason}"),
                };
                if explicit || code != parley_proto::numeric::ERR_NICKNAMEINUSE {
                    return Err(e.into());
                }
                refusal = Some(e);
            }
        }
    }
    Err(refusal.expect("at least one candidate").into())
}

/// Lines from a pipe: no prompts, results on stdout, errors on stderr.
async fn pipe(endpoint: Endpoint, trust: Trust, nick: Option<String>) -> Status {
    match register_scripted(endpoint, &trust, nick).await {
        Ok((session, events, welcome)) => {
            repl::run(session, events, Input::pipe(), Console::plain(false), &welcome).await
        }
        Err(e) => report(e),
    }
}

/// A person at a terminal: asks for a username until one is accepted, then
/// the chat loop.
async fn interactive(endpoint: Endpoint, trust: Trust, nick: Option<String>) -> Status {
    let terminal = TerminalState::save();
    let status = interactive_session(endpoint, trust, nick).await;
    terminal.restore();
    // The prompt may still be on the last line if the server went away
    // while the person was typing: clear it for the shell's.
    print!("\r\x1b[2K");
    status
}

async fn interactive_session(endpoint: Endpoint, trust: Trust, nick: Option<String>) -> Status {
    let (editor, printer) = match LineEditor::start(paths::history_file()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("parley: cannot use this terminal ({e}); pipe commands in instead");
            return Status::Failure;
        }
    };
    let console = Console::interactive(printer, editor.reading(), std::io::stderr().is_terminal());
    let status = log_in_and_chat(Input::Terminal(editor), console.clone(), endpoint, trust, nick).await;
    // The console writes on a thread of its own: its last lines must be out
    // before the process exits.
    console.flush();
    status
}

async fn log_in_and_chat(
    mut input: Input,
    console: Console,
    endpoint: Endpoint,
    trust: Trust,
    nick: Option<String>,
) -> Status {
    let mut conn = match Connector::connect(endpoint, &trust).await {
        Ok(c) => c,
        Err(e) => {
            console.err(&format!("parley: {e}"));
            return e.status();
        }
    };
    console.out(&format!("Connected to {}.", conn.endpoint()));
    if let Some(warning) = unverified_warning(&trust) {
        console.err(&warning);
    }
    let mut next = nick;
    let welcome = loop {
        let nick = match next.take() {
            Some(n) => n,
            None => match input.ask("Username: ").await {
                Some(n) if n.is_empty() => continue,
                Some(n) => n,
                None => return Status::Interrupted,
            },
        };
        match conn.attempt(&nick).await {
            Ok(Attempt::Registered(welcome)) => break welcome,
            Ok(Attempt::Rejected { reason, .. }) => {
                console.err(&format!("The username {nick:?} cannot be used: {reason}. Please choose another."));
            }
            Err(e) => {
                console.err(&format!("parley: {e}"));
                return e.status();
            }
        }
    };
    let (session, events) = conn.into_session(&welcome);
    repl::run(session, events, input, console, &welcome).await
}
