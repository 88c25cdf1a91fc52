//! Scenario 4, the connection storm: K workers each loop connect →
//! register (001) → JOIN their own channel → QUIT, for a fixed time, so K
//! registrations are always in flight. Reports completed registrations per
//! second, their latency and every error. A finished client is closed in
//! the background (QUIT, then wait for the server to close first, so the
//! generator's ports are not stuck in TIME_WAIT).

use crate::histogram::Histogram;
use crate::irc::{base36, Conn};
use crate::procstat::CpuMark;
use crate::{fmt_errors, fmt_num, Report, Target};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Registrations in flight at once.
    #[arg(long, default_value_t = 100)]
    pub in_flight: usize,
    /// Seconds to keep the storm going.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    #[arg(long, default_value = "s")]
    pub nick_prefix: String,
}

struct Shared {
    next_nick: AtomicU64,
    completed: AtomicU64,
    errors: Mutex<BTreeMap<String, usize>>,
}

async fn close_politely(mut conn: Conn) {
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        conn.stream.write_all(b"QUIT :bye\r\n").await?;
        while conn.lines.fill(&mut conn.stream).await? > 0 {
            while conn.lines.next_line().is_some() {}
        }
        std::io::Result::Ok(())
    })
    .await;
}

async fn worker(
    w: usize,
    a: Arc<Args>,
    sh: Arc<Shared>,
    end: Instant,
) -> (Histogram, Vec<tokio::task::JoinHandle<()>>) {
    let mut hist = Histogram::new();
    let mut closers = Vec::new();
    let timeout = Duration::from_secs_f64(a.target.register_timeout);
    let chan = format!("#st{}", base36(w as u64));
    while Instant::now() < end {
        let n = sh.next_nick.fetch_add(1, Relaxed);
        let nick = format!("{}{}", a.nick_prefix, base36(n));
        let t = Instant::now();
        let attempt = async {
            let mut c = Conn::open(&a.target, n as usize, &nick, 4096, timeout).await?;
            c.join(&chan, true).await?;
            Ok::<Conn, crate::irc::SetupError>(c)
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(conn)) => {
                if Instant::now() <= end {
                    hist.record(t.elapsed().as_nanos() as u64);
                    sh.completed.fetch_add(1, Relaxed);
                }
                closers.push(tokio::spawn(close_politely(conn)));
            }
            Ok(Err(e)) => {
                *sh.errors.lock().unwrap_or_else(|p| p.into_inner()).entry(e.0).or_insert(0) += 1;
            }
            Err(_) => {
                *sh.errors.lock().unwrap_or_else(|p| p.into_inner()).entry("timed out".into()).or_insert(0) += 1;
            }
        }
        closers.retain(|h| !h.is_finished());
    }
    (hist, closers)
}

pub async fn run(a: &Args) -> anyhow::Result<Report> {
    let args = Arc::new(a.clone());
    let sh = Arc::new(Shared {
        next_nick: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        errors: Mutex::new(BTreeMap::new()),
    });
    let cpu0 = CpuMark::now(a.target.server_pid);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(a.duration);
    let handles: Vec<_> =
        (0..a.in_flight.max(1)).map(|w| tokio::spawn(worker(w, args.clone(), sh.clone(), end))).collect();
    let mut hist = Histogram::new();
    let mut closers = Vec::new();
    let grace = Duration::from_secs_f64(a.target.register_timeout) + Duration::from_secs(1);
    for h in handles {
        if let Ok(Ok((wh, c))) = tokio::time::timeout_at(end + grace, h).await {
            hist.merge(&wh);
            closers.extend(c);
        }
    }
    let secs = a.duration;
    let completed = sh.completed.load(Relaxed);
    let (server_cpu, tool_cpu) = CpuMark::now(a.target.server_pid).since(&cpu0);
    for c in closers {
        let _ = tokio::time::timeout(Duration::from_secs(6), c).await;
    }
    let errors = sh.errors.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let error_count: usize = errors.values().sum();
    let rate = completed as f64 / secs;
    let ms = |q: f64| hist.quantile(q) as f64 / 1e6;
    Ok(Report {
        scenario: "storm",
        params: serde_json::json!({ "in_flight": a.in_flight, "duration_s": a.duration }),
        results: serde_json::json!({
            "completed": completed,
            "registrations_per_s": rate,
            "errors": errors,
            "error_count": error_count,
            "latency_p50_ms": ms(0.5),
            "latency_p99_ms": ms(0.99),
            "latency_max_ms": hist.max() as f64 / 1e6,
            "server_cpu_s": server_cpu,
            "tool_cpu_s": tool_cpu,
        }),
        rows: vec![
            (
                "registrations/s".into(),
                format!("{} ({completed} in {secs:.0} s, {} in flight)", fmt_num(rate), a.in_flight),
            ),
            (
                "connect→JOIN ms".into(),
                format!("p50 {:.2}  p99 {:.2}  max {:.2}", ms(0.5), ms(0.99), hist.max() as f64 / 1e6),
            ),
            ("errors".into(), fmt_errors(&errors)),
            (
                "CPU".into(),
                format!("server {}, tool {tool_cpu:.2} s", server_cpu.map_or("?".into(), |c| format!("{c:.2} s"))),
            ),
        ],
        ok: error_count == 0 && completed > 0,
    })
}
