//! Why a connection ends, as one enum: the text goes into the client's
//! closing `ERROR` line and the `QUIT` others see.

use crate::shutdown::ShutdownCause;
use std::borrow::Cow;

/// Why a connection ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The client left: QUIT (with its reason), end of stream, read error.
    Left(String),
    /// It did not read fast enough: its send queue passed `limits.sendq_bytes`.
    SendQExceeded,
    /// It sent faster than the flood limit for longer than `limits.recvq_bytes` allows.
    ExcessFlood,
    RegistrationTimeout,
    /// It did not answer a PING within `secs`.
    PingTimeout {
        secs: u64,
    },
    /// Its socket failed.
    WriteError,
    /// An operator's KILL: who (nick) and why. Boxed, as is the shutdown's
    /// cause, so the reason every client's queue keeps room for stays the
    /// size of one string.
    Killed(Box<(String, String)>),
    /// The server is stopping.
    Shutdown(Box<ShutdownCause>),
}

impl CloseReason {
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            CloseReason::Left(text) => Cow::Borrowed(text),
            CloseReason::SendQExceeded => Cow::Borrowed("SendQ exceeded"),
            CloseReason::ExcessFlood => Cow::Borrowed("Excess Flood"),
            CloseReason::RegistrationTimeout => Cow::Borrowed("Registration timed out"),
            CloseReason::PingTimeout { secs } => Cow::Owned(format!("Ping timeout: {secs} seconds")),
            CloseReason::WriteError => Cow::Borrowed("Write error"),
            CloseReason::Killed(kill) => Cow::Owned(format!("Killed ({} ({}))", kill.0, kill.1)),
            CloseReason::Shutdown(cause) => {
                Cow::Owned(format!("Server shutting down: closed by {} ({})", cause.by, cause.reason))
            }
        }
    }
}
