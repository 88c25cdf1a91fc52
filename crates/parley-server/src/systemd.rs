//! Running as a systemd service (`parleyd.service`): knowing that a service
//! manager started us, telling it when the server is ready and when it
//! stops (`Type=notify`, over `$NOTIFY_SOCKET`), and keeping the first-run
//! administrator password out of the journal, which is where a service's
//! stderr goes. Outside systemd the notifications do nothing. This module
//! never decides what the server does; `main.rs` asks it.

use std::path::{Path, PathBuf};

/// The file in the data directory that holds the first-run administrator
/// password when the server runs as a service.
pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";

/// Whether a service manager started this process: systemd sets
/// `NOTIFY_SOCKET` for `Type=notify` units and `INVOCATION_ID` for every
/// unit it runs.
pub fn supervised() -> bool {
    supervised_by(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

fn supervised_by(is_set: impl Fn(&str) -> bool) -> bool {
    is_set("NOTIFY_SOCKET") || is_set("INVOCATION_ID")
}

/// `READY=1`, with `status` for `systemctl status`. Sent after the
/// readiness line, so both ways of waiting see the same moment. Does
/// nothing without `$NOTIFY_SOCKET`.
pub fn notify_ready(status: &str) -> std::io::Result<()> {
    sd_notify::notify(&[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status(status)])
}

/// `STOPPING=1`: the shutdown has begun (DIE or a signal), so systemd
/// shows the unit as deactivating while connections are told and flushed.
pub fn notify_stopping() -> std::io::Result<()> {
    sd_notify::notify(&[sd_notify::NotifyState::Stopping])
}

/// Writes the first-run administrator password into
/// [`INITIAL_PASSWORD_FILE`] in `data_dir`, readable only by the server's
/// user (0600), and returns its path. A file left by an earlier first run
/// is replaced: that password belonged to an operator who no longer exists.
pub fn write_initial_password(data_dir: &Path, password: &str) -> std::io::Result<PathBuf> {
    let path = data_dir.join(INITIAL_PASSWORD_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    crate::private_file::write(&path, format!("{password}\n").as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn either_variable_means_a_service_manager_started_us() {
        assert!(supervised_by(|name| name == "NOTIFY_SOCKET"));
        assert!(supervised_by(|name| name == "INVOCATION_ID"));
        assert!(!supervised_by(|_| false));
    }

    #[test]
    fn initial_password_file_is_private_and_replaces_a_stale_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(INITIAL_PASSWORD_FILE), "old\n").unwrap();
        let path = write_initial_password(dir.path(), "s3cret").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "s3cret\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
