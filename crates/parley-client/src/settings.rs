//! Defaults from the config file (`paths::config_file`): the server, nick
//! and TLS options a person would otherwise type each time. Flags and
//! `PARLEY_*` variables win over it; a missing file is no error, a file
//! that does not parse is one (naming the file and the key).

use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// HOST[:PORT] or ircs://HOST[:PORT].
    pub server: Option<String>,
    pub nick: Option<String>,
    pub tls: Option<bool>,
    /// A PEM file of certificates to trust too.
    pub ca: Option<PathBuf>,
    pub insecure: Option<bool>,
}

impl Settings {
    /// The settings in `path`, or none if there is no such file.
    pub fn load(path: &Path) -> Result<Settings, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.to_string().trim_end())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_sets_defaults_and_a_bad_one_says_where() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        assert_eq!(Settings::load(&path).unwrap(), Settings::default(), "no file, no settings");
        std::fs::write(&path, "server = \"chat.example.org:6697\"\nnick = \"ann\"\ntls = true\n").unwrap();
        let s = Settings::load(&path).unwrap();
        assert_eq!(
            (s.server.as_deref(), s.nick.as_deref(), s.tls),
            (Some("chat.example.org:6697"), Some("ann"), Some(true))
        );
        std::fs::write(&path, "sever = \"typo\"\n").unwrap();
        let err = Settings::load(&path).unwrap_err();
        assert!(err.contains("config.toml") && err.contains("sever"), "{err}");
    }
}
