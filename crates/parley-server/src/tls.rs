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
//!
//! Both listeners present one [`Certificate`], which a reload reads again:
//! new handshakes get the new one, established sessions keep theirs.

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
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

/// What to tell the operator about the certificate in use.
#[derive(Debug, Clone)]
pub struct CertInfo {
    /// SHA-256 of the leaf certificate, as colon-separated hex.
    pub fingerprint: String,
    /// Where the certificate came from.
    pub cert_path: PathBuf,
    /// True when this run created the certificate.
    pub generated: bool,
}

/// The certificate both TLS listeners present. The acceptors ask it for
/// the key at every handshake, so [`Certificate::reload`] (a renewed
/// certificate, on SIGHUP or REHASH) reaches the next handshake while
/// sessions already established go on with theirs.
#[derive(Debug)]
pub struct Certificate {
    current: RwLock<(Arc<CertifiedKey>, CertInfo)>,
    provider: Arc<CryptoProvider>,
}

/// A certificate read by [`Certificate::prepare`], not yet in use.
pub struct Prepared((Arc<CertifiedKey>, CertInfo));

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|p| p.into_inner()).0.clone())
    }
}

impl Certificate {
    /// Loads the configured certificate, or the generated one (creating it
    /// on first use).
    pub fn load(
        cert: Option<&Path>,
        key: Option<&Path>,
        data_dir: &Path,
        names: &[String],
    ) -> Result<Arc<Certificate>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let loaded = read_pair(cert, key, data_dir, names, &provider)?;
        Ok(Arc::new(Certificate { current: RwLock::new(loaded), provider }))
    }

    /// Reads the certificate and key again (the same paths with renewed
    /// contents, or new paths), without using them yet: see
    /// [`Certificate::install`].
    pub fn prepare(
        &self,
        cert: Option<&Path>,
        key: Option<&Path>,
        data_dir: &Path,
        names: &[String],
    ) -> Result<Prepared, TlsError> {
        read_pair(cert, key, data_dir, names, &self.provider).map(Prepared)
    }

    /// Presents `prepared` from the next handshake on.
    pub fn install(&self, Prepared(loaded): Prepared) -> CertInfo {
        let info = loaded.1.clone();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        info
    }

    pub fn info(&self) -> CertInfo {
        self.current.read().unwrap_or_else(|p| p.into_inner()).1.clone()
    }

    /// An acceptor presenting this certificate, offering `alpn` protocols.
    pub fn acceptor(self: &Arc<Self>, alpn: &[&[u8]], client_certs: ClientCerts) -> Result<TlsAcceptor, TlsError> {
        let builder = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = match client_certs {
            ClientCerts::Ask => builder.with_client_cert_verifier(Arc::new(AnyClientCert {
                algorithms: self.provider.signature_verification_algorithms,
            })),
            ClientCerts::DoNotAsk => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(self.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// Reads a certificate chain and its key (see [`Certificate::load`]) and
/// checks that they fit together.
fn read_pair(
    cert: Option<&Path>,
    key: Option<&Path>,
    data_dir: &Path,
    names: &[String],
    provider: &CryptoProvider,
) -> Result<(Arc<CertifiedKey>, CertInfo), TlsError> {
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
    let certified = CertifiedKey::from_der(certs, key, provider).map_err(|e| TlsError::Config(e.to_string()))?;
    Ok((Arc::new(certified), CertInfo { fingerprint, cert_path, generated }))
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
        let first = Certificate::load(None, None, dir.path(), &["parley.test".into()]).unwrap().info();
        assert!(first.generated);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        let second = Certificate::load(None, None, dir.path(), &[]).unwrap().info();
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
        let err = Certificate::load(Some(&missing), Some(&missing), dir.path(), &[]).err().unwrap();
        assert!(err.to_string().contains("nope.pem"), "{err}");
    }

    #[test]
    fn a_certificate_read_again_is_used_only_once_installed() {
        let dir = tempfile::tempdir().unwrap();
        let cert = Certificate::load(None, None, dir.path(), &[]).unwrap();
        let before = cert.info().fingerprint;
        let missing = dir.path().join("nope.pem");
        assert!(cert.prepare(Some(&missing), Some(&missing), dir.path(), &[]).is_err());
        assert_eq!(cert.info().fingerprint, before);
        let other = tempfile::tempdir().unwrap();
        let (c, k) = (other.path().join("tls/cert.pem"), other.path().join("tls/key.pem"));
        Certificate::load(None, None, other.path(), &[]).unwrap();
        let prepared = cert.prepare(Some(&c), Some(&k), dir.path(), &[]).unwrap();
        assert_eq!(cert.info().fingerprint, before, "not in use before install");
        let renewed = cert.install(prepared);
        assert_ne!(renewed.fingerprint, before);
        assert_eq!(cert.info().fingerprint, renewed.fingerprint);
    }
}
