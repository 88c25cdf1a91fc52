//! The trigger that starts a shutdown, and the cause it carries.
//!
//! DIE, SIGINT and SIGTERM call [`Shutdown::trigger`]; the first cause
//! wins. The accept loops and the file store's connections hold a
//! [`ShutdownListener`] and stop when it fires. What then happens to each
//! IRC connection (woken, told who closed the server and why, flushed
//! within the grace period) is `lifecycle`'s part.

use tokio::sync::watch;

/// Why the server is stopping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownCause {
    /// Who asked: an operator's nick and oper name, or the signal's name.
    pub by: String,
    /// Free text given with DIE, or a fixed phrase for signals.
    pub reason: String,
}

/// The trigger side, owned by the server.
#[derive(Clone)]
pub struct Shutdown {
    tx: watch::Sender<Option<ShutdownCause>>,
}

/// The listening side: cheap to clone, one per task that must stop.
#[derive(Clone)]
pub struct ShutdownListener {
    rx: watch::Receiver<Option<ShutdownCause>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        let (tx, _) = watch::channel(None);
        Shutdown { tx }
    }

    /// Starts the shutdown; returns false if it had already started.
    pub fn trigger(&self, cause: ShutdownCause) -> bool {
        self.tx.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(cause);
            true
        })
    }

    /// The cause, once the shutdown has started.
    pub fn cause(&self) -> Option<ShutdownCause> {
        self.tx.borrow().clone()
    }

    pub fn listener(&self) -> ShutdownListener {
        ShutdownListener { rx: self.tx.subscribe() }
    }
}

impl ShutdownListener {
    /// Waits until the shutdown starts and returns its cause.
    pub async fn recv(&mut self) -> ShutdownCause {
        loop {
            if let Some(cause) = self.rx.borrow_and_update().clone() {
                return cause;
            }
            if self.rx.changed().await.is_err() {
                // The server is gone without a cause: treat it as a stop.
                return ShutdownCause { by: "server".into(), reason: "stopped".into() };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_cause_wins_and_late_listeners_see_it() {
        let s = Shutdown::new();
        let mut early = s.listener();
        assert!(s.trigger(ShutdownCause { by: "a".into(), reason: "one".into() }));
        assert!(!s.trigger(ShutdownCause { by: "b".into(), reason: "two".into() }));
        assert_eq!(early.recv().await.by, "a");
        let mut late = s.listener();
        assert_eq!(late.recv().await.reason, "one");
    }
}
