//! Accounts: a name that follows the nick rules and casemapping, an
//! argon2id password hash (PLAIN, NickServ, PASS), SCRAM-SHA-256
//! credentials, TLS certificate fingerprints (EXTERNAL) and operator
//! rights, kept in the server's database. An account made by `REGISTER`
//! with verification on waits, unable to log in, until its code is given.
//! Every call blocks (the database, argon2, PBKDF2): async code runs them
//! on the blocking pool. The statements are written for each backend
//! (`db::Conn`); the rules above are written once.

use crate::db::{Conn, Db, DbError};
use crate::passwords;
use crate::scram;
use parley_proto::{casefold, validate_nick, NameError};
use rusqlite::OptionalExtension;
use std::sync::Arc;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// As registered (the key is its casefolded form).
    pub name: String,
    pub oper: bool,
    /// Unix time of registration.
    pub created: i64,
}

#[derive(Debug, Error)]
pub enum AccountError {
    #[error("{name:?} cannot be an account name: {reason}")]
    BadName { name: String, reason: NameError },
    #[error("the account {0} already exists")]
    Exists(String),
    #[error("there is no account {0}")]
    NoSuch(String),
    /// The name or the password was wrong; which, is not said.
    #[error("wrong account name or password")]
    Refused,
    #[error("the password is empty")]
    EmptyPassword,
    #[error("{0:?} is not a SHA-256 certificate fingerprint (64 hex digits)")]
    BadFingerprint(String),
    #[error("the certificate {0} is already registered to an account")]
    FingerprintTaken(String),
    #[error("the account {0} is not waiting for verification")]
    NotPending(String),
    #[error("wrong verification code")]
    WrongCode,
    #[error(transparent)]
    Hash(#[from] passwords::HashError),
    /// A blocking task failed (it panicked).
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for AccountError {
    fn from(e: rusqlite::Error) -> Self {
        AccountError::Db(DbError::Sql(e))
    }
}

impl From<postgres::Error> for AccountError {
    fn from(e: postgres::Error) -> Self {
        AccountError::Db(DbError::Postgres(e))
    }
}

pub struct Accounts {
    db: Arc<Db>,
    nick_len: usize,
    /// Checked against when the account does not exist, so that a wrong
    /// name costs as much as a wrong password.
    decoy: String,
}

impl Accounts {
    /// Account names follow the nick rules with `nick_len`.
    pub fn new(db: Arc<Db>, nick_len: usize) -> Result<Accounts, AccountError> {
        Ok(Accounts { db, nick_len, decoy: passwords::hash(&passwords::random())? })
    }

    /// The database the accounts are in (history opens its own on it).
    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    fn check_name(&self, name: &str) -> Result<String, AccountError> {
        validate_nick(name, self.nick_len)
            .map_err(|reason| AccountError::BadName { name: name.to_string(), reason })?;
        Ok(casefold(name))
    }

    /// Registers `name` with `password`; refused if the name (in any case)
    /// is taken. Committed when it returns.
    pub fn create(&self, name: &str, password: &str, oper: bool, now: i64) -> Result<Account, AccountError> {
        self.insert(name, password, oper, now, None)
    }

    /// Registers `name` as [`create`](Self::create) does, but unable to log
    /// in until [`verify_code`](Self::verify_code) is given `code`.
    pub fn create_pending(
        &self,
        name: &str,
        password: &str,
        email: Option<&str>,
        code: &str,
        now: i64,
    ) -> Result<Account, AccountError> {
        self.insert(name, password, false, now, Some((email, code)))
    }

    fn insert(
        &self,
        name: &str,
        password: &str,
        oper: bool,
        now: i64,
        pending: Option<(Option<&str>, &str)>,
    ) -> Result<Account, AccountError> {
        let key = self.check_name(name)?;
        if password.is_empty() {
            return Err(AccountError::EmptyPassword);
        }
        let hash = passwords::hash(password)?;
        let scram = scram::Credentials::new(password).encode();
        let (email, code) = pending.map_or((None, None), |(e, c)| (e, Some(c)));
        const INSERT: &str = "INSERT INTO accounts (key, name, password_hash, oper, created, scram, email, verify_code)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (key) DO NOTHING";
        let inserted = match self.db.get()?.conn() {
            Conn::Sqlite(c) => {
                c.execute(INSERT, rusqlite::params![&key, name, &hash, oper, now, &scram, email, code])?
            }
            Conn::Postgres(c) => c.execute(INSERT, &[&key, &name, &hash, &oper, &now, &scram, &email, &code])? as usize,
        };
        if inserted == 0 {
            return Err(AccountError::Exists(name.to_string()));
        }
        Ok(Account { name: name.to_string(), oper, created: now })
    }

    /// Makes `name` an operator account with the password hash `phc` (a
    /// config `[[oper]]` entry or an imported admin), creating it if need
    /// be. A changed hash drops the SCRAM credentials made from the old one.
    pub fn upsert_oper(&self, name: &str, phc: &str, now: i64) -> Result<(), AccountError> {
        let key = self.check_name(name)?;
        match self.db.get()?.conn() {
            Conn::Sqlite(c) => c.execute(
                "INSERT INTO accounts (key, name, password_hash, oper, created) VALUES (?1, ?2, ?3, 1, ?4)
                 ON CONFLICT (key) DO UPDATE SET oper = 1,
                     scram = CASE WHEN password_hash = excluded.password_hash THEN scram ELSE NULL END,
                     password_hash = excluded.password_hash",
                (&key, name, phc, now),
            )?,
            Conn::Postgres(c) => c.execute(
                "INSERT INTO accounts (key, name, password_hash, oper, created) VALUES ($1, $2, $3, TRUE, $4)
                 ON CONFLICT (key) DO UPDATE SET oper = TRUE,
                     scram = CASE WHEN accounts.password_hash = excluded.password_hash
                         THEN accounts.scram ELSE NULL END,
                     password_hash = excluded.password_hash",
                &[&key, &name, &phc, &now],
            )? as usize,
        };
        Ok(())
    }

    /// Whether any account has operator rights.
    pub fn any_oper(&self) -> Result<bool, AccountError> {
        Ok(match self.db.get()?.conn() {
            Conn::Sqlite(c) => {
                let found: Option<i64> =
                    c.query_row("SELECT 1 FROM accounts WHERE oper = 1 LIMIT 1", [], |r| r.get(0)).optional()?;
                found.is_some()
            }
            Conn::Postgres(c) => c.query_opt("SELECT 1 FROM accounts WHERE oper LIMIT 1", &[])?.is_some(),
        })
    }

    /// Completes a registration that waits for verification.
    pub fn verify_code(&self, name: &str, code: &str) -> Result<Account, AccountError> {
        let key = casefold(name);
        let mut lease = self.db.get()?;
        const SELECT: &str = "SELECT verify_code FROM accounts WHERE key = $1";
        let stored: Option<Option<String>> = match lease.conn() {
            Conn::Sqlite(c) => c.query_row(SELECT, [&key], |r| r.get(0)).optional()?,
            Conn::Postgres(c) => c.query_opt(SELECT, &[&key])?.map(|r| r.get(0)),
        };
        match stored {
            None => return Err(AccountError::NoSuch(name.to_string())),
            Some(None) => return Err(AccountError::NotPending(name.to_string())),
            Some(Some(expected)) if !constant_time_eq(expected.as_bytes(), code.as_bytes()) => {
                return Err(AccountError::WrongCode)
            }
            Some(Some(_)) => {}
        }
        const UPDATE: &str = "UPDATE accounts SET verify_code = NULL WHERE key = $1";
        match lease.conn() {
            Conn::Sqlite(c) => c.execute(UPDATE, [&key])?,
            Conn::Postgres(c) => c.execute(UPDATE, &[&key])? as usize,
        };
        drop(lease);
        self.get(name)?.ok_or_else(|| AccountError::NoSuch(name.to_string()))
    }

    /// The account `name` if `password` is its password. A wrong name and a
    /// wrong password take the same time and give the same error.
    /// An account waiting for verification cannot log in: same error.
    pub fn verify(&self, name: &str, password: &str) -> Result<Account, AccountError> {
        let key = casefold(name);
        let found = self.row(&key)?;
        let hash = found.as_ref().map_or(self.decoy.as_str(), |r| r.hash.as_str());
        let matches = passwords::verify(password, hash);
        match found {
            Some(row) if matches && !row.pending => {
                if !row.has_scram {
                    // Made before SCRAM was offered: now its password is known.
                    let scram = scram::Credentials::new(password).encode();
                    self.update(name, "UPDATE accounts SET scram = $1 WHERE key = $2", &scram)?;
                }
                Ok(row.account)
            }
            _ => Err(AccountError::Refused),
        }
    }

    /// The account's SCRAM credentials, if it exists, may log in and has them.
    pub fn scram(&self, name: &str) -> Result<Option<scram::Credentials>, AccountError> {
        const SELECT: &str = "SELECT scram FROM accounts WHERE key = $1 AND verify_code IS NULL";
        let key = casefold(name);
        let stored: Option<Option<String>> = match self.db.get()?.conn() {
            Conn::Sqlite(c) => c.query_row(SELECT, [&key], |r| r.get(0)).optional()?,
            Conn::Postgres(c) => c.query_opt(SELECT, &[&key])?.map(|r| r.get(0)),
        };
        Ok(stored.flatten().as_deref().and_then(scram::Credentials::decode))
    }

    /// The account a certificate fingerprint is registered to.
    pub fn by_certfp(&self, fingerprint: &str) -> Result<Option<Account>, AccountError> {
        const SELECT: &str = "SELECT c.account FROM certfps c JOIN accounts a ON a.key = c.account
             WHERE c.fingerprint = $1 AND a.verify_code IS NULL";
        let fp = fingerprint.to_ascii_lowercase();
        let key: Option<String> = match self.db.get()?.conn() {
            Conn::Sqlite(c) => c.query_row(SELECT, [&fp], |r| r.get(0)).optional()?,
            Conn::Postgres(c) => c.query_opt(SELECT, &[&fp])?.map(|r| r.get(0)),
        };
        match key {
            Some(key) => Ok(self.row(&key)?.map(|r| r.account)),
            None => Ok(None),
        }
    }

    /// Registers a certificate fingerprint (64 hex digits, colons allowed)
    /// to the account, for EXTERNAL.
    pub fn add_certfp(&self, name: &str, fingerprint: &str) -> Result<String, AccountError> {
        let fp = normalise_fingerprint(fingerprint)?;
        let key = casefold(name);
        const EXISTS: &str = "SELECT 1 FROM accounts WHERE key = $1";
        const INSERT: &str =
            "INSERT INTO certfps (fingerprint, account) VALUES ($1, $2) ON CONFLICT (fingerprint) DO NOTHING";
        let mut lease = self.db.get()?;
        let exists = match lease.conn() {
            Conn::Sqlite(c) => c.query_row(EXISTS, [&key], |_| Ok(())).optional()?.is_some(),
            Conn::Postgres(c) => c.query_opt(EXISTS, &[&key])?.is_some(),
        };
        if !exists {
            return Err(AccountError::NoSuch(name.to_string()));
        }
        let n = match lease.conn() {
            Conn::Sqlite(c) => c.execute(INSERT, (&fp, &key))?,
            Conn::Postgres(c) => c.execute(INSERT, &[&fp, &key])? as usize,
        };
        if n == 0 {
            return Err(AccountError::FingerprintTaken(fp));
        }
        Ok(fp)
    }

    /// Removes a fingerprint from the account; false if it had none such.
    pub fn remove_certfp(&self, name: &str, fingerprint: &str) -> Result<bool, AccountError> {
        let fp = normalise_fingerprint(fingerprint)?;
        const DELETE: &str = "DELETE FROM certfps WHERE fingerprint = $1 AND account = $2";
        let key = casefold(name);
        let n = match self.db.get()?.conn() {
            Conn::Sqlite(c) => c.execute(DELETE, (&fp, &key))?,
            Conn::Postgres(c) => c.execute(DELETE, &[&fp, &key])? as usize,
        };
        Ok(n > 0)
    }

    /// The fingerprints registered to the account.
    pub fn certfps(&self, name: &str) -> Result<Vec<String>, AccountError> {
        const SELECT: &str = "SELECT fingerprint FROM certfps WHERE account = $1 ORDER BY fingerprint";
        let key = casefold(name);
        Ok(match self.db.get()?.conn() {
            Conn::Sqlite(c) => c.prepare(SELECT)?.query_map([&key], |r| r.get(0))?.collect::<Result<_, _>>()?,
            Conn::Postgres(c) => c.query(SELECT, &[&key])?.iter().map(|r| r.get(0)).collect(),
        })
    }

    pub fn get(&self, name: &str) -> Result<Option<Account>, AccountError> {
        Ok(self.row(&casefold(name))?.map(|r| r.account))
    }

    fn row(&self, key: &str) -> Result<Option<Row>, AccountError> {
        // Cached: the nick claim looks accounts up on every registration.
        const SELECT: &str = "SELECT name, oper, created, password_hash, scram IS NOT NULL, verify_code IS NOT NULL
             FROM accounts WHERE key = $1";
        Ok(match self.db.get()?.conn() {
            Conn::Sqlite(c) => c
                .prepare_cached(SELECT)?
                .query_row([key], |r| {
                    Ok(Row {
                        account: Account { name: r.get(0)?, oper: r.get(1)?, created: r.get(2)? },
                        hash: r.get(3)?,
                        has_scram: r.get(4)?,
                        pending: r.get(5)?,
                    })
                })
                .optional()?,
            Conn::Postgres(c) => c.query_opt(SELECT, &[&key])?.map(|r| Row {
                account: Account { name: r.get(0), oper: r.get(1), created: r.get(2) },
                hash: r.get(3),
                has_scram: r.get(4),
                pending: r.get(5),
            }),
        })
    }

    pub fn set_password(&self, name: &str, password: &str) -> Result<(), AccountError> {
        if password.is_empty() {
            return Err(AccountError::EmptyPassword);
        }
        let hash = passwords::hash(password)?;
        self.update(name, "UPDATE accounts SET password_hash = $1 WHERE key = $2", &hash)?;
        let scram = scram::Credentials::new(password).encode();
        self.update(name, "UPDATE accounts SET scram = $1 WHERE key = $2", &scram)
    }

    pub fn set_oper(&self, name: &str, oper: bool) -> Result<(), AccountError> {
        let key = casefold(name);
        let n = match self.db.get()?.conn() {
            Conn::Sqlite(c) => {
                c.execute("UPDATE accounts SET oper = ?2 WHERE key = ?1", rusqlite::params![key, oper])?
            }
            Conn::Postgres(c) => c.execute("UPDATE accounts SET oper = $2 WHERE key = $1", &[&key, &oper])? as usize,
        };
        if n == 0 {
            return Err(AccountError::NoSuch(name.to_string()));
        }
        Ok(())
    }

    pub fn delete(&self, name: &str) -> Result<(), AccountError> {
        const DELETE: &str = "DELETE FROM accounts WHERE key = $1";
        let key = casefold(name);
        let n = match self.db.get()?.conn() {
            Conn::Sqlite(c) => c.execute(DELETE, [&key])?,
            Conn::Postgres(c) => c.execute(DELETE, &[&key])? as usize,
        };
        if n == 0 {
            return Err(AccountError::NoSuch(name.to_string()));
        }
        Ok(())
    }

    /// Every account, by name.
    pub fn list(&self) -> Result<Vec<Account>, AccountError> {
        const SELECT: &str = "SELECT name, oper, created FROM accounts ORDER BY key";
        Ok(match self.db.get()?.conn() {
            Conn::Sqlite(c) => c
                .prepare(SELECT)?
                .query_map([], |r| Ok(Account { name: r.get(0)?, oper: r.get(1)?, created: r.get(2)? }))?
                .collect::<Result<_, _>>()?,
            Conn::Postgres(c) => c
                .query(SELECT, &[])?
                .iter()
                .map(|r| Account { name: r.get(0), oper: r.get(1), created: r.get(2) })
                .collect(),
        })
    }

    /// Sets one text column of the account: `sql` takes the value as
    /// `$1` and the key as `$2` (SQLite numbers `$N` parameters in the
    /// order they first appear, so they must appear in order).
    fn update(&self, name: &str, sql: &str, value: &str) -> Result<(), AccountError> {
        let key = casefold(name);
        let n = match self.db.get()?.conn() {
            Conn::Sqlite(c) => c.execute(sql, (value, &key))?,
            Conn::Postgres(c) => c.execute(sql, &[&value, &key])? as usize,
        };
        if n == 0 {
            return Err(AccountError::NoSuch(name.to_string()));
        }
        Ok(())
    }
}

struct Row {
    account: Account,
    hash: String,
    has_scram: bool,
    pending: bool,
}

/// A SHA-256 fingerprint as stored: 64 lower-case hex digits, colons dropped.
pub fn normalise_fingerprint(fingerprint: &str) -> Result<String, AccountError> {
    let fp: String = fingerprint.chars().filter(|c| *c != ':').collect::<String>().to_ascii_lowercase();
    if fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AccountError::BadFingerprint(fingerprint.to_string()));
    }
    Ok(fp)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> (tempfile::TempDir, Accounts) {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path()).unwrap());
        (dir, Accounts::new(db, 30).unwrap())
    }

    #[test]
    fn names_are_unique_in_any_case_and_follow_the_nick_rules() {
        let (_dir, a) = accounts();
        a.create("Alice", "pw", false, 1).unwrap();
        assert!(matches!(a.create("alice", "x", false, 2), Err(AccountError::Exists(_))));
        assert!(matches!(a.create("bad name", "x", false, 2), Err(AccountError::BadName { .. })));
        assert!(matches!(a.create("bob", "", false, 2), Err(AccountError::EmptyPassword)));
        assert_eq!(a.get("ALICE").unwrap().unwrap().name, "Alice");
    }

    #[test]
    fn a_wrong_name_and_a_wrong_password_look_the_same() {
        let (_dir, a) = accounts();
        a.create("alice", "sesame", false, 1).unwrap();
        assert_eq!(a.verify("ALICE", "sesame").unwrap().name, "alice");
        assert!(matches!(a.verify("alice", "wrong"), Err(AccountError::Refused)));
        assert!(matches!(a.verify("nobody", "sesame"), Err(AccountError::Refused)));
    }

    #[test]
    fn passwords_rights_and_removal_change_what_is_stored() {
        let (dir, a) = accounts();
        a.create("alice", "one", false, 1).unwrap();
        a.set_password("alice", "two").unwrap();
        a.set_oper("Alice", true).unwrap();
        assert!(a.verify("alice", "one").is_err());
        // Another handle on the same file, as after a restart.
        let again = Accounts::new(Arc::new(Db::open(dir.path()).unwrap()), 30).unwrap();
        assert!(again.verify("alice", "two").unwrap().oper);
        again.delete("alice").unwrap();
        assert!(matches!(a.delete("alice"), Err(AccountError::NoSuch(_))));
        assert!(a.list().unwrap().is_empty());
    }

    #[test]
    fn scram_credentials_follow_the_password() {
        let (_dir, a) = accounts();
        a.create("alice", "one", false, 1).unwrap();
        let first = a.scram("Alice").unwrap().expect("made with the account");
        a.set_password("alice", "two").unwrap();
        let second = a.scram("alice").unwrap().unwrap();
        assert_eq!(second, crate::scram::Credentials::derive("two", &second.salt, second.iterations));
        assert_ne!(first, second);
        assert!(a.scram("nobody").unwrap().is_none());
    }

    #[test]
    fn pending_accounts_log_in_only_once_verified() {
        let (_dir, a) = accounts();
        a.create_pending("carol", "pw", Some("c@example.org"), "123456", 1).unwrap();
        assert!(matches!(a.verify("carol", "pw"), Err(AccountError::Refused)));
        assert!(a.scram("carol").unwrap().is_none());
        assert!(matches!(a.verify_code("carol", "654321"), Err(AccountError::WrongCode)));
        assert_eq!(a.verify_code("CAROL", "123456").unwrap().name, "carol");
        assert!(matches!(a.verify_code("carol", "123456"), Err(AccountError::NotPending(_))));
        assert!(a.verify("carol", "pw").is_ok());
    }

    #[test]
    fn certificates_belong_to_one_account_and_go_with_it() {
        let (_dir, a) = accounts();
        a.create("alice", "pw", false, 1).unwrap();
        a.create("bob", "pw", false, 1).unwrap();
        let fp = "AB:".repeat(31) + "AB";
        assert_eq!(a.add_certfp("alice", &fp).unwrap(), "ab".repeat(32));
        assert!(matches!(a.add_certfp("bob", &"ab".repeat(32)), Err(AccountError::FingerprintTaken(_))));
        assert!(matches!(a.add_certfp("bob", "abc"), Err(AccountError::BadFingerprint(_))));
        assert_eq!(a.by_certfp(&"AB".repeat(32)).unwrap().unwrap().name, "alice");
        assert_eq!(a.certfps("alice").unwrap(), ["ab".repeat(32)]);
        a.delete("alice").unwrap();
        assert!(a.by_certfp(&"ab".repeat(32)).unwrap().is_none(), "removed with its account");
        assert!(a.add_certfp("bob", &fp).is_ok());
    }
}
