//! Share links: capability URLs to one stored version of a file,
//! `<base>/s/<secret>/<name>`, that work in a browser or plain curl with no
//! login. The secret is 256 random bits from the operating system's
//! generator (via `rand`), so a link cannot be guessed; the store keeps
//! only its SHA-256 (`storage::ShareLink`), so the store's files do not
//! hold working links. A link ends when it expires
//! (`files.share_link_ttl_secs`), when the uploader or an operator revokes
//! it, and when its version is replaced or deleted.
//!
//! `POST /files/{name}/share` gives the current version a new link (the
//! old one stops working); `DELETE /files/{name}/share` revokes it.

use super::auth::{actor, authenticate, may_manage, now, Caller};
use super::download::serve;
use super::errors::ApiError;
use super::headers;
use super::listing::rfc3339;
use super::names;
use super::storage::{Entry, ShareLink};
use super::{FileState, Peer};
use crate::activity_log::Value;
use crate::config::FilesConfig;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Random bytes in a link's secret (256 bits; the floor is 128).
const SECRET_BYTES: usize = 32;

/// The stored id of a secret.
fn id_of(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// 256 random bits, base64url: a share-link secret or an upload id.
pub fn random_id() -> String {
    let bytes: [u8; SECRET_BYTES] = rand::random();
    B64.encode(bytes)
}

/// A new secret and the link record to store for it.
pub fn new_link(cfg: &FilesConfig, now: i64) -> (String, ShareLink) {
    let secret = random_id();
    let expires = (cfg.share_link_ttl_secs > 0).then(|| now.saturating_add(cfg.share_link_ttl_secs as i64));
    let link = ShareLink { id: id_of(&secret), expires };
    (secret, link)
}

/// The public URL of a link. The name at the end is for people and for
/// tools that name a download after the URL (`curl -O`); the secret alone
/// decides what is served.
pub fn url(base_url: &str, secret: &str, name: &str) -> String {
    format!("{base_url}/s/{secret}/{}", headers::encode_segment(name))
}

fn unknown_link() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_link",
        "This share link does not exist or was revoked, or its file was replaced or deleted. Ask whoever shared it for a new one.",
    )
}

/// `GET`/`HEAD /files/s/{secret}/{name}`: no login; the secret is the
/// permission.
pub async fn download(
    State(st): State<Arc<FileState>>,
    Path((secret, name)): Path<(String, String)>,
    Extension(peer): Extension<Peer>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // Refuse anything that cannot be a secret before hashing it.
    let plausible = secret.len() == B64.encode([0u8; SECRET_BYTES]).len()
        && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let entry = if plausible { st.store.by_link(&id_of(&secret), &name) } else { None };
    let Some(entry) = entry else {
        st.log.record("share_refused", actor(&peer, None), &[("reason", Value::Text("unknown"))]);
        return Err(unknown_link());
    };
    let live = entry.share.as_ref().is_some_and(|s| s.live_at(now()));
    if !live {
        st.log.record("share_refused", actor(&peer, None), &[("reason", Value::Text("expired"))]);
        return Err(ApiError::new(
            StatusCode::GONE,
            "link_expired",
            "This share link has expired. Ask whoever shared it for a new one.",
        ));
    }
    let mut resp = serve(&st, &peer, None, entry, &method, &headers).await?;
    // Caches between here and the person must not keep a capability's
    // answer for others.
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    Ok(resp)
}

/// The entry `name`, if `caller` may manage its links.
fn managed(st: &FileState, peer: &Peer, caller: &Caller, name: &str) -> Result<Entry, ApiError> {
    names::check(name, st.config.files.max_name_bytes)?;
    let Some(entry) = st.store.get(name) else {
        return Err(ApiError::not_found(name));
    };
    if !may_manage(caller, &entry.uploaded_by) {
        st.log.record("share_change_refused", actor(peer, Some(caller)), &[("name", Value::Text(name))]);
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "Only {} (who uploaded it) or an IRC operator may change the share link of {name:?}.",
                entry.uploaded_by
            ),
        ));
    }
    Ok(entry)
}

/// Stores `link` (or none) on the version `entry` names.
async fn set(st: &FileState, entry: &Entry, link: Option<ShareLink>) -> Result<Entry, ApiError> {
    let (store, name, sha) = (st.store.clone(), entry.name.clone(), entry.sha256.clone());
    let updated = tokio::task::spawn_blocking(move || store.set_share(&name, &sha, link))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    if updated.is_some() {
        st.chat.file_changed(&entry.name, None);
    }
    updated.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "changed",
            format!("{:?} was replaced or deleted meanwhile; look at it again and retry.", entry.name),
        )
    })
}

/// `POST /files/{name}/share`: a new link for the current version.
pub async fn create(
    State(st): State<Arc<FileState>>,
    Path(name): Path<String>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = authenticate(&st, &headers, &peer).await?;
    let entry = managed(&st, &peer, &caller, &name)?;
    let (secret, link) = new_link(&st.config.files, now());
    let expires = link.expires.map(rfc3339);
    set(&st, &entry, Some(link)).await?;
    st.log.record("share", actor(&peer, Some(&caller)), &[("name", Value::Text(&name))]);
    let url = url(&st.base_url, &secret, &name);
    let mut resp =
        (StatusCode::CREATED, Json(serde_json::json!({ "share_url": url, "share_expires": expires }))).into_response();
    if let Ok(v) = HeaderValue::from_str(&url) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// `DELETE /files/{name}/share`: the link stops working at once.
pub async fn revoke(
    State(st): State<Arc<FileState>>,
    Path(name): Path<String>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = authenticate(&st, &headers, &peer).await?;
    let entry = managed(&st, &peer, &caller, &name)?;
    if entry.share.is_some() {
        set(&st, &entry, None).await?;
    }
    st.log.record("share_revoke", actor(&peer, Some(&caller)), &[("name", Value::Text(&name))]);
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_carry_enough_randomness_and_expire_by_the_setting() {
        let mut cfg = FilesConfig::default();
        let (a, link_a) = new_link(&cfg, 1000);
        let (b, _) = new_link(&cfg, 1000);
        assert_ne!(a, b);
        assert!(B64.decode(&a).unwrap().len() * 8 >= 128);
        assert_eq!(link_a.id, id_of(&a));
        assert_eq!(link_a.expires, None);
        cfg.share_link_ttl_secs = 60;
        let (_, link) = new_link(&cfg, 1000);
        assert_eq!(link.expires, Some(1060));
        assert!(link.live_at(1059) && !link.live_at(1060));
    }

    #[test]
    fn urls_encode_the_name() {
        assert_eq!(url("http://h/files", "abc", "a b.txt"), "http://h/files/s/abc/a%20b.txt");
    }
}
