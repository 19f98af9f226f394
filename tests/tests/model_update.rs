//! A signed model release travels from the server to a running agent over HTTP: the agent
//! verifies and installs it and the next scan's report names it; a release signed with another
//! key is refused and the agent goes on with the model it has. The release is a site's adapted
//! model (`models/train/adapt_site.py` on gantry-c's cleared scans, BENCHMARKS.md "Site
//! adaptation"): another network than the shipped one, which the agent checks and runs.

mod support;

use std::time::Duration;

use baylens_models::concealment::{FILE, NAME};
use baylens_protocol::release::{ModelRelease, Terms, new_key};
use scanner_sim::Scenario;
use support::*;
use tokio::sync::oneshot;

fn sign(name: &str, file: &[u8], serial: u64, secret: &str) -> ModelRelease {
    let terms = Terms {
        serial,
        expires_at: None,
    };
    baylens_protocol::release::sign(name, file, &terms, secret).unwrap()
}

fn variant(n: u8) -> Vec<u8> {
    let mut bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models/onnx")
            .join(FILE),
    )
    .unwrap();
    // An unknown protobuf field (1000, varint n): another file, the same network.
    bytes.extend_from_slice(&[0xC0, 0x3E, n]);
    bytes
}

async fn report_sha(server: &Server, n: i64) -> String {
    assert_eq!(wait_for_cases(&server.store, n).await, n);
    let detail = server.store.case_detail(n).await.unwrap().unwrap();
    detail.report["model"]["sha256"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_release_reaches_the_bay_and_a_forged_one_does_not() {
    let root = tempfile::tempdir().unwrap();
    let mut server = start_server(&root.path().join("server")).await;
    let token_file = register_agent(&server, root.path()).await;
    let (secret, public) = new_key(rand::random());
    let good = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/xray-concealment.site-gantry-c.onnx"),
    )
    .unwrap();
    let release = sign(NAME, &good, 1, &secret);
    server
        .store
        .publish_model("owner", &release, good)
        .await
        .unwrap();

    let mut config = agent_config(root.path(), &server.url, &token_file);
    config.model_updates = Some(edge_agent::updates::ModelUpdatesConfig {
        public_key: public,
        check_secs: 1,
    });
    std::fs::create_dir_all(&config.drop_dir).unwrap();
    let (stop_agent, agent_stopped) = oneshot::channel::<()>();
    let agent = tokio::spawn(edge_agent::run(config.clone(), async {
        let _ = agent_stopped.await;
    }));
    for _ in 0..300 {
        if edge_agent::updates::active(&config.data_dir).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        edge_agent::updates::active(&config.data_dir).as_ref(),
        Some(&release),
        "the release was installed"
    );
    drop_scan(&config.drop_dir, Scenario::Honest, 1);
    assert_eq!(report_sha(&server, 1).await, release.sha256);

    // Someone without the key publishes a model: the bay refuses it.
    let (forger, _) = new_key(rand::random());
    let forged_file = variant(10);
    let forged = sign(NAME, &forged_file, 2, &forger);
    server
        .store
        .publish_model("intruder", &forged, forged_file)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        edge_agent::updates::active(&config.data_dir),
        Some(release.clone())
    );
    drop_scan(&config.drop_dir, Scenario::Honest, 2);
    assert_eq!(report_sha(&server, 2).await, release.sha256);

    stop_agent.send(()).unwrap();
    agent.await.unwrap().unwrap();
    server.stop.take().unwrap().send(()).unwrap();
    server.task.await.unwrap().unwrap();
}
