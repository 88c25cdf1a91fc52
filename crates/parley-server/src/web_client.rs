//! The built-in web client: the files of `crates/parley-server/web/`,
//! compiled into the binary and served at `/` and `/assets/<name>` on the
//! file store's HTTP and HTTPS listeners, so opening the server's address
//! in a browser is all a person needs (it talks IRC over the WebSocket at
//! `/socket` and uses the file store's API like any other client).
//!
//! It owns the asset table and the headers of these answers: the type,
//! a strict `Content-Security-Policy` (only this origin's scripts and
//! styles, no inline code, nothing framed), an `ETag` with `no-cache`
//! so a browser revalidates instead of running a stale client after an
//! upgrade. It never reads the disk and never sees user data.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// The policy of every page and asset of the client, around its
/// `connect-src`. `img-src` allows `blob:` and `data:` for what the page
/// makes itself.
const POLICY_HEAD: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'";
const POLICY_TAIL: &str = "; img-src 'self' data: blob:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The whole policy for a request to `host` (its `Host` header). CSP
/// Level 3 lets `'self'` match the page's own `ws:`/`wss:` URLs, but older
/// browsers need them named: the socket is on the page's own host and
/// port, so they are named when the `Host` header is a plain host[:port].
pub fn content_security_policy(host: Option<&str>) -> HeaderValue {
    let socket = host
        .filter(|h| {
            !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .map(|h| format!(" ws://{h} wss://{h}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!("{POLICY_HEAD}{socket}{POLICY_TAIL}")).expect("checked characters")
}

/// One file of the client.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset { name: "index.html", content_type: "text/html; charset=utf-8", body: include_bytes!("../web/index.html") },
    Asset { name: "style.css", content_type: "text/css; charset=utf-8", body: include_bytes!("../web/style.css") },
    Asset { name: "app.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("../web/app.js") },
    Asset { name: "irc.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("../web/irc.js") },
    Asset { name: "files.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("../web/files.js") },
    Asset {
        name: "conversations.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/conversations.js"),
    },
    Asset { name: "view.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("../web/view.js") },
    Asset { name: "favicon.svg", content_type: "image/svg+xml", body: include_bytes!("../web/favicon.svg") },
];

/// Each asset's strong ETag (the start of its SHA-256), computed once.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let digest = Sha256::digest(a.body);
            HeaderValue::from_str(&format!("\"{}\"", hex::encode(&digest[..16]))).expect("hex is a valid header")
        })
        .collect()
});

/// The client's routes, merged into the file store's router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|headers: HeaderMap| async move { serve("index.html", &headers) }))
        .route(
            "/assets/{name}",
            get(|Path(name): Path<String>, headers: HeaderMap| async move { serve(&name, &headers) }),
        )
        .route("/favicon.ico", get(|headers: HeaderMap| async move { serve("favicon.svg", &headers) }))
}

/// The answer for one asset: `200` with the body, `304` when the browser
/// already has this version, `404` for a name that is not one.
fn serve(name: &str, request: &HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "No such asset.\n")
            .into_response();
    };
    let asset = &ASSETS[index];
    let etag = ETAGS[index].clone();
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag.to_str().unwrap_or_default() || t.trim() == "*"));
    let mut resp = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { asset.body.into_response() };
    let h = resp.headers_mut();
    if !fresh {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    }
    h.insert(header::ETAG, etag);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let host = request.get(header::HOST).and_then(|v| v.to_str().ok());
    h.insert(header::CONTENT_SECURITY_POLICY, content_security_policy(host));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_type_and_index_links_only_assets_that_exist() {
        let index = std::str::from_utf8(ASSETS[0].body).unwrap();
        for part in index.split("/assets/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            assert!(ASSETS.iter().any(|a| a.name == name), "index.html links the missing asset {name}");
        }
        // No inline script or style: the policy would block it anyway.
        assert!(!index.contains("<script>") && !index.contains("style="), "inline code in index.html");
    }

    #[test]
    fn the_policy_names_the_socket_of_a_plain_host_only() {
        let policy = content_security_policy(Some("127.0.0.1:6680"));
        assert!(policy.to_str().unwrap().contains("connect-src 'self' ws://127.0.0.1:6680 wss://127.0.0.1:6680;"));
        for odd in [None, Some(""), Some("evil; script-src *"), Some("a b")] {
            let policy = content_security_policy(odd);
            assert!(policy.to_str().unwrap().contains("connect-src 'self'; img-src"), "{odd:?}");
        }
    }

    #[test]
    fn a_known_etag_gets_304_and_an_unknown_name_404() {
        let first = serve("app.js", &HeaderMap::new());
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].clone();
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(serve("app.js", &again).status(), StatusCode::NOT_MODIFIED);
        assert_eq!(serve("../Cargo.toml", &HeaderMap::new()).status(), StatusCode::NOT_FOUND);
    }
}
