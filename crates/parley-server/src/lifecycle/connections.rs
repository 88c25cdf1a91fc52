//! The set of open IRC connections: how a shutdown reaches each one, how
//! the ticker sweeps their liveness, and how many have not registered.

use crate::outbound::{Client, ClientId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Every open IRC connection.
pub struct Connections {
    /// Weak: a connection's task owns its client; this only reaches it.
    open: Mutex<HashMap<ClientId, Weak<Client>>>,
    /// Connections that have not registered yet (LUSERS 253).
    unregistered: AtomicUsize,
    next_id: AtomicU64,
}

impl Default for Connections {
    fn default() -> Self {
        Connections { open: Mutex::default(), unregistered: AtomicUsize::new(0), next_id: AtomicU64::new(1) }
    }
}

impl Connections {
    /// A fresh id for a new client. Ids are never reused.
    pub fn next_id(&self) -> ClientId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Lists a new, not yet registered connection.
    pub fn open(&self, client: &Arc<Client>) {
        self.unregistered.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(client.id, Arc::downgrade(client));
    }

    /// The connection has registered.
    pub fn registered(&self) {
        self.unregistered.fetch_sub(1, Ordering::Relaxed);
    }

    /// Takes a closed connection off the list.
    pub fn closed(&self, id: ClientId, was_registered: bool) {
        if !was_registered {
            self.unregistered.fetch_sub(1, Ordering::Relaxed);
        }
        self.lock().remove(&id);
    }

    pub fn unregistered(&self) -> usize {
        self.unregistered.load(Ordering::Relaxed)
    }

    /// Runs `f` for every open connection's client (the ticker's sweep).
    pub fn for_each(&self, mut f: impl FnMut(&Client)) {
        for client in self.lock().values().filter_map(Weak::upgrade) {
            f(&client);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ClientId, Weak<Client>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}
