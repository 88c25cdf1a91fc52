//! A connection's liveness deadline (registration timeout, when to PING,
//! ping timeout), shared between the connection's task, which publishes
//! it, and the ticker, which notices once a second that it has passed.
//! Neither side holds a timer: an idle connection costs the ticker two
//! atomics.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub struct Liveness {
    /// On the ticker's clock (`ticker::millis`); `u64::MAX` for none.
    deadline_ms: AtomicU64,
    /// Set by the ticker once the deadline has passed; taken by the task.
    due: AtomicBool,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness { deadline_ms: AtomicU64::new(u64::MAX), due: AtomicBool::new(false) }
    }
}

impl Liveness {
    /// Publishes the next deadline.
    pub fn set(&self, at_ms: u64) {
        self.deadline_ms.store(at_ms, Ordering::Relaxed);
    }

    /// For the ticker: true the first time it finds the deadline passed,
    /// when the task must be woken.
    pub fn check(&self, now_ms: u64) -> bool {
        self.deadline_ms.load(Ordering::Relaxed) <= now_ms && !self.due.swap(true, Ordering::AcqRel)
    }

    /// For the task: whether the ticker found the deadline passed (once).
    pub fn take_due(&self) -> bool {
        self.due.load(Ordering::Relaxed) && self.due.swap(false, Ordering::AcqRel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passed_deadline_is_found_once() {
        let l = Liveness::default();
        assert!(!l.check(u64::MAX - 1), "no deadline published");
        l.set(1_000);
        assert!(!l.check(999));
        assert!(l.check(1_000));
        assert!(!l.check(1_001), "already found");
        assert!(l.take_due());
        assert!(!l.take_due());
    }
}
