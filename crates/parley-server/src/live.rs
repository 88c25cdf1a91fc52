//! A value that a reload replaces while everyone keeps reading it: the
//! configuration (`ServerState::config`, the file store's copy), the
//! ISUPPORT tokens derived from it, history's settings.
//!
//! Each generation is leaked: a reader gets a `&'static` reference, which
//! it may keep across an `.await` or hand to another thread, and which
//! stays valid (the old values, consistent among themselves) however many
//! reloads happen meanwhile. A reload is an operator's act, and a
//! configuration a few kilobytes, so what is leaked stays small. Reading is
//! one `arc_swap` load (no lock, no shared reference count to contend on).
//!
//! `Live<T>` dereferences to the current `T`, so `server.config.limits`
//! reads like a plain field. Each such read may see a newer generation
//! than the last: code that needs several values from one generation takes
//! it once (`let config = server.config.current();`).
//!
//! Never holds a lock, never frees a generation.

use arc_swap::ArcSwap;
use std::sync::Arc;

/// The current generation of a `T` that reloads replace.
pub struct Live<T: 'static> {
    current: ArcSwap<&'static T>,
}

impl<T: Send + Sync + 'static> Live<T> {
    pub fn new(value: T) -> Live<T> {
        Live { current: ArcSwap::from_pointee(leak(value)) }
    }

    /// The current generation.
    pub fn current(&self) -> &'static T {
        **self.current.load()
    }

    /// Makes `value` the current generation; readers holding the old one
    /// keep it.
    pub fn replace(&self, value: T) {
        self.current.store(Arc::new(leak(value)));
    }
}

fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

impl<T: Send + Sync + 'static> std::ops::Deref for Live<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.current()
    }
}

impl<T: std::fmt::Debug + Send + Sync + 'static> std::fmt::Debug for Live<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.current().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_keeps_its_generation_across_a_replace() {
        let live = Live::new(vec![1, 2]);
        let old = live.current();
        live.replace(vec![3]);
        assert_eq!(old, &vec![1, 2]);
        assert_eq!(*live, vec![3]);
    }
}
