//! Scenario 2, idle users: N clients register and join one of C channels
//! (default 10,000 over 100 channels of 100, a size every server can
//! finish), then sit idle. The server's resident memory is read before the
//! first connection and again once everyone is in and things have settled;
//! the difference divided by N is the memory each idle user costs.

use crate::irc::{self, base36, pong_for, Line, Plan};
use crate::procstat::{self, CpuMark};
use crate::{fmt_errors, Report, Target};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tokio::time::Instant;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    /// Channels the users are spread over (user i joins #idle<i mod C>);
    /// 0 joins none.
    #[arg(long, default_value_t = 100)]
    pub channels: usize,
    /// Seconds to wait after the last join before reading memory.
    #[arg(long, default_value_t = 3.0)]
    pub settle: f64,
    /// Read buffer bytes per client.
    #[arg(long, default_value_t = 2048)]
    pub buf: usize,
    #[arg(long, default_value = "i")]
    pub nick_prefix: String,
}

pub async fn run(a: &Args) -> anyhow::Result<Report> {
    let pid = a.target.server_pid;
    let rss0 = pid.and_then(procstat::rss_bytes);
    let cpu0 = CpuMark::now(pid);
    let started = Instant::now();
    let prefix = a.nick_prefix.clone();
    let channels = a.channels;
    let results = irc::open_many(
        &a.target,
        Plan {
            count: a.users,
            buf_size: a.buf,
            nick: Box::new(move |i| format!("{prefix}{}", base36(i as u64))),
            channel: Box::new(move |i| (channels > 0).then(|| format!("#idle{}", i % channels))),
        },
    )
    .await;
    let setup_secs = started.elapsed().as_secs_f64();
    let (conns, errors) = irc::partition(results);
    let ready = conns.len();
    // Keep every client alive (answering PINGs, reading what arrives).
    let (done_tx, done_rx) = watch::channel(false);
    let mut handles = Vec::with_capacity(ready);
    for mut conn in conns {
        let mut done = done_rx.clone();
        handles.push(tokio::spawn(async move {
            let mut pongs = Vec::new();
            loop {
                tokio::select! {
                    _ = done.changed() => return true,
                    r = conn.lines.fill(&mut conn.stream) => {
                        if !matches!(r, Ok(n) if n > 0) {
                            return false;
                        }
                        while let Some(raw) = conn.lines.next_line() {
                            let line = Line::parse(raw);
                            if line.command == b"PING" {
                                pong_for(&line, &mut pongs);
                            }
                        }
                        if !pongs.is_empty() {
                            let _ = conn.stream.write_all(&pongs).await;
                            pongs.clear();
                        }
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(a.settle)).await;
    let rss1 = pid.and_then(procstat::rss_bytes);
    let (server_cpu, tool_cpu) = CpuMark::now(pid).since(&cpu0);
    let _ = done_tx.send(true);
    let mut dropped = 0;
    for h in handles {
        if !h.await.unwrap_or(false) {
            dropped += 1;
        }
    }
    let per_user = match (rss0, rss1) {
        (Some(b), Some(e)) if ready > 0 => Some((e as f64 - b as f64) / ready as f64),
        _ => None,
    };
    let ok = errors.is_empty() && dropped == 0;
    let mut rows = vec![
        ("users".to_string(), format!("{ready} of {} ready in {setup_secs:.1} s, {} channels", a.users, a.channels)),
        ("setup errors".into(), fmt_errors(&errors)),
        ("dropped while idle".into(), dropped.to_string()),
    ];
    if let (Some(b), Some(e), Some(p)) = (rss0, rss1, per_user) {
        rows.push((
            "server RSS".into(),
            format!("{:.1} MiB at rest, {:.1} MiB with users", b as f64 / 1048576.0, e as f64 / 1048576.0),
        ));
        rows.push(("memory per idle user".into(), format!("{:.2} KiB", p / 1024.0)));
    }
    if let Some(c) = server_cpu {
        rows.push(("CPU during setup".into(), format!("server {c:.2} s, tool {tool_cpu:.2} s")));
    }
    Ok(Report {
        scenario: "idle",
        params: serde_json::json!({ "users": a.users, "channels": a.channels, "settle_s": a.settle }),
        results: serde_json::json!({
            "ready": ready,
            "setup_s": setup_secs,
            "setup_errors": errors,
            "dropped": dropped,
            "rss_before_bytes": rss0,
            "rss_after_bytes": rss1,
            "bytes_per_user": per_user,
            "server_cpu_s": server_cpu,
            "tool_cpu_s": tool_cpu,
        }),
        rows,
        ok,
    })
}
