//! `REGISTER` and `VERIFY` (IRCv3 `draft/account-registration`): making an
//! account from the client, before or after connection registration as
//! the config allows. Answers are standard replies: `REGISTER SUCCESS`,
//! `REGISTER VERIFICATION_REQUIRED`, `VERIFY SUCCESS`, or `FAIL`.

use super::account::{self, Registered};
use crate::accounts::AccountError;
use crate::session::Ctx;
use parley_proto::MessageRef;

/// The value of the `draft/account-registration` capability: its flags.
pub fn cap_value(config: &crate::config::AccountsConfig) -> String {
    let mut flags = Vec::new();
    if config.register_before_connect {
        flags.push("before-connect");
    }
    if config.verify_command.is_some() {
        flags.push("email-required");
    }
    flags.join(",")
}

/// `REGISTER <account> <email> <password>`.
pub async fn register(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let (name, email, password) = (msg.params[0], msg.params[1], msg.params[2]);
    if !ctx.session.registered && !ctx.server.config.accounts.register_before_connect {
        let text = "Finish connecting (NICK, USER, CAP END) before registering an account";
        ctx.fail("REGISTER", "COMPLETE_CONNECTION_REQUIRED", &[name], text);
        return;
    }
    match account::register(ctx, name, Some(email), password).await {
        Ok(Registered::Done(account)) => {
            ctx.send_standard("REGISTER", &["SUCCESS", &account], "Account created; you are logged in");
        }
        Ok(Registered::NeedsVerification(account)) => ctx.send_standard(
            "REGISTER",
            &["VERIFICATION_REQUIRED", &account],
            &format!("Account created; a code was sent to {email}: send VERIFY {account} <code>"),
        ),
        Err(refusal) => ctx.fail("REGISTER", refusal.code(), &[name], &refusal.text()),
    }
}

/// `VERIFY <account> <code>`. A wrong code counts as a failed login.
pub async fn verify(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let (name, code) = (msg.params[0], msg.params[1]);
    if ctx.session.account().is_some() {
        ctx.fail("VERIFY", "ALREADY_AUTHENTICATED", &[name], "You are already logged in to an account");
        return;
    }
    let ip = ctx.session.addr.ip();
    if let Some(wait) = ctx.server.operators.failures().limited(ip) {
        let text = format!("Too many failed attempts; try again in {wait} seconds");
        ctx.fail("VERIFY", "TEMPORARILY_UNAVAILABLE", &[name], &text);
        return;
    }
    match account::verify(ctx, name, code).await {
        Ok(account) => ctx.send_standard("VERIFY", &["SUCCESS", &account], "Account verified; you are logged in"),
        Err(AccountError::WrongCode | AccountError::NoSuch(_)) => {
            ctx.server.operators.failures().note(ip);
            ctx.fail("VERIFY", "INVALID_CODE", &[name], "Wrong account name or verification code");
        }
        Err(AccountError::NotPending(_)) => {
            ctx.fail("VERIFY", "ACCOUNT_ALREADY_VERIFIED", &[name], "That account is verified already")
        }
        Err(e) => ctx.fail("VERIFY", "TEMPORARILY_UNAVAILABLE", &[name], &format!("Verification failed: {e}")),
    }
}
