//! [`ActionError`]: why one command (typed, piped or one-shot) did not do
//! what was asked, as the error of the layer that failed or a decision
//! (cancelled, refused), and the exit status that stands for it.

use crate::command::CommandError;
use crate::files::FileError;
use crate::irc::IrcError;
use crate::status::Status;
use thiserror::Error;

/// Why a command did not do what was asked.
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
