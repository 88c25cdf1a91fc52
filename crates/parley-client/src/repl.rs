//! The chat loop: reads commands (from the line editor, or from a pipe),
//! runs them against the session and the file store, and shows what
//! arrives meanwhile. The menu options of the seed and the slash commands
//! are the same [`Command`]s, so they behave alike.
//!
//! Interactive and pipe mode differ only in their [`Input`] (questions are
//! asked, or answered "no") and their [`Console`] (printer above the prompt,
//! or stdout/stderr), and in what ends them: a person's session ends with
//! status 0 unless the server went away; a script's ends with the status of
//! its first failed line.

use crate::command::{self, Command, HELP};
use crate::console::{Answer, Console, Input};
use crate::display;
use crate::error::ActionError;
use crate::files::{self, FileError, RemoteFile, Store};
use crate::irc::{Event, IrcError, Session, Welcome};
use crate::status::{FirstFailure, Status};
use std::path::{Path, PathBuf};
use tokio::sync::{mpsc, watch};

/// The one-line menu shown at start and on an empty line.
pub const MENU: &str = "1 Download file | 2 Upload file | 3 Send message | 4 Disconnect | 5 Close the server   (text goes to the lobby; /help)";

/// What the loop does after a command.
enum Flow {
    Continue,
    /// We disconnected or closed the server: leave with status 0.
    Stop,
}

/// How the connection ended, as the display task saw it.
#[derive(Clone, Debug)]
struct Ended {
    reason: String,
}

/// What `SIGINT` means while a command runs: cancel it, not the program.
struct Interrupts(Option<tokio::signal::unix::Signal>);

impl Interrupts {
    fn new(interactive: bool) -> Interrupts {
        let signal = interactive
            .then(|| tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok())
            .flatten();
        Interrupts(signal)
    }

    /// Forgets a Ctrl-C that came while nothing was running.
    fn drain(&mut self) {
        if let Some(s) = self.0.as_mut() {
            while s.poll_recv(&mut std::task::Context::from_waker(std::task::Waker::noop())).is_ready() {}
        }
    }

    async fn recv(&mut self) {
        match self.0.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
}

/// The chat loop's state.
struct Repl {
    session: Session,
    console: Console,
    input: Input,
    store: Option<Store>,
}

/// Runs the chat loop until the person (or the input) quits or the server
/// goes away; returns the exit status.
pub async fn run(
    session: Session,
    events: mpsc::Receiver<Event>,
    input: Input,
    console: Console,
    welcome: &Welcome,
) -> Status {
    let interactive = input.is_terminal();
    if interactive {
        greet(&console, welcome);
    }
    let lobby = welcome.lobby.as_deref().unwrap_or(crate::irc::DEFAULT_LOBBY);
    for line in welcome.replay.iter().filter_map(|m| display::describe(m, &welcome.nick, lobby)) {
        console.out(&line);
    }
    let (ended_tx, mut ended) = watch::channel(None::<Ended>);
    let display = tokio::spawn(show_events(events, console.clone(), session.clone(), ended_tx));
    let mut interrupts = Interrupts::new(interactive);
    let mut repl = Repl { session, console, input, store: None };
    let mut failures = FirstFailure::default();
    let mut stopped = false;
    loop {
        let prompt = format!("{}> ", repl.session.nick());
        let answer = tokio::select! {
            biased;
            _ = ended.wait_for(Option::is_some) => break,
            a = repl.input.command(&prompt) => a,
        };
        let line = match answer {
            Answer::Line(line) => line,
            Answer::Interrupted => {
                repl.console.out("(Ctrl-C cancels transfers and questions; 4 or /quit disconnects)");
                continue;
            }
            Answer::Eof => {
                repl.session.quit("").await;
                stopped = true;
                break;
            }
        };
        let cmd = match command::parse(&line) {
            Ok(cmd) => cmd,
            Err(e) => {
                repl.console.err(&format!("error: {e}"));
                failures.record(Status::Usage);
                continue;
            }
        };
        interrupts.drain();
        let result = tokio::select! {
            r = repl.execute(cmd) => r,
            _ = interrupts.recv() => Err(ActionError::Cancelled),
            // The server went away while a command (or its question) was
            // pending: no point finishing it. After our own QUIT or DIE
            // that is the command succeeding.
            _ = ended.wait_for(Option::is_some) => {
                if repl.session.close_expected() {
                    Ok(Flow::Stop)
                } else {
                    break;
                }
            }
        };
        match result {
            Ok(Flow::Continue) => {}
            Ok(Flow::Stop) => {
                stopped = true;
                break;
            }
            Err(ActionError::Cancelled) if interactive => repl.console.out("Cancelled."),
            Err(e) => {
                repl.console.err(&format!("error: {e}"));
                failures.record(e.status());
            }
        }
    }
    // Let the display task show what arrived up to the end (the shutdown
    // notice, say) before the last words.
    if !stopped || repl.session.close_expected() {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), ended.wait_for(Option::is_some)).await;
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), display).await;
    let end = ended.borrow().clone();
    if !stopped {
        // Only the server's end of the connection gets us here, with the
        // prompt still open.
        repl.console.settle();
        if let Input::Terminal(editor) = &repl.input {
            editor.stop().await;
        }
        repl.console.clear_line();
        let reason = end.map(|e| e.reason).unwrap_or_else(|| "the connection was lost".into());
        repl.console.err(&format!("*** The server closed the connection: {reason}"));
        return Status::ConnectionLost;
    }
    if interactive {
        repl.console.out("Disconnected.");
        Status::Ok
    } else {
        failures.status()
    }
}

fn greet(console: &Console, welcome: &Welcome) {
    let lobby = welcome.lobby.as_deref().unwrap_or(crate::irc::DEFAULT_LOBBY);
    let others: Vec<&str> =
        welcome.members.iter().map(String::as_str).filter(|n| !parley_proto::irc_eq(n, &welcome.nick)).collect();
    for line in &welcome.motd {
        console.out(&display::clean(line));
    }
    console.out(&format!("Welcome, {}!", welcome.nick));
    if others.is_empty() {
        console.out(&format!("You are alone in {lobby} for now."));
    } else {
        console.out(&format!("You are in {lobby} with {}.", others.join(", ")));
    }
    if let Some(port) = welcome.sts_port {
        console.out(&format!("This server also offers TLS on port {port} (parley --tls SERVER:{port})."));
    }
    if welcome.filehost.is_none() {
        console.out("This server has no file store: options 1 and 2 will not work.");
    }
    console.out(MENU);
}

/// Shows incoming messages until the connection ends, then records how.
async fn show_events(
    mut events: mpsc::Receiver<Event>,
    console: Console,
    session: Session,
    ended: watch::Sender<Option<Ended>>,
) {
    while let Some(event) = events.recv().await {
        match event {
            Event::Message(msg) => {
                if let Some(line) = display::describe(&msg, &session.nick(), &session.lobby()) {
                    console.out(&line);
                }
            }
            Event::Closed { reason } => {
                ended.send_replace(Some(Ended { reason }));
                return;
            }
        }
    }
}

impl Repl {
    fn store(&mut self) -> Result<&Store, ActionError> {
        if self.store.is_none() {
            self.store = Some(Store::new(&self.session)?);
        }
        Ok(self.store.as_ref().expect("set above"))
    }

    async fn execute(&mut self, cmd: Command) -> Result<Flow, ActionError> {
        match cmd {
            Command::Nothing => {
                if self.input.is_terminal() {
                    self.console.out(MENU);
                }
            }
            Command::Help => self.console.out(HELP),
            Command::Say(text) => {
                let text = match text {
                    Some(t) => t,
                    None => match self.input.ask("Message: ").await {
                        Some(t) if !t.is_empty() => t,
                        _ => return Ok(Flow::Continue),
                    },
                };
                self.session.privmsg(&self.session.lobby(), &text).await?;
            }
            Command::Action(text) => {
                self.session.privmsg(&self.session.lobby(), &format!("\u{1}ACTION {text}\u{1}")).await?;
            }
            Command::Msg { target, text } => self.session.privmsg(&target, &text).await?,
            Command::Nick(nick) => self.session.change_nick(&nick).await?,
            Command::Who => {
                let lobby = self.session.lobby();
                let names = self.session.names(&lobby).await?;
                self.console.out(&format!(
                    "{} in {lobby}: {}",
                    count(names.len(), "person", "people"),
                    names.join(", ")
                ));
            }
            Command::Delete(name) => {
                self.store()?.delete(&name).await?;
                self.console.out(&format!("Deleted {name}."));
            }
            Command::History(n) => {
                let lobby = self.session.lobby();
                let found = self.session.history(&lobby, n).await?;
                self.show_found(&format!("the last {} in {lobby}", count(found.len(), "message", "messages")), &found);
            }
            Command::Search(text) => {
                let found = self.session.search(&text, crate::command::MAX_HISTORY).await?;
                self.show_found(&format!("{} with {text:?}", count(found.len(), "message", "messages")), &found);
            }
            Command::Files => {
                let (files, _) = self.store()?.list().await?;
                if files.is_empty() {
                    self.console.out("There are no files on the server yet.");
                }
                for line in file_table(&files, false) {
                    self.console.out(&line);
                }
            }
            Command::Upload { path, name, overwrite } => self.upload(path, name, overwrite).await?,
            Command::Download { name, path, force } => self.download(name, path, force).await?,
            Command::Quit(reason) => {
                self.session.quit(reason.as_deref().unwrap_or("")).await;
                return Ok(Flow::Stop);
            }
            Command::Shutdown { admin } => return self.shutdown(admin).await,
        }
        Ok(Flow::Continue)
    }

    /// Messages from history, between a header and a footer.
    fn show_found(&self, what: &str, found: &[parley_proto::Message]) {
        self.console.out(&format!("--- {what} ---"));
        let (me, lobby) = (self.session.nick(), self.session.lobby());
        for line in found.iter().filter_map(|m| display::describe(m, &me, &lobby)) {
            self.console.out(&line);
        }
        self.console.out("--- end ---");
    }

    async fn upload(
        &mut self,
        path: Option<String>,
        name: Option<String>,
        overwrite: Option<bool>,
    ) -> Result<(), ActionError> {
        let path = match path {
            Some(p) => p,
            None => match self.input.ask("Path of the file to upload: ").await {
                Some(p) if !p.is_empty() => p,
                _ => return Ok(()),
            },
        };
        let path = expand_home(&path);
        let name = match name {
            Some(n) => n,
            None => upload_name(&path)?,
        };
        let console = self.console.clone();
        let progress = console.progress();
        let result = self.store()?.upload(&path, &name, overwrite.unwrap_or(false), &progress).await;
        drop(progress);
        let uploaded = match result {
            Err(FileError::Exists { name }) if overwrite.is_none() => {
                let question = format!("{name} already exists on the server. Overwrite?");
                if !self.input.confirm(&question).await {
                    let how = if self.input.is_terminal() { "" } else { " (add --overwrite to replace it)" };
                    return Err(ActionError::Refused(format!(
                        "{name} already exists on the server; upload cancelled, the server's copy is unchanged{how}"
                    )));
                }
                let progress = console.progress();
                self.store()?.upload(&path, &name, true, &progress).await?
            }
            Err(FileError::Exists { name }) => {
                return Err(ActionError::Refused(format!("{name} already exists on the server; not replaced")))
            }
            other => other?,
        };
        for line in upload_summary(&name, &uploaded) {
            self.console.out(&line);
        }
        Ok(())
    }

    async fn download(&mut self, name: Option<String>, path: Option<String>, force: bool) -> Result<(), ActionError> {
        let name = match name {
            Some(n) => n,
            None => match self.choose_file().await? {
                Some(n) => n,
                None => return Ok(()),
            },
        };
        let output = path.map(|p| expand_home(&p));
        let dest = files::download_path(&name, output.as_deref())?;
        let mut overwrite = force;
        if !force && dest.exists() {
            let question = format!("{} already exists here. Replace it?", dest.display());
            if !self.input.confirm(&question).await {
                let how = if self.input.is_terminal() { "" } else { " (add --force to replace it)" };
                return Err(ActionError::Refused(format!(
                    "{} already exists; download cancelled{how}",
                    dest.display()
                )));
            }
            overwrite = true;
        }
        let progress = self.console.progress();
        let done = self.store()?.download(&name, &dest, overwrite, &progress).await?;
        drop(progress);
        self.console.out(&download_summary(&name, &done));
        Ok(())
    }

    /// Menu option 1: shows the list and asks which file.
    async fn choose_file(&mut self) -> Result<Option<String>, ActionError> {
        let (files, _) = self.store()?.list().await?;
        if files.is_empty() {
            self.console.out("There are no files on the server yet.");
            return Ok(None);
        }
        for line in file_table(&files, true) {
            self.console.out(&line);
        }
        let Some(answer) = self.input.ask("File to download (name or number, empty to cancel): ").await else {
            return Ok(None);
        };
        if answer.is_empty() {
            return Ok(None);
        }
        if let Ok(n) = answer.parse::<usize>() {
            if let Some(f) = n.checked_sub(1).and_then(|i| files.get(i)) {
                return Ok(Some(f.name.clone()));
            }
        }
        Ok(Some(answer))
    }

    /// Menu option 5: admin name, password without echo, OPER, DIE.
    async fn shutdown(&mut self, admin: Option<String>) -> Result<Flow, ActionError> {
        let admin = match admin {
            Some(a) => a,
            None => match self.input.ask("Admin username: ").await {
                Some(a) if !a.is_empty() => a,
                _ => return Ok(Flow::Continue),
            },
        };
        let Some(password) = self.input.secret("Password: ").await else {
            return Ok(Flow::Continue);
        };
        close_server(&self.session, &admin, &password, None).await?;
        self.console.out("The server is shutting down.");
        Ok(Flow::Stop)
    }
}

/// OPER then DIE; the server's refusal becomes a clear error.
pub async fn close_server(
    session: &Session,
    admin: &str,
    password: &str,
    reason: Option<&str>,
) -> Result<(), ActionError> {
    session.oper(admin, password).await.map_err(|e| match e {
        IrcError::Rejected { code, text } => {
            IrcError::Rejected { code, text: format!("the server refused the administrator login: {text}") }
        }
        other => other,
    })?;
    let reason = match reason {
        Some(r) => r.to_string(),
        None => format!("closed from the parley client by {}", session.nick()),
    };
    session.die(&reason).await?;
    Ok(())
}

/// The name a local file gets on the server: its file name.
pub fn upload_name(path: &Path) -> Result<String, ActionError> {
    path.file_name().and_then(|n| n.to_str()).map(str::to_string).ok_or_else(|| {
        ActionError::Usage(format!("{} has no usable file name; give one: /upload PATH NAME", path.display()))
    })
}

/// `~/x` → `$HOME/x`, as a shell would.
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// What to tell after an upload: what happened, and the share link on a
/// line of its own so it is easy to copy.
pub fn upload_summary(name: &str, u: &files::Uploaded) -> Vec<String> {
    let verb = if u.replaced { "Replaced" } else { "Uploaded" };
    let resumed = if u.resumed_from > 0 {
        format!(", resumed after {}", display::human_bytes(u.resumed_from))
    } else {
        String::new()
    };
    let mut lines = vec![format!("{verb} {name} ({}, SHA-256 {}{resumed})", display::human_bytes(u.size), u.sha256)];
    if let Some(url) = &u.share_url {
        lines.push(format!("Share link: {url}"));
    }
    lines
}

pub fn download_summary(name: &str, d: &files::Downloaded) -> String {
    let check = if d.verified {
        format!("SHA-256 {} verified", d.sha256)
    } else {
        "the server sent no digest to verify".to_string()
    };
    let resumed = if d.resumed_from > 0 {
        format!(", resumed after {}", display::human_bytes(d.resumed_from))
    } else {
        String::new()
    };
    format!("Saved {name} to {} ({}{resumed}, {check})", d.path.display(), display::human_bytes(d.size))
}

/// The file list as aligned lines, numbered for the download menu.
pub fn file_table(files: &[RemoteFile], numbered: bool) -> Vec<String> {
    let width = files.iter().map(|f| f.name.chars().count()).max().unwrap_or(4).clamp(4, 40);
    files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let number = if numbered { format!("{:>3}. ", i + 1) } else { String::new() };
            let by = if f.uploaded_by.is_empty() {
                String::new()
            } else {
                format!("  by {}", display::clean(&f.uploaded_by))
            };
            let when = if f.modified.is_empty() { String::new() } else { format!("  {}", f.modified) };
            format!("{number}{:<width$}  {:>10}{by}{when}", display::clean(&f.name), display::human_bytes(f.size))
        })
        .collect()
}

fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_tables_align_and_number() {
        let files = vec![
            RemoteFile {
                name: "a.txt".into(),
                size: 3,
                sha256: String::new(),
                uploaded_by: "bob".into(),
                modified: String::new(),
            },
            RemoteFile {
                name: "longer.bin".into(),
                size: 2048,
                sha256: String::new(),
                uploaded_by: String::new(),
                modified: String::new(),
            },
        ];
        let t = file_table(&files, true);
        assert_eq!(t[0], "  1. a.txt              3 B  by bob");
        assert_eq!(t[1], "  2. longer.bin     2.0 KiB");
    }

    #[test]
    fn upload_names_come_from_the_path() {
        assert_eq!(upload_name(Path::new("/tmp/x/report.pdf")).unwrap(), "report.pdf");
        assert!(upload_name(Path::new("/")).is_err());
    }
}
