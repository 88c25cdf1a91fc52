//! The `[websocket]` section: IRC over WebSocket (`GET /socket` on the
//! file store's listeners, and listeners of its own), and which web pages
//! may open it.

use super::{invalid, ConfigError};
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSocketConfig {
    /// Serve IRC over WebSocket at `/socket` on the file store's HTTP and
    /// HTTPS listeners (and on `websocket.listen`).
    pub enabled: bool,
    /// Plain-HTTP listeners of its own that serve only `/socket`, for
    /// example `["0.0.0.0:6681"]`. Empty (the default): none.
    pub listen: Vec<SocketAddr>,
    /// The web pages (their origins, as a browser sends them in `Origin`)
    /// that may open the socket; `"*"` allows every page. Unset (the
    /// default): the origin of `files.public_url` when it is set, else
    /// pages served by the same host and port the request went to (the
    /// built-in web client). A request without `Origin` (not a browser) is
    /// always allowed.
    pub allowed_origins: Option<Vec<String>>,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig { enabled: true, listen: Vec::new(), allowed_origins: None }
    }
}

impl WebSocketConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for origin in self.allowed_origins.iter().flatten() {
            if origin != "*" && !super::files::valid_origin(origin) {
                return Err(invalid(
                    "websocket.allowed_origins",
                    format!("{origin:?} is not an origin: write it as the browser sends it, like \"https://chat.example.org\" (scheme, host, optional port; no path, no trailing slash), or \"*\" for every page"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_origin_names_the_key_and_a_star_is_allowed() {
        let mut ws = WebSocketConfig { allowed_origins: Some(vec!["https://a.org/path".into()]), ..Default::default() };
        let err = ws.validate().unwrap_err().to_string();
        assert!(err.contains("websocket.allowed_origins") && err.contains("a.org/path"), "{err}");
        ws.allowed_origins = Some(vec!["*".into(), "http://127.0.0.1:6680".into()]);
        ws.validate().unwrap();
    }
}
