//! CHATHISTORY (IRCv3 `draft/chathistory`): pages of a channel's or a
//! conversation's past, in a `chathistory` batch, and TARGETS, the
//! channels and conversations with messages in a time window.
//!
//! Who may read what is decided here, before any query: a channel's
//! history to its members, and to accounts that were members (up to when
//! they left); a conversation's only to its two parties, who must be
//! logged in. Anything else is `INVALID_TARGET`, the same answer as for a
//! target that does not exist, so nothing leaks. The queries run on the
//! blocking pool after the writer has written what was queued.

use crate::caps;
use crate::db::{DbError, Lease};
use crate::history::query::{self, Reference, Scope, Selector, Stored};
use crate::history::{conversation_key, party_key, History, Kind};
use crate::session::Ctx;
use bytes::BytesMut;
use parley_proto::{casefold, write_line, MessageRef};
use std::sync::Arc;

const COMMAND: &str = "CHATHISTORY";

/// A refused request: the code, its context and the sentence.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused(pub &'static str, pub Vec<String>, pub &'static str);

/// A parsed request.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    Messages { sub: String, target: String, selector: Selector, limit: usize },
    Targets { from: i64, to: i64, limit: usize },
}

/// Parses the parameters; `max` is the largest limit allowed.
pub fn parse(params: &[&str], max: usize) -> Result<Request, Refused> {
    let sub = params.first().map(|s| s.to_ascii_uppercase()).unwrap_or_default();
    let need = match sub.as_str() {
        "LATEST" | "BEFORE" | "AFTER" | "AROUND" | "TARGETS" => 4,
        "BETWEEN" => 5,
        _ => return Err(Refused("INVALID_PARAMS", vec![sub], "Unknown subcommand")),
    };
    if params.len() < need {
        return Err(Refused("NEED_MORE_PARAMS", vec![sub], "Not enough parameters"));
    }
    let limit = match params[need - 1].parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => n,
        _ => return Err(Refused("INVALID_PARAMS", vec![sub, params[need - 1].into()], "Bad limit")),
    };
    let reference = |text: &str| -> Result<Reference, Refused> {
        parse_reference(text)
            .ok_or_else(|| Refused("INVALID_PARAMS", vec![sub.clone(), text.into()], "Bad message reference"))
    };
    let target = params[1].to_string();
    let selector = match sub.as_str() {
        "TARGETS" => {
            let (Reference::Time(from), Reference::Time(to)) = (reference(params[1])?, reference(params[2])?) else {
                return Err(Refused("INVALID_PARAMS", vec![sub], "TARGETS takes timestamps"));
            };
            return Ok(Request::Targets { from, to, limit });
        }
        "LATEST" if params[2] == "*" => Selector::Latest(None),
        "LATEST" => Selector::Latest(Some(reference(params[2])?)),
        "BEFORE" => Selector::Before(reference(params[2])?),
        "AFTER" => Selector::After(reference(params[2])?),
        "AROUND" => Selector::Around(reference(params[2])?),
        _ => Selector::Between(reference(params[2])?, reference(params[3])?),
    };
    if target.is_empty() || target.contains(['*', '?', ',']) {
        return Err(Refused("INVALID_TARGET", vec![sub, target], "Messages could not be retrieved"));
    }
    Ok(Request::Messages { sub, target, selector, limit })
}

/// `msgid=...` or `timestamp=...`.
fn parse_reference(text: &str) -> Option<Reference> {
    if let Some(id) = text.strip_prefix("msgid=") {
        let ok = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        return ok.then(|| Reference::Msgid(id.to_string()));
    }
    text.strip_prefix("timestamp=").and_then(crate::clock::parse_tag_millis).map(Reference::Time)
}

/// Who is asking, as far as history cares.
pub(super) struct Reader {
    /// The account, casefolded.
    pub account: Option<String>,
    pub events: bool,
}

/// What the reader may read of a target, as known before the database.
pub(super) enum Access {
    /// A member now: everything.
    Member(String),
    /// Not a member now: an account that may have been one.
    Former { channel: String, account: String },
    /// A conversation of the reader's.
    Conversation(String),
}

pub async fn chathistory(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let Some(history) = ctx.server.history.clone() else {
        ctx.reply(parley_proto::numeric::ERR_UNKNOWNCOMMAND, &[COMMAND, "Unknown command"]);
        return;
    };
    let request = match parse(&msg.params, history.config().max_query_messages) {
        Ok(r) => r,
        Err(Refused(code, context, text)) => {
            let context: Vec<&str> = context.iter().map(String::as_str).collect();
            ctx.fail(COMMAND, code, &context, text);
            return;
        }
    };
    let reader =
        Reader { account: ctx.session.account().map(casefold), events: ctx.session.has_cap(caps::EVENT_PLAYBACK) };
    match request {
        Request::Messages { sub, target, selector, limit } => {
            let Some(access) = access(ctx, &reader, &target) else {
                ctx.fail(COMMAND, "INVALID_TARGET", &[&sub, &target], "Messages could not be retrieved");
                return;
            };
            let events = reader.events;
            let found = blocking(history, move |h| {
                let mut conn = h.reader()?;
                let (key, until) = match access {
                    Access::Member(key) | Access::Conversation(key) => (key, i64::MAX),
                    Access::Former { channel, account } => match query::membership(conn.conn(), &account, &channel)? {
                        Some(left) => (channel, left.unwrap_or(i64::MAX)),
                        None => return Ok(None),
                    },
                };
                let scope = Scope { target: &key, until, events };
                query::select(conn.conn(), &scope, &selector, limit).map(Some)
            })
            .await;
            match found {
                Some(Some(messages)) => send_messages(ctx, &target, &messages),
                Some(None) => ctx.fail(COMMAND, "INVALID_TARGET", &[&sub, &target], "Messages could not be retrieved"),
                None => ctx.fail(COMMAND, "MESSAGE_ERROR", &[&sub, &target], "Messages could not be retrieved"),
            }
        }
        Request::Targets { from, to, limit } => {
            let joined = joined_channels(ctx);
            let found = blocking(history, move |h| targets(&mut h.reader()?, &reader, joined, from, to, limit)).await;
            match found {
                Some(list) => send_targets(ctx, &list),
                None => ctx.fail(COMMAND, "MESSAGE_ERROR", &["TARGETS"], "Targets could not be retrieved"),
            }
        }
    }
}

/// Runs `work` on the blocking pool after the writer has written what is
/// queued; `None` if it failed (logged).
pub(super) async fn blocking<T: Send + 'static>(
    history: Arc<History>,
    work: impl FnOnce(&History) -> Result<T, DbError> + Send + 'static,
) -> Option<T> {
    let done = tokio::task::spawn_blocking(move || {
        history.flush();
        work(&history)
    })
    .await;
    match done {
        Ok(Ok(value)) => Some(value),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "history: a query failed");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "history: a query task failed");
            None
        }
    }
}

/// What the reader may read of `target`, or `None` (`INVALID_TARGET`).
pub(super) fn access(ctx: &Ctx<'_>, reader: &Reader, target: &str) -> Option<Access> {
    let view = ctx.server.registry.read();
    if target.starts_with('#') {
        if view.is_member(ctx.session.id, target) {
            return Some(Access::Member(casefold(target)));
        }
        let account = reader.account.clone()?;
        return Some(Access::Former { channel: casefold(target), account });
    }
    // Private history is for accounts only: a nick alone proves nothing.
    let me = reader.account.as_deref()?;
    let other = match view.user_by_nick(target) {
        Some(user) => party_key(user.account.as_deref(), &user.nick),
        None => casefold(target),
    };
    Some(Access::Conversation(conversation_key(me, &other)))
}

/// The channels the session is in: (key, name).
pub(super) fn joined_channels(ctx: &Ctx<'_>) -> Vec<(String, String)> {
    let view = ctx.server.registry.read();
    let Some(user) = view.user(ctx.session.id) else {
        return Vec::new();
    };
    user.channels.iter().filter_map(|key| view.channel_by_key(key).map(|c| (key.clone(), c.name.clone()))).collect()
}

/// Targets whose newest visible message falls strictly between `from` and
/// `to` (either order), in time order from `from`: (name, time).
fn targets(
    conn: &mut Lease<'_>,
    reader: &Reader,
    joined: Vec<(String, String)>,
    from: i64,
    to: i64,
    limit: usize,
) -> Result<Vec<(String, i64)>, DbError> {
    let mut seen: Vec<(String, String, i64)> = joined.into_iter().map(|(k, n)| (k, n, i64::MAX)).collect();
    if let Some(account) = &reader.account {
        for (channel, left) in query::memberships(conn.conn(), account)? {
            if !seen.iter().any(|(k, _, _)| *k == channel) {
                let name = channel.clone();
                seen.push((channel, name, left.unwrap_or(i64::MAX)));
            }
        }
        for conversation in query::conversations(conn.conn(), account)? {
            let other = match conversation.split_once(' ') {
                Some((a, b)) if a == account => b,
                Some((a, _)) => a,
                None => continue,
            };
            let name = other.trim_start_matches('*').to_string();
            seen.push((conversation, name, i64::MAX));
        }
    }
    let (lo, hi) = (from.min(to), from.max(to));
    let mut found = Vec::new();
    for (key, name, until) in seen {
        if let Some(at) = query::latest_time(conn.conn(), &key, until)? {
            if lo < at && at < hi {
                found.push((name, at));
            }
        }
    }
    found.sort_by_key(|(_, at)| *at);
    if from > to {
        found.reverse();
    }
    found.truncate(limit);
    Ok(found)
}

fn send_messages(ctx: &Ctx<'_>, target: &str, messages: &[Stored]) {
    ctx.batch("chathistory", &[target], |ctx| send_stored(ctx, messages));
}

fn send_targets(ctx: &Ctx<'_>, list: &[(String, i64)]) {
    let server = &ctx.server.config.server_name;
    ctx.batch("draft/chathistory-targets", &[], |ctx| {
        let mut out = BytesMut::new();
        for (name, at) in list {
            let time = crate::clock::tag_for_millis(*at);
            write_line(Some(server), COMMAND, ["TARGETS", name.as_str(), time.as_str()].into_iter(), &mut out);
        }
        ctx.send_bytes(&out);
    });
}

/// The lobby's last lines for a client without `draft/chathistory` that
/// has just joined it (after the names), marked as history: in a
/// `chathistory` batch for a client with `batch`, else between two server
/// notices (with `time` tags for a client with server-time).
pub fn replay_on_join(ctx: &Ctx<'_>, channel: &str) {
    let Some(history) = ctx.server.history.as_ref() else {
        return;
    };
    if ctx.session.has_cap(caps::CHATHISTORY) || !parley_proto::irc_eq(channel, &ctx.server.config.irc.lobby) {
        return;
    }
    let lines = history.recent.lines();
    if lines.is_empty() {
        return;
    }
    if ctx.session.has_cap(caps::BATCH) {
        ctx.batch("chathistory", &[channel], |ctx| send_stored(ctx, &lines));
        return;
    }
    ctx.server_notice(&format!("*** The last {} messages in {channel}:", lines.len()));
    send_stored(ctx, &lines);
    ctx.server_notice(&format!("*** End of the replay of {channel}."));
}

/// Stored messages as this client sees them: their original msgid, time,
/// account and client tags, as its capabilities allow (a TAGMSG only with
/// message-tags).
pub(super) fn send_stored(ctx: &Ctx<'_>, messages: &[Stored]) {
    let caps = ctx.session.caps;
    let mut out = BytesMut::new();
    for m in messages {
        if m.kind == Kind::Tagmsg && caps & caps::MESSAGE_TAGS == 0 {
            continue;
        }
        write_stored(&mut out, m, caps);
    }
    ctx.send_bytes(&out);
}

fn write_stored(out: &mut BytesMut, m: &Stored, caps: u32) {
    let mut tags: Vec<String> = Vec::new();
    if caps & caps::SERVER_TIME != 0 {
        tags.push(format!("time={}", crate::clock::tag_for_millis(m.at)));
    }
    if caps & caps::MESSAGE_TAGS != 0 {
        tags.push(format!("msgid={}", m.msgid));
        if !m.tags.is_empty() {
            tags.push(m.tags.clone());
        }
    }
    if let Some(account) = m.account.as_deref().filter(|_| caps & caps::ACCOUNT_TAG != 0) {
        tags.push(format!("account={account}"));
    }
    if !tags.is_empty() {
        out.extend_from_slice(b"@");
        out.extend_from_slice(tags.join(";").as_bytes());
        out.extend_from_slice(b" ");
    }
    let command = m.kind.command();
    if m.kind == Kind::Tagmsg {
        write_line(Some(&m.sender), command, [m.shown.as_str()].into_iter(), out);
    } else {
        write_line(Some(&m.sender), command, [m.shown.as_str(), m.text.as_str()].into_iter(), out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::Harness;
    use super::*;

    #[test]
    fn joining_the_lobby_without_chathistory_replays_its_last_lines_marked() {
        let h = Harness::with_history();
        let mut alice = h.user("alice");
        h.run(&mut alice, "PRIVMSG #lobby :first");
        h.run(&mut alice, "PRIVMSG #lobby :second");
        let mut bob = h.connect();
        h.run(&mut bob, "NICK bob");
        let burst = h.run(&mut bob, "USER bob 0 * :bob");
        let replay = &burst[burst.find(" 366 ").expect("names")..];
        assert!(replay.contains("NOTICE bob :*** The last 2 messages in #lobby:"), "{replay}");
        assert!(replay.contains(":alice!~alice@127.0.0.1 PRIVMSG #lobby first\r\n"), "{replay}");
        assert!(replay.contains("End of the replay"), "{replay}");
        // With batch: in a chathistory batch; with chathistory: nothing.
        let mut carol = h.connect();
        for line in ["CAP LS 302", "NICK carol", "USER carol 0 * :c", "CAP REQ :batch server-time"] {
            h.run(&mut carol, line);
        }
        let burst = h.run(&mut carol, "CAP END");
        assert!(burst.contains("BATCH +") && burst.contains(" chathistory #lobby"), "{burst}");
        assert!(burst.contains(";time=") || burst.contains("@time="), "{burst}");
        let mut dave = h.connect();
        for line in ["CAP LS 302", "NICK dave", "USER dave 0 * :d", "CAP REQ :batch draft/chathistory"] {
            h.run(&mut dave, line);
        }
        assert!(!h.run(&mut dave, "CAP END").contains(" PRIVMSG #lobby"), "a chathistory client asks itself");
    }

    #[test]
    fn requests_parse_and_bad_ones_name_what_is_wrong() {
        let p = |line: &str| parse(&line.split(' ').collect::<Vec<_>>(), 100);
        assert_eq!(
            p("LATEST #a * 10"),
            Ok(Request::Messages {
                sub: "LATEST".into(),
                target: "#a".into(),
                selector: Selector::Latest(None),
                limit: 10
            })
        );
        let Ok(Request::Messages { selector, .. }) = p("between #a msgid=x-1 timestamp=2020-01-01T00:00:00.000Z 5")
        else {
            panic!("between");
        };
        assert_eq!(selector, Selector::Between(Reference::Msgid("x-1".into()), Reference::Time(1_577_836_800_000)));
        assert_eq!(
            p("TARGETS timestamp=2020-01-01T00:00:00Z timestamp=2020-01-01T00:00:01Z 3"),
            Ok(Request::Targets { from: 1_577_836_800_000, to: 1_577_836_801_000, limit: 3 })
        );
        let code = |line: &str| p(line).unwrap_err().0;
        assert_eq!(code("LATEST #a * 0"), "INVALID_PARAMS");
        assert_eq!(code("LATEST #a * 101"), "INVALID_PARAMS");
        assert_eq!(code("BEFORE #a msgid=a;b 5"), "INVALID_PARAMS");
        assert_eq!(code("BEFORE #a timestamp=yesterday 5"), "INVALID_PARAMS");
        assert_eq!(code("BEFORE #a 5"), "NEED_MORE_PARAMS");
        assert_eq!(code("SIDEWAYS #a * 5"), "INVALID_PARAMS");
        assert_eq!(code("TARGETS msgid=a timestamp=2020-01-01T00:00:00Z 5"), "INVALID_PARAMS");
        assert_eq!(code("LATEST #* * 5"), "INVALID_TARGET");
    }
}
