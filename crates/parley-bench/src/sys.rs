//! The load generator's system calls that std does not wrap: the open-file
//! limit, the kernel's clock tick and one socket option. The only module of
//! the crate allowed `unsafe`; everything it offers is safe to call.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// Raises the soft open-file limit to the hard one.
pub fn raise_nofile_limit() -> io::Result<()> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes only into the rlimit it is given, a local.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur >= lim.rlim_max {
        return Ok(());
    }
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: setrlimit only reads the rlimit it is given, a local.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Clock ticks per second, the unit of /proc's CPU times.
pub fn clock_ticks_per_second() -> Option<u64> {
    // SAFETY: sysconf takes a constant and touches no memory of ours.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0)
}

/// Sets `IP_BIND_ADDRESS_NO_PORT`: a socket bound to an address gets its
/// port at connect time, per destination, instead of at bind.
pub fn set_bind_address_no_port(socket: &impl AsFd) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: the descriptor is open while borrowed, and the option value
    // is a c_int that lives across the call, with its size passed along.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_fd().as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
