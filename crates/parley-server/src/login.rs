//! A connection's login state, kept boxed in its session: the account
//! logged in, a SASL exchange under way (`commands::sasl` drives it), the
//! TLS client certificate, and the claim of a registered nick
//! (`commands::account`). Data only, so the session needs no command module.

use crate::scram;

/// A connection's login and what leads to it (`commands::sasl`,
/// `commands::account`): boxed in the session, as most connections never
/// log in.
#[derive(Default)]
pub struct Login {
    /// The account logged in.
    pub account: Option<String>,
    /// A SASL exchange under way.
    pub pending: Option<Pending>,
    /// The fingerprint of the TLS client certificate (SASL EXTERNAL).
    pub certfp: Option<Box<str>>,
    /// The nick in use is an account's, not logged in to: when it is taken
    /// back (`accounts.nick_enforcement = "rename"`).
    pub claim: Option<tokio::time::Instant>,
    /// Before registration, a nick asked for but in use: what `REGISTER *`
    /// names (and is refused, as the nick is someone else's).
    pub refused_nick: Option<String>,
}

/// A SASL exchange under way, kept in the session between lines.
pub struct Pending {
    pub(crate) mechanism: Mechanism,
    /// The base64 of the client's current message, so far.
    pub(crate) buffer: String,
    pub(crate) stage: Stage,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    Plain,
    External,
    Scram,
}

impl Mechanism {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::External => "EXTERNAL",
            Mechanism::Scram => "SCRAM-SHA-256",
        }
    }
}

pub(crate) enum Stage {
    /// Waiting for the client's first message.
    First,
    /// SCRAM: the server's first message sent; waiting for the proof.
    ScramProof(Box<scram::Exchange>),
    /// SCRAM: proof accepted and the server's signature sent; waiting for
    /// the client's empty acknowledgement. Holds the account name given.
    ScramDone(String),
}
