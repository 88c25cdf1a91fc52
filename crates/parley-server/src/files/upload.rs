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
use super::commit::{commit, free_name, log_refused, precondition_failed};
use super::download::declared_type;
use super::errors::ApiError;
use super::headers;
use super::limits::{check_room, declared, limit, no_space, too_big, used_bytes};
use super::names;
use super::resumable;
use super::storage::{Entry, Precondition, Staged};
use super::uploads::Target;
use super::{FileState, Peer};
use crate::activity_log::Value;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use bytes::Bytes;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::Duration;

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

pub async fn put(
    State(st): State<Arc<FileState>>,
    Path(name): Path<String>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = authenticate(&st, &headers, &peer).await?;
    names::check(&name, st.config.files.max_name_bytes)?;
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
    commit(&st, &peer, &caller, &name, staged, declared_type(&headers), wanted).await
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
            names::check(&n, st.config.files.max_name_bytes)?;
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
    commit(&st, &peer, &caller, &name, staged, declared_type(&headers), Precondition::CreateOnly).await
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
