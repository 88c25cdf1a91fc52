//! The one-shot subcommands (`parley send`, `upload`, `download`, `files`,
//! `shutdown`): connect, do one thing, disconnect, and say how it went in
//! the exit status. Results go to stdout, errors to stderr.

use crate::console::{Bar, Console};
use crate::error::ActionError;
use crate::files::{self, FileError, Store};
use crate::irc::Session;
use crate::repl::{self, close_server, download_summary, file_table, upload_summary};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

/// The environment variable `parley shutdown` reads the password from.
pub const ADMIN_PASSWORD_ENV: &str = "PARLEY_ADMIN_PASSWORD";

/// What to do once connected.
#[derive(Debug)]
pub enum Task {
    Send { target: Option<String>, text: String },
    Upload { path: PathBuf, name: Option<String>, overwrite: Option<bool> },
    Download { name: String, output: Option<PathBuf>, force: bool },
    Files { json: bool },
    Delete { name: String },
    Shutdown { admin: String, reason: Option<String> },
}

/// Runs `task` on a registered session.
pub async fn run(session: &Session, task: Task) -> Result<(), ActionError> {
    // A person at a terminal gets progress bars and questions.
    let person = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let console = Console::plain(person);
    match task {
        Task::Send { target, text } => {
            let target = target.unwrap_or_else(|| session.lobby());
            session.privmsg(&target, &text).await?;
        }
        Task::Delete { name } => {
            Store::new(session)?.delete(&name).await?;
            console.out(&format!("Deleted {name}."));
        }
        Task::Files { json } => {
            let (list, raw) = Store::new(session)?.list().await?;
            if json {
                console.out(&raw.to_string());
            } else {
                for line in file_table(&list, false) {
                    console.out(&line);
                }
            }
        }
        Task::Upload { path, name, overwrite } => {
            let name = match name {
                Some(n) => n,
                None => repl::upload_name(&path)?,
            };
            let store = Store::new(session)?;
            let result = store.upload(&path, &name, overwrite.unwrap_or(false), &console.progress()).await;
            let uploaded = match result {
                Err(FileError::Exists { name }) if overwrite.is_none() && person => {
                    if !confirm(&format!("{name} already exists on the server. Overwrite?")).await {
                        return Err(ActionError::Refused(format!(
                            "{name} already exists on the server; upload cancelled, the server's copy is unchanged"
                        )));
                    }
                    store.upload(&path, &name, true, &console.progress()).await?
                }
                Err(FileError::Exists { name }) => {
                    return Err(ActionError::Refused(format!(
                        "{name} already exists on the server; not replaced (use --overwrite to replace it)"
                    )))
                }
                other => other?,
            };
            for line in upload_summary(&name, &uploaded) {
                console.out(&line);
            }
        }
        Task::Download { name, output, force } => {
            let dest = files::download_path(&name, output.as_deref())?;
            let mut overwrite = force;
            if !force && dest.exists() {
                if !person || !confirm(&format!("{} already exists here. Replace it?", dest.display())).await {
                    return Err(ActionError::Refused(format!(
                        "{} already exists; not replaced (use --force or -o OTHER_PATH)",
                        dest.display()
                    )));
                }
                overwrite = true;
            }
            let progress = if person { console.progress() } else { Bar::none() };
            let done = Store::new(session)?.download(&name, &dest, overwrite, &progress).await?;
            drop(progress);
            console.out(&download_summary(&name, &done));
        }
        Task::Shutdown { admin, reason } => {
            let password = admin_password(&admin).await?;
            close_server(session, &admin, &password, reason.as_deref()).await?;
            console.out("The server is shutting down.");
            return Ok(());
        }
    }
    session.quit("").await;
    Ok(())
}

/// The admin password: from the environment, else asked without echo on a
/// terminal, else the first line of stdin.
async fn admin_password(admin: &str) -> Result<String, ActionError> {
    if let Ok(p) = std::env::var(ADMIN_PASSWORD_ENV) {
        return Ok(p);
    }
    let prompt = format!("Password for {admin}: ");
    let read = tokio::task::spawn_blocking(move || {
        if std::io::stdin().is_terminal() {
            rpassword::prompt_password(prompt)
        } else {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            Ok(line.trim_end_matches(['\r', '\n']).to_string())
        }
    })
    .await
    .map_err(|e| ActionError::Usage(e.to_string()))?;
    match read {
        Ok(p) if !p.is_empty() => Ok(p),
        _ => Err(ActionError::Usage(format!("no password given: set {ADMIN_PASSWORD_ENV} or type it when asked"))),
    }
}

/// A yes/no question on the terminal (stderr), default no.
async fn confirm(question: &str) -> bool {
    let question = question.to_string();
    tokio::task::spawn_blocking(move || {
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line).is_err() {
            return false;
        }
        matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
    })
    .await
    .unwrap_or(false)
}
