//! HISTORY: what an account and an operator may do to history as a
//! whole. `HISTORY DELETE` deletes every message the caller's account sent
//! (from channels and conversations, and from search); `HISTORY PURGE
//! #channel` (operators) deletes a channel's whole history. Both run on the
//! history writer, after what was queued before them, and are logged.
//! Exporting an account's messages is `parleyd history export`.

use crate::activity_log::Value;
use crate::session::Ctx;
use parley_proto::MessageRef;

const COMMAND: &str = "HISTORY";

pub async fn history(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let Some(history) = ctx.server.history.clone() else {
        ctx.reply(parley_proto::numeric::ERR_UNKNOWNCOMMAND, &[COMMAND, "Unknown command"]);
        return;
    };
    let sub = msg.param(0).unwrap_or("").to_ascii_uppercase();
    match sub.as_str() {
        "DELETE" => {
            let Some(account) = ctx.session.account().map(str::to_string) else {
                ctx.fail(COMMAND, "ACCOUNT_REQUIRED", &["DELETE"], "Log in to delete your messages");
                return;
            };
            let who = account.clone();
            let done = tokio::task::spawn_blocking(move || history.delete_own(&who)).await;
            match done {
                Ok(Ok(n)) => {
                    ctx.server.log.record(
                        "history_delete",
                        ctx.actor(),
                        &[("account", Value::Text(&account)), ("messages", Value::Num(n))],
                    );
                    ctx.send_standard(COMMAND, &["DELETE", &n.to_string()], "Your messages were deleted from history");
                }
                _ => ctx.fail(COMMAND, "MESSAGE_ERROR", &["DELETE"], "Deleting failed; try again later"),
            }
        }
        "PURGE" => {
            let Some(channel) = msg.param(1).filter(|c| c.starts_with('#')).map(str::to_string) else {
                ctx.fail(COMMAND, "NEED_MORE_PARAMS", &["PURGE"], "Name the channel to purge");
                return;
            };
            let is_oper = ctx.server.registry.read().user(ctx.session.id).is_some_and(|u| u.oper.is_some());
            if !is_oper {
                ctx.fail(COMMAND, "NO_PRIVILEGES", &["PURGE"], "Only operators purge a channel's history");
                return;
            }
            let target = channel.clone();
            let done = tokio::task::spawn_blocking(move || history.purge(&target)).await;
            match done {
                Ok(Ok(n)) => {
                    ctx.server.log.record(
                        "history_purge",
                        ctx.actor(),
                        &[("channel", Value::Text(&channel)), ("messages", Value::Num(n))],
                    );
                    ctx.send_standard(
                        COMMAND,
                        &["PURGE", &channel, &n.to_string()],
                        "The channel's history was deleted",
                    );
                }
                _ => ctx.fail(COMMAND, "MESSAGE_ERROR", &["PURGE"], "Purging failed; try again later"),
            }
        }
        _ => ctx.fail(COMMAND, "INVALID_PARAMS", &[&sub], "HISTORY DELETE, or HISTORY PURGE #channel"),
    }
}
