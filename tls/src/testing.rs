//! A private CA and a server certificate made on the spot, as a site's PKI would issue them,
//! for tests over real TLS.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// Files written by [`write_pki`].
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA's certificate (what `server.ca_file` names).
    pub ca_cert: PathBuf,
    /// The server's certificate chain (leaf, then the CA).
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
    /// sha256 of the leaf certificate, hex (what `server.pin_sha256` takes).
    pub sha256: String,
}

/// Writes a CA named `ca_name` and a certificate it signs for `hosts` (names or IP addresses)
/// into `dir`, with names prefixed by `prefix`.
pub fn write_pki(dir: &Path, prefix: &str, ca_name: &str, hosts: &[&str]) -> TestPki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, ca_name);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let params = CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())
        .expect("server params");
    let key = KeyPair::generate().expect("server key");
    let leaf = params.signed_by(&key, &ca).expect("server certificate");
    let out = TestPki {
        ca_cert: dir.join(format!("{prefix}ca.pem")),
        cert: dir.join(format!("{prefix}server.pem")),
        key: dir.join(format!("{prefix}server.key")),
        sha256: crate::fingerprint(leaf.der()),
    };
    std::fs::write(&out.ca_cert, ca.pem()).expect("writing the CA");
    std::fs::write(&out.cert, format!("{}{}", leaf.pem(), ca.pem())).expect("writing the chain");
    std::fs::write(&out.key, key.serialize_pem()).expect("writing the key");
    out
}

#[cfg(test)]
mod tests {
    use super::write_pki;
    use crate::client::client_config;
    use crate::server::{serve, server_config};

    /// Serves "hello" over TLS and fetches it with a client built from `ca` and `pins`.
    async fn fetch(
        pki: &super::TestPki,
        ca: &std::path::Path,
        pins: &[String],
    ) -> Result<String, String> {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = tcp.local_addr().unwrap().port();
        let config = server_config(&pki.cert, &pki.key).unwrap();
        let router = axum::Router::new().route(
            "/",
            axum::routing::get(
                |axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<
                    std::net::SocketAddr,
                >| async move { format!("hello {}", peer.ip()) },
            ),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(tcp, Some(config), router, async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(client_config(Some(ca), pins).map_err(|e| e.to_string())?)
            .build()
            .unwrap();
        let got = client
            .get(format!("https://localhost:{port}/"))
            .send()
            .await
            .map_err(|e| format!("{e:?}"));
        let got = match got {
            Ok(r) => Ok(r.text().await.unwrap()),
            Err(e) => Err(e),
        };
        let _ = stop.send(());
        server.await.unwrap().unwrap();
        got
    }

    #[tokio::test]
    async fn a_private_ca_and_pins_are_honoured() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let site = write_pki(dir, "site-", "Customs CA", &["localhost", "127.0.0.1"]);
        let other = write_pki(dir, "other-", "Someone else", &["localhost"]);
        // Trusted through the site's CA; the handler sees the peer's address.
        assert_eq!(
            fetch(&site, &site.ca_cert, &[]).await.unwrap(),
            "hello 127.0.0.1"
        );
        // Pinned: the right certificate passes, another one signed by the same CA does not.
        assert!(
            fetch(&site, &site.ca_cert, std::slice::from_ref(&site.sha256))
                .await
                .is_ok()
        );
        let err = fetch(&site, &site.ca_cert, &["00".repeat(32)])
            .await
            .unwrap_err();
        assert!(err.contains("not pinned"), "{err}");
        // A server whose certificate comes from another CA is refused.
        let err = fetch(&other, &site.ca_cert, &[]).await.unwrap_err();
        assert!(err.contains("UnknownIssuer"), "{err}");
    }
}
