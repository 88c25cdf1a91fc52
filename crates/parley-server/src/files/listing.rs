//! `GET /files`: the list of stored files, as JSON for programs (the
//! default) or as a plain HTML page for a person whose browser asks for
//! `text/html`. The page is static markup (no script, no style sheet
//! beyond a few inline rules; `routes::guard` sandboxes it anyway), a
//! table with a caption and column headers so screen readers can walk it.

use super::auth::read_auth;
use super::errors::ApiError;
use super::headers;
use super::storage::Entry;
use super::{FileState, Peer};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use std::fmt::Write;
use std::sync::Arc;

#[derive(serde::Serialize)]
pub struct Listed {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub uploaded_by: String,
    pub modified: String,
    /// Whether this version has a working share link.
    pub shared: bool,
}

pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

pub fn listed(e: &Entry, now: i64) -> Listed {
    Listed {
        name: e.name.clone(),
        size: e.size,
        sha256: e.sha256.clone(),
        uploaded_by: e.uploaded_by.clone(),
        modified: rfc3339(e.modified),
        shared: e.share.as_ref().is_some_and(|s| s.live_at(now)),
    }
}

pub async fn list(
    State(st): State<Arc<FileState>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    read_auth(&st, &headers, &peer).await?;
    let now = super::auth::now();
    let entries = st.store.list();
    if wants_html(&headers) {
        let page = html_page(&st.base_url, &entries);
        let mut resp = page.into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        resp.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept"));
        return Ok(resp);
    }
    let files: Vec<Listed> = entries.iter().map(|e| listed(e, now)).collect();
    let mut resp = Json(files).into_response();
    resp.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept"));
    Ok(resp)
}

/// True when `Accept` names `text/html` (with a non-zero weight) ahead of
/// JSON: what a browser's navigation sends, never what `curl` or a
/// program sends by default.
pub fn wants_html(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let kind = parts.next().unwrap_or("").to_ascii_lowercase();
        let zero = parts.filter_map(|p| p.strip_prefix("q=")).any(|q| q.trim().parse::<f32>().is_ok_and(|q| q == 0.0));
        match kind.as_str() {
            "text/html" if !zero => return true,
            "application/json" if !zero => return false,
            _ => {}
        }
    }
    false
}

/// Escapes text for HTML element content and quoted attribute values.
/// Written out here: five replacements do not justify a template engine.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{size:.1} {}", UNITS[unit])
    }
}

pub fn html_page(base_url: &str, entries: &[Entry]) -> String {
    let mut page = String::from(concat!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
        "<title>Files</title>\n",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}",
        "th,td{padding:.3em .8em;text-align:left;border-bottom:1px solid #ccc}td.size{text-align:right}</style>\n",
        "</head>\n<body>\n<main>\n<h1>Files</h1>\n",
    ));
    if entries.is_empty() {
        page.push_str("<p>No files yet.</p>\n");
    } else {
        let _ = write!(page, "<table>\n<caption>{} files by name; times are UTC</caption>\n", entries.len());
        page.push_str("<thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Size</th><th scope=\"col\">Uploaded by</th><th scope=\"col\">Time</th></tr></thead>\n<tbody>\n");
        for e in entries {
            let url = format!("{base_url}/{}", headers::encode_segment(&e.name));
            let time = rfc3339(e.modified);
            let _ = writeln!(
                page,
                "<tr><td><a href=\"{}\">{}</a></td><td class=\"size\">{}</td><td>{}</td><td><time datetime=\"{time}\">{time}</time></td></tr>",
                escape(&url),
                escape(&e.name),
                human_size(e.size),
                escape(&e.uploaded_by),
            );
        }
        page.push_str("</tbody>\n</table>\n");
    }
    page.push_str("</main>\n</body>\n</html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn browsers_get_html_and_programs_json() {
        assert!(wants_html(&accept("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")));
        assert!(!wants_html(&accept("*/*")));
        assert!(!wants_html(&accept("application/json, text/html")));
        assert!(!wants_html(&accept("text/html;q=0, application/json")));
        assert!(!wants_html(&HeaderMap::new()));
    }

    #[test]
    fn names_cannot_inject_markup() {
        let e = Entry {
            name: "<script>alert(1)</script>\".txt".into(),
            size: 2048,
            sha256: "0".repeat(64),
            uploaded_by: "a&b".into(),
            modified: 0,
            content_type: None,
            share: None,
        };
        let page = html_page("http://h/files", &[e]);
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;.txt"));
        assert!(page.contains("a&amp;b"));
        assert!(page.contains("2.0 KiB"));
        assert!(page.contains("href=\"http://h/files/%3Cscript%3Ealert%281%29%3C%2Fscript%3E%22.txt\""));
    }
}
