//! The end of every upload, plain or resumable: the staged file is
//! committed under its name with a fresh share link, then answered (ETag,
//! `Location:` the share link, the JSON entry), logged and announced.

use super::auth::{actor, now, Caller};
use super::download::entry_headers;
use super::errors::ApiError;
use super::headers;
use super::listing::{listed, Listed};
use super::share;
use super::storage::{CommitError, Entry, NewEntry, Precondition, Staged};
use super::{FileState, Peer};
use crate::activity_log::Value;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;

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

/// Commits a staged upload with a new share link, answers, announces and
/// logs it.
pub(super) async fn commit(
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
    let metrics = crate::metrics::get();
    metrics.uploads.inc();
    metrics.upload_bytes.inc_by(entry.size);
    st.log.record(
        kind,
        actor(peer, Some(caller)),
        &[
            ("name", Value::Text(&entry.name)),
            ("bytes", Value::Num(entry.size)),
            ("sha256", Value::Text(&entry.sha256)),
        ],
    );
    let notice = st.config.files.announce_uploads.then(|| announcement(&entry, old.is_some(), &share_url));
    if let Some(text) = &notice {
        st.chat.announce(text);
    }
    st.chat.file_changed(&entry.name, notice.as_deref());
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

fn announcement(entry: &Entry, replaced: bool, url: &str) -> String {
    let verb = if replaced { "replaced" } else { "uploaded" };
    format!("{} {verb} {} ({} bytes): {url}", entry.uploaded_by, entry.name, entry.size)
}
