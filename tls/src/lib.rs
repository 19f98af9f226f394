//! TLS for BayLens, with rustls and ring (no OpenSSL).
//!
//! - [`server`]: the central server and the agent's tablet page serve HTTPS themselves
//!   (`--tls-cert/--tls-key`, `[tablet] tls_cert/tls_key`), so a small site needs no separate
//!   terminator. Handshakes run off the accept path: one slow client cannot stall the others.
//! - [`client`]: the agent trusts the site's own CA (`server.ca_file`) or the system's, and may
//!   pin the server's certificate by its sha256 (`server.pin_sha256`).

pub mod client;
pub mod server;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use rustls;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// What can go wrong setting TLS up; each names the file or setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file is missing, unreadable or not PEM.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting is wrong.
    #[error("{0}")]
    Config(String),
    /// rustls refused the certificates or keys.
    #[error("{context}: {source}")]
    Rustls {
        /// What was being set up.
        context: String,
        /// rustls's reason.
        source: rustls::Error,
    },
}

/// The one crypto provider BayLens uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate in a PEM file; at least one.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file_error = |reason: String| TlsError::File {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(pem_reason(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(pem_reason(&e)))?;
    if certs.is_empty() {
        return Err(file_error(
            "no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(certs)
}

fn pem_reason(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("not valid PEM: {other:?}"),
    }
}

/// The sha256 of a certificate (DER), as lower-case hex: what `openssl x509 -noout
/// -fingerprint -sha256` prints, without the colons.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(cert.as_ref()))
}

/// Parses a pin: 64 hex digits, colons and a `sha256:` prefix allowed, any case.
pub fn parse_pin(pin: &str) -> Result<[u8; 32], TlsError> {
    let t = pin.trim();
    let t = t.strip_prefix("sha256:").unwrap_or(t);
    let hexed: String = t.chars().filter(|c| *c != ':').collect();
    let mut out = [0u8; 32];
    hex::decode_to_slice(&hexed, &mut out).map_err(|_| {
        TlsError::Config(format!(
            "pin {pin:?} is not a sha256 fingerprint (64 hex digits, e.g. from `openssl x509 -noout -fingerprint -sha256 -in server.crt`)"
        ))
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_in_openssl_form_and_plain_hex() {
        let plain = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_pin(&plain).unwrap(), [0xab; 32]);
        assert_eq!(parse_pin(&colons).unwrap(), [0xab; 32]);
        assert_eq!(parse_pin(&format!("sha256:{plain}")).unwrap(), [0xab; 32]);
        let err = parse_pin("abcd").unwrap_err().to_string();
        assert!(err.contains("not a sha256 fingerprint"), "{err}");
    }

    #[test]
    fn a_file_without_certificates_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let path = dir.join("empty.pem");
        std::fs::write(&path, "nothing here\n").unwrap();
        let err = read_certs(&path).unwrap_err().to_string();
        assert!(
            err.contains("empty.pem") && err.contains("no certificate"),
            "{err}"
        );
        let err = read_certs(&dir.join("missing.pem"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.pem"), "{err}");
    }
}
