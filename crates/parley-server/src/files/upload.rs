//! Uploads: `PUT /files/{name}` (with conditional writes) and `POST
//! /files` (the `soju.im/FILEHOST` upload: the server picks a free name
//! from `Content-Disposition`). Both answer with the file's share link in
//! `Location`, which is what a FILEHOST client posts to the channel.
//!
//! Uploads stream: the async side reads body frames with an idle timeout and
//! a running size check, and hands them over a small bounded channel to a
//! blocking task that hashes and writes them, so hashing, disk writes and
//! network reads overlap and memory stays flat whatever the file size.

use super::auth::{actor, authenticate, now, Caller};
use super::download::{declared_type, entry_headers};
use super::errors::ApiError;
use super::headers;
use super::listing::{listed, Listed};
use super::resumable;
use super::routes::check_name;
use super::share;
use super::storage::{CommitError, Entry, NewEntry, Precondition, Staged};
use super::uploads::Target;
use super::{FileState, Peer};
use crate::activity_log::Value;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::Duration;

/// The answer to an upload: the file as listed, and where to get it.
#[derive(serde::Serialize)]
struct Uploaded {
    #[serde(flatten)]
    file: Listed,
    /// The file by name (needs a login when reads do).
    url: String,
    /// The share link: works for anyone who has it, until revoked or
    /// expired.
    share_url: String,
    /// When the share link stops working (RFC 3339), if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    share_expires: Option<String>,
}

/// The precondition a PUT asks for, from If-None-Match / If-Match.
pub(super) fn precondition(headers: &HeaderMap, current: Option<&Entry>) -> Result<Precondition, ApiError> {
    if let Some(inm) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        if inm.trim() == "*" {
            return Ok(Precondition::CreateOnly);
        }
        return Err(ApiError::bad_request(
            "bad_precondition",
            "On uploads If-None-Match may only be `*` (create only).",
        ));
    }
    if let Some(im) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        let im = im.trim();
        if im == "*" {
            return Ok(match current {
                Some(e) => Precondition::IfMatch(e.sha256.clone()),
                None => Precondition::IfMatch(String::new()),
            });
        }
        let tag = im.trim_matches('"').to_string();
        return Ok(Precondition::IfMatch(tag));
    }
    Ok(Precondition::None)
}

pub(super) fn precondition_failed(name: &str, current: Option<&Entry>, wanted: &Precondition) -> ApiError {
    match (wanted, current) {
        (Precondition::CreateOnly, Some(e)) => ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "exists",
            format!(
                "A file named {name:?} already exists ({} bytes, uploaded by {}). Upload again without If-None-Match to replace it, or pick another name.",
                e.size, e.uploaded_by
            ),
        ),
        _ => ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "changed",
            format!("{name:?} is not the version you named in If-Match; fetch it again and retry."),
        ),
    }
}

pub async fn put(
    State(st): State<Arc<FileState>>,
    Path(name): Path<String>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = authenticate(&st, &headers, &peer).await?;
    check_name(&st, &name)?;
    let current = st.store.get(&name);
    let wanted = precondition(&headers, current.as_ref())?;
    let holds = match (&wanted, &current) {
        (Precondition::None, _) => true,
        (Precondition::CreateOnly, c) => c.is_none(),
        (Precondition::IfMatch(sha), Some(c)) => c.sha256 == *sha,
        (Precondition::IfMatch(_), None) => false,
    };
    if !holds {
        log_refused(&st, &peer, &caller, &name);
        return Err(precondition_failed(&name, current.as_ref(), &wanted));
    }
    if resumable::upload_complete(&headers) == Some(false) {
        let target = Target::Put { name, precondition: wanted };
        return resumable::create(&st, &peer, &caller, &headers, body, target).await;
    }
    let staged = receive(&st, &peer, &caller, &headers, body).await?;
    store(&st, &peer, &caller, &name, staged, declared_type(&headers), wanted).await
}

pub async fn post(
    State(st): State<Arc<FileState>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = authenticate(&st, &headers, &peer).await?;
    let requested =
        headers.get(header::CONTENT_DISPOSITION).and_then(|v| v.to_str().ok()).and_then(headers::disposition_filename);
    let base = match requested {
        Some(n) => {
            check_name(&st, &n)?;
            n
        }
        None => format!("upload-{}-{:04x}", now(), rand::random::<u16>()),
    };
    if resumable::upload_complete(&headers) == Some(false) {
        // The name is picked when the upload completes.
        return resumable::create(&st, &peer, &caller, &headers, body, Target::Post { base }).await;
    }
    let name = free_name(&st, &base).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "exists",
            format!("Too many files are named like {base:?}; pick another name."),
        )
    })?;
    let staged = receive(&st, &peer, &caller, &headers, body).await?;
    store(&st, &peer, &caller, &name, staged, declared_type(&headers), Precondition::CreateOnly).await
}

/// `base`, or `stem-2.ext`, `stem-3.ext`, ... whichever is free first.
pub(super) fn free_name(st: &FileState, base: &str) -> Option<String> {
    if st.store.get(base).is_none() {
        return Some(base.to_string());
    }
    let (stem, ext) = match base.rfind('.') {
        Some(i) if i > 0 => (&base[..i], &base[i..]),
        _ => (base, ""),
    };
    (2..1000)
        .map(|i| format!("{stem}-{i}{ext}"))
        .find(|n| n.len() <= st.config.files.max_name_bytes && st.store.get(n).is_none())
}

pub(super) fn log_refused(st: &FileState, peer: &Peer, caller: &Caller, name: &str) {
    st.log.record(
        "upload_refused",
        actor(peer, Some(caller)),
        &[("name", Value::Text(name)), ("reason", Value::Text("exists"))],
    );
}

pub(super) fn limit(st: &FileState, peer: &Peer, caller: &Caller, what: &str, err: ApiError) -> ApiError {
    st.log.record("limit", actor(peer, Some(caller)), &[("what", Value::Text(what))]);
    err
}

pub(super) fn too_big(st: &FileState) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("This server accepts files of at most {} bytes.", st.config.files.max_file_bytes),
    )
}

pub(super) fn no_space(why: &str) -> ApiError {
    ApiError::new(
        StatusCode::INSUFFICIENT_STORAGE,
        "no_space",
        format!("The file store is out of space ({why}); delete files or ask the administrator."),
    )
}

/// What an upload's headers say about its body.
pub(super) struct Declared {
    pub len: Option<u64>,
    /// From `Repr-Digest` or `Content-Digest`.
    pub sha256: Option<[u8; 32]>,
}

/// Reads and checks an upload's headers before any of its body: the
/// declared size against the limit, no content coding, a well-formed
/// digest.
pub(super) fn declared(
    st: &FileState,
    peer: &Peer,
    caller: &Caller,
    headers: &HeaderMap,
) -> Result<Declared, ApiError> {
    let len: Option<u64> =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    if len.is_some_and(|n| n > st.config.files.max_file_bytes) {
        return Err(limit(st, peer, caller, "file_too_large", too_big(st)));
    }
    // Bytes are stored exactly as sent: nothing is ever decompressed, so a
    // small body cannot expand into a huge file.
    if let Some(enc) = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()) {
        if !enc.trim().eq_ignore_ascii_case("identity") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content_encoding",
                format!("Uploads are stored as sent; send the file without Content-Encoding (got {enc:?})."),
            ));
        }
    }
    let sha256 = match headers.get("repr-digest").or_else(|| headers.get("content-digest")) {
        Some(v) => headers::parse_digest(v.to_str().unwrap_or("")).map_err(|_| {
            ApiError::bad_request(
                "bad_digest_header",
                "The digest header must look like `sha-256=:<base64 of the 32-byte SHA-256>:`.",
            )
        })?,
        None => None,
    };
    Ok(Declared { len, sha256 })
}

/// Bytes the quota counts: stored files and resumable uploads staged.
pub(super) fn used_bytes(st: &FileState) -> u64 {
    st.store.total_bytes() + st.uploads.staged_bytes()
}

/// Refuses an upload of `reserve` bytes that would pass the quota or eat
/// into the disk's free reserve.
pub(super) fn check_room(st: &FileState, peer: &Peer, caller: &Caller, reserve: u64) -> Result<(), ApiError> {
    let cfg = &st.config.files;
    if used_bytes(st) + reserve > cfg.quota_bytes {
        return Err(limit(st, peer, caller, "quota", no_space("quota reached")));
    }
    if st.store.free_bytes().map_err(ApiError::internal)? < reserve.saturating_add(cfg.min_free_bytes) {
        return Err(limit(st, peer, caller, "disk_reserve", no_space("disk nearly full")));
    }
    Ok(())
}

/// Streams the request body into a staged, fsynced, verified temp file.
async fn receive(
    st: &FileState,
    peer: &Peer,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
) -> Result<Staged, ApiError> {
    let declared = declared(st, peer, caller, headers)?;
    check_room(st, peer, caller, declared.len.unwrap_or(0))?;
    let Ok(_permit) = st.transfers.clone().try_acquire_owned() else {
        let busy = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "Too many transfers are running; try again in a few seconds.",
        );
        return Err(limit(st, peer, caller, "transfers", busy));
    };
    let mut writer = st.store.stage().map_err(ApiError::internal)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let disk = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        while let Some(chunk) = rx.blocking_recv() {
            writer.write(&chunk)?;
        }
        writer.finish()
    });
    let read = read_body(st, peer, caller, body, declared.len.is_none(), tx).await;
    let written = disk.await.map_err(ApiError::internal)?;
    let received = read?;
    let (staged, digest) = match written {
        Ok(done) => done,
        Err(e) if e.raw_os_error() == Some(libc::ENOSPC) || e.raw_os_error() == Some(libc::EDQUOT) => {
            return Err(limit(st, peer, caller, "disk_full", no_space("disk full")));
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    if staged.size != received {
        return Err(ApiError::internal("write size differs from received size"));
    }
    if let Some(want) = declared.sha256.filter(|want| *want != digest) {
        st.log.record("upload_refused", actor(peer, Some(caller)), &[("reason", Value::Text("digest_mismatch"))]);
        return Err(ApiError::bad_request(
            "digest_mismatch",
            format!("The body's SHA-256 is {} but the digest header said {}; nothing was stored. Check the file and send it again.", hex::encode(digest), hex::encode(want)),
        ));
    }
    Ok(staged)
}

/// Reads body frames into `tx` (the disk writer) with an idle timeout and
/// a running size check (and, with no declared size, a running quota
/// check). Returns the bytes received; dropping `tx` ends the writer.
async fn read_body(
    st: &FileState,
    peer: &Peer,
    caller: &Caller,
    mut body: Body,
    check_quota: bool,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) -> Result<u64, ApiError> {
    let cfg = &st.config.files;
    let idle = Duration::from_secs(cfg.body_idle_timeout_secs);
    let mut received: u64 = 0;
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => {
                let stalled = ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "stalled",
                    format!("The upload stalled for {} seconds and was dropped; nothing was stored.", idle.as_secs()),
                );
                return Err(limit(st, peer, caller, "body_timeout", stalled));
            }
            Ok(None) => return Ok(received),
            Ok(Some(Err(e))) => {
                return Err(ApiError::bad_request(
                    "interrupted",
                    format!("The upload was interrupted ({e}); nothing was stored."),
                ))
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        received += data.len() as u64;
        if received > cfg.max_file_bytes {
            return Err(limit(st, peer, caller, "file_too_large", too_big(st)));
        }
        if check_quota && used_bytes(st) + received > cfg.quota_bytes {
            return Err(limit(st, peer, caller, "quota", no_space("quota reached")));
        }
        if tx.send(data).await.is_err() {
            // The disk side stopped: its error is reported by the caller.
            return Ok(received);
        }
    }
}

/// Commits a staged upload with a new share link, answers, announces and
/// logs it.
pub(super) async fn store(
    st: &Arc<FileState>,
    peer: &Peer,
    caller: &Caller,
    name: &str,
    staged: Staged,
    content_type: Option<String>,
    wanted: Precondition,
) -> Result<Response, ApiError> {
    let store = st.store.clone();
    let (secret, link) = share::new_link(&st.config.files, now());
    let new = NewEntry { uploaded_by: caller.nick.clone(), modified: now(), content_type, share: Some(link) };
    let (n, w) = (name.to_string(), wanted.clone());
    let committed =
        tokio::task::spawn_blocking(move || store.commit(staged, &n, new, &w)).await.map_err(ApiError::internal)?;
    let (entry, old) = match committed {
        Ok(done) => done,
        Err(CommitError::Precondition(current)) => {
            log_refused(st, peer, caller, name);
            return Err(precondition_failed(name, current.as_deref(), &wanted));
        }
        Err(CommitError::Io(e)) if e.raw_os_error() == Some(libc::ENOSPC) => {
            return Err(ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "no_space",
                "The disk is full; nothing was stored.",
            ));
        }
        Err(CommitError::Io(e)) => return Err(ApiError::internal(e)),
    };
    let url = format!("{}/{}", st.base_url, headers::encode_segment(&entry.name));
    let share_url = share::url(&st.base_url, &secret, &entry.name);
    let kind = if old.is_some() { "overwrite" } else { "upload" };
    st.log.record(
        kind,
        actor(peer, Some(caller)),
        &[
            ("name", Value::Text(&entry.name)),
            ("bytes", Value::Num(entry.size)),
            ("sha256", Value::Text(&entry.sha256)),
        ],
    );
    if st.config.files.announce_uploads {
        announce(st, &entry, old.is_some(), &share_url);
    }
    let mut resp_headers = HeaderMap::new();
    entry_headers(&entry, &mut resp_headers);
    if let Ok(v) = HeaderValue::from_str(&share_url) {
        resp_headers.insert(header::LOCATION, v);
    }
    let status = if old.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    let share_expires = entry.share.as_ref().and_then(|s| s.expires).map(super::listing::rfc3339);
    let body = Uploaded { file: listed(&entry, now()), url, share_url, share_expires };
    Ok((status, resp_headers, Json(body)).into_response())
}

fn announce(st: &FileState, entry: &Entry, replaced: bool, url: &str) {
    let verb = if replaced { "replaced" } else { "uploaded" };
    st.chat.announce(&format!("{} {verb} {} ({} bytes): {url}", entry.uploaded_by, entry.name, entry.size));
}
