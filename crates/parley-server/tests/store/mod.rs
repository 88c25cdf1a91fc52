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

/// A TCP relay between a node and PostgreSQL that a test can cut (every
/// connection closed, new ones closed at once) and mend: the database
/// lost and back, without stopping the one the other tests share.
pub struct Relay {
    pub addr: std::net::SocketAddr,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Relay {
    pub fn to(upstream: std::net::SocketAddr) -> Relay {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let relay = Relay { addr: listener.local_addr().unwrap(), cut: Default::default(), open: Default::default() };
        let (cut, open) = (relay.cut.clone(), relay.open.clone());
        // Ends with the test process (the listener blocks in accept).
        std::thread::spawn(move || {
            for down in listener.incoming().flatten() {
                if cut.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let Ok(up) = std::net::TcpStream::connect(upstream) else { continue };
                let pipe = |mut from: std::net::TcpStream, mut to: std::net::TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                };
                open.lock().unwrap().extend([down.try_clone().unwrap(), up.try_clone().unwrap()]);
                pipe(down.try_clone().unwrap(), up.try_clone().unwrap());
                pipe(up, down);
            }
        });
        relay
    }

    /// `url` (the test database's, with its schema) through this relay.
    pub fn url_for(&self, url: &str) -> String {
        url.replacen(&postgres_addr().to_string(), &self.addr.to_string(), 1)
    }

    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for conn in self.open.lock().unwrap().drain(..) {
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
    }

    pub fn mend(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}
