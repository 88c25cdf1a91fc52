//! Stable-toolchain fuzzing (proptest) of everything the file store parses
//! from the network: names, digest/range/disposition headers, and whole
//! requests with hostile paths and headers sent through the real router.
//! CI runs these for a fixed number of cases on every build; the
//! `fuzz/` directory holds the same targets for cargo-fuzz on nightly.

use super::headers::{disposition_filename, parse_digest, parse_range, RangeReq};
use super::names::validate;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn accepted_names_are_single_safe_segments(name in "\\PC{0,40}|[./\\\\a-z%\u{202E}\u{2215} ]{0,12}") {
        if validate(&name, 200).is_ok() {
            prop_assert!(!name.contains('/') && !name.contains('\\'));
            prop_assert!(name != "." && name != "..");
            prop_assert!(!name.chars().any(char::is_control));
        }
    }

    #[test]
    fn ranges_stay_inside_the_file(header in "(bytes=)?[0-9-, ]{0,20}", size in 0u64..1_000_000) {
        if let RangeReq::Part(a, b) = parse_range(&header, size) {
            prop_assert!(a <= b && b < size);
        }
    }

    #[test]
    fn header_parsers_never_panic(value in "\\PC{0,80}") {
        let _ = parse_digest(&value);
        let _ = disposition_filename(&value);
        let _ = parse_range(&value, 100);
    }
}

mod requests {
    use super::super::{router, storage::Store, FileState, Peer};
    use crate::config::Config;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use proptest::prelude::*;
    use std::sync::Arc;
    use tower::ServiceExt;

    /// One server state for every case: building it hashes passwords.
    fn shared() -> &'static (tempfile::TempDir, Arc<FileState>, tokio::runtime::Runtime) {
        static SHARED: std::sync::OnceLock<(tempfile::TempDir, Arc<FileState>, tokio::runtime::Runtime)> =
            std::sync::OnceLock::new();
        SHARED.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let st = state(dir.path());
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            (dir, st, rt)
        })
    }

    fn state(dir: &std::path::Path) -> Arc<FileState> {
        let config = Config { data_dir: dir.to_path_buf(), ..Default::default() };
        let server = Arc::new(crate::commands::testing::server_state(config, dir));
        let store = Arc::new(Store::open(&dir.join("files")).unwrap());
        Arc::new(FileState {
            config: server.config.clone(),
            log: server.log.clone(),
            tokens: server.tokens.clone(),
            accounts: server.accounts.clone(),
            failures: server.operators.failures().clone(),
            chat: server,
            store,
            uploads: Default::default(),
            transfers: Arc::new(tokio::sync::Semaphore::new(4)),
            base_url: "http://test/files".into(),
            socket: None,
        })
    }

    /// Files named like the fixed path segments (`s`, `uploads`) are
    /// still reachable: the router falls back from a static segment to a
    /// parameter (a `401` means the file's own handler asked for a login).
    /// Only `/files/uploads/share` is ambiguous, which is why `uploads` is
    /// a reserved name (`names::check`).
    #[test]
    fn files_named_like_route_segments_reach_their_handlers() {
        let (_, st, rt) = shared();
        for (method, path) in [("GET", "/files/s"), ("PUT", "/files/s"), ("POST", "/files/s/share")] {
            let status = rt.block_on(async {
                let mut req = Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
                req.extensions_mut().insert(Peer("127.0.0.1:1".parse().unwrap()));
                router(st.clone()).oneshot(req).await.unwrap().status()
            });
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        /// Whatever the path, method and headers, the store answers with a
        /// deliberate status: never a panic, never a 5xx, never a file.
        #[test]
        fn hostile_requests_get_deliberate_answers(
            path in "/(files/?)?((uploads|s)/)?([a-zA-Z0-9%./\\\\~-]{0,30})",
            method in prop::sample::select(vec!["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"]),
            auth in prop::option::of("Bearer [A-Za-z0-9._-]{0,60}"),
            range in prop::option::of("bytes=[0-9,-]{0,12}"),
            resume in prop::option::of(("\\?[01x]", "-?[0-9]{0,20}", "[0-9a-z]{0,5}")),
        ) {
            let (_, st, rt) = shared();
            let status = rt.block_on(async {
                let mut req = Request::builder().method(method).uri(&path);
                if let Some(a) = &auth {
                    req = req.header("authorization", a);
                }
                if let Some(r) = &range {
                    req = req.header("range", r);
                }
                if let Some((complete, offset, length)) = &resume {
                    req = req
                        .header("upload-complete", complete)
                        .header("upload-offset", offset)
                        .header("upload-length", length)
                        .header("content-type", "application/partial-upload");
                }
                let Ok(mut req) = req.body(Body::from("x")) else { return StatusCode::BAD_REQUEST };
                req.extensions_mut().insert(Peer("127.0.0.1:1".parse().unwrap()));
                router(st.clone()).oneshot(req).await.unwrap().status()
            });
            prop_assert!(!status.is_server_error(), "{method} {path} gave {status}");
            // The web client's own files are public (`web_client`).
            let client = path == "/" || path == "/favicon.ico" || path.starts_with("/assets/");
            prop_assert!(status != StatusCode::OK || path.trim_end_matches('/') == "/files" || method == "OPTIONS" || client,
                "{method} {path} answered 200 without a token");
            // Nothing was stored or started by an unauthenticated request.
            prop_assert!(st.store.list().is_empty());
            prop_assert!(st.uploads.is_empty());
        }
    }
}

/// A model of one resumable upload driven by random appends, some from the
/// wrong offset, past the length, by someone else or with a wrong
/// completion: after every request the server's offset is the model's, a
/// refused request changed nothing, and the file appears (with exactly the
/// intended bytes) only when the last byte is in.
mod resumable_model {
    use super::super::storage::Store;
    use super::super::{router, Chat, FileState, Holder, Peer};
    use crate::config::Config;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use proptest::prelude::*;
    use std::sync::Arc;
    use tower::ServiceExt;

    /// Every session id is a live user `user<sid>`.
    struct EveryoneOnline;

    impl Chat for EveryoneOnline {
        fn holder(&self, sid: u64) -> Option<Holder> {
            Some(Holder { nick: format!("user{sid}"), account: None, oper: false })
        }
        fn announce(&self, _text: &str) {}
        fn export_history(&self, _account: &str) -> Option<Result<Vec<u8>, String>> {
            None
        }
    }

    fn state(dir: &std::path::Path) -> Arc<FileState> {
        let config = Config { data_dir: dir.to_path_buf(), ..Default::default() };
        let tokens = crate::tokens::Tokens::load_or_create(&dir.join("jwt.key"), "test", 600).unwrap();
        let server = crate::commands::testing::server_state(config.clone(), dir);
        Arc::new(FileState {
            config: Arc::new(crate::live::Live::new(config)),
            log: server.log.clone(),
            tokens: Arc::new(tokens),
            accounts: server.accounts.clone(),
            failures: server.operators.failures().clone(),
            chat: Arc::new(EveryoneOnline),
            store: Arc::new(Store::open(&dir.join("files")).unwrap()),
            uploads: Default::default(),
            transfers: Arc::new(tokio::sync::Semaphore::new(4)),
            base_url: "http://test/files".into(),
            socket: None,
        })
    }

    #[derive(Debug, Clone)]
    struct Append {
        /// Added to the right offset (0 most of the time).
        skew: i64,
        len: usize,
        complete: bool,
        by_owner: bool,
    }

    fn append() -> impl Strategy<Value = Append> {
        (prop_oneof![6 => Just(0i64), 1 => -5i64..5], 0usize..400, prop::bool::weighted(0.2), prop::bool::weighted(0.9))
            .prop_map(|(skew, len, complete, by_owner)| Append { skew, len, complete, by_owner })
    }

    async fn send(st: &Arc<FileState>, req: axum::http::request::Builder, body: Vec<u8>) -> axum::response::Response {
        let mut req = req.header("content-length", body.len()).body(Body::from(body)).unwrap();
        req.extensions_mut().insert(Peer("127.0.0.1:1".parse().unwrap()));
        router(st.clone()).oneshot(req).await.unwrap()
    }

    fn header(resp: &axum::response::Response, name: &str) -> Option<String> {
        resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn appends_follow_the_model(length in 0usize..1200, steps in prop::collection::vec(append(), 1..25)) {
            let dir = tempfile::tempdir().unwrap();
            let st = state(dir.path());
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let data: Vec<u8> = (0..length).map(|i| (i * 31 % 251) as u8).collect();
            let owner = format!("Bearer {}", st.tokens.issue("user1", 1, crate::files::auth::now()));
            let other = format!("Bearer {}", st.tokens.issue("user2", 2, crate::files::auth::now()));
            rt.block_on(async {
                let create = Request::builder()
                    .method("POST")
                    .uri("/files")
                    .header("authorization", &owner)
                    .header("upload-complete", "?0")
                    .header("upload-length", length)
                    .header("content-disposition", "attachment; filename=model.bin");
                let resp = send(&st, create, Vec::new()).await;
                prop_assert_eq!(resp.status(), StatusCode::CREATED);
                let url = header(&resp, "location").unwrap();
                let path = url.strip_prefix("http://test").unwrap().to_string();
                let mut model = 0usize;
                let mut done = false;
                for step in steps {
                    if done {
                        break;
                    }
                    let at = (model as i64 + step.skew).max(0) as usize;
                    let body: Vec<u8> = (at..at + step.len).map(|i| data.get(i).copied().unwrap_or(7)).collect();
                    let req = Request::builder()
                        .method("PATCH")
                        .uri(&path)
                        .header("authorization", if step.by_owner { &owner } else { &other })
                        .header("content-type", "application/partial-upload")
                        .header("upload-offset", at)
                        .header("upload-complete", if step.complete { "?1" } else { "?0" });
                    let resp = send(&st, req, body).await;
                    let status = resp.status();
                    prop_assert!(!status.is_server_error(), "{:?} gave {}", step, status);
                    let end = at + step.len;
                    let expected = if !step.by_owner {
                        StatusCode::FORBIDDEN
                    } else if at != model {
                        StatusCode::CONFLICT
                    } else if end > length || (step.complete && end != length) {
                        StatusCode::BAD_REQUEST
                    } else if step.complete {
                        StatusCode::CREATED
                    } else {
                        StatusCode::NO_CONTENT
                    };
                    prop_assert_eq!(status, expected, "{:?} at model offset {}", step, model);
                    if status == StatusCode::CONFLICT {
                        prop_assert_eq!(header(&resp, "upload-offset"), Some(model.to_string()));
                    }
                    if status.is_success() {
                        model = end;
                        done = step.complete;
                    }
                    if !done {
                        let head = Request::builder().method("HEAD").uri(&path).header("authorization", &owner);
                        let resp = send(&st, head, Vec::new()).await;
                        prop_assert_eq!(header(&resp, "upload-offset"), Some(model.to_string()));
                        prop_assert!(st.store.list().is_empty(), "nothing is visible before the end");
                    }
                }
                if done {
                    let entry = st.store.get("model.bin").expect("the completed upload is stored");
                    let stored = std::fs::read(st.store.blob_path(&entry.sha256)).unwrap();
                    prop_assert!(stored == data, "the stored bytes are the intended ones");
                    prop_assert!(st.uploads.is_empty());
                } else {
                    prop_assert!(st.store.list().is_empty());
                    prop_assert_eq!(st.uploads.staged_bytes(), model as u64);
                }
                Ok(())
            })?;
        }
    }
}
