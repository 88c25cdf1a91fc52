//! `parley`'s command line: arguments, their environment variables, and the
//! one-shot subcommands. Only `clap` and `std` here: `xtask` compiles this
//! file on its own to write the man pages and shell completions, so what
//! the package documents is what the binary parses. For the same reason the
//! texts come from doc comments, never from Cargo's package fields (in the
//! xtask those would be the xtask's).

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Shown under `--help`: what scripts can rely on.
pub const EXIT_CODES: &str = "Exit codes: 0 done, 1 other failure, 2 usage, 3 not found, 4 exists/not replaced, \
5 authentication, 6 connection failed or lost, 7 digest mismatch, 130 cancelled (Ctrl-C)";

/// Where to connect when neither SERVER, --server nor PARLEY_SERVER says.
pub const DEFAULT_SERVER: &str = "127.0.0.1:6667";

/// Terminal client for the Parley chat server.
///
/// Without a subcommand, connects and opens the chat (on a terminal), or
/// reads commands and messages line by line (from a pipe).
#[derive(Parser, Debug)]
#[command(name = "parley", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Server to connect to, HOST[:PORT] (port 6667 if none) [default: 127.0.0.1:6667]
    #[arg(value_name = "SERVER")]
    pub server_arg: Option<String>,
    /// Server to connect to, HOST[:PORT]; SERVER wins over this
    #[arg(long, short = 's', global = true, env = "PARLEY_SERVER")]
    pub server: Option<String>,
    /// Nickname. Interactive: tried first, then asked for if refused.
    /// Scripts: used as given (default: your login name, varied if taken)
    #[arg(long, short = 'n', global = true, env = "PARLEY_NICK")]
    pub nick: Option<String>,
    /// Connect to IRC over TLS (as an ircs:// SERVER does; default port 6697)
    #[arg(long, global = true)]
    pub tls: bool,
    /// Also trust the certificates in this PEM file (for example a
    /// self-signed server's own certificate), for IRC and HTTPS
    #[arg(long, global = true, value_name = "FILE", env = "PARLEY_CA")]
    pub ca: Option<PathBuf>,
    /// Do not check the server's TLS certificate (prints its fingerprint
    /// so you can compare it with the one parleyd prints)
    #[arg(long, global = true)]
    pub insecure: bool,
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Send a message to the lobby (or to --to NICK/#CHANNEL)
    Send {
        /// The message; several words are joined with spaces. Options may
        /// come before or after it; put `--` before a message that starts
        /// with `-`.
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
        /// Send to this nick or channel instead of the lobby
        #[arg(long, value_name = "TARGET")]
        to: Option<String>,
    },
    /// Upload a file to the server's file store
    Upload {
        /// The local file
        path: PathBuf,
        /// Name on the server [default: the file's name]
        #[arg(long, value_name = "N")]
        name: Option<String>,
        /// Replace a file of the same name without asking
        #[arg(long, conflicts_with = "no_overwrite")]
        overwrite: bool,
        /// Never replace a file of the same name (exit 4 if it exists)
        #[arg(long)]
        no_overwrite: bool,
    },
    /// Download a file from the server's file store
    Download {
        /// The name on the server
        name: String,
        /// Where to save it (a directory keeps the name) [default: ./NAME]
        #[arg(short = 'o', long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// Replace an existing local file without asking
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// Delete one of your files from the server (operators: any file)
    Delete {
        /// The name on the server
        name: String,
    },
    /// List the files on the server
    Files {
        /// Print the server's JSON list instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Close the server for everyone (administrators only). The password
    /// comes from PARLEY_ADMIN_PASSWORD, or is asked for without echo
    Shutdown {
        /// The administrator (operator) name
        #[arg(long, env = "PARLEY_ADMIN", default_value = "admin")]
        admin: String,
        /// Reason told to every user
        #[arg(long)]
        reason: Option<String>,
    },
}
