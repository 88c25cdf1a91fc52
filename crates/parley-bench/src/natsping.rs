//! The floor under a cross-node round trip: two NATS clients and nothing
//! else. B answers every message A publishes on `ircload.ping.<run>` by
//! publishing it back on `ircload.pong.<run>`; A measures the round trip,
//! one message in flight. A Parley cross-node private message makes the
//! same two trips through NATS (node to node and back) plus the two IRC
//! legs of a single-node round trip, so its p50 can be read against this
//! one and the single node's (bench/cluster.sh runs all three).

use crate::histogram::Exact;
use crate::Report;
use futures_util::StreamExt;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Labels and output (`--server` is not used: the servers are NATS's).
    #[command(flatten)]
    pub target: crate::Target,
    /// NATS server client A connects to (nats://127.0.0.1:PORT).
    #[arg(long)]
    pub nats_a: String,
    /// NATS server client B connects to (another server of the cluster,
    /// or the same one).
    #[arg(long)]
    pub nats_b: String,
    /// Round trips measured.
    #[arg(long, default_value_t = 20_000)]
    pub count: u64,
    /// Round trips before measuring.
    #[arg(long, default_value_t = 1_000)]
    pub warmup: u64,
    /// Seconds one round trip may take before the run counts it lost.
    #[arg(long, default_value_t = 5.0)]
    pub timeout: f64,
}

/// Only loopback servers: ircload loads nothing beyond this machine.
pub fn check_loopback(url: &str) -> anyhow::Result<()> {
    let host = url.trim_start_matches("nats://").rsplit_once(':').map_or(url, |(h, _)| h);
    anyhow::ensure!(
        matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1"),
        "{url} is not a loopback address: ircload only loads servers on this machine"
    );
    Ok(())
}

pub async fn run(a: &Args) -> anyhow::Result<Report> {
    check_loopback(&a.nats_a)?;
    check_loopback(&a.nats_b)?;
    let run = std::process::id();
    let (ping, pong) = (format!("ircload.ping.{run}"), format!("ircload.pong.{run}"));
    let client_a = async_nats::connect(a.nats_a.as_str()).await?;
    let client_b = async_nats::connect(a.nats_b.as_str()).await?;
    let mut pings = client_b.subscribe(ping.clone()).await?;
    let mut pongs = client_a.subscribe(pong.clone()).await?;
    let echo = {
        let (client_b, pong) = (client_b.clone(), pong.clone());
        tokio::spawn(async move {
            while let Some(m) = pings.next().await {
                if client_b.publish(pong.clone(), m.payload).await.is_err() {
                    break;
                }
            }
        })
    };
    // Interest travels between NATS servers on its own time: ping until
    // an answer comes back (bounded) before counting anything.
    client_a.flush().await?;
    client_b.flush().await?;
    let mut through = false;
    for _ in 0..100 {
        client_a.publish(ping.clone(), "hello".into()).await?;
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), pongs.next()).await {
            through = true;
            break;
        }
    }
    anyhow::ensure!(through, "no answer through NATS within 10 s");
    let limit = Duration::from_secs_f64(a.timeout);
    let mut hist = Exact::default();
    let mut lost = 0u64;
    let started = Instant::now();
    for seq in 0..a.warmup + a.count {
        let t0 = Instant::now();
        client_a.publish(ping.clone(), seq.to_string().into()).await?;
        let answer = tokio::time::timeout(limit, async {
            while let Some(m) = pongs.next().await {
                if m.payload.as_ref() == seq.to_string().as_bytes() {
                    return true;
                }
            }
            false
        })
        .await;
        match answer {
            Ok(true) if seq >= a.warmup => hist.record(t0.elapsed().as_nanos() as u64),
            Ok(true) => {}
            _ => lost += 1,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    echo.abort();
    let mut us = |q: f64| hist.quantile(q) as f64 / 1000.0;
    let (p50, p99, p999) = (us(0.5), us(0.99), us(0.999));
    let same = a.nats_a == a.nats_b;
    let rows = vec![
        ("servers".into(), if same { format!("{} (both)", a.nats_a) } else { format!("{} → {}", a.nats_a, a.nats_b) }),
        ("round trips".into(), format!("{} ({lost} lost)", hist.count())),
        ("round trip µs".into(), format!("p50 {p50:.1}  p99 {p99:.1}  p99.9 {p999:.1}")),
    ];
    Ok(Report {
        scenario: "natsping",
        params: serde_json::json!({ "count": a.count, "warmup": a.warmup, "same_server": same }),
        results: serde_json::json!({
            "round_trips": hist.count(),
            "lost": lost,
            "rtt_p50_us": p50,
            "rtt_p99_us": p99,
            "rtt_p999_us": p999,
            "seconds": secs,
        }),
        rows,
        ok: lost == 0 && hist.count() == a.count,
    })
}
