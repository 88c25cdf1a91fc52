//! Build-time chores that need the workspace's own definitions. Today one:
//! `cargo xtask docs DIR` writes the man pages and the bash, zsh and fish
//! completions of `parleyd` and `parley`, generated from their clap
//! definitions, for the Debian package (`tools/package/build.sh`).
//!
//! Why a separate program rather than a hidden subcommand of each binary:
//! the shipped binaries then carry no generator, the pages can be made
//! without running the binaries (so also when cross-compiling), and this
//! builds in seconds, since it compiles only the two `cli.rs` files and
//! clap, not the server. Those files are compiled here from their crates'
//! sources, so what the pages say is what the binaries parse.

use clap::CommandFactory;
use clap_complete::Shell;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

// The binaries read the fields; here only the definitions matter.
#[allow(dead_code)]
#[path = "../../crates/parley-server/src/cli.rs"]
mod parleyd_cli;

#[allow(dead_code)]
#[path = "../../crates/parley-client/src/cli.rs"]
mod parley_cli;

const USAGE: &str = "usage: cargo xtask docs DIR   (man pages into DIR/man, completions into DIR/completions)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [task, dir] if task == "docs" => match docs(Path::new(dir)) {
            Ok(written) => {
                for path in written {
                    println!("{}", path.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("xtask docs: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Man pages (one per command and subcommand: `parleyd.1`,
/// `parleyd-account-add.1`, ...) and completions for both programs.
fn docs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let man = dir.join("man");
    let completions = dir.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    let mut written = Vec::new();
    for cmd in [parleyd_cli::Cli::command(), parley_cli::Cli::command()] {
        let name = cmd.get_name().to_string();
        clap_mangen::generate_to(cmd.clone(), &man)?;
        written.push(man.join(format!("{name}.1")));
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut cmd = cmd.clone();
            written.push(clap_complete::generate_to(shell, &mut cmd, &name, &completions)?);
        }
    }
    Ok(written)
}
