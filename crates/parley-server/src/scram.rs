//! SCRAM-SHA-256 (RFC 5802, RFC 7677), the server's side: the credentials
//! an account keeps, and the checks of the client's two messages. Pure
//! computation, no I/O; `commands::sasl` carries the messages.
//!
//! Written here rather than taken from a crate: the `scram` crate is
//! unmaintained and wants its own provider traits, and the whole exchange
//! is a few HMACs over the RustCrypto `hmac`/`sha2` Parley already uses.
//! PBKDF2 is one block here (the key is as long as the hash), so it is the
//! loop in [`salted_password`] rather than a second digest version pulled
//! in by the `pbkdf2` crate. Channel binding is not offered (`n` or `y`
//! GS2 flags only), and SASLprep is not applied: passwords are used as
//! their UTF-8 bytes, the same as every client Parley was tried with does
//! for ASCII passwords.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use thiserror::Error;

type HmacSha256 = hmac::Hmac<Sha256>;

/// PBKDF2 rounds for new credentials: RFC 7677's minimum, what ergo and
/// most clients expect; a client computes them too, at each login.
pub const ITERATIONS: u32 = 4096;

/// What the server keeps to check a SCRAM login: never the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ScramError {
    #[error("the SCRAM message is malformed")]
    Malformed,
    #[error("channel binding is not supported")]
    ChannelBinding,
    #[error("logging in as another account (authzid) is not supported")]
    Authzid,
    #[error("the nonce does not match")]
    Nonce,
    #[error("wrong account name or password")]
    Refused,
}

impl Credentials {
    /// Credentials for `password` with a fresh random salt.
    pub fn new(password: &str) -> Credentials {
        let salt: [u8; 16] = rand::random();
        Credentials::derive(password, &salt, ITERATIONS)
    }

    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> Credentials {
        let salted = salted_password(password.as_bytes(), salt, iterations);
        let client_key = hmac(&salted, b"Client Key");
        Credentials {
            iterations,
            salt: salt.to_vec(),
            stored_key: Sha256::digest(client_key).into(),
            server_key: hmac(&salted, b"Server Key"),
        }
    }

    /// Credentials no proof can match, for an account that does not exist:
    /// the exchange goes on as for a real one, so a client cannot tell the
    /// two apart before the end. The salt is stable for a name.
    pub fn decoy(name: &str, secret: &[u8]) -> Credentials {
        let salt = hmac(secret, name.as_bytes())[..16].to_vec();
        Credentials { iterations: ITERATIONS, salt, stored_key: rand::random(), server_key: rand::random() }
    }

    /// As stored: `iterations:salt:stored_key:server_key`, base64 parts.
    pub fn encode(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }

    pub fn decode(text: &str) -> Option<Credentials> {
        let mut parts = text.split(':');
        let iterations = parts.next()?.parse().ok()?;
        let salt = B64.decode(parts.next()?).ok()?;
        let stored_key = B64.decode(parts.next()?).ok()?.try_into().ok()?;
        let server_key = B64.decode(parts.next()?).ok()?.try_into().ok()?;
        parts.next().is_none().then_some(Credentials { iterations, salt, stored_key, server_key })
    }
}

/// The client's first message, parsed: who logs in, and what the rest of
/// the exchange must repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// The account name (`n=`), unescaped.
    pub user: String,
    nonce: String,
    /// The GS2 header (`n,,`), which `c=` must repeat in base64.
    gs2_header: String,
    /// The message without its GS2 header, part of what is signed.
    bare: String,
}

impl ClientFirst {
    pub fn parse(message: &str) -> Result<ClientFirst, ScramError> {
        let (flag, rest) = message.split_once(',').ok_or(ScramError::Malformed)?;
        match flag {
            "n" | "y" => {}
            f if f.starts_with("p=") => return Err(ScramError::ChannelBinding),
            _ => return Err(ScramError::Malformed),
        }
        let (authzid, bare) = rest.split_once(',').ok_or(ScramError::Malformed)?;
        let mut fields = bare.split(',');
        let user = unescape(fields.next().and_then(|f| f.strip_prefix("n=")).ok_or(ScramError::Malformed)?)?;
        let nonce = fields.next().and_then(|f| f.strip_prefix("r=")).ok_or(ScramError::Malformed)?;
        if user.is_empty() || nonce.is_empty() || !nonce.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return Err(ScramError::Malformed);
        }
        // A mandatory extension (`m=`) is one the server does not know.
        if bare.split(',').any(|f| f.starts_with("m=")) {
            return Err(ScramError::Malformed);
        }
        if !authzid.is_empty() {
            let named = unescape(authzid.strip_prefix("a=").ok_or(ScramError::Malformed)?)?;
            if named != user {
                return Err(ScramError::Authzid);
            }
        }
        Ok(ClientFirst {
            user,
            nonce: nonce.to_string(),
            gs2_header: format!("{flag},{authzid},"),
            bare: bare.to_string(),
        })
    }
}

/// The server between its first message and the client's final one.
#[derive(Debug, Clone)]
pub struct Exchange {
    first: ClientFirst,
    server_first: String,
    nonce: String,
    credentials: Credentials,
}

impl Exchange {
    /// Starts the exchange: returns it and the server's first message.
    pub fn start(first: ClientFirst, credentials: Credentials) -> (Exchange, String) {
        let ours: [u8; 18] = rand::random();
        Exchange::start_with_nonce(first, credentials, &B64.encode(ours))
    }

    fn start_with_nonce(first: ClientFirst, credentials: Credentials, ours: &str) -> (Exchange, String) {
        let nonce = format!("{}{ours}", first.nonce);
        let server_first = format!("r={nonce},s={},i={}", B64.encode(&credentials.salt), credentials.iterations);
        let exchange = Exchange { first, server_first: server_first.clone(), nonce, credentials };
        (exchange, server_first)
    }

    /// Checks the client's final message; on success returns the account
    /// name and the server's final message (`v=`), which proves to the
    /// client that the server knew its credentials.
    pub fn finish(&self, client_final: &str) -> Result<(&str, String), ScramError> {
        let (without_proof, proof) = client_final.rsplit_once(",p=").ok_or(ScramError::Malformed)?;
        let proof = B64.decode(proof).map_err(|_| ScramError::Malformed)?;
        let mut fields = without_proof.split(',');
        let binding = fields.next().and_then(|f| f.strip_prefix("c=")).ok_or(ScramError::Malformed)?;
        let nonce = fields.next().and_then(|f| f.strip_prefix("r=")).ok_or(ScramError::Malformed)?;
        if B64.decode(binding).ok().as_deref() != Some(self.first.gs2_header.as_bytes()) {
            return Err(ScramError::ChannelBinding);
        }
        if nonce != self.nonce {
            return Err(ScramError::Nonce);
        }
        let auth_message = format!("{},{},{without_proof}", self.first.bare, self.server_first);
        let signature = hmac(&self.credentials.stored_key, auth_message.as_bytes());
        if proof.len() != 32 {
            return Err(ScramError::Refused);
        }
        let client_key: Vec<u8> = proof.iter().zip(signature).map(|(p, s)| p ^ s).collect();
        let stored: [u8; 32] = Sha256::digest(&client_key).into();
        // Both sides are hashes of secrets; compare without an early exit.
        if stored.iter().zip(self.credentials.stored_key).fold(0, |acc, (a, b)| acc | (a ^ b)) != 0 {
            return Err(ScramError::Refused);
        }
        let server_signature = hmac(&self.credentials.server_key, auth_message.as_bytes());
        Ok((&self.first.user, format!("v={}", B64.encode(server_signature))))
    }

    /// The account name the client gave.
    pub fn user(&self) -> &str {
        &self.first.user
    }
}

/// The client's side of the final step, for Parley's own tools and tests:
/// given the password, the client's first message without its GS2 header
/// (`n=...,r=...`) and the server's first message, the client's final
/// message and the server signature (`v=...`) to expect back.
pub fn client_final(password: &str, client_first_bare: &str, server_first: &str) -> Option<(String, String)> {
    let mut nonce = None;
    let mut salt = None;
    let mut iterations = None;
    for field in server_first.split(',') {
        match field.split_at_checked(2) {
            Some(("r=", v)) => nonce = Some(v),
            Some(("s=", v)) => salt = B64.decode(v).ok(),
            Some(("i=", v)) => iterations = v.parse().ok(),
            _ => {}
        }
    }
    let (nonce, salt, iterations) = (nonce?, salt?, iterations?);
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let salted = salted_password(password.as_bytes(), &salt, iterations);
    let client_key = hmac(&salted, b"Client Key");
    let signature = hmac(&Sha256::digest(client_key), auth_message.as_bytes());
    let proof: Vec<u8> = client_key.iter().zip(signature).map(|(k, s)| k ^ s).collect();
    let server_signature = hmac(&hmac(&salted, b"Server Key"), auth_message.as_bytes());
    Some((format!("{without_proof},p={}", B64.encode(proof)), format!("v={}", B64.encode(server_signature))))
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// PBKDF2-HMAC-SHA-256 for one 32-byte block (RFC 8018, `Hi` in RFC 5802).
fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut block = Vec::with_capacity(salt.len() + 4);
    block.extend_from_slice(salt);
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(password, &block);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac(password, &u);
        out.iter_mut().zip(u).for_each(|(o, x)| *o ^= x);
    }
    out
}

/// A SCRAM `saslname`: `=2C` is `,` and `=3D` is `=`; any other `=` is an error.
fn unescape(name: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example exchange of RFC 7677, section 3.
    #[test]
    fn the_rfc_7677_example_logs_in() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let credentials = Credentials::derive("pencil", &salt, 4096);
        let first = ClientFirst::parse("n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        assert_eq!(first.user, "user");
        let (exchange, server_first) =
            Exchange::start_with_nonce(first, credentials.clone(), "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
        assert_eq!(
            server_first,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let client_final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let (user, server_final) = exchange.finish(client_final).unwrap();
        assert_eq!(user, "user");
        assert_eq!(server_final, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        let ours = super::client_final("pencil", "n=user,r=rOprNGfwEbeRWgbNEkqO", &server_first).unwrap();
        assert_eq!((ours.0.as_str(), ours.1.as_str()), (client_final, server_final.as_str()), "the client side agrees");
        let wrong = client_final.replace("p=dHzb", "p=dHzc");
        assert_eq!(exchange.finish(&wrong).unwrap_err(), ScramError::Refused);
        let other_nonce = client_final.replace("r=rOpr", "r=xOpr");
        assert_eq!(exchange.finish(&other_nonce).unwrap_err(), ScramError::Nonce);
        assert_eq!(Credentials::decode(&credentials.encode()), Some(credentials));
    }

    #[test]
    fn client_first_messages_are_checked() {
        assert_eq!(ClientFirst::parse("n,,n=a=2Cb=3Dc,r=x").unwrap().user, "a,b=c");
        assert_eq!(ClientFirst::parse("n,a=bob,n=bob,r=x").unwrap().user, "bob");
        assert_eq!(ClientFirst::parse("n,a=eve,n=bob,r=x").unwrap_err(), ScramError::Authzid);
        assert_eq!(ClientFirst::parse("p=tls-unique,,n=bob,r=x").unwrap_err(), ScramError::ChannelBinding);
        for bad in ["", "n,,n=bob", "n,,r=x,n=bob", "n,,n=b=ob,r=x", "x,,n=bob,r=x", "n,,m=ext,n=bob,r=x"] {
            assert!(ClientFirst::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_decoy_has_a_stable_salt_and_matches_no_proof() {
        let a = Credentials::decoy("nobody", b"secret");
        assert_eq!(a.salt, Credentials::decoy("nobody", b"secret").salt);
        assert_ne!(a.salt, Credentials::decoy("somebody", b"secret").salt);
    }
}
