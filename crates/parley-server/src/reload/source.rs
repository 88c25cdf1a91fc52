//! Where the running configuration came from, to read it again, behind
//! the lock that lets one reload run at a time. A leaf: the server's state
//! holds it, and the rest of `reload` needs the server's state.

use crate::config::Overrides;
use std::path::PathBuf;
use std::sync::Mutex;

/// Where the running configuration came from, to read it again.
#[derive(Debug, Default, Clone)]
pub struct Source {
    /// The `--config` file; `None` means defaults and overrides only.
    pub file: Option<PathBuf>,
    pub overrides: Overrides,
}

impl Source {
    /// The file's name as replies show it.
    pub fn shown(&self) -> String {
        self.file.as_ref().map_or_else(|| "(no configuration file)".into(), |f| f.display().to_string())
    }
}

/// The source, behind the lock that lets one reload run at a time.
#[derive(Default)]
pub struct Reloader {
    pub(super) source: Mutex<Source>,
}

impl Reloader {
    /// Remembers where the configuration came from (`main` does this once).
    pub fn set_source(&self, source: Source) {
        *self.source.lock().unwrap_or_else(|p| p.into_inner()) = source;
    }
}
