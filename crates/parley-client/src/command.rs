//! What a typed line means: a menu number, a slash command, or a message
//! for the lobby. Parsing only; running the command is `repl.rs`'s job.

use thiserror::Error;

/// Every slash command, for `/help` and tab completion.
pub const SLASH_COMMANDS: &[&str] = &[
    "/msg",
    "/say",
    "/me",
    "/nick",
    "/files",
    "/upload",
    "/download",
    "/delete",
    "/who",
    "/history",
    "/search",
    "/quit",
    "/shutdown",
    "/help",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A message to the lobby. `None` (menu 3) asks for the text.
    Say(Option<String>),
    /// `/me waves`: an action in the lobby.
    Action(String),
    Msg {
        target: String,
        text: String,
    },
    Files,
    /// `None` path (menu 2) asks for it. `overwrite`: `None` asks when the
    /// name exists, `Some` decides up front.
    Upload {
        path: Option<String>,
        name: Option<String>,
        overwrite: Option<bool>,
    },
    /// `None` name (menu 1) offers the list and asks.
    Download {
        name: Option<String>,
        path: Option<String>,
        force: bool,
    },
    Who,
    /// `/nick NEW`: change nick.
    Nick(String),
    /// `/delete NAME`: delete one of your files.
    Delete(String),
    /// The lobby's last N messages (from the server's history).
    History(usize),
    /// Messages you may read with all these words.
    Search(String),
    Quit(Option<String>),
    /// Menu 5: close the server. `admin` skips the name question.
    Shutdown {
        admin: Option<String>,
    },
    Help,
    /// An empty line: shows the menu again.
    Nothing,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CommandError {
    #[error("unknown command {0}; /help lists the commands")]
    Unknown(String),
    #[error("usage: {0}")]
    Usage(&'static str),
    #[error("unterminated quote in: {0}")]
    Quote(String),
}

/// Lines `/history` shows without a number, and the most it asks for.
pub const DEFAULT_HISTORY: usize = 20;
pub const MAX_HISTORY: usize = 1000;

/// Parses one line as typed at the prompt (or read from a pipe).
pub fn parse(line: &str) -> Result<Command, CommandError> {
    let trimmed = line.trim();
    match trimmed {
        "" => return Ok(Command::Nothing),
        "1" => return Ok(Command::Download { name: None, path: None, force: false }),
        "2" => return Ok(Command::Upload { path: None, name: None, overwrite: None }),
        "3" => return Ok(Command::Say(None)),
        "4" => return Ok(Command::Quit(None)),
        "5" => return Ok(Command::Shutdown { admin: None }),
        _ => {}
    }
    let Some(rest) = trimmed.strip_prefix('/') else {
        return Ok(Command::Say(Some(line.trim_end_matches(['\r', '\n']).to_string())));
    };
    if rest.starts_with('/') {
        // `//text` sends `/text`.
        return Ok(Command::Say(Some(rest.to_string())));
    }
    let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let args = args.trim();
    match name.to_ascii_lowercase().as_str() {
        "say" if !args.is_empty() => Ok(Command::Say(Some(args.to_string()))),
        "say" => Err(CommandError::Usage("/say TEXT")),
        "me" if !args.is_empty() => Ok(Command::Action(args.to_string())),
        "me" => Err(CommandError::Usage("/me ACTION")),
        "msg" => {
            let (target, text) = args.split_once(char::is_whitespace).ok_or(CommandError::Usage("/msg NICK TEXT"))?;
            let text = text.trim_start();
            if text.is_empty() {
                return Err(CommandError::Usage("/msg NICK TEXT"));
            }
            Ok(Command::Msg { target: target.to_string(), text: text.to_string() })
        }
        "files" | "ls" | "list" => Ok(Command::Files),
        "history" if args.is_empty() => Ok(Command::History(DEFAULT_HISTORY)),
        "history" => match args.parse::<usize>() {
            Ok(n) if (1..=MAX_HISTORY).contains(&n) => Ok(Command::History(n)),
            _ => Err(CommandError::Usage("/history [N] (1 to 1000)")),
        },
        "search" if !args.is_empty() => Ok(Command::Search(args.to_string())),
        "search" => Err(CommandError::Usage("/search TEXT")),
        "upload" => {
            let mut overwrite = None;
            let mut plain = Vec::new();
            for w in words(args)? {
                match w.as_str() {
                    "--overwrite" | "-f" => overwrite = Some(true),
                    "--no-overwrite" => overwrite = Some(false),
                    _ => plain.push(w),
                }
            }
            let mut plain = plain.into_iter();
            let path = plain.next().ok_or(CommandError::Usage("/upload PATH [NAME] [--overwrite|--no-overwrite]"))?;
            let name = plain.next();
            if plain.next().is_some() {
                return Err(CommandError::Usage("/upload PATH [NAME] [--overwrite|--no-overwrite]"));
            }
            Ok(Command::Upload { path: Some(path), name, overwrite })
        }
        "download" | "get" => {
            let mut force = false;
            let mut plain = Vec::new();
            for w in words(args)? {
                match w.as_str() {
                    "--force" | "-f" => force = true,
                    _ => plain.push(w),
                }
            }
            let mut plain = plain.into_iter();
            let name = plain.next().ok_or(CommandError::Usage("/download NAME [PATH] [--force]"))?;
            let path = plain.next();
            if plain.next().is_some() {
                return Err(CommandError::Usage("/download NAME [PATH] [--force]"));
            }
            Ok(Command::Download { name: Some(name), path, force })
        }
        "who" | "names" => Ok(Command::Who),
        "delete" | "rm" => match words(args)?.as_slice() {
            [name] => Ok(Command::Delete(name.clone())),
            _ => Err(CommandError::Usage("/delete NAME")),
        },
        "nick" => match args.split_whitespace().collect::<Vec<_>>()[..] {
            [nick] => Ok(Command::Nick(nick.to_string())),
            _ => Err(CommandError::Usage("/nick NEWNICK")),
        },
        "quit" | "exit" | "disconnect" => Ok(Command::Quit((!args.is_empty()).then(|| args.to_string()))),
        "shutdown" | "close" | "die" => {
            let admin = words(args)?.into_iter().next();
            Ok(Command::Shutdown { admin })
        }
        "help" | "?" => Ok(Command::Help),
        other => Err(CommandError::Unknown(format!("/{other}"))),
    }
}

/// Splits arguments at spaces; quotes ('...' or "...") and backslashes keep
/// spaces inside one word, as in a shell.
pub fn words(s: &str) -> Result<Vec<String>, CommandError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => cur.extend(chars.next()),
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                cur.extend(chars.next());
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(CommandError::Quote(s.to_string()));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// The text `/help` prints.
pub const HELP: &str = "\
Options:
  1  Download file        2  Upload file        3  Send message
  4  Disconnect           5  Close the server (administrator)
Commands:
  TEXT                         send TEXT to the lobby
  /say TEXT                    send TEXT to the lobby (even if it is a number or starts with /)
  /me ACTION                   send an action to the lobby (* you waves)
  /msg NICK TEXT               send a private message
  /nick NEWNICK                change your nick
  /files                       list the files on the server
  /upload PATH [NAME]          upload a file (asks before replacing; --overwrite, --no-overwrite)
  /download NAME [PATH]        download a file (asks before replacing a local file; --force)
  /delete NAME                 delete one of your files from the server
  /who                         list the people in the lobby
  /history [N]                 show the lobby's last N messages (20)
  /search TEXT                 find messages with all these words
  /shutdown [ADMIN]            close the server for everyone (asks for the admin password)
  /quit [REASON]               disconnect
  /help                        this text
Ctrl-C cancels a transfer or a question; Ctrl-D or /quit leaves.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menu_numbers_start_the_seed_options() {
        assert_eq!(parse("1").unwrap(), Command::Download { name: None, path: None, force: false });
        assert_eq!(parse(" 2 ").unwrap(), Command::Upload { path: None, name: None, overwrite: None });
        assert_eq!(parse("3").unwrap(), Command::Say(None));
        assert_eq!(parse("4").unwrap(), Command::Quit(None));
        assert_eq!(parse("5").unwrap(), Command::Shutdown { admin: None });
    }

    #[test]
    fn plain_text_goes_to_the_lobby() {
        assert_eq!(parse("hello there").unwrap(), Command::Say(Some("hello there".into())));
        assert_eq!(parse("//etc").unwrap(), Command::Say(Some("/etc".into())));
        assert_eq!(parse("/say 1").unwrap(), Command::Say(Some("1".into())));
        assert_eq!(parse("12").unwrap(), Command::Say(Some("12".into())));
    }

    #[test]
    fn slash_commands_take_their_arguments() {
        assert_eq!(
            parse("/msg bob hi  there").unwrap(),
            Command::Msg { target: "bob".into(), text: "hi  there".into() }
        );
        assert_eq!(parse("/msg bob"), Err(CommandError::Usage("/msg NICK TEXT")));
        assert_eq!(
            parse("/upload \"my file.txt\" report.txt --overwrite").unwrap(),
            Command::Upload {
                path: Some("my file.txt".into()),
                name: Some("report.txt".into()),
                overwrite: Some(true)
            }
        );
        assert_eq!(
            parse("/download a.txt /tmp/b.txt").unwrap(),
            Command::Download { name: Some("a.txt".into()), path: Some("/tmp/b.txt".into()), force: false }
        );
        assert_eq!(parse("/QUIT bye all").unwrap(), Command::Quit(Some("bye all".into())));
        assert_eq!(parse("/shutdown admin").unwrap(), Command::Shutdown { admin: Some("admin".into()) });
        assert_eq!(parse("/files").unwrap(), Command::Files);
        assert_eq!(parse("/nick bob2").unwrap(), Command::Nick("bob2".into()));
        assert_eq!(parse("/delete \"my file.txt\"").unwrap(), Command::Delete("my file.txt".into()));
        assert_eq!(parse("/delete"), Err(CommandError::Usage("/delete NAME")));
        assert_eq!(parse("/nick"), Err(CommandError::Usage("/nick NEWNICK")));
        assert_eq!(parse("/nick a b"), Err(CommandError::Usage("/nick NEWNICK")));
        assert_eq!(parse("/history").unwrap(), Command::History(DEFAULT_HISTORY));
        assert_eq!(parse("/history 5").unwrap(), Command::History(5));
        assert_eq!(parse("/history 0"), Err(CommandError::Usage("/history [N] (1 to 1000)")));
        assert_eq!(parse("/search two words").unwrap(), Command::Search("two words".into()));
        assert_eq!(parse("/search"), Err(CommandError::Usage("/search TEXT")));
        assert_eq!(parse("/nope"), Err(CommandError::Unknown("/nope".into())));
    }

    #[test]
    fn words_follow_shell_quoting() {
        assert_eq!(words(r#"a "b c" 'd e' f\ g"#).unwrap(), vec!["a", "b c", "d e", "f g"]);
        assert_eq!(words("  ").unwrap(), Vec::<String>::new());
        assert_eq!(words("\"\"").unwrap(), vec![""]);
        assert!(words("\"open").is_err());
    }
}
