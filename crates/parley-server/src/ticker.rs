//! The server's once-a-second housekeeping, on a thread of its own: the
//! connections' liveness deadlines, the activity log's write and sync, and
//! giving free memory back to the OS.
//!
//! Liveness (registration timeout, when to PING, ping timeout) is watched
//! here rather than by a timer in every connection task: each connection
//! publishes its next deadline in its [`Client`] (only when it must come
//! earlier; input does not move it), and the tick wakes the tasks whose
//! deadline has passed, which then look at their real deadline. So the
//! runtime's timer wheel is empty while connections only talk, and a
//! message costs no timer work at all (docs/BENCHMARKS.md, findings).
//! Deadlines are seconds apart, so a tick's
//! granularity is enough; the flood throttle, which paces a client within
//! the second, keeps a tokio timer, armed only while it holds input back.
//!
//! [`Client`]: crate::outbound::Client

use crate::server::ServerState;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the housekeeping runs.
const TICK: Duration = Duration::from_secs(1);

/// The housekeeping thread; [`stop`](Ticker::stop) ends it.
pub struct Ticker {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Ticker {
    pub fn start(state: Arc<ServerState>) -> std::io::Result<Ticker> {
        // The clock's origin is fixed before any deadline is published.
        origin();
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new().name("parley-ticker".into()).spawn(move || {
            let mut seconds = 0u64;
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                sweep(&state, millis(Instant::now()));
                // Blocks on the disk; the connections' threads never do.
                state.log.flush();
                seconds += 1;
                let trim_every = state.config.limits.memory_trim_secs;
                if trim_every > 0 && seconds >= trim_every {
                    seconds = 0;
                    crate::memory::trim();
                }
            }
        })?;
        Ok(Ticker { stop, thread })
    }

    /// Ends the thread after the tick in progress, if any.
    pub fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

/// Wakes every connection whose liveness deadline has passed.
fn sweep(state: &ServerState, now_ms: u64) {
    state.connections.for_each(|client| client.tick(now_ms));
}

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// `at` on the ticker's clock: milliseconds since the server started,
/// rounded up, so a deadline is never seen as passed before it has.
pub fn millis(at: Instant) -> u64 {
    let since = at.saturating_duration_since(origin());
    u64::try_from(since.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_up_and_grow_with_time() {
        let start = origin();
        assert_eq!(millis(start), 0);
        assert_eq!(millis(start + Duration::from_nanos(1)), 1);
        assert_eq!(millis(start + Duration::from_millis(1500)), 1500);
        assert_eq!(millis(start + Duration::from_micros(1_500_001)), 1501);
        // Before the origin counts as the origin.
        assert_eq!(millis(start.checked_sub(Duration::from_secs(1)).unwrap_or(start)), 0);
    }
}
