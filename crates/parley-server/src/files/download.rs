//! Downloads: one file's bytes, by name (`GET /files/{name}`) or by share
//! link (`share.rs`), with ranges and conditional requests, served so that
//! a browser cannot be made to run what a user uploaded: a type from an
//! allow-list shown inline, anything else as an attachment of type
//! `application/octet-stream` (and, on every response, the sandbox and
//! `nosniff` headers `routes::guard` adds).

use super::auth::{actor, read_auth, Caller};
use super::errors::ApiError;
use super::headers::{self, RangeReq};
use super::names;
use super::storage::Entry;
use super::{FileState, Peer};
use crate::activity_log::Value;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Media types a browser may show in place: they run no script (no HTML,
/// no SVG, no XML). Everything else is an attachment.
const INLINE: &[(&str, &[&str])] = &[
    ("image/png", &["png"]),
    ("image/jpeg", &["jpg", "jpeg"]),
    ("image/gif", &["gif"]),
    ("image/webp", &["webp"]),
    ("image/avif", &["avif"]),
    ("video/mp4", &["mp4", "m4v"]),
    ("video/webm", &["webm"]),
    ("video/ogg", &["ogv"]),
    ("audio/mpeg", &["mp3"]),
    ("audio/ogg", &["ogg", "oga", "opus"]),
    ("audio/wav", &["wav"]),
    ("audio/flac", &["flac"]),
    ("audio/mp4", &["m4a"]),
    ("application/pdf", &["pdf"]),
    ("text/plain", &["txt", "log", "md"]),
];

/// The type to serve inline, if any: the declared one when it is on the
/// allow-list, else the one its name's extension gives, if on the list.
pub fn inline_type(e: &Entry) -> Option<&'static str> {
    if let Some(declared) = e.content_type.as_deref() {
        if let Some((t, _)) = INLINE.iter().find(|(t, _)| *t == declared) {
            return Some(t);
        }
    }
    let ext = e.name.rsplit_once('.')?.1.to_ascii_lowercase();
    INLINE.iter().find(|(_, exts)| exts.contains(&ext.as_str())).map(|(t, _)| *t)
}

/// The media type an uploader declared, reduced to `type/subtype` in
/// lower case, if it is one worth keeping. Form encodings are what curl
/// sends by default with `--data-binary`, not a statement about the file.
pub fn declared_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = v.split(';').next()?.trim().to_ascii_lowercase();
    let (kind, sub) = essence.split_once('/')?;
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b));
    let form = essence == "application/x-www-form-urlencoded" || kind == "multipart";
    (token(kind) && token(sub) && essence.len() <= 100 && !form).then_some(essence)
}

/// The headers every answer about one stored version carries.
pub fn entry_headers(e: &Entry, h: &mut HeaderMap) {
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
    let caller = read_auth(&st, &headers, &peer).await?;
    names::check(&name, st.config.files.max_name_bytes)?;
    let Some(entry) = st.store.get(&name) else {
        return Err(ApiError::not_found(&name));
    };
    serve(&st, &peer, caller.as_ref(), entry, &method, &headers).await
}

/// Answers GET or HEAD for one stored version.
pub async fn serve(
    st: &FileState,
    peer: &Peer,
    caller: Option<&Caller>,
    entry: Entry,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
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
    let inline = inline_type(&entry);
    let content_type = match inline {
        Some("text/plain") => "text/plain; charset=utf-8",
        Some(t) => t,
        None => "application/octet-stream",
    };
    resp_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&headers::disposition(inline.is_some(), &entry.name)) {
        resp_headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if *method == Method::HEAD {
        return Ok((status, resp_headers).into_response());
    }
    let Ok(permit) = st.transfers.clone().try_acquire_owned() else {
        st.log.record("limit", actor(peer, caller), &[("what", Value::Text("transfers"))]);
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "Too many transfers are running; try again in a few seconds.",
        ));
    };
    // The blob is immutable; if an overwrite removed it since we looked,
    // the entry has moved on and the client should ask again.
    let file = match open_blob(&st.store.blob_path(&entry.sha256)).await {
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
    // The same open blob twice: a stream for hyper, and a descriptor that
    // the plain-HTTP fast path (`zero_copy`) sends with `sendfile` instead,
    // dropping the stream unread. The permit lives as long as either.
    let file = file.into_std().await;
    let blob = BlobRange { file: Arc::new(file.try_clone().map_err(ApiError::internal)?), start, len };
    let permit = Arc::new(permit);
    let held = permit.clone();
    let mut file = tokio::fs::File::from_std(file);
    if start > 0 {
        file.seek(std::io::SeekFrom::Start(start)).await.map_err(ApiError::internal)?;
    }
    let counted = crate::metrics::get().download_bytes.clone();
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), super::READ_CHUNK).map(move |chunk| {
        let _held = &held;
        if let Ok(bytes) = &chunk {
            counted.inc_by(bytes.len() as u64);
        }
        chunk
    });
    crate::metrics::get().downloads.inc();
    let mut fields = vec![("name", Value::Text(&entry.name)), ("bytes", Value::Num(len))];
    let range_text = format!("{start}-{}", start + len.saturating_sub(1));
    if status == StatusCode::PARTIAL_CONTENT {
        fields.push(("range", Value::Text(&range_text)));
    }
    st.log.record("download", actor(peer, caller), &fields);
    let mut resp = (status, resp_headers, Body::from_stream(stream)).into_response();
    resp.extensions_mut().insert(ZeroCopy { blob, _permit: permit });
    Ok(resp)
}

/// The bytes a download's body holds: `len` bytes of `file` from `start`.
#[derive(Clone)]
pub struct BlobRange {
    pub file: Arc<std::fs::File>,
    pub start: u64,
    pub len: u64,
}

/// Put on a download's response for `zero_copy`, which may send the blob
/// itself rather than poll the body.
#[derive(Clone)]
pub struct ZeroCopy {
    pub blob: BlobRange,
    _permit: Arc<tokio::sync::OwnedSemaphorePermit>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, content_type: Option<&str>) -> Entry {
        Entry {
            name: name.into(),
            size: 1,
            sha256: "0".repeat(64),
            uploaded_by: "a".into(),
            modified: 0,
            content_type: content_type.map(str::to_string),
            share: None,
        }
    }

    #[test]
    fn only_allow_listed_types_are_inline() {
        assert_eq!(inline_type(&entry("cat.PNG", None)), Some("image/png"));
        assert_eq!(inline_type(&entry("x", Some("application/pdf"))), Some("application/pdf"));
        assert_eq!(inline_type(&entry("page.html", Some("text/html"))), None);
        assert_eq!(inline_type(&entry("logo.svg", Some("image/svg+xml"))), None);
        // A declared script type does not win over... nothing: it is not listed.
        assert_eq!(inline_type(&entry("a.js", Some("text/javascript"))), None);
        // A listed extension is used when the declared type is not listed.
        assert_eq!(inline_type(&entry("a.txt", Some("application/octet-stream"))), Some("text/plain"));
        assert_eq!(inline_type(&entry("noext", None)), None);
    }

    #[test]
    fn declared_types_are_reduced_and_form_encodings_ignored() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            m
        };
        assert_eq!(declared_type(&h("Image/PNG; q=1")), Some("image/png".into()));
        assert_eq!(declared_type(&h("application/x-www-form-urlencoded")), None);
        assert_eq!(declared_type(&h("multipart/form-data; boundary=x")), None);
        assert_eq!(declared_type(&h("nonsense")), None);
        assert_eq!(declared_type(&HeaderMap::new()), None);
    }
}
