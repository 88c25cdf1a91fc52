//! `ircload table`: reads the JSON lines that scenario runs appended with
//! `--out` and prints one Markdown table per scenario (and variant): a
//! column per server, the median over rounds, and the ratio of our server
//! to the best peer on each metric. An earlier build of our server, labelled
//! `<ours>-before` (bench/peers.sh's `parleyd-before`), is not a peer: it
//! gets a ratio column of its own, the before/after comparison.

use anyhow::Context;
use serde_json::Value;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// JSON-lines files written by scenario runs with --out.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The server the ratios are for; `<ours>-before` is its earlier build.
    #[arg(long, default_value = "parleyd")]
    pub ours: String,
    /// Labels shown but not counted as peers (comma separated).
    #[arg(long, default_value = "sink", value_delimiter = ',')]
    pub not_peers: Vec<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Better {
    Higher,
    Lower,
    /// Shown, no ratio.
    Info,
}

#[derive(Clone, Copy, PartialEq)]
enum Agg {
    Median,
    /// The worst round (for counts that must be zero).
    Max,
}

struct Metric {
    name: &'static str,
    pointer: &'static str,
    better: Better,
    agg: Agg,
    scale: f64,
    digits: usize,
}

const fn m(name: &'static str, pointer: &'static str, better: Better, agg: Agg, scale: f64, digits: usize) -> Metric {
    Metric { name, pointer, better, agg, scale, digits }
}

use Agg::*;
use Better::*;

fn metrics(scenario: &str) -> &'static [Metric] {
    const FANOUT: &[Metric] = &[
        m("deliveries/s", "/deliveries_per_s", Higher, Median, 1.0, 0),
        m("deliveries per server CPU-second", "/deliveries_per_server_cpu_s", Higher, Median, 1.0, 0),
        m("latency p50 (ms)", "/latency/p50_ms", Lower, Median, 1.0, 3),
        m("latency p99 (ms)", "/latency/p99_ms", Lower, Median, 1.0, 3),
        m("latency p99.9 (ms)", "/latency/p999_ms", Lower, Median, 1.0, 3),
        m("messages sent/s", "/messages_per_s", Info, Median, 1.0, 0),
        m("lost (worst round)", "/lost", Lower, Max, 1.0, 0),
        m("reordered (worst round)", "/reordered", Lower, Max, 1.0, 0),
        m("server cores busy", "/server_cores", Info, Median, 1.0, 2),
        m("tool cores busy", "/tool_cores", Info, Median, 1.0, 2),
    ];
    const IDLE: &[Metric] = &[
        m("memory per idle user (KiB)", "/bytes_per_user", Lower, Median, 1.0 / 1024.0, 2),
        m("users ready", "/ready", Higher, Median, 1.0, 0),
        m("setup time (s)", "/setup_s", Info, Median, 1.0, 1),
        m("server RSS with users (MiB)", "/rss_after_bytes", Info, Median, 1.0 / 1048576.0, 1),
    ];
    const LOBBY: &[Metric] = &[
        m("users in the lobby", "/joined", Higher, Median, 1.0, 0),
        m("seconds to fill the lobby", "/fill_s", Lower, Median, 1.0, 1),
        m("members the message reached", "/reached", Higher, Median, 1.0, 0),
        m("ms until the last one had it", "/reach_ms", Lower, Median, 1.0, 1),
        m("server CPU seconds while filling", "/server_cpu_s", Info, Median, 1.0, 1),
    ];
    const STORM: &[Metric] = &[
        m("registrations/s", "/registrations_per_s", Higher, Median, 1.0, 0),
        m("errors (worst round)", "/error_count", Lower, Max, 1.0, 0),
        m("connect→JOIN p50 (ms)", "/latency_p50_ms", Lower, Median, 1.0, 2),
        m("connect→JOIN p99 (ms)", "/latency_p99_ms", Lower, Median, 1.0, 2),
        m("server CPU seconds", "/server_cpu_s", Info, Median, 1.0, 2),
    ];
    const PINGPONG: &[Metric] = &[
        m("round trip p50 (µs)", "/rtt_p50_us", Lower, Median, 1.0, 1),
        m("round trip p99 (µs)", "/rtt_p99_us", Lower, Median, 1.0, 1),
        m("round trip p99.9 (µs)", "/rtt_p999_us", Lower, Median, 1.0, 1),
        m("server CPU per message (µs)", "/server_cpu_us_per_message", Lower, Median, 1.0, 1),
    ];
    match scenario {
        "fanout" => FANOUT,
        "idle" => IDLE,
        "lobby" => LOBBY,
        "storm" => STORM,
        "pingpong" => PINGPONG,
        _ => &[],
    }
}

fn aggregate(mut v: Vec<f64>, agg: Agg) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(match agg {
        Max => v[v.len() - 1],
        Median if v.len() % 2 == 1 => v[v.len() / 2],
        Median => (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0,
    })
}

fn fmt(v: f64, digits: usize) -> String {
    if digits == 0 && v.abs() >= 1000.0 {
        crate::fmt_num(v)
    } else {
        format!("{v:.digits$}")
    }
}

pub fn run(a: &Args) -> anyhow::Result<()> {
    let mut docs: Vec<Value> = Vec::new();
    for f in &a.files {
        let text = std::fs::read_to_string(f).with_context(|| format!("read {}", f.display()))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            docs.push(serde_json::from_str(line).with_context(|| format!("parse {}", f.display()))?);
        }
    }
    let before = format!("{}-before", a.ours);
    // Groups and labels in order of first appearance, ours first.
    let mut groups: Vec<(String, String)> = Vec::new();
    let mut labels: Vec<String> = vec![a.ours.clone()];
    for d in &docs {
        let g = (d["scenario"].as_str().unwrap_or("?").to_string(), d["variant"].as_str().unwrap_or("").to_string());
        if !groups.contains(&g) {
            groups.push(g);
        }
        let l = d["label"].as_str().unwrap_or("?").to_string();
        if !labels.contains(&l) {
            labels.push(l);
        }
    }
    for (scenario, variant) in &groups {
        let in_group: Vec<&Value> =
            docs.iter().filter(|d| d["scenario"] == scenario.as_str() && d["variant"] == variant.as_str()).collect();
        let present: Vec<&String> =
            labels.iter().filter(|l| in_group.iter().any(|d| d["label"] == l.as_str())).collect();
        let title = if variant.is_empty() { scenario.clone() } else { format!("{scenario} ({variant})") };
        println!("\n### {title}\n");
        if let Some(d) = in_group.first() {
            println!("Parameters: `{}`\n", d["params"]);
        }
        let is_peer = |l: &str| l != a.ours && l != before && !a.not_peers.iter().any(|n| n == l);
        let ours_here = present.iter().any(|l| **l == a.ours);
        let peers_here = ours_here && present.iter().any(|l| is_peer(l));
        let before_here = ours_here && present.iter().any(|l| **l == before);
        print!("| metric |");
        for l in &present {
            print!(" {l} |");
        }
        if peers_here {
            print!(" {} ÷ best peer |", a.ours);
        }
        if before_here {
            print!(" {} ÷ {before} |", a.ours);
        }
        println!();
        print!("|---|");
        for _ in &present {
            print!("---:|");
        }
        if peers_here {
            print!("---:|");
        }
        if before_here {
            print!("---:|");
        }
        println!();
        let rounds = |l: &str| -> Vec<&Value> { in_group.iter().filter(|d| d["label"] == l).copied().collect() };
        for metric in metrics(scenario) {
            let value = |l: &str| -> Option<f64> {
                let vals: Vec<f64> = rounds(l)
                    .iter()
                    .filter_map(|d| d["results"].pointer(metric.pointer)?.as_f64())
                    .map(|v| v * metric.scale)
                    .collect();
                aggregate(vals, metric.agg)
            };
            print!("| {} |", metric.name);
            for l in &present {
                match value(l) {
                    Some(v) => print!(" {} |", fmt(v, metric.digits)),
                    None => print!(" – |"),
                }
            }
            if peers_here {
                let peers: Vec<f64> = present.iter().filter(|l| is_peer(l)).filter_map(|l| value(l)).collect();
                let best = match metric.better {
                    Higher => peers.iter().copied().reduce(f64::max),
                    Lower => peers.iter().copied().reduce(f64::min),
                    Info => None,
                };
                print_ratio(value(&a.ours), best);
            }
            if before_here {
                let earlier = if metric.better == Info { None } else { value(&before) };
                print_ratio(value(&a.ours), earlier);
            }
            println!();
        }
        print!("| rounds (all ok?) |");
        for l in &present {
            let r = rounds(l);
            let ok = r.iter().all(|d| d["ok"].as_bool() == Some(true));
            print!(" {}{} |", r.len(), if ok { "" } else { " (not all ok)" });
        }
        if peers_here {
            print!(" |");
        }
        if before_here {
            print!(" |");
        }
        println!();
    }
    Ok(())
}

/// One ratio cell: ours ÷ the other, `=` when both are zero.
fn print_ratio(ours: Option<f64>, other: Option<f64>) {
    match (ours, other) {
        (Some(o), Some(b)) if b != 0.0 => print!(" {:.2} |", o / b),
        (Some(o), Some(_)) => print!(" {} |", if o == 0.0 { "=" } else { "–" }),
        _ => print!(" |"),
    }
}
