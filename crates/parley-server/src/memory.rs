//! Keeping the resident memory of many idle connections low.
//!
//! Every registration and every burst of traffic allocates and frees short
//! buffers between long-lived small allocations (users, channel entries), and
//! glibc's allocator keeps the freed space (and one arena per thread) mapped.
//! That is most of an idle connection's resident size (docs/BENCHMARKS.md).
//! Two glibc knobs fix it: at most two arenas, and a periodic `malloc_trim`,
//! which hands free pages back to the kernel. Elsewhere these are no-ops.

/// Called once at start, before the runtime's threads exist.
pub fn configure() {
    crate::sys::limit_malloc_arenas(2);
}

/// Returns free heap pages to the operating system.
pub fn trim() {
    crate::sys::malloc_trim();
}
