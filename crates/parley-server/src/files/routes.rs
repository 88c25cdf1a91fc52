//! The file store's HTTP handlers: list, download (with ranges and
//! conditional requests), upload by PUT or POST, delete.
//!
//! Uploads stream: the async side reads body frames with an idle timeout and
//! a running size check, and hands them over a small bounded channel to a
//! blocking task that hashes and writes them, so hashing, disk writes and
//! network reads overlap and memory stays flat whatever the file size.

use super::errors::ApiError;
use super::headers::{self, RangeReq};
use super::names;
use super::storage::{CommitError, Entry, Precondition, Staged};
use super::{FileState, Peer};
use crate::activity_log::{Actor, Value};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Who is calling, from a valid token of a live IRC session.
pub struct Caller {
    pub nick: String,
    pub sid: u64,
    pub oper: bool,
}

const HOW_TO_GET_A_TOKEN: &str =
    "Send `EXTJWT *` on your IRC connection and pass the token it returns as `Authorization: Bearer <token>`.";

fn actor<'a>(peer: &Peer, caller: Option<&'a Caller>) -> Actor<'a> {
    Actor { conn: caller.map_or(0, |c| c.sid), addr: Some(peer.0), nick: caller.map(|c| c.nick.as_str()) }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Checks the bearer token and that its IRC session is still connected.
fn authenticate(st: &FileState, headers: &HeaderMap, peer: &Peer) -> Result<Caller, ApiError> {
    let fail = |why: &str, message: String| {
        st.log.record("http_auth_failed", actor(peer, None), &[("reason", Value::Text(why))]);
        ApiError::unauthorized(message)
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(fail("missing", format!("This needs a token. {HOW_TO_GET_A_TOKEN}")));
    };
    let Some(token) = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) else {
        return Err(fail("not_bearer", format!("Use the Bearer scheme. {HOW_TO_GET_A_TOKEN}")));
    };
    let claims = match st.tokens.verify(token.trim(), now()) {
        Ok(c) => c,
        Err(e) => return Err(fail("invalid", format!("The token was refused: {e}. {HOW_TO_GET_A_TOKEN}"))),
    };
    let Some(holder) = st.chat.holder(claims.sid) else {
        return Err(fail(
            "session_ended",
            "The IRC session this token belongs to has ended. Reconnect, then send `EXTJWT *` again and use the new token.".into(),
        ));
    };
    Ok(Caller { nick: holder.nick, sid: claims.sid, oper: holder.oper })
}

fn read_auth(st: &FileState, headers: &HeaderMap, peer: &Peer) -> Result<Option<Caller>, ApiError> {
    if st.config.files.require_token_for_reads {
        authenticate(st, headers, peer).map(Some)
    } else {
        Ok(None)
    }
}

fn check_name(st: &FileState, name: &str) -> Result<(), ApiError> {
    names::validate(name, st.config.files.max_name_bytes)
        .map_err(|e| ApiError::bad_request("bad_name", format!("Refused file name {name:?}: {e}.")))
}

#[derive(serde::Serialize)]
struct Listed {
    name: String,
    size: u64,
    sha256: String,
    uploaded_by: String,
    modified: String,
}

fn listed(e: &Entry) -> Listed {
    let modified = time::OffsetDateTime::from_unix_timestamp(e.modified)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default();
    Listed {
        name: e.name.clone(),
        size: e.size,
        sha256: e.sha256.clone(),
        uploaded_by: e.uploaded_by.clone(),
        modified,
    }
}

pub async fn list(
    State(st): State<Arc<FileState>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    read_auth(&st, &headers, &peer)?;
    let files: Vec<Listed> = st.store.list().iter().map(listed).collect();
    Ok(Json(files).into_response())
}

fn entry_headers(e: &Entry, h: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    set(h, header::ETAG, headers::etag(&e.sha256));
    let modified = SystemTime::UNIX_EPOCH + Duration::from_secs(e.modified.max(0) as u64);
    set(h, header::LAST_MODIFIED, httpdate::fmt_http_date(modified));
    if let Ok(raw) = <[u8; 32]>::try_from(hex::decode(&e.sha256).unwrap_or_default()) {
        set(h, header::HeaderName::from_static("repr-digest"), headers::digest_header(&raw));
    }
}

pub async fn download(
    State(st): State<Arc<FileState>>,
    Path(name): Path<String>,
    Extension(peer): Extension<Peer>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = read_auth(&st, &headers, &peer)?;
    check_name(&st, &name)?;
    let Some(entry) = st.store.get(&name) else {
        return Err(ApiError::not_found(&name));
    };
    let etag = headers::etag(&entry.sha256);
    let mut resp_headers = HeaderMap::new();
    entry_headers(&entry, &mut resp_headers);
    resp_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(inm) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        if headers::etag_list_matches(inm, &etag) {
            return Ok((StatusCode::NOT_MODIFIED, resp_headers).into_response());
        }
    }
    let size = entry.size;
    let mut range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map_or(RangeReq::Full, |r| headers::parse_range(r, size));
    if let Some(if_range) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        if if_range.trim() != etag {
            range = RangeReq::Full;
        }
    }
    let (status, start, len) = match range {
        RangeReq::Full => (StatusCode::OK, 0, size),
        RangeReq::Part(a, b) => {
            let v = format!("bytes {a}-{b}/{size}");
            resp_headers.insert(header::CONTENT_RANGE, HeaderValue::from_str(&v).map_err(ApiError::internal)?);
            (StatusCode::PARTIAL_CONTENT, a, b - a + 1)
        }
        RangeReq::Unsatisfiable => {
            let v = format!("bytes */{size}");
            resp_headers.insert(header::CONTENT_RANGE, HeaderValue::from_str(&v).map_err(ApiError::internal)?);
            let body = serde_json::json!({"error": "range_not_satisfiable", "message": format!("The file is {size} bytes; ask for a range inside it.")});
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, resp_headers, Json(body)).into_response());
        }
    };
    resp_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    resp_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    if let Ok(v) = HeaderValue::from_str(&headers::attachment(&entry.name)) {
        resp_headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if method == Method::HEAD {
        return Ok((status, resp_headers).into_response());
    }
    let Ok(permit) = st.transfers.clone().try_acquire_owned() else {
        st.log.record("limit", actor(&peer, caller.as_ref()), &[("what", Value::Text("transfers"))]);
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "Too many transfers are running; try again in a few seconds.",
        ));
    };
    // The blob is immutable; if an overwrite removed it since we looked,
    // the entry has moved on and the client should ask again.
    let mut file = match open_blob(&st.store.blob_path(&entry.sha256)).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "changed",
                "The file was replaced while you asked for it; request it again.",
            ));
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    if start > 0 {
        file.seek(std::io::SeekFrom::Start(start)).await.map_err(ApiError::internal)?;
    }
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), super::READ_CHUNK).map(move |chunk| {
        // The permit lives as long as the body stream.
        let _held = &permit;
        chunk
    });
    let mut fields = vec![("name", Value::Text(&entry.name)), ("bytes", Value::Num(len))];
    let range_text = format!("{start}-{}", start + len.saturating_sub(1));
    if status == StatusCode::PARTIAL_CONTENT {
        fields.push(("range", Value::Text(&range_text)));
    }
    st.log.record("download", actor(&peer, caller.as_ref()), &fields);
    Ok((status, resp_headers, Body::from_stream(stream)).into_response())
}

/// Opens a blob for reading without following a symbolic link: the store
/// only ever creates regular files, so a link there was planted and must
/// not lead a download outside the store.
async fn open_blob(path: &std::path::Path) -> std::io::Result<tokio::fs::File> {
    let mut opts = tokio::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    opts.custom_flags(libc::O_NOFOLLOW);
    opts.open(path).await
}

/// The precondition a PUT asks for, from If-None-Match / If-Match.
fn precondition(headers: &HeaderMap, current: Option<&Entry>) -> Result<Precondition, ApiError> {
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

fn precondition_failed(name: &str, current: Option<&Entry>, wanted: &Precondition) -> ApiError {
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
    let caller = authenticate(&st, &headers, &peer)?;
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
    let staged = receive(&st, &peer, &caller, &headers, body).await?;
    store(&st, &peer, &caller, &name, staged, wanted).await
}

pub async fn post(
    State(st): State<Arc<FileState>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = authenticate(&st, &headers, &peer)?;
    let requested =
        headers.get(header::CONTENT_DISPOSITION).and_then(|v| v.to_str().ok()).and_then(headers::disposition_filename);
    let base = match requested {
        Some(n) => {
            check_name(&st, &n)?;
            n
        }
        None => format!("upload-{}-{:04x}", now(), rand::random::<u16>()),
    };
    let name = free_name(&st, &base).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "exists",
            format!("Too many files are named like {base:?}; pick another name."),
        )
    })?;
    let staged = receive(&st, &peer, &caller, &headers, body).await?;
    store(&st, &peer, &caller, &name, staged, Precondition::CreateOnly).await
}

/// `base`, or `stem-2.ext`, `stem-3.ext`, ... whichever is free first.
fn free_name(st: &FileState, base: &str) -> Option<String> {
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

fn log_refused(st: &FileState, peer: &Peer, caller: &Caller, name: &str) {
    st.log.record(
        "upload_refused",
        actor(peer, Some(caller)),
        &[("name", Value::Text(name)), ("reason", Value::Text("exists"))],
    );
}

fn limit(st: &FileState, peer: &Peer, caller: &Caller, what: &str, err: ApiError) -> ApiError {
    st.log.record("limit", actor(peer, Some(caller)), &[("what", Value::Text(what))]);
    err
}

fn too_big(st: &FileState) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("This server accepts files of at most {} bytes.", st.config.files.max_file_bytes),
    )
}

fn no_space(why: &str) -> ApiError {
    ApiError::new(
        StatusCode::INSUFFICIENT_STORAGE,
        "no_space",
        format!("The file store is out of space ({why}); delete files or ask the administrator."),
    )
}

/// What an upload's headers say about its body.
struct Declared {
    len: Option<u64>,
    /// From `Repr-Digest` or `Content-Digest`.
    sha256: Option<[u8; 32]>,
}

/// Reads and checks an upload's headers before any of its body: the
/// declared size against the limit, no content coding, a well-formed
/// digest.
fn declared(st: &FileState, peer: &Peer, caller: &Caller, headers: &HeaderMap) -> Result<Declared, ApiError> {
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

/// Refuses an upload of `reserve` bytes that would pass the quota or eat
/// into the disk's free reserve.
fn check_room(st: &FileState, peer: &Peer, caller: &Caller, reserve: u64) -> Result<(), ApiError> {
    let cfg = &st.config.files;
    if st.store.total_bytes() + reserve > cfg.quota_bytes {
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
        if check_quota && st.store.total_bytes() + received > cfg.quota_bytes {
            return Err(limit(st, peer, caller, "quota", no_space("quota reached")));
        }
        if tx.send(data).await.is_err() {
            // The disk side stopped: its error is reported by the caller.
            return Ok(received);
        }
    }
}

/// Commits a staged upload, answers, announces and logs it.
async fn store(
    st: &Arc<FileState>,
    peer: &Peer,
    caller: &Caller,
    name: &str,
    staged: Staged,
    wanted: Precondition,
) -> Result<Response, ApiError> {
    let store = st.store.clone();
    let (n, who, w) = (name.to_string(), caller.nick.clone(), wanted.clone());
    let committed = tokio::task::spawn_blocking(move || store.commit(staged, &n, &who, now(), &w))
        .await
        .map_err(ApiError::internal)?;
    let (entry, old) = match committed {
        Ok(done) => done,
        Err(CommitError::Precondition(current)) => {
            log_refused(st, peer, caller, name);
            return Err(precondition_failed(name, current.as_ref(), &wanted));
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
        announce(st, &entry, old.is_some(), &url);
    }
    let mut resp_headers = HeaderMap::new();
    entry_headers(&entry, &mut resp_headers);
    if let Ok(v) = HeaderValue::from_str(&url) {
        resp_headers.insert(header::LOCATION, v);
    }
    let status = if old.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, resp_headers, Json(listed(&entry))).into_response())
}

fn announce(st: &FileState, entry: &Entry, replaced: bool, url: &str) {
    let verb = if replaced { "replaced" } else { "uploaded" };
    st.chat.announce(&format!("{} {verb} {} ({} bytes): {url}", entry.uploaded_by, entry.name, entry.size));
}

pub async fn delete(
    State(st): State<Arc<FileState>>,
    Path(name): Path<String>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = authenticate(&st, &headers, &peer)?;
    check_name(&st, &name)?;
    let Some(entry) = st.store.get(&name) else {
        return Err(ApiError::not_found(&name));
    };
    if !caller.oper && !parley_proto::irc_eq(&caller.nick, &entry.uploaded_by) {
        st.log.record("delete_refused", actor(&peer, Some(&caller)), &[("name", Value::Text(&name))]);
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("Only {} (who uploaded it) or an IRC operator may delete {name:?}.", entry.uploaded_by),
        ));
    }
    let store = st.store.clone();
    let n = name.clone();
    tokio::task::spawn_blocking(move || store.delete(&n))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    st.log.record("delete", actor(&peer, Some(&caller)), &[("name", Value::Text(&name))]);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Refuses requests whose headers add up to more than
/// `files.max_header_bytes` (hyper's own buffer limit is coarser).
pub async fn limit_headers(
    State(st): State<Arc<FileState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let size: usize =
        req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum::<usize>() + req.uri().to_string().len();
    if size > st.config.files.max_header_bytes {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("The request headers are {size} bytes; at most {} are accepted.", st.config.files.max_header_bytes),
        )
        .into_response();
    }
    next.run(req).await
}

pub async fn no_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        "Nothing here. The file store lives under /files: GET /files lists it.",
    )
}
