//! Resumable uploads (IETF draft, interop version 8) against the real
//! `parleyd`: uploads cut at several offsets (mid-chunk, by a dropped
//! socket, by a killed curl) complete with identical bytes; an abandoned
//! one is removed; every bad input gets a clear 4xx and changes nothing.

#[allow(dead_code)]
mod support;

use base64::Engine;
use parley_testkit::{Server, TIMEOUT};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;
use support::http::{request, sha256_hex, Pattern, Response};

fn http(server: &Server) -> SocketAddr {
    server.http_addr().expect("the readiness line names the file store")
}

fn basic(name: &str, password: &str) -> (&'static str, String) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
    ("Authorization", format!("Basic {b64}"))
}

fn alice() -> (&'static str, String) {
    basic("alice", "alice-pass")
}

fn h(k: &'static str, v: impl ToString) -> (&'static str, String) {
    (k, v.to_string())
}

fn path_of(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    rest[rest.find('/').unwrap()..].to_string()
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    Pattern::new(seed).fill(&mut v);
    v
}

/// Starts a resumable upload of a file `length` bytes long; returns the
/// upload's path.
fn create(server: &Server, name: &str, length: usize) -> String {
    let r = request(
        http(server),
        "POST",
        "/files",
        &[
            alice(),
            h("Upload-Complete", "?0"),
            h("Upload-Length", length),
            h("Upload-Draft-Interop-Version", 8),
            h("Content-Disposition", format!("attachment; filename=\"{name}\"")),
        ],
        Some(b""),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("upload-offset"), Some("0"));
    assert_eq!(r.header("upload-draft-interop-version"), Some("8"));
    path_of(r.header("location").expect("the upload's URL"))
}

/// Asks for the offset as a resuming client does: a `409` means a request
/// that reached the server after this one (a dropped append still being
/// processed) holds the upload; ask again.
fn offset(server: &Server, upload: &str) -> u64 {
    for _ in 0..20 {
        let r = request(http(server), "HEAD", upload, &[alice()], None);
        if r.status == 409 {
            continue;
        }
        assert_eq!(r.status, 204, "HEAD {upload}");
        assert_eq!(r.header("cache-control"), Some("no-store"));
        return r.header("upload-offset").unwrap().parse().unwrap();
    }
    panic!("HEAD {upload} kept being superseded");
}

/// Sends the rest of `data` from the server's offset, following the
/// offset a `409` names (a late append may have moved it).
fn finish(server: &Server, upload: &str, data: &[u8]) -> Response {
    let mut at = offset(server, upload) as usize;
    for _ in 0..20 {
        let r = patch(server, upload, at as u64, &data[at..], true, &[]);
        if r.status != 409 {
            return r;
        }
        at = r.header("upload-offset").expect("a 409 names the offset").parse().unwrap();
    }
    panic!("PATCH {upload} kept conflicting");
}

fn patch(
    server: &Server,
    upload: &str,
    at: u64,
    body: &[u8],
    complete: bool,
    extra: &[(&'static str, String)],
) -> Response {
    let mut headers = vec![
        alice(),
        h("Content-Type", "application/partial-upload"),
        h("Upload-Offset", at),
        h("Upload-Complete", if complete { "?1" } else { "?0" }),
    ];
    headers.extend(extra.iter().cloned());
    request(http(server), "PATCH", upload, &headers, Some(body))
}

/// Sends a PATCH declaring all of `body` but only `sent` bytes of it, then
/// drops the connection, as a client that loses its network does.
fn patch_and_drop(server: &Server, upload: &str, at: u64, body: &[u8], sent: usize) {
    let mut s = TcpStream::connect(http(server)).unwrap();
    let (k, auth) = alice();
    let head = format!(
        "PATCH {upload} HTTP/1.1\r\nHost: test\r\n{k}: {auth}\r\nContent-Type: application/partial-upload\r\nUpload-Offset: {at}\r\nUpload-Complete: ?1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body[..sent]).unwrap();
    s.flush().unwrap();
    // RST, not FIN: the peer vanished.
    let _ = socket_reset(s);
}

fn socket_reset(s: TcpStream) -> std::io::Result<()> {
    let sock = socket2::Socket::from(s);
    sock.set_linger(Some(std::time::Duration::ZERO))?;
    drop(sock);
    Ok(())
}

fn tmp_bytes(server: &Server) -> u64 {
    std::fs::read_dir(server.data_dir().join("files/tmp"))
        .map(|d| d.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

fn tmp_files(server: &Server) -> usize {
    std::fs::read_dir(server.data_dir().join("files/tmp")).map(|d| d.count()).unwrap_or(0)
}

fn with_alice(config: &str) -> Server {
    let server = Server::start_with(config);
    server.add_account("alice", "alice-pass");
    server
}

#[test]
fn an_upload_cut_at_several_offsets_completes_with_identical_bytes() {
    let server = with_alice("");
    let data = pattern(3 << 20, 7);
    let upload = create(&server, "big.bin", data.len());
    // Cut mid-request at several points, some far from any chunk edge.
    for cut in [1usize, 100_003, 1 << 20, (2 << 20) + 12_345] {
        let at = offset(&server, &upload);
        assert!(at as usize <= cut, "the server cannot have more than was sent");
        patch_and_drop(&server, &upload, at, &data[at as usize..], cut - at as usize);
        // Whatever the server kept, it kept exactly: resuming from its
        // offset with the same bytes must give the whole file.
    }
    let r = finish(&server, &upload, &data);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("upload-complete"), Some("?1"));
    assert_eq!(r.json()["name"], "big.bin");
    assert_eq!(r.json()["sha256"], sha256_hex(&data));
    let got = request(http(&server), "GET", &path_of(r.header("location").unwrap()), &[], None);
    assert_eq!(sha256_hex(&got.body), sha256_hex(&data));
    assert_eq!(tmp_files(&server), 0, "nothing left in staging");
    assert_eq!(request(http(&server), "HEAD", &upload, &[alice()], None).status, 404, "finished uploads are gone");
}

#[test]
fn an_upload_whose_curl_is_killed_resumes_from_what_arrived() {
    let server = with_alice("");
    let data = pattern(4 << 20, 11);
    let upload = create(&server, "killed.bin", data.len());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, &data).unwrap();
    let (_, auth) = alice();
    let url = format!("http://{}{upload}", http(&server));
    let mut curl = std::process::Command::new("curl")
        .args(["-sS", "-X", "PATCH", "--limit-rate", "256k", "-H", &format!("Authorization: {auth}")])
        .args(["-H", "Content-Type: application/partial-upload", "-H", "Upload-Offset: 0", "-H", "Upload-Complete: ?1"])
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg(&url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("curl is installed (tools/test.sh installs it)");
    // Wait until some of the body is on the server's disk, then kill curl.
    let deadline = Instant::now() + TIMEOUT;
    while tmp_bytes(&server) < 100_000 {
        assert!(Instant::now() < deadline, "the upload never started");
        std::thread::yield_now();
    }
    curl.kill().unwrap();
    curl.wait().unwrap();
    let at = offset(&server, &upload) as usize;
    assert!(at > 0 && at < data.len(), "part of the file arrived: {at}");
    let r = finish(&server, &upload, &data);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["sha256"], sha256_hex(&data));
}

#[test]
fn an_abandoned_upload_is_removed_after_the_timeout() {
    let server = with_alice("[files]\nresumable_timeout_secs = 1\n");
    let upload = create(&server, "left.bin", 100);
    assert_eq!(patch(&server, &upload, 0, &[1; 40], false, &[]).status, 204);
    assert_eq!(tmp_bytes(&server), 40);
    // The sweep (every second) logs what it removed once it is gone.
    server.wait_for_log(|t| t.contains("uploads_abandoned"), TIMEOUT);
    assert_eq!(tmp_files(&server), 0, "the abandoned upload's bytes are gone");
    let r = request(http(&server), "HEAD", &upload, &[alice()], None);
    assert_eq!(r.status, 404);
}

#[test]
fn every_bad_append_gets_a_clear_4xx_and_changes_nothing() {
    let server = with_alice("[files]\nmax_file_bytes = 1000\n");
    server.add_account("mallory", "mallory-pass");
    let upload = create(&server, "careful.txt", 100);
    assert_eq!(patch(&server, &upload, 0, &[b'a'; 30], false, &[]).status, 204);
    let unchanged = |why: &str| {
        assert_eq!(offset(&server, &upload), 30, "{why}");
        assert_eq!(tmp_bytes(&server), 30, "{why}");
    };
    // A wrong offset, behind or ahead: 409 with the right one.
    for at in [0, 29, 31, 500] {
        let r = patch(&server, &upload, at, b"x", false, &[]);
        assert_eq!(r.status, 409, "{}", r.text());
        assert_eq!(r.header("upload-offset"), Some("30"));
        assert!(r.message().contains("from byte 30"), "{}", r.message());
        unchanged("wrong offset");
    }
    // Past the declared length: refused, and the bytes already written by
    // this request are taken back.
    let r = patch(&server, &upload, 30, &[b'b'; 80], false, &[]);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.message().contains("length of 100"), "{}", r.message());
    unchanged("beyond length");
    // A different length than declared.
    let r = patch(&server, &upload, 30, b"x", false, &[h("Upload-Length", 200)]);
    assert_eq!(r.status, 400);
    unchanged("inconsistent length");
    // Someone else's upload.
    let mut theirs = vec![basic("mallory", "mallory-pass")];
    theirs.extend([
        h("Content-Type", "application/partial-upload"),
        h("Upload-Offset", 30),
        h("Upload-Complete", "?0"),
    ]);
    let r = request(http(&server), "PATCH", &upload, &theirs, Some(b"evil"));
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(request(http(&server), "HEAD", &upload, &[basic("mallory", "mallory-pass")], None).status, 403);
    assert_eq!(request(http(&server), "DELETE", &upload, &[basic("mallory", "mallory-pass")], None).status, 403);
    unchanged("not the owner");
    // Not partial-upload, no offset, no Upload-Complete, no login.
    let r = request(
        http(&server),
        "PATCH",
        &upload,
        &[alice(), h("Upload-Offset", 30), h("Upload-Complete", "?0")],
        Some(b"x"),
    );
    assert_eq!(r.status, 415);
    let r = request(
        http(&server),
        "PATCH",
        &upload,
        &[alice(), h("Content-Type", "application/partial-upload"), h("Upload-Complete", "?0")],
        Some(b"x"),
    );
    assert_eq!(r.status, 400);
    assert!(r.message().contains("Upload-Offset"));
    let r = request(
        http(&server),
        "PATCH",
        &upload,
        &[alice(), h("Content-Type", "application/partial-upload"), h("Upload-Offset", 30)],
        Some(b"x"),
    );
    assert_eq!(r.status, 400);
    assert_eq!(request(http(&server), "HEAD", &upload, &[], None).status, 401);
    unchanged("malformed appends");
    // An unknown upload.
    let unknown = "/files/uploads/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(request(http(&server), "HEAD", unknown, &[alice()], None).status, 404);
    let r = request(http(&server), "DELETE", unknown, &[alice()], None);
    assert_eq!(r.status, 404);
    assert!(r.message().contains("Start the upload again"), "{}", r.message());
    // A digest that does not match the whole: nothing is stored at all.
    let wrong = format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode([0u8; 32]));
    let r = patch(&server, &upload, 30, &[b'c'; 70], true, &[h("Repr-Digest", wrong)]);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.message().contains("nothing was stored"));
    assert_eq!(tmp_files(&server), 0);
    assert!(request(http(&server), "GET", "/files", &[alice()], None).json().as_array().unwrap().is_empty());
    // Over the size limit, at creation: 413 with the limit.
    let r = request(
        http(&server),
        "POST",
        "/files",
        &[alice(), h("Upload-Complete", "?0"), h("Upload-Length", 5000)],
        Some(b""),
    );
    assert_eq!(r.status, 413);
    assert!(r.header("upload-limit").unwrap().contains("max-size=1000"));
    // Over the size limit while appending without a declared length.
    let r = request(http(&server), "POST", "/files", &[alice(), h("Upload-Complete", "?0")], Some(b"start"));
    assert_eq!(r.status, 201);
    let open = path_of(r.header("location").unwrap());
    let r = patch(&server, &open, 5, &[0; 1200], false, &[]);
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(offset(&server, &open), 5, "the refused append was taken back");
    assert_eq!(request(http(&server), "DELETE", &open, &[alice()], None).status, 204);
    assert_eq!(tmp_files(&server), 0, "cancelled uploads leave nothing");
}

#[test]
fn a_resumable_put_keeps_its_name_and_precondition() {
    let server = with_alice("");
    let put = |headers: &[(&'static str, String)]| {
        let mut all = vec![alice(), h("Upload-Complete", "?0"), h("If-None-Match", "*")];
        all.extend(headers.iter().cloned());
        request(http(&server), "PUT", "/files/report.txt", &all, Some(b"first half, "))
    };
    let r = put(&[]);
    assert_eq!(r.status, 201, "{}", r.text());
    let upload = path_of(r.header("location").unwrap());
    assert_eq!(r.header("upload-offset"), Some("12"));
    // The name is taken meanwhile: the precondition fails at the end.
    let r = put(&[]);
    let second = path_of(r.header("location").unwrap());
    let r = patch(&server, &second, 12, b"second", true, &[]);
    assert_eq!(r.status, 201, "{}", r.text());
    let r = patch(&server, &upload, 12, b"second half", true, &[]);
    assert_eq!(r.status, 412, "{}", r.text());
    assert_eq!(tmp_files(&server), 0);
    let got = request(http(&server), "GET", "/files/report.txt", &[alice()], None);
    assert_eq!(got.body, b"first half, second");
}

#[test]
fn staged_bytes_count_toward_the_quota() {
    let server = with_alice("[files]\nquota_bytes = 1000\nmax_file_bytes = 1000\n");
    let upload = create(&server, "big.bin", 900);
    assert_eq!(patch(&server, &upload, 0, &[0; 800], false, &[]).status, 204);
    let r = request(http(&server), "PUT", "/files/other.bin", &[alice()], Some(&[0; 300]));
    assert_eq!(r.status, 507, "{}", r.text());
    let r = request(http(&server), "OPTIONS", "/files", &[], None);
    assert_eq!(r.header("accept-patch"), Some("application/partial-upload"));
}

#[test]
fn a_resumed_upload_takes_over_from_a_stalled_request() {
    let server = with_alice("");
    let data = pattern(200_000, 3);
    let upload = create(&server, "stall.bin", data.len());
    // A request that sends half and then hangs without closing.
    let mut s = TcpStream::connect(http(&server)).unwrap();
    let (k, auth) = alice();
    let head = format!(
        "PATCH {upload} HTTP/1.1\r\nHost: t\r\n{k}: {auth}\r\nContent-Type: application/partial-upload\r\nUpload-Offset: 0\r\nUpload-Complete: ?1\r\nContent-Length: {}\r\n\r\n",
        data.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&data[..100_000]).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    while tmp_bytes(&server) < 100_000 {
        assert!(Instant::now() < deadline, "the first half never arrived");
        std::thread::yield_now();
    }
    // The client gives up on it and resumes: HEAD takes the upload over.
    let at = offset(&server, &upload);
    assert_eq!(at, 100_000);
    let mut answer = String::new();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 409"), "the stalled request is told it was superseded: {answer}");
    let r = patch(&server, &upload, at, &data[at as usize..], true, &[]);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["sha256"], sha256_hex(&data));
}
