//! Session tokens for the file store: the JWTs handed out by `EXTJWT`.
//!
//! HS256 only, written here on top of RustCrypto's `hmac`/`sha2`: a general
//! JWT crate would bring RSA and elliptic-curve code (and an open RSA timing
//! advisory) for an algorithm list we must refuse anyway. Accepting exactly
//! one algorithm rules out `alg` confusion. A token names the IRC session
//! (`sid`) and the server process (`boot`) that issued it, so it stops
//! working when that session disconnects or the server restarts.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use std::path::Path;
use thiserror::Error;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is not a JWT")]
    Malformed,
    #[error("the token's signature is wrong")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token was issued by another server or an earlier run of this one")]
    WrongIssuer,
}

/// The claims Parley puts in a token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    /// The nick at issue time.
    pub sub: String,
    /// The IRC connection id of the session.
    pub sid: u64,
    /// Random per server process.
    pub boot: String,
    pub iat: i64,
    pub exp: i64,
}

pub struct Tokens {
    key: Vec<u8>,
    pub issuer: String,
    pub boot: String,
    pub ttl_secs: i64,
}

impl Tokens {
    /// Loads the signing key from `path`, creating it (mode 0600) on first run.
    pub fn load_or_create(path: &Path, issuer: &str, ttl_secs: u64) -> std::io::Result<Tokens> {
        let key = match std::fs::read_to_string(path) {
            Ok(text) => hex::decode(text.trim()).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{} is damaged: {e}", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                crate::private_file::write(path, hex::encode(key).as_bytes())?;
                key.to_vec()
            }
            Err(e) => return Err(e),
        };
        if key.len() < 32 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} holds a short key", path.display()),
            ));
        }
        let boot: [u8; 8] = rand::random();
        Ok(Tokens { key, issuer: issuer.to_string(), boot: hex::encode(boot), ttl_secs: ttl_secs as i64 })
    }

    fn mac(&self) -> HmacSha256 {
        <HmacSha256 as KeyInit>::new_from_slice(&self.key).expect("HMAC takes any key length")
    }

    /// A signed token for session `sid` of `nick`, valid from `now`.
    pub fn issue(&self, nick: &str, sid: u64, now: i64) -> String {
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: nick.to_string(),
            sid,
            boot: self.boot.clone(),
            iat: now,
            exp: now + self.ttl_secs,
        };
        let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = B64.encode(serde_json::to_vec(&claims).expect("claims serialise"));
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let sig = B64.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{sig}")
    }

    /// Checks signature, algorithm, issuer, boot id and expiry.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(TokenError::Malformed);
        };
        let header = B64.decode(h).map_err(|_| TokenError::Malformed)?;
        let header: serde_json::Value = serde_json::from_slice(&header).map_err(|_| TokenError::Malformed)?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return Err(TokenError::Malformed);
        }
        let sig = B64.decode(s).map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(h.as_bytes());
        mac.update(b".");
        mac.update(p.as_bytes());
        // verify_slice compares in constant time.
        mac.verify_slice(&sig).map_err(|_| TokenError::BadSignature)?;
        let payload = B64.decode(p).map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if claims.iss != self.issuer || claims.boot != self.boot {
            return Err(TokenError::WrongIssuer);
        }
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> (tempfile::TempDir, Tokens) {
        let dir = tempfile::tempdir().unwrap();
        let t = Tokens::load_or_create(&dir.path().join("key"), "parley.test", 60).unwrap();
        (dir, t)
    }

    #[test]
    fn issued_tokens_verify_until_they_expire() {
        let (_d, t) = tokens();
        let tok = t.issue("alice", 7, 1000);
        let c = t.verify(&tok, 1001).unwrap();
        assert_eq!((c.sub.as_str(), c.sid), ("alice", 7));
        assert_eq!(t.verify(&tok, 1060), Err(TokenError::Expired));
    }

    #[test]
    fn tampering_and_other_algorithms_are_refused() {
        let (_d, t) = tokens();
        let tok = t.issue("alice", 7, 1000);
        let mut parts: Vec<&str> = tok.split('.').collect();
        let evil = B64.encode(br#"{"iss":"parley.test","sub":"admin","sid":1,"boot":"x","iat":0,"exp":99999}"#);
        parts[1] = &evil;
        assert_eq!(t.verify(&parts.join("."), 1001), Err(TokenError::BadSignature));
        let none = format!("{}.{}.", B64.encode(br#"{"alg":"none"}"#), tok.split('.').nth(1).unwrap());
        assert_eq!(t.verify(&none, 1001), Err(TokenError::Malformed));
        assert_eq!(t.verify("garbage", 1001), Err(TokenError::Malformed));
    }

    #[test]
    fn a_restart_invalidates_old_tokens_but_keeps_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let first = Tokens::load_or_create(&path, "s.test", 60).unwrap();
        let tok = first.issue("a", 1, 0);
        let second = Tokens::load_or_create(&path, "s.test", 60).unwrap();
        assert_eq!(second.verify(&tok, 1), Err(TokenError::WrongIssuer));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
