//! Hostmasks (`nick!user@host`) and the wildcard masks (with `*` and `?`)
//! that channel bans match against them.

/// `nick!user@host`. Built by hand rather than with `format!`: it is the
/// source of every relayed message, and `format!` costs far more.
pub fn hostmask(nick: &str, user: &str, host: &str) -> String {
    let mut mask = String::with_capacity(nick.len() + user.len() + host.len() + 2);
    mask.push_str(nick);
    mask.push('!');
    mask.push_str(user);
    mask.push('@');
    mask.push_str(host);
    mask
}

/// Matches `text` against an IRC wildcard `mask`, case-insensitively under the
/// `ascii` casemapping. `*` matches any run of characters, `?` exactly one.
///
/// Iterative with one backtrack point, so a hostile mask like `*a*a*a*a*b`
/// costs O(len(mask) × len(text)) rather than exponential time. Works on
/// the UTF-8 bytes without allocating (every message to a channel with bans
/// checks each ban): ASCII folding leaves multi-byte sequences alone, so
/// comparing them byte by byte is comparing characters, and `?` and a
/// backtrack step over one whole character.
pub fn mask_matches(mask: &str, text: &str) -> bool {
    let (m, t) = (mask.as_bytes(), text.as_bytes());
    let (mut mi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if mi < m.len() && m[mi] == b'?' {
            mi += 1;
            ti += utf8_len(t[ti]);
        } else if mi < m.len() && m[mi] != b'*' && m[mi].eq_ignore_ascii_case(&t[ti]) {
            mi += 1;
            ti += 1;
        } else if mi < m.len() && m[mi] == b'*' {
            star = Some((mi, ti));
            mi += 1;
        } else if let Some((smi, sti)) = star {
            let next = sti + utf8_len(t[sti]);
            mi = smi + 1;
            ti = next;
            star = Some((smi, next));
        } else {
            return false;
        }
    }
    m[mi..].iter().all(|&c| c == b'*')
}

/// The length of the UTF-8 character that starts with `lead`.
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => 1,
    }
}

/// Completes a partial ban mask the way servers traditionally do:
/// `nick` → `nick!*@*`, `user@host` → `*!user@host`.
pub fn normalize_mask(mask: &str) -> String {
    let has_bang = mask.contains('!');
    let has_at = mask.contains('@');
    match (has_bang, has_at) {
        (true, true) => mask.to_string(),
        (true, false) => format!("{mask}@*"),
        (false, true) => format!("*!{mask}"),
        (false, false) => format!("{mask}!*@*"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_irc_bans() {
        assert!(mask_matches("*!*@127.0.0.1", "alice!al@127.0.0.1"));
        assert!(mask_matches("ALICE!*@*", "alice!x@y"));
        assert!(mask_matches("a?c!*@*", "abc!x@y"));
        assert!(!mask_matches("a?c!*@*", "abbc!x@y"));
        assert!(mask_matches("*", ""));
        assert!(!mask_matches("bob!*@*", "alice!x@y"));
        assert!(!mask_matches("*a*a*a*a*a*b", &"a".repeat(200)));
    }

    #[test]
    fn a_question_mark_is_one_character_not_one_byte() {
        assert!(mask_matches("j?rg!*@*", "jörg!x@y"));
        assert!(!mask_matches("j??rg!*@*", "jörg!x@y"));
        assert!(mask_matches("*ö*", "JÖRGö"));
        assert!(!mask_matches("*ö*", "JÖRG"), "only ASCII letters fold");
        assert!(mask_matches("?", "€"));
        assert!(mask_matches("*€!*", "a€€!b"));
        assert!(mask_matches("🦀*?", "🦀ab"));
    }

    /// The same matching, written the obvious way on characters.
    fn reference(mask: &str, text: &str) -> bool {
        fn go(m: &[char], t: &[char]) -> bool {
            match m.split_first() {
                None => t.is_empty(),
                Some(('*', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
                Some((&c, rest)) => !t.is_empty() && (c == '?' || c.eq_ignore_ascii_case(&t[0])) && go(rest, &t[1..]),
            }
        }
        go(&mask.chars().collect::<Vec<_>>(), &text.chars().collect::<Vec<_>>())
    }

    #[test]
    fn agrees_with_the_obvious_recursive_matcher() {
        let alphabet = ["a", "B", "ö", "Ö", "€", "*", "?", "!"];
        let mut seed = 0x2545_f491_u32;
        let mut pick = |n: usize| {
            let mut out = String::new();
            for _ in 0..n {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                out.push_str(alphabet[seed as usize % alphabet.len()]);
            }
            out
        };
        for i in 0..4000 {
            let mask = pick(i % 7);
            let text = pick(i % 9).replace(['*', '?'], "a");
            assert_eq!(mask_matches(&mask, &text), reference(&mask, &text), "{mask:?} against {text:?}");
        }
    }

    #[test]
    fn partial_masks_are_completed() {
        assert_eq!(normalize_mask("bob"), "bob!*@*");
        assert_eq!(normalize_mask("u@h"), "*!u@h");
        assert_eq!(normalize_mask("n!u"), "n!u@*");
        assert_eq!(normalize_mask("n!u@h"), "n!u@h");
    }
}
