//! A PostgreSQL store for a test: when `PARLEY_TEST_POSTGRES_URL` is set
//! (tools/postgres/start.sh sets it), a schema of its own in that database,
//! so tests running at once never see each other's rows, given to parleyd
//! as its search path in the URL. Each test binary uses some of this,
//! hence `dead_code`.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

/// The variable naming the test database.
pub const URL_ENV: &str = "PARLEY_TEST_POSTGRES_URL";

/// A `[database]` section for a new, empty schema, or a panic saying how
/// to run PostgreSQL tests.
pub fn fresh_database_toml() -> String {
    format!("[database]\nurl = \"{}\"\n", fresh_url())
}

/// A database URL whose search path is a new, empty schema.
pub fn fresh_url() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = std::env::var(URL_ENV)
        .unwrap_or_else(|_| panic!("{URL_ENV} is not set: run these tests with tools/postgres/start.sh"));
    let schema = format!("t{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let mut client = postgres::Client::connect(&base, postgres::NoTls).expect("connecting to the test PostgreSQL");
    client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")).unwrap();
    let joiner = if base.contains('?') { '&' } else { '?' };
    format!("{base}{joiner}options=-csearch_path%3D{schema}")
}

/// The host and port of the test PostgreSQL (from its URL).
pub fn postgres_addr() -> std::net::SocketAddr {
    let url = std::env::var(URL_ENV).expect(URL_ENV);
    let config: postgres::Config = url.parse().expect("a PostgreSQL URL");
    let host = match &config.get_hosts()[0] {
        postgres::config::Host::Tcp(h) => h.clone(),
        #[allow(unreachable_patterns)]
        _ => panic!("{URL_ENV} must name a TCP host"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}").parse().expect("a loopback address")
}

/// The test database's `url` (with its schema) through `relay`: the
/// database lost and back, without stopping the one the other tests share.
pub fn through(relay: &crate::relay::Relay, url: &str) -> String {
    url.replacen(&postgres_addr().to_string(), &relay.addr.to_string(), 1)
}
