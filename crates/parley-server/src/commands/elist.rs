//! LIST's filters (ISUPPORT `ELIST`): what a `LIST` parameter asks for,
//! parsed once and then asked of each channel. `channel::list` does the
//! rest (visibility, the replies).
//!
//! The parameter is a comma-separated list of items; a channel is listed
//! when it matches one of the names or masks (if any are given), none of
//! the `!` masks, and every condition:
//!
//! | item | meaning |
//! | --- | --- |
//! | `#name`, `*mask*` | the channel's name matches (`M`) |
//! | `!mask` | the channel's name does not match (`N`) |
//! | `<n`, `>n` | fewer / more than `n` members (`U`) |
//! | `C<n`, `C>n` | created less / more than `n` minutes ago (`C`) |
//! | `T<n`, `T>n` | topic set less / more than `n` minutes ago; channels without a topic never match (`T`) |

use crate::channel::Channel;
use parley_proto::mask::mask_matches;

/// The ELIST letters this module understands, for ISUPPORT.
pub const SUPPORTED: &str = "CMNTU";

/// A parsed LIST parameter.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ListFilter {
    names: Vec<String>,
    not_names: Vec<String>,
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    Members { more: bool, n: u64 },
    CreatedMinutesAgo { more: bool, n: i64 },
    TopicMinutesAgo { more: bool, n: i64 },
}

/// An item of a LIST parameter that is not a valid filter, and why.
#[derive(Debug, PartialEq, Eq)]
pub struct BadFilter {
    pub item: String,
    pub why: &'static str,
}

impl ListFilter {
    pub fn parse(param: &str) -> Result<ListFilter, BadFilter> {
        let mut filter = ListFilter::default();
        for item in super::split_list(param) {
            let bad = |why| BadFilter { item: item.to_string(), why };
            if let Some(mask) = item.strip_prefix('!') {
                if mask.is_empty() {
                    return Err(bad("`!` needs a mask after it"));
                }
                filter.not_names.push(mask.to_string());
                continue;
            }
            let (kind, rest) = match item.as_bytes() {
                [b'<' | b'>', ..] => (None, item),
                [k @ (b'C' | b'T'), b'<' | b'>', ..] => (Some(*k), &item[1..]),
                _ => {
                    filter.names.push(item.to_string());
                    continue;
                }
            };
            let more = rest.starts_with('>');
            let digits = &rest[1..];
            let Ok(n) = digits.parse::<u32>() else {
                return Err(bad("`<` and `>` need a whole number after them"));
            };
            filter.conditions.push(match kind {
                None => Condition::Members { more, n: n.into() },
                Some(b'C') => Condition::CreatedMinutesAgo { more, n: n.into() },
                _ => Condition::TopicMinutesAgo { more, n: n.into() },
            });
        }
        Ok(filter)
    }

    /// Whether `chan` passes, at Unix time `now`.
    pub fn accepts(&self, chan: &Channel, now: i64) -> bool {
        let name = chan.name.as_str();
        (self.names.is_empty() || self.names.iter().any(|m| mask_matches(m, name)))
            && !self.not_names.iter().any(|m| mask_matches(m, name))
            && self.conditions.iter().all(|c| c.holds(chan, now))
    }
}

impl Condition {
    fn holds(&self, chan: &Channel, now: i64) -> bool {
        let compare = |more: bool, value: i64, n: i64| if more { value > n } else { value < n };
        match *self {
            Condition::Members { more, n } => {
                let members = chan.member_count() as u64;
                if more {
                    members > n
                } else {
                    members < n
                }
            }
            Condition::CreatedMinutesAgo { more, n } => compare(more, now - chan.created, n * 60),
            Condition::TopicMinutesAgo { more, n } => {
                chan.topic.as_ref().is_some_and(|t| compare(more, now - t.set_at, n * 60))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Topic;

    fn channel(name: &str, created: i64, topic_at: Option<i64>) -> Channel {
        let mut c = Channel::new(name, false, created);
        c.topic = topic_at.map(|set_at| Topic { text: "t".into(), set_by: "x".into(), set_at });
        c
    }

    #[test]
    fn names_masks_and_negations_combine() {
        let (one, two) = (channel("#chan1", 0, None), channel("#Chan2", 0, None));
        let pass = |param: &str| {
            let f = ListFilter::parse(param).unwrap();
            [&one, &two].iter().filter(|c| f.accepts(c, 0)).map(|c| c.name.as_str()).collect::<Vec<_>>()
        };
        assert_eq!(pass(""), ["#chan1", "#Chan2"]);
        assert_eq!(pass("#CHAN1"), ["#chan1"], "a plain name, any case");
        assert_eq!(pass("*an2"), ["#Chan2"]);
        assert_eq!(pass("#chan1,#chan2"), ["#chan1", "#Chan2"]);
        assert_eq!(pass("!*an1"), ["#Chan2"]);
        assert_eq!(pass("#ch*,!#c*n2"), ["#chan1"]);
    }

    #[test]
    fn conditions_compare_members_and_minutes_strictly() {
        let now = 10 * 60;
        let old = channel("#old", 0, Some(60));
        let new = channel("#new", now - 60, None);
        let f = |p: &str| ListFilter::parse(p).unwrap();
        assert!(f("<1").accepts(&old, now) && !f(">0").accepts(&old, now), "no members");
        assert!(f("C>2").accepts(&old, now) && !f("C>2").accepts(&new, now));
        assert!(f("C<2").accepts(&new, now) && !f("C<0").accepts(&new, now));
        assert!(f("T>8").accepts(&old, now) && !f("T<9").accepts(&old, now));
        assert!(!f("T<100").accepts(&new, now), "no topic, no topic time");
    }

    #[test]
    fn a_malformed_condition_is_named() {
        for bad in ["<", ">x", "C<", "T>-1", "!", "<99999999999"] {
            let err = ListFilter::parse(&format!("#ok,{bad}")).unwrap_err();
            assert_eq!(err.item, bad);
        }
        assert!(ListFilter::parse("Cats,Topics").is_ok(), "C and T without < or > are masks");
    }
}
