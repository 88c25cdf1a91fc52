//! Operator credentials, checked under the login failure limits.
//!
//! Passwords exist here only as argon2id PHC hashes. When the config names no
//! operator, the first run creates one (`admin` by default) with a random
//! password that is printed once and whose hash is kept in
//! `<data_dir>/admin.toml`; `PARLEY_ADMIN_PASSWORD` sets that password for
//! scripted setups. An account with operator rights may OPER as well.
//! Verification runs on the blocking pool (argon2 is deliberately slow) and
//! always costs one full hash, whether or not the name exists (the account
//! store checks unknown names against a decoy), so timing does not reveal
//! valid operator names.

use crate::accounts::Accounts;
use crate::config::{Config, OperConfig};
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
    #[error("cannot read or write {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} is damaged: {reason}; delete it to create a new admin password")]
    Damaged { path: String, reason: String },
    #[error("hashing failed: {0}")]
    Hash(String),
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
    /// An existing `admin.toml` was used.
    Existing,
    /// A new admin was created with this password (show it once).
    Created { name: String, password: String },
    /// The admin's password was set from `PARLEY_ADMIN_PASSWORD`.
    FromEnv { name: String },
}

pub struct Operators {
    entries: Vec<OperConfig>,
    /// Failed logins, shared with account logins (the same limits).
    failures: Arc<LoginFailures>,
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, OperatorsError> {
    passwords::hash(password).map_err(|e| OperatorsError::Hash(e.to_string()))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct AdminFile {
    name: String,
    password_hash: String,
}

impl Operators {
    /// Loads operators from the config, or creates/loads the generated admin
    /// in `data_dir/admin.toml`.
    pub fn bootstrap(config: &Config, env_password: Option<String>) -> Result<(Operators, Bootstrap), OperatorsError> {
        let limits = &config.limits;
        let failures = Arc::new(LoginFailures::new(
            limits.oper_failures_per_ip,
            limits.oper_failures_global,
            Duration::from_secs(limits.oper_failure_window_secs),
        ));
        let make = |entries| Operators { entries, failures: failures.clone() };
        if !config.opers.is_empty() {
            return Ok((make(config.opers.clone()), Bootstrap::FromConfig));
        }
        let path = config.data_dir.join("admin.toml");
        let name = config.admin.default_name.clone();
        if let Some(password) = env_password.filter(|p| !p.is_empty()) {
            let entry = OperConfig { name: name.clone(), password_hash: hash_password(&password)? };
            write_admin_file(&path, &entry)?;
            return Ok((make(vec![entry]), Bootstrap::FromEnv { name }));
        }
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .map_err(|source| OperatorsError::Io { path: path.display().to_string(), source })?;
            let file: AdminFile = toml::from_str(&text)
                .map_err(|e| OperatorsError::Damaged { path: path.display().to_string(), reason: e.to_string() })?;
            if !passwords::is_hash(&file.password_hash) {
                return Err(OperatorsError::Damaged {
                    path: path.display().to_string(),
                    reason: "not a PHC hash".into(),
                });
            }
            let entry = OperConfig { name: file.name, password_hash: file.password_hash };
            return Ok((make(vec![entry]), Bootstrap::Existing));
        }
        let password = passwords::random();
        let entry = OperConfig { name: name.clone(), password_hash: hash_password(&password)? };
        write_admin_file(&path, &entry)?;
        Ok((make(vec![entry]), Bootstrap::Created { name, password }))
    }

    /// The failure limits OPER applies, for account logins to share.
    pub fn failures(&self) -> &Arc<LoginFailures> {
        &self.failures
    }

    /// Checks a name and password from `ip`, applying the failure limits:
    /// an operator of the config (or the generated admin), or else an
    /// account with operator rights. Runs the hash on the blocking pool;
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
        let hash = self.entries.iter().find(|e| e.name == name).map(|e| e.password_hash.clone());
        let (name, password, accounts) = (name.to_string(), password.to_string(), accounts.clone());
        let ok = tokio::task::spawn_blocking(move || match hash {
            Some(hash) => passwords::verify(&password, &hash),
            // Accounts check an unknown name against a decoy hash too.
            None => accounts.verify(&name, &password).is_ok_and(|a| a.oper),
        })
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

fn write_admin_file(path: &Path, entry: &OperConfig) -> Result<(), OperatorsError> {
    let io = |source| OperatorsError::Io { path: path.display().to_string(), source };
    let text = toml::to_string(&AdminFile { name: entry.name.clone(), password_hash: entry.password_hash.clone() })
        .map_err(|e| OperatorsError::Hash(e.to_string()))?;
    let tmp = path.with_extension("toml.tmp");
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(io)?;
        f.write_all(b"# The generated administrator. Only the argon2id hash is stored.\n").map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
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

    #[tokio::test]
    async fn an_account_with_operator_rights_can_oper_and_others_cannot() {
        let dir = tempfile::tempdir().unwrap();
        let (ops, _) = Operators::bootstrap(&config(dir.path()), Some("admin-pw".into())).unwrap();
        let (ops, accounts) = (Arc::new(ops), accounts(dir.path()));
        accounts.create("boss", "boss-pw", true, 0).unwrap();
        accounts.create("worker", "worker-pw", false, 0).unwrap();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(ops.check(ip, "boss", "boss-pw", &accounts).await, OperOutcome::Granted);
        assert_eq!(ops.check(ip, "boss", "wrong", &accounts).await, OperOutcome::Denied);
        assert_eq!(ops.check(ip, "worker", "worker-pw", &accounts).await, OperOutcome::Denied, "no rights");
        assert_eq!(ops.check(ip, "admin", "admin-pw", &accounts).await, OperOutcome::Granted, "the admin still can");
    }

    #[tokio::test]
    async fn first_run_creates_admin_then_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        let (ops, boot) = Operators::bootstrap(&c, None).unwrap();
        let Bootstrap::Created { name, password } = boot else { panic!("expected a new admin") };
        let file = std::fs::read_to_string(dir.path().join("admin.toml")).unwrap();
        assert!(!file.contains(&password) && file.contains("$argon2id$"));
        let ops = Arc::new(ops);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(ops.check(ip, &name, &password, &accounts(dir.path())).await, OperOutcome::Granted);
        let (_, again) = Operators::bootstrap(&c, None).unwrap();
        assert!(matches!(again, Bootstrap::Existing));
    }

    #[tokio::test]
    async fn failures_are_limited_per_address() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        let (ops, _) = Operators::bootstrap(&c, Some("right".into())).unwrap();
        let (ops, a) = (Arc::new(ops), accounts(dir.path()));
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
