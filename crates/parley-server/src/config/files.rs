//! The `[files]` section: the HTTP file store's listeners, limits, share
//! links and which web origins may use it from a browser.

use super::{invalid, ConfigError};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The HTTP file store (see `files/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    /// HTTP listeners; empty (with no `tls_listen` either) turns the file
    /// store off.
    pub listen: Vec<SocketAddr>,
    /// HTTPS listeners; see `[tls]`.
    pub tls_listen: Vec<SocketAddr>,
    /// The URL clients use to reach the store, advertised in ISUPPORT
    /// `draft/FILEHOST` (with `/files` appended). Default: `http://` and the
    /// first listen address. Set it when listening on all interfaces or
    /// behind a proxy.
    pub public_url: Option<String>,
    /// Directory of the store, relative to `data_dir` unless absolute.
    pub dir: PathBuf,
    /// Largest file accepted, in bytes (413 beyond).
    pub max_file_bytes: u64,
    /// Total bytes all files may take (507 beyond).
    pub quota_bytes: u64,
    /// Free disk space that uploads must leave untouched (507 otherwise).
    pub min_free_bytes: u64,
    /// Uploads plus downloads running at once (503 beyond).
    pub max_concurrent_transfers: usize,
    /// Seconds an upload body may stall before the upload is dropped.
    pub body_idle_timeout_secs: u64,
    /// Seconds a client has to send its request headers.
    pub header_timeout_secs: u64,
    /// Total bytes of request headers accepted (431 beyond).
    pub max_header_bytes: usize,
    /// Lifetime of an `EXTJWT` token, in seconds.
    pub token_ttl_secs: u64,
    /// Whether listing and downloading need a token too (uploads always do).
    pub require_token_for_reads: bool,
    /// Longest file name, in bytes.
    pub max_name_bytes: usize,
    /// Announce completed uploads in the lobby.
    pub announce_uploads: bool,
    /// HTTP connections in total and per address.
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// Web origins (`scheme://host[:port]`, exactly as a browser sends
    /// `Origin`) whose pages may call the store with credentials (CORS).
    /// Empty: no cross-origin access. `*` is refused: a wildcard cannot be
    /// combined with credentials.
    pub cors_allowed_origins: Vec<String>,
    /// Seconds a browser may cache a CORS preflight answer.
    pub cors_max_age_secs: u64,
    /// Seconds a share link works after the upload; 0 = until revoked or
    /// the file is deleted or replaced.
    pub share_link_ttl_secs: u64,
    /// Seconds a resumable upload may sit without a request before it is
    /// removed with its bytes (the `max-age` of `Upload-Limit`).
    pub resumable_timeout_secs: u64,
    /// Resumable uploads in progress at once, in all (503 beyond).
    pub max_resumable_uploads: usize,
    /// Resumable uploads in progress at once for one user (429 beyond).
    pub max_resumable_uploads_per_user: usize,
    /// Send plain-HTTP downloads with `sendfile` (the kernel copies the
    /// file to the socket) instead of through hyper; HTTPS always streams.
    pub sendfile: bool,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 6680))],
            tls_listen: Vec::new(),
            public_url: None,
            dir: PathBuf::from("files"),
            max_file_bytes: 2 << 30,
            quota_bytes: 20 << 30,
            min_free_bytes: 256 << 20,
            max_concurrent_transfers: 64,
            body_idle_timeout_secs: 30,
            header_timeout_secs: 10,
            max_header_bytes: 16 * 1024,
            token_ttl_secs: 600,
            require_token_for_reads: true,
            max_name_bytes: 200,
            announce_uploads: true,
            max_connections: 1024,
            max_connections_per_ip: 64,
            cors_allowed_origins: Vec::new(),
            cors_max_age_secs: 600,
            share_link_ttl_secs: 0,
            resumable_timeout_secs: 3600,
            max_resumable_uploads: 256,
            max_resumable_uploads_per_user: 8,
            sendfile: true,
        }
    }
}

impl FilesConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let f = self;
        if let Some(url) = &f.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) || url.contains([' ', '\r', '\n']) {
                return Err(invalid("files.public_url", "must be an http:// or https:// URL"));
            }
        }
        for (key, v) in [
            ("files.max_file_bytes", f.max_file_bytes),
            ("files.quota_bytes", f.quota_bytes),
            ("files.body_idle_timeout_secs", f.body_idle_timeout_secs),
            ("files.header_timeout_secs", f.header_timeout_secs),
            ("files.max_header_bytes", f.max_header_bytes as u64),
            ("files.token_ttl_secs", f.token_ttl_secs),
            ("files.max_concurrent_transfers", f.max_concurrent_transfers as u64),
            ("files.max_name_bytes", f.max_name_bytes as u64),
            ("files.max_connections", f.max_connections as u64),
            ("files.max_connections_per_ip", f.max_connections_per_ip as u64),
            ("files.cors_max_age_secs", f.cors_max_age_secs),
            ("files.resumable_timeout_secs", f.resumable_timeout_secs),
            ("files.max_resumable_uploads", f.max_resumable_uploads as u64),
            ("files.max_resumable_uploads_per_user", f.max_resumable_uploads_per_user as u64),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        for origin in &self.cors_allowed_origins {
            if !valid_origin(origin) {
                return Err(invalid(
                    "files.cors_allowed_origins",
                    format!("{origin:?} is not an origin: write it as the browser sends it, like \"https://chat.example.org\" (scheme, host, optional port; no path, no trailing slash, no wildcard)"),
                ));
            }
        }
        Ok(())
    }
}

/// `scheme://host[:port]` with an http(s) scheme and nothing after.
pub(super) fn valid_origin(origin: &str) -> bool {
    let Some(rest) = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://")) else {
        return false;
    };
    !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        && !rest.starts_with(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked() {
        for good in ["https://chat.example.org", "http://127.0.0.1:8080", "http://[::1]:3000"] {
            assert!(valid_origin(good), "{good}");
        }
        for bad in ["*", "https://a.org/", "chat.example.org", "https://", "https://a.org/path", "ftp://a.org"] {
            assert!(!valid_origin(bad), "{bad}");
        }
    }
}
