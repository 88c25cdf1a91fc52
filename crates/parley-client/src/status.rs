//! Exit codes: the one table that says what each number means, so scripts can
//! rely on them and the README can list them. Every error type in the client
//! maps itself onto one of these. A leaf: it knows no other module, they all
//! know it.

use std::fmt;

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
