//! Scenario 3, the crowded lobby: N users (default 10,000) connect and all
//! end up in one channel (`JOIN` is sent; on Parley, which auto-joins the
//! lobby, it is a no-op and the server's own JOIN is what we wait for).
//! Every client keeps reading whatever the server sends (on a classic
//! server, a JOIN line per newcomer to every member). Once all are in, or
//! the join deadline passes, one member sends one message, and we time
//! until every other member has it.

use crate::irc::{base36, pong_for, Conn, Line};
use crate::procstat::CpuMark;
use crate::{fmt_errors, Report, Target};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    #[arg(long, default_value = "#lobby")]
    pub channel: String,
    /// Seconds allowed for everyone to get into the lobby.
    #[arg(long, default_value_t = 60.0)]
    pub join_deadline: f64,
    /// Seconds allowed for the one message to reach everyone.
    #[arg(long, default_value_t = 30.0)]
    pub message_deadline: f64,
    /// Read buffer bytes per client.
    #[arg(long, default_value_t = 16 * 1024)]
    pub buf: usize,
    #[arg(long, default_value = "l")]
    pub nick_prefix: String,
}

struct Shared {
    args: Args,
    sem: Arc<Semaphore>,
    join_deadline: Instant,
    t0: Instant,
    joined: AtomicUsize,
    failed: AtomicUsize,
    last_join_ns: AtomicU64,
    reached: AtomicUsize,
    last_reach_ns: AtomicU64,
    sent_ns: AtomicU64,
    speaker: AtomicUsize,
    errors: Mutex<BTreeMap<String, usize>>,
    /// Members that lost their connection after joining.
    lost_members: AtomicUsize,
}

impl Shared {
    fn ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }
    fn error(&self, what: String) {
        *self.errors.lock().unwrap_or_else(|p| p.into_inner()).entry(what).or_insert(0) += 1;
    }
}

const NO_SPEAKER: usize = usize::MAX;

async fn user(i: usize, sh: Arc<Shared>, mut speak: watch::Receiver<bool>, mut done: watch::Receiver<bool>) {
    let (a, target, join_deadline) = (&sh.args, &sh.args.target, sh.join_deadline);
    let sem = sh.sem.clone();
    let permit = tokio::select! {
        p = sem.acquire_owned() => p.expect("never closed"),
        _ = tokio::time::sleep_until(join_deadline) => {
            sh.failed.fetch_add(1, Relaxed);
            return;
        }
    };
    let left = join_deadline.saturating_duration_since(Instant::now());
    let nick = format!("{}{}", a.nick_prefix, base36(i as u64));
    let setup = async {
        let mut c = Conn::open(target, i, &nick, a.buf, left).await?;
        c.join(&a.channel, true).await?;
        Ok::<Conn, crate::irc::SetupError>(c)
    };
    let mut conn = match tokio::time::timeout_at(join_deadline, setup).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            sh.failed.fetch_add(1, Relaxed);
            sh.error(e.0);
            return;
        }
        Err(_) => {
            sh.failed.fetch_add(1, Relaxed);
            sh.error("not in the lobby by the deadline".into());
            return;
        }
    };
    drop(permit);
    if Instant::now() > join_deadline {
        sh.failed.fetch_add(1, Relaxed);
        sh.error("not in the lobby by the deadline".into());
        return;
    }
    sh.joined.fetch_add(1, Relaxed);
    sh.last_join_ns.fetch_max(sh.ns(), Relaxed);
    let _ = sh.speaker.compare_exchange(NO_SPEAKER, i, Relaxed, Relaxed);
    let is_speaker = sh.speaker.load(Relaxed) == i;
    let mut pongs = Vec::new();
    let mut got = false;
    loop {
        tokio::select! {
            _ = done.changed() => return,
            _ = speak.changed(), if is_speaker => {
                let line = format!("PRIVMSG {} :LOBBY hello everyone\r\n", a.channel);
                sh.sent_ns.store(sh.ns(), Relaxed);
                if conn.stream.write_all(line.as_bytes()).await.is_err() {
                    sh.error("speaker write failed".into());
                }
            }
            r = conn.lines.fill(&mut conn.stream) => {
                if !matches!(r, Ok(n) if n > 0) {
                    sh.lost_members.fetch_add(1, Relaxed);
                    sh.error("member disconnected".into());
                    return;
                }
                while let Some(raw) = conn.lines.next_line() {
                    let line = Line::parse(raw);
                    match line.command {
                        // Only once it is sent: a server that replays the
                        // lobby's history on join shows an earlier run's.
                        b"PRIVMSG" if !got && sh.sent_ns.load(Relaxed) != 0 && line.trailing().starts_with(b"LOBBY ") => {
                            got = true;
                            sh.reached.fetch_add(1, Relaxed);
                            sh.last_reach_ns.fetch_max(sh.ns(), Relaxed);
                        }
                        b"PING" => pong_for(&line, &mut pongs),
                        b"ERROR" => sh.error(format!(
                            "ERROR {}",
                            String::from_utf8_lossy(line.trailing())
                        )),
                        _ => {}
                    }
                }
                if !pongs.is_empty() {
                    let _ = conn.stream.write_all(&pongs).await;
                    pongs.clear();
                }
            }
        }
    }
}

pub async fn run(a: &Args) -> anyhow::Result<Report> {
    let t0 = Instant::now();
    let sh = Arc::new(Shared {
        args: a.clone(),
        sem: Arc::new(Semaphore::new(a.target.connect_concurrency.max(1))),
        join_deadline: t0 + Duration::from_secs_f64(a.join_deadline),
        t0,
        joined: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        last_join_ns: AtomicU64::new(0),
        reached: AtomicUsize::new(0),
        last_reach_ns: AtomicU64::new(0),
        sent_ns: AtomicU64::new(0),
        speaker: AtomicUsize::new(NO_SPEAKER),
        errors: Mutex::new(BTreeMap::new()),
        lost_members: AtomicUsize::new(0),
    });
    let cpu0 = CpuMark::now(a.target.server_pid);
    let join_deadline = sh.join_deadline;
    let (speak_tx, speak_rx) = watch::channel(false);
    let (done_tx, done_rx) = watch::channel(false);
    let mut handles = Vec::with_capacity(a.users);
    for i in 0..a.users {
        handles.push(tokio::spawn(user(i, sh.clone(), speak_rx.clone(), done_rx.clone())));
    }
    let mut last_report = Instant::now();
    while Instant::now() < join_deadline && sh.joined.load(Relaxed) + sh.failed.load(Relaxed) < a.users {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if last_report.elapsed() > Duration::from_secs(5) {
            last_report = Instant::now();
            eprintln!("  ... {} in the lobby after {:.0} s", sh.joined.load(Relaxed), sh.t0.elapsed().as_secs_f64());
        }
    }
    // A client that got in just before the deadline may still be counting
    // itself; give it a moment so `joined` is final.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let joined = sh.joined.load(Relaxed);
    let all_in = joined == a.users;
    let fill_secs = sh.last_join_ns.load(Relaxed) as f64 / 1e9;
    let cpu1 = CpuMark::now(a.target.server_pid);
    // One message, from the first member in, to everyone else.
    let _ = speak_tx.send(true);
    let msg_deadline = Instant::now() + Duration::from_secs_f64(a.message_deadline);
    let want = joined.saturating_sub(1);
    while Instant::now() < msg_deadline && sh.reached.load(Relaxed) < want {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let reached = sh.reached.load(Relaxed);
    let sent = sh.sent_ns.load(Relaxed);
    let reach_ms = (reached > 0).then(|| sh.last_reach_ns.load(Relaxed).saturating_sub(sent) as f64 / 1e6);
    let _ = done_tx.send(true);
    for h in handles {
        let _ = tokio::time::timeout(Duration::from_secs(5), h).await;
    }
    let errors = sh.errors.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let (server_cpu, tool_cpu) = cpu1.since(&cpu0);
    let ok = all_in && reached == want && fill_secs <= a.join_deadline;
    let rows = vec![
        (
            "in the lobby".to_string(),
            if all_in {
                format!("all {joined} after {fill_secs:.1} s")
            } else {
                format!("{joined} of {} by the {:.0} s deadline", a.users, a.join_deadline)
            },
        ),
        (
            "one message reached".into(),
            format!(
                "{reached} of {want} other members{}",
                reach_ms.map(|m| format!(", last after {m:.1} ms")).unwrap_or_default()
            ),
        ),
        ("errors".into(), fmt_errors(&errors)),
        (
            "CPU while filling".into(),
            format!("server {}, tool {tool_cpu:.2} s", server_cpu.map_or("?".into(), |c| format!("{c:.2} s"))),
        ),
    ];
    Ok(Report {
        scenario: "lobby",
        params: serde_json::json!({
            "users": a.users, "channel": a.channel,
            "join_deadline_s": a.join_deadline, "message_deadline_s": a.message_deadline,
        }),
        results: serde_json::json!({
            "joined": joined,
            "all_joined": all_in,
            "fill_s": if all_in { Some(fill_secs) } else { None },
            "reached": reached,
            "reach_wanted": want,
            "reach_ms": reach_ms,
            "errors": errors,
            "server_cpu_s": server_cpu,
            "tool_cpu_s": tool_cpu,
        }),
        rows,
        ok,
    })
}
