//! Plain-HTTP downloads, which `parleyd` sends with `sendfile`
//! (`files/zero_copy.rs`): one kept-alive connection carries pipelined
//! downloads, ranges, HEADs and errors in order, then hands over to hyper
//! for an upload; the bytes and headers are those of the hyper path
//! (`files.sendfile = false`), and the metrics count what was sent.

#[allow(dead_code)] // this test uses a part of the shared support code
mod support;

use parley_testkit::{Client, Server, TIMEOUT};
use std::io::{BufReader, Write};
use std::net::TcpStream;
use support::http::{metric as sample, read_response, request, Response};

const METRICS: &str = "[metrics]\nlisten = [\"127.0.0.1:0\"]\n";

/// A token, and the IRC session it lives as long as.
fn token(server: &Server, nick: &str) -> (String, Client) {
    let mut irc = Client::registered(server.irc_addr(), nick);
    irc.send("EXTJWT *");
    (irc.expect(|l| l.is("EXTJWT"), TIMEOUT).last().to_string(), irc)
}

/// A file whose every byte differs from its neighbours', so a shifted
/// range shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Sends `heads` back to back on one connection and reads one response
/// per head (`methods[i]` says whether a body follows).
fn pipelined(server: &Server, heads: &[String], methods: &[&str]) -> Vec<Response> {
    let mut s = TcpStream::connect(server.http_addr().unwrap()).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(heads.concat().as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    methods.iter().map(|m| read_response(&mut r, m)).collect()
}

fn head(method: &str, path: &str, token: &str, extra: &str) -> String {
    format!("{method} {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n{extra}\r\n")
}

/// Headers that differ between two answers for reasons other than the
/// path taken (the dates: two servers, two uploads).
fn comparable(r: &Response) -> Vec<(String, String)> {
    let mut h: Vec<_> = r
        .headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("date") && !k.eq_ignore_ascii_case("last-modified"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    h.sort();
    h
}

/// The scripted session both paths run: upload, then one connection with
/// a full GET, a range, a HEAD, a 404, a conditional 304 and a PUT.
fn session(server: &Server, data: &[u8]) -> Vec<Response> {
    let (t, _irc) = token(server, "dora");
    let put = request(
        server.http_addr().unwrap(),
        "PUT",
        "/files/big.bin",
        &[("Authorization", format!("Bearer {t}"))],
        Some(data),
    );
    assert_eq!(put.status, 201, "{}", put.text());
    let etag = put.header("etag").unwrap().to_string();
    let heads = [
        head("GET", "/files/big.bin", &t, ""),
        head("GET", "/files/big.bin", &t, "Range: bytes=1000-1999\r\n"),
        head("HEAD", "/files/big.bin", &t, ""),
        head("GET", "/files/missing.bin", &t, ""),
        head("GET", "/files/big.bin", &t, &format!("If-None-Match: {etag}\r\n")),
        head("PUT", "/files/small.txt", &t, "Content-Length: 5\r\nConnection: close\r\n") + "hello",
    ];
    pipelined(server, &heads, &["GET", "GET", "HEAD", "GET", "GET", "PUT"])
}

#[test]
fn one_connection_serves_downloads_in_order_then_hands_over_to_hyper() {
    let data = pattern(3 << 20);
    let server = Server::start_with(METRICS);
    let got = session(&server, &data);
    let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 206, 200, 404, 304, 201]);
    assert!(got[0].body == data, "the download differs from the upload");
    assert_eq!(got[1].body, &data[1000..2000]);
    assert_eq!(got[1].header("content-range"), Some("bytes 1000-1999/3145728"));
    assert_eq!(got[2].header("content-length"), Some("3145728"));
    assert!(got[2].body.is_empty());
    assert_eq!(got[3].json()["error"], "not_found");
    assert_eq!(got[0].header("content-security-policy"), Some("sandbox"));
    assert!(got[0].header("date").is_some());
    let metrics = request(server.addr("metrics").unwrap(), "GET", "/metrics", &[], None).text();
    assert_eq!(sample(&metrics, "parley_uploads_total"), 2.0);
    assert_eq!(sample(&metrics, "parley_upload_bytes_total"), (data.len() + 5) as f64);
    assert_eq!(sample(&metrics, "parley_downloads_total"), 2.0);
    assert_eq!(sample(&metrics, "parley_download_bytes_total"), (data.len() + 1000) as f64);
}

#[test]
fn sendfile_and_hyper_answer_the_same() {
    let data = pattern(1 << 20);
    let fast = session(&Server::start(), &data);
    let streamed = session(&Server::start_with("[files]\nsendfile = false\n"), &data);
    for (i, (a, b)) in fast.iter().zip(&streamed).enumerate() {
        assert_eq!(a.status, b.status, "answer {i}");
        // The upload's answer (the last) carries a new share link each time.
        if i < 5 {
            assert!(a.body == b.body, "answer {i}: bodies differ");
            assert_eq!(comparable(a), comparable(b), "answer {i}");
        }
    }
}

#[test]
fn a_slow_head_and_a_huge_head_are_refused_like_hyper_refuses_them() {
    let server = Server::start_with("[files]\nheader_timeout_secs = 1\n");
    // A head that never ends: the connection is closed after the timeout.
    let mut s = TcpStream::connect(server.http_addr().unwrap()).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(b"GET /files/a HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut rest);
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    // A head over hyper's buffer goes to hyper, which refuses it.
    let huge = format!("GET /files/a HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n", "a".repeat(70_000));
    let got = pipelined(&server, &[huge], &["GET"]);
    assert_eq!(got[0].status, 431);
}
