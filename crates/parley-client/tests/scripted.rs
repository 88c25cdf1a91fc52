//! `parley` driven by scripts: one-shot subcommands and commands piped into
//! stdin, against the real `parleyd`. Each test names the behaviour it
//! proves and checks the exit code scripts rely on.

mod support;

use parley_testkit::{Client, Server, ADMIN_PASSWORD};
use support::*;

fn ok(run: &Run) {
    assert_eq!(run.code, Some(0), "expected success: {run:#?}");
}

// --- messages -------------------------------------------------------------

#[test]
fn send_reaches_another_client_in_the_lobby() {
    let server = Server::start();
    let mut obs = observer(&server, "watcher");
    let run =
        parley(&server.workdir(), &["send", "--server", server.irc(), "--nick", "alice", "hello", "everyone"], "");
    ok(&run);
    obs.expect_raw(|l| l.starts_with(":alice!") && l.contains("PRIVMSG #lobby :hello everyone"), TIMEOUT);
}

#[test]
fn options_after_the_message_stay_options() {
    let server = Server::start();
    let mut obs = observer(&server, "watcher");
    let run = parley(&server.workdir(), &["send", "hello", "there", "--server", server.irc(), "-n", "bob"], "");
    ok(&run);
    obs.expect_raw(|l| l.starts_with(":bob!") && l.ends_with("PRIVMSG #lobby :hello there"), TIMEOUT);
    let run = parley(&server.workdir(), &["send", "-s", server.irc(), "-n", "carl", "--", "-5 degrees", "--here"], "");
    ok(&run);
    obs.expect_raw(|l| l.starts_with(":carl!") && l.contains("PRIVMSG #lobby :-5 degrees --here"), TIMEOUT);
}

#[test]
fn send_to_a_missing_nick_fails_with_not_found() {
    let server = Server::start();
    let run = parley(&server.workdir(), &["send", "-s", server.irc(), "-n", "alice", "--to", "nobody", "hi"], "");
    assert_eq!(run.code, Some(3), "{run:#?}");
    assert!(run.stderr.contains("nobody: No such nick"), "{run:#?}");
}

#[test]
fn piped_lines_are_messages_and_commands() {
    let server = Server::start();
    let mut obs = observer(&server, "watcher");
    let run =
        parley(&server.workdir(), &["-s", server.irc(), "-n", "bob"], "hello lobby\n/msg watcher just you\n/who\n");
    ok(&run);
    obs.expect_raw(|l| l.starts_with(":bob!") && l.contains("PRIVMSG #lobby :hello lobby"), TIMEOUT);
    obs.expect_raw(|l| l.starts_with(":bob!") && l.contains("PRIVMSG watcher :just you"), TIMEOUT);
    assert!(run.stdout.contains("2 people in #lobby"), "{run:#?}");
    assert!(!run.stdout.contains("Username"), "no prompts in a pipe: {run:#?}");
}

#[test]
fn the_config_file_gives_defaults_and_flags_win() {
    let server = Server::start();
    let mut obs = observer(&server, "watcher");
    let dir = server.workdir();
    let config = dir.join(".config/parley/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, format!("server = \"{}\"\nnick = \"fromfile\"\n", server.irc())).unwrap();
    ok(&parley(&dir, &["send", "hello from the file"], ""));
    obs.expect_raw(|l| l.starts_with(":fromfile!") && l.ends_with("hello from the file"), TIMEOUT);
    ok(&parley(&dir, &["send", "-n", "flagged", "flags win"], ""));
    obs.expect_raw(|l| l.starts_with(":flagged!") && l.ends_with("flags win"), TIMEOUT);
    std::fs::write(&config, "sever = \"typo\"\n").unwrap();
    let bad = parley(&dir, &["send", "x"], "");
    assert_eq!(bad.code, Some(2), "{bad:#?}");
    assert!(bad.stderr.contains("config.toml") && bad.stderr.contains("sever"), "{bad:#?}");
}

#[test]
fn nick_changes_the_nick_and_a_taken_one_is_refused() {
    let server = Server::start();
    let mut obs = observer(&server, "watcher");
    let run = parley(&server.workdir(), &["-s", server.irc(), "-n", "bob"], "/nick watcher\n/nick bobby\nnow bobby\n");
    assert_eq!(run.code, Some(4), "the taken nick failed (4: exists): {run:#?}");
    assert!(run.stderr.contains("Nickname is already in use"), "{run:#?}");
    obs.expect_raw(|l| l.starts_with(":bob!") && l.ends_with("NICK bobby"), TIMEOUT);
    obs.expect_raw(|l| l.starts_with(":bobby!") && l.contains("PRIVMSG #lobby :now bobby"), TIMEOUT);
    assert!(run.stdout.contains("You are now known as bobby"), "{run:#?}");
}

#[test]
fn piped_menu_numbers_read_their_answers_from_the_next_lines() {
    let server = Server::start();
    server.require_file_store();
    let mut obs = observer(&server, "watcher");
    let dir = server.workdir();
    write_file(&dir, "m.txt", b"menu upload");
    let run = parley(&dir, &["-s", server.irc(), "-n", "menu"], "3\nfrom the menu\n2\nm.txt\n4\n");
    ok(&run);
    obs.expect_raw(|l| l.starts_with(":menu!") && l.contains("PRIVMSG #lobby :from the menu"), TIMEOUT);
    assert!(run.stdout.contains("Uploaded m.txt"), "{run:#?}");
}

#[test]
fn a_failed_piped_line_sets_the_exit_code_but_the_rest_still_runs() {
    let server = Server::start();
    let mut obs = observer(&server, "watcher");
    let run = parley(&server.workdir(), &["-s", server.irc(), "-n", "bob"], "/msg ghost boo\n/bogus\nstill here\n");
    assert_eq!(run.code, Some(3), "first failure (no such nick) decides: {run:#?}");
    assert!(run.stderr.contains("ghost: No such nick"), "{run:#?}");
    assert!(run.stderr.contains("unknown command /bogus"), "{run:#?}");
    obs.expect_raw(|l| l.contains("PRIVMSG #lobby :still here"), TIMEOUT);
}

#[test]
fn a_piped_client_shows_messages_from_others_with_time_and_sender() {
    let server = Server::start();
    let mut listener = PipeClient::start(&server, "listener");
    let mut obs = observer(&server, "talker");
    listener.expect_out("--> talker joined #lobby");
    obs.send("PRIVMSG #lobby :anyone there?");
    let line = listener.expect_out("<talker> anyone there?");
    assert!(line.starts_with('[') && line.as_bytes()[3] == b':', "time first: {line}");
    obs.send("QUIT :bye now");
    listener.expect_out("<-- talker quit (Quit: bye now)");
    listener.close_input();
    assert_eq!(listener.wait().code(), Some(0));
}

// --- nicknames and connections --------------------------------------------

#[test]
fn a_client_sees_the_lobbys_recent_history_on_connect_and_asks_for_more() {
    let server = Server::start();
    let mut obs = observer(&server, "talker");
    for text in ["the first word", "a second word", "something else"] {
        obs.send(&format!("PRIVMSG #lobby :{text}"));
    }
    obs.sync();
    let mut late = PipeClient::start(&server, "late");
    // Shown before anything else (start waits for the answer to /who).
    let shown: Vec<&str> = late.seen.iter().map(|l| l.split_once("] ").map_or(l.as_str(), |(_, t)| t)).collect();
    let replay = ["--- earlier in #lobby ---", "<talker> the first word", "<talker> a second word"];
    assert_eq!(shown[..3], replay, "{:#?}", late.seen);
    assert_eq!(shown[3..5], ["<talker> something else", "--- now ---"], "{:#?}", late.seen);
    late.send("/history 2");
    late.expect_out("--- the last 2 messages in #lobby ---");
    let second = late.expect_out("<talker> a second word");
    assert!(second.starts_with('[') && second.as_bytes()[3] == b':', "with its time: {second}");
    late.expect_out("<talker> something else");
    late.expect_out("--- end ---");
    late.send("/search word");
    late.expect_out("--- 2 messages with \"word\" ---");
    late.expect_out("<talker> the first word");
    late.expect_out("<talker> a second word");
    late.close_input();
    assert!(late.wait().success());
}

#[test]
fn a_nick_in_use_is_refused_when_given_explicitly() {
    let server = Server::start();
    let _alice = observer(&server, "alice");
    let run = parley(&server.workdir(), &["send", "-s", server.irc(), "-n", "alice", "hi"], "");
    assert_eq!(run.code, Some(4), "{run:#?}");
    assert!(run.stderr.contains("Nickname is already in use"), "{run:#?}");
}

#[test]
fn an_invalid_nick_is_a_usage_error_with_the_servers_reason() {
    let server = Server::start();
    let run = parley(&server.workdir(), &["send", "-s", server.irc(), "-n", "9lives", "hi"], "");
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains("must start with a letter"), "{run:#?}");
}

#[test]
fn without_a_nick_a_free_one_is_chosen() {
    let server = Server::start();
    let mut obs = observer(&server, "watcher");
    let run = parley_env(&server.workdir(), &["send", "-s", server.irc(), "hi"], "", &[("USER", "watcher")]);
    ok(&run);
    obs.expect_raw(|l| l.starts_with(":watcher-") && l.contains("PRIVMSG #lobby") && l.ends_with("hi"), TIMEOUT);
}

#[test]
fn an_unreachable_server_exits_with_connection_lost() {
    let server = Server::start();
    let addr = server.irc().to_string();
    drop(server);
    let dir = tempfile::tempdir().unwrap();
    let run = parley(dir.path(), &["send", "-s", &addr, "-n", "x", "hi"], "");
    assert_eq!(run.code, Some(6), "{run:#?}");
    assert!(run.stderr.contains("could not connect"), "{run:#?}");
}

#[test]
fn server_address_comes_from_the_environment() {
    let server = Server::start();
    let mut obs = observer(&server, "watcher");
    let env = [("PARLEY_SERVER", server.irc()), ("PARLEY_NICK", "envy")];
    let run = parley_env(&server.workdir(), &["send", "from env"], "", &env);
    ok(&run);
    obs.expect_raw(|l| l.starts_with(":envy!") && l.contains(":from env"), TIMEOUT);
}

#[test]
fn a_killed_server_ends_a_piped_client_with_a_message_and_code_6() {
    let mut server = Server::start();
    let mut client = PipeClient::start(&server, "stayer");
    server.kill();
    client.expect_err("The server closed the connection");
    assert_eq!(client.wait().code(), Some(6));
}

// --- closing the server ---------------------------------------------------

#[test]
fn shutdown_with_a_wrong_password_is_refused_and_the_server_stays_up() {
    let server = Server::start();
    let run = parley_env(
        &server.workdir(),
        &["shutdown", "-s", server.irc(), "-n", "mallory"],
        "",
        &[("PARLEY_ADMIN_PASSWORD", "not-the-password")],
    );
    assert_eq!(run.code, Some(5), "{run:#?}");
    assert!(run.stderr.contains("Password incorrect"), "{run:#?}");
    assert!(server.accepts_clients(), "the server must still be up");
}

#[test]
fn repeated_wrong_passwords_get_the_servers_rate_limit_message() {
    let server = Server::start();
    let wrong = [("PARLEY_ADMIN_PASSWORD", "guess")];
    let mut last = None;
    for _ in 0..4 {
        let run = parley_env(&server.workdir(), &["shutdown", "-s", server.irc(), "-n", "mallory"], "", &wrong);
        assert_eq!(run.code, Some(5), "{run:#?}");
        last = Some(run);
    }
    let last = last.unwrap();
    assert!(last.stderr.contains("try again in"), "the fourth attempt is rate limited: {last:#?}");
    assert!(server.accepts_clients());
}

#[test]
fn shutdown_with_the_right_password_stops_the_server_and_tells_everyone() {
    let mut server = Server::start();
    let mut listener = PipeClient::start(&server, "listener");
    let mut obs = observer(&server, "watcher");
    let run = parley(
        &server.workdir(),
        &["shutdown", "-s", server.irc(), "-n", "boss", "--reason", "maintenance"],
        &format!("{ADMIN_PASSWORD}\n"),
    );
    ok(&run);
    assert!(run.stdout.contains("shutting down"), "{run:#?}");
    obs.expect_raw(
        |l| l.contains("NOTICE watcher :*** Server shutting down: closed by boss") && l.contains("maintenance"),
        TIMEOUT,
    );
    listener.expect_out("*** Server shutting down: closed by boss");
    listener.expect_err("The server closed the connection");
    assert_eq!(listener.wait().code(), Some(6));
    let status = server.wait_exit(TIMEOUT).expect("parleyd should exit");
    assert!(status.success(), "parleyd exit status {status:?}");
}

// --- files ----------------------------------------------------------------

#[test]
fn a_user_deletes_their_own_file_but_not_someone_elses() {
    let server = Server::start();
    server.require_file_store();
    let dir = server.workdir();
    let s = server.irc();
    write_file(&dir, "gone.txt", b"soon gone\n");
    ok(&parley(&dir, &["upload", "-s", s, "-n", "ann", "gone.txt"], ""));
    let other = parley(&dir, &["delete", "-s", s, "-n", "bea", "gone.txt"], "");
    assert_eq!(other.code, Some(5), "not bea's file: {other:#?}");
    let piped = parley(&dir, &["-s", s, "-n", "ann"], "/delete gone.txt\n");
    ok(&piped);
    assert!(piped.stdout.contains("Deleted gone.txt."), "{piped:#?}");
    let again = parley(&dir, &["delete", "-s", s, "-n", "ann", "gone.txt"], "");
    assert_eq!(again.code, Some(3), "not found any more: {again:#?}");
}

#[test]
fn upload_then_upload_again_is_refused_unless_overwrite_is_given() {
    let server = Server::start();
    server.require_file_store();
    let dir = server.workdir();
    let s = server.irc();
    write_file(&dir, "notes.txt", b"first version\n");
    let run = parley(&dir, &["upload", "-s", s, "-n", "ann", "notes.txt"], "");
    ok(&run);
    assert!(run.stdout.contains("Uploaded notes.txt"), "{run:#?}");

    write_file(&dir, "notes.txt", b"second version\n");
    let run = parley(&dir, &["upload", "-s", s, "-n", "ann", "notes.txt"], "");
    assert_eq!(run.code, Some(4), "exists, no flag, no terminal: refused: {run:#?}");
    let run = parley(&dir, &["upload", "-s", s, "-n", "ann", "notes.txt", "--no-overwrite"], "");
    assert_eq!(run.code, Some(4), "{run:#?}");
    let run = parley(&dir, &["download", "-s", s, "-n", "ann", "notes.txt", "-o", "check1.txt"], "");
    ok(&run);
    assert_eq!(std::fs::read(dir.join("check1.txt")).unwrap(), b"first version\n", "old content kept");

    let run = parley(&dir, &["upload", "-s", s, "-n", "ann", "notes.txt", "--overwrite"], "");
    ok(&run);
    assert!(run.stdout.contains("Replaced notes.txt"), "{run:#?}");
    let run = parley(&dir, &["download", "-s", s, "-n", "ann", "notes.txt", "-o", "check2.txt"], "");
    ok(&run);
    assert_eq!(std::fs::read(dir.join("check2.txt")).unwrap(), b"second version\n");
}

/// Runs curl against the file store; returns (response headers, body).
fn curl(args: &[&str]) -> (String, Vec<u8>) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "-D", "/dev/stderr"])
        .args(args)
        .output()
        .expect("curl is installed (tools/test.sh installs it)");
    (String::from_utf8_lossy(&out.stderr).into_owned(), out.stdout)
}

#[test]
fn an_upload_prints_its_share_link_which_opens_without_a_login() {
    let server = Server::start();
    server.require_file_store();
    let dir = server.workdir();
    write_file(&dir, "shared.txt", b"for everyone\n");
    let run = parley(&dir, &["upload", "-s", server.irc(), "-n", "ann", "shared.txt"], "");
    ok(&run);
    let link = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Share link: "))
        .unwrap_or_else(|| panic!("no share link printed: {run:#?}"))
        .trim()
        .to_string();
    let (_, body) = curl(&[&link]);
    assert_eq!(body, b"for everyone\n");
}

#[test]
fn an_upload_stopped_midway_continues_on_the_next_run() {
    let server = Server::start();
    server.require_file_store();
    let dir = server.workdir();
    let data = pattern(300_000, 5);
    write_file(&dir, "r.bin", &data);
    // What a killed `parley upload` leaves: an upload on the server holding
    // the first part, and the state file naming it.
    let base = format!("http://{}/files", server.http_addr().unwrap());
    let mut irc = Client::registered(server.irc_addr(), "ann");
    irc.send("EXTJWT *");
    let token = irc.expect(|l| l.is("EXTJWT"), TIMEOUT).last().to_string();
    let auth = format!("Authorization: Bearer {token}");
    let (head, _) = curl(&[
        "-X",
        "PUT",
        "-H",
        &auth,
        "-H",
        "Upload-Complete: ?0",
        "-H",
        "Upload-Length: 300000",
        "-H",
        "If-None-Match: *",
        "--data-binary",
        "",
        &format!("{base}/r.bin"),
    ]);
    let upload = head
        .lines()
        .find_map(|l| l.strip_prefix("location: ").or_else(|| l.strip_prefix("Location: ")))
        .unwrap_or_else(|| panic!("no upload URL: {head}"))
        .trim()
        .to_string();
    let prefix = write_file(&dir, "prefix", &data[..123_456]);
    let prefix = format!("@{}", prefix.display());
    let (head, _) = curl(&[
        "-X",
        "PATCH",
        "-H",
        &auth,
        "-H",
        "Content-Type: application/partial-upload",
        "-H",
        "Upload-Offset: 0",
        "-H",
        "Upload-Complete: ?0",
        "--data-binary",
        &prefix,
        &upload,
    ]);
    assert!(head.starts_with("HTTP/1.1 204") && head.contains("upload-offset: 123456"), "{head}");
    let digest = parley_hex(&sha2::Sha256::digest(&data));
    let key = parley_hex(&sha2::Sha256::digest(format!("{base}\nr.bin\n{digest}\nfalse")));
    let state = dir.join(".state/parley/uploads");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join(key), &upload).unwrap();
    irc.send("QUIT");
    irc.expect_closed(TIMEOUT);

    let run = parley(&dir, &["upload", "-s", server.irc(), "-n", "ann", "r.bin"], "");
    ok(&run);
    assert!(run.stdout.contains("resumed after"), "{run:#?}");
    assert!(run.stdout.contains("Share link: "), "{run:#?}");
    assert_eq!(std::fs::read_dir(&state).unwrap().count(), 0, "the state file is gone");
    let run = parley(&dir, &["download", "-s", server.irc(), "-n", "ann", "r.bin", "-o", "back.bin"], "");
    ok(&run);
    assert_eq!(std::fs::read(dir.join("back.bin")).unwrap(), data);
}

#[test]
fn an_upload_cut_by_the_network_resumes_in_the_same_run() {
    let proxy = Proxy::start();
    let server = Server::start_with_args("", &["--public-url", &proxy.url()]);
    server.require_file_store();
    proxy.set_upstream(&server.http_addr().unwrap().to_string());
    let dir = server.workdir();
    let data = pattern(4 << 20, 9);
    write_file(&dir, "cut.bin", &data);
    proxy.cut_next_request_after(1 << 20);
    let run = parley(&dir, &["upload", "-s", server.irc(), "-n", "ann", "cut.bin"], "");
    ok(&run);
    assert!(run.stdout.contains("resumed after"), "{run:#?}");
    let run = parley(&dir, &["download", "-s", server.irc(), "-n", "ann", "cut.bin", "-o", "back.bin"], "");
    ok(&run);
    assert_eq!(std::fs::read(dir.join("back.bin")).unwrap(), data);
}

fn parley_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn upload_under_another_name_and_list_as_json() {
    let server = Server::start();
    server.require_file_store();
    let dir = server.workdir();
    let s = server.irc();
    let data = pattern(300_000, 7);
    write_file(&dir, "local.bin", &data);
    ok(&parley(&dir, &["upload", "-s", s, "-n", "ann", "local.bin", "--name", "remote name.bin"], ""));
    let run = parley(&dir, &["files", "-s", s, "-n", "ann", "--json"], "");
    ok(&run);
    let list: serde_json::Value = serde_json::from_str(run.stdout.trim()).expect("JSON on stdout");
    let entry = &list.as_array().unwrap()[0];
    assert_eq!(entry["name"], "remote name.bin");
    assert_eq!(entry["size"], 300_000);
    assert_eq!(entry["uploaded_by"], "ann");
    let run = parley(&dir, &["files", "-s", s, "-n", "ann"], "");
    ok(&run);
    assert!(run.stdout.contains("remote name.bin") && run.stdout.contains("by ann"), "{run:#?}");
}

#[test]
fn download_gives_identical_bytes() {
    let server = Server::start();
    server.require_file_store();
    let dir = server.workdir();
    let s = server.irc();
    let data = pattern(1_000_003, 42);
    write_file(&dir, "big.bin", &data);
    ok(&parley(&dir, &["upload", "-s", s, "-n", "ann", "big.bin"], ""));
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let run = parley(&dir, &["download", "-s", s, "-n", "bob", "big.bin", "-o", "out"], "");
    ok(&run);
    assert!(run.stdout.contains("verified"), "{run:#?}");
    assert_eq!(std::fs::read(out.join("big.bin")).unwrap(), data);
    assert!(!out.join("big.bin.part").exists());
}

#[test]
fn download_of_a_missing_file_fails_with_the_servers_error() {
    let server = Server::start();
    server.require_file_store();
    let dir = server.workdir();
    let run = parley(&dir, &["download", "-s", server.irc(), "-n", "bob", "ghost.txt"], "");
    assert_eq!(run.code, Some(3), "{run:#?}");
    assert!(run.stderr.contains("no file named \"ghost.txt\""), "{run:#?}");
    assert!(!dir.join("ghost.txt").exists() && !dir.join("ghost.txt.part").exists());
}

#[test]
fn download_does_not_replace_a_local_file_unless_forced() {
    let server = Server::start();
    server.require_file_store();
    let dir = server.workdir();
    let s = server.irc();
    write_file(&dir, "a.txt", b"server copy");
    ok(&parley(&dir, &["upload", "-s", s, "-n", "ann", "a.txt"], ""));
    write_file(&dir, "a.txt", b"my local work");
    let run = parley(&dir, &["download", "-s", s, "-n", "ann", "a.txt"], "");
    assert_eq!(run.code, Some(4), "{run:#?}");
    assert_eq!(std::fs::read(dir.join("a.txt")).unwrap(), b"my local work");
    ok(&parley(&dir, &["download", "-s", s, "-n", "ann", "a.txt", "--force"], ""));
    assert_eq!(std::fs::read(dir.join("a.txt")).unwrap(), b"server copy");
}

#[test]
fn an_interrupted_download_resumes_from_its_partial_file() {
    let server = Server::start();
    server.require_file_store();
    let dir = server.workdir();
    let s = server.irc();
    let data = pattern(500_000, 3);
    write_file(&dir, "r.bin", &data);
    ok(&parley(&dir, &["upload", "-s", s, "-n", "ann", "r.bin"], ""));
    std::fs::remove_file(dir.join("r.bin")).unwrap();
    // What an interrupted download leaves: a prefix and the ETag it had.
    let list = parley(&dir, &["files", "-s", s, "-n", "ann", "--json"], "");
    let v: serde_json::Value = serde_json::from_str(list.stdout.trim()).unwrap();
    let sha = v[0]["sha256"].as_str().unwrap().to_string();
    std::fs::write(dir.join("r.bin.part"), &data[..123_456]).unwrap();
    std::fs::write(dir.join("r.bin.part.etag"), format!("\"{sha}\"")).unwrap();
    let run = parley(&dir, &["download", "-s", s, "-n", "ann", "r.bin"], "");
    ok(&run);
    assert!(run.stdout.contains("resumed after"), "{run:#?}");
    assert_eq!(std::fs::read(dir.join("r.bin")).unwrap(), data);
    assert!(!dir.join("r.bin.part").exists() && !dir.join("r.bin.part.etag").exists());
}

#[test]
fn a_partial_file_of_an_older_version_is_not_mixed_into_the_new_one() {
    let server = Server::start();
    server.require_file_store();
    let dir = server.workdir();
    let s = server.irc();
    let new = pattern(200_000, 9);
    write_file(&dir, "v.bin", &new);
    ok(&parley(&dir, &["upload", "-s", s, "-n", "ann", "v.bin"], ""));
    std::fs::remove_file(dir.join("v.bin")).unwrap();
    // A prefix of some other version, with that version's ETag.
    std::fs::write(dir.join("v.bin.part"), pattern(50_000, 1)).unwrap();
    std::fs::write(dir.join("v.bin.part.etag"), format!("\"{}\"", "0".repeat(64))).unwrap();
    let run = parley(&dir, &["download", "-s", s, "-n", "ann", "v.bin"], "");
    ok(&run);
    assert!(!run.stdout.contains("resumed"), "{run:#?}");
    assert_eq!(std::fs::read(dir.join("v.bin")).unwrap(), new);
}

#[test]
fn piped_upload_and_download_commands_work_without_questions() {
    let server = Server::start();
    server.require_file_store();
    let dir = server.workdir();
    let mut listener = PipeClient::start(&server, "listener");
    write_file(&dir, "p.txt", b"piped");
    let run = parley(&dir, &["-s", server.irc(), "-n", "piper"], "/upload p.txt\n/upload p.txt\n/files\n");
    assert_eq!(run.code, Some(4), "second upload refused: {run:#?}");
    assert!(run.stdout.contains("Uploaded p.txt"), "{run:#?}");
    assert!(run.stderr.contains("already exists on the server"), "{run:#?}");
    assert!(run.stdout.contains("p.txt") && run.stdout.contains("by piper"), "{run:#?}");
    listener.expect_out("piper uploaded p.txt");
    std::fs::remove_file(dir.join("p.txt")).unwrap();
    let run = parley(&dir, &["-s", server.irc(), "-n", "piper"], "/download p.txt\n/download nope.txt\n");
    assert_eq!(run.code, Some(3), "{run:#?}");
    assert_eq!(std::fs::read(dir.join("p.txt")).unwrap(), b"piped");
    assert!(run.stderr.contains("no file named \"nope.txt\""), "{run:#?}");
}

// --- TLS --------------------------------------------------------------------

const TLS_CONFIG: &str = "[irc]\ntls_listen = [\"127.0.0.1:0\"]\n[files]\ntls_listen = [\"127.0.0.1:0\"]\n";

/// The SHA-256 fingerprint of the server's certificate, as parleyd prints it.
fn cert_fingerprint(server: &Server) -> String {
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateDer::from_pem_file(server.tls_cert()).expect("the generated certificate");
    sha2::Sha256::digest(der.as_ref()).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

use sha2::Digest;

#[test]
fn over_tls_an_untrusted_certificate_is_refused_and_ca_or_insecure_let_you_in() {
    let server = Server::start_with(TLS_CONFIG);
    let ircs = format!("ircs://{}", server.addr("ircs").expect("ircs= in the readiness line"));
    let dir = server.workdir();
    let mut obs = observer(&server, "watcher");

    let run = parley(&dir, &["send", "-s", &ircs, "-n", "plain", "hi"], "");
    assert_eq!(run.code, Some(6), "{run:#?}");
    assert!(run.stderr.contains("not trusted") && run.stderr.contains("--ca"), "{run:#?}");

    let cert = server.tls_cert();
    let run = parley(&dir, &["send", "-s", &ircs, "--ca", cert.to_str().unwrap(), "-n", "pinned", "over tls"], "");
    ok(&run);
    obs.expect_raw(|l| l.starts_with(":pinned!") && l.contains(":over tls"), TIMEOUT);

    let run = parley(&dir, &["send", "-s", &ircs, "--insecure", "-n", "brave", "unchecked"], "");
    ok(&run);
    assert!(run.stderr.contains(&format!("fingerprint is {}", cert_fingerprint(&server))), "{run:#?}");
    obs.expect_raw(|l| l.starts_with(":brave!") && l.ends_with("unchecked"), TIMEOUT);
}

#[test]
fn an_sts_policy_moves_the_client_to_tls_and_is_remembered() {
    let server = Server::start_with("[irc]\ntls_listen = [\"127.0.0.1:0\"]\nsts_duration_secs = 600\n");
    let dir = server.workdir();
    let mut obs = observer(&server, "watcher");
    let plain_connects =
        || server.log_text().lines().filter(|l| l.contains(" connect ") && l.contains("transport=\"plain\"")).count();
    // Untrusted certificate: no fallback to plain text.
    let run = parley(&dir, &["send", "-s", server.irc(), "-n", "wary", "hi"], "");
    assert_eq!(run.code, Some(6), "{run:#?}");
    assert!(run.stderr.contains("STS") && run.stderr.contains("not trusted"), "{run:#?}");
    let cert = server.tls_cert();
    let ca = cert.to_str().unwrap();
    let run = parley(&dir, &["send", "-s", server.irc(), "--ca", ca, "-n", "upgraded", "now over tls"], "");
    ok(&run);
    obs.expect_raw(|l| l.starts_with(":upgraded!") && l.ends_with("now over tls"), TIMEOUT);
    let log = server.wait_for_log(|t| t.contains("nick=\"upgraded\""), TIMEOUT);
    assert!(!log.lines().any(|l| l.contains(" registered ") && l.contains("upgraded") && l.contains("plain")));
    let policy = std::fs::read_to_string(dir.join(".state/parley/sts")).expect("the policy is kept");
    let tls_port = server.addr("ircs").unwrap().port();
    assert!(policy.starts_with(&format!("127.0.0.1 {tls_port} ")), "{policy}");
    // Next time the client goes to TLS at once: no plain connection.
    let before = plain_connects();
    let run = parley(&dir, &["send", "-s", server.irc(), "--ca", ca, "-n", "direct", "straight to tls"], "");
    ok(&run);
    obs.expect_raw(|l| l.starts_with(":direct!") && l.ends_with("straight to tls"), TIMEOUT);
    server.wait_for_log(|t| t.contains("nick=\"direct\""), TIMEOUT);
    assert_eq!(plain_connects(), before, "the remembered policy skipped plain text");
}

#[test]
fn files_travel_over_https_when_the_server_advertises_it() {
    let server = Server::start_with(TLS_CONFIG);
    let dir = server.workdir();
    let cert = server.tls_cert();
    let ca = cert.to_str().unwrap();
    let data = pattern(150_000, 8);
    write_file(&dir, "secure.bin", &data);
    // The IRC side is plain text here, but the store is advertised as https.
    let run = parley(&dir, &["upload", "-s", server.irc(), "-n", "sec", "secure.bin"], "");
    assert_eq!(run.code, Some(6), "the certificate is not trusted yet: {run:#?}");
    assert!(run.stderr.contains("--ca"), "{run:#?}");
    ok(&parley(&dir, &["upload", "-s", server.irc(), "--ca", ca, "-n", "sec", "secure.bin"], ""));
    let run =
        parley(&dir, &["download", "-s", server.irc(), "--ca", ca, "-n", "sec", "secure.bin", "-o", "back.bin"], "");
    ok(&run);
    assert_eq!(std::fs::read(dir.join("back.bin")).unwrap(), data);
}
