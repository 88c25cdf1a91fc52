//! The IRC wire format as Parley speaks it: framing (bytes into checked
//! lines), messages (tags, source, command, parameters), numerics,
//! casemapping, name rules and ban masks.
//!
//! This crate owns the *shape* of the protocol and nothing else: it never
//! touches a socket, a clock or a file, so the server and the client share one
//! parser and one serialiser and both can be tested without a network.

pub mod casemap;
pub mod framing;
pub mod mask;
pub mod message;
pub mod names;
pub mod numeric;

pub use casemap::{casefold, casefolded, irc_eq};
pub use framing::{FrameLimits, Framer};
pub use message::{write_line, write_tags, Message, MessageRef, ParseError, Tag};
pub use names::{validate_channel, validate_nick, NameError};
