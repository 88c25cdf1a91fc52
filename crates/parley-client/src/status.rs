//! Exit codes: the one table that says what each number means, so scripts can
//! rely on them and the README can list them. Every error type in the client
//! maps itself onto one of these.

use crate::command::CommandError;
use crate::files::FileError;
use crate::irc::IrcError;
use std::fmt;
use thiserror::Error;

/// How a run (or one command of a run) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything asked for was done.
    Ok,
    /// Something failed that has no more specific code.
    Failure,
    /// The command line or a typed command was malformed.
    Usage,
    /// The file or nick asked for does not exist.
    NotFound,
    /// A name is taken (file on the server, local file, nickname) and was
    /// not replaced.
    Refused,
    /// Wrong admin credentials, not an operator, or the file store refused
    /// the session token.
    Auth,
    /// Could not connect, or the server went away.
    ConnectionLost,
    /// A transfer did not match its SHA-256 digest.
    Integrity,
    /// Cancelled with Ctrl-C.
    Interrupted,
}

impl Status {
    pub fn code(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::Failure => 1,
            Status::Usage => 2,
            Status::NotFound => 3,
            Status::Refused => 4,
            Status::Auth => 5,
            Status::ConnectionLost => 6,
            Status::Integrity => 7,
            Status::Interrupted => 130,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// Why a command did not do what was asked: the error of the layer that
/// failed, or a decision (cancelled, refused).
#[derive(Debug, Error)]
pub enum ActionError {
    #[error(transparent)]
    Irc(#[from] IrcError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("{0}")]
    Usage(String),
    /// Someone said no (overwrite? no) or a script did not allow it.
    #[error("{0}")]
    Refused(String),
    #[error("cancelled")]
    Cancelled,
}

impl ActionError {
    pub fn status(&self) -> Status {
        match self {
            ActionError::Irc(e) => e.status(),
            ActionError::File(e) => e.status(),
            ActionError::Command(_) | ActionError::Usage(_) => Status::Usage,
            ActionError::Refused(_) => Status::Refused,
            ActionError::Cancelled => Status::Interrupted,
        }
    }
}

/// Keeps the first failure of a run that goes on after failures (pipe mode).
#[derive(Debug, Default)]
pub struct FirstFailure(Option<Status>);

impl FirstFailure {
    pub fn record(&mut self, status: Status) {
        if status != Status::Ok && self.0.is_none() {
            self.0 = Some(status);
        }
    }

    pub fn status(&self) -> Status {
        self.0.unwrap_or(Status::Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_failure_wins() {
        let mut f = FirstFailure::default();
        assert_eq!(f.status(), Status::Ok);
        f.record(Status::Ok);
        f.record(Status::NotFound);
        f.record(Status::Auth);
        assert_eq!(f.status(), Status::NotFound);
    }
}
