//! Resumable uploads over HTTP: the IETF draft "Resumable Uploads for
//! HTTP" (draft-ietf-httpbis-resumable-upload, interop version 8).
//!
//! A `POST /files` or `PUT /files/{name}` with `Upload-Complete: ?0`
//! creates an upload resource, `/files/uploads/{id}`, and answers `201`
//! with its `Location`. `HEAD` there tells the offset, `PATCH` with
//! `application/partial-upload` appends at it, and the `PATCH` with
//! `Upload-Complete: ?1` ends the upload, which is then committed exactly
//! as the creating request would have been (same name rules,
//! precondition, digest check, share link, announcement); `DELETE`
//! cancels. The state lives in `uploads.rs`.
//!
//! Every refusal of bad input leaves the upload as it was before the
//! request: a wrong offset is refused before any byte is read, and an
//! append that breaks a limit or the declared length is rolled back
//! (`StagingWriter::rollback`). Only an interruption keeps what arrived
//! (as the draft asks), so the client can resume from there.
//!
//! Parley never sends `104 Upload Resumption Supported` (hyper's server
//! has no way to send an informational response but `100`), so a client
//! learns the upload's URL from the `201`: start with `Upload-Complete:
//! ?0` (and an empty or first part of the body), then append.

use super::auth::{actor, authenticate, Caller};
use super::commit::{commit, free_name};
use super::download::declared_type;
use super::errors::ApiError;
use super::limits::{check_room, declared, limit, no_space, too_big, used_bytes};
use super::storage::{Precondition, StagingWriter};
use super::uploads::{Full, Intent, Progress, Target, Ticket, Upload};
use super::{FileState, Peer};
use crate::activity_log::Value;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The draft's interop version this module speaks.
pub const INTEROP_VERSION: u32 = 8;
pub const PARTIAL_UPLOAD: &str = "application/partial-upload";

const UPLOAD_COMPLETE: HeaderName = HeaderName::from_static("upload-complete");
const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
const UPLOAD_LIMIT: HeaderName = HeaderName::from_static("upload-limit");
const INTEROP: HeaderName = HeaderName::from_static("upload-draft-interop-version");

/// `Upload-Complete` (a structured-field Boolean); anything but `?0` or
/// `?1` is ignored, as the draft says.
pub fn upload_complete(h: &HeaderMap) -> Option<bool> {
    match h.get(UPLOAD_COMPLETE)?.to_str().ok()?.trim() {
        "?1" => Some(true),
        "?0" => Some(false),
        _ => None,
    }
}

/// A structured-field Integer that must be non-negative (at most 15
/// digits, as RFC 9651 allows); anything else is ignored.
fn sf_integer(h: &HeaderMap, name: &HeaderName) -> Option<u64> {
    let v = h.get(name)?.to_str().ok()?.trim();
    (!v.is_empty() && v.len() <= 15 && v.bytes().all(|b| b.is_ascii_digit())).then(|| v.parse().ok()).flatten()
}

fn set(h: &mut HeaderMap, name: HeaderName, value: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        h.insert(name, v);
    }
}

/// `Upload-Limit`: the largest file, and how long an idle upload lives.
fn limits(st: &FileState) -> String {
    let f = &st.config.files;
    format!("max-size={}, max-age={}", f.max_file_bytes, f.resumable_timeout_secs)
}

/// What every answer about an upload resource says.
fn state_headers(st: &FileState, offset: u64, complete: bool, length: Option<u64>) -> HeaderMap {
    let mut h = HeaderMap::new();
    set(&mut h, INTEROP, INTEROP_VERSION);
    set(&mut h, UPLOAD_OFFSET, offset);
    set(&mut h, UPLOAD_COMPLETE, if complete { "?1" } else { "?0" });
    if let Some(len) = length {
        set(&mut h, UPLOAD_LENGTH, len);
    }
    set(&mut h, UPLOAD_LIMIT, limits(st));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h
}

/// Adds the upload's state to a refusal, so the client knows where it
/// stands.
fn with_state(err: ApiError, st: &FileState, offset: u64, length: Option<u64>) -> Response {
    let mut resp = err.into_response();
    resp.headers_mut().extend(state_headers(st, offset, false, length));
    resp
}

fn upload_url(st: &FileState, id: &str) -> String {
    format!("{}/uploads/{id}", st.base_url)
}

fn inconsistent_length(message: String) -> ApiError {
    ApiError::bad_request("inconsistent_length", message)
}

/// The length a request states: `Upload-Length`, or with `Upload-Complete:
/// ?1` the offset plus `Content-Length`. Both must agree with each other
/// and with what was said before.
fn stated_length(h: &HeaderMap, offset: u64, known: Option<u64>) -> Result<Option<u64>, ApiError> {
    let explicit = sf_integer(h, &UPLOAD_LENGTH);
    let content_len: Option<u64> = h.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
    let implied = if upload_complete(h) == Some(true) { content_len.map(|n| offset + n) } else { None };
    let mut found = known;
    for said in [explicit, implied].into_iter().flatten() {
        match found {
            Some(before) if before != said => {
                return Err(inconsistent_length(format!(
                    "The upload's length was given as {before} bytes and now as {said}; nothing was changed. Cancel the upload and start again if the file changed."
                )));
            }
            _ => found = Some(said),
        }
    }
    Ok(found)
}

/// Starts a resumable upload for a POST or PUT with `Upload-Complete: ?0`.
pub async fn create(
    st: &Arc<FileState>,
    peer: &Peer,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
    target: Target,
) -> Result<Response, ApiError> {
    let declared = declared(st, peer, caller, headers)?;
    let length = stated_length(headers, 0, None)?;
    if length.is_some_and(|n| n > st.config.files.max_file_bytes) {
        let mut resp = limit(st, peer, caller, "file_too_large", too_big(st)).into_response();
        set(resp.headers_mut(), UPLOAD_LIMIT, limits(st));
        return Ok(resp);
    }
    check_room(st, peer, caller, length.unwrap_or(0))?;
    let writer = st.store.stage().map_err(ApiError::internal)?;
    let intent = Intent {
        target,
        owner: caller.nick.clone(),
        content_type: declared_type(headers),
        length,
        sha256: declared.sha256,
    };
    let f = &st.config.files;
    let upload = match st.uploads.start(intent, writer, f.max_resumable_uploads, f.max_resumable_uploads_per_user) {
        Ok(u) => u,
        Err(Full::Server) => {
            let busy = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "Too many resumable uploads are in progress; try again later or upload in one request.",
            );
            return Err(limit(st, peer, caller, "resumable_uploads", busy));
        }
        Err(Full::User) => {
            let mine = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_uploads",
                format!(
                    "You have {} resumable uploads in progress; finish or cancel one (DELETE its URL) first.",
                    f.max_resumable_uploads_per_user
                ),
            );
            return Err(limit(st, peer, caller, "resumable_uploads_per_user", mine));
        }
    };
    let url = upload_url(st, &upload.id);
    st.log.record("upload_started", actor(peer, Some(caller)), &[]);
    let Some((mut progress, cancel)) = upload.take(upload.ticket()).await else {
        return Err(superseded());
    };
    let end = match append_body(st, peer, caller, &upload, &mut progress, body, cancel).await {
        Ok(end) => end,
        Err(e) => {
            // Refused before the client learnt the URL: nothing to resume.
            progress.writer = None;
            st.uploads.remove(&upload);
            return Err(e);
        }
    };
    let offset = upload.staged();
    let mut resp = match end {
        Appended::All => StatusCode::CREATED.into_response(),
        Appended::Cut(err) => err.into_response(),
    };
    resp.headers_mut().extend(state_headers(st, offset, false, progress.intent.length));
    set(resp.headers_mut(), header::LOCATION, url);
    Ok(resp)
}

/// The upload `id`, if it exists and `caller` may work on it.
fn owned(st: &FileState, peer: &Peer, caller: &Caller, id: &str, or_oper: bool) -> Result<Arc<Upload>, ApiError> {
    let Some(upload) = st.uploads.get(id) else {
        return Err(unknown_upload());
    };
    let allowed = parley_proto::irc_eq(&caller.nick, &upload.owner) || (or_oper && caller.oper);
    if !allowed {
        st.log.record("upload_refused", actor(peer, Some(caller)), &[("reason", Value::Text("not_owner"))]);
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_your_upload",
            "This upload belongs to someone else; start your own with POST /files and Upload-Complete: ?0.",
        ));
    }
    Ok(upload)
}

/// Takes `upload` with the ticket drawn on arrival (or a fresh one, if the
/// upload appeared only after).
async fn take(
    upload: &Upload,
    ticket: Option<Ticket>,
) -> Option<(tokio::sync::MutexGuard<'_, Progress>, CancellationToken)> {
    upload.take(ticket.unwrap_or_else(|| upload.ticket())).await
}

fn superseded() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "superseded",
        "A newer request for this upload took over; ask it (HEAD) for the offset.",
    )
}

fn unknown_upload() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_upload",
        "There is no upload in progress here: it finished, was cancelled, was removed after standing idle, or the server restarted. Start the upload again.",
    )
}

/// `HEAD /files/uploads/{id}`: where the upload stands.
pub async fn offset(
    State(st): State<Arc<FileState>>,
    Path(id): Path<String>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ticket = st.uploads.get(&id).map(|u| u.ticket());
    let caller = authenticate(&st, &headers, &peer).await?;
    let upload = owned(&st, &peer, &caller, &id, false)?;
    let Some((progress, _cancel)) = take(&upload, ticket).await else {
        return Err(superseded());
    };
    let Some(writer) = &progress.writer else {
        return Err(unknown_upload());
    };
    let h = state_headers(&st, writer.size(), false, progress.intent.length);
    Ok((StatusCode::NO_CONTENT, h).into_response())
}

/// `DELETE /files/uploads/{id}`: cancels, removing every staged byte.
pub async fn cancel(
    State(st): State<Arc<FileState>>,
    Path(id): Path<String>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ticket = st.uploads.get(&id).map(|u| u.ticket());
    let caller = authenticate(&st, &headers, &peer).await?;
    let upload = owned(&st, &peer, &caller, &id, true)?;
    let Some((mut progress, _cancel)) = take(&upload, ticket).await else {
        return Err(superseded());
    };
    progress.writer = None;
    st.uploads.remove(&upload);
    st.log.record("upload_cancelled", actor(&peer, Some(&caller)), &[]);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PATCH /files/uploads/{id}`: appends at `Upload-Offset`; with
/// `Upload-Complete: ?1`, finishes and commits.
pub async fn append(
    State(st): State<Arc<FileState>>,
    Path(id): Path<String>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ticket = st.uploads.get(&id).map(|u| u.ticket());
    let caller = authenticate(&st, &headers, &peer).await?;
    let upload = owned(&st, &peer, &caller, &id, false)?;
    let media = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !media.trim().eq_ignore_ascii_case(PARTIAL_UPLOAD) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not_partial_upload",
            format!("Send appends with Content-Type: {PARTIAL_UPLOAD}."),
        ));
    }
    let Some(complete) = upload_complete(&headers) else {
        return Err(ApiError::bad_request("no_upload_complete", "An append needs Upload-Complete: ?0 or ?1."));
    };
    let Some(offset) = sf_integer(&headers, &UPLOAD_OFFSET) else {
        return Err(ApiError::bad_request(
            "no_upload_offset",
            "An append needs Upload-Offset: the offset a HEAD request on this URL gives.",
        ));
    };
    let Some((mut progress, cancel)) = take(&upload, ticket).await else {
        return Err(superseded());
    };
    let Some(current) = progress.writer.as_ref().map(StagingWriter::size) else {
        return Err(unknown_upload());
    };
    let length = progress.intent.length;
    if offset != current {
        let err = ApiError::new(
            StatusCode::CONFLICT,
            "mismatching_offset",
            format!("The upload is at byte {current}, not {offset}; send the rest from byte {current}."),
        );
        return Ok(with_state(err, &st, current, length));
    }
    let length = match stated_length(&headers, offset, length) {
        Ok(l) => l,
        Err(e) => return Ok(with_state(e, &st, current, length)),
    };
    if length.is_some_and(|n| n > st.config.files.max_file_bytes) {
        return Ok(with_state(limit(&st, &peer, &caller, "file_too_large", too_big(&st)), &st, current, length));
    }
    let declared = match declared(&st, &peer, &caller, &headers) {
        Ok(d) => d,
        Err(e) => return Ok(with_state(e, &st, current, length)),
    };
    progress.intent.length = length;
    if declared.sha256.is_some() {
        progress.intent.sha256 = declared.sha256;
    }
    let end = append_body(&st, &peer, &caller, &upload, &mut progress, body, cancel).await?;
    let size = upload.staged();
    if let Appended::Cut(err) = end {
        return Ok(with_state(err, &st, size, length));
    }
    if !complete {
        return Ok((StatusCode::NO_CONTENT, state_headers(&st, size, false, length)).into_response());
    }
    if let Some(want) = length.filter(|n| *n != size) {
        let err = inconsistent_length(format!(
            "The upload was to be {want} bytes but ended at {size}; send the rest, or cancel and start again."
        ));
        return Ok(with_state(err, &st, size, length));
    }
    finish(&st, &peer, &caller, &upload, &mut progress).await
}

/// Completes an upload: fsync, digest check, commit as the creating
/// request asked.
async fn finish(
    st: &Arc<FileState>,
    peer: &Peer,
    caller: &Caller,
    upload: &Upload,
    progress: &mut Progress,
) -> Result<Response, ApiError> {
    let writer = progress.writer.take().ok_or_else(unknown_upload)?;
    st.uploads.remove(upload);
    let (staged, digest) = tokio::task::spawn_blocking(move || writer.finish())
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    if let Some(want) = progress.intent.sha256.filter(|want| *want != digest) {
        st.log.record("upload_refused", actor(peer, Some(caller)), &[("reason", Value::Text("digest_mismatch"))]);
        return Err(ApiError::bad_request(
            "digest_mismatch",
            format!(
                "The file's SHA-256 is {} but the digest header said {}; nothing was stored. Start the upload again.",
                hex::encode(digest),
                hex::encode(want)
            ),
        ));
    }
    let intent = progress.intent.clone();
    let (name, precondition) = match intent.target {
        Target::Put { name, precondition } => (name, precondition),
        Target::Post { base } => {
            let name = free_name(st, &base).ok_or_else(|| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "exists",
                    format!("Too many files are named like {base:?}; pick another name."),
                )
            })?;
            (name, Precondition::CreateOnly)
        }
    };
    let mut resp = commit(st, peer, caller, &name, staged, intent.content_type, precondition).await?;
    set(resp.headers_mut(), INTEROP, INTEROP_VERSION);
    set(resp.headers_mut(), UPLOAD_COMPLETE, "?1");
    Ok(resp)
}

/// How an append ended without a refusal.
enum Appended {
    /// The whole body is in.
    All,
    /// The body stopped early (dropped, stalled, or a newer request took
    /// the upload): what arrived is kept, and this is the answer.
    Cut(ApiError),
}

/// Why an append is refused and rolled back.
enum Refusal {
    BeyondLength(u64),
    TooBig,
    Quota,
}

/// Streams `body` onto the upload's staged file from its current end. A
/// refusal rolls the file back to where it was; an interruption keeps
/// what arrived.
async fn append_body(
    st: &FileState,
    peer: &Peer,
    caller: &Caller,
    upload: &Upload,
    progress: &mut Progress,
    body: Body,
    cancel: CancellationToken,
) -> Result<Appended, ApiError> {
    let Ok(_permit) = st.transfers.clone().try_acquire_owned() else {
        let busy = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "Too many transfers are running; try again in a few seconds (the upload keeps what it has).",
        );
        return Err(limit(st, peer, caller, "transfers", busy));
    };
    let mut writer = progress.writer.take().ok_or_else(unknown_upload)?;
    let start = writer.size();
    let checkpoint = writer.checkpoint();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let disk = tokio::task::spawn_blocking(move || {
        let mut result = Ok(());
        while let Some(chunk) = rx.blocking_recv() {
            result = writer.write(&chunk);
            if result.is_err() {
                break;
            }
        }
        (writer, result)
    });
    let outcome = read_append(st, upload, progress.intent.length, start, body, cancel, tx).await;
    let (mut writer, written) = disk.await.map_err(ApiError::internal)?;
    let refused = match (&outcome, written) {
        (_, Err(e)) if e.raw_os_error() == Some(libc::ENOSPC) || e.raw_os_error() == Some(libc::EDQUOT) => {
            Some(limit(st, peer, caller, "disk_full", no_space("disk full")))
        }
        (_, Err(e)) => Some(ApiError::internal(e)),
        (Err(Refusal::BeyondLength(len)), _) => Some(inconsistent_length(format!(
            "That goes past the upload's length of {len} bytes; nothing of this request was kept."
        ))),
        (Err(Refusal::TooBig), _) => Some(limit(st, peer, caller, "file_too_large", too_big(st))),
        (Err(Refusal::Quota), _) => Some(limit(st, peer, caller, "quota", no_space("quota reached"))),
        (Ok(_), Ok(())) => None,
    };
    if let Some(err) = refused {
        let rolled = writer.rollback(checkpoint);
        st.uploads.set_staged(upload, writer.size());
        progress.writer = Some(writer);
        rolled.map_err(ApiError::internal)?;
        return Err(err);
    }
    st.uploads.set_staged(upload, writer.size());
    progress.writer = Some(writer);
    upload.touch();
    outcome.map_err(|_| ApiError::internal("refusal without an error"))
}

/// Reads body frames into `tx`, checking each against the length, the
/// size limit and the quota before it is written.
async fn read_append(
    st: &FileState,
    upload: &Upload,
    length: Option<u64>,
    start: u64,
    mut body: Body,
    cancel: CancellationToken,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) -> Result<Appended, Refusal> {
    let cfg = &st.config.files;
    let idle = Duration::from_secs(cfg.body_idle_timeout_secs);
    let mut total = start;
    loop {
        let frame = tokio::select! {
            _ = cancel.cancelled() => {
                return Ok(Appended::Cut(superseded()));
            }
            f = tokio::time::timeout(idle, body.frame()) => f,
        };
        let frame = match frame {
            Err(_) => {
                return Ok(Appended::Cut(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "stalled",
                    format!(
                        "The upload stalled for {} seconds; what arrived is kept. Resume from Upload-Offset.",
                        idle.as_secs()
                    ),
                )))
            }
            Ok(None) => return Ok(Appended::All),
            Ok(Some(Err(e))) => {
                return Ok(Appended::Cut(ApiError::bad_request(
                    "interrupted",
                    format!("The upload was interrupted ({e}); what arrived is kept. Resume from Upload-Offset."),
                )))
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else { continue };
        let next = total + data.len() as u64;
        if let Some(len) = length.filter(|len| next > *len) {
            return Err(Refusal::BeyondLength(len));
        }
        if next > cfg.max_file_bytes {
            return Err(Refusal::TooBig);
        }
        // This upload's staged bytes are counted in `used_bytes` as of the
        // start of this append.
        if used_bytes(st) - upload.staged().min(used_bytes(st)) + next > cfg.quota_bytes {
            return Err(Refusal::Quota);
        }
        total = next;
        if tx.send(data).await.is_err() {
            // The disk side stopped: its error is reported by the caller.
            return Ok(Appended::All);
        }
    }
}

/// The headers a resumable-capable `OPTIONS` answer adds.
pub fn options_headers(st: &FileState, h: &mut HeaderMap) {
    h.insert(HeaderName::from_static("accept-patch"), HeaderValue::from_static(PARTIAL_UPLOAD));
    set(h, UPLOAD_LIMIT, limits(st));
    set(h, INTEROP, INTEROP_VERSION);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(HeaderName::from_static(k), HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn structured_fields_are_read_strictly() {
        assert_eq!(upload_complete(&h(&[("upload-complete", "?1")])), Some(true));
        assert_eq!(upload_complete(&h(&[("upload-complete", "?0")])), Some(false));
        assert_eq!(upload_complete(&h(&[("upload-complete", "true")])), None);
        assert_eq!(sf_integer(&h(&[("upload-offset", "42")]), &UPLOAD_OFFSET), Some(42));
        for bad in ["-1", "4.2", "", "1234567890123456", "0x10"] {
            assert_eq!(sf_integer(&h(&[("upload-offset", bad)]), &UPLOAD_OFFSET), None, "{bad}");
        }
    }

    #[test]
    fn lengths_must_agree() {
        let both = h(&[("upload-length", "10"), ("upload-complete", "?1"), ("content-length", "4")]);
        assert_eq!(stated_length(&both, 6, None).unwrap(), Some(10));
        assert!(stated_length(&both, 5, None).is_err(), "6 + 4 is not 5 + 4");
        assert!(stated_length(&h(&[("upload-length", "11")]), 0, Some(10)).is_err());
        assert_eq!(stated_length(&h(&[]), 0, Some(10)).unwrap(), Some(10));
    }
}
