//! TLS for both listeners, with rustls (ring provider).
//!
//! Certificate and key come from `[tls] cert`/`key` (PEM). When a TLS
//! listener is configured without them, the first run creates a self-signed
//! certificate in `<data_dir>/tls/` (rcgen) and every run reports its SHA-256
//! fingerprint, so users can pin it (`parley --insecure` prints it too).
//!
//! The IRC listener also asks for a client certificate, optionally, and
//! takes any: no CA vouches for it, its fingerprint is the identity (SASL
//! EXTERNAL logs in to the account it is registered to, as CertFP does on
//! other networks). The file store does not ask, so browsers never prompt.

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;
use tokio_rustls::TlsAcceptor;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} holds no PEM certificate or key: {reason}")]
    Pem { path: PathBuf, reason: String },
    #[error("cannot write the generated certificate to {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("generating a self-signed certificate failed: {0}")]
    Generate(String),
    #[error("the certificate and key do not fit together: {0}")]
    Config(String),
}

/// A ready TLS acceptor and what to tell the operator about it.
pub struct Tls {
    pub acceptor: TlsAcceptor,
    /// SHA-256 of the leaf certificate, as colon-separated hex.
    pub fingerprint: String,
    /// Where the certificate came from.
    pub cert_path: PathBuf,
    /// True when this run created the certificate.
    pub generated: bool,
}

/// Colon-separated upper-case hex SHA-256 of a DER certificate.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// A client certificate's fingerprint as accounts store it: lower-case
/// hex SHA-256 without colons.
pub fn client_fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Whether the acceptor asks clients for a certificate.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ClientCerts {
    Ask,
    DoNotAsk,
}

/// Loads the configured certificate, or the generated one (creating it on
/// first use), and builds an acceptor offering `alpn` protocols.
pub fn load(
    cert: Option<&Path>,
    key: Option<&Path>,
    data_dir: &Path,
    names: &[String],
    alpn: &[&[u8]],
    client_certs: ClientCerts,
) -> Result<Tls, TlsError> {
    let (cert_path, key_path, generated) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf(), false),
        _ => {
            let dir = data_dir.join("tls");
            let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
            let generated = !c.exists() || !k.exists();
            if generated {
                generate(&dir, &c, &k, names)?;
            }
            (c, k, generated)
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| TlsError::Pem { path: cert_path.clone(), reason: e.to_string() })?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem { path: cert_path.clone(), reason: e.to_string() })?;
    let Some(leaf) = certs.first() else {
        return Err(TlsError::Pem { path: cert_path, reason: "no certificate".into() });
    };
    let fingerprint = fingerprint(leaf);
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| TlsError::Pem { path: key_path.clone(), reason: e.to_string() })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match client_certs {
        ClientCerts::Ask => builder.with_client_cert_verifier(Arc::new(AnyClientCert {
            algorithms: provider.signature_verification_algorithms,
        })),
        ClientCerts::DoNotAsk => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Tls { acceptor: TlsAcceptor::from(Arc::new(config)), fingerprint, cert_path, generated })
}

/// Asks for a client certificate without requiring one, and accepts any
/// whose holder proves it has the key (the handshake signature is still
/// checked): see the module comment.
#[derive(Debug)]
struct AnyClientCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn generate(dir: &Path, cert: &Path, key: &Path, names: &[String]) -> Result<(), TlsError> {
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write { path: dir.to_path_buf(), source })?;
    let mut all = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    all.extend(names.iter().cloned());
    all.dedup();
    let made = rcgen::generate_simple_self_signed(all).map_err(|e| TlsError::Generate(e.to_string()))?;
    let _ = std::fs::remove_file(key);
    crate::private_file::write(key, made.signing_key.serialize_pem().as_bytes())
        .map_err(|source| TlsError::Write { path: key.to_path_buf(), source })?;
    std::fs::write(cert, made.cert.pem()).map_err(|source| TlsError::Write { path: cert.to_path_buf(), source })?;
    Ok(())
}

/// A failed TLS handshake (plain text on the TLS port, a client that
/// rejects our certificate, a stall): logged; the caller drops the socket.
pub fn log_failed_handshake(log: &crate::activity_log::ActivityLog, peer: std::net::SocketAddr, why: &str) {
    let actor = crate::activity_log::Actor { conn: 0, addr: Some(peer), nick: None };
    log.record("tls_failed", actor, &[("reason", crate::activity_log::Value::Text(why))]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_certificate_is_reused_with_the_same_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let first = load(None, None, dir.path(), &["parley.test".into()], &[], ClientCerts::Ask).unwrap();
        assert!(first.generated);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        let second = load(None, None, dir.path(), &[], &[], ClientCerts::DoNotAsk).unwrap();
        assert!(!second.generated);
        assert_eq!(first.fingerprint, second.fingerprint);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("tls/key.pem")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_missing_certificate_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let err = load(Some(&missing), Some(&missing), dir.path(), &[], &[], ClientCerts::DoNotAsk).err().unwrap();
        assert!(err.to_string().contains("nope.pem"), "{err}");
    }
}
