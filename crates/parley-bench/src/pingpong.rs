//! Scenario 5, private-message ping-pong: two registered clients and no
//! other load. A sends B a PRIVMSG carrying a sequence number, B sends the
//! same text back, A measures the round trip. One message in flight at a
//! time, so this is the server's per-message latency, not its throughput.

use crate::histogram::Histogram;
use crate::irc::{pong_for, Conn, Line};
use crate::{Report, Target};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Round trips measured.
    #[arg(long, default_value_t = 20_000)]
    pub count: u64,
    /// Round trips before measuring.
    #[arg(long, default_value_t = 1_000)]
    pub warmup: u64,
    #[arg(long, default_value = "p")]
    pub nick_prefix: String,
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

pub async fn run(a: &Args) -> anyhow::Result<Report> {
    let timeout = Duration::from_secs_f64(a.target.register_timeout);
    let na = format!("{}a", a.nick_prefix);
    let nb = format!("{}b", a.nick_prefix);
    let mut ca = Conn::open(&a.target, 0, &na, 8192, timeout).await.map_err(|e| anyhow::anyhow!("client A: {e}"))?;
    let cb = Conn::open(&a.target, 1, &nb, 8192, timeout).await.map_err(|e| anyhow::anyhow!("client B: {e}"))?;
    let b_nick = cb.nick.clone();
    let echo_task = tokio::spawn(echo(cb, ca.nick.clone()));
    let mut hist = Histogram::new();
    let mut errors = 0u64;
    let mut out = Vec::new();
    let total = a.warmup + a.count;
    let started = Instant::now();
    let mut measure_start = started;
    'outer: for seq in 0..total {
        if seq == a.warmup {
            measure_start = Instant::now();
        }
        let t = Instant::now();
        let text = format!("PRIVMSG {b_nick} :{seq} ping\r\n");
        ca.stream.write_all(text.as_bytes()).await?;
        let deadline = t + Duration::from_secs(10);
        let want = seq.to_string();
        loop {
            let mut got = false;
            while let Some(raw) = ca.lines.next_line() {
                let line = Line::parse(raw);
                match line.command {
                    b"PRIVMSG" => {
                        let text = line.trailing();
                        if text.split(|&b| b == b' ').next() == Some(want.as_bytes()) {
                            got = true;
                        }
                    }
                    b"PING" => pong_for(&line, &mut out),
                    _ => {}
                }
            }
            if !out.is_empty() {
                ca.stream.write_all(&out).await?;
                out.clear();
            }
            if got {
                if seq >= a.warmup {
                    hist.record(t.elapsed().as_nanos() as u64);
                }
                break;
            }
            match tokio::time::timeout_at(deadline, ca.lines.fill(&mut ca.stream)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => {
                    errors += 1;
                    break 'outer;
                }
            }
        }
    }
    let secs = measure_start.elapsed().as_secs_f64();
    echo_task.abort();
    let us = |q: f64| hist.quantile(q) as f64 / 1000.0;
    let ok = errors == 0 && hist.count() == a.count;
    Ok(Report {
        scenario: "pingpong",
        params: serde_json::json!({ "count": a.count, "warmup": a.warmup }),
        results: serde_json::json!({
            "round_trips": hist.count(),
            "errors": errors,
            "rtt_p50_us": us(0.5),
            "rtt_p99_us": us(0.99),
            "rtt_p999_us": us(0.999),
            "rtt_max_us": hist.max() as f64 / 1000.0,
            "rtt_mean_us": hist.mean() / 1000.0,
            "round_trips_per_s": hist.count() as f64 / secs,
        }),
        rows: vec![
            ("round trips".into(), format!("{} ({errors} errors)", hist.count())),
            (
                "round trip µs".into(),
                format!(
                    "p50 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
                    us(0.5),
                    us(0.99),
                    us(0.999),
                    hist.max() as f64 / 1000.0
                ),
            ),
        ],
        ok,
    })
}
