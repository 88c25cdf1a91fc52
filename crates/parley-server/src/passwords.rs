//! Password hashes, for operators and accounts alike: argon2id with a
//! random salt, kept as PHC strings, and checked by the argon2 crate.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::Rng;
use thiserror::Error;

#[derive(Debug, Error)]
#[error("cannot hash the password: {0}")]
pub struct HashError(String);

/// The argon2id hash of `password` with a fresh random salt.
pub fn hash(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches the PHC string `phc` (false if `phc` is not one).
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default().verify_password(password.as_bytes(), &hash).is_ok(),
        Err(_) => false,
    }
}

/// Whether `phc` is a hash this module can check.
pub fn is_hash(phc: &str) -> bool {
    PasswordHash::new(phc).is_ok()
}

/// A random password of 20 unambiguous letters and digits.
pub fn random() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..20).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_hash_checks_its_password_only() {
        let h = super::hash("sesame").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify("sesame", &h) && !super::verify("Sesame", &h));
        assert!(!super::verify("sesame", "not a hash") && !super::is_hash("not a hash"));
        assert_eq!(super::random().len(), 20);
    }
}
