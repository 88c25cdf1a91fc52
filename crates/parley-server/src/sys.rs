//! The system calls `parleyd` makes that the standard library does not
//! wrap: a file system's free space (`statvfs`), glibc's allocator knobs
//! (`mallopt`, `malloc_trim`), the page size, copying a file to a socket
//! in the kernel (`sendfile`) and starting a file's write-back early
//! (`sync_file_range`); and what `/proc` says of this process. Each is a safe function around one `unsafe`
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

/// Copies up to `count` bytes of `file`, from `*offset`, to `socket`
/// inside the kernel (no copy through user space), advancing `*offset` by
/// what was sent. A non-blocking socket that is full gives `WouldBlock`.
#[cfg(target_os = "linux")]
pub fn sendfile(
    socket: std::os::fd::BorrowedFd<'_>,
    file: std::os::fd::BorrowedFd<'_>,
    offset: &mut u64,
    count: usize,
) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let mut off = libc::off64_t::try_from(*offset).map_err(io::Error::other)?;
    // SAFETY: both descriptors are borrowed, so open for the whole call;
    // `off` is a live, writable off64_t that the kernel only updates.
    let sent = unsafe { libc::sendfile64(socket.as_raw_fd(), file.as_raw_fd(), &mut off, count) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    *offset = off as u64;
    Ok(sent as usize)
}

/// Asks the kernel to start writing `len` bytes of `file` from `offset`
/// to disk now, without waiting (`SYNC_FILE_RANGE_WRITE`), so that a later
/// `fsync` has little left to do. Elsewhere does nothing: the `fsync`
/// alone is correct, only slower.
pub fn start_writeback(file: &std::fs::File, offset: u64, len: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let off = libc::off64_t::try_from(offset).map_err(io::Error::other)?;
        let len = libc::off64_t::try_from(len).map_err(io::Error::other)?;
        // SAFETY: `file` is borrowed, so its descriptor is open for the call,
        // which takes no pointers.
        let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), off, len, libc::SYNC_FILE_RANGE_WRITE) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
    Ok(())
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

    #[cfg(target_os = "linux")]
    #[test]
    fn sendfile_copies_the_asked_range_and_advances_the_offset() {
        use std::io::Read;
        use std::os::fd::AsFd;
        let dir = std::env::temp_dir().join(format!("parley-sys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("blob");
        std::fs::write(&path, b"0123456789").unwrap();
        let file = std::fs::File::open(&path).unwrap();
        start_writeback(&file, 0, 10).unwrap();
        let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut offset = 3;
        let sent = sendfile(b.as_fd(), file.as_fd(), &mut offset, 4).unwrap();
        assert_eq!((sent, offset), (4, 7));
        drop(b);
        let mut got = Vec::new();
        a.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"3456");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn allocator_calls_are_harmless_to_repeat() {
        limit_malloc_arenas(2);
        malloc_trim();
        malloc_trim();
    }
}
