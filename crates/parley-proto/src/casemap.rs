//! Casemapping: the single rule that decides when two nicks or channel names
//! are "the same". Parley advertises `CASEMAPPING=ascii`: only `A`–`Z` fold to
//! `a`–`z`. Every map key in the server goes through [`casefold`], so there is
//! exactly one place that can get this wrong.

/// Folds `name` under the `ascii` casemapping.
pub fn casefold(name: &str) -> String {
    casefolded(name).into_owned()
}

/// [`casefold`] for lookups: borrows `name` when it is already folded (most
/// nicks and channel names are typed in lower case), so a lookup on the
/// message path allocates nothing.
pub fn casefolded(name: &str) -> std::borrow::Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(name.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

/// True when `a` and `b` are the same name under the `ascii` casemapping.
pub fn irc_eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The `CASEMAPPING` ISUPPORT token value matching [`casefold`].
pub const CASEMAPPING: &str = "ascii";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_letters_fold_and_specials_do_not() {
        assert_eq!(casefold("Alice[]"), "alice[]");
        assert!(irc_eq("BOB", "bob"));
        assert!(!irc_eq("a[", "a{"));
        // Non-ASCII letters are left alone under `ascii`.
        assert_eq!(casefold("ÄB"), "Äb");
        assert!(matches!(casefolded("alice[]"), std::borrow::Cow::Borrowed("alice[]")));
        assert_eq!(casefolded("Alice"), "alice");
    }
}
