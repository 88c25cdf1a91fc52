//! The system calls `parleyd` makes that the standard library does not
//! wrap: a file system's free space (`statvfs`) and glibc's allocator knobs
//! (`mallopt`, `malloc_trim`), the page size; and what `/proc` says of
//! this process. Each is a safe function around one `unsafe`
//! block that says why it is sound.
//!
//! This is the only module of the crate allowed `unsafe` (the workspace
//! denies it everywhere else). Nothing here is `async`, so no unsafe block
//! can be held across an `.await`; callers decide policy (`memory.rs`, the
//! file store), this module only makes the calls.

#![allow(unsafe_code)]

use std::io;
use std::path::Path;

/// Bytes an unprivileged user may still write on the file system holding
/// `path` (`statvfs`'s `f_bavail * f_frsize`).
#[cfg(unix)]
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: `statvfs` is a plain C struct of integers, for which all
    // zeroes is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call and
    // `st` a writable statvfs; the call only writes into `st`.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Where `statvfs` is missing the store is never short of space.
#[cfg(not(unix))]
pub fn free_bytes(_path: &Path) -> io::Result<u64> {
    Ok(u64::MAX)
}

/// Caps glibc's malloc arenas at `max`; elsewhere does nothing. Arenas
/// made before the call stay, so call it before other threads start.
pub fn limit_malloc_arenas(max: i32) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes no pointers and changes the setting under the
    // allocator's own lock. glibc marks it unsafe only while malloc first
    // initialises itself, which has happened before `main` (the Rust
    // runtime allocates first). A refused value returns 0, ignored here.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, max);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = max;
}

/// Hands glibc's free heap pages back to the kernel; elsewhere does
/// nothing.
pub fn malloc_trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers, is thread-safe and only
    // releases memory no allocation uses.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// This process's resident memory in bytes (`/proc/self/statm`), on Linux.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    #[cfg(unix)]
    // SAFETY: sysconf takes no pointers and only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    #[cfg(not(unix))]
    let page = 4096;
    Some(pages * u64::try_from(page).ok()?)
}

/// How many file descriptors this process has open (`/proc/self/fd`), on Linux.
pub fn open_files() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temp_dir_has_some_free_space() {
        let dir = std::env::temp_dir();
        assert!(free_bytes(&dir).unwrap() > 0);
    }

    #[test]
    fn a_missing_path_is_an_error() {
        let err = free_bytes(Path::new("/nonexistent/parley/sys/test")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn allocator_calls_are_harmless_to_repeat() {
        limit_malloc_arenas(2);
        malloc_trim();
        malloc_trim();
    }
}
