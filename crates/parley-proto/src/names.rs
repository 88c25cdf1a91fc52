//! Name rules for nicknames and channels. Each rejection carries a reason a
//! person can read, which the server puts into `432`/`476` replies.
//!
//! Nicks are deliberately ASCII-only: it rules out look-alike (confusable)
//! Unicode nicks and keeps `CASEMAPPING=ascii` exact.

use thiserror::Error;

/// Why a nickname or channel name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("name is empty")]
    Empty,
    #[error("name is longer than {0} characters")]
    TooLong(usize),
    #[error("nickname must start with a letter or one of [ ] \\ ` _ ^ {{ | }}")]
    BadNickStart,
    #[error("nickname may only contain letters, digits and - [ ] \\ ` _ ^ {{ | }}")]
    BadNickChar,
    #[error("channel name must start with #")]
    BadChannelPrefix,
    #[error("channel name may not contain spaces, commas or control characters")]
    BadChannelChar,
}

fn is_nick_special(c: char) -> bool {
    matches!(c, '[' | ']' | '\\' | '`' | '_' | '^' | '{' | '|' | '}')
}

/// Checks a nickname against Parley's rules and the configured length limit.
pub fn validate_nick(nick: &str, max_len: usize) -> Result<(), NameError> {
    let mut chars = nick.chars();
    let first = chars.next().ok_or(NameError::Empty)?;
    if nick.len() > max_len {
        return Err(NameError::TooLong(max_len));
    }
    if !(first.is_ascii_alphabetic() || is_nick_special(first)) {
        return Err(NameError::BadNickStart);
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || is_nick_special(c) || c == '-') {
        return Err(NameError::BadNickChar);
    }
    Ok(())
}

/// Checks a channel name: `#` then any UTF-8 without space, comma, BEL, `:`
/// or other control/format characters (so a name cannot hide or forge text).
pub fn validate_channel(name: &str, max_len: usize) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > max_len {
        return Err(NameError::TooLong(max_len));
    }
    if !name.starts_with('#') || name.len() < 2 {
        return Err(NameError::BadChannelPrefix);
    }
    let bad = |c: char| c == ' ' || c == ',' || c == ':' || c.is_control() || is_invisible_format(c);
    if name.chars().any(bad) {
        return Err(NameError::BadChannelChar);
    }
    Ok(())
}

/// Zero-width and direction-changing characters that let a name look like
/// something else (bidi overrides, zero-width joiners, BOM).
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_nicks_pass() {
        for n in ["alice", "Bob", "[x]", "a-1", "_under", "x|y^z`"] {
            assert_eq!(validate_nick(n, 30), Ok(()), "{n}");
        }
    }

    #[test]
    fn bad_nicks_say_why() {
        assert_eq!(validate_nick("", 30), Err(NameError::Empty));
        assert_eq!(validate_nick("1abc", 30), Err(NameError::BadNickStart));
        assert_eq!(validate_nick("-abc", 30), Err(NameError::BadNickStart));
        assert_eq!(validate_nick("a b", 30), Err(NameError::BadNickChar));
        assert_eq!(validate_nick("a\u{1}", 30), Err(NameError::BadNickChar));
        assert_eq!(validate_nick("élan", 30), Err(NameError::BadNickStart));
        assert_eq!(validate_nick("al!ce", 30), Err(NameError::BadNickChar));
        assert_eq!(validate_nick("a@b", 30), Err(NameError::BadNickChar));
        assert_eq!(validate_nick(&"a".repeat(31), 30), Err(NameError::TooLong(30)));
    }

    #[test]
    fn channel_rules() {
        assert_eq!(validate_channel("#lobby", 50), Ok(()));
        assert_eq!(validate_channel("#café", 50), Ok(()));
        assert_eq!(validate_channel("lobby", 50), Err(NameError::BadChannelPrefix));
        assert_eq!(validate_channel("#", 50), Err(NameError::BadChannelPrefix));
        assert_eq!(validate_channel("#a,b", 50), Err(NameError::BadChannelChar));
        assert_eq!(validate_channel("#a\u{7}", 50), Err(NameError::BadChannelChar));
        assert_eq!(validate_channel("#a\u{202E}b", 50), Err(NameError::BadChannelChar));
        assert_eq!(validate_channel(&format!("#{}", "a".repeat(60)), 50), Err(NameError::TooLong(50)));
    }
}
