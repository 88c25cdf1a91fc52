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
            config: Arc::new(server.config.clone()),
            log: server.log.clone(),
            tokens: server.tokens.clone(),
            accounts: server.accounts.clone(),
            failures: server.operators.failures().clone(),
            chat: server,
            store,
            transfers: Arc::new(tokio::sync::Semaphore::new(4)),
            base_url: "http://test/files".into(),
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        /// Whatever the path, method and headers, the store answers with a
        /// deliberate status: never a panic, never a 5xx, never a file.
        #[test]
        fn hostile_requests_get_deliberate_answers(
            path in "/(files/?)?([a-zA-Z0-9%./\\\\~-]{0,30})",
            method in prop::sample::select(vec!["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"]),
            auth in prop::option::of("Bearer [A-Za-z0-9._-]{0,60}"),
            range in prop::option::of("bytes=[0-9,-]{0,12}"),
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
                let Ok(mut req) = req.body(Body::from("x")) else { return StatusCode::BAD_REQUEST };
                req.extensions_mut().insert(Peer("127.0.0.1:1".parse().unwrap()));
                router(st.clone()).oneshot(req).await.unwrap().status()
            });
            prop_assert!(!status.is_server_error(), "{method} {path} gave {status}");
            prop_assert!(status != StatusCode::OK || path.trim_end_matches('/') == "/files" || method == "OPTIONS",
                "{method} {path} answered 200 without a token");
            // Nothing was stored by an unauthenticated request.
            prop_assert!(st.store.list().is_empty());
        }
    }
}
