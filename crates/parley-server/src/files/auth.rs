//! Who is calling the file store. Two ways in, as clients send them:
//!
//! - `Authorization: Basic` with an account's name and password: what
//!   `soju.im/FILEHOST` clients (goguma, gamja, halloy, senpai) send, reusing
//!   their SASL PLAIN credentials. Checked with `Accounts::verify` on the
//!   blocking pool; every failure counts against the same per-address and
//!   global limits as SASL and OPER (`LoginFailures`), so HTTP is no side
//!   door for guessing passwords, and a wrong name costs what a wrong
//!   password costs (`verify` checks a decoy hash).
//! - `Authorization: Bearer` with an `EXTJWT` token of a live IRC session.
//!
//! This module never answers a request itself; it names the caller or
//! gives the refusal.

use super::errors::ApiError;
use super::{FileState, Peer};
use crate::accounts::AccountError;
use crate::activity_log::{Actor, Value};
use axum::http::{header, HeaderMap, StatusCode};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

/// Who is calling.
pub struct Caller {
    /// The nick of the token's session, or the account name for Basic.
    pub nick: String,
    /// The IRC session of a token; 0 for a Basic login.
    pub sid: u64,
    pub oper: bool,
}

pub const HOW_TO_LOG_IN: &str = "Log in with HTTP Basic (your account name and password, as for SASL PLAIN), or send `EXTJWT *` on your IRC connection and pass the token it returns as `Authorization: Bearer <token>`.";

pub fn actor<'a>(peer: &Peer, caller: Option<&'a Caller>) -> Actor<'a> {
    Actor { conn: caller.map_or(0, |c| c.sid), addr: Some(peer.0), nick: caller.map(|c| c.nick.as_str()) }
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Checks the request's credentials: Basic against the accounts, Bearer
/// against the token and its IRC session.
pub async fn authenticate(st: &FileState, headers: &HeaderMap, peer: &Peer) -> Result<Caller, ApiError> {
    let fail = |why: &str, message: String| {
        st.log.record("http_auth_failed", actor(peer, None), &[("reason", Value::Text(why))]);
        ApiError::unauthorized(message)
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(fail("missing", format!("This needs you to log in. {HOW_TO_LOG_IN}")));
    };
    let value = value.to_str().unwrap_or("").trim();
    let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return basic(st, credentials.trim(), peer).await;
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(fail("unknown_scheme", format!("Use the Basic or Bearer scheme. {HOW_TO_LOG_IN}")));
    }
    let claims = match st.tokens.verify(credentials.trim(), now()) {
        Ok(c) => c,
        Err(e) => return Err(fail("invalid", format!("The token was refused: {e}. {HOW_TO_LOG_IN}"))),
    };
    let Some(holder) = st.chat.holder(claims.sid) else {
        return Err(fail(
            "session_ended",
            "The IRC session this token belongs to has ended. Reconnect, then send `EXTJWT *` again and use the new token.".into(),
        ));
    };
    // The name files are owned by: the account when logged in (the same
    // as a Basic login's), else the nick. A nick that is an account's name,
    // used without logging in to it, stands for nobody here: else whoever
    // sat on the nick (during the claim's grace period, or with
    // `nick_enforcement = "off"`) could manage that account's files.
    let name = match holder.account {
        Some(account) => account,
        None => {
            let (accounts, nick) = (st.accounts.clone(), holder.nick.clone());
            let claimed = tokio::task::spawn_blocking(move || accounts.get(&nick)).await.map_err(ApiError::internal)?;
            if !matches!(claimed, Ok(None)) {
                return Err(fail(
                    "nick_of_an_account",
                    format!(
                        "The nick {} belongs to an account: log in to it on IRC (SASL, or /msg NickServ IDENTIFY) and ask for a new token, or use HTTP Basic.",
                        holder.nick
                    ),
                ));
            }
            holder.nick
        }
    };
    Ok(Caller { nick: name, sid: claims.sid, oper: holder.oper })
}

/// HTTP Basic: `base64(name:password)`, checked like SASL PLAIN.
async fn basic(st: &FileState, credentials: &str, peer: &Peer) -> Result<Caller, ApiError> {
    let decoded = B64.decode(credentials).ok().and_then(|b| String::from_utf8(b).ok());
    let Some((name, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
        st.log.record("http_auth_failed", actor(peer, None), &[("reason", Value::Text("malformed_basic"))]);
        return Err(ApiError::bad_request(
            "malformed_credentials",
            "The Basic credentials must be base64 of UTF-8 `name:password`.",
        ));
    };
    let ip = peer.0.ip();
    if let Some(wait) = st.failures.limited(ip) {
        st.log.record(
            "http_auth_failed",
            actor(peer, None),
            &[("reason", Value::Text("rate_limited")), ("account", Value::Text(name))],
        );
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failures",
            format!("Too many failed logins; try again in {wait} seconds."),
        )
        .retry_after(wait));
    }
    let (accounts, n, p) = (st.accounts.clone(), name.to_string(), password.to_string());
    let verified = tokio::task::spawn_blocking(move || accounts.verify(&n, &p)).await.map_err(ApiError::internal)?;
    match verified {
        Ok(account) => Ok(Caller { nick: account.name, sid: 0, oper: account.oper }),
        Err(AccountError::Refused) => {
            st.failures.note(ip);
            st.log.record(
                "http_auth_failed",
                actor(peer, None),
                &[("reason", Value::Text("denied")), ("account", Value::Text(name))],
            );
            Err(ApiError::unauthorized(format!("Wrong account name or password. {HOW_TO_LOG_IN}")))
        }
        Err(e) => {
            tracing::error!(error = %e, "account store failed during an HTTP login");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "accounts_unavailable",
                "The account store is unavailable; try again in a few seconds.",
            ))
        }
    }
}

/// The caller, when the store is configured to need one for reads.
pub async fn read_auth(st: &FileState, headers: &HeaderMap, peer: &Peer) -> Result<Option<Caller>, ApiError> {
    if st.config.files.require_token_for_reads {
        authenticate(st, headers, peer).await.map(Some)
    } else {
        Ok(None)
    }
}

/// The uploader of a file, or an operator.
pub fn may_manage(caller: &Caller, uploaded_by: &str) -> bool {
    caller.oper || parley_proto::irc_eq(&caller.nick, uploaded_by)
}
