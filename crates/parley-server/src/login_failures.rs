//! Failed logins (OPER, and account logins), limited per address and in
//! total over a sliding window, so a password cannot be guessed at speed
//! from one address or from many.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct LoginFailures {
    recent: Mutex<Recent>,
}

struct Recent {
    by_ip: HashMap<IpAddr, VecDeque<Instant>>,
    all: VecDeque<Instant>,
    per_ip: u32,
    global: u32,
    window: Duration,
}

impl LoginFailures {
    /// At most `per_ip` failures from one address and `global` in all
    /// within `window`.
    pub fn new(per_ip: u32, global: u32, window: Duration) -> LoginFailures {
        let recent = Recent { by_ip: HashMap::new(), all: VecDeque::new(), per_ip, global, window };
        LoginFailures { recent: Mutex::new(recent) }
    }

    /// New limits (a reload); the failures seen so far still count.
    pub fn set_limits(&self, per_ip: u32, global: u32, window: Duration) {
        let mut f = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        (f.per_ip, f.global, f.window) = (per_ip, global, window);
    }

    /// Seconds until `ip` may try again, if it is over a limit now.
    pub fn limited(&self, ip: IpAddr) -> Option<u64> {
        let now = Instant::now();
        let mut f = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let (window, global, per_ip) = (f.window, f.global, f.per_ip);
        let prune = |q: &mut VecDeque<Instant>| {
            while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
                q.pop_front();
            }
        };
        prune(&mut f.all);
        let mut wait = None;
        if f.all.len() >= global as usize {
            wait = f.all.front().copied();
        }
        if let Some(q) = f.by_ip.get_mut(&ip) {
            prune(q);
            if q.len() >= per_ip as usize {
                wait = q.front().copied().max(wait);
            }
            if q.is_empty() {
                f.by_ip.remove(&ip);
            }
        }
        wait.map(|oldest| (window.saturating_sub(now.duration_since(oldest))).as_secs().max(1))
    }

    /// Counts a failure from `ip`.
    pub fn note(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut f = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        f.all.push_back(now);
        f.by_ip.entry(ip).or_default().push_back(now);
        // Bound memory under a spray from many addresses.
        if f.by_ip.len() > 10_000 {
            let window = f.window;
            f.by_ip.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
    }
}
