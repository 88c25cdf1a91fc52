//! Connection limits, in total and per address: a connection over a limit
//! is refused before it reaches anything else. A reload may change the
//! limits; connections already open stay.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Counts open connections, in total and per address.
pub struct ConnectionLimits {
    total: AtomicUsize,
    per_ip: AtomicUsize,
    counts: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One admitted connection; releases its place when dropped.
pub struct Slot {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl ConnectionLimits {
    pub fn new(total: usize, per_ip: usize) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits {
            total: AtomicUsize::new(total),
            per_ip: AtomicUsize::new(per_ip),
            counts: Mutex::new((0, HashMap::new())),
        })
    }

    /// New limits for the connections admitted from now on.
    pub fn set(&self, total: usize, per_ip: usize) {
        self.total.store(total, Ordering::Relaxed);
        self.per_ip.store(per_ip, Ordering::Relaxed);
    }

    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, &'static str> {
        let mut guard = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let (total, by_ip) = &mut *guard;
        if *total >= self.total.load(Ordering::Relaxed) {
            return Err("Server is full");
        }
        let n = by_ip.entry(ip).or_insert(0);
        if *n >= self.per_ip.load(Ordering::Relaxed) {
            return Err("Too many connections from your address");
        }
        *n += 1;
        *total += 1;
        Ok(Slot { limits: self.clone(), ip })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut guard = self.limits.counts.lock().unwrap_or_else(|p| p.into_inner());
        let (total, by_ip) = &mut *guard;
        *total -= 1;
        if let Some(n) = by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                by_ip.remove(&self.ip);
            }
        }
    }
}
