//! The file store as the IRC clients that upload speak to it
//! (`soju.im/FILEHOST`: goguma, gamja, halloy, senpai), as browsers and
//! curl open its share links, and as a person lists it in a browser:
//! against the real `parleyd` over sockets.

// Not every helper of the shared HTTP client is needed here.
#[allow(dead_code)]
mod support;

use base64::Engine;
use parley_testkit::{Client, Server, ADMIN_NAME, ADMIN_PASSWORD, TIMEOUT};
use std::net::SocketAddr;
use support::http::{request, sha256_hex, Response};

fn http(server: &Server) -> SocketAddr {
    server.http_addr().expect("the readiness line names the file store")
}

fn basic(name: &str, password: &str) -> (&'static str, String) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
    ("Authorization", format!("Basic {b64}"))
}

fn bearer(irc: &mut Client) -> (&'static str, String) {
    irc.send("EXTJWT *");
    let token = irc.expect(|l| l.is("EXTJWT"), TIMEOUT).last().to_string();
    ("Authorization", format!("Bearer {token}"))
}

/// The path (and query) of an absolute URL on the store.
fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").expect("an absolute URL").1;
    &rest[rest.find('/').expect("a path")..]
}

/// Follows an upload's `Location` with no credentials at all.
fn fetch_location(server: &Server, r: &Response) -> Response {
    let location = r.header("location").unwrap_or_else(|| panic!("no Location: {}", r.text()));
    assert!(location.starts_with(&format!("http://{}/files/s/", http(server))), "{location}");
    request(http(server), "GET", path_of(location), &[], None)
}

fn filehost_url(lines: &[parley_testkit::irc::Line], key: &str) -> Option<String> {
    lines.iter().flat_map(|l| l.params.iter()).find_map(|p| p.strip_prefix(&format!("{key}=")).map(str::to_string))
}

#[test]
fn isupport_offers_soju_filehost_beside_draft_filehost() {
    let server = Server::start();
    let mut c = Client::connect(server.irc_addr());
    let lines = c.register("alice");
    let want = format!("http://{}/files", http(&server));
    assert_eq!(filehost_url(&lines, "soju.im/FILEHOST"), Some(want.clone()));
    assert_eq!(filehost_url(&lines, "draft/FILEHOST"), Some(want));
}

#[test]
fn options_answers_204_with_allow_and_accept_post() {
    let server = Server::start();
    let r = request(http(&server), "OPTIONS", "/files", &[], None);
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.header("allow").unwrap().contains("POST"));
    assert_eq!(r.header("accept-post"), Some("*/*"));
    let r = request(http(&server), "OPTIONS", "/files/a.txt", &[], None);
    assert_eq!(r.status, 204);
    assert!(r.header("allow").unwrap().contains("PUT"));
}

/// goguma (Dart `http`): Basic from the SASL PLAIN credentials, an RFC 8187
/// `filename*`, the type and the length.
#[test]
fn goguma_post_with_basic_gets_201_and_a_location_with_the_same_bytes() {
    let server = Server::start();
    server.add_account("gina", "goguma-pass");
    let body = b"\x89PNG\r\n\x1a\n a picture, nearly".to_vec();
    let r = request(
        http(&server),
        "POST",
        "/files",
        &[
            basic("gina", "goguma-pass"),
            ("Content-Type", "image/png".into()),
            ("Content-Disposition", "attachment; filename*=UTF-8''caf%C3%A9%20photo.png".into()),
        ],
        Some(&body),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["name"], "café photo.png");
    assert_eq!(r.json()["uploaded_by"], "gina");
    let d = fetch_location(&server, &r);
    assert_eq!(d.status, 200, "{}", d.text());
    assert_eq!(d.body, body);
    assert_eq!(d.header("content-type"), Some("image/png"));
    assert!(d.header("content-disposition").unwrap().starts_with("inline;"));
    let head = request(http(&server), "HEAD", path_of(r.header("location").unwrap()), &[], None);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some(body.len().to_string().as_str()));
}

/// senpai (Go `net/http`): Basic, and `mime.FormatMediaType`'s unquoted
/// plain `filename`.
#[test]
fn senpai_post_with_an_unquoted_filename_is_stored_under_it() {
    let server = Server::start();
    server.add_account("sam", "senpai-pass");
    let r = request(
        http(&server),
        "POST",
        "/files",
        &[
            basic("sam", "senpai-pass"),
            ("Content-Type", "text/plain; charset=utf-8".into()),
            ("Content-Disposition", "attachment; filename=log.txt".into()),
        ],
        Some(b"senpai says hi\n"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["name"], "log.txt");
    assert_eq!(fetch_location(&server, &r).body, b"senpai says hi\n");
}

/// halloy (reqwest) with a token instead: `Bearer` with the EXTJWT token
/// of the IRC session, and a quoted plain `filename`.
#[test]
fn post_with_a_bearer_token_gets_201() {
    let server = Server::start();
    let mut irc = Client::registered(server.irc_addr(), "hal");
    let r = request(
        http(&server),
        "POST",
        "/files",
        &[
            bearer(&mut irc),
            ("Content-Type", "application/octet-stream".into()),
            ("Content-Disposition", "attachment; filename=\"notes 1.bin\"".into()),
        ],
        Some(b"\x00\x01\x02"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["uploaded_by"], "hal");
    let d = fetch_location(&server, &r);
    assert_eq!(d.body, b"\x00\x01\x02");
    assert_eq!(d.header("content-type"), Some("application/octet-stream"));
    assert!(d.header("content-disposition").unwrap().starts_with("attachment;"));
}

/// A token names the account its session is logged in to; a session
/// using an account's nick without logging in gets no say over its files.
#[test]
fn a_token_speaks_for_the_account_and_never_for_a_squatter() {
    let server = Server::start();
    server.add_account("ivy", "sesame");
    let upload = |auth: (&'static str, String)| {
        let headers = [auth, ("Content-Disposition", "attachment; filename=\"ivy.txt\"".to_string())];
        request(http(&server), "POST", "/files", &headers, Some(b"mine"))
    };
    let mut squatter = Client::registered(server.irc_addr(), "ivy");
    let refused = upload(bearer(&mut squatter));
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert!(refused.message().contains("belongs to an account"), "{}", refused.text());
    squatter.send("PRIVMSG NickServ :IDENTIFY sesame");
    squatter.expect(|l| l.is("900"), TIMEOUT);
    let made = upload(bearer(&mut squatter));
    assert_eq!(made.status, 201, "{}", made.text());
    assert_eq!(made.json()["uploaded_by"], "ivy", "the account, as with Basic");
}

/// gamja in a browser on another origin: the preflight, then the POST
/// with `Origin` and credentials; the page may read `Location`.
#[test]
fn gamja_on_an_allowed_origin_passes_the_preflight_and_reads_location() {
    let origin = "https://chat.example.org";
    let server = Server::start_with(&format!("[files]\ncors_allowed_origins = [\"{origin}\"]\n"));
    server.add_account("gamma", "gamja-pass");
    let pre = request(
        http(&server),
        "OPTIONS",
        "/files",
        &[
            ("Origin", origin.into()),
            ("Access-Control-Request-Method", "POST".into()),
            ("Access-Control-Request-Headers", "authorization,content-disposition,content-type".into()),
        ],
        None,
    );
    assert!(pre.status == 204, "{}", pre.status);
    assert_eq!(pre.header("access-control-allow-origin"), Some(origin));
    assert_eq!(pre.header("access-control-allow-credentials"), Some("true"));
    assert!(pre.header("access-control-allow-methods").unwrap().contains("POST"));
    let allowed = pre.header("access-control-allow-headers").unwrap().to_ascii_lowercase();
    for h in ["authorization", "content-type", "content-disposition", "upload-offset"] {
        assert!(allowed.contains(h), "{h} missing from {allowed}");
    }
    let r = request(
        http(&server),
        "POST",
        "/files",
        &[
            ("Origin", origin.into()),
            basic("gamma", "gamja-pass"),
            ("Content-Type", "image/gif".into()),
            ("Content-Disposition", "attachment; filename*=UTF-8''anim.gif".into()),
        ],
        Some(b"GIF89a..."),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some(origin));
    assert!(r.header("access-control-expose-headers").unwrap().contains("Location"));
    assert_eq!(fetch_location(&server, &r).body, b"GIF89a...");
}

#[test]
fn an_origin_not_on_the_list_gets_no_grant() {
    let server = Server::start_with("[files]\ncors_allowed_origins = [\"https://chat.example.org\"]\n");
    let pre = request(
        http(&server),
        "OPTIONS",
        "/files",
        &[("Origin", "https://evil.example".into()), ("Access-Control-Request-Method", "POST".into())],
        None,
    );
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("access-control-allow-origin"), None);
    assert_eq!(pre.header("access-control-allow-credentials"), None);
    let r = request(http(&server), "GET", "/files", &[("Origin", "https://evil.example".into())], None);
    assert_eq!(r.header("access-control-allow-origin"), None);
}

#[test]
fn wrong_names_and_passwords_count_against_the_shared_login_limit() {
    let server = Server::start_with("[limits]\noper_failures_per_ip = 2\n");
    server.add_account("vera", "right-pass");
    let post = |auth| request(http(&server), "POST", "/files", &[auth], Some(b"x"));
    let r = post(basic("vera", "wrong"));
    assert_eq!(r.status, 401);
    assert!(r.message().contains("Wrong account name or password"), "{}", r.message());
    assert!(r.headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("www-authenticate") && v.starts_with("Basic")));
    assert_eq!(post(basic("nobody-here", "wrong")).status, 401, "a wrong name is refused the same way");
    // Two failures from this address: even the right password waits now.
    let r = post(basic("vera", "right-pass"));
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    // The same limit holds for SASL on IRC: it is one budget.
    let log = server.wait_for_log(|t| t.matches("http_auth_failed").count() >= 3, TIMEOUT);
    assert!(log.contains("nobody-here"), "the name tried is logged");
    assert!(!log.contains("right-pass") && !log.contains("wrong\n"), "passwords are never logged");
}

#[test]
fn malformed_basic_credentials_get_400() {
    let server = Server::start();
    let r = request(http(&server), "POST", "/files", &[("Authorization", "Basic !!!".into())], Some(b"x"));
    assert_eq!(r.status, 400);
    assert!(r.message().contains("name:password"), "{}", r.message());
}

#[test]
fn a_share_link_needs_no_login_and_stops_when_revoked() {
    let server = Server::start();
    server.add_account("uma", "uploader-pass");
    server.add_account("otto", "other-pass");
    let up = |auth| {
        let cd = ("Content-Disposition", "attachment; filename=\"plan.txt\"".into());
        request(http(&server), "POST", "/files", &[auth, cd], Some(b"the plan"))
    };
    let r = up(basic("uma", "uploader-pass"));
    assert_eq!(r.status, 201, "{}", r.text());
    let link = r.header("location").unwrap().to_string();
    assert_eq!(r.json()["share_url"], link);
    let got = request(http(&server), "GET", path_of(&link), &[], None);
    assert_eq!(got.status, 200);
    assert_eq!(got.body, b"the plan");
    assert_eq!(got.header("content-security-policy"), Some("sandbox"));
    assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
    // The file by name still needs a login.
    assert_eq!(request(http(&server), "GET", "/files/plan.txt", &[], None).status, 401);
    // Someone else may not revoke it.
    let no = request(http(&server), "DELETE", "/files/plan.txt/share", &[basic("otto", "other-pass")], None);
    assert_eq!(no.status, 403, "{}", no.text());
    assert_eq!(request(http(&server), "GET", path_of(&link), &[], None).status, 200);
    // The uploader may.
    let yes = request(http(&server), "DELETE", "/files/plan.txt/share", &[basic("uma", "uploader-pass")], None);
    assert_eq!(yes.status, 204, "{}", yes.text());
    let gone = request(http(&server), "GET", path_of(&link), &[], None);
    assert_eq!(gone.status, 404);
    assert!(gone.message().contains("revoked"), "{}", gone.message());
    // A new link works; an operator may revoke it too.
    let again = request(http(&server), "POST", "/files/plan.txt/share", &[basic("uma", "uploader-pass")], None);
    assert_eq!(again.status, 201, "{}", again.text());
    let link2 = again.json()["share_url"].as_str().unwrap().to_string();
    assert_ne!(link, link2);
    assert_eq!(request(http(&server), "GET", path_of(&link2), &[], None).body, b"the plan");
    let op = request(http(&server), "DELETE", "/files/plan.txt/share", &[basic(ADMIN_NAME, ADMIN_PASSWORD)], None);
    assert_eq!(op.status, 204);
    assert_eq!(request(http(&server), "GET", path_of(&link2), &[], None).status, 404);
    // A guessed or mangled secret is just unknown.
    let mangled = link2.replacen("/s/", "/s/x", 1);
    assert_eq!(request(http(&server), "GET", path_of(&mangled), &[], None).status, 404);
}

#[test]
fn share_links_with_an_expiry_say_when_it_is() {
    let server = Server::start_with("[files]\nshare_link_ttl_secs = 3600\n");
    server.add_account("eve", "expiring-pass");
    let cd = ("Content-Disposition", "attachment; filename=\"soon.txt\"".into());
    let r = request(http(&server), "POST", "/files", &[basic("eve", "expiring-pass"), cd], Some(b"soon"));
    assert_eq!(r.status, 201, "{}", r.text());
    let expires = r.json()["share_expires"].as_str().expect("an expiry time").to_string();
    // RFC 3339 in UTC compares as text.
    let at = |secs: i64| {
        (time::OffsetDateTime::now_utc() + time::Duration::seconds(secs))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    assert!(at(3500) < expires && expires <= at(3601), "{expires}");
}

#[test]
fn curl_remote_header_name_saves_under_the_uploaded_name() {
    let server = Server::start();
    server.add_account("cora", "curl-pass");
    let cd = ("Content-Disposition", "attachment; filename=\"meeting notes.md\"".into());
    let r = request(http(&server), "POST", "/files", &[basic("cora", "curl-pass"), cd], Some(b"# notes\n"));
    assert_eq!(r.status, 201, "{}", r.text());
    let link = r.header("location").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("curl")
        .args(["-sS", "--fail", "-O", "-J", link])
        .current_dir(dir.path())
        .output()
        .expect("curl is installed (tools/test.sh installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(dir.path().join("meeting notes.md")).unwrap(), b"# notes\n");
}

#[test]
fn a_browser_gets_an_html_list_with_basic_or_a_token() {
    let server = Server::start();
    server.add_account("bea", "browser-pass");
    let cd = ("Content-Disposition", "attachment; filename=\"<b>bold&co.txt\"".into());
    let r = request(http(&server), "POST", "/files", &[basic("bea", "browser-pass"), cd], Some(b"12345"));
    assert_eq!(r.status, 201, "{}", r.text());
    let accept = ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8".to_string());
    // Without a login the browser is asked for one.
    let anon = request(http(&server), "GET", "/files", std::slice::from_ref(&accept), None);
    assert_eq!(anon.status, 401);
    let page = request(http(&server), "GET", "/files", &[accept.clone(), basic("bea", "browser-pass")], None);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let html = page.text();
    assert!(html.contains("<table>") && html.contains("<th scope=\"col\">Uploaded by</th>"), "{html}");
    assert!(html.contains("&lt;b&gt;bold&amp;co.txt") && !html.contains("<b>bold"), "{html}");
    assert!(html.contains("5 bytes") && html.contains(">bea<"), "{html}");
    let mut irc = Client::registered(server.irc_addr(), "tok");
    let page = request(http(&server), "GET", "/files", &[accept, bearer(&mut irc)], None);
    assert!(page.text().contains("bold"), "the token works too");
    // Programs still get JSON by default.
    let json = request(http(&server), "GET", "/files", &[basic("bea", "browser-pass")], None).json();
    assert_eq!(json[0]["size"], 5);
}

#[test]
fn user_html_is_never_rendered_and_only_safe_types_are_inline() {
    let server = Server::start();
    server.add_account("mal", "mallory-pass");
    let up = |name: &str, ty: &str, body: &[u8]| {
        let cd = ("Content-Disposition", format!("attachment; filename=\"{name}\""));
        let r = request(
            http(&server),
            "POST",
            "/files",
            &[basic("mal", "mallory-pass"), cd, ("Content-Type", ty.to_string())],
            Some(body),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        fetch_location(&server, &r)
    };
    let page = up("x.html", "text/html", b"<script>alert(1)</script>");
    assert_eq!(page.header("content-type"), Some("application/octet-stream"));
    assert!(page.header("content-disposition").unwrap().starts_with("attachment;"));
    assert_eq!(page.header("content-security-policy"), Some("sandbox"));
    let svg = up("x.svg", "image/svg+xml", b"<svg onload=alert(1)/>");
    assert_eq!(svg.header("content-type"), Some("application/octet-stream"));
    let text = up("readme.txt", "text/plain", b"hello");
    assert_eq!(text.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(text.header("content-disposition").unwrap().starts_with("inline;"));
    assert_eq!(sha256_hex(&text.body), sha256_hex(b"hello"));
}
