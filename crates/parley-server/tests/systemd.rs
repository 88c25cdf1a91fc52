//! parleyd as a systemd service: `Type=notify` readiness and stopping over
//! `$NOTIFY_SOCKET`, and the first administrator's password kept out of the
//! journal (a private file in the data directory instead of stderr). The
//! service manager is played by the test: the variables systemd sets and a
//! datagram socket where systemd would listen.

use parley_testkit::numeric::*;
use parley_testkit::{Client, Server, Signal, TIMEOUT};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

const PASSWORD_FILE: &str = "initial-admin-password";

/// An `INVOCATION_ID` as systemd sets it for every unit it runs.
const INVOCATION_ID: &str = "7c2cbdf4b0b04d2f9a1c1e5e2a9d3f10";

fn oper_succeeds(server: &Server, password: &str) -> bool {
    let mut admin = Client::registered(server.irc_addr(), "root");
    admin.send(&format!("OPER admin {password}"));
    admin.expect(|l| l.is(RPL_YOUREOPER) || l.is(ERR_PASSWDMISMATCH), TIMEOUT).is(RPL_YOUREOPER)
}

#[test]
fn under_systemd_the_first_admin_password_goes_to_a_private_file_not_to_stderr() {
    let server = Server::start_with_env("", &[("PARLEY_ADMIN_PASSWORD", None), ("INVOCATION_ID", Some(INVOCATION_ID))]);
    let path = server.data_dir().join(PASSWORD_FILE);
    let said = server.wait_for_stderr(|l| l.contains("created administrator account"), TIMEOUT);
    assert!(said.contains(&path.display().to_string()), "stderr does not name the file: {said}");

    let password = std::fs::read_to_string(&path).expect("the password file").trim_end().to_string();
    assert!(password.len() >= 16, "a short password: {password:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the password file is readable by others");
    let output = server.output();
    assert!(!output.contains(&password), "the password was printed:\n{output}");
    assert!(oper_succeeds(&server, &password), "the password in the file does not work");
}

#[test]
fn on_a_terminal_the_first_admin_password_is_printed_and_no_file_is_written() {
    let server = Server::start_with_env("", &[("PARLEY_ADMIN_PASSWORD", None)]);
    let said = server.wait_for_stderr(|l| l.contains("created administrator account"), TIMEOUT);
    let password = said.rsplit("password: ").next().expect("the password").trim().to_string();
    assert!(!server.data_dir().join(PASSWORD_FILE).exists(), "a password file without systemd");
    assert!(oper_succeeds(&server, &password), "the printed password does not work");
}

#[test]
fn with_notify_socket_systemd_hears_ready_after_the_readiness_line_and_stopping_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut server = Server::start_with_env("", &[("NOTIFY_SOCKET", Some(path.to_str().unwrap()))]);
    // The readiness line came first (start_with_env waited for it).
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("no notification within 20 s");
    let ready = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    let status = ready.lines().find_map(|l| l.strip_prefix("STATUS=")).expect("a STATUS line");
    assert!(status.starts_with("parleyd ready irc="), "{status:?}");
    assert!(status.contains(&server.irc_addr().to_string()), "{status:?}");

    server.signal(Signal::Term);
    let n = socket.recv(&mut buf).expect("no STOPPING=1 within 20 s");
    assert_eq!(String::from_utf8_lossy(&buf[..n]), "STOPPING=1\n");
    let exit = server.wait_exit(Duration::from_secs(15)).expect("parleyd did not exit");
    assert!(exit.success(), "parleyd exited with {exit}");
}
