//! `ircload`: an IRC load generator for comparing IRC servers on one
//! machine. It speaks plain IRC to any server on loopback, runs one
//! scenario per invocation (busy channel fan-out, idle users, crowded lobby,
//! connection storm, private-message ping-pong), and prints a readable table
//! on stderr and one JSON object on stdout (also appended to `--out`).
//!
//! It also carries the helpers the comparison needs: `sink`, a trivial
//! IRC-ish server that shows how much the generator can drive; `dns`, a
//! local resolver that answers every query at once with NXDOMAIN (for
//! servers that insist on reverse lookups); `table`, which turns a run's
//! JSON lines into the comparison table; and `smoke`, a few-second check
//! of every scenario for CI.

mod dns;
mod fanout;
mod histogram;
mod idle;
mod irc;
mod lobby;
mod natsping;
mod pingpong;
mod procstat;
mod sink;
mod smoke;
mod storm;
mod sys;
mod table;
mod ws;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "ircload", version, about = "IRC load generator and benchmark helpers")]
struct Cli {
    /// Worker threads for the generator (1 = a single-threaded runtime,
    /// 0 = one per core).
    #[arg(long, global = true, default_value_t = 0)]
    threads: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Busy channel: M members, S of them sending; throughput, latency, loss.
    Fanout(fanout::Args),
    /// N registered idle users spread over channels; server memory per user.
    Idle(idle::Args),
    /// N users all in one lobby channel, then one message to all of them.
    Lobby(lobby::Args),
    /// Registrations per second (connect, 001, JOIN) with K in flight.
    Storm(storm::Args),
    /// Private-message round trips between two idle clients.
    Pingpong(pingpong::Args),
    /// Round trips between two NATS clients: the floor under a Parley
    /// cluster's cross-node round trip.
    Natsping(natsping::Args),
    /// Every scenario at a small size, in a few seconds; exits non-zero on failure.
    Smoke(smoke::Args),
    /// A trivial IRC-ish server, to show what the generator can drive.
    Sink(sink::Args),
    /// A loopback DNS responder that answers NXDOMAIN to everything.
    Dns(dns::Args),
    /// Builds the comparison table from JSON lines written with --out.
    Table(table::Args),
}

/// The server under test and how results are labelled.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// IRC server address; must be a loopback address.
    #[arg(long, default_value = "127.0.0.1:6667")]
    pub server: SocketAddr,
    /// The server's name in reports (e.g. parleyd, ngircd).
    #[arg(long, default_value = "server")]
    pub label: String,
    /// PID of the server process, for its CPU seconds and memory.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Append the JSON result as one line to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Names this run's variant in reports (e.g. "max", "1thread").
    #[arg(long, default_value = "")]
    pub variant: String,
    /// Repetition number, for reports.
    #[arg(long, default_value_t = 1)]
    pub round: u32,
    /// Clients connecting and registering at once during setup.
    #[arg(long, default_value_t = 500)]
    pub connect_concurrency: usize,
    /// Spread client connections over 127.0.0.1 ..= 127.0.0.N.
    #[arg(long, default_value_t = 1)]
    pub source_ips: u8,
    /// Seconds one client may take to connect, register and join.
    #[arg(long, default_value_t = 60.0)]
    pub register_timeout: f64,
    /// How clients connect: plain IRC over TCP, or IRC over WebSocket
    /// (`ws://SERVER/socket`, text.ircv3.net; --server is then the HTTP
    /// listener).
    #[arg(long, value_enum, default_value_t = Transport::Tcp)]
    pub transport: Transport,
    /// More addresses of the same server (the other nodes of a Parley
    /// cluster): client i connects to the (i mod N)th of `--server` and
    /// these, so its clients are spread over the nodes.
    #[arg(long, value_delimiter = ',')]
    pub spread: Vec<SocketAddr>,
}

impl Target {
    /// The address client `which` connects to (see `--spread`).
    pub fn addr_for(&self, which: usize) -> SocketAddr {
        match which % (1 + self.spread.len()) {
            0 => self.server,
            i => self.spread[i - 1],
        }
    }
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Ws,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Ws => "ws",
        }
    }
}

/// What a scenario hands back: its parameters, results, and the rows of
/// the readable table.
pub struct Report {
    pub scenario: &'static str,
    pub params: serde_json::Value,
    pub results: serde_json::Value,
    pub rows: Vec<(String, String)>,
    /// False when the run broke a promise (loss, reordering, failures).
    pub ok: bool,
}

impl Report {
    fn emit(&self, target: &Target) -> anyhow::Result<()> {
        let doc = serde_json::json!({
            "scenario": self.scenario,
            "label": target.label,
            "variant": target.variant,
            "round": target.round,
            "transport": target.transport.name(),
            "threads": threads_used(),
            "ok": self.ok,
            "params": self.params,
            "results": self.results,
        });
        let title = format!(
            "{}{} {}{} (round {})",
            target.label,
            if target.transport == Transport::Ws { " over WebSocket" } else { "" },
            self.scenario,
            if target.variant.is_empty() { String::new() } else { format!(" [{}]", target.variant) },
            target.round
        );
        let width = self.rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut err = std::io::stderr().lock();
        writeln!(err, "== {title}")?;
        for (k, v) in &self.rows {
            writeln!(err, "  {k:<width$}  {v}")?;
        }
        if !self.ok {
            writeln!(err, "  ** FAILED: see above")?;
        }
        let line = serde_json::to_string(&doc)?;
        println!("{line}");
        if let Some(path) = &target.out {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("open {}", path.display()))?;
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

static THREADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn threads_used() -> usize {
    THREADS.load(std::sync::atomic::Ordering::Relaxed)
}

fn check_loopback(target: &Target) -> anyhow::Result<()> {
    for addr in std::iter::once(&target.server).chain(&target.spread) {
        if !addr.ip().is_loopback() {
            bail!("{addr} is not a loopback address: ircload only loads servers on this machine");
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The scenarios hold thousands of sockets. At worst a scenario reports
    // the clients that could not connect.
    let _ = sys::raise_nofile_limit();
    let threads =
        if cli.threads == 0 { std::thread::available_parallelism().map_or(2, |n| n.get()) } else { cli.threads };
    THREADS.store(threads, std::sync::atomic::Ordering::Relaxed);
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?
    };
    let ok = rt.block_on(async move {
        let (report, target) = match cli.command {
            Command::Fanout(a) => {
                check_loopback(&a.target)?;
                (fanout::run(&a).await?, a.target)
            }
            Command::Idle(a) => {
                check_loopback(&a.target)?;
                (idle::run(&a).await?, a.target)
            }
            Command::Lobby(a) => {
                check_loopback(&a.target)?;
                (lobby::run(&a).await?, a.target)
            }
            Command::Storm(a) => {
                check_loopback(&a.target)?;
                (storm::run(&a).await?, a.target)
            }
            Command::Pingpong(a) => {
                check_loopback(&a.target)?;
                // One report per server when several take turns.
                let mut ok = true;
                for (report, target) in pingpong::run_all(&a).await? {
                    report.emit(&target)?;
                    ok &= report.ok;
                }
                return anyhow::Ok(ok);
            }
            Command::Natsping(a) => (natsping::run(&a).await?, a.target),
            Command::Smoke(a) => {
                check_loopback(&a.target)?;
                return smoke::run(&a).await;
            }
            Command::Sink(a) => {
                sink::run(&a).await?;
                return Ok(true);
            }
            Command::Dns(a) => {
                dns::run(&a).await?;
                return Ok(true);
            }
            Command::Table(a) => {
                table::run(&a)?;
                return Ok(true);
            }
        };
        report.emit(&target)?;
        anyhow::Ok(report.ok)
    })?;
    // Thousands of sockets and tasks: skip the orderly teardown.
    std::process::exit(if ok { 0 } else { 1 });
}

/// Formats a count per second with thousands separators.
pub fn fmt_num(v: f64) -> String {
    let n = v.round() as i64;
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Formats an error-count map for the table.
pub fn fmt_errors(errors: &std::collections::BTreeMap<String, usize>) -> String {
    if errors.is_empty() {
        return "0".into();
    }
    errors.iter().map(|(k, v)| format!("{v}× {k}")).collect::<Vec<_>>().join("; ")
}
