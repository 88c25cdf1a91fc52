//! Scenario 5, private-message ping-pong: two registered clients and no
//! other load. A sends B a PRIVMSG carrying a sequence number, B sends the
//! same text back, A measures the round trip. One message in flight at a
//! time, so this is the server's per-message latency, not its throughput.
//!
//! With `--also`, several servers are measured in one run, taking turns of
//! `--turn` round trips each. The round trip is so short that the
//! machine's other load decides much of it and drifts within seconds;
//! turns of a few tens of milliseconds put every server under the same
//! drift, which separate runs (even alternating ones) cannot.

use crate::histogram::Exact;
use crate::irc::{pong_for, Conn, Line};
use crate::procstat::CpuMark;
use crate::{Report, Target};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Round trips measured (per server).
    #[arg(long, default_value_t = 20_000)]
    pub count: u64,
    /// Round trips before measuring (per server).
    #[arg(long, default_value_t = 1_000)]
    pub warmup: u64,
    #[arg(long, default_value = "p")]
    pub nick_prefix: String,
    /// Another server measured in the same run, taking turns with
    /// `--server`: LABEL=ADDR or LABEL=ADDR/PID (repeatable). ADDR may be
    /// several addresses joined by `+` (nodes of one cluster): client A
    /// then connects to the first and client B to the second.
    #[arg(long = "also", value_parser = parse_other)]
    pub others: Vec<Other>,
    /// Round trips per server per turn when there are several servers.
    #[arg(long, default_value_t = 100)]
    pub turn: u64,
}

/// A server given with `--also`.
#[derive(Debug, Clone)]
pub struct Other {
    pub label: String,
    pub server: SocketAddr,
    /// The cluster's other nodes, if ADDR named several.
    pub spread: Vec<SocketAddr>,
    pub pid: Option<u32>,
}

fn parse_other(s: &str) -> Result<Other, String> {
    let (label, rest) = s.split_once('=').ok_or("expected LABEL=ADDR or LABEL=ADDR/PID")?;
    let (addrs, pid) = match rest.split_once('/') {
        Some((a, p)) => (a, Some(p.parse::<u32>().map_err(|e| format!("PID {p:?}: {e}"))?)),
        None => (rest, None),
    };
    let mut servers = Vec::new();
    for addr in addrs.split('+') {
        let server: SocketAddr = addr.parse().map_err(|e| format!("address {addr:?}: {e}"))?;
        if !server.ip().is_loopback() {
            return Err(format!("{server} is not a loopback address"));
        }
        servers.push(server);
    }
    let server = servers.remove(0);
    Ok(Other { label: label.to_string(), server, spread: servers, pid })
}

/// B: sends every PRIVMSG from `peer` straight back.
async fn echo(mut b: Conn, peer: String) -> anyhow::Result<()> {
    let mut out = Vec::new();
    loop {
        if b.lines.fill(&mut b.stream).await? == 0 {
            return Ok(());
        }
        while let Some(raw) = b.lines.next_line() {
            let line = Line::parse(raw);
            match line.command {
                b"PRIVMSG" if line.source_nick().eq_ignore_ascii_case(peer.as_bytes()) => {
                    out.extend_from_slice(b"PRIVMSG ");
                    out.extend_from_slice(peer.as_bytes());
                    out.extend_from_slice(b" :");
                    out.extend_from_slice(line.trailing());
                    out.extend_from_slice(b"\r\n");
                }
                b"PING" => pong_for(&line, &mut out),
                _ => {}
            }
        }
        if !out.is_empty() {
            b.stream.write_all(&out).await?;
            out.clear();
        }
    }
}

/// One server's pair of clients and what was measured on it.
struct Pair {
    target: Target,
    a: Conn,
    b_nick: String,
    echo: JoinHandle<anyhow::Result<()>>,
    seq: u64,
    /// Every round trip (exact percentiles; see `histogram::Exact`).
    hist: Exact,
    errors: u64,
    /// Seconds spent in measured turns, and the CPU the server and this
    /// tool used during them.
    secs: f64,
    server_cpu: Option<f64>,
    tool_cpu: f64,
    /// Set after an error: the server takes no more turns.
    broken: bool,
}

impl Pair {
    async fn open(target: Target, prefix: &str) -> anyhow::Result<Pair> {
        let timeout = Duration::from_secs_f64(target.register_timeout);
        let ca = Conn::open(&target, 0, &format!("{prefix}a"), 8192, timeout)
            .await
            .map_err(|e| anyhow::anyhow!("{}: client A: {e}", target.label))?;
        let cb = Conn::open(&target, 1, &format!("{prefix}b"), 8192, timeout)
            .await
            .map_err(|e| anyhow::anyhow!("{}: client B: {e}", target.label))?;
        let b_nick = cb.nick.clone();
        let echo = tokio::spawn(echo(cb, ca.nick.clone()));
        let server_cpu = target.server_pid.map(|_| 0.0);
        Ok(Pair {
            target,
            a: ca,
            b_nick,
            echo,
            seq: 0,
            hist: Exact::default(),
            errors: 0,
            secs: 0.0,
            server_cpu,
            tool_cpu: 0.0,
            broken: false,
        })
    }

    /// One round trip; its time, or `None` after 10 s without the answer.
    async fn round_trip(&mut self, out: &mut Vec<u8>) -> anyhow::Result<Option<Duration>> {
        let seq = self.seq;
        self.seq += 1;
        let t = Instant::now();
        let text = format!("PRIVMSG {} :{seq} ping\r\n", self.b_nick);
        self.a.stream.write_all(text.as_bytes()).await?;
        let deadline = t + Duration::from_secs(10);
        let want = seq.to_string();
        loop {
            let mut got = false;
            while let Some(raw) = self.a.lines.next_line() {
                let line = Line::parse(raw);
                match line.command {
                    b"PRIVMSG" => {
                        let text = line.trailing();
                        if text.split(|&b| b == b' ').next() == Some(want.as_bytes()) {
                            got = true;
                        }
                    }
                    b"PING" => pong_for(&line, out),
                    _ => {}
                }
            }
            if !out.is_empty() {
                self.a.stream.write_all(out).await?;
                out.clear();
            }
            if got {
                return Ok(Some(t.elapsed()));
            }
            match tokio::time::timeout_at(deadline, self.a.lines.fill(&mut self.a.stream)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return Ok(None),
            }
        }
    }

    /// `n` round trips, recorded unless `warmup`.
    async fn turn(&mut self, n: u64, warmup: bool, out: &mut Vec<u8>) -> anyhow::Result<()> {
        let cpu0 = CpuMark::precise(self.target.server_pid);
        let started = Instant::now();
        for _ in 0..n {
            match self.round_trip(out).await? {
                Some(rtt) if !warmup => self.hist.record(rtt.as_nanos() as u64),
                Some(_) => {}
                None => {
                    self.errors += 1;
                    self.broken = true;
                    break;
                }
            }
        }
        if warmup {
            return Ok(());
        }
        self.secs += started.elapsed().as_secs_f64();
        let (server, tool) = CpuMark::precise(self.target.server_pid).since(&cpu0);
        self.tool_cpu += tool;
        if let (Some(total), Some(used)) = (self.server_cpu.as_mut(), server) {
            *total += used;
        }
        Ok(())
    }

    fn report(&mut self, a: &Args, labels: &[String]) -> Report {
        let mut hist = std::mem::take(&mut self.hist);
        let mut us = |q: f64| hist.quantile(q) as f64 / 1000.0;
        let (p50, p99, p999) = (us(0.5), us(0.99), us(0.999));
        // Each round trip is two messages through the server.
        let per_message_us = |cpu: f64| cpu * 1e6 / (2 * hist.count().max(1)) as f64;
        let ok = self.errors == 0 && hist.count() == a.count;
        let mut params = serde_json::json!({ "count": a.count, "warmup": a.warmup });
        if labels.len() > 1 {
            params["interleaved"] = serde_json::json!(labels);
            params["turn"] = serde_json::json!(a.turn);
        }
        let mut rows = vec![
            ("round trips".into(), format!("{} ({} errors)", hist.count(), self.errors)),
            (
                "round trip µs".into(),
                format!("p50 {p50:.1}  p99 {p99:.1}  p99.9 {p999:.1}  max {:.1}", hist.max() as f64 / 1000.0),
            ),
            (
                "CPU per message".into(),
                match self.server_cpu {
                    Some(c) => format!(
                        "server {:.1} µs, tool {:.1} µs ({c:.2} s and {:.2} s)",
                        per_message_us(c),
                        per_message_us(self.tool_cpu),
                        self.tool_cpu
                    ),
                    None => format!("tool {:.1} µs (server PID not given)", per_message_us(self.tool_cpu)),
                },
            ),
        ];
        if labels.len() > 1 {
            rows.push(("taking turns with".into(), format!("{} ({} round trips a turn)", labels.join(", "), a.turn)));
        }
        Report {
            scenario: "pingpong",
            params,
            results: serde_json::json!({
                "round_trips": hist.count(),
                "errors": self.errors,
                "rtt_p50_us": p50,
                "rtt_p99_us": p99,
                "rtt_p999_us": p999,
                "rtt_max_us": hist.max() as f64 / 1000.0,
                "rtt_mean_us": hist.mean() / 1000.0,
                "round_trips_per_s": hist.count() as f64 / self.secs.max(1e-9),
                "server_cpu_s": self.server_cpu,
                "tool_cpu_s": self.tool_cpu,
                "server_cpu_us_per_message": self.server_cpu.map(per_message_us),
            }),
            rows,
            ok,
        }
    }
}

/// The ping-pong against `--server` alone (what `smoke` uses).
pub async fn run(a: &Args) -> anyhow::Result<Report> {
    let mut reports = run_all(&Args { others: Vec::new(), ..a.clone() }).await?;
    Ok(reports.remove(0).0)
}

/// The ping-pong against `--server` and every `--also` server, in turns;
/// one report per server, with the target to label it by.
pub async fn run_all(a: &Args) -> anyhow::Result<Vec<(Report, Target)>> {
    let mut targets = vec![a.target.clone()];
    for o in &a.others {
        targets.push(Target {
            server: o.server,
            spread: o.spread.clone(),
            label: o.label.clone(),
            server_pid: o.pid,
            ..a.target.clone()
        });
    }
    let labels: Vec<String> = targets.iter().map(|t| t.label.clone()).collect();
    let mut pairs = Vec::new();
    for (i, t) in targets.into_iter().enumerate() {
        // Distinct nicks, in case two labels point at the same server.
        pairs.push(Pair::open(t, &format!("{}{i}", a.nick_prefix)).await?);
    }
    let mut out = Vec::new();
    for p in &mut pairs {
        p.turn(a.warmup, true, &mut out).await?;
    }
    // One server alone runs in a single turn; several take turns, in a new
    // order every cycle, so that no server always follows the same one
    // (whatever one server leaves behind in the caches or the scheduler
    // falls on all of them alike).
    let turn = if pairs.len() == 1 { a.count } else { a.turn.max(1) };
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut done = 0;
    while done < a.count {
        let n = turn.min(a.count - done);
        rng.shuffle(&mut order);
        for &i in &order {
            if !pairs[i].broken {
                pairs[i].turn(n, false, &mut out).await?;
            }
        }
        done += n;
    }
    Ok(pairs
        .into_iter()
        .map(|mut p| {
            p.echo.abort();
            (p.report(a, &labels), p.target)
        })
        .collect())
}

/// A tiny deterministic generator for the turn order (runs stay repeatable).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Fisher–Yates.
    fn shuffle(&mut self, v: &mut [usize]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_orders_vary_and_stay_permutations() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut v: Vec<usize> = (0..4).collect();
            rng.shuffle(&mut v);
            let mut sorted = v.clone();
            sorted.sort();
            assert_eq!(sorted, vec![0, 1, 2, 3]);
            seen.insert(v);
        }
        // All 24 orders of four servers come up.
        assert_eq!(seen.len(), 24);
    }

    #[test]
    fn other_servers_parse() {
        let o = parse_other("hybrid=127.0.0.1:16604/123").unwrap();
        assert_eq!((o.label.as_str(), o.server.port(), o.pid), ("hybrid", 16604, Some(123)));
        assert!(parse_other("x=127.0.0.1:1").unwrap().pid.is_none());
        assert!(parse_other("x=10.0.0.1:1").is_err());
        assert!(parse_other("127.0.0.1:1").is_err());
    }
}
