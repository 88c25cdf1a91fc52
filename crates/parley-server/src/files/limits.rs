//! The limits every upload is held to, plain or resumable: the declared
//! size, content coding and digest header read before any body byte, and
//! the room left under the quota and the disk's free reserve (staged bytes
//! of resumable uploads included).

use super::auth::{actor, Caller};
use super::errors::ApiError;
use super::headers;
use super::{FileState, Peer};
use crate::activity_log::Value;
use axum::http::{header, HeaderMap, StatusCode};

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
