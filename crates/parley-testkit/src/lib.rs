//! What the integration tests of `parleyd` and `parley` share: the server
//! process ([`server`]: started on port 0 with a temporary directory, ready
//! when it says so, stopped or killed), a line-oriented IRC client
//! ([`irc`]) and its WebSocket twin ([`ws`]), the activity log's format ([`activity_log`]) and waits on other
//! processes ([`wait`]). What only one crate's tests need stays in that
//! crate's `tests/support`.
//!
//! Every wait here blocks on the event it is about — a line, EOF, a
//! process's exit, the kernel's report that a file changed — and is bounded
//! by a deadline, so no test sleeps to let something happen.

pub mod activity_log;
pub mod irc;
pub mod server;
pub mod wait;
pub mod ws;

pub use activity_log::{log_event, log_events};
pub use irc::{numeric, show, Client, Line, TIMEOUT};
pub use server::{Server, Signal, ADMIN_NAME, ADMIN_PASSWORD, NO_FLOOD_LIMIT};
pub use wait::{wait_child, wait_for_file};
pub use ws::WsClient;
