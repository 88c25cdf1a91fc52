//! CORS: which web pages on other origins may call the store with the
//! user's credentials (a web IRC client such as gamja served from another
//! host uploading with Basic auth). Only origins named in
//! `files.cors_allowed_origins` are granted, each echoed back exactly,
//! never `*` (a wildcard cannot carry credentials).
//!
//! Written here rather than with `tower-http`'s `CorsLayer`: that layer
//! answers every `OPTIONS` request itself, which would swallow the plain
//! `OPTIONS` that `soju.im/FILEHOST` clients send (it must answer `204`
//! with `Allow` and `Accept-Post`), and it answers preflights from origins
//! it does not allow. The rules fit in this file.

use super::routes::{options_answer, ALLOW_COLLECTION, ALLOW_FILE, ALLOW_SHARE, ALLOW_SHARED, ALLOW_UPLOAD};
use super::FileState;
use axum::extract::State;
use axum::http::{header, HeaderValue, Method};
use axum::response::Response;
use std::sync::Arc;

/// Request headers a page may send (`Upload-*` by name: a preflight
/// answer cannot use a prefix wildcard).
pub const ALLOW_HEADERS: &str = "Authorization, Content-Type, Content-Disposition, Content-Digest, Repr-Digest, \
     If-Match, If-None-Match, If-Range, Range, Upload-Complete, Upload-Draft-Interop-Version, Upload-Offset, \
     Upload-Length, Upload-Limit";

/// Response headers a page may read.
pub const EXPOSE_HEADERS: &str = "Location, ETag, Repr-Digest, Content-Disposition, Content-Range, Retry-After, \
     Upload-Complete, Upload-Draft-Interop-Version, Upload-Offset, Upload-Length, Upload-Limit";

/// The `Allow` list of a path, for a preflight answered before routing.
fn allow_for(path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    match segments.as_slice() {
        ["files"] => ALLOW_COLLECTION,
        ["files", _] => ALLOW_FILE,
        ["files", _, "share"] => ALLOW_SHARE,
        ["files", "s", _, _] => ALLOW_SHARED,
        ["files", "uploads", _] => ALLOW_UPLOAD,
        _ => "OPTIONS",
    }
}

pub async fn cors(
    State(st): State<Arc<FileState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let granted = origin.filter(|o| st.config.files.cors_allowed_origins.iter().any(|a| a.as_bytes() == o.as_bytes()));
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let allow = allow_for(req.uri().path());
        let mut resp = options_answer(allow);
        let h = resp.headers_mut();
        h.insert(
            header::VARY,
            HeaderValue::from_static("Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
        );
        // An origin not on the list gets the plain OPTIONS answer and no
        // grant: the browser then refuses the request itself.
        if let Some(origin) = granted {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(allow));
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(st.config.files.cors_max_age_secs));
        }
        return resp;
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = granted {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preflights_name_the_methods_of_their_path() {
        assert_eq!(allow_for("/files"), ALLOW_COLLECTION);
        assert_eq!(allow_for("/files/"), ALLOW_COLLECTION);
        assert_eq!(allow_for("/files/a.txt"), ALLOW_FILE);
        assert_eq!(allow_for("/files/a.txt/share"), ALLOW_SHARE);
        assert_eq!(allow_for("/files/s/secret/a.txt"), ALLOW_SHARED);
        assert_eq!(allow_for("/files/uploads/abc"), ALLOW_UPLOAD);
        assert_eq!(allow_for("/elsewhere"), "OPTIONS");
    }
}
