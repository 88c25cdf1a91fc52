//! What only the server's integration tests need: a raw HTTP client for the
//! file store ([`http`]). The rest of the harness — the `parleyd` process,
//! the IRC test client, the activity log's format — is `parley-testkit`,
//! shared with the client's tests.

pub mod http;
