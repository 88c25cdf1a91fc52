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

#[cfg(test)]
mod tests {
    use super::super::testing::{codes, Harness};

    #[tokio::test]
    async fn register_makes_an_account_named_after_the_nick() {
        let h = Harness::new();
        let mut s = h.connect();
        h.run(&mut s, "CAP LS 302");
        h.run(&mut s, "NICK dave");
        let other = h.run_deferred(&mut s, "REGISTER someone * sesame1").await;
        assert!(other.contains("FAIL REGISTER ACCOUNT_NAME_MUST_BE_NICK someone"), "{other}");
        let weak = h.run_deferred(&mut s, "REGISTER * * abc").await;
        assert!(weak.contains("FAIL REGISTER WEAK_PASSWORD"), "{weak}");
        let made = h.run_deferred(&mut s, "REGISTER * * sesame1").await;
        assert_eq!(codes(&made), ["900", "REGISTER"], "{made}");
        assert!(made.contains("REGISTER SUCCESS dave :"), "{made}");
        assert_eq!(s.account(), Some("dave"));
        let again = h.run_deferred(&mut s, "REGISTER * * sesame1").await;
        assert!(again.contains("FAIL REGISTER ALREADY_AUTHENTICATED"), "{again}");
        // Registration goes on, logged in.
        h.run(&mut s, "USER d 0 * :D");
        assert!(codes(&h.run(&mut s, "CAP END")).contains(&"001"));
        let mut eve = h.user("eve");
        assert!(h.run(&mut eve, "WHOIS dave").contains(" 330 eve dave dave "));
    }

    #[tokio::test]
    async fn register_can_be_turned_off_or_wait_for_the_connection() {
        let h = Harness::with(|c| c.accounts.register_before_connect = false);
        let mut s = h.connect();
        h.run(&mut s, "NICK frank");
        let early = h.run_deferred(&mut s, "REGISTER * * sesame1").await;
        assert!(early.contains("FAIL REGISTER COMPLETE_CONNECTION_REQUIRED"), "{early}");
        let h = Harness::with(|c| c.accounts.self_registration = false);
        let mut s = h.user("frank");
        let off = h.run_deferred(&mut s, "REGISTER * * sesame1").await;
        assert!(off.contains("FAIL REGISTER DISALLOWED"), "{off}");
        assert!(!h.run(&mut s, "CAP LS 302").contains("account-registration"), "not offered when off");
    }

    #[tokio::test]
    async fn with_verification_the_code_is_delivered_and_needed() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("deliver.sh");
        let codes_file = dir.path().join("code");
        std::fs::write(&script, format!("#!/bin/sh\necho \"$PARLEY_CODE\" > {}\n", codes_file.display())).unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let h = Harness::with(|c| c.accounts.verify_command = Some(script.display().to_string()));
        let mut s = h.user("gina");
        assert!(h.run(&mut s, "CAP LS 302").contains("draft/account-registration=before-connect,email-required"));
        let no_mail = h.run_deferred(&mut s, "REGISTER * * sesame1").await;
        assert!(no_mail.contains("FAIL REGISTER INVALID_EMAIL"), "{no_mail}");
        let made = h.run_deferred(&mut s, "REGISTER * gina@example.org sesame1").await;
        assert!(made.contains("REGISTER VERIFICATION_REQUIRED gina :"), "{made}");
        assert_eq!(s.account(), None);
        let code = std::fs::read_to_string(&codes_file).unwrap().trim().to_string();
        let wrong = h.run_deferred(&mut s, "VERIFY gina 00000000x").await;
        assert!(wrong.contains("FAIL VERIFY INVALID_CODE"), "{wrong}");
        let ok = h.run_deferred(&mut s, &format!("VERIFY gina {code}")).await;
        assert!(ok.contains("VERIFY SUCCESS gina") && ok.contains(" 900 "), "{ok}");
        assert_eq!(s.account(), Some("gina"));
    }

    #[tokio::test]
    async fn a_failing_verify_command_frees_the_name() {
        let h = Harness::with(|c| c.accounts.verify_command = Some("false".into()));
        let mut s = h.user("hank");
        let out = h.run_deferred(&mut s, "REGISTER * hank@example.org sesame1").await;
        assert!(out.contains("FAIL REGISTER TEMPORARILY_UNAVAILABLE"), "{out}");
        assert!(h.server.accounts.get("hank").unwrap().is_none());
    }

    #[tokio::test]
    async fn registrations_from_one_address_are_limited() {
        let h = Harness::with(|c| c.accounts.registrations_per_ip = 2);
        for (i, nick) in ["ann", "ben", "cat"].into_iter().enumerate() {
            let mut s = h.user(nick);
            let out = h.run_deferred(&mut s, "REGISTER * * sesame1").await;
            if i < 2 {
                assert!(out.contains("REGISTER SUCCESS"), "{out}");
            } else {
                assert!(out.contains("FAIL REGISTER TEMPORARILY_UNAVAILABLE * :Too many accounts"), "{out}");
            }
        }
        assert!(h.server.accounts.get("cat").unwrap().is_none());
    }
}
