//! Casemapping: the single rule that decides when two nicks or channel names
//! are "the same". Parley advertises `CASEMAPPING=ascii`: only `A`–`Z` fold to
//! `a`–`z`. Every map key in the server goes through [`casefold`], so there is
//! exactly one place that can get this wrong.

/// Folds `name` under the `ascii` casemapping.
pub fn casefold(name: &str) -> String {
    name.to_ascii_lowercase()
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
    }
}
