//! The agent's side: whom it trusts when it talks to the server.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::Digest;

use crate::{TlsError, parse_pin, provider, read_certs};

/// A client configuration that trusts the CA certificates in `ca_file` (a site's private CA),
/// or the system's when there is none, and, when `pins` is not empty, accepts only a server
/// certificate whose sha256 is one of them, on top of the usual chain and name checks.
pub fn client_config(ca_file: Option<&Path>, pins: &[String]) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in read_certs(path)? {
                roots.add(cert).map_err(|e| TlsError::File {
                    path: path.to_owned(),
                    reason: format!("not a usable CA certificate: {e}"),
                })?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for e in &native.errors {
                tracing::warn!("reading the system's CA certificates: {e}");
            }
            roots.add_parsable_certificates(native.certs);
            if roots.is_empty() {
                return Err(TlsError::Config(
                    "no CA certificates on this system: set server.ca_file to the PEM of the CA that signed the server's certificate".into(),
                ));
            }
        }
    }
    let pins = pins
        .iter()
        .map(|p| parse_pin(p))
        .collect::<Result<Vec<_>, _>>()?;
    let provider = provider();
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Config(format!("trusted CAs: {e}")))?;
    let verifier = Arc::new(PinnedVerifier { webpki, pins });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Rustls {
            context: "TLS versions".into(),
            source,
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The usual WebPKI checks (chain to a trusted CA, name, validity), then the pins.
#[derive(Debug)]
struct PinnedVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    pins: Vec<[u8; 32]>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        if self.pins.is_empty() {
            return Ok(verified);
        }
        let digest: [u8; 32] = sha2::Sha256::digest(end_entity.as_ref()).into();
        if self.pins.contains(&digest) {
            Ok(verified)
        } else {
            let seen = hex::encode(digest);
            tracing::error!(
                sha256 = %seen,
                "the server's certificate is not one of server.pin_sha256: refused"
            );
            Err(rustls::Error::General(format!(
                "server certificate sha256 {seen} is not pinned (server.pin_sha256)"
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Whether `url` may be plain `http://`: only to this machine (loopback), unless the operator
/// says otherwise. Anything else carries the agent's token, reports, officers' photos and
/// model releases in the clear.
pub fn check_scheme(url: &str, allow_insecure_http: bool) -> Result<(), TlsError> {
    if url.starts_with("https://") {
        return Ok(());
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(TlsError::Config(format!(
            "server.url {url:?} must start with https:// (or http:// to this machine)"
        )));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback || allow_insecure_http {
        Ok(())
    } else {
        Err(TlsError::Config(format!(
            "server.url {url:?} is plain http:// to another machine: the agent's token, reports and photos would cross the network in the clear. Use https:// (server.ca_file for a private CA), or set server.allow_insecure_http = true"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::check_scheme;

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        for ok in [
            "https://customs.example:8443",
            "http://127.0.0.1:8080",
            "http://localhost:8080/",
            "http://[::1]:8080",
            "http://127.0.0.2",
        ] {
            check_scheme(ok, false).unwrap();
        }
        for refused in [
            "http://10.0.0.5:8080",
            "http://server.customs.local",
            "http://127.0.0.1.evil.example",
            "http://localhost@10.0.0.5",
            "http://[2001:db8::1]:8080",
        ] {
            let err = check_scheme(refused, false).unwrap_err().to_string();
            assert!(err.contains("allow_insecure_http"), "{refused}: {err}");
            check_scheme(refused, true).unwrap();
        }
        let err = check_scheme("ftp://x", true).unwrap_err().to_string();
        assert!(err.contains("must start with https://"), "{err}");
    }
}
