//! `GET /history/export`: the messages the caller's account sent, as JSON,
//! for its owner: logged in as the file store takes it (HTTP Basic with
//! the account, or an EXTJWT token of an IRC session logged in to one).
//! The chat answers through `Chat::export_history`; the store never reads
//! the database itself.

use super::auth::{actor, authenticate};
use super::errors::ApiError;
use super::{FileState, Peer};
use crate::activity_log::Value;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use std::sync::Arc;

pub async fn export(
    State(st): State<Arc<FileState>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = authenticate(&st, &headers, &peer).await?;
    // A Basic login names the account; a token, its IRC session's.
    let account =
        if caller.sid == 0 { Some(caller.nick.clone()) } else { st.chat.holder(caller.sid).and_then(|h| h.account) };
    let Some(account) = account else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "no_account",
            "An export is of an account's messages: log in with your account (HTTP Basic, or a token of an IRC session logged in to it).",
        ));
    };
    let chat = st.chat.clone();
    let of = account.clone();
    let exported = tokio::task::spawn_blocking(move || chat.export_history(&of)).await.map_err(ApiError::internal)?;
    let json = match exported {
        None => return Err(ApiError::new(StatusCode::NOT_FOUND, "no_history", "This server keeps no history.")),
        Some(Err(e)) => return Err(ApiError::internal(e)),
        Some(Ok(json)) => json,
    };
    st.log.record(
        "history_export",
        actor(&peer, Some(&caller)),
        &[("account", Value::Text(&account)), ("bytes", Value::Num(json.len() as u64))],
    );
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}
