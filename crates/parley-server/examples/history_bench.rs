//! The history benchmark (`bench/history.sh` runs it; results in
//! docs/BENCHMARKS.md):
//!
//! - `populate DIR N`: records N messages through the real queue and writer
//!   as fast as one thread can, and reports the queueing cost per message,
//!   the rate persisted (until the last is committed) and the database size;
//! - `query DIR`: CHATHISTORY-shaped pages and searches on the stored
//!   messages, through the same functions the server uses (no sockets);
//! - `irc ADDR`: the same requests over IRC to a running parleyd that was
//!   started on DIR, timing each round trip.
//!
//! Messages go to 50 channels, half of them to `#c0`; texts are 6 to 12
//! words from a 5,000-word vocabulary with a skewed (Zipf-like) use.
//!
//! With `PARLEY_BENCH_DATABASE_URL` set, the store is that PostgreSQL
//! database (which should be empty) instead of `DIR/parley.db`.

use parley_server::config::{DatabaseConfig, HistoryConfig};
use parley_server::db::{Conn, Db};
use parley_server::history::query::{self, Reference, Scope, Selector};
use parley_server::history::search::{self, Readable, Search};
use parley_server::history::{Entry, History, Kind, Parts};
use rand::{Rng, SeedableRng};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::{Duration, Instant};

const CHANNELS: usize = 50;
const WORDS: usize = 5_000;
const BASE_MS: i64 = 1_767_225_600_000; // 2026-01-01

fn word(rng: &mut impl Rng) -> String {
    let u: f64 = rng.gen();
    format!("w{}", (u.powi(3) * WORDS as f64) as usize)
}

fn channel_of(rng: &mut impl Rng) -> usize {
    if rng.gen_bool(0.5) {
        0
    } else {
        rng.gen_range(1..CHANNELS)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("populate") => populate(Path::new(&args[1]), args[2].parse().expect("N")),
        Some("query") => query_direct(Path::new(&args[1])),
        Some("irc") => over_irc(&args[1], args.get(2).map_or(1000, |n| n.parse().expect("iterations"))),
        _ => eprintln!("usage: history_bench populate DIR N | query DIR | irc ADDR [ITERATIONS]"),
    }
}

/// The store: `PARLEY_BENCH_DATABASE_URL`'s PostgreSQL, else SQLite in `dir`.
fn open_db(dir: &Path) -> Db {
    let url = std::env::var("PARLEY_BENCH_DATABASE_URL").ok().filter(|u| !u.is_empty());
    Db::open_configured(dir, &DatabaseConfig { url, ..DatabaseConfig::default() }).unwrap()
}

fn populate(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let db = open_db(dir);
    let config = HistoryConfig { queue_entries: n + 1, ..Default::default() };
    let (history, writer) = History::open(&db, &config, "#lobby", "").unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(18);
    // The texts first, so only recording is timed.
    let lines: Vec<(usize, usize, String)> = (0..n)
        .map(|_| {
            let words = rng.gen_range(6..=12);
            let text = (0..words).map(|_| word(&mut rng)).collect::<Vec<_>>().join(" ");
            (channel_of(&mut rng), rng.gen_range(0..1000), text)
        })
        .collect();
    let senders: Vec<String> = (0..1000).map(|u| format!("user{u}!~user{u}@127.0.0.1")).collect();
    let accounts: Vec<String> = (0..1000).map(|u| format!("user{u}")).collect();
    let targets: Vec<String> = (0..CHANNELS).map(|c| format!("#c{c}")).collect();
    let start = Instant::now();
    for (i, (c, u, text)) in lines.iter().enumerate() {
        let msgid = format!("bench-{i:x}");
        let parts = Parts {
            target: &targets[*c],
            msgid: &msgid,
            sender: &senders[*u],
            account: (u % 2 == 0).then_some(accounts[*u].as_str()),
            shown: &targets[*c],
            tags: "",
            text,
        };
        history.record(Entry::new(BASE_MS + i as i64, Kind::Privmsg, &parts));
    }
    let queued = start.elapsed();
    while !history.flush() {}
    let persisted = start.elapsed();
    writer.stop();
    let (dropped, failed) = history.losses();
    drop(history);
    let (bytes, stored) = match db.get().unwrap().conn() {
        Conn::Sqlite(_) => {
            let conn = rusqlite::Connection::open(dir.join("parley.db")).unwrap();
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
            let bytes = std::fs::metadata(dir.join("parley.db")).unwrap().len();
            let stored: i64 = conn.query_row("SELECT count(*) FROM history", [], |r| r.get(0)).unwrap();
            (bytes, stored)
        }
        Conn::Postgres(c) => {
            let row = c
                .query_one("SELECT pg_total_relation_size('history')::bigint, (SELECT count(*) FROM history)", &[])
                .unwrap();
            (row.get::<_, i64>(0) as u64, row.get(1))
        }
    };
    println!("messages           {n} (stored {stored}, dropped {dropped}, failed {failed})");
    println!("queueing           {:.0} ns per message on the sending thread", queued.as_nanos() as f64 / n as f64);
    println!("persisted          {:.0} messages/s (until the last was committed)", n as f64 / persisted.as_secs_f64());
    println!(
        "database           {:.1} MiB, {:.0} bytes per message, {:.0} MiB per million",
        bytes as f64 / 1048576.0,
        bytes as f64 / n as f64,
        bytes as f64 / n as f64 * 1e6 / 1048576.0
    );
}

fn percentiles(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "{name:<40} p50 {:>8.3} ms   p99 {:>8.3} ms   max {:>8.3} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        times.last().unwrap().as_secs_f64() * 1e3
    );
}

fn query_direct(dir: &Path) {
    let db = open_db(dir);
    let (history, _writer) = History::open(&db, &HistoryConfig::default(), "#lobby", "").unwrap();
    let mut lease = history.reader().unwrap();
    let total: i64 = match lease.conn() {
        Conn::Sqlite(c) => c.query_row("SELECT count(*) FROM history", [], |r| r.get(0)).unwrap(),
        Conn::Postgres(c) => c.query_one("SELECT count(*) FROM history", &[]).unwrap().get(0),
    };
    println!("stored messages    {total}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let runs = 2000;
    let mut time = |name: &str, f: &mut dyn FnMut(&mut rand::rngs::StdRng) -> usize| {
        let mut times = Vec::with_capacity(runs);
        let mut rows = 0;
        for _ in 0..runs {
            let t = Instant::now();
            rows += f(&mut rng);
            times.push(t.elapsed());
        }
        percentiles(&format!("{name} ({} rows avg)", rows / runs), times);
    };
    let scope = |target: &'static str| Scope { target, until: i64::MAX, events: false };
    time("LATEST #c0 * 100", &mut |_| {
        query::select(lease.conn(), &scope("#c0"), &Selector::Latest(None), 100).unwrap().len()
    });
    time("LATEST #c7 * 100", &mut |_| {
        query::select(lease.conn(), &scope("#c7"), &Selector::Latest(None), 100).unwrap().len()
    });
    time("BEFORE #c0 msgid=<random> 100", &mut |rng| {
        let i: i64 = rng.gen_range(0..total);
        let r = Reference::Msgid(format!("bench-{i:x}"));
        query::select(lease.conn(), &scope("#c0"), &Selector::Before(r), 100).unwrap().len()
    });
    time("AFTER #c0 timestamp=<random> 100", &mut |rng| {
        let r = Reference::Time(BASE_MS + rng.gen_range(0..total));
        query::select(lease.conn(), &scope("#c0"), &Selector::After(r), 100).unwrap().len()
    });
    let all: Vec<Readable> = (0..CHANNELS).map(|c| Readable { key: format!("#c{c}"), until: i64::MAX }).collect();
    let one = [Readable { key: "#c0".into(), until: i64::MAX }];
    let mut find = |targets: &[Readable], text: &str| {
        let s = Search { text: Some(text), from: None, after: None, before: None, limit: 100 };
        search::search(lease.conn(), targets, &s).unwrap().len()
    };
    time("SEARCH text=<common word> in=#c0", &mut |rng| find(&one, &format!("w{}", rng.gen_range(0..10))));
    time("SEARCH text=<any word> in=#c0", &mut |rng| find(&one, &word(rng)));
    time("SEARCH text=<any word> (50 channels)", &mut |rng| find(&all, &word(rng)));
    time("SEARCH text=<two words> (50 channels)", &mut |rng| find(&all, &format!("{} {}", word(rng), word(rng))));
}

/// A line-based IRC client: registered, in `#c0`, with the history caps.
struct Irc {
    read: BufReader<std::net::TcpStream>,
    write: std::net::TcpStream,
}

impl Irc {
    fn send(&mut self, line: &str) {
        self.write.write_all(format!("{line}\r\n").as_bytes()).unwrap();
    }

    /// Reads lines until one containing `needle`; returns how many PRIVMSGs came.
    fn until(&mut self, needle: &str) -> usize {
        let mut privmsgs = 0;
        let mut line = String::new();
        loop {
            line.clear();
            assert!(self.read.read_line(&mut line).unwrap() > 0, "closed");
            if line.starts_with("PING") {
                let token = line.trim_end().trim_start_matches("PING ").to_string();
                self.send(&format!("PONG {token}"));
            }
            if line.contains(" PRIVMSG ") {
                privmsgs += 1;
            }
            if line.contains(needle) {
                return privmsgs;
            }
        }
    }
}

fn over_irc(addr: &str, iterations: usize) {
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut irc = Irc { read: BufReader::new(stream.try_clone().unwrap()), write: stream };
    irc.send("CAP LS 302");
    irc.send("NICK benchreader");
    irc.send("USER b 0 * :b");
    irc.send("CAP REQ :batch draft/chathistory server-time message-tags soju.im/search");
    irc.send("CAP END");
    irc.until(" 001 ");
    irc.send("JOIN #c0");
    irc.until(" 366 ");
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut time = |irc: &mut Irc, name: &str, make: &mut dyn FnMut(&mut rand::rngs::StdRng) -> String| {
        let mut times = Vec::with_capacity(iterations);
        let mut rows = 0;
        for _ in 0..iterations {
            let line = make(&mut rng);
            let t = Instant::now();
            irc.send(&line);
            rows += irc.until("BATCH -");
            times.push(t.elapsed());
        }
        percentiles(&format!("{name} ({} rows avg)", rows / iterations), times);
    };
    time(&mut irc, "IRC CHATHISTORY LATEST #c0 * 100", &mut |_| "CHATHISTORY LATEST #c0 * 100".into());
    time(&mut irc, "IRC CHATHISTORY BEFORE #c0 timestamp= 100", &mut |rng| {
        let at = BASE_MS + rng.gen_range(0..1_000_000);
        let tag = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1_000_000).unwrap();
        let text = tag.format(&time::format_description::well_known::Rfc3339).unwrap();
        format!("CHATHISTORY BEFORE #c0 timestamp={text} 100")
    });
    time(&mut irc, "IRC SEARCH text=<any word>;in=#c0;limit=100", &mut |rng| {
        format!("SEARCH text={};in=#c0;limit=100", word(rng))
    });
}
