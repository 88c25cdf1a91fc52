//! Which other nodes are alive: each is heard from (heartbeats, events)
//! four times per `cluster.node_timeout_secs`; one silent for the timeout
//! (less the sweep's interval, so the sweep that finds it falls within the
//! timeout) is dead.

use super::wire::Origin;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What hearing from a node means.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// Not known (just started, or back after being taken for dead).
    New,
    /// Known, with an older incarnation: it restarted.
    Restarted,
    Known,
    /// From an incarnation older than the one known: ignore it.
    Stale,
}

pub struct Nodes {
    timeout: Duration,
    /// Node → (incarnation, last heard).
    map: Mutex<HashMap<String, (u64, Instant)>>,
}

impl Nodes {
    pub fn new(timeout: Duration) -> Nodes {
        Nodes { timeout, map: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, Instant)>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn seen(&self, from: &Origin, now: Instant) -> Seen {
        let mut map = self.lock();
        match map.get_mut(&from.node) {
            None => {
                map.insert(from.node.clone(), (from.inc, now));
                Seen::New
            }
            Some((inc, _)) if *inc > from.inc => Seen::Stale,
            Some((inc, last)) => {
                let restarted = *inc < from.inc;
                *inc = from.inc;
                *last = now;
                if restarted {
                    Seen::Restarted
                } else {
                    Seen::Known
                }
            }
        }
    }

    /// Whether `node` in incarnation `inc` has been heard from within the
    /// timeout.
    pub fn alive(&self, node: &str, inc: u64, now: Instant) -> bool {
        self.lock().get(node).is_some_and(|(i, last)| *i == inc && now.duration_since(*last) < self.timeout)
    }

    /// How many nodes have been heard from within the timeout.
    pub fn alive_count(&self, now: Instant) -> usize {
        self.lock().values().filter(|(_, last)| now.duration_since(*last) < self.timeout).count()
    }

    /// The incarnation of `node` last heard, if it is known.
    pub fn incarnation(&self, node: &str) -> Option<u64> {
        self.lock().get(node).map(|(inc, _)| *inc)
    }

    /// Forgets and returns the nodes silent for the timeout.
    pub fn sweep(&self, now: Instant) -> Vec<String> {
        let mut map = self.lock();
        let dead: Vec<String> = map
            .iter()
            .filter(|(_, (_, last))| now.duration_since(*last) >= self.timeout)
            .map(|(n, _)| n.clone())
            .collect();
        for node in &dead {
            map.remove(node);
        }
        dead
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_new_then_known_restarted_and_dead_after_the_timeout() {
        let nodes = Nodes::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let o = |inc| Origin { node: "b".into(), inc };
        assert_eq!(nodes.seen(&o(1), t0), Seen::New);
        assert_eq!(nodes.seen(&o(1), t0), Seen::Known);
        assert_eq!(nodes.seen(&o(2), t0), Seen::Restarted);
        assert_eq!(nodes.seen(&o(1), t0), Seen::Stale);
        assert!(nodes.alive("b", 2, t0) && !nodes.alive("b", 1, t0));
        assert!(nodes.sweep(t0 + Duration::from_secs(9)).is_empty());
        assert_eq!(nodes.sweep(t0 + Duration::from_secs(10)), ["b"]);
        assert!(!nodes.alive("b", 2, t0));
    }
}
