//! IRCv3 capabilities Parley offers, as bits in a `u32` so broadcasters can
//! read a recipient's set with one atomic load.

pub const SERVER_TIME: u32 = 1 << 0;
pub const MESSAGE_TAGS: u32 = 1 << 1;
pub const ECHO_MESSAGE: u32 = 1 << 2;
pub const MULTI_PREFIX: u32 = 1 << 3;
pub const USERHOST_IN_NAMES: u32 = 1 << 4;
pub const AWAY_NOTIFY: u32 = 1 << 5;
pub const CAP_NOTIFY: u32 = 1 << 6;
pub const SASL: u32 = 1 << 7;
// Accounts.
pub const ACCOUNT_NOTIFY: u32 = 1 << 8;
pub const ACCOUNT_TAG: u32 = 1 << 9;
pub const EXTENDED_JOIN: u32 = 1 << 10;
pub const ACCOUNT_REGISTRATION: u32 = 1 << 11;

// History (`history/`): offered only while `history.enabled`.
pub const CHATHISTORY: u32 = 1 << 12;
pub const EVENT_PLAYBACK: u32 = 1 << 13;
pub const READ_MARKER: u32 = 1 << 14;
pub const SEARCH: u32 = 1 << 15;
/// The capabilities that exist only with history on.
pub const HISTORY: u32 = CHATHISTORY | EVENT_PLAYBACK | READ_MARKER | SEARCH;

// Notifications about users: MONITOR's extension, SETNAME and INVITE.
// High bits, so capabilities added elsewhere meanwhile keep theirs.
pub const EXTENDED_MONITOR: u32 = 1 << 16;
pub const SETNAME: u32 = 1 << 17;
pub const INVITE_NOTIFY: u32 = 1 << 18;

// Batches and labeled responses (`batch.rs`, `labeled_response.rs`): a
// block of bits of their own, clear of the ones above.
pub const BATCH: u32 = 1 << 20;
pub const LABELED_RESPONSE: u32 = 1 << 21;

/// Every capability with its name, in the order `CAP LS` lists them
/// (`sasl` with its mechanisms, `sasl=PLAIN`, to `CAP LS 302`).
pub const ALL: &[(&str, u32)] = &[
    ("account-notify", ACCOUNT_NOTIFY),
    ("account-tag", ACCOUNT_TAG),
    ("away-notify", AWAY_NOTIFY),
    ("batch", BATCH),
    ("cap-notify", CAP_NOTIFY),
    ("draft/account-registration", ACCOUNT_REGISTRATION),
    ("draft/chathistory", CHATHISTORY),
    ("draft/event-playback", EVENT_PLAYBACK),
    ("draft/read-marker", READ_MARKER),
    ("echo-message", ECHO_MESSAGE),
    ("extended-join", EXTENDED_JOIN),
    ("labeled-response", LABELED_RESPONSE),
    ("message-tags", MESSAGE_TAGS),
    ("multi-prefix", MULTI_PREFIX),
    ("sasl", SASL),
    ("server-time", SERVER_TIME),
    ("soju.im/search", SEARCH),
    ("userhost-in-names", USERHOST_IN_NAMES),
    // Notifications about users.
    ("extended-monitor", EXTENDED_MONITOR),
    ("invite-notify", INVITE_NOTIFY),
    ("setname", SETNAME),
];

/// The bit for a capability name, if Parley offers it.
pub fn by_name(name: &str) -> Option<u32> {
    ALL.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// The names of the bits set in `caps`, space separated.
pub fn names(caps: u32) -> String {
    ALL.iter().filter(|(_, b)| caps & b != 0).map(|(n, _)| *n).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_and_bits_agree() {
        for (name, bit) in super::ALL {
            assert_eq!(super::by_name(name), Some(*bit));
        }
        assert_eq!(super::names(super::SERVER_TIME | super::ECHO_MESSAGE), "echo-message server-time");
        assert_eq!(super::by_name("sasl"), Some(super::SASL));
        assert_eq!(super::by_name("batch"), Some(super::BATCH));
        assert_eq!(super::by_name("draft/multiline"), None);
    }

    #[test]
    fn every_capability_has_a_bit_of_its_own() {
        let mut seen = 0u32;
        for (name, bit) in super::ALL {
            assert_eq!(bit.count_ones(), 1, "{name}");
            assert_eq!(seen & bit, 0, "{name} shares its bit with another capability");
            seen |= bit;
        }
    }
}
