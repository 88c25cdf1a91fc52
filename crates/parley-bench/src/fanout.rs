//! Scenario 1, the busy channel: M members in one channel, the first S of
//! them sending. Every message carries its sender's index, a per-sender
//! sequence number and the send time (ns since the generator started), so
//! each receiver measures end-to-end latency and checks, per (sender,
//! receiver) pair, that nothing was lost or reordered.
//!
//! Sending is either at a fixed total rate or as fast as the server takes
//! it; in both cases at most `--window` messages may be in flight (sent but
//! not yet delivered to every member), so a server is measured at the rate
//! it sustains rather than by how much it can buffer before dropping
//! someone for SendQ.
//!
//! Phases: warm-up (not measured), measurement (deliveries, latency, CPU of
//! both processes), then the senders stop and the tool waits for every
//! message to arrive before counting losses.

use crate::histogram::Histogram;
use crate::irc::{self, base36, pong_for, Conn, Line, Plan};
use crate::procstat::{self, CpuMark};
use crate::{fmt_errors, fmt_num, Report, Target};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tokio::time::Instant;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Channel members (senders included).
    #[arg(long, default_value_t = 1000)]
    pub members: usize,
    /// Members that send.
    #[arg(long, default_value_t = 100)]
    pub senders: usize,
    /// Total messages per second from all senders; 0 sends as fast as the
    /// server takes them (within --window).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Most messages in flight (sent, not yet delivered to every member),
    /// all senders together.
    #[arg(long, default_value_t = 1000)]
    pub window: u64,
    #[arg(long, default_value = "#bench")]
    pub channel: String,
    /// Bytes of message text, the sequence number and timestamp included.
    #[arg(long, default_value_t = 64)]
    pub text_bytes: usize,
    /// Seconds of sending before measuring.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds to wait, after sending stops, for every message to arrive.
    #[arg(long, default_value_t = 20.0)]
    pub drain: f64,
    /// Read buffer bytes per client.
    #[arg(long, default_value_t = 32 * 1024)]
    pub buf: usize,
    /// Nick prefix (a letter), so variants run back to back do not collide.
    #[arg(long, default_value = "f")]
    pub nick_prefix: String,
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const AFTER: u8 = 2;

struct Shared {
    t0: std::time::Instant,
    phase: AtomicU8,
    stop: AtomicBool,
    sent: AtomicU64,
    delivered: AtomicU64,
    measured: AtomicU64,
    sent_by: Vec<AtomicU64>,
    senders: usize,
    recipients: u64,
    window: u64,
    interval: Option<Duration>,
    send_start: Instant,
    text_bytes: usize,
    head: Vec<u8>,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }
}

struct MemberResult {
    received: Vec<u64>,
    reordered: u64,
    hist: Histogram,
    closed: Option<String>,
}

/// Parses "<sender> <seq> <ns> ..." from the start of the text.
fn parse_payload(text: &[u8]) -> Option<(u64, u64, u64)> {
    let mut it = text.splitn(4, |&b| b == b' ');
    let mut num = || -> Option<u64> {
        let w = it.next()?;
        if w.is_empty() || w.len() > 20 {
            return None;
        }
        let mut v: u64 = 0;
        for &b in w {
            if !b.is_ascii_digit() {
                return None;
            }
            v = v.wrapping_mul(10).wrapping_add((b - b'0') as u64);
        }
        Some(v)
    };
    Some((num()?, num()?, num()?))
}

async fn member(idx: usize, mut conn: Conn, sh: Arc<Shared>, mut done: watch::Receiver<bool>) -> MemberResult {
    let senders = sh.senders;
    let mut r = MemberResult { received: vec![0; senders], reordered: 0, hist: Histogram::new(), closed: None };
    let mut next_expected = vec![0u64; senders];
    let mut seq = 0u64;
    let mut next_send = (idx < senders).then(|| match sh.interval {
        Some(iv) => sh.send_start + iv.mul_f64(idx as f64 / senders as f64),
        None => sh.send_start,
    });
    let far = Instant::now() + Duration::from_secs(24 * 3600);
    let mut out: Vec<u8> = Vec::with_capacity(sh.head.len() + sh.text_bytes + 2);
    let mut pongs = Vec::new();
    loop {
        tokio::select! {
            biased;
            _ = done.changed() => break,
            _ = tokio::time::sleep_until(next_send.unwrap_or(far)), if next_send.is_some() => {
                if sh.stop.load(Relaxed) {
                    next_send = None;
                    continue;
                }
                let now = Instant::now();
                let inflight = sh.sent.load(Relaxed)
                    .saturating_sub(sh.delivered.load(Relaxed) / sh.recipients);
                if inflight >= sh.window {
                    next_send = Some(now + Duration::from_millis(1));
                    continue;
                }
                out.clear();
                out.extend_from_slice(&sh.head);
                let start = out.len();
                let _ = write!(out, "{idx} {seq} {} ", sh.now_ns());
                while out.len() - start < sh.text_bytes {
                    out.push(b'x');
                }
                out.extend_from_slice(b"\r\n");
                if let Err(e) = conn.stream.write_all(&out).await {
                    r.closed = Some(format!("write: {}", e.kind()));
                    break;
                }
                seq += 1;
                sh.sent_by[idx].store(seq, Relaxed);
                sh.sent.fetch_add(1, Relaxed);
                let scheduled = next_send.unwrap_or(now);
                next_send = Some(match sh.interval {
                    None => now,
                    // Keep the schedule, but do not burst to catch up on
                    // more than a second of lag.
                    Some(iv) if scheduled + iv + Duration::from_secs(1) < now => now,
                    Some(iv) => scheduled + iv,
                });
            }
            res = conn.lines.fill(&mut conn.stream) => match res {
                Ok(0) => {
                    r.closed.get_or_insert_with(|| "closed by server".into());
                    break;
                }
                Err(e) => {
                    r.closed.get_or_insert_with(|| format!("read: {}", e.kind()));
                    break;
                }
                Ok(_) => {
                    let now = sh.now_ns();
                    let measuring = sh.phase.load(Relaxed) == MEASURE;
                    let mut n = 0u64;
                    while let Some(raw) = conn.lines.next_line() {
                        let line = Line::parse(raw);
                        match line.command {
                            b"PRIVMSG" => {
                                let Some((s, q, t)) = parse_payload(line.trailing()) else {
                                    continue;
                                };
                                let s = s as usize;
                                if s >= senders {
                                    continue;
                                }
                                n += 1;
                                r.received[s] += 1;
                                let want = &mut next_expected[s];
                                if q >= *want {
                                    *want = q + 1;
                                } else {
                                    r.reordered += 1;
                                }
                                if measuring {
                                    r.hist.record(now.saturating_sub(t));
                                }
                            }
                            b"PING" => pong_for(&line, &mut pongs),
                            b"ERROR" => {
                                r.closed = Some(format!(
                                    "ERROR {}",
                                    String::from_utf8_lossy(line.trailing())
                                ));
                            }
                            _ => {}
                        }
                    }
                    if n > 0 {
                        sh.delivered.fetch_add(n, Relaxed);
                        if measuring {
                            sh.measured.fetch_add(n, Relaxed);
                        }
                    }
                    if !pongs.is_empty() {
                        if conn.stream.write_all(&pongs).await.is_err() {
                            r.closed.get_or_insert_with(|| "write failed".into());
                            break;
                        }
                        pongs.clear();
                    }
                }
            }
        }
    }
    r
}

pub async fn run(a: &Args) -> anyhow::Result<Report> {
    anyhow::ensure!(a.members >= 2, "--members must be at least 2");
    anyhow::ensure!(a.senders >= 1 && a.senders <= a.members, "--senders must be between 1 and --members");
    let t0 = std::time::Instant::now();
    let setup_started = Instant::now();
    let prefix = a.nick_prefix.clone();
    let chan = a.channel.clone();
    let results = irc::open_many(
        &a.target,
        Plan {
            count: a.members,
            buf_size: a.buf,
            nick: Box::new(move |i| format!("{prefix}{}", base36(i as u64))),
            channel: Box::new(move |_| Some(chan.clone())),
        },
    )
    .await;
    let (conns, setup_errors) = irc::partition(results);
    let setup_secs = setup_started.elapsed().as_secs_f64();
    let params = serde_json::json!({
        "members": a.members, "senders": a.senders, "rate": a.rate, "window": a.window,
        "text_bytes": a.text_bytes, "warmup_s": a.warmup, "duration_s": a.duration,
        "channel": a.channel,
    });
    if !setup_errors.is_empty() {
        return Ok(Report {
            scenario: "fanout",
            params,
            results: serde_json::json!({ "setup_errors": setup_errors, "setup_s": setup_secs }),
            rows: vec![("setup errors".into(), fmt_errors(&setup_errors))],
            ok: false,
        });
    }
    let interval = (a.rate > 0.0).then(|| Duration::from_secs_f64(a.senders as f64 / a.rate));
    let sh = Arc::new(Shared {
        t0,
        phase: AtomicU8::new(WARMUP),
        stop: AtomicBool::new(false),
        sent: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        measured: AtomicU64::new(0),
        sent_by: (0..a.senders).map(|_| AtomicU64::new(0)).collect(),
        senders: a.senders,
        recipients: (a.members - 1) as u64,
        window: a.window.max(1),
        interval,
        send_start: Instant::now() + Duration::from_millis(100),
        text_bytes: a.text_bytes.max(24),
        head: format!("PRIVMSG {} :", a.channel).into_bytes(),
    });
    let (done_tx, done_rx) = watch::channel(false);
    let mut handles = Vec::with_capacity(conns.len());
    for (i, conn) in conns.into_iter().enumerate() {
        handles.push(tokio::spawn(member(i, conn, sh.clone(), done_rx.clone())));
    }
    tokio::time::sleep(Duration::from_secs_f64(a.warmup) + Duration::from_millis(100)).await;
    let cpu0 = CpuMark::now(a.target.server_pid);
    let sent0 = sh.sent.load(Relaxed);
    let m0 = Instant::now();
    sh.phase.store(MEASURE, Relaxed);
    tokio::time::sleep(Duration::from_secs_f64(a.duration)).await;
    sh.phase.store(AFTER, Relaxed);
    let measured_secs = m0.elapsed().as_secs_f64();
    let cpu1 = CpuMark::now(a.target.server_pid);
    let sent1 = sh.sent.load(Relaxed);
    let measured = sh.measured.load(Relaxed);
    let server_rss = a.target.server_pid.and_then(procstat::rss_bytes);
    sh.stop.store(true, Relaxed);
    // Drain: wait for everything sent to reach every member.
    let drain_deadline = Instant::now() + Duration::from_secs_f64(a.drain);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut drained = false;
    while Instant::now() < drain_deadline {
        let expected = sh.sent.load(Relaxed) * sh.recipients;
        if sh.delivered.load(Relaxed) >= expected {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = done_tx.send(true);
    let mut hist = Histogram::new();
    let mut lost = 0u64;
    let mut reordered = 0u64;
    let mut received = 0u64;
    let mut disconnects: BTreeMap<String, usize> = BTreeMap::new();
    let sent_by: Vec<u64> = sh.sent_by.iter().map(|s| s.load(Relaxed)).collect();
    for (r_idx, h) in handles.into_iter().enumerate() {
        let m = h.await?;
        hist.merge(&m.hist);
        reordered += m.reordered;
        for (s, &want) in sent_by.iter().enumerate() {
            received += m.received[s];
            if s != r_idx {
                lost += want.saturating_sub(m.received[s]);
            }
        }
        if let Some(why) = m.closed {
            *disconnects.entry(why).or_insert(0) += 1;
        }
    }
    let (server_cpu, tool_cpu) = cpu1.since(&cpu0);
    let rate = measured as f64 / measured_secs;
    let msgs_rate = (sent1 - sent0) as f64 / measured_secs;
    let per_server_cpu = server_cpu.map(|c| measured as f64 / c.max(1e-9));
    let per_tool_cpu = measured as f64 / tool_cpu.max(1e-9);
    let ok = lost == 0 && reordered == 0 && disconnects.is_empty() && measured > 0;
    let lat = hist.summary_ms();
    let results = serde_json::json!({
        "setup_s": setup_secs,
        "measured_s": measured_secs,
        "deliveries": measured,
        "deliveries_per_s": rate,
        "messages_per_s": msgs_rate,
        "latency": lat,
        "sent_total": sh.sent.load(Relaxed),
        "received_total": received,
        "lost": lost,
        "reordered": reordered,
        "drained": drained,
        "disconnects": disconnects,
        "server_cpu_s": server_cpu,
        "tool_cpu_s": tool_cpu,
        "server_cores": server_cpu.map(|c| c / measured_secs),
        "tool_cores": tool_cpu / measured_secs,
        "deliveries_per_server_cpu_s": per_server_cpu,
        "deliveries_per_tool_cpu_s": per_tool_cpu,
        "server_rss_bytes": server_rss,
    });
    let ms = |k: &str| lat[k].as_f64().unwrap_or(0.0);
    let mut rows = vec![
        (
            "clients".to_string(),
            format!(
                "{} members, {} senders, {} ({} ready in {:.1} s)",
                a.members,
                a.senders,
                if a.rate > 0.0 {
                    format!("{} msg/s", fmt_num(a.rate))
                } else {
                    format!("max rate, window {}", a.window)
                },
                a.members,
                setup_secs
            ),
        ),
        ("deliveries/s".into(), fmt_num(rate)),
        ("messages sent/s".into(), fmt_num(msgs_rate)),
        (
            "latency ms".into(),
            format!(
                "p50 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
                ms("p50_ms"),
                ms("p99_ms"),
                ms("p999_ms"),
                ms("max_ms")
            ),
        ),
        ("lost / reordered".into(), format!("{lost} / {reordered}{}", if drained { "" } else { " (not drained)" })),
        ("disconnects".into(), fmt_errors(&disconnects)),
    ];
    if let Some(c) = server_cpu {
        rows.push((
            "server CPU".into(),
            format!(
                "{c:.2} s ({:.2} cores), {} deliveries per CPU-second",
                c / measured_secs,
                fmt_num(per_server_cpu.unwrap_or(0.0))
            ),
        ));
    }
    rows.push((
        "tool CPU".into(),
        format!(
            "{tool_cpu:.2} s ({:.2} cores), {} deliveries per CPU-second",
            tool_cpu / measured_secs,
            fmt_num(per_tool_cpu)
        ),
    ));
    if let Some(rss) = server_rss {
        rows.push(("server RSS".into(), format!("{:.1} MiB", rss as f64 / 1048576.0)));
    }
    Ok(Report { scenario: "fanout", params, results, rows, ok })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_numbers_parse_and_junk_does_not() {
        assert_eq!(parse_payload(b"3 17 123456 xxxx"), Some((3, 17, 123456)));
        assert_eq!(parse_payload(b"3 17 123456"), Some((3, 17, 123456)));
        assert_eq!(parse_payload(b"hello there you"), None);
        assert_eq!(parse_payload(b"1 2"), None);
    }
}
