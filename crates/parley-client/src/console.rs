//! The terminal, and the only module that writes to it or reads from it.
//!
//! * [`Console`] prints lines: through rustyline's external printer while a
//!   prompt is open (so incoming messages appear above the line being typed
//!   instead of through it), above the progress bar while a transfer runs,
//!   and to plain stdout/stderr in scripts. In interactive mode a thread of
//!   its own does the writing, because rustyline's printer blocks until the
//!   editor takes the line, which it only does while it reads one: an async
//!   task waiting on it could stall the runtime (and, with the reader of
//!   the connection behind it, the editor's next prompt with it).
//! * [`LineEditor`] runs rustyline on its own thread, since reading a line
//!   blocks; the async side asks it for lines and passwords over channels.
//! * [`Input`] is where commands and answers come from: that editor, or
//!   the lines of a pipe.
//! * [`Bar`] shows a transfer's [`Progress`] (bytes, rate, ETA), drawn on
//!   stderr only when it is a terminal.
//!
//! The system calls behind the terminal's modes are in `sys.rs`.

use crate::files::Progress;
use crate::sys::{self, StdinRedirect, TermMode};
use indicatif::{ProgressBar, ProgressStyle};
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::config::Configurer;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, ExternalPrinter, Helper};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use tokio::io::{AsyncBufReadExt, BufReader, Lines, Stdin};
use tokio::sync::oneshot;

type Printer = Box<dyn ExternalPrinter + Send>;

/// Where output lines go.
#[derive(Clone)]
pub struct Console {
    inner: Arc<ConsoleInner>,
}

struct ConsoleInner {
    /// Interactive mode: the thread that writes to the terminal.
    writer: Option<mpsc::Sender<Job>>,
    /// The bar of the transfer in progress, if any.
    bar: Mutex<Option<ProgressBar>>,
    interactive: bool,
    bars: bool,
}

impl Console {
    /// Scripts: results on stdout, errors on stderr; progress bars only
    /// when asked for (a person is watching stderr).
    pub fn plain(bars: bool) -> Console {
        Console::new(None, false, bars)
    }

    /// Interactive: lines go through the line editor's printer while the
    /// editor reads a line (`reading`), straight to the terminal otherwise.
    pub fn interactive(printer: Option<Printer>, reading: Arc<AtomicBool>, bars: bool) -> Console {
        let (tx, rx) = mpsc::channel();
        let started = std::thread::Builder::new()
            .name("console-writer".into())
            .spawn(move || write_lines(rx, printer, &reading))
            .is_ok();
        Console::new(started.then_some(tx), true, bars)
    }

    fn new(writer: Option<mpsc::Sender<Job>>, interactive: bool, bars: bool) -> Console {
        Console { inner: Arc::new(ConsoleInner { writer, bar: Mutex::new(None), interactive, bars }) }
    }

    /// A line of output: a result, or something that arrived.
    pub fn out(&self, line: &str) {
        self.emit(line, false);
    }

    /// An error or warning (stderr in scripts).
    pub fn err(&self, line: &str) {
        self.emit(line, true);
    }

    fn emit(&self, line: &str, is_error: bool) {
        if let Some(bar) = self.inner.bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            if !bar.is_hidden() {
                bar.println(line);
                return;
            }
        }
        if let Some(writer) = &self.inner.writer {
            if writer.send(Job::Line(format!("{line}\n"))).is_ok() {
                return;
            }
        }
        if self.inner.interactive {
            let mut out = io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        } else if is_error {
            eprintln!("{line}");
        } else {
            let mut out = io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }

    /// Makes sure every line handed over so far is on screen, then stops
    /// using the line editor: for the last words when the program ends
    /// while a prompt is still open (the editor thread would not get to
    /// draw them).
    pub fn settle(&self) {
        self.wait_for_writer(Job::Settle);
    }

    /// Waits until every line handed over so far is written (at most a
    /// couple of seconds: a line waiting for a prompt that never comes
    /// must not keep the program from ending).
    pub fn flush(&self) {
        self.wait_for_writer(Job::Flush);
    }

    fn wait_for_writer(&self, job: fn(mpsc::Sender<()>) -> Job) {
        if let Some(writer) = &self.inner.writer {
            let (done, finished) = mpsc::channel();
            if writer.send(job(done)).is_ok() {
                let _ = finished.recv_timeout(std::time::Duration::from_secs(2));
            }
        }
    }

    /// Clears the line the cursor is on (a prompt left behind).
    pub fn clear_line(&self) {
        const CLEAR: &str = "\r\x1b[2K";
        match &self.inner.writer {
            Some(writer) if writer.send(Job::Raw(CLEAR.into())).is_ok() => {}
            _ if self.inner.interactive => {
                print!("{CLEAR}");
                let _ = io::stdout().flush();
            }
            _ => {}
        }
    }

    /// A progress bar for one transfer; it disappears when the last clone of
    /// the returned handle is dropped (also when the transfer is cancelled).
    pub fn progress(&self) -> Bar {
        if !self.inner.bars {
            return Bar::none();
        }
        let bar = ProgressBar::hidden();
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        *self.inner.bar.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
        Bar { bar: Some(Arc::new(BarOwner { bar, console: self.clone() })) }
    }
}

/// What the console's writer thread is handed, in order.
enum Job {
    /// A line (with its line feed), above the prompt if one is open.
    Line(String),
    /// Bytes for the terminal itself, never through the editor.
    Raw(String),
    /// Draw what the editor still holds, then stop using it; say when done.
    Settle(mpsc::Sender<()>),
    /// Say when everything before this is written.
    Flush(mpsc::Sender<()>),
}

/// The console's writer thread: takes jobs in order until every [`Console`]
/// is gone. Lines go through rustyline's printer only while the editor
/// reads a line, since only then does it take them (it draws them above the
/// line being typed); otherwise straight to stdout.
fn write_lines(jobs: mpsc::Receiver<Job>, mut printer: Option<Printer>, reading: &AtomicBool) {
    let direct = |text: &str| {
        let mut out = io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    };
    for job in jobs {
        match job {
            Job::Line(line) => match printer.as_mut() {
                // If the prompt closes meanwhile, this waits for the next
                // one: only this thread waits, and later lines queue.
                Some(p) if reading.load(Ordering::SeqCst) => {
                    if p.print(line.clone()).is_err() {
                        direct(&line);
                    }
                }
                _ => direct(&line),
            },
            Job::Raw(bytes) => direct(&bytes),
            Job::Flush(done) => {
                let _ = done.send(());
            }
            Job::Settle(done) => {
                if let Some(mut p) = printer.take() {
                    // The printer's queue holds one line, so a line handed
                    // over after two more means the one before them is
                    // drawn; each costs a blank line. Only while a prompt
                    // is open: otherwise nothing is waiting in it.
                    if reading.load(Ordering::SeqCst) {
                        let _ = p.print(String::new());
                        let _ = p.print(String::new());
                    }
                }
                let _ = done.send(());
            }
        }
    }
}

struct BarOwner {
    bar: ProgressBar,
    console: Console,
}

impl Drop for BarOwner {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
        self.console.inner.bar.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// A transfer's progress bar; does nothing when bars are off.
#[derive(Clone)]
pub struct Bar {
    bar: Option<Arc<BarOwner>>,
}

impl Bar {
    /// A bar that shows nothing.
    pub fn none() -> Bar {
        Bar { bar: None }
    }
}

impl Progress for Bar {
    fn begin(&self, label: &str, total: u64, done: u64) {
        let Some(b) = &self.bar else { return };
        let template = if total > 0 {
            "{msg:24!} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}"
        } else {
            "{msg:24!} {spinner} {bytes} {binary_bytes_per_sec}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            b.bar.set_style(style.progress_chars("=> "));
        }
        b.bar.set_message(label.to_string());
        b.bar.set_length(total);
        b.bar.reset_eta();
        b.bar.set_position(done);
        // Redraw on a timer too, so a stalled transfer still shows its
        // phase, and its rate going down, instead of a frozen line.
        b.bar.enable_steady_tick(std::time::Duration::from_millis(250));
    }

    fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.bar.inc(n);
        }
    }

    fn set_position(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.bar.set_position(n);
        }
    }
}

/// What the person typed at a prompt.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Line(String),
    /// Ctrl-C at the prompt.
    Interrupted,
    /// Ctrl-D, or the end of the input.
    Eof,
}

enum EditorRequest {
    Line { prompt: String, history: bool, reply: oneshot::Sender<Answer> },
    Secret { prompt: String, reply: oneshot::Sender<Answer> },
}

/// Typed lines kept across runs.
const HISTORY_LINES: usize = 1000;

/// Writes the history file (owner-only: it holds what was typed).
fn save_history(editor: &mut Editor<CommandHelper, DefaultHistory>, path: &std::path::Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if editor.save_history(path).is_ok() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
    }
}

/// rustyline on its own thread.
pub struct LineEditor {
    tx: std::sync::mpsc::SyncSender<EditorRequest>,
    /// True while the editor reads a line (and so takes printed lines).
    reading: Arc<AtomicBool>,
}

impl LineEditor {
    /// Starts the editor thread; also returns the printer that writes above
    /// the prompt (`None` on terminals rustyline cannot drive).
    /// Typed lines are remembered across runs in `history` (if given).
    pub fn start(history: Option<PathBuf>) -> io::Result<(LineEditor, Option<Printer>)> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<EditorRequest>(1);
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let reading = Arc::new(AtomicBool::new(false));
        let in_editor = reading.clone();
        std::thread::Builder::new().name("line-editor".into()).spawn(move || {
            let mut editor = match Editor::<CommandHelper, DefaultHistory>::new() {
                Ok(e) => e,
                Err(e) => {
                    let _ = ready_tx.send(Err(io::Error::other(e.to_string())));
                    return;
                }
            };
            editor.set_helper(Some(CommandHelper { files: FilenameCompleter::new() }));
            let _ = editor.set_max_history_size(HISTORY_LINES);
            if let Some(path) = &history {
                // A first run has none yet.
                let _ = editor.load_history(path);
            }
            let printer = editor.create_external_printer().ok().map(|p| Box::new(p) as Printer);
            let _ = ready_tx.send(Ok(printer));
            // Ends when the LineEditor is dropped.
            while let Ok(request) = rx.recv() {
                match request {
                    EditorRequest::Line { prompt, history: keep, reply } => {
                        in_editor.store(true, Ordering::SeqCst);
                        let read = editor.readline(&prompt);
                        in_editor.store(false, Ordering::SeqCst);
                        let answer = match read {
                            Ok(line) => {
                                if keep && !line.trim().is_empty() {
                                    let _ = editor.add_history_entry(line.as_str());
                                    if let Some(path) = &history {
                                        save_history(&mut editor, path);
                                    }
                                }
                                Answer::Line(line)
                            }
                            Err(rustyline::error::ReadlineError::Interrupted) => Answer::Interrupted,
                            Err(_) => Answer::Eof,
                        };
                        let _ = reply.send(answer);
                    }
                    EditorRequest::Secret { prompt, reply } => {
                        let _ = reply.send(read_secret(&prompt));
                    }
                }
            }
        })?;
        let printer = ready_rx.recv().map_err(|_| io::Error::other("the line editor did not start"))??;
        Ok((LineEditor { tx, reading }, printer))
    }

    /// The flag that says whether the editor is reading a line, for
    /// [`Console::interactive`].
    pub fn reading(&self) -> Arc<AtomicBool> {
        self.reading.clone()
    }

    async fn ask(&self, request: EditorRequest, rx: oneshot::Receiver<Answer>) -> Answer {
        let tx = self.tx.clone();
        // The channel holds one request and the editor serves one at a time;
        // a blocking send here would stall the runtime thread.
        if tokio::task::spawn_blocking(move || tx.send(request)).await.map_or(true, |r| r.is_err()) {
            return Answer::Eof;
        }
        rx.await.unwrap_or(Answer::Eof)
    }

    /// Ends a prompt that is still open and waits until the editor thread
    /// is idle, so that nothing redraws the prompt after the program's last
    /// words. The editor reads stdin; giving it end-of-file (stdin briefly
    /// pointed at /dev/null) makes it return.
    pub async fn stop(&self) {
        let Ok(_terminal_back_on_drop) = StdinRedirect::to_dev_null() else {
            return;
        };
        // Served once the open prompt has returned.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.line("", false)).await;
    }

    pub async fn line(&self, prompt: &str, history: bool) -> Answer {
        let (reply, rx) = oneshot::channel();
        self.ask(EditorRequest::Line { prompt: prompt.to_string(), history, reply }, rx).await
    }

    /// A line read without echo (passwords).
    pub async fn secret(&self, prompt: &str) -> Answer {
        let (reply, rx) = oneshot::channel();
        self.ask(EditorRequest::Secret { prompt: prompt.to_string(), reply }, rx).await
    }
}

/// Reads a line from the terminal without showing it. Unlike a plain
/// no-echo read, Ctrl-C cancels at once (as it does at every other prompt)
/// instead of raising SIGINT, which would leave a blocked read behind.
fn read_secret(prompt: &str) -> Answer {
    let Some(original) = TermMode::of_stdin() else {
        return Answer::Eof;
    };
    // Quiet before the prompt shows: what is typed as soon as it appears
    // must be neither echoed nor, for Ctrl-C, turned into SIGINT.
    if original.quiet().apply_to_stdin().is_err() {
        return Answer::Eof;
    }
    print!("{prompt}");
    let _ = io::stdout().flush();
    let mut secret: Vec<u8> = Vec::new();
    let answer = loop {
        let byte = match sys::read_stdin_byte() {
            Ok(Some(byte)) => byte,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Ok(None) | Err(_) => break Answer::Eof,
        };
        match byte {
            b'\r' | b'\n' => break Answer::Line(String::from_utf8_lossy(&secret).into_owned()),
            0x03 => break Answer::Interrupted,
            0x04 if secret.is_empty() => break Answer::Eof,
            0x7f | 0x08 => {
                // Drop one whole UTF-8 character.
                while secret.pop().is_some_and(|b| b & 0xC0 == 0x80) {}
            }
            0x15 => secret.clear(),
            b => secret.push(b),
        }
    };
    let _ = original.apply_to_stdin();
    println!();
    answer
}

/// Tab completion: command names after `/`, file names elsewhere.
struct CommandHelper {
    files: FilenameCompleter,
}

impl Completer for CommandHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let head = &line[..pos];
        if head.starts_with('/') && !head.contains(' ') {
            let found = crate::command::SLASH_COMMANDS
                .iter()
                .filter(|c| c.starts_with(head))
                .map(|c| Pair { display: c.to_string(), replacement: format!("{c} ") })
                .collect();
            return Ok((0, found));
        }
        self.files.complete(line, pos, ctx)
    }
}

impl Hinter for CommandHelper {
    type Hint = String;
}
impl Highlighter for CommandHelper {}
impl Validator for CommandHelper {}
impl Helper for CommandHelper {}

/// Where commands and answers come from.
pub enum Input {
    Terminal(LineEditor),
    /// Lines from a pipe or file: no prompts, and questions that would need
    /// a person (overwrite?) are answered "no".
    Pipe(Lines<BufReader<Stdin>>),
}

impl Input {
    pub fn pipe() -> Input {
        Input::Pipe(BufReader::new(tokio::io::stdin()).lines())
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self, Input::Terminal(_))
    }

    /// The next command line.
    pub async fn command(&mut self, prompt: &str) -> Answer {
        match self {
            Input::Terminal(editor) => editor.line(prompt, true).await,
            Input::Pipe(lines) => match lines.next_line().await {
                Ok(Some(line)) => Answer::Line(line),
                _ => Answer::Eof,
            },
        }
    }

    /// An answer to a question; `None` when the person cancelled (Ctrl-C,
    /// Ctrl-D) or the input ended. In a pipe the answer is the next line.
    pub async fn ask(&mut self, prompt: &str) -> Option<String> {
        match self {
            Input::Terminal(editor) => match editor.line(prompt, false).await {
                Answer::Line(l) => Some(l.trim().to_string()),
                _ => None,
            },
            Input::Pipe(lines) => lines.next_line().await.ok().flatten().map(|l| l.trim().to_string()),
        }
    }

    /// A secret (password), without echo on a terminal.
    pub async fn secret(&mut self, prompt: &str) -> Option<String> {
        match self {
            Input::Terminal(editor) => match editor.secret(prompt).await {
                Answer::Line(l) => Some(l),
                _ => None,
            },
            Input::Pipe(lines) => lines.next_line().await.ok().flatten(),
        }
    }

    /// A yes/no question whose default is no. Never asked in a pipe.
    pub async fn confirm(&mut self, question: &str) -> bool {
        match self {
            Input::Terminal(_) => {
                let answer = self.ask(&format!("{question} [y/N] ")).await.unwrap_or_default();
                matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes")
            }
            Input::Pipe(_) => false,
        }
    }
}

/// The terminal's settings at start, put back on exit: the program may end
/// (server gone) while the editor thread still holds the terminal in raw
/// mode.
pub struct TerminalState(Option<TermMode>);

impl TerminalState {
    pub fn save() -> TerminalState {
        TerminalState(TermMode::of_stdin())
    }

    pub fn restore(&self) {
        if let Some(mode) = &self.0 {
            let _ = mode.apply_to_stdin();
        }
    }
}
