//! The file store, spoken over HTTP: list, upload (create-only or replace;
//! resumable where the server offers it, see `resume.rs`), download with
//! resume, each request carrying the session's EXTJWT token.
//!
//! Files are streamed in both directions, never held in memory, and every
//! transfer is checked against its SHA-256: uploads send `Repr-Digest` so
//! the server can refuse a damaged body, downloads are hashed as they are
//! written and only renamed into place when the digest matches. This module
//! reports how far a transfer got through [`Progress`], which the console
//! implements, and never prints or asks anything itself.

use crate::irc::{IrcError, Session};
use crate::status::Status;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use futures_util::StreamExt;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{self, HeaderMap};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Read and write in chunks of this size.
pub(crate) const CHUNK: usize = 256 * 1024;
/// Characters left as they are in a URL path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Where a transfer reports how far it got: the console draws it as a bar,
/// `()` shows nothing.
pub trait Progress {
    /// A phase (hashing, uploading, ...) of `total` bytes begins, `done` of
    /// them already there. A `total` of 0 means unknown.
    fn begin(&self, label: &str, total: u64, done: u64);
    /// `n` more bytes of the phase are done.
    fn inc(&self, n: u64);
    /// The phase is at `n` bytes (back at 0 when a request is retried).
    fn set_position(&self, n: u64);
}

impl Progress for () {
    fn begin(&self, _label: &str, _total: u64, _done: u64) {}
    fn inc(&self, _n: u64) {}
    fn set_position(&self, _n: u64) {}
}

/// One file as `GET {base}` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteFile {
    pub name: String,
    pub size: u64,
    #[serde(default)]
    pub sha256: String,
    #[serde(default)]
    pub uploaded_by: String,
    #[serde(default)]
    pub modified: String,
}

#[derive(Debug, Error)]
pub enum FileError {
    #[error("this server has no file store (it did not announce draft/FILEHOST)")]
    NoStore,
    #[error("could not get a file store token: {0}")]
    Token(IrcError),
    /// The server refused; `message` is its sentence for people.
    #[error("{message}")]
    Server { status: u16, code: String, message: String },
    #[error("{name} already exists on the server")]
    Exists { name: String },
    #[error("{} already exists here; not overwritten", path.display())]
    LocalExists { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Local { path: PathBuf, source: io::Error },
    #[error("could not reach the file store: {}", error_chain(.0))]
    Http(reqwest::Error),
    #[error("the data received does not match its SHA-256 digest (expected {expected}, got {actual})")]
    DigestMismatch { expected: String, actual: String },
    #[error("unexpected answer from the file store: {0}")]
    Protocol(String),
}

impl FileError {
    pub fn status(&self) -> Status {
        match self {
            FileError::NoStore | FileError::Protocol(_) | FileError::Local { .. } => Status::Failure,
            FileError::Token(e) => e.status(),
            FileError::Server { status, .. } => match *status {
                404 => Status::NotFound,
                409 | 412 => Status::Refused,
                401 | 403 => Status::Auth,
                _ => Status::Failure,
            },
            FileError::Exists { .. } | FileError::LocalExists { .. } => Status::Refused,
            FileError::Http(_) => Status::ConnectionLost,
            FileError::DigestMismatch { .. } => Status::Integrity,
        }
    }
}

/// What an upload did.
#[derive(Debug)]
pub struct Uploaded {
    pub size: u64,
    pub sha256: String,
    /// True when an existing file of that name was replaced.
    pub replaced: bool,
    /// The link anyone can open the file with, when the server gives one.
    pub share_url: Option<String>,
    /// Bytes an earlier, interrupted attempt had already sent.
    pub resumed_from: u64,
}

/// What a download did.
#[derive(Debug)]
pub struct Downloaded {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// Bytes that were already there from an interrupted download.
    pub resumed_from: u64,
    /// False only when the server sent no digest to check against.
    pub verified: bool,
}

/// The file store of one IRC session.
pub struct Store {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    irc: Session,
}

impl Store {
    /// The store the server announced in ISUPPORT.
    pub fn new(irc: &Session) -> Result<Store, FileError> {
        let base = irc.filehost().ok_or(FileError::NoStore)?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("parley/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(120))
            .use_preconfigured_tls((*irc.trust().config).clone())
            .build()
            .map_err(FileError::Http)?;
        Ok(Store { http, base: base.trim_end_matches('/').to_string(), irc: irc.clone() })
    }

    pub(crate) fn url(&self, name: &str) -> String {
        format!("{}/{}", self.base, utf8_percent_encode(name, SEGMENT))
    }

    /// Sends a request with the session token; on 401 gets a fresh token
    /// and tries once more (tokens expire, and end with the IRC session).
    pub(crate) async fn send(
        &self,
        make: impl Fn() -> Result<RequestBuilder, FileError>,
    ) -> Result<Response, FileError> {
        let mut refresh = false;
        loop {
            let token = self.irc.file_token(refresh).await.map_err(FileError::Token)?;
            let resp = make()?.bearer_auth(token).send().await.map_err(FileError::Http)?;
            if resp.status() == StatusCode::UNAUTHORIZED && !refresh {
                refresh = true;
                continue;
            }
            return Ok(resp);
        }
    }

    /// Every file, as the server lists them, plus the raw JSON for `--json`.
    pub async fn list(&self) -> Result<(Vec<RemoteFile>, serde_json::Value), FileError> {
        let resp = self.send(|| Ok(self.http.get(&self.base))).await?;
        if !resp.status().is_success() {
            return Err(api_error(resp).await);
        }
        let raw: serde_json::Value = resp.json().await.map_err(FileError::Http)?;
        let files = serde_json::from_value(raw.clone()).map_err(|e| FileError::Protocol(format!("file list: {e}")))?;
        Ok((files, raw))
    }

    /// Deletes `name` (the server allows its uploader or an operator).
    pub async fn delete(&self, name: &str) -> Result<(), FileError> {
        let url = self.url(name);
        let resp = self.send(|| Ok(self.http.delete(&url))).await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(api_error(resp).await)
        }
    }

    /// Whether `name` exists on the server.
    pub async fn exists(&self, name: &str) -> Result<bool, FileError> {
        let url = self.url(name);
        let resp = self.send(|| Ok(self.http.head(&url))).await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(api_error(resp).await),
        }
    }

    /// Uploads `local` as `name`. Without `overwrite` an existing name is
    /// refused with [`FileError::Exists`] and nothing changes on the server.
    /// The body's stream reports progress itself, so it holds a clone of
    /// `progress`.
    pub async fn upload<P: Progress + Clone + Send + 'static>(
        &self,
        local: &Path,
        name: &str,
        overwrite: bool,
        progress: &P,
    ) -> Result<Uploaded, FileError> {
        let local_err = |source| FileError::Local { path: local.to_path_buf(), source };
        let meta = std::fs::metadata(local).map_err(local_err)?;
        if !meta.is_file() {
            return Err(local_err(io::Error::other("not a regular file")));
        }
        let size = meta.len();
        // Asking first saves hashing and sending a large body only to hear
        // 412; the PUT below stays conditional for a name taken meanwhile.
        if !overwrite && self.exists(name).await? {
            return Err(FileError::Exists { name: name.to_string() });
        }
        // The digest goes in a header, before the body: one pass to hash,
        // one to send.
        progress.begin(&format!("hashing {name}"), size, 0);
        let digest = hash_file(local, progress).await.map_err(local_err)?;
        if self.takes_resumable_uploads().await {
            return self.upload_resumable(local, name, overwrite, size, digest, progress).await;
        }
        let sha256 = to_hex(&digest);
        progress.begin(&format!("uploading {name}"), size, 0);
        let url = self.url(name);
        let resp = self
            .send(|| {
                progress.set_position(0);
                let file = std::fs::File::open(local).map_err(local_err)?;
                let progress = progress.clone();
                let stream = tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), CHUNK).map(
                    move |chunk| {
                        if let Ok(bytes) = &chunk {
                            progress.inc(bytes.len() as u64);
                        }
                        chunk
                    },
                );
                let mut req = self
                    .http
                    .put(&url)
                    .header(header::CONTENT_LENGTH, size)
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header("Repr-Digest", format!("sha-256=:{}:", B64.encode(digest)))
                    .body(reqwest::Body::wrap_stream(stream));
                if !overwrite {
                    req = req.header(header::IF_NONE_MATCH, "*");
                }
                Ok(req)
            })
            .await?;
        match resp.status() {
            StatusCode::PRECONDITION_FAILED => Err(FileError::Exists { name: name.to_string() }),
            s if s.is_success() => {
                if let Some(etag) = etag_hex(resp.headers()) {
                    if !etag.eq_ignore_ascii_case(&sha256) {
                        return Err(FileError::DigestMismatch { expected: sha256, actual: etag });
                    }
                }
                let body: serde_json::Value = resp.json().await.unwrap_or_default();
                let share_url = body.get("share_url").and_then(|v| v.as_str()).map(str::to_string);
                let replaced = s == StatusCode::OK || s == StatusCode::NO_CONTENT;
                Ok(Uploaded { size, sha256, replaced, share_url, resumed_from: 0 })
            }
            _ => Err(api_error(resp).await),
        }
    }

    /// Downloads `name` to `dest` through `dest.part`, resuming a partial
    /// download left by an earlier attempt when the file has not changed
    /// since (`If-Range` with the ETag saved beside it).
    pub async fn download(
        &self,
        name: &str,
        dest: &Path,
        overwrite: bool,
        progress: &dyn Progress,
    ) -> Result<Downloaded, FileError> {
        if !overwrite && dest.exists() {
            return Err(FileError::LocalExists { path: dest.to_path_buf() });
        }
        let part = with_suffix(dest, ".part");
        let etag_file = with_suffix(dest, ".part.etag");
        let local_err = |path: &Path, source| FileError::Local { path: path.to_path_buf(), source };
        let url = self.url(name);
        // Two rounds: the second starts from zero if the partial data no
        // longer fits the file (416).
        for _ in 0..2 {
            let saved_etag = std::fs::read_to_string(&etag_file).ok().map(|s| s.trim().to_string());
            let offset = match (&saved_etag, std::fs::metadata(&part)) {
                (Some(_), Ok(m)) if m.is_file() => m.len(),
                _ => 0,
            };
            let resp = self
                .send(|| {
                    let mut req = self.http.get(&url);
                    if let (true, Some(etag)) = (offset > 0, &saved_etag) {
                        req = req.header(header::RANGE, format!("bytes={offset}-")).header(header::IF_RANGE, etag);
                    }
                    Ok(req)
                })
                .await?;
            let status = resp.status();
            if status == StatusCode::RANGE_NOT_SATISFIABLE {
                let _ = std::fs::remove_file(&part);
                let _ = std::fs::remove_file(&etag_file);
                continue;
            }
            if !status.is_success() {
                return Err(api_error(resp).await);
            }
            let resuming = status == StatusCode::PARTIAL_CONTENT;
            if resuming && content_range_start(resp.headers()) != Some(offset) {
                return Err(FileError::Protocol("the server resumed at the wrong offset".into()));
            }
            let start = if resuming { offset } else { 0 };
            let expected = expected_digest(resp.headers());
            let total = resp.content_length().map(|n| n + start).unwrap_or(0);

            let mut hasher = Sha256::new();
            let mut file = if resuming {
                progress.begin(&format!("checking {name}"), offset, 0);
                hash_into(&part, &mut hasher, progress).await.map_err(|e| local_err(&part, e))?;
                tokio::fs::OpenOptions::new().append(true).open(&part).await.map_err(|e| local_err(&part, e))?
            } else {
                let f = tokio::fs::File::create(&part).await.map_err(|e| local_err(&part, e))?;
                match resp.headers().get(header::ETAG).and_then(|v| v.to_str().ok()) {
                    Some(etag) => std::fs::write(&etag_file, etag).map_err(|e| local_err(&etag_file, e))?,
                    None => {
                        let _ = std::fs::remove_file(&etag_file);
                    }
                }
                f
            };
            progress.begin(&format!("downloading {name}"), total, start);
            let mut received = start;
            let mut body = resp.bytes_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(FileError::Http)?;
                file.write_all(&chunk).await.map_err(|e| local_err(&part, e))?;
                hasher.update(&chunk);
                received += chunk.len() as u64;
                progress.inc(chunk.len() as u64);
            }
            file.flush().await.map_err(|e| local_err(&part, e))?;
            file.sync_all().await.map_err(|e| local_err(&part, e))?;
            drop(file);
            let actual = to_hex(&hasher.finalize());
            if let Some(expected) = &expected {
                if !expected.eq_ignore_ascii_case(&actual) {
                    let _ = std::fs::remove_file(&part);
                    let _ = std::fs::remove_file(&etag_file);
                    return Err(FileError::DigestMismatch { expected: expected.clone(), actual });
                }
            }
            if !overwrite && dest.exists() {
                return Err(FileError::LocalExists { path: dest.to_path_buf() });
            }
            std::fs::rename(&part, dest).map_err(|e| local_err(dest, e))?;
            let _ = std::fs::remove_file(&etag_file);
            return Ok(Downloaded {
                path: dest.to_path_buf(),
                size: received,
                sha256: actual,
                resumed_from: start,
                verified: expected.is_some(),
            });
        }
        Err(FileError::Protocol("the server refused every byte range".into()))
    }
}

/// An error and its causes, `outer: inner: innermost` (reqwest's own text
/// alone rarely says what went wrong, such as an untrusted certificate).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    if text.contains("certificate") || text.contains("UnknownIssuer") {
        text.push_str(" (trust the server's certificate with --ca FILE, or skip the check with --insecure)");
    }
    text
}

/// The error a non-success response carries: its JSON `message` when it has
/// one, otherwise the status line.
pub(crate) async fn api_error(resp: Response) -> FileError {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        error: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_str::<Body>(&text) {
        Ok(b) if !b.message.is_empty() => {
            FileError::Server { status: status.as_u16(), code: b.error, message: b.message }
        }
        _ => {
            let reason = status.canonical_reason().unwrap_or("error");
            let detail = text.trim().chars().take(200).collect::<String>();
            let message = if detail.is_empty() {
                format!("the file store answered {} {reason}", status.as_u16())
            } else {
                format!("the file store answered {} {reason}: {detail}", status.as_u16())
            };
            FileError::Server { status: status.as_u16(), code: String::new(), message }
        }
    }
}

/// The SHA-256 a download must have: `Repr-Digest` if present, else the
/// ETag (which Parley makes from the same digest).
fn expected_digest(headers: &HeaderMap) -> Option<String> {
    let from_repr =
        headers.get("repr-digest").and_then(|v| v.to_str().ok()).and_then(parse_sha256_member).map(|d| to_hex(&d));
    from_repr.or_else(|| etag_hex(headers))
}

/// `sha-256=:<base64>:` out of a structured digest header.
fn parse_sha256_member(value: &str) -> Option<Vec<u8>> {
    value.split(',').find_map(|member| {
        let (key, val) = member.trim().split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("sha-256") {
            return None;
        }
        let inner = val.trim().strip_prefix(':')?.strip_suffix(':')?;
        B64.decode(inner).ok().filter(|d| d.len() == 32)
    })
}

/// The ETag's value when it is a hex SHA-256.
fn etag_hex(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(header::ETAG)?.to_str().ok()?;
    let tag = raw.trim().trim_start_matches("W/").trim_matches('"');
    (tag.len() == 64 && tag.bytes().all(|b| b.is_ascii_hexdigit())).then(|| tag.to_ascii_lowercase())
}

/// The first byte of a `Content-Range: bytes A-B/N`.
fn content_range_start(headers: &HeaderMap) -> Option<u64> {
    let v = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    v.trim().strip_prefix("bytes ")?.split('-').next()?.trim().parse().ok()
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

async fn hash_file(path: &Path, progress: &dyn Progress) -> io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    hash_into(path, &mut hasher, progress).await?;
    let mut out = [0u8; 32];
    out.copy_from_slice(&hasher.finalize());
    Ok(out)
}

async fn hash_into(path: &Path, hasher: &mut Sha256, progress: &dyn Progress) -> io::Result<()> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
        progress.inc(n as u64);
    }
}

/// Where a download of `name` goes: `output` if given (inside it, if it is
/// a directory), else `name` in the current directory. Refuses names that
/// would leave that directory.
pub fn download_path(name: &str, output: Option<&Path>) -> Result<PathBuf, FileError> {
    let local_name = || -> Result<PathBuf, FileError> {
        let file_name = Path::new(name).file_name().filter(|f| *f == std::ffi::OsStr::new(name));
        file_name.map(PathBuf::from).ok_or_else(|| FileError::Local {
            path: PathBuf::from(name),
            source: io::Error::other("this name cannot be used as a local file name; choose one with -o PATH"),
        })
    };
    match output {
        Some(p) if p.is_dir() => Ok(p.join(local_name()?)),
        Some(p) => Ok(p.to_path_buf()),
        None => local_name(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn digests_come_from_repr_digest_or_etag() {
        let digest = Sha256::digest(b"hello");
        let hex = to_hex(&digest);
        let mut h = HeaderMap::new();
        h.insert(header::ETAG, HeaderValue::from_str(&format!("\"{hex}\"")).unwrap());
        assert_eq!(expected_digest(&h).as_deref(), Some(hex.as_str()));
        let mut h = HeaderMap::new();
        h.insert(
            "repr-digest",
            HeaderValue::from_str(&format!("sha-512=:AA==:, sha-256=:{}:", B64.encode(digest))).unwrap(),
        );
        assert_eq!(expected_digest(&h).as_deref(), Some(hex.as_str()));
        let mut h = HeaderMap::new();
        h.insert(header::ETAG, HeaderValue::from_static("\"not-a-digest\""));
        assert_eq!(expected_digest(&h), None);
    }

    #[test]
    fn content_range_is_read() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_RANGE, HeaderValue::from_static("bytes 100-199/200"));
        assert_eq!(content_range_start(&h), Some(100));
    }

    #[test]
    fn download_paths_stay_local() {
        assert_eq!(download_path("a.txt", None).unwrap(), PathBuf::from("a.txt"));
        assert!(download_path("../x", None).is_err());
        assert!(download_path("..", None).is_err());
        assert_eq!(download_path("../x", Some(Path::new("y"))).unwrap(), PathBuf::from("y"));
        let dir = std::env::temp_dir();
        assert_eq!(download_path("a.txt", Some(&dir)).unwrap(), dir.join("a.txt"));
    }

    #[test]
    fn names_are_one_path_segment() {
        assert_eq!(utf8_percent_encode("a b/c%.txt", SEGMENT).to_string(), "a%20b%2Fc%25.txt");
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(to_hex(&[0, 15, 255]), "000fff");
    }
}
