//! `parleyd backup` and `parleyd restore` against a running server: a
//! backup taken during a storm of account registrations, restored into a
//! new data directory, holds every account committed before it began and
//! every file uploaded, byte for byte, and a server starts on it.

#[allow(dead_code)] // this test uses a part of the shared support code
mod support;

use parley_testkit::server::parleyd_bin;
use parley_testkit::{Client, Server, TIMEOUT};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use support::http::{request, sha256_hex};

fn parleyd(data: &Path, args: &[&str]) -> Output {
    Command::new(parleyd_bin()).arg("--data-dir").arg(data).args(args).output().expect("running parleyd")
}

fn token(server: &Server, nick: &str) -> (Client, String) {
    let mut irc = Client::registered(server.irc_addr(), nick);
    irc.send("EXTJWT *");
    let token = irc.expect(|l| l.is("EXTJWT"), TIMEOUT).last().to_string();
    (irc, token)
}

const CONFIG: &str =
    "[accounts]\nregistrations_per_ip = 100000\nregistrations_total = 100000\nnick_enforcement = \"off\"\n";

#[test]
fn a_backup_taken_under_load_restores_every_committed_account_and_file() {
    let server = Server::start_with(CONFIG);
    let (_irc, bearer) = token(&server, "uploader");
    let http = server.http_addr().unwrap();
    let bodies: Vec<Vec<u8>> = (0..3).map(|i| vec![b'a' + i as u8; 10_000 * (i + 1)]).collect();
    for (i, body) in bodies.iter().enumerate() {
        let auth = [("Authorization", format!("Bearer {bearer}"))];
        let put = request(http, "PUT", &format!("/files/f{i}.bin"), &auth, Some(body));
        assert_eq!(put.status, 201, "{}", put.text());
    }

    // A storm of registrations, each noted once the server said SUCCESS.
    let committed = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let storm: Vec<_> = (0..4)
        .map(|w| {
            let (addr, committed, stop) = (server.irc_addr(), committed.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) && n < 500 {
                    let nick = format!("w{w}u{n}");
                    let mut c = Client::registered(addr, &nick);
                    c.send("REGISTER * * a-good-password");
                    let answer = c.expect(|l| l.is("REGISTER") || l.is("FAIL"), TIMEOUT);
                    assert!(answer.is("REGISTER"), "{}", answer.raw);
                    committed.lock().unwrap().push(nick);
                    n += 1;
                }
            })
        })
        .collect();
    // Let the storm get going: some registrations are in before the backup.
    while committed.lock().unwrap().len() < 20 {
        std::thread::yield_now();
    }
    let before: Vec<String> = committed.lock().unwrap().clone();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("backup");
    let taken = parleyd(&server.data_dir(), &["backup", dest.to_str().unwrap()]);
    stop.store(true, Ordering::Relaxed);
    for worker in storm {
        worker.join().unwrap();
    }
    assert!(taken.status.success(), "{}", String::from_utf8_lossy(&taken.stderr));
    assert!(String::from_utf8_lossy(&taken.stdout).contains("3 file entries"), "{:?}", taken);

    let restored = Server::start_prepared(CONFIG, |data| {
        let put_back = parleyd(data, &["restore", dest.to_str().unwrap()]);
        assert!(put_back.status.success(), "{}", String::from_utf8_lossy(&put_back.stderr));
        let listed = String::from_utf8(parleyd(data, &["account", "list"]).stdout).unwrap();
        for nick in &before {
            assert!(listed.lines().any(|l| l == nick), "{nick} was committed before the backup");
        }
    });
    let (_irc, bearer) = token(&restored, "reader");
    for (i, body) in bodies.iter().enumerate() {
        let auth = [("Authorization", format!("Bearer {bearer}"))];
        let got = request(restored.http_addr().unwrap(), "GET", &format!("/files/f{i}.bin"), &auth, None);
        assert_eq!(got.status, 200);
        assert_eq!(sha256_hex(&got.body), sha256_hex(body), "f{i}.bin is the same");
    }
    // A second restore into the now used data directory is refused.
    let again = parleyd(&restored.data_dir(), &["restore", dest.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));
}

#[test]
fn backup_refuses_a_directory_that_is_not_empty() {
    let server = Server::start();
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("something"), b"x").unwrap();
    let refused = parleyd(&server.data_dir(), &["backup", out.path().to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("back up into a new or empty directory"));
}
