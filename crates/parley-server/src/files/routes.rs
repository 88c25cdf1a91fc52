//! The small handlers (delete, OPTIONS, no route) and the guard every
//! request and answer passes through. Uploads, downloads, the listing and
//! share links have modules of their own.

use super::auth::{actor, authenticate, may_manage};
use super::errors::ApiError;
use super::names;
use super::{FileState, Peer};
use crate::activity_log::Value;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use std::sync::Arc;

pub async fn delete(
    State(st): State<Arc<FileState>>,
    Path(name): Path<String>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = authenticate(&st, &headers, &peer).await?;
    names::check(&name, st.config.files.max_name_bytes)?;
    let Some(entry) = st.store.get(&name) else {
        return Err(ApiError::not_found(&name));
    };
    if !may_manage(&caller, &entry.uploaded_by) {
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
    st.chat.file_changed(&name, None);
    st.log.record("delete", actor(&peer, Some(&caller)), &[("name", Value::Text(&name))]);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Every request passes here first: headers adding up to more than
/// `files.max_header_bytes` are refused (hyper's own buffer limit is
/// coarser). Every answer passes here last, and gets the headers that keep
/// a browser from running or guessing at user content: a document from
/// the store is sandboxed (no script, no forms, its own origin),
/// `nosniff` keeps types as sent, and no page of the store tells another
/// site its URL (share links are secrets).
pub async fn guard(
    State(st): State<Arc<FileState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let size: usize =
        req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum::<usize>() + req.uri().to_string().len();
    let mut resp = if size > st.config.files.max_header_bytes {
        ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("The request headers are {size} bytes; at most {} are accepted.", st.config.files.max_header_bytes),
        )
        .into_response()
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    // The built-in web client's own pages carry a strict policy of their
    // own (`web_client`); everything else is sandboxed.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    resp
}

/// `Allow` of each kind of path, for OPTIONS and CORS preflights.
pub const ALLOW_COLLECTION: &str = "GET, HEAD, POST, OPTIONS";
pub const ALLOW_FILE: &str = "GET, HEAD, PUT, DELETE, OPTIONS";
pub const ALLOW_SHARE: &str = "POST, DELETE, OPTIONS";
pub const ALLOW_SHARED: &str = "GET, HEAD, OPTIONS";
pub const ALLOW_UPLOAD: &str = "HEAD, PATCH, DELETE, OPTIONS";

/// The `OPTIONS` answer `soju.im/FILEHOST` asks for: `204`, what methods
/// the path takes and, where POST is one, that any media type is accepted.
pub fn options_answer(allow: &'static str) -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    if allow.contains("POST") && allow.contains("GET") {
        resp.headers_mut().insert("accept-post", HeaderValue::from_static("*/*"));
    }
    resp
}

/// Where uploads are created (POST, PUT), resumable ones are too.
fn options_resumable(st: &FileState, allow: &'static str) -> Response {
    let mut resp = options_answer(allow);
    super::resumable::options_headers(st, resp.headers_mut());
    resp
}

pub async fn options_collection(State(st): State<Arc<FileState>>) -> Response {
    options_resumable(&st, ALLOW_COLLECTION)
}

pub async fn options_file(State(st): State<Arc<FileState>>) -> Response {
    options_resumable(&st, ALLOW_FILE)
}

pub async fn options_upload(State(st): State<Arc<FileState>>) -> Response {
    options_resumable(&st, ALLOW_UPLOAD)
}

pub async fn options_share() -> Response {
    options_answer(ALLOW_SHARE)
}

pub async fn options_shared() -> Response {
    options_answer(ALLOW_SHARED)
}

pub async fn no_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        "Nothing here. The file store lives under /files: GET /files lists it.",
    )
}
