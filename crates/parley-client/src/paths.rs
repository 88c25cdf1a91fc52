//! Where the client keeps its own files, by the XDG base directories:
//! the config file (`$XDG_CONFIG_HOME/parley/config.toml`, else
//! `~/.config/...`), the history of typed lines
//! (`$XDG_STATE_HOME/parley/history`, else `~/.local/state/...`) and the
//! URLs of unfinished uploads (`$XDG_STATE_HOME/parley/uploads/`).

use std::path::PathBuf;

/// `$var` if it is an absolute path, else `$HOME/fallback`.
fn base(var: &str, fallback: &str) -> Option<PathBuf> {
    match std::env::var_os(var).map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => Some(dir),
        _ => std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|home| PathBuf::from(home).join(fallback)),
    }
}

pub fn config_file() -> Option<PathBuf> {
    base("XDG_CONFIG_HOME", ".config").map(|dir| dir.join("parley").join("config.toml"))
}

pub fn history_file() -> Option<PathBuf> {
    base("XDG_STATE_HOME", ".local/state").map(|dir| dir.join("parley").join("history"))
}

/// One small file per unfinished resumable upload (see `resume.rs`).
pub fn uploads_dir() -> Option<PathBuf> {
    base("XDG_STATE_HOME", ".local/state").map(|dir| dir.join("parley").join("uploads"))
}
