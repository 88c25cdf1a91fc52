//! A small blocking HTTP/1.1 client for the file-store tests, written over a
//! plain `TcpStream` so a test can do what a library client would hide:
//! stop an upload half-way, stream a body of any size from a generator, and
//! hash a download as it arrives without holding it in memory.

use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `message` field of a JSON error body.
    pub fn message(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
            .unwrap_or_else(|| self.text())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Deterministic pseudo-random bytes (xorshift), so large bodies need no
/// memory and can be regenerated to compare.
pub struct Pattern(u64);

impl Pattern {
    pub fn new(seed: u64) -> Pattern {
        Pattern(seed | 1)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let bytes = self.0.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connecting to the file store");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

fn write_head(s: &mut TcpStream, method: &str, path: &str, headers: &[(&str, String)]) {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("sending request head");
}

fn read_head(r: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).expect("reading the status line");
        let status: u16 =
            line.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            r.read_line(&mut h).expect("reading a header");
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        // Skip interim responses such as 100 Continue.
        if !(100..200).contains(&status) {
            return (status, headers);
        }
    }
}

fn read_body(
    r: &mut BufReader<TcpStream>,
    method: &str,
    status: u16,
    headers: &[(String, String)],
    sink: &mut dyn FnMut(&[u8]),
) {
    if method == "HEAD" || status == 204 || status == 304 {
        return;
    }
    let len =
        headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")).and_then(|(_, v)| v.parse::<u64>().ok());
    let mut buf = vec![0u8; 256 * 1024];
    let mut left = len.unwrap_or(u64::MAX);
    while left > 0 {
        let want = buf.len().min(left.min(usize::MAX as u64) as usize);
        let n = r.read(&mut buf[..want]).expect("reading the body");
        if n == 0 {
            assert!(len.is_none(), "the body ended {left} bytes early");
            break;
        }
        sink(&buf[..n]);
        left -= n as u64;
    }
}

/// Reads one whole response to a `method` request from `r` (a connection
/// kept alive reads several in turn).
pub fn read_response(r: &mut BufReader<TcpStream>, method: &str) -> Response {
    let (status, headers) = read_head(r);
    let mut out = Vec::new();
    read_body(r, method, status, &headers, &mut |c| out.extend_from_slice(c));
    Response { status, headers, body: out }
}

/// Sends a request with an optional body and reads the whole response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Option<&[u8]>,
) -> Response {
    let mut s = connect(addr);
    let mut all: Vec<(&str, String)> = headers.to_vec();
    if let Some(b) = body {
        all.push(("Content-Length", b.len().to_string()));
    }
    write_head(&mut s, method, path, &all);
    if let Some(b) = body {
        // The server may answer early (412, 413) and close; that is fine.
        let _ = s.write_all(b);
    }
    read_response(&mut BufReader::new(s), method)
}

/// Uploads `len` bytes of `pattern` with Content-Length; returns the
/// response and the SHA-256 of what was sent.
pub fn upload_pattern(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    len: u64,
    seed: u64,
) -> (Response, String) {
    let mut s = connect(addr);
    let mut all: Vec<(&str, String)> = headers.to_vec();
    all.push(("Content-Length", len.to_string()));
    write_head(&mut s, "PUT", path, &all);
    let mut pattern = Pattern::new(seed);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut left = len;
    while left > 0 {
        let n = buf.len().min(left as usize);
        pattern.fill(&mut buf[..n]);
        hasher.update(&buf[..n]);
        s.write_all(&buf[..n]).expect("sending the body");
        left -= n as u64;
    }
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r);
    let mut body = Vec::new();
    read_body(&mut r, "PUT", status, &headers, &mut |c| body.extend_from_slice(c));
    (Response { status, headers, body }, hex::encode(hasher.finalize()))
}

/// Starts an upload declaring `declared` bytes and sends only `sent` of
/// them. The request carries `Expect: 100-continue`, and the body is sent
/// only after the server's `100 Continue`, which hyper sends when the handler
/// first reads the body: by then the upload holds its transfer permit and its
/// temp file exists. Returns the open socket.
pub fn start_partial_upload(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    declared: u64,
    sent: usize,
) -> TcpStream {
    let mut s = connect(addr);
    let mut all: Vec<(&str, String)> = headers.to_vec();
    all.push(("Content-Length", declared.to_string()));
    all.push(("Expect", "100-continue".to_string()));
    write_head(&mut s, "PUT", path, &all);
    let interim = read_until_blank_line(&mut s);
    assert!(interim.starts_with("HTTP/1.1 100"), "expected 100 Continue, got {interim:?}");
    let mut buf = vec![0u8; sent];
    Pattern::new(99).fill(&mut buf);
    s.write_all(&buf).expect("sending part of the body");
    s.flush().unwrap();
    s
}

/// Stops sending an unfinished upload (closes the write half, as a client
/// that goes away does) and returns the server's answer to it.
pub fn abandon_upload(s: TcpStream) -> u16 {
    s.shutdown(std::net::Shutdown::Write).expect("closing the write half");
    let mut r = BufReader::new(s);
    read_head(&mut r).0
}

/// Reads byte by byte up to and including an empty line, so nothing after
/// the interim response is consumed.
fn read_until_blank_line(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).expect("reading an interim response");
        assert!(n == 1, "the connection closed during the interim response: {:?}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Downloads `path`, hashing the body as it arrives; returns status,
/// headers, byte count and SHA-256 hex.
pub fn download_hashed(addr: SocketAddr, path: &str, headers: &[(&str, String)]) -> (Response, u64, String) {
    let mut s = connect(addr);
    write_head(&mut s, "GET", path, headers);
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r);
    let mut hasher = Sha256::new();
    let mut n = 0u64;
    read_body(&mut r, "GET", status, &headers, &mut |c| {
        hasher.update(c);
        n += c.len() as u64;
    });
    (Response { status, headers, body: Vec::new() }, n, hex::encode(hasher.finalize()))
}

/// SHA-256 hex of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The value of one sample line (`name{labels} value`) of a `/metrics` page.
#[allow(dead_code)] // used only by the test files that scrape /metrics
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
        .parse()
        .unwrap()
}
