//! IRCv3 Strict Transport Security, the client's side: a plain-text
//! connection whose server offers `sts=port=N` is dropped and made again
//! over TLS on port N (never back to plain text if that fails), and a
//! policy the server gives over TLS (`sts=duration=S`) is remembered per
//! host in `$XDG_STATE_HOME/parley/sts`, so the next connection to that
//! host goes to TLS at once. One line per host: `host port expiry`.

use std::path::PathBuf;

fn file() -> Option<PathBuf> {
    crate::paths::history_file().and_then(|h| h.parent().map(|dir| dir.join("sts")))
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn read() -> Vec<(String, u16, u64)> {
    let Some(text) = file().and_then(|f| std::fs::read_to_string(f).ok()) else { return Vec::new() };
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.parse().ok()?, w.next()?.parse().ok()?))
        })
        .collect()
}

/// The TLS port a remembered, unexpired policy names for `host`.
pub fn lookup(host: &str) -> Option<u16> {
    let now = now();
    read().into_iter().find(|(h, _, until)| h.eq_ignore_ascii_case(host) && *until > now).map(|(_, port, _)| port)
}

/// Remembers (or, with a duration of 0, forgets) `host`'s policy.
pub fn remember(host: &str, port: u16, duration_secs: u64) {
    let Some(path) = file() else { return };
    let now = now();
    let mut policies: Vec<_> =
        read().into_iter().filter(|(h, _, until)| !h.eq_ignore_ascii_case(host) && *until > now).collect();
    if duration_secs > 0 {
        policies.push((host.to_ascii_lowercase(), port, now.saturating_add(duration_secs)));
    }
    let text: String = policies.iter().map(|(h, p, u)| format!("{h} {p} {u}\n")).collect();
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(path, text);
}

/// The `duration` of an STS policy value (`duration=86400,port=6697`).
pub fn duration(policy: &str) -> Option<u64> {
    policy.split(',').find_map(|kv| kv.strip_prefix("duration=")).and_then(|d| d.parse().ok())
}
