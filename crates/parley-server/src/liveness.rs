//! A connection's liveness deadline (registration timeout, when to PING,
//! ping timeout), shared between the connection's task, which publishes
//! it, and the ticker, which notices once a second that it has passed.
//! Neither side holds a timer: an idle connection costs the ticker one
//! atomic.

use std::sync::atomic::{AtomicU64, Ordering};

/// The top bit: the ticker found the deadline passed and the task has not
/// looked yet.
const DUE: u64 = 1 << 63;
/// No deadline published.
const NONE: u64 = DUE - 1;

/// The deadline in milliseconds on the ticker's clock (`ticker::millis`)
/// in the low 63 bits, and the [`DUE`] flag: one word per connection.
pub struct Liveness(AtomicU64);

impl Default for Liveness {
    fn default() -> Self {
        // No deadline: the latest there is, not due.
        Liveness(AtomicU64::new(NONE))
    }
}

impl Liveness {
    /// Publishes the next deadline (a finding not yet taken stays).
    pub fn set(&self, at_ms: u64) {
        let at = at_ms.min(NONE);
        let _ = self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some((v & DUE) | at));
    }

    /// For the ticker: true the first time it finds the deadline passed,
    /// when the task must be woken.
    pub fn check(&self, now_ms: u64) -> bool {
        let v = self.0.load(Ordering::Relaxed);
        v & DUE == 0 && v != NONE && v <= now_ms && self.0.fetch_or(DUE, Ordering::AcqRel) & DUE == 0
    }

    /// For the task: whether the ticker found the deadline passed (once).
    pub fn take_due(&self) -> bool {
        self.0.load(Ordering::Relaxed) & DUE != 0 && self.0.fetch_and(!DUE, Ordering::AcqRel) & DUE != 0
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
        // A new deadline does not lose the finding.
        l.set(5_000);
        assert!(l.take_due());
        assert!(!l.take_due());
        assert!(!l.check(4_999));
        assert!(l.check(5_000));
    }
}
