//! TLS end to end, with a private CA and certificates made in the test: the agent reports to a
//! server that serves HTTPS itself, trusting only the site's CA and pinning the certificate;
//! the tablet page serves HTTPS with a `__Host-` cookie; untrusted or unpinned servers and
//! plain HTTP to another machine are refused.

mod support;

use std::time::Duration;

use baylens_tls::testing::write_pki;
use edge_agent::AgentConfig;
use edge_agent::uplink::Uplink;
use scanner_sim::Scenario;
use support::*;
use tokio::sync::oneshot;

fn https_client(ca: &std::path::Path) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_reports_over_tls_and_its_tablet_serves_https() {
    let root = tempfile::tempdir().unwrap();
    let pki = write_pki(
        root.path(),
        "site-",
        "Customs CA",
        &["localhost", "127.0.0.1"],
    );
    let tls = baylens_tls::server::server_config(&pki.cert, &pki.key).unwrap();
    let mut server =
        start_server_with(&root.path().join("server"), "127.0.0.1:0", Some(tls), None).await;
    assert!(server.url.starts_with("https://"));
    let token_file = register_agent(&server, root.path()).await;

    // The server answers over TLS to a client that trusts the site's CA, and not in the clear.
    let client = https_client(&pki.ca_cert);
    let health = client
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let plain = server.url.replace("https://", "http://");
    assert!(
        reqwest::Client::new()
            .get(format!("{plain}/healthz"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .is_err(),
        "plain HTTP must not be served on the TLS port"
    );

    let mut config = agent_config(root.path(), &server.url, &token_file);
    config.server.ca_file = Some(pki.ca_cert.clone());
    config.server.pin_sha256 = vec![pki.sha256.clone()];
    let tablet_port = free_port();
    let (mut tablet, code) = tablet_config(tablet_port);
    tablet.tls_cert = Some(pki.cert.clone());
    tablet.tls_key = Some(pki.key.clone());
    config.tablet = Some(tablet);
    std::fs::create_dir_all(&config.drop_dir).unwrap();
    drop_scan(&config.drop_dir, Scenario::Honest, 1);
    let (stop_agent, agent_stopped) = oneshot::channel::<()>();
    let agent = tokio::spawn(edge_agent::run(config, async {
        let _ = agent_stopped.await;
    }));
    assert_eq!(
        wait_for_cases(&server.store, 1).await,
        1,
        "the report arrived over TLS"
    );

    // The tablet page: HTTPS, and a session cookie only this origin, over TLS, can set.
    let tablet_url = format!("https://localhost:{tablet_port}");
    let mut signed_in = None;
    for _ in 0..300 {
        if let Ok(r) = client
            .post(format!("{tablet_url}/api/v1/session"))
            .json(&serde_json::json!({ "code": code }))
            .send()
            .await
        {
            signed_in = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let signed_in = signed_in.expect("the tablet page came up");
    assert_eq!(signed_in.status().as_u16(), 200);
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.starts_with("__Host-baylens_tablet=") && cookie.contains("; Secure"),
        "{cookie}"
    );
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("__Host-baylens_tablet=");
    let bay = client
        .get(format!("{tablet_url}/api/v1/bay"))
        .header("cookie", format!("__Host-baylens_tablet={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        bay.status().as_u16(),
        200,
        "the cookie signs the officer in"
    );

    stop_agent.send(()).unwrap();
    agent.await.unwrap().unwrap();
    server.stop.take().unwrap().send(()).unwrap();
    server.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_refuses_an_untrusted_or_unpinned_server_and_plain_http_afar() {
    let root = tempfile::tempdir().unwrap();
    let site = write_pki(root.path(), "site-", "Customs CA", &["localhost"]);
    let other = write_pki(root.path(), "other-", "Someone else", &["localhost"]);
    let tls = baylens_tls::server::server_config(&site.cert, &site.key).unwrap();
    let mut server =
        start_server_with(&root.path().join("server"), "127.0.0.1:0", Some(tls), None).await;
    let token_file = register_agent(&server, root.path()).await;
    let token = std::fs::read_to_string(&token_file).unwrap();
    let heartbeat = |ca: &std::path::Path, pins: Vec<String>| {
        let mut config = agent_config(root.path(), &server.url, &token_file);
        config.server.ca_file = Some(ca.to_owned());
        config.server.pin_sha256 = pins;
        let uplink = Uplink::for_server(&config.server, token.clone()).unwrap();
        async move {
            let body = serde_json::json!({"version": "0.1.0", "models": {}, "queue_depth": 0});
            uplink.heartbeat(&body).await
        }
    };
    heartbeat(&site.ca_cert, vec![]).await.unwrap();
    heartbeat(&site.ca_cert, vec![site.sha256.clone()])
        .await
        .unwrap();
    // Another CA's word, or a certificate the agent was not told to expect, is not enough.
    heartbeat(&other.ca_cert, vec![]).await.unwrap_err();
    heartbeat(&site.ca_cert, vec![other.sha256.clone()])
        .await
        .unwrap_err();

    // Plain HTTP is for this machine only, unless the operator says otherwise.
    let toml = |url: &str, extra: &str| {
        format!(
            "bay = \"BAY01\"\ndrop_dir = \"d\"\ndata_dir = \"a\"\n[server]\nurl = {url:?}\n{extra}"
        )
    };
    let err = AgentConfig::from_toml(&toml("http://10.20.30.40:8080", ""))
        .unwrap_err()
        .to_string();
    assert!(err.contains("allow_insecure_http"), "{err}");
    AgentConfig::from_toml(&toml(
        "http://10.20.30.40:8080",
        "allow_insecure_http = true",
    ))
    .unwrap();
    let err = AgentConfig::from_toml(&toml("https://x:1", "pin_sha256 = [\"abc\"]"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a sha256 fingerprint"), "{err}");
    // A CA file that is not there stops the agent before it takes a scan.
    let mut config = agent_config(root.path(), &server.url, &token_file);
    config.server.ca_file = Some(root.path().join("missing-ca.pem"));
    let err = edge_agent::run(config, async {})
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing-ca.pem"), "{err}");

    server.stop.take().unwrap().send(()).unwrap();
    server.task.await.unwrap().unwrap();
}
