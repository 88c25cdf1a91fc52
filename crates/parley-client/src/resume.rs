//! Uploads that survive a dropped connection or a killed client: the IETF
//! resumable-uploads draft the server speaks (interop version 8; see the
//! server's `docs/PROTOCOL.md`).
//!
//! The upload is created first with `Upload-Complete: ?0` and no bytes, so
//! its URL is known before the bulk is sent; the URL is written to a small
//! state file (under `$XDG_STATE_HOME/parley/uploads/`, or
//! `~/.local/state/parley/uploads/`), keyed by server, name and the file's
//! SHA-256. The bytes then go in one `PATCH`. If it fails midway, the
//! client asks the server (`HEAD`) how much arrived and sends the rest,
//! a few times; if the client itself was stopped, the next upload of the
//! same file under the same name finds the state file and continues. The
//! state file goes when the upload completes or the server no longer
//! knows it.

use crate::files::{api_error, FileError, Progress, Store, Uploaded, CHUNK};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use futures_util::StreamExt;
use reqwest::header::{self, HeaderMap};
use reqwest::{Response, StatusCode};
use sha2::{Digest, Sha256};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

const INTEROP_VERSION: &str = "8";
const PARTIAL_UPLOAD: &str = "application/partial-upload";
/// Appends tried after the first fails, each from the server's offset.
const RETRIES: u32 = 5;

fn header_u64(h: &HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// One upload's state file.
struct Saved {
    path: Option<PathBuf>,
}

impl Saved {
    fn new(base: &str, name: &str, digest: &[u8; 32], overwrite: bool) -> Saved {
        let key = Sha256::digest(format!("{base}\n{name}\n{}\n{overwrite}", crate::files::to_hex(digest)));
        Saved { path: crate::paths::uploads_dir().map(|d| d.join(crate::files::to_hex(&key))) }
    }

    fn load(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.path.as_ref()?).ok()?;
        let url = text.trim();
        (url.starts_with("http://") || url.starts_with("https://")).then(|| url.to_string())
    }

    /// Best effort: without it, only this run can resume.
    fn store(&self, url: &str) {
        if let Some(path) = &self.path {
            let _ = path.parent().map(std::fs::create_dir_all);
            let _ = std::fs::write(path, url);
        }
    }

    fn forget(&self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// How a try at sending the rest ended.
enum Try {
    Done(Response),
    /// Resume from the server's offset.
    Again,
    Failed(FileError),
}

impl Store {
    /// Whether the server takes resumable uploads (`Accept-Patch` on
    /// `OPTIONS /files` names `application/partial-upload`).
    pub async fn takes_resumable_uploads(&self) -> bool {
        let Ok(resp) = self.http.request(reqwest::Method::OPTIONS, &self.base).send().await else {
            return false;
        };
        resp.headers()
            .get("accept-patch")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(PARTIAL_UPLOAD)))
    }

    /// Uploads `local` (already hashed to `digest`) as `name`, resuming an
    /// earlier attempt of the same file if the server still has it.
    pub async fn upload_resumable<P: Progress + Clone + Send + 'static>(
        &self,
        local: &Path,
        name: &str,
        overwrite: bool,
        size: u64,
        digest: [u8; 32],
        progress: &P,
    ) -> Result<Uploaded, FileError> {
        let saved = Saved::new(&self.base, name, &digest, overwrite);
        let mut resumed_from = 0;
        let mut url = None;
        if let Some(known) = saved.load() {
            match self.offset(&known).await {
                Ok(Some(at)) => {
                    resumed_from = at;
                    url = Some(known);
                }
                _ => saved.forget(),
            }
        }
        let url = match url {
            Some(u) => u,
            None => {
                let u = self.create(name, overwrite, size, &digest).await?;
                saved.store(&u);
                u
            }
        };
        let mut at = resumed_from;
        let mut retries = 0;
        loop {
            progress.begin(&format!("uploading {name}"), size, at);
            match self.send_rest(&url, local, name, at, size, progress).await {
                Try::Done(resp) => {
                    saved.forget();
                    return finished(resp, size, digest, resumed_from).await;
                }
                Try::Failed(e) => {
                    if !matches!(e, FileError::Http(_)) {
                        saved.forget();
                    }
                    return Err(e);
                }
                Try::Again if retries < RETRIES => {
                    retries += 1;
                    tokio::time::sleep(Duration::from_millis(250 * u64::from(retries))).await;
                    match self.offset(&url).await {
                        Ok(Some(now)) => {
                            if now > at && resumed_from == 0 {
                                resumed_from = now;
                            }
                            at = now;
                        }
                        Ok(None) => {
                            saved.forget();
                            return Err(FileError::Protocol(
                                "the server no longer knows this upload (it was idle too long or the server restarted); upload again".into(),
                            ));
                        }
                        Err(e) => return Err(e),
                    }
                }
                Try::Again => {
                    return Err(FileError::Protocol(format!(
                        "the upload kept failing; run the same upload again to continue from where it stopped ({at} bytes in)"
                    )))
                }
            }
        }
    }

    /// Creates the upload with no bytes; returns its URL.
    async fn create(&self, name: &str, overwrite: bool, size: u64, digest: &[u8; 32]) -> Result<String, FileError> {
        let url = self.url(name);
        let resp = self
            .send(|| {
                let mut req = self
                    .http
                    .put(&url)
                    .header("Upload-Complete", "?0")
                    .header("Upload-Length", size)
                    .header("Upload-Draft-Interop-Version", INTEROP_VERSION)
                    .header("Repr-Digest", format!("sha-256=:{}:", B64.encode(digest)))
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header(header::CONTENT_LENGTH, 0)
                    .body(Vec::new());
                if !overwrite {
                    req = req.header(header::IF_NONE_MATCH, "*");
                }
                Ok(req)
            })
            .await?;
        match resp.status() {
            StatusCode::PRECONDITION_FAILED => Err(FileError::Exists { name: name.to_string() }),
            StatusCode::CREATED if resp.headers().contains_key("upload-offset") => resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .ok_or_else(|| FileError::Protocol("the server started an upload without saying where".into())),
            StatusCode::CREATED => Err(FileError::Protocol("the server did not start a resumable upload".into())),
            _ => Err(api_error(resp).await),
        }
    }

    /// The upload's offset, or `None` if the server no longer knows it.
    async fn offset(&self, url: &str) -> Result<Option<u64>, FileError> {
        for _ in 0..10 {
            let resp = self.send(|| Ok(self.http.head(url))).await?;
            match resp.status() {
                s if s.is_success() => return Ok(header_u64(resp.headers(), "upload-offset")),
                // An older request of ours still holds it; it lets go.
                StatusCode::CONFLICT => continue,
                StatusCode::NOT_FOUND => return Ok(None),
                _ => return Err(api_error(resp).await),
            }
        }
        Err(FileError::Protocol("the server kept saying the upload is busy".into()))
    }

    /// Sends the file from byte `at` to the end in one `PATCH`.
    async fn send_rest<P: Progress + Clone + Send + 'static>(
        &self,
        url: &str,
        local: &Path,
        name: &str,
        at: u64,
        size: u64,
        progress: &P,
    ) -> Try {
        let local_err = |source| FileError::Local { path: local.to_path_buf(), source };
        let sent = self
            .send(|| {
                progress.set_position(at);
                let mut file = std::fs::File::open(local).map_err(local_err)?;
                file.seek(SeekFrom::Start(at)).map_err(local_err)?;
                let progress = progress.clone();
                let stream = tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), CHUNK).map(
                    move |chunk| {
                        if let Ok(bytes) = &chunk {
                            progress.inc(bytes.len() as u64);
                        }
                        chunk
                    },
                );
                Ok(self
                    .http
                    .patch(url)
                    .header(header::CONTENT_TYPE, PARTIAL_UPLOAD)
                    .header("Upload-Offset", at)
                    .header("Upload-Complete", "?1")
                    .header("Upload-Draft-Interop-Version", INTEROP_VERSION)
                    .header(header::CONTENT_LENGTH, size - at)
                    .body(reqwest::Body::wrap_stream(stream)))
            })
            .await;
        let resp = match sent {
            Ok(resp) => resp,
            // The connection broke: the server kept what arrived.
            Err(FileError::Http(_)) => return Try::Again,
            Err(e) => return Try::Failed(e),
        };
        let status = resp.status();
        if status.is_success() {
            return Try::Done(resp);
        }
        if status == StatusCode::PRECONDITION_FAILED {
            return Try::Failed(FileError::Exists { name: name.to_string() });
        }
        // Cut short (stalled, superseded, a server error) or the offset
        // moved: ask where it stands and go on.
        let retry = status.is_server_error() || status == StatusCode::CONFLICT || status == StatusCode::REQUEST_TIMEOUT;
        let err = api_error(resp).await;
        if retry || matches!(&err, FileError::Server { code, .. } if code == "interrupted") {
            Try::Again
        } else {
            Try::Failed(err)
        }
    }
}

/// The upload's final answer, checked against what was sent.
async fn finished(resp: Response, size: u64, digest: [u8; 32], resumed_from: u64) -> Result<Uploaded, FileError> {
    let status = resp.status();
    let sha256 = crate::files::to_hex(&digest);
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    if let Some(stored) = body.get("sha256").and_then(|v| v.as_str()) {
        if !stored.eq_ignore_ascii_case(&sha256) {
            return Err(FileError::DigestMismatch { expected: sha256, actual: stored.to_string() });
        }
    }
    let share_url = body.get("share_url").and_then(|v| v.as_str()).map(str::to_string);
    Ok(Uploaded { size, sha256, replaced: status == StatusCode::OK, share_url, resumed_from })
}
