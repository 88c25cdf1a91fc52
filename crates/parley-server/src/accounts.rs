//! Accounts: a name that follows the nick rules and casemapping, an
//! argon2id password hash and operator rights, kept in the server's
//! database. Every call blocks (SQLite, argon2): async code runs them on
//! the blocking pool.

use crate::db::{Db, DbError};
use crate::passwords;
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
    #[error(transparent)]
    Hash(#[from] passwords::HashError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for AccountError {
    fn from(e: rusqlite::Error) -> Self {
        AccountError::Db(DbError::Sql(e))
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

    fn check_name(&self, name: &str) -> Result<String, AccountError> {
        validate_nick(name, self.nick_len)
            .map_err(|reason| AccountError::BadName { name: name.to_string(), reason })?;
        Ok(casefold(name))
    }

    /// Registers `name` with `password`; refused if the name (in any case)
    /// is taken. Committed when it returns.
    pub fn create(&self, name: &str, password: &str, oper: bool, now: i64) -> Result<Account, AccountError> {
        let key = self.check_name(name)?;
        if password.is_empty() {
            return Err(AccountError::EmptyPassword);
        }
        let hash = passwords::hash(password)?;
        let inserted = self.db.lock().execute(
            "INSERT INTO accounts (key, name, password_hash, oper, created) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (key) DO NOTHING",
            (&key, name, &hash, oper, now),
        )?;
        if inserted == 0 {
            return Err(AccountError::Exists(name.to_string()));
        }
        Ok(Account { name: name.to_string(), oper, created: now })
    }

    /// The account `name` if `password` is its password. A wrong name and a
    /// wrong password take the same time and give the same error.
    pub fn verify(&self, name: &str, password: &str) -> Result<Account, AccountError> {
        let found = self.row(&casefold(name))?;
        let hash = found.as_ref().map_or(self.decoy.as_str(), |(_, h)| h.as_str());
        let matches = passwords::verify(password, hash);
        match found {
            Some((account, _)) if matches => Ok(account),
            _ => Err(AccountError::Refused),
        }
    }

    pub fn get(&self, name: &str) -> Result<Option<Account>, AccountError> {
        Ok(self.row(&casefold(name))?.map(|(account, _)| account))
    }

    fn row(&self, key: &str) -> Result<Option<(Account, String)>, AccountError> {
        let row = self
            .db
            .lock()
            .query_row("SELECT name, oper, created, password_hash FROM accounts WHERE key = ?1", [key], |r| {
                Ok((Account { name: r.get(0)?, oper: r.get(1)?, created: r.get(2)? }, r.get(3)?))
            })
            .optional()?;
        Ok(row)
    }

    pub fn set_password(&self, name: &str, password: &str) -> Result<(), AccountError> {
        if password.is_empty() {
            return Err(AccountError::EmptyPassword);
        }
        let hash = passwords::hash(password)?;
        self.update(name, "UPDATE accounts SET password_hash = ?2 WHERE key = ?1", &hash)
    }

    pub fn set_oper(&self, name: &str, oper: bool) -> Result<(), AccountError> {
        self.update(name, "UPDATE accounts SET oper = ?2 WHERE key = ?1", &oper)
    }

    pub fn delete(&self, name: &str) -> Result<(), AccountError> {
        let n = self.db.lock().execute("DELETE FROM accounts WHERE key = ?1", [casefold(name)])?;
        if n == 0 {
            return Err(AccountError::NoSuch(name.to_string()));
        }
        Ok(())
    }

    /// Every account, by name.
    pub fn list(&self) -> Result<Vec<Account>, AccountError> {
        let conn = self.db.lock();
        let mut query = conn.prepare("SELECT name, oper, created FROM accounts ORDER BY key")?;
        let rows = query.query_map([], |r| Ok(Account { name: r.get(0)?, oper: r.get(1)?, created: r.get(2)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn update(&self, name: &str, sql: &str, value: &dyn rusqlite::ToSql) -> Result<(), AccountError> {
        let n = self.db.lock().execute(sql, rusqlite::params![casefold(name), value])?;
        if n == 0 {
            return Err(AccountError::NoSuch(name.to_string()));
        }
        Ok(())
    }
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
}
