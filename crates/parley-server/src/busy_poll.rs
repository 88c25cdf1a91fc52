//! Adaptive busy polling for the single-threaded runtime: after input, the
//! runtime keeps polling its sockets for a short while instead of sleeping.
//!
//! On a virtual machine a sleeping thread is expensive to wake: the vCPU
//! halts, and the next packet costs the host an interrupt and a re-entry
//! before the thread runs again. A client that answers within a few tens of
//! microseconds (a conversation, a bot, the benchmark's ping-pong) meets a
//! server that has just gone to sleep every time. So when the runtime runs
//! out of work shortly after input, it polls the sockets again
//! (`epoll_wait` with a zero timeout) rather than blocking, for up to a
//! *window* since the last input.
//!
//! The window adapts the way KVM's halt polling does: when the runtime had
//! to sleep and the next wake-up came within `limits.busy_poll_us` of the
//! last input, a longer spin would have caught it, so the window doubles
//! (up to that limit); when the wake-up came later, spinning would only
//! have burnt CPU, so it halves, down to nothing. A server whose clients
//! pause longer than the limit (an idle one, or a channel with a message
//! every few milliseconds) never spins; a server handed input every
//! hundred microseconds keeps one core polling, which is what buys the
//! latency. Measured in docs/BENCHMARKS.md.
//!
//! Only the single-threaded runtime spins: in tokio's multi-threaded one
//! whichever idle worker parks first holds the I/O driver and blocks in
//! `epoll_wait`, so a worker made to spin could burn a core polling nothing
//! while another sleeps on the sockets.
//!
//! How: tokio calls [`configure`]'s park hook each time the runtime is about
//! to sleep. To spin, the hook wakes the [`spinner`] task, and tokio, seeing
//! work, polls the driver without blocking instead of sleeping; the spinner
//! does nothing and the runtime comes back to the hook. Connections count
//! their reads with [`note_input`], a thread-local increment.

use std::cell::{Cell, RefCell};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// The first window tried after a wake-up that a spin would have caught.
const FIRST: Duration = Duration::from_micros(10);

thread_local! {
    /// Reads that brought bytes, on this thread.
    static INPUT: Cell<u64> = const { Cell::new(0) };
    static STATE: RefCell<State> = const { RefCell::new(State::new()) };
}

/// The runtime thread's spin state (only its hooks and spinner touch it).
struct State {
    /// How long to keep polling after the last input.
    window: Duration,
    /// `INPUT` as of the last park hook.
    seen: u64,
    /// Polling goes on until then (set from the last input seen).
    spin_until: Option<Instant>,
    /// When the runtime last went to sleep for real.
    slept_at: Option<Instant>,
    /// The spinner task, waiting to be woken for one more polling turn.
    spinner: Option<Waker>,
}

impl State {
    const fn new() -> State {
        State { window: Duration::ZERO, seen: 0, spin_until: None, slept_at: None, spinner: None }
    }

    /// Whether the runtime, out of work at `now` with `input` reads counted
    /// so far, should poll once more rather than sleep.
    fn spin(&mut self, now: Instant, input: u64) -> bool {
        if input != self.seen {
            self.seen = input;
            self.spin_until = (!self.window.is_zero()).then(|| now + self.window);
        }
        match self.spin_until {
            Some(until) if now < until => true,
            _ => {
                self.spin_until = None;
                false
            }
        }
    }

    /// After a real sleep from `slept_at` to `now`: adapt the window to how
    /// long the pause since the last input really was.
    fn woke(&mut self, slept_at: Instant, now: Instant, limit: Duration) {
        let pause = self.window + now.saturating_duration_since(slept_at);
        self.window = if pause <= limit {
            (self.window * 2).clamp(FIRST, limit)
        } else if self.window / 2 >= FIRST {
            self.window / 2
        } else {
            Duration::ZERO
        };
    }
}

/// tokio's park hook: wake the spinner for one more polling turn, or note
/// that the runtime goes to sleep.
fn before_park() {
    STATE.with_borrow_mut(|s| {
        let now = Instant::now();
        if s.spin(now, INPUT.get()) {
            if let Some(spinner) = s.spinner.take() {
                spinner.wake();
                return;
            }
        }
        s.slept_at = Some(now);
    })
}

/// tokio's unpark hook: after a real sleep, adapt the window.
fn after_unpark(limit: Duration) {
    STATE.with_borrow_mut(|s| {
        if let Some(slept_at) = s.slept_at.take() {
            s.woke(slept_at, Instant::now(), limit);
        }
    })
}

/// Counts a read that brought bytes (a thread-local increment).
#[inline]
pub fn note_input() {
    INPUT.set(INPUT.get().wrapping_add(1));
}

/// Installs the park hooks on a single-threaded runtime's builder; a
/// `limit` of zero leaves the runtime sleeping whenever it is idle. Returns
/// whether it installed them: then the runtime must also run [`spinner`].
pub fn configure(builder: &mut tokio::runtime::Builder, limit: Duration) -> bool {
    if limit.is_zero() {
        return false;
    }
    builder.on_thread_park(before_park).on_thread_unpark(move || after_unpark(limit));
    true
}

/// The task the park hook wakes for each extra polling turn; never ends.
/// Spawn it once on the runtime that [`configure`] set up.
pub async fn spinner() {
    std::future::poll_fn(|cx| {
        STATE.with_borrow_mut(|s| match &s.spinner {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.spinner = Some(cx.waker().clone()),
        });
        Poll::<()>::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_micros(200);

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn an_idle_runtime_sleeps_and_long_pauses_never_start_a_spin() {
        let mut s = State::new();
        let t = Instant::now();
        assert!(!s.spin(t, 1), "no window yet: input alone does not spin");
        s.woke(t, t + Duration::from_secs(5), LIMIT);
        assert_eq!(s.window, Duration::ZERO);
        assert!(!s.spin(t + Duration::from_secs(5), 2));
    }

    #[test]
    fn short_pauses_grow_the_window_up_to_the_limit_and_a_spin_lasts_the_window_after_input() {
        let mut s = State::new();
        let mut t = Instant::now();
        let mut windows = Vec::new();
        for input in 1..=6 {
            // Input, out of work: spin for the window, then sleep; the next
            // input comes 100 µs after the last one.
            while s.spin(t, input) {
                t += us(1);
            }
            let slept_at = t;
            t += us(100).saturating_sub(s.window);
            s.woke(slept_at, t, LIMIT);
            windows.push(s.window.as_micros());
        }
        assert_eq!(windows, [10, 20, 40, 80, 160, 200]);
        // Now a pause of 100 µs is caught by the spin: no sleep at all.
        let input_at = t;
        assert!(s.spin(t, 7));
        assert!(s.spin(input_at + us(100), 7), "still within 200 µs of the input");
        assert!(!s.spin(input_at + us(200), 7), "the window has passed");
        assert!(!s.spin(input_at + us(201), 7), "no new input, no new window");
    }

    #[test]
    fn pauses_longer_than_the_limit_halve_the_window_down_to_nothing() {
        let mut s = State { window: LIMIT, ..State::new() };
        let t = Instant::now();
        let mut windows = Vec::new();
        for _ in 0..6 {
            s.woke(t, t + Duration::from_millis(5), LIMIT);
            windows.push(s.window.as_micros());
        }
        assert_eq!(windows, [100, 50, 25, 12, 0, 0]);
    }
}
