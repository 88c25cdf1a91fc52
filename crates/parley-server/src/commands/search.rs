//! SEARCH (`soju.im/search`): full-text search over the history the
//! client may read — the channels it is in, those its account was in (up
//! to when it left), and its account's conversations — or one of them
//! (`in=`). Attributes come as one tag-like parameter:
//! `SEARCH text=hello;in=#lobby;from=alice;after=<time>;before=<time>;limit=20`.
//! Results, oldest first, in a `soju.im/search` batch.

use super::chathistory::{access, blocking, joined_channels, send_stored, Access, Reader};
use crate::history::query;
use crate::history::search::{self, Readable, Search};
use crate::session::Ctx;
use parley_proto::{casefold, MessageRef};

const COMMAND: &str = "SEARCH";

/// The parsed attributes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    pub text: Option<String>,
    pub target: Option<String>,
    pub from: Option<String>,
    pub after: Option<i64>,
    pub before: Option<i64>,
    pub limit: usize,
}

/// Parses `key=value;...` (values escaped as tag values); `max` is the
/// largest limit, and the default.
pub fn parse(attrs: &str, max: usize) -> Result<Attributes, &'static str> {
    let tags = MessageRef::parse(&format!("@{attrs} SEARCH")).map_err(|_| "Malformed attributes")?.tags;
    let mut a = Attributes { limit: max, ..Default::default() };
    for tag in tags {
        let value = tag.value.unwrap_or_default();
        let time = || value.strip_prefix("timestamp=").unwrap_or(&value).to_string();
        match tag.key.as_str() {
            "text" => a.text = Some(value.clone()),
            "in" => a.target = Some(value.clone()),
            "from" => a.from = Some(value.clone()),
            "after" => a.after = Some(crate::clock::parse_tag_millis(&time()).ok_or("Bad after time")?),
            "before" => a.before = Some(crate::clock::parse_tag_millis(&time()).ok_or("Bad before time")?),
            "limit" => match value.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => a.limit = n,
                _ => return Err("Bad limit"),
            },
            _ => return Err("Unknown attribute"),
        }
    }
    if a.text.as_deref().is_none_or(|t| t.trim().is_empty()) && a.from.is_none() {
        return Err("Give text or from");
    }
    Ok(a)
}

pub async fn search(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let Some(history) = ctx.server.history.clone() else {
        ctx.reply(parley_proto::numeric::ERR_UNKNOWNCOMMAND, &[COMMAND, "Unknown command"]);
        return;
    };
    let Some(attrs) = msg.param(0) else {
        ctx.fail(COMMAND, "NEED_MORE_PARAMS", &[], "Missing attributes");
        return;
    };
    let a = match parse(attrs, history.config().max_query_messages) {
        Ok(a) => a,
        Err(why) => {
            ctx.fail(COMMAND, "INVALID_PARAMS", &[attrs], why);
            return;
        }
    };
    let reader = Reader { account: ctx.session.account().map(casefold), events: false };
    // Targets known to be readable now, and those to check in the database.
    let scope = match &a.target {
        Some(target) => match access(ctx, &reader, target) {
            Some(access) => vec![access],
            None => {
                ctx.fail(COMMAND, "INVALID_PARAMS", &[target], "Cannot search that target");
                return;
            }
        },
        None => joined_channels(ctx).into_iter().map(|(key, _)| Access::Member(key)).collect(),
    };
    let everywhere = a.target.is_none();
    let found = blocking(history, move |h| {
        let mut conn = h.reader()?;
        let mut readable = Vec::new();
        for access in scope {
            match access {
                Access::Member(key) | Access::Conversation(key) => readable.push(Readable { key, until: i64::MAX }),
                Access::Former { channel, account } => {
                    if let Some(left) = query::membership(conn.conn(), &account, &channel)? {
                        readable.push(Readable { key: channel, until: left.unwrap_or(i64::MAX) });
                    }
                }
            }
        }
        if let (true, Some(account)) = (everywhere, &reader.account) {
            for (channel, left) in query::memberships(conn.conn(), account)? {
                if !readable.iter().any(|r| r.key == channel) {
                    readable.push(Readable { key: channel, until: left.unwrap_or(i64::MAX) });
                }
            }
            for key in query::conversations(conn.conn(), account)? {
                readable.push(Readable { key, until: i64::MAX });
            }
        }
        let s = Search {
            text: a.text.as_deref(),
            from: a.from.as_deref(),
            after: a.after,
            before: a.before,
            limit: a.limit,
        };
        search::search(conn.conn(), &readable, &s)
    })
    .await;
    let Some(messages) = found else {
        ctx.fail(COMMAND, "MESSAGE_ERROR", &[attrs], "Search failed");
        return;
    };
    ctx.batch("soju.im/search", &[], |ctx| send_stored(ctx, &messages));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_parse_and_bad_ones_are_named() {
        let a = parse("text=hello\\sworld;in=#a;from=bob;after=2020-01-01T00:00:00Z;limit=5", 100).unwrap();
        assert_eq!(a.text.as_deref(), Some("hello world"));
        assert_eq!((a.target.as_deref(), a.from.as_deref(), a.limit), (Some("#a"), Some("bob"), 5));
        assert_eq!(a.after, Some(1_577_836_800_000));
        assert_eq!(parse("text=x", 100).unwrap().limit, 100, "the default is the most");
        assert_eq!(parse("text=x;limit=0", 100), Err("Bad limit"));
        assert_eq!(parse("text=x;limit=101", 100), Err("Bad limit"));
        assert_eq!(parse("text=x;before=soon", 100), Err("Bad before time"));
        assert_eq!(parse("text=x;colour=red", 100), Err("Unknown attribute"));
        assert_eq!(parse("in=#a", 100), Err("Give text or from"));
    }
}
