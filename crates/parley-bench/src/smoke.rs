//! `ircload smoke`: every scenario at a small size against one server, in
//! a few seconds. Fails (exit 1) if any scenario loses or reorders a
//! message, fails to register or join someone, or errors. Meant for CI;
//! the numbers it prints are not benchmarks.

use crate::{fanout, idle, lobby, pingpong, storm, Target};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Members of the smoke fan-out and the smoke lobby.
    #[arg(long, default_value_t = 300)]
    pub users: usize,
}

pub async fn run(a: &Args) -> anyhow::Result<bool> {
    let t = |variant: &str| Target {
        variant: format!("smoke{}", if variant.is_empty() { "" } else { "-" }) + variant,
        register_timeout: a.target.register_timeout.min(20.0),
        ..a.target.clone()
    };
    let mut all_ok = true;
    let reports = [
        pingpong::run(&pingpong::Args {
            target: t(""),
            count: 500,
            warmup: 50,
            nick_prefix: "sp".into(),
            others: Vec::new(),
            turn: 100,
        })
        .await?,
        fanout::run(&fanout::Args {
            target: t(""),
            members: (a.users / 6).max(2),
            senders: (a.users / 60).max(1),
            rate: 0.0,
            window: 100,
            channel: "#smoke".into(),
            text_bytes: 64,
            warmup: 0.5,
            duration: 1.5,
            drain: 10.0,
            buf: 16 * 1024,
            nick_prefix: "sf".into(),
        })
        .await?,
        idle::run(&idle::Args {
            target: t(""),
            users: a.users,
            channels: 10,
            settle: 0.5,
            buf: 2048,
            nick_prefix: "si".into(),
        })
        .await?,
        storm::run(&storm::Args { target: t(""), in_flight: 20, duration: 1.0, nick_prefix: "ss".into() }).await?,
        lobby::run(&lobby::Args {
            target: t(""),
            users: a.users,
            channel: "#lobby".into(),
            join_deadline: 20.0,
            message_deadline: 10.0,
            buf: 8192,
            nick_prefix: "sl".into(),
        })
        .await?,
    ];
    for r in &reports {
        r.emit(&t(""))?;
        all_ok &= r.ok;
    }
    eprintln!(
        "smoke: {} passed, {} failed",
        reports.iter().filter(|r| r.ok).count(),
        reports.iter().filter(|r| !r.ok).count()
    );
    Ok(all_ok)
}
