//! The system calls the client makes that std does not wrap: the terminal's
//! mode (termios), reading one byte from it, and pointing stdin elsewhere
//! for a moment. The only module of the crate allowed `unsafe`; everything
//! it offers is safe to call, and nothing here awaits.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// The settings of a terminal, as `tcgetattr` reads them.
#[derive(Clone, Copy)]
pub struct TermMode(libc::termios);

impl TermMode {
    /// The settings of the terminal on stdin; `None` when stdin is not a
    /// terminal.
    pub fn of_stdin() -> Option<TermMode> {
        // SAFETY: termios is plain data, for which all zeroes is a valid
        // value; tcgetattr writes only into the struct it is given, and we
        // keep it only if the call succeeded.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            (libc::tcgetattr(libc::STDIN_FILENO, &mut t) == 0).then_some(TermMode(t))
        }
    }

    /// These settings for reading a secret: no echo, no line editing, no
    /// signals from Ctrl-C or Ctrl-Z, each byte as it is typed.
    pub fn quiet(&self) -> TermMode {
        let mut t = self.0;
        t.c_lflag &= !(libc::ECHO | libc::ICANON | libc::ISIG | libc::IEXTEN);
        t.c_cc[libc::VMIN] = 1;
        t.c_cc[libc::VTIME] = 0;
        TermMode(t)
    }

    /// Puts these settings into effect on stdin's terminal at once.
    pub fn apply_to_stdin(&self) -> io::Result<()> {
        // SAFETY: `self.0` is a termios that tcgetattr filled in (or a copy
        // of one with flags changed); tcsetattr only reads it.
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.0) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// One byte from stdin, unbuffered (std's `Stdin` would read ahead and keep
/// what the line editor must see next); `None` at end of input.
pub fn read_stdin_byte() -> io::Result<Option<u8>> {
    let mut byte = 0u8;
    // SAFETY: reads at most one byte into a local of one byte.
    let n = unsafe { libc::read(libc::STDIN_FILENO, (&mut byte as *mut u8).cast(), 1) };
    match n {
        n if n < 0 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        _ => Ok(Some(byte)),
    }
}

/// Stdin pointed at `/dev/null` (end of input to every read) until this is
/// dropped; then what stdin was, the terminal, is back as fd 0.
pub struct StdinRedirect {
    saved: OwnedFd,
}

impl StdinRedirect {
    pub fn to_dev_null() -> io::Result<StdinRedirect> {
        let saved = io::stdin().as_fd().try_clone_to_owned()?;
        let null = File::open("/dev/null")?;
        replace_stdin(null.as_fd())?;
        Ok(StdinRedirect { saved })
    }
}

impl Drop for StdinRedirect {
    fn drop(&mut self) {
        let _ = replace_stdin(self.saved.as_fd());
    }
}

/// Makes fd 0 a copy of `with`.
fn replace_stdin(with: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: `with` is an open descriptor for the whole call. dup2 closes
    // fd 0 and reopens it as a copy in one step, so fd 0 stays valid for
    // every other user of stdin (std's `Stdin`, the line editor), which from
    // then on read the new file.
    if unsafe { libc::dup2(with.as_raw_fd(), libc::STDIN_FILENO) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
