//! `parley` as a person uses it: in a pseudo-terminal (expectrl), typing at
//! the prompt, answering its questions, against the real `parleyd`.

mod support;

use expectrl::process::unix::WaitStatus;
use expectrl::session::OsSession;
use expectrl::{Eof, Expect};
use parley_testkit::{Server, ADMIN_PASSWORD, NO_FLOOD_LIMIT};
use std::process::Command;
use support::*;

/// `parley SERVER` in a terminal of 160×50, inside the server's client dir.
fn terminal(server: &Server, args: &[&str]) -> OsSession {
    let mut cmd = Command::new(parley_bin());
    cmd.current_dir(server.workdir())
        .arg(server.irc())
        .args(args)
        .env("TERM", "xterm-256color")
        .env("XDG_CONFIG_HOME", server.workdir().join(".config"))
        .env("XDG_STATE_HOME", server.workdir().join(".state"))
        .env_remove("PARLEY_NICK")
        .env_remove("PARLEY_SERVER")
        .env_remove("PARLEY_ADMIN_PASSWORD");
    let mut t = expectrl::Session::spawn(cmd).expect("spawning parley in a pty");
    t.get_process_mut().set_window_size(160, 50).expect("window size");
    t.set_expect_timeout(Some(TIMEOUT));
    t
}

/// Logs in as `nick` and waits for the prompt.
fn logged_in(server: &Server, nick: &str) -> OsSession {
    let mut t = terminal(server, &[]);
    t.expect("Username: ").expect("username prompt");
    t.send(format!("{nick}\r")).unwrap();
    t.expect(format!("Welcome, {nick}!")).expect("welcome");
    t.expect(format!("{nick}> ")).expect("prompt");
    t
}

fn type_line(t: &mut OsSession, line: &str) {
    t.send(format!("{line}\r")).expect("typing");
}

/// Option 5, as the administrator `admin` with `password`.
fn close_the_server_as_admin(t: &mut OsSession, password: &str) {
    close_the_server_as_admin_while(t, password, || {});
}

/// Option 5, calling `after_typing` after each answer is typed.
fn close_the_server_as_admin_while(t: &mut OsSession, password: &str, mut after_typing: impl FnMut()) {
    type_line(t, "5");
    after_typing();
    t.expect("Admin username: ").expect("admin username prompt");
    type_line(t, "admin");
    after_typing();
    t.expect("Password: ").expect("password prompt");
    type_line(t, password);
    after_typing();
}

fn exit_code(t: &mut OsSession) -> i32 {
    t.expect(Eof).expect("parley should exit");
    match t.get_process().wait().expect("exit status") {
        WaitStatus::Exited(_, code) => code,
        other => panic!("parley ended with {other:?}"),
    }
}

fn text(c: &expectrl::Captures) -> String {
    String::from_utf8_lossy(c.before()).into_owned()
}

#[test]
fn a_taken_username_is_explained_and_asked_again() {
    let server = Server::start();
    let mut alice = observer(&server, "alice");
    let mut t = terminal(&server, &[]);
    t.expect("Username: ").unwrap();
    type_line(&mut t, "alice");
    t.expect("Nickname is already in use").unwrap();
    t.expect("Username: ").unwrap();
    type_line(&mut t, "bad nick!");
    t.expect("Erroneous nickname").unwrap();
    t.expect("Username: ").unwrap();
    type_line(&mut t, "alice2");
    t.expect("Welcome, alice2!").unwrap();
    t.expect("You are in #lobby with alice").unwrap();
    // The username is the accepted nick's, not the refused one's.
    let joined = alice.expect_raw(|l| l.contains(" JOIN ") && l.starts_with(":alice2!"), TIMEOUT);
    assert!(joined.starts_with(":alice2!~alice2@"), "{joined}");
    t.expect("1 Download file | 2 Upload file | 3 Send message | 4 Disconnect | 5 Close the server").unwrap();
    t.expect("alice2> ").unwrap();
    type_line(&mut t, "4");
    t.expect("Disconnected.").unwrap();
    assert_eq!(exit_code(&mut t), 0);
}

#[test]
fn typed_lines_are_remembered_for_the_next_run() {
    let server = Server::start();
    let mut t = logged_in(&server, "hana");
    type_line(&mut t, "remember this line");
    t.expect("hana> ").unwrap();
    type_line(&mut t, "4");
    t.expect("Disconnected.").unwrap();
    assert_eq!(exit_code(&mut t), 0);
    let history = std::fs::read_to_string(server.workdir().join(".state/parley/history")).unwrap();
    assert!(history.contains("remember this line"), "{history}");
}

#[test]
fn messages_go_out_and_come_in_without_breaking_the_typed_line() {
    let server = Server::start();
    let mut bob = observer(&server, "bob");
    let mut t = logged_in(&server, "carol");
    bob.expect_raw(|l| l.starts_with(":carol!") && l.contains("JOIN"), TIMEOUT);

    type_line(&mut t, "hello bob");
    bob.expect_raw(|l| l.starts_with(":carol!") && l.contains("PRIVMSG #lobby :hello bob"), TIMEOUT);

    bob.send("PRIVMSG #lobby :hi carol");
    t.expect("<bob> hi carol").unwrap();
    bob.send("PRIVMSG carol :just for you");
    t.expect("[private] <bob> just for you").unwrap();

    // Half a line typed, a message arrives, the line is finished: it is sent whole.
    t.send("half typed").unwrap();
    bob.send("PRIVMSG #lobby :interruption");
    t.expect("<bob> interruption").unwrap();
    type_line(&mut t, " and finished");
    bob.expect_raw(|l| l.contains("PRIVMSG #lobby :half typed and finished"), TIMEOUT);

    // Option 3 asks for the text; /msg sends privately.
    type_line(&mut t, "3");
    t.expect("Message: ").unwrap();
    type_line(&mut t, "via the menu");
    bob.expect_raw(|l| l.contains("PRIVMSG #lobby :via the menu"), TIMEOUT);
    type_line(&mut t, "/msg bob psst");
    bob.expect_raw(|l| l.contains("PRIVMSG bob") && l.ends_with("psst"), TIMEOUT);

    bob.send("QUIT :gone");
    t.expect("<-- bob quit (Quit: gone)").unwrap();
    type_line(&mut t, "/quit");
    assert_eq!(exit_code(&mut t), 0);
}

#[test]
fn uploading_an_existing_name_asks_and_no_keeps_while_yes_replaces() {
    let server = Server::start();
    server.require_file_store();
    let dir = server.workdir();
    write_file(&dir, "doc.txt", b"version one\n");
    let mut t = logged_in(&server, "dana");

    type_line(&mut t, "2");
    t.expect("Path of the file to upload: ").unwrap();
    type_line(&mut t, "doc.txt");
    t.expect("Uploaded doc.txt").unwrap();

    write_file(&dir, "doc.txt", b"version two\n");
    type_line(&mut t, "2");
    t.expect("Path of the file to upload: ").unwrap();
    type_line(&mut t, "doc.txt");
    t.expect("doc.txt already exists on the server. Overwrite? [y/N]").unwrap();
    type_line(&mut t, "n");
    t.expect("upload cancelled, the server's copy is unchanged").unwrap();
    ok_download(&server, "doc.txt", "check-n.txt");
    assert_eq!(std::fs::read(dir.join("check-n.txt")).unwrap(), b"version one\n");

    type_line(&mut t, "/upload doc.txt");
    t.expect("Overwrite? [y/N]").unwrap();
    type_line(&mut t, "y");
    t.expect("Replaced doc.txt").unwrap();
    ok_download(&server, "doc.txt", "check-y.txt");
    assert_eq!(std::fs::read(dir.join("check-y.txt")).unwrap(), b"version two\n");

    type_line(&mut t, "/upload missing-file.txt");
    t.expect("missing-file.txt: No such file").unwrap();
    type_line(&mut t, "4");
    assert_eq!(exit_code(&mut t), 0);
}

fn ok_download(server: &Server, name: &str, to: &str) {
    let run =
        parley(&server.workdir(), &["download", "-s", server.irc(), "-n", "checker", name, "-o", to, "--force"], "");
    assert_eq!(run.code, Some(0), "{run:#?}");
}

#[test]
fn downloading_offers_the_list_keeps_local_files_and_explains_missing_ones() {
    let server = Server::start();
    server.require_file_store();
    let dir = server.workdir();
    let data = pattern(70_000, 5);
    let upload_dir = tempfile::tempdir().unwrap();
    write_file(upload_dir.path(), "shared.bin", &data);
    let run = parley(upload_dir.path(), &["upload", "-s", server.irc(), "-n", "ed", "shared.bin"], "");
    assert_eq!(run.code, Some(0), "{run:#?}");

    let mut t = logged_in(&server, "fay");
    type_line(&mut t, "1");
    t.expect("1. shared.bin").unwrap();
    t.expect("File to download (name or number, empty to cancel): ").unwrap();
    type_line(&mut t, "1");
    t.expect("Saved shared.bin to shared.bin").unwrap();
    t.expect("verified").unwrap();
    assert_eq!(std::fs::read(dir.join("shared.bin")).unwrap(), data, "bytes identical");

    type_line(&mut t, "1");
    t.expect("File to download").unwrap();
    type_line(&mut t, "shared.bin");
    t.expect("shared.bin already exists here. Replace it? [y/N]").unwrap();
    type_line(&mut t, "");
    t.expect("download cancelled").unwrap();

    type_line(&mut t, "/download nope.txt");
    t.expect("There is no file named \"nope.txt\"").unwrap();
    assert!(!dir.join("nope.txt").exists());
    type_line(&mut t, "4");
    assert_eq!(exit_code(&mut t), 0);
}

#[test]
fn closing_the_server_refuses_a_wrong_password_then_closes_for_everyone() {
    let mut server = Server::start();
    let mut other = PipeClient::start(&server, "other");
    let mut t = logged_in(&server, "gus");

    close_the_server_as_admin(&mut t, "wrong-password");
    let c = t.expect("Password incorrect").unwrap();
    assert!(!text(&c).contains("wrong-password"), "the password must not be shown: {:?}", text(&c));
    t.expect("gus> ").unwrap();
    assert!(server.accepts_clients(), "the server must still be up");

    close_the_server_as_admin(&mut t, ADMIN_PASSWORD);
    let c = t.expect("*** Server shutting down: closed by gus (operator admin)").unwrap();
    assert!(!text(&c).contains(ADMIN_PASSWORD), "the password must not be shown");
    t.expect("Disconnected.").unwrap();
    assert_eq!(exit_code(&mut t), 0, "closing the server on purpose is a success");

    other.expect_out("*** Server shutting down: closed by gus (operator admin)");
    other.expect_err("The server closed the connection");
    assert_eq!(other.wait().code(), Some(6));
    assert!(server.wait_exit(TIMEOUT).expect("parleyd should stop").success());
}

#[test]
fn messages_that_arrive_as_prompts_close_are_shown_and_stall_nothing() {
    // A line handed to the line editor as a prompt closes waits for the
    // next prompt (the editor takes lines to draw only while it reads one).
    // So lines are sent at exactly those moments, right after each answer
    // is typed. Nothing may hold up the client: every prompt and every
    // reply comes, and every line is shown.
    let server = Server::start_with(NO_FLOOD_LIMIT);
    let mut t = logged_in(&server, "ivy");
    let mut bob = observer(&server, "bob");
    t.expect("bob").unwrap();
    let mut sent = 0;
    for _ in 0..3 {
        close_the_server_as_admin_while(&mut t, "wrong-password", || {
            for _ in 0..3 {
                bob.send(&format!("PRIVMSG #lobby :burst line {sent}"));
                sent += 1;
            }
        });
        t.expect("Password incorrect").unwrap();
        t.expect("ivy> ").unwrap();
    }
    // Shown in order: once this is, every line before it has been.
    bob.send("PRIVMSG #lobby :the end");
    t.expect("the end").unwrap();
    assert_eq!(sent, 27);
    type_line(&mut t, "4");
    assert_eq!(exit_code(&mut t), 0);
}

#[test]
fn when_the_server_dies_the_client_says_so_and_exits_non_zero() {
    let mut server = Server::start();
    let mut t = logged_in(&server, "hal");
    server.kill();
    t.expect("The server closed the connection").unwrap();
    assert_eq!(exit_code(&mut t), 6);
}

#[test]
fn a_shutdown_by_someone_else_ends_the_client_even_in_the_middle_of_a_question() {
    let mut server = Server::start();
    let mut t = logged_in(&server, "kit");
    type_line(&mut t, "2");
    t.expect("Path of the file to upload: ").unwrap();
    let run = parley_env(
        &server.workdir(),
        &["shutdown", "-s", server.irc(), "-n", "boss"],
        "",
        &[("PARLEY_ADMIN_PASSWORD", ADMIN_PASSWORD)],
    );
    assert_eq!(run.code, Some(0), "{run:#?}");
    t.expect("*** Server shutting down: closed by boss").unwrap();
    t.expect("The server closed the connection").unwrap();
    assert_eq!(exit_code(&mut t), 6);
    assert!(server.wait_exit(TIMEOUT).expect("parleyd should stop").success());
}

#[test]
fn ctrl_c_at_the_prompt_or_in_a_question_does_not_end_the_program() {
    let server = Server::start();
    let mut t = logged_in(&server, "ivy");
    t.send("\x03").unwrap();
    t.expect("Ctrl-C cancels transfers and questions").unwrap();
    type_line(&mut t, "2");
    t.expect("Path of the file to upload: ").unwrap();
    t.send("\x03").unwrap();
    t.expect("ivy> ").unwrap();
    type_line(&mut t, "5");
    t.expect("Admin username: ").unwrap();
    type_line(&mut t, "admin");
    t.expect("Password: ").unwrap();
    t.send("half a pass").unwrap();
    t.send("\x03").unwrap();
    t.expect("ivy> ").unwrap();
    type_line(&mut t, "/who");
    t.expect("1 person in #lobby: ivy").unwrap();
    type_line(&mut t, "/help");
    t.expect("/download NAME [PATH]").unwrap();
    // Ctrl-D only means "leave" to the line editor; typed before its prompt
    // is drawn, it would reach the terminal still in cooked mode.
    t.expect("ivy> ").unwrap();
    t.send("\x04").unwrap();
    assert_eq!(exit_code(&mut t), 0, "Ctrl-D leaves quietly");
}

#[test]
fn ctrl_c_cancels_a_download_which_then_resumes() {
    // The store is reached through a relay that holds the download still
    // after 2 MiB, so Ctrl-C lands in the middle of it.
    let proxy = Proxy::start();
    let server = Server::start_with_args("", &["--public-url", &proxy.url()]);
    server.require_file_store();
    proxy.set_upstream(&server.http_addr().unwrap().to_string());
    let dir = server.workdir();
    let upload_dir = tempfile::tempdir().unwrap();
    let data = pattern(8 << 20, 11);
    write_file(upload_dir.path(), "large.bin", &data);
    let run = parley(upload_dir.path(), &["upload", "-s", server.irc(), "-n", "up", "large.bin"], "");
    assert_eq!(run.code, Some(0), "{run:#?}");
    proxy.hold_responses_after(2 << 20);

    let mut t = logged_in(&server, "jo");
    type_line(&mut t, "/download large.bin");
    t.expect("downloading large.bin").unwrap();
    // The bar shows bytes, the total and a rate while the transfer runs.
    t.expect(expectrl::Regex(r"[1-9][0-9.]* MiB/8\.00 MiB [0-9.]+ [KMG]?i?B/s ETA")).unwrap();
    t.send("\x03").unwrap();
    t.expect("Cancelled.").unwrap();
    t.expect("jo> ").unwrap();
    let part = dir.join("large.bin.part");
    let kept = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    assert!(kept > 0 && kept < data.len() as u64, "a partial download is kept ({kept} bytes)");
    assert!(!dir.join("large.bin").exists());

    proxy.open();
    type_line(&mut t, "/download large.bin");
    t.expect("resumed after").unwrap();
    assert_eq!(std::fs::read(dir.join("large.bin")).unwrap(), data);
    assert!(!part.exists());
    type_line(&mut t, "4");
    assert_eq!(exit_code(&mut t), 0);
}

#[test]
fn ctrl_c_cancels_an_upload_and_the_servers_copy_stays_as_it_was() {
    // The relay holds the upload still after 1 MiB of the request.
    let proxy = Proxy::start();
    let server = Server::start_with_args("", &["--public-url", &proxy.url()]);
    server.require_file_store();
    proxy.set_upstream(&server.http_addr().unwrap().to_string());
    let dir = server.workdir();
    write_file(&dir, "plan.txt", b"the old plan\n");
    let run = parley(&dir, &["upload", "-s", server.irc(), "-n", "up", "plan.txt"], "");
    assert_eq!(run.code, Some(0), "{run:#?}");
    write_file(&dir, "plan.txt", &pattern(6 << 20, 2));
    proxy.hold_requests_after(1 << 20);

    let mut t = logged_in(&server, "lou");
    type_line(&mut t, "/upload plan.txt --overwrite");
    t.expect("uploading plan.txt").unwrap();
    t.expect(expectrl::Regex(r"[0-9.]+ [KM]iB/6\.00 MiB")).unwrap();
    t.send("\x03").unwrap();
    t.expect("Cancelled.").unwrap();
    t.expect("lou> ").unwrap();
    proxy.open();

    let run = parley(&dir, &["download", "-s", server.irc(), "-n", "check", "plan.txt", "-o", "now.txt"], "");
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert_eq!(std::fs::read(dir.join("now.txt")).unwrap(), b"the old plan\n");
    type_line(&mut t, "4");
    assert_eq!(exit_code(&mut t), 0);
}
