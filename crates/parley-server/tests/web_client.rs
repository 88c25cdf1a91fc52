//! The built-in web client's files as `parleyd` serves them: at `/` and
//! `/assets/<name>` on the file store's listener, with a strict
//! Content-Security-Policy of their own, types, validators, and nothing
//! else loosened (the store's answers stay sandboxed). What the client does
//! in a browser is tools/browser/'s job.

#[allow(dead_code)] // this test uses a part of the shared support code
mod support;

use parley_testkit::Server;
use support::http::request;

#[test]
fn the_page_and_its_assets_are_served_with_a_strict_policy() {
    let server = Server::start();
    let http = server.http_addr().expect("the file store listens");
    let page = request(http, "GET", "/", &[], None);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = page.header("content-security-policy").expect("a policy");
    for part in
        ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"]
    {
        assert!(csp.contains(part), "{part} missing from {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    // The socket on the page's own host, named for browsers whose 'self' does not cover ws:.
    assert!(csp.contains("connect-src 'self' ws://test wss://test;"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert!(page.text().contains("/assets/app.js"));

    let script = request(http, "GET", "/assets/app.js", &[], None);
    assert_eq!(script.status, 200);
    assert_eq!(script.header("content-type"), Some("text/javascript; charset=utf-8"));
    assert_eq!(script.header("cache-control"), Some("no-cache"));
    let etag = script.header("etag").expect("an ETag").to_string();
    let again = request(http, "GET", "/assets/app.js", &[("If-None-Match", etag)], None);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());

    assert_eq!(request(http, "GET", "/assets/nothing.js", &[], None).status, 404);
    assert_eq!(request(http, "GET", "/assets/..%2fCargo.toml", &[], None).status, 404);
}

#[test]
fn the_file_store_stays_sandboxed_beside_the_client() {
    let server = Server::start();
    let http = server.http_addr().expect("the file store listens");
    let missing = request(http, "GET", "/nowhere", &[], None);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("content-security-policy"), Some("sandbox"));
    let listing = request(http, "GET", "/files", &[], None);
    assert_eq!(listing.header("content-security-policy"), Some("sandbox"));
}
