//! Hostmasks (`nick!user@host`) and the wildcard masks (with `*` and `?`)
//! that channel bans match against them.

/// `nick!user@host`. Built by hand rather than with `format!`: it is the
/// source of every relayed message, and `format!` made it 7 % of parleyd's
/// user CPU in the ping-pong.
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
/// costs O(len(mask) × len(text)) rather than exponential time.
pub fn mask_matches(mask: &str, text: &str) -> bool {
    let m: Vec<char> = mask.chars().map(|c| c.to_ascii_lowercase()).collect();
    let t: Vec<char> = text.chars().map(|c| c.to_ascii_lowercase()).collect();
    let (mut mi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if mi < m.len() && (m[mi] == '?' || m[mi] == t[ti]) {
            mi += 1;
            ti += 1;
        } else if mi < m.len() && m[mi] == '*' {
            star = Some((mi, ti));
            mi += 1;
        } else if let Some((smi, sti)) = star {
            mi = smi + 1;
            ti = sti + 1;
            star = Some((smi, sti + 1));
        } else {
            return false;
        }
    }
    m[mi..].iter().all(|&c| c == '*')
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
    fn partial_masks_are_completed() {
        assert_eq!(normalize_mask("bob"), "bob!*@*");
        assert_eq!(normalize_mask("u@h"), "*!u@h");
        assert_eq!(normalize_mask("n!u"), "n!u@*");
        assert_eq!(normalize_mask("n!u@h"), "n!u@h");
    }
}
