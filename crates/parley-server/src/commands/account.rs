//! What logging in and out does to a connection, whichever way it came
//! (SASL, PASS, NickServ IDENTIFY, REGISTER): the numerics, the registry
//! (so `account-notify` peers and WHOIS see it), the activity log; and the
//! claim a registered nick has on whoever uses it without logging in
//! (`accounts.nick_enforcement`).

use crate::accounts::AccountError;
use crate::activity_log::Value;
use crate::config::NickEnforcement;
use crate::session::Ctx;
use parley_proto::irc_eq;
use parley_proto::numeric::*;
use std::time::Duration;

/// Logs this connection in to `account` (as stored), by `how` (the
/// mechanism or command, for the log).
pub async fn log_in(ctx: &mut Ctx<'_>, account: &str, how: &'static str) {
    // With a store shared by several nodes, the account's read markers may
    // have moved through another node: read them before the client asks.
    if let Some(history) = ctx.server.history.clone().filter(|h| h.shares_store()) {
        let who = account.to_string();
        match tokio::task::spawn_blocking(move || history.reload_markers(&who)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(account, error = %e, "history: reading an account's read markers failed"),
            Err(e) => tracing::warn!(account, error = %e, "history: reading an account's read markers failed"),
        }
    }
    let mask = ctx.session.hostmask();
    ctx.reply(RPL_LOGGEDIN, &[mask.as_str(), account, &format!("You are now logged in as {account}")]);
    let nick_is_account = ctx.session.nick.as_deref().is_some_and(|n| irc_eq(n, account));
    let login = ctx.session.login_mut();
    login.account = Some(account.to_string());
    login.pending = None;
    if nick_is_account {
        login.claim = None;
    }
    if ctx.session.registered {
        ctx.server.registry.set_account(ctx.session.id, Some(account), &mask);
    }
    log(ctx, how, account, "granted");
}

/// Logs this connection out of its account, if it is logged in.
pub fn log_out(ctx: &mut Ctx<'_>) {
    let Some(account) = ctx.session.login.as_mut().and_then(|l| l.account.take()) else { return };
    let mask = ctx.session.hostmask();
    ctx.reply(RPL_LOGGEDOUT, &[mask.as_str(), "You are now logged out"]);
    if ctx.session.registered {
        ctx.server.registry.set_account(ctx.session.id, None, &mask);
    }
    ctx.server.log.record("logout", ctx.actor(), &[("account", Value::Text(&account))]);
    check_claim(ctx);
}

/// A login attempt in the activity log: the account tried, never the password.
pub fn log(ctx: &Ctx<'_>, how: &'static str, account: &str, result: &'static str) {
    let fields = [("mechanism", Value::Text(how)), ("account", Value::Text(account)), ("result", Value::Text(result))];
    ctx.server.log.record("login", ctx.actor(), &fields);
    crate::metrics::login(result);
}

/// Whether `nick` is an account's name that this connection is not logged
/// in to. A point lookup in the database, on this thread: microseconds in
/// SQLite; PostgreSQL's blocking client may not run on a runtime thread,
/// so there the lookup runs on a thread of its own, a network round trip
/// (a store error counts as "no", and is logged).
pub fn nick_is_claimed(ctx: &Ctx<'_>, nick: &str) -> bool {
    if ctx.session.account().is_some_and(|a| irc_eq(a, nick)) {
        return false;
    }
    let accounts = &ctx.server.accounts;
    let found = if accounts.db().is_postgres() {
        std::thread::scope(|s| s.spawn(|| accounts.get(nick)).join())
            .unwrap_or_else(|_| Err(crate::accounts::AccountError::Internal("the lookup panicked".into())))
    } else {
        accounts.get(nick)
    };
    match found {
        Ok(found) => found.is_some(),
        Err(e) => {
            tracing::error!(error = %e, "account lookup failed");
            false
        }
    }
}

/// With `nick_enforcement = "refuse"`: whether `nick` may not be taken by
/// this connection; says so (433) if not.
pub fn refuse_claimed(ctx: &Ctx<'_>, nick: &str) -> bool {
    if ctx.server.config.accounts.nick_enforcement != NickEnforcement::Refuse || !nick_is_claimed(ctx, nick) {
        return false;
    }
    ctx.reply(
        ERR_NICKNAMEINUSE,
        &[nick, "Nickname is registered to an account: log in to it (SASL, or /msg NickServ IDENTIFY) first"],
    );
    true
}

/// After registration and each nick change: with `nick_enforcement =
/// "rename"`, a registered nick used without logging in starts its grace
/// period (and the user is told); any other nick ends one.
pub fn check_claim(ctx: &mut Ctx<'_>) {
    let accounts = &ctx.server.config.accounts;
    if accounts.nick_enforcement != NickEnforcement::Rename || !ctx.session.registered {
        return;
    }
    let grace = accounts.nick_grace_secs;
    let nick = ctx.session.nick.clone().unwrap_or_default();
    if !nick_is_claimed(ctx, &nick) {
        if let Some(login) = ctx.session.login.as_mut() {
            login.claim = None;
        }
        return;
    }
    ctx.session.login_mut().claim = Some(tokio::time::Instant::now() + Duration::from_secs(grace));
    super::services::notice(
        ctx,
        &format!(
            "The nick {nick} is registered to an account. Log in within {grace} seconds \
             (/msg NickServ IDENTIFY <password>) or it will be changed."
        ),
    );
}

/// When the connection's claim deadline, if any, falls.
pub fn claim_deadline(session: &crate::session::Session) -> Option<tokio::time::Instant> {
    session.login.as_ref().and_then(|l| l.claim)
}

/// Takes a registered nick back once its grace period is over: the user
/// becomes `Guest` and digits. On a cluster node the guest nick is claimed
/// cluster-wide first and the registered nick's claim given up after, so
/// the account's owner can take it on any node.
pub async fn enforce_claim(ctx: &mut Ctx<'_>) {
    let Some(login) = ctx.session.login.as_mut() else { return };
    if login.claim.is_none_or(|at| tokio::time::Instant::now() < at) {
        return;
    }
    login.claim = None;
    let old = ctx.session.nick.clone().unwrap_or_default();
    let cluster = ctx.server.cluster.clone();
    let id = ctx.session.id;
    for _ in 0..10 {
        let guest = format!("Guest{}", rand::random::<u32>() % 100_000);
        // Cut off from NATS (`Unavailable`), the node goes by its own users.
        if let Some(cluster) = &cluster {
            if cluster.claim_nick(&guest, id).await == crate::cluster::Claim::Lost {
                continue;
            }
        }
        let old_mask = ctx.session.hostmask();
        let renamed = {
            let _batch = crate::outbound::OutBatch::begin();
            ctx.server.registry.rename(id, &guest, old_mask)
        };
        let Ok(relay) = renamed else {
            if let Some(cluster) = &cluster {
                cluster.release_nick(&guest, id).await;
            }
            continue;
        };
        {
            ctx.send_relay(&relay);
            ctx.session.set_nick(&guest);
            super::services::notice(ctx, &format!("You did not log in to {old} in time: your nick is now {guest}."));
            ctx.server.log.record(
                "nick",
                ctx.actor(),
                &[("new", Value::Text(&guest)), ("why", Value::Text("claimed"))],
            );
        }
        if let Some(cluster) = &cluster {
            cluster.release_nick(&old, id).await;
        }
        return;
    }
}

/// Why a self-registration was refused, as `REGISTER` (FAIL codes) and
/// NickServ (sentences) say it.
pub enum RegisterRefusal {
    Disallowed,
    AlreadyLoggedIn,
    NeedNick,
    NameMustBeNick,
    /// The name is an account already, or another connection's nick.
    Exists,
    BadName(String),
    WeakPassword,
    InvalidEmail,
    /// The store failed, or the verification code could not be sent.
    Unavailable(String),
    /// Over `accounts.registrations_per_ip` (or `_total`): seconds to wait.
    TooMany(u64),
}

impl RegisterRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            RegisterRefusal::Disallowed => "DISALLOWED",
            RegisterRefusal::AlreadyLoggedIn => "ALREADY_AUTHENTICATED",
            RegisterRefusal::NeedNick => "NEED_NICK",
            RegisterRefusal::NameMustBeNick => "ACCOUNT_NAME_MUST_BE_NICK",
            RegisterRefusal::Exists => "ACCOUNT_EXISTS",
            RegisterRefusal::BadName(_) => "BAD_ACCOUNT_NAME",
            RegisterRefusal::WeakPassword => "WEAK_PASSWORD",
            RegisterRefusal::InvalidEmail => "INVALID_EMAIL",
            RegisterRefusal::Unavailable(_) | RegisterRefusal::TooMany(_) => "TEMPORARILY_UNAVAILABLE",
        }
    }

    pub fn text(&self) -> String {
        match self {
            RegisterRefusal::Disallowed => "Registering accounts is turned off here; ask an administrator".into(),
            RegisterRefusal::AlreadyLoggedIn => "You are already logged in to an account".into(),
            RegisterRefusal::NeedNick => "Choose a nick first: the account is named after it".into(),
            RegisterRefusal::NameMustBeNick => "The account name must be your current nick".into(),
            RegisterRefusal::Exists => "That name is taken by an account or another user".into(),
            RegisterRefusal::BadName(why) => format!("That cannot be an account name: {why}"),
            RegisterRefusal::WeakPassword => "Choose a password of at least 4 characters".into(),
            RegisterRefusal::InvalidEmail => {
                "An e-mail address is needed here, to send the verification code to".into()
            }
            RegisterRefusal::Unavailable(why) => format!("Registration failed: {why}; try again later"),
            RegisterRefusal::TooMany(wait) => {
                format!("Too many accounts registered from here lately; try again in {wait} seconds")
            }
        }
    }
}

/// How a registration ended.
pub enum Registered {
    /// Made and logged in to.
    Done(String),
    /// Made, waiting for `VERIFY` with the code `verify_command` delivered.
    NeedsVerification(String),
}

/// Shortest password a user may choose.
const MIN_PASSWORD: usize = 4;

/// Self-registration of `name` (`*`: the current nick) with `password`,
/// shared by `REGISTER` and `NickServ REGISTER`.
pub async fn register(
    ctx: &mut Ctx<'_>,
    name: &str,
    email: Option<&str>,
    password: &str,
) -> Result<Registered, RegisterRefusal> {
    let config = &ctx.server.config.accounts;
    if !config.self_registration {
        return Err(RegisterRefusal::Disallowed);
    }
    if ctx.session.account().is_some() {
        return Err(RegisterRefusal::AlreadyLoggedIn);
    }
    let refused = ctx.session.login.as_ref().and_then(|l| l.refused_nick.clone());
    let nick = ctx.session.nick.clone().or(refused).ok_or(RegisterRefusal::NeedNick)?;
    let name = if name == "*" { nick.as_str() } else { name };
    if !irc_eq(name, &nick) {
        return Err(RegisterRefusal::NameMustBeNick);
    }
    if let Err(e) = parley_proto::validate_nick(name, ctx.server.config.limits.nick_len) {
        return Err(RegisterRefusal::BadName(e.to_string()));
    }
    if ctx.server.registry.read().id_by_nick(name).is_some_and(|holder| holder != ctx.session.id) {
        return Err(RegisterRefusal::Exists);
    }
    if password.chars().count() < MIN_PASSWORD || password == "*" {
        return Err(RegisterRefusal::WeakPassword);
    }
    let ip = ctx.session.addr.ip();
    if let Some(wait) = ctx.server.registrations.limited(ip) {
        return Err(RegisterRefusal::TooMany(wait));
    }
    let email = email.filter(|e| *e != "*");
    let verify = config.verify_command.clone();
    if verify.is_some() && !email.is_some_and(looks_like_email) {
        return Err(RegisterRefusal::InvalidEmail);
    }
    let code = verify.as_ref().map(|_| format!("{:08}", rand::random::<u32>() % 100_000_000));
    let accounts = ctx.server.accounts.clone();
    let (owned_name, owned_email, owned_password, owned_code) =
        (name.to_string(), email.map(str::to_string), password.to_string(), code.clone());
    let now = crate::clock::unix_now();
    let made = tokio::task::spawn_blocking(move || match owned_code {
        Some(code) => accounts.create_pending(&owned_name, &owned_password, owned_email.as_deref(), &code, now),
        None => accounts.create(&owned_name, &owned_password, false, now),
    })
    .await;
    let account = match made {
        Ok(Ok(account)) => {
            ctx.server.registrations.note(ip);
            account
        }
        Ok(Err(AccountError::Exists(_))) => return Err(RegisterRefusal::Exists),
        Ok(Err(AccountError::BadName { reason, .. })) => return Err(RegisterRefusal::BadName(reason.to_string())),
        Ok(Err(e)) => return Err(RegisterRefusal::Unavailable(e.to_string())),
        Err(e) => return Err(RegisterRefusal::Unavailable(e.to_string())),
    };
    ctx.server.log.record("account_registered", ctx.actor(), &[("account", Value::Text(&account.name))]);
    match (verify, code) {
        (Some(command), Some(code)) => {
            let limit = Duration::from_secs(ctx.server.config.accounts.verify_command_timeout_secs);
            if let Err(why) = send_code(&command, &account.name, email.unwrap_or_default(), &code, limit).await {
                tracing::error!(account = %account.name, error = %why, "verify_command failed");
                // Nobody can verify it now: take it back so the name is free.
                let (accounts, name) = (ctx.server.accounts.clone(), account.name.clone());
                let _ = tokio::task::spawn_blocking(move || accounts.delete(&name)).await;
                return Err(RegisterRefusal::Unavailable("the verification code could not be sent".into()));
            }
            Ok(Registered::NeedsVerification(account.name))
        }
        _ => {
            log_in(ctx, &account.name, "REGISTER").await;
            Ok(Registered::Done(account.name))
        }
    }
}

fn looks_like_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    !local.is_empty() && domain.contains('.') && !email.contains([' ', ',', '\0'])
}

/// Runs `accounts.verify_command` to deliver a verification code.
async fn send_code(command: &str, account: &str, email: &str, code: &str, limit: Duration) -> Result<(), String> {
    let mut child = tokio::process::Command::new(command)
        .env("PARLEY_ACCOUNT", account)
        .env("PARLEY_EMAIL", email)
        .env("PARLEY_CODE", code)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {command}: {e}"))?;
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!("{command} exited with {status}")),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("{command} did not finish in {} seconds", limit.as_secs())),
    }
}

/// Completes a registration waiting for verification, and logs in to it.
pub async fn verify(ctx: &mut Ctx<'_>, name: &str, code: &str) -> Result<String, AccountError> {
    let accounts = ctx.server.accounts.clone();
    let (name, code) = (name.to_string(), code.to_string());
    let account = tokio::task::spawn_blocking(move || accounts.verify_code(&name, &code))
        .await
        .map_err(|e| AccountError::Internal(e.to_string()))??;
    log_in(ctx, &account.name, "VERIFY").await;
    Ok(account.name)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{codes, Harness};
    use crate::caps;
    use crate::config::NickEnforcement;

    #[tokio::test]
    async fn account_notify_extended_join_and_account_tag_reach_those_who_asked() {
        let h = Harness::new();
        h.server.accounts.create("alice", "sesame", false, 0).unwrap();
        let [mut alice, mut bob, mut carol] = h.in_channel("#c", ["alice", "bob", "carol"]);
        h.run(&mut bob, "CAP REQ :account-notify extended-join account-tag");
        h.received(&bob);
        h.run_deferred(&mut alice, "NS IDENTIFY sesame").await;
        assert_eq!(h.received(&bob), ":alice!~alice@127.0.0.1 ACCOUNT alice\r\n");
        assert!(h.received(&carol).is_empty(), "carol did not ask");
        h.run(&mut alice, "PRIVMSG #c :hi");
        assert!(h.received(&bob).starts_with("@account=alice :alice!"));
        assert!(h.received(&carol).starts_with(":alice!"));
        h.run(&mut alice, "PART #c");
        h.received(&bob);
        h.received(&carol);
        h.run(&mut alice, "JOIN #c");
        assert_eq!(h.received(&bob), "@account=alice :alice!~alice@127.0.0.1 JOIN #c alice :alice here\r\n");
        assert_eq!(h.received(&carol), ":alice!~alice@127.0.0.1 JOIN #c\r\n");
        h.run(&mut carol, "CAP REQ extended-join");
        h.run(&mut carol, "PART #c");
        let own = h.run(&mut carol, "JOIN #c");
        assert!(own.starts_with(":carol!~carol@127.0.0.1 JOIN #c * :carol here\r\n"), "{own}");
        assert!(bob.has_cap(caps::ACCOUNT_TAG));
    }

    #[tokio::test]
    async fn a_registered_nick_is_refused_to_others_when_so_configured() {
        let h = Harness::with(|c| c.accounts.nick_enforcement = NickEnforcement::Refuse);
        h.server.accounts.create("alice", "sesame", false, 0).unwrap();
        let mut bob = h.user("bob");
        let out = h.run(&mut bob, "NICK alice");
        assert_eq!(codes(&out), ["433"], "{out}");
        assert!(out.contains("registered to an account"));
        // Registration with the nick is refused too, until logged in.
        let mut s = h.connect();
        h.run(&mut s, "NICK alice");
        assert_eq!(codes(&h.run(&mut s, "USER a 0 * :A")), ["433"]);
        let logged_in = h.run_deferred(&mut s, "PASS alice:sesame").await;
        assert_eq!(codes(&logged_in), ["900"]);
        assert!(codes(&h.run(&mut s, "NICK alice")).contains(&"001"), "USER was given: registered now");
    }

    #[tokio::test]
    async fn a_registered_nick_is_taken_back_after_the_grace_period() {
        let h = Harness::with(|c| c.accounts.nick_grace_secs = 30);
        h.server.accounts.create("alice", "sesame", false, 0).unwrap();
        let mut s = h.connect();
        h.run(&mut s, "NICK alice");
        let burst = h.run(&mut s, "USER a 0 * :A");
        assert!(burst.contains("is registered to an account. Log in within 30 seconds"), "{burst}");
        let deadline = super::claim_deadline(&s).expect("a claim");
        assert!(deadline > tokio::time::Instant::now() + std::time::Duration::from_secs(29));
        // Not yet due: nothing happens.
        let mut ctx = crate::session::Ctx::new(&h.server, &mut s);
        super::enforce_claim(&mut ctx).await;
        assert!(ctx.take_output().is_empty());
        drop(ctx);
        // Due (as the ticker finds it): renamed to a guest nick.
        s.login_mut().claim = Some(tokio::time::Instant::now());
        let mut ctx = crate::session::Ctx::new(&h.server, &mut s);
        super::enforce_claim(&mut ctx).await;
        let out = String::from_utf8(ctx.take_output().to_vec()).unwrap();
        drop(ctx);
        assert!(out.starts_with(":alice!~a@127.0.0.1 NICK Guest"), "{out}");
        assert!(s.nick.as_deref().unwrap().starts_with("Guest"));
        assert!(super::claim_deadline(&s).is_none());
        // Logging in ends a claim: taking the nick back then is fine.
        h.run_deferred(&mut s, "NS IDENTIFY alice sesame").await;
        h.run(&mut s, "NICK alice");
        assert!(super::claim_deadline(&s).is_none());
    }
}
