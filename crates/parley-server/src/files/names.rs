//! File names in the store: one path segment of UTF-8 that cannot be read as
//! a path, hide text or imitate a slash.
//!
//! Names never become file-system paths (blobs are stored by digest and
//! metadata by a hash of the name, see `storage.rs`), so traversal is
//! impossible by construction; these rules exist so that what users see,
//! download and save locally is unambiguous and safe.

use super::errors::ApiError;
use thiserror::Error;

/// Names that are path segments of the store's own routes: a file named
/// `uploads` would make `/files/uploads/share` ambiguous.
const RESERVED: &[&str] = &["uploads"];

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BadName {
    #[error("the file name is empty")]
    Empty,
    #[error("the file name is longer than {0} bytes")]
    TooLong(usize),
    #[error("`.` and `..` are not file names")]
    DotName,
    #[error("the file name contains a slash or backslash; give just a name, not a path")]
    Separator,
    #[error("the file name contains a control character")]
    Control,
    #[error("the file name contains an invisible or direction-changing Unicode character")]
    Invisible,
    #[error("the file name contains a character that looks like a slash")]
    LookAlikeSlash,
    #[error("the file name starts or ends with white space")]
    Whitespace,
}

/// Checks a (percent-decoded) name.
pub fn validate(name: &str, max_bytes: usize) -> Result<(), BadName> {
    if name.is_empty() {
        return Err(BadName::Empty);
    }
    if name.len() > max_bytes {
        return Err(BadName::TooLong(max_bytes));
    }
    if name == "." || name == ".." {
        return Err(BadName::DotName);
    }
    for c in name.chars() {
        match c {
            '/' | '\\' => return Err(BadName::Separator),
            c if c.is_control() => return Err(BadName::Control),
            '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}' => return Err(BadName::Invisible),
            '\u{2044}' | '\u{2215}' | '\u{29F8}' | '\u{FF0F}' | '\u{FF3C}' | '\u{2216}' | '\u{29F9}' => {
                return Err(BadName::LookAlikeSlash)
            }
            _ => {}
        }
    }
    if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
        return Err(BadName::Whitespace);
    }
    Ok(())
}

/// `validate`, plus the reserved names, as the HTTP refusal to send.
pub fn check(name: &str, max_bytes: usize) -> Result<(), ApiError> {
    validate(name, max_bytes)
        .map_err(|e| ApiError::bad_request("bad_name", format!("Refused file name {name:?}: {e}.")))?;
    if RESERVED.contains(&name) {
        return Err(ApiError::bad_request(
            "reserved_name",
            format!("{name:?} is reserved for the store's own URLs; pick another name."),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass() {
        for n in ["report.pdf", "notes 2026.txt", "ünïcødé.md", ".hidden", "a..b", "日本語.txt"] {
            assert_eq!(validate(n, 200), Ok(()), "{n}");
        }
    }

    #[test]
    fn the_reserved_name_is_refused_with_a_reason() {
        let err = check("uploads", 200).unwrap_err();
        assert_eq!(err.code, "reserved_name");
        assert!(check("uploads.txt", 200).is_ok());
        assert_eq!(check("a/b", 200).unwrap_err().code, "bad_name");
    }

    #[test]
    fn every_trick_is_refused_with_its_reason() {
        let cases = [
            ("", BadName::Empty),
            (".", BadName::DotName),
            ("..", BadName::DotName),
            ("../x", BadName::Separator),
            ("/etc/passwd", BadName::Separator),
            ("a\\b", BadName::Separator),
            ("a\0b", BadName::Control),
            ("a\nb", BadName::Control),
            ("a\u{7f}", BadName::Control),
            ("a\u{9b}", BadName::Control),
            ("evil\u{202E}txt.exe", BadName::Invisible),
            ("a\u{200B}b", BadName::Invisible),
            ("a\u{2215}b", BadName::LookAlikeSlash),
            ("a\u{FF0F}b", BadName::LookAlikeSlash),
            (" lead", BadName::Whitespace),
            ("trail ", BadName::Whitespace),
        ];
        for (name, want) in cases {
            assert_eq!(validate(name, 200), Err(want), "{name:?}");
        }
        assert_eq!(validate(&"a".repeat(201), 200), Err(BadName::TooLong(200)));
    }
}
