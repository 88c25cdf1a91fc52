//! Whom to trust on TLS connections, for IRC (`ircs://`, `--tls`) and for
//! an `https://` file store alike: the usual public roots, plus the
//! certificates given with `--ca` (a self-signed server's own certificate
//! works), or, with `--insecure`, anyone, remembering the certificate's
//! fingerprint so the person can compare it with the one `parleyd` prints.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read the certificates in {}: {reason}", path.display())]
    Ca { path: PathBuf, reason: String },
    #[error("TLS setup failed: {0}")]
    Config(String),
}

/// The TLS client settings of one run.
#[derive(Clone)]
pub struct Trust {
    pub config: Arc<ClientConfig>,
    /// The fingerprint of the last certificate accepted without checking.
    unverified: Arc<Mutex<Option<String>>>,
}

impl Trust {
    /// Public roots plus the certificates in `ca`; or no checks at all.
    pub fn new(ca: Option<&Path>, insecure: bool) -> Result<Trust, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let unverified = Arc::new(Mutex::new(None));
        let config = if insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyone { provider, seen: unverified.clone() }))
                .with_no_client_auth()
        } else {
            let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
            if let Some(path) = ca {
                let ca_err = |reason: String| TlsError::Ca { path: path.to_path_buf(), reason };
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                    .map_err(|e| ca_err(e.to_string()))?
                    .collect::<Result<_, _>>()
                    .map_err(|e| ca_err(e.to_string()))?;
                if certs.is_empty() {
                    return Err(ca_err("no PEM certificate in it".into()));
                }
                for cert in certs {
                    roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        Ok(Trust { config: Arc::new(config), unverified })
    }

    /// With `--insecure`: the SHA-256 fingerprint of the certificate that
    /// was accepted without checking, to compare with the server's.
    pub fn unverified_fingerprint(&self) -> Option<String> {
        self.unverified.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// `--insecure`: accepts any certificate, but still checks the handshake
/// signatures (so the connection is at least to whoever holds that key).
#[derive(Debug)]
struct AcceptAnyone {
    provider: Arc<CryptoProvider>,
    seen: Arc<Mutex<Option<String>>>,
}

impl ServerCertVerifier for AcceptAnyone {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(fingerprint(end_entity));
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Colon-separated upper-case hex SHA-256 of a DER certificate, the form
/// `parleyd` prints at start.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_look_like_the_servers() {
        let f = fingerprint(b"abc");
        assert_eq!(f.len(), 32 * 3 - 1);
        assert!(f.starts_with("BA:78:16:BF"));
    }

    #[test]
    fn a_missing_ca_file_is_a_clear_error() {
        let e = Trust::new(Some(Path::new("/nonexistent/ca.pem")), false).err().unwrap();
        assert!(e.to_string().contains("/nonexistent/ca.pem"));
    }
}
