//! Operators: accounts with operator rights, and the failure limits that
//! OPER and every account login share.
//!
//! At start, `bootstrap` makes sure an administrator exists: each
//! `[[oper]]` entry of the config becomes (or updates) an account with
//! operator rights and that password hash, at every start, so the config
//! stays the source of truth for them. Without entries, the first run
//! creates an administrator account (`admin` by default) with a random
//! password that is printed once; `PARLEY_ADMIN_PASSWORD` sets it for
//! scripted setups. The `admin.toml` of earlier versions is imported once
//! (then renamed `admin.toml.imported`). Passwords exist only as argon2id
//! hashes. Verification runs on the blocking pool and always costs one full
//! hash, whether or not the name exists (the account store checks unknown
//! names against a decoy), so timing does not reveal operator names.

use crate::accounts::{AccountError, Accounts};
use crate::config::Config;
use crate::login_failures::LoginFailures;
use crate::passwords;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// The environment variable that sets the generated admin's password.
pub const ADMIN_PASSWORD_ENV: &str = "PARLEY_ADMIN_PASSWORD";

#[derive(Debug, Error)]
pub enum OperatorsError {
    #[error("cannot read or rename {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} is damaged: {reason}; delete it to create a new admin password")]
    Damaged { path: String, reason: String },
    #[error("hashing failed: {0}")]
    Hash(String),
    #[error("operator {name:?}: {source}")]
    Account { name: String, source: AccountError },
}

/// The result of an OPER attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum OperOutcome {
    Granted,
    Denied,
    /// Too many failures recently; try again after this many seconds.
    RateLimited(u64),
}

/// What `bootstrap` did, so `main` can tell the person at the terminal.
pub enum Bootstrap {
    /// Operators come from the config file.
    FromConfig,
    /// An account with operator rights existed already.
    Existing,
    /// The `admin.toml` of an earlier version became this account.
    Imported { name: String },
    /// A new admin was created with this password (show it once).
    Created { name: String, password: String },
    /// The admin's password was set from `PARLEY_ADMIN_PASSWORD`.
    FromEnv { name: String },
}

pub struct Operators {
    /// Failed logins, shared with account logins (the same limits).
    failures: Arc<LoginFailures>,
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, OperatorsError> {
    passwords::hash(password).map_err(|e| OperatorsError::Hash(e.to_string()))
}

#[derive(serde::Deserialize)]
struct AdminFile {
    name: String,
    password_hash: String,
}

impl Operators {
    /// Makes sure an administrator account exists (see the module comment).
    pub fn bootstrap(
        config: &Config,
        env_password: Option<String>,
        accounts: &Accounts,
    ) -> Result<(Operators, Bootstrap), OperatorsError> {
        let limits = &config.limits;
        let operators = Operators {
            failures: Arc::new(LoginFailures::new(
                limits.oper_failures_per_ip,
                limits.oper_failures_global,
                Duration::from_secs(limits.oper_failure_window_secs),
            )),
        };
        let now = crate::clock::unix_now();
        let upsert = |name: &str, hash: &str| {
            accounts
                .upsert_oper(name, hash, now)
                .map_err(|source| OperatorsError::Account { name: name.to_string(), source })
        };
        if !config.opers.is_empty() {
            for entry in &config.opers {
                upsert(&entry.name, &entry.password_hash)?;
            }
            return Ok((operators, Bootstrap::FromConfig));
        }
        let name = config.admin.default_name.clone();
        if let Some(password) = env_password.filter(|p| !p.is_empty()) {
            upsert(&name, &hash_password(&password)?)?;
            return Ok((operators, Bootstrap::FromEnv { name }));
        }
        let path = config.data_dir.join("admin.toml");
        if path.exists() {
            let file = read_admin_file(&path)?;
            let existing = accounts
                .get(&file.name)
                .map_err(|source| OperatorsError::Account { name: file.name.clone(), source })?;
            // Imported once: a password changed since (NickServ, `parleyd
            // account passwd`) is not overwritten by the old file.
            if existing.is_none() {
                upsert(&file.name, &file.password_hash)?;
            }
            let io = |source| OperatorsError::Io { path: path.display().to_string(), source };
            std::fs::rename(&path, path.with_extension("toml.imported")).map_err(io)?;
            return Ok((operators, Bootstrap::Imported { name: file.name }));
        }
        let any = accounts.any_oper().map_err(|source| OperatorsError::Account { name: name.clone(), source })?;
        if any {
            return Ok((operators, Bootstrap::Existing));
        }
        let password = passwords::random();
        upsert(&name, &hash_password(&password)?)?;
        Ok((operators, Bootstrap::Created { name, password }))
    }

    /// The failure limits OPER applies, for account logins to share.
    pub fn failures(&self) -> &Arc<LoginFailures> {
        &self.failures
    }

    /// Checks a name and password from `ip`, applying the failure limits:
    /// an account with operator rights. Runs the hash on the blocking pool;
    /// an unknown name costs one hash, as a known one does.
    pub async fn check(
        self: &Arc<Self>,
        ip: IpAddr,
        name: &str,
        password: &str,
        accounts: &Arc<Accounts>,
    ) -> OperOutcome {
        if let Some(wait) = self.failures.limited(ip) {
            return OperOutcome::RateLimited(wait);
        }
        let (name, password, accounts) = (name.to_string(), password.to_string(), accounts.clone());
        // Accounts check an unknown name against a decoy hash too.
        let ok = tokio::task::spawn_blocking(move || accounts.verify(&name, &password).is_ok_and(|a| a.oper))
            .await
            .unwrap_or(false);
        if ok {
            OperOutcome::Granted
        } else {
            self.failures.note(ip);
            OperOutcome::Denied
        }
    }
}

fn read_admin_file(path: &Path) -> Result<AdminFile, OperatorsError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| OperatorsError::Io { path: shown.clone(), source })?;
    let file: AdminFile =
        toml::from_str(&text).map_err(|e| OperatorsError::Damaged { path: shown.clone(), reason: e.to_string() })?;
    if !passwords::is_hash(&file.password_hash) {
        return Err(OperatorsError::Damaged { path: shown, reason: "not a PHC hash".into() });
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> Config {
        Config { data_dir: dir.to_path_buf(), ..Default::default() }
    }

    fn accounts(dir: &Path) -> Arc<Accounts> {
        let db = Arc::new(crate::db::Db::open(dir).unwrap());
        Arc::new(Accounts::new(db, 30).unwrap())
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[tokio::test]
    async fn an_account_with_operator_rights_can_oper_and_others_cannot() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = accounts(dir.path());
        let (ops, _) = Operators::bootstrap(&config(dir.path()), Some("admin-pw".into()), &accounts).unwrap();
        let ops = Arc::new(ops);
        accounts.create("boss", "boss-pw", true, 0).unwrap();
        accounts.create("worker", "worker-pw", false, 0).unwrap();
        assert_eq!(ops.check(IP, "boss", "boss-pw", &accounts).await, OperOutcome::Granted);
        assert_eq!(ops.check(IP, "boss", "wrong", &accounts).await, OperOutcome::Denied);
        assert_eq!(ops.check(IP, "worker", "worker-pw", &accounts).await, OperOutcome::Denied, "no rights");
        assert_eq!(ops.check(IP, "admin", "admin-pw", &accounts).await, OperOutcome::Granted, "the admin is one");
        assert!(accounts.get("admin").unwrap().unwrap().oper);
    }

    #[tokio::test]
    async fn first_run_creates_an_admin_account_then_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let (c, accounts) = (config(dir.path()), accounts(dir.path()));
        let (ops, boot) = Operators::bootstrap(&c, None, &accounts).unwrap();
        let Bootstrap::Created { name, password } = boot else { panic!("expected a new admin") };
        assert!(!dir.path().join("admin.toml").exists(), "the account store holds it");
        let ops = Arc::new(ops);
        assert_eq!(ops.check(IP, &name, &password, &accounts).await, OperOutcome::Granted);
        let (_, again) = Operators::bootstrap(&c, None, &accounts).unwrap();
        assert!(matches!(again, Bootstrap::Existing));
    }

    #[tokio::test]
    async fn an_old_admin_file_and_config_operators_become_accounts() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = accounts(dir.path());
        let hash = hash_password("from-file").unwrap();
        std::fs::write(dir.path().join("admin.toml"), format!("name = \"root\"\npassword_hash = \"{hash}\"\n"))
            .unwrap();
        let (ops, boot) = Operators::bootstrap(&config(dir.path()), None, &accounts).unwrap();
        assert!(matches!(boot, Bootstrap::Imported { ref name } if name == "root"));
        assert!(dir.path().join("admin.toml.imported").exists() && !dir.path().join("admin.toml").exists());
        let ops = Arc::new(ops);
        assert_eq!(ops.check(IP, "root", "from-file", &accounts).await, OperOutcome::Granted);
        // Config operators are set at every start: a new hash wins.
        let mut c = config(dir.path());
        let entry =
            |pw: &str| crate::config::OperConfig { name: "chief".into(), password_hash: hash_password(pw).unwrap() };
        c.opers = vec![entry("one")];
        Operators::bootstrap(&c, None, &accounts).unwrap();
        c.opers = vec![entry("two")];
        Operators::bootstrap(&c, None, &accounts).unwrap();
        assert_eq!(ops.check(IP, "chief", "one", &accounts).await, OperOutcome::Denied);
        assert_eq!(ops.check(IP, "chief", "two", &accounts).await, OperOutcome::Granted);
        c.opers = vec![crate::config::OperConfig { name: "bad name".into(), password_hash: hash }];
        let err = Operators::bootstrap(&c, None, &accounts).err().expect("refused");
        assert!(err.to_string().contains("cannot be an account name"), "{err}");
    }

    #[tokio::test]
    async fn failures_are_limited_per_address() {
        let dir = tempfile::tempdir().unwrap();
        let a = accounts(dir.path());
        let (ops, _) = Operators::bootstrap(&config(dir.path()), Some("right".into()), &a).unwrap();
        let ops = Arc::new(ops);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(ops.check(ip, "admin", "wrong", &a).await, OperOutcome::Denied);
        }
        assert!(matches!(ops.check(ip, "admin", "right", &a).await, OperOutcome::RateLimited(_)));
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(ops.check(other, "admin", "right", &a).await, OperOutcome::Granted);
        assert_eq!(ops.check(other, "nobody", "right", &a).await, OperOutcome::Denied);
    }
}
