//! The file store over real HTTP against the real `parleyd`: uploads are
//! all-or-nothing, names and tokens are checked, ranges resume, limits hold.

mod support;

use parley_testkit::{Client, Server, ADMIN_NAME, ADMIN_PASSWORD, TIMEOUT};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::http::{
    abandon_upload, download_hashed, request, sha256_hex, start_partial_upload, upload_pattern, Response,
};

/// A registered IRC user holding a file-store token.
struct User {
    irc: Client,
    token: String,
}

impl User {
    fn new(server: &Server, nick: &str) -> User {
        let mut irc = Client::registered(server.irc_addr(), nick);
        let token = fetch_token(&mut irc);
        User { irc, token }
    }

    fn auth(&self) -> (&'static str, String) {
        ("Authorization", format!("Bearer {}", self.token))
    }
}

fn fetch_token(irc: &mut Client) -> String {
    irc.send("EXTJWT *");
    irc.expect(|l| l.is("EXTJWT"), TIMEOUT).last().to_string()
}

fn http(server: &Server) -> SocketAddr {
    server.http_addr().expect("the readiness line names the file store")
}

fn put(server: &Server, user: &User, name: &str, body: &[u8], extra: &[(&str, String)]) -> Response {
    let mut headers = vec![user.auth()];
    headers.extend(extra.iter().cloned());
    request(http(server), "PUT", &format!("/files/{name}"), &headers, Some(body))
}

fn get(server: &Server, user: &User, name: &str, extra: &[(&str, String)]) -> Response {
    let mut headers = vec![user.auth()];
    headers.extend(extra.iter().cloned());
    request(http(server), "GET", &format!("/files/{name}"), &headers, None)
}

fn create_only() -> (&'static str, String) {
    ("If-None-Match", "*".to_string())
}

/// Files in the store's temp directory (uploads in progress or left over).
fn tmp_files(server: &Server) -> usize {
    std::fs::read_dir(server.data_dir().join("files/tmp")).map(|d| d.count()).unwrap_or(0)
}

/// `token` with its `exp` moved 60 s into the past, signed with the key in
/// `key_file` (HS256, as `files/auth.rs` signs).
fn expired_copy(token: &str, key_file: &std::path::Path) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let mut parts = token.split('.');
    let (header, payload) = (parts.next().unwrap(), parts.next().unwrap());
    let mut claims: serde_json::Value = serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap();
    let iat = claims["iat"].as_i64().unwrap();
    claims["exp"] = serde_json::json!(iat - 60);
    let payload = B64.encode(serde_json::to_vec(&claims).unwrap());
    let key = hex::decode(std::fs::read_to_string(key_file).unwrap().trim()).unwrap();
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(format!("{header}.{payload}").as_bytes());
    format!("{header}.{payload}.{}", B64.encode(mac.finalize().into_bytes()))
}

fn vm_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

#[test]
fn filehost_and_token_are_offered_to_registered_clients() {
    let server = Server::start();
    let mut c = Client::connect(server.irc_addr());
    c.send("NICK alice");
    c.send("USER alice 0 * :Alice");
    let isupport = c.expect(|l| l.is("005") && l.params.iter().any(|p| p.starts_with("draft/FILEHOST=")), TIMEOUT);
    let url = isupport.params.iter().find_map(|p| p.strip_prefix("draft/FILEHOST=")).unwrap().to_string();
    assert_eq!(url, format!("http://{}/files", http(&server)));
    c.expect(|l| l.is("366"), TIMEOUT);
    let token = fetch_token(&mut c);
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
}

#[test]
fn upload_then_download_gives_identical_bytes() {
    let server = Server::start();
    let alice = User::new(&server, "alice");
    let body = b"the seed's upload, done right\n".repeat(1000);
    let r = put(&server, &alice, "notes.txt", &body, &[create_only()]);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("etag"), Some(format!("\"{}\"", sha256_hex(&body)).as_str()));
    let d = get(&server, &alice, "notes.txt", &[]);
    assert_eq!(d.status, 200);
    assert_eq!(d.body, body);
    assert!(d.header("repr-digest").is_some_and(|v| v.starts_with("sha-256=:")));
    let list = request(http(&server), "GET", "/files", &[alice.auth()], None).json();
    assert_eq!(list[0]["name"], "notes.txt");
    assert_eq!(list[0]["size"], body.len() as u64);
    assert_eq!(list[0]["uploaded_by"], "alice");
    assert_eq!(list[0]["sha256"], sha256_hex(&body));
}

#[test]
fn a_large_upload_streams_with_flat_server_memory() {
    let server = Server::start();
    let alice = User::new(&server, "alice");
    let rss_before = vm_kib(server.pid(), "VmRSS:");
    let len: u64 = 150 << 20;
    let (r, sent_sha) = upload_pattern(http(&server), "/files/big.bin", &[alice.auth()], len, 7);
    assert_eq!(r.status, 201, "{}", r.text());
    let (d, n, got_sha) = download_hashed(http(&server), "/files/big.bin", &[alice.auth()]);
    assert_eq!(d.status, 200);
    assert_eq!((n, got_sha.as_str()), (len, sent_sha.as_str()));
    let peak = vm_kib(server.pid(), "VmHWM:");
    // 150 MiB went through both ways; the server's peak stays tens of MiB.
    assert!(peak < rss_before + 64 * 1024, "peak RSS {peak} KiB, at rest {rss_before} KiB");
}

#[test]
fn upload_with_existing_name_is_refused_without_overwrite() {
    let server = Server::start();
    let alice = User::new(&server, "alice");
    let bob = User::new(&server, "bob");
    assert_eq!(put(&server, &alice, "a.txt", b"old", &[create_only()]).status, 201);
    let r = put(&server, &bob, "a.txt", b"new content", &[create_only()]);
    assert_eq!(r.status, 412);
    assert!(r.message().contains("already exists"), "{}", r.message());
    assert_eq!(get(&server, &bob, "a.txt", &[]).body, b"old");
    server.wait_for_log(|t| t.contains("upload_refused") && t.contains("nick=\"bob\""), TIMEOUT);
}

#[test]
fn a_plain_put_replaces_and_if_match_guards_versions() {
    let server = Server::start();
    let alice = User::new(&server, "alice");
    let first = put(&server, &alice, "a.txt", b"one", &[]);
    assert_eq!(first.status, 201);
    let etag1 = first.header("etag").unwrap().to_string();
    let second = put(&server, &alice, "a.txt", b"two", &[]);
    assert_eq!(second.status, 200, "replacing answers 200");
    assert_eq!(get(&server, &alice, "a.txt", &[]).body, b"two");
    // If-Match with the stale version is refused and changes nothing.
    let stale = put(&server, &alice, "a.txt", b"three", &[("If-Match", etag1)]);
    assert_eq!(stale.status, 412);
    assert_eq!(get(&server, &alice, "a.txt", &[]).body, b"two");
    let etag2 = second.header("etag").unwrap().to_string();
    assert_eq!(put(&server, &alice, "a.txt", b"three", &[("If-Match", etag2)]).status, 200);
    assert_eq!(get(&server, &alice, "a.txt", &[]).body, b"three");
    server.wait_for_log(|t| t.contains(" overwrite ") && t.contains("name=\"a.txt\""), TIMEOUT);
}

#[test]
fn wrong_digest_is_refused_and_nothing_changes() {
    let server = Server::start();
    let alice = User::new(&server, "alice");
    assert_eq!(put(&server, &alice, "a.txt", b"original", &[]).status, 201);
    let wrong = ("Repr-Digest", "sha-256=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:".to_string());
    let r = put(&server, &alice, "a.txt", b"tampered", &[wrong]);
    assert_eq!(r.status, 400);
    assert!(r.message().contains("SHA-256"), "{}", r.message());
    assert_eq!(get(&server, &alice, "a.txt", &[]).body, b"original");
    let malformed = ("Content-Digest", "sha-256=:notbase64:".to_string());
    assert_eq!(put(&server, &alice, "a.txt", b"x", &[malformed]).status, 400);
    // The right digest is accepted.
    use base64::Engine;
    let raw = hex::decode(sha256_hex(b"fixed")).unwrap();
    let right = ("Repr-Digest", format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(raw)));
    assert_eq!(put(&server, &alice, "a.txt", b"fixed", &[right]).status, 200);
    // The refused bodies' temp files went before the 400s were sent.
    assert_eq!(tmp_files(&server), 0);
}

#[test]
fn a_client_that_disconnects_half_way_leaves_no_trace() {
    let server = Server::start();
    let alice = User::new(&server, "alice");
    assert_eq!(put(&server, &alice, "keep.txt", b"previous", &[]).status, 201);
    let sock = start_partial_upload(http(&server), "/files/keep.txt", &[alice.auth()], 1 << 20, 300 * 1024);
    let sock2 = start_partial_upload(http(&server), "/files/new.txt", &[alice.auth()], 1 << 20, 300 * 1024);
    assert_eq!(tmp_files(&server), 2, "both uploads are being written");
    // The clients go away half-way; the server's answer is the signal that
    // it has dropped what it had received.
    assert_eq!(abandon_upload(sock), 400);
    assert_eq!(abandon_upload(sock2), 400);
    assert_eq!(tmp_files(&server), 0);
    assert_eq!(get(&server, &alice, "keep.txt", &[]).body, b"previous");
    assert_eq!(get(&server, &alice, "new.txt", &[]).status, 404);
    let names: Vec<String> = request(http(&server), "GET", "/files", &[alice.auth()], None)
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["keep.txt"]);
}

#[test]
fn missing_file_is_404_with_a_clear_message() {
    let server = Server::start();
    let alice = User::new(&server, "alice");
    let r = get(&server, &alice, "nothing.txt", &[]);
    assert_eq!(r.status, 404);
    assert!(r.message().contains("no file named"), "{}", r.message());
}

#[test]
fn every_bad_name_is_refused_with_400_and_a_reason() {
    let server = Server::start();
    let alice = User::new(&server, "alice");
    for path in [
        "/files/..",
        "/files/.",
        "/files/%2e%2e",
        "/files/%2e%2e%2fetc%2fpasswd",
        "/files/..%2f..%2fserver_log.txt",
        "/files/%2Fetc%2Fpasswd",
        "/files/a%5Cb",
        "/files/a%00b",
        "/files/a%0Ab",
        "/files/evil%E2%80%AEtxt.exe",
        "/files/a%E2%88%95b",
        "/files/%20lead",
    ] {
        let r = request(http(&server), "PUT", path, &[alice.auth()], Some(b"x"));
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert!(r.message().starts_with("Refused file name"), "{path}: {}", r.message());
        let r = request(http(&server), "GET", path, &[alice.auth()], None);
        assert_eq!(r.status, 400, "GET {path}");
    }
    let long = format!("/files/{}", "a".repeat(201));
    assert_eq!(request(http(&server), "PUT", &long, &[alice.auth()], Some(b"x")).status, 400);
    // Nothing was written anywhere: the store is empty and the data dir holds
    // only what the server made itself.
    assert!(request(http(&server), "GET", "/files", &[alice.auth()], None).json().as_array().unwrap().is_empty());
    assert!(!server.root_dir().join("etc").exists());
}

#[test]
fn requests_without_a_live_valid_token_get_401() {
    let server = Server::start();
    let addr = http(&server);
    let none = request(addr, "GET", "/files", &[], None);
    assert_eq!(none.status, 401);
    assert!(none.message().contains("EXTJWT"), "{}", none.message());
    assert!(none.header("www-authenticate").is_some());
    let garbage = request(addr, "PUT", "/files/x", &[("Authorization", "Bearer a.b.c".into())], Some(b"x"));
    assert_eq!(garbage.status, 401);
    // A token whose IRC session has ended stops working at once.
    let mut gone = User::new(&server, "gone");
    let auth = gone.auth();
    assert_eq!(request(addr, "GET", "/files", std::slice::from_ref(&auth), None).status, 200);
    gone.irc.send("QUIT :bye");
    gone.irc.expect_closed(TIMEOUT);
    let r = request(addr, "GET", "/files", &[auth], None);
    assert_eq!(r.status, 401);
    assert!(r.message().contains("has ended"), "{}", r.message());
    // A token past its `exp` is refused even while its session lives. Rather
    // than wait for the clock, re-sign this session's own token with the
    // server's key (from the data directory) and an `exp` in the past.
    let alive = User::new(&server, "alive");
    assert_eq!(request(addr, "GET", "/files", &[alive.auth()], None).status, 200);
    let stale = expired_copy(&alive.token, &server.data_dir().join("jwt.key"));
    let expired = request(addr, "GET", "/files", &[("Authorization", format!("Bearer {stale}"))], None);
    assert_eq!(expired.status, 401);
    assert!(expired.message().contains("expired"), "{}", expired.message());
    server.wait_for_log(|t| t.contains("http_auth_failed"), TIMEOUT);
    assert!(!server.log_text().contains(&alive.token), "tokens never reach the log");
}

#[test]
fn ranges_resume_a_download_and_if_range_protects_against_changes() {
    let server = Server::start();
    let alice = User::new(&server, "alice");
    let body: Vec<u8> = (0..10_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let etag = put(&server, &alice, "r.bin", &body, &[]).header("etag").unwrap().to_string();
    let r = get(&server, &alice, "r.bin", &[("Range", "bytes=1000-".into())]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some(format!("bytes 1000-{}/{}", body.len() - 1, body.len()).as_str()));
    assert_eq!(r.body, &body[1000..]);
    let r = get(&server, &alice, "r.bin", &[("Range", "bytes=-10".into())]);
    assert_eq!(r.body, &body[body.len() - 10..]);
    let r = get(&server, &alice, "r.bin", &[("Range", "bytes=100-199".into()), ("If-Range", etag.clone())]);
    assert_eq!((r.status, r.body.len()), (206, 100));
    let r = get(&server, &alice, "r.bin", &[("Range", "bytes=100-199".into()), ("If-Range", "\"stale\"".into())]);
    assert_eq!(r.status, 200, "a changed file restarts from the beginning");
    assert_eq!(r.body, body);
    let r = get(&server, &alice, "r.bin", &[("Range", format!("bytes={}-", body.len()))]);
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some(format!("bytes */{}", body.len()).as_str()));
    // Many ranges at once get the whole file, not a multipart storm.
    let r = get(&server, &alice, "r.bin", &[("Range", "bytes=0-0,2-2,4-4,6-6".into())]);
    assert_eq!(r.status, 200);
    let r = get(&server, &alice, "r.bin", &[("If-None-Match", etag)]);
    assert_eq!(r.status, 304);
    let head = request(http(&server), "HEAD", "/files/r.bin", &[alice.auth()], None);
    assert_eq!(head.header("content-length"), Some(body.len().to_string().as_str()));
    server.wait_for_log(|t| t.contains(" download ") && t.contains("range=\"1000-39999\""), TIMEOUT);
}

#[test]
fn oversize_uploads_get_413_and_store_nothing() {
    let server = Server::start_with("[files]\nmax_file_bytes = 1024\n");
    let alice = User::new(&server, "alice");
    let r = put(&server, &alice, "big", &[0u8; 2048], &[]);
    assert_eq!(r.status, 413);
    assert!(r.message().contains("at most 1024 bytes"), "{}", r.message());
    // A chunked body has no length up front: cut mid-stream.
    let mut s = std::net::TcpStream::connect(http(&server)).unwrap();
    use std::io::{Read, Write};
    let head = format!(
        "PUT /files/chunked HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        alice.token
    );
    s.write_all(head.as_bytes()).unwrap();
    for _ in 0..4 {
        let _ = s.write_all(b"200\r\n");
        let _ = s.write_all(&[b'x'; 512]);
        let _ = s.write_all(b"\r\n");
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let mut answer = String::new();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(get(&server, &alice, "chunked", &[]).status, 404);
    assert_eq!(get(&server, &alice, "big", &[]).status, 404);
    server.wait_for_log(|t| t.contains("what=\"file_too_large\""), TIMEOUT);
}

#[test]
fn only_the_uploader_or_an_operator_may_delete() {
    let server = Server::start();
    let alice = User::new(&server, "alice");
    let mut bob = User::new(&server, "bob");
    assert_eq!(put(&server, &alice, "mine.txt", b"a", &[]).status, 201);
    assert_eq!(put(&server, &alice, "second.txt", b"b", &[]).status, 201);
    let r = request(http(&server), "DELETE", "/files/mine.txt", &[bob.auth()], None);
    assert_eq!(r.status, 403);
    assert!(r.message().contains("alice"), "{}", r.message());
    assert_eq!(get(&server, &alice, "mine.txt", &[]).body, b"a");
    assert_eq!(request(http(&server), "DELETE", "/files/mine.txt", &[alice.auth()], None).status, 204);
    assert_eq!(get(&server, &alice, "mine.txt", &[]).status, 404);
    bob.irc.send(&format!("OPER {ADMIN_NAME} {ADMIN_PASSWORD}"));
    bob.irc.expect(|l| l.is("381"), TIMEOUT);
    assert_eq!(request(http(&server), "DELETE", "/files/second.txt", &[bob.auth()], None).status, 204);
    server.wait_for_log(|t| t.contains("delete_refused") && t.contains(" delete "), TIMEOUT);
}

#[test]
fn two_concurrent_uploads_of_one_name_end_with_one_whole_file() {
    let server = Server::start();
    let alice = User::new(&server, "alice");
    let bob = User::new(&server, "bob");
    let addr = http(&server);
    let len: u64 = 8 << 20;
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| upload_pattern(addr, "/files/same.bin", &[alice.auth()], len, 1));
        let b = s.spawn(|| upload_pattern(addr, "/files/same.bin", &[bob.auth()], len, 2));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(a.0.status == 200 || a.0.status == 201, "{}", a.0.text());
    assert!(b.0.status == 200 || b.0.status == 201, "{}", b.0.text());
    let (_, n, sha) = download_hashed(addr, "/files/same.bin", &[alice.auth()]);
    assert_eq!(n, len);
    assert!(sha == a.1 || sha == b.1, "the stored file is one of the two uploads, whole");
    // Exactly one blob remains: the loser's bytes were not kept.
    assert_eq!(std::fs::read_dir(server.data_dir().join("files/blobs")).unwrap().count(), 1);
}

#[test]
fn uploads_are_announced_in_the_lobby() {
    let server = Server::start();
    let alice = User::new(&server, "alice");
    let mut carol = Client::registered(server.irc_addr(), "carol");
    assert_eq!(put(&server, &alice, "report.pdf", b"%PDF-1.7", &[]).status, 201);
    let notice = carol.expect(|l| l.is("NOTICE") && l.param(0) == "#lobby", TIMEOUT);
    let text = notice.last();
    assert!(text.contains("alice uploaded report.pdf (8 bytes)"), "{text}");
    // The announcement carries the share link, which opens without a login.
    let link = text.rsplit(' ').next().unwrap();
    assert!(link.contains("/files/s/") && link.ends_with("/report.pdf"), "{text}");
    let path = &link[link.find("/files/").unwrap()..];
    assert_eq!(request(http(&server), "GET", path, &[], None).body, b"%PDF-1.7");
}

#[test]
fn post_takes_the_name_from_content_disposition_and_never_overwrites() {
    let server = Server::start();
    let alice = User::new(&server, "alice");
    let addr = http(&server);
    let cd = ("Content-Disposition", "attachment; filename=\"notes.txt\"".to_string());
    let r = request(addr, "POST", "/files", &[alice.auth(), cd.clone()], Some(b"first"));
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.header("location").unwrap().ends_with("/notes.txt"));
    assert!(r.json()["url"].as_str().unwrap().ends_with("/files/notes.txt"));
    let r = request(addr, "POST", "/files", &[alice.auth(), cd], Some(b"second"));
    assert_eq!(r.status, 201);
    assert!(r.header("location").unwrap().ends_with("/notes-2.txt"));
    assert_eq!(get(&server, &alice, "notes.txt", &[]).body, b"first");
    let r = request(addr, "POST", "/files", &[alice.auth()], Some(b"anonymous"));
    assert_eq!(r.status, 201);
    assert!(r.json()["name"].as_str().unwrap().starts_with("upload-"));
}

#[test]
fn slow_request_headers_are_cut_off() {
    let server = Server::start_with("[files]\nheader_timeout_secs = 1\n");
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(http(&server)).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(b"GET /files HTTP/1.1\r\nHost: slow\r\n").unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(started.elapsed() < Duration::from_secs(5), "the server waited {:?}", started.elapsed());
    assert!(!String::from_utf8_lossy(&rest).contains("200 OK"));
}

#[test]
fn a_stalled_upload_body_is_dropped_with_408() {
    let server = Server::start_with("[files]\nbody_idle_timeout_secs = 1\n");
    let alice = User::new(&server, "alice");
    let sock = start_partial_upload(http(&server), "/files/slow.bin", &[alice.auth()], 1 << 20, 1000);
    let mut reader = std::io::BufReader::new(sock);
    let mut status = String::new();
    use std::io::BufRead;
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 408"), "{status}");
    assert_eq!(tmp_files(&server), 0);
    assert_eq!(get(&server, &alice, "slow.bin", &[]).status, 404);
}

#[test]
fn huge_request_headers_are_refused() {
    let server = Server::start();
    let alice = User::new(&server, "alice");
    let big = "x".repeat(100 * 1024);
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(http(&server)).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let _ =
        s.write_all(format!("GET /files HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Big: {big}\r\n\r\n").as_bytes());
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 431"), "{}", &answer[..answer.len().min(300)]);
    // Still serving.
    assert_eq!(request(http(&server), "GET", "/files", &[alice.auth()], None).status, 200);
}

#[test]
fn transfers_beyond_the_limit_get_503() {
    let server = Server::start_with("[files]\nmax_concurrent_transfers = 1\n");
    let alice = User::new(&server, "alice");
    // Once the server has asked for its body, the first upload holds the only permit.
    let _holding = start_partial_upload(http(&server), "/files/a.bin", &[alice.auth()], 1 << 20, 1000);
    let r = put(&server, &alice, "b.bin", b"second", &[]);
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.header("retry-after").is_some());
}

#[test]
fn compressed_uploads_are_refused_not_expanded() {
    let server = Server::start();
    let alice = User::new(&server, "alice");
    let r = put(&server, &alice, "bomb.gz", b"\x1f\x8b\x08\x00", &[("Content-Encoding", "gzip".into())]);
    assert_eq!(r.status, 415);
    assert!(r.message().contains("Content-Encoding"), "{}", r.message());
    assert_eq!(get(&server, &alice, "bomb.gz", &[]).status, 404);
}

#[test]
fn a_symlink_planted_in_the_store_does_not_leak_files() {
    let server = Server::start();
    let alice = User::new(&server, "alice");
    let r = put(&server, &alice, "doc.txt", b"public", &[]);
    let sha = r.json()["sha256"].as_str().unwrap().to_string();
    let secret = server.root_dir().join("secret.txt");
    std::fs::write(&secret, b"TOP SECRET").unwrap();
    let blob = server.data_dir().join("files/blobs").join(&sha);
    std::fs::remove_file(&blob).unwrap();
    std::os::unix::fs::symlink(&secret, &blob).unwrap();
    let r = get(&server, &alice, "doc.txt", &[]);
    assert_ne!(r.status, 200);
    assert!(!r.text().contains("TOP SECRET"));
}

#[test]
fn quota_and_disk_reserve_give_507() {
    let server = Server::start_with("[files]\nquota_bytes = 1000\n");
    let alice = User::new(&server, "alice");
    assert_eq!(put(&server, &alice, "a", &[1u8; 600], &[]).status, 201);
    let r = put(&server, &alice, "b", &[2u8; 600], &[]);
    assert_eq!(r.status, 507);
    assert!(r.message().contains("out of space"), "{}", r.message());
    let reserve = Server::start_with("[files]\nmin_free_bytes = 1000000000000000000\n");
    let bob = User::new(&reserve, "bob");
    assert_eq!(put(&reserve, &bob, "c", b"tiny", &[]).status, 507);
}

#[test]
fn kill_9_during_an_upload_keeps_the_old_version() {
    let server = Server::start();
    let alice = User::new(&server, "alice");
    assert_eq!(put(&server, &alice, "doc.bin", b"version one", &[]).status, 201);
    // The server has asked for the body: the replacement is being written.
    let _upload = start_partial_upload(http(&server), "/files/doc.bin", &[alice.auth()], 8 << 20, 2 << 20);
    assert_eq!(tmp_files(&server), 1);
    drop(alice);
    let server = server.kill_and_restart();
    // The leftover temp file is gone after the restart and the old version is whole.
    assert_eq!(std::fs::read_dir(server.data_dir().join("files/tmp")).unwrap().count(), 0);
    let bob = User::new(&server, "bob");
    let r = get(&server, &bob, "doc.bin", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"version one");
    let list = request(http(&server), "GET", "/files", &[bob.auth()], None).json();
    assert_eq!(list.as_array().unwrap().len(), 1);
}
