//! The officers' tablet page in real headless Chromium (`tests/browser/tablet.mjs`), against a
//! real agent with scanner-sim's simulated camera, while the server is down: the page is served
//! by the agent, so the officer sees the live view, the code read and the findings, and records
//! a broken seal that waits at the bay. When the server is back, the annotation reaches the case.
//!
//! Runs when `BAYLENS_BROWSER_TESTS=1` (set by `./baylens test`), like `browser.rs`.

mod support;

use std::path::Path;
use std::time::Duration;

use baylens_protocol::Declaration;
use scanner_sim::Scenario;
use scanner_sim::ipcam::IpCamera;
use support::*;
use tokio::sync::oneshot;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officer_uses_the_tablet_offline_in_chromium() {
    if std::env::var("BAYLENS_BROWSER_TESTS").as_deref() != Ok("1") {
        eprintln!(
            "BAYLENS_BROWSER_TESTS is not 1: tablet browser test skipped (./baylens test runs it)"
        );
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let server_dir = root.path().join("server");
    let (mut server, token_file) = start_server_with_officer(&server_dir, root.path()).await;

    // The trader declared textiles for the container that arrives with goods hidden inside.
    let scan = sim_scan(Scenario::Concealment, 1);
    let code = scan.meta.container_code.clone().unwrap();
    let declaration = serde_json::json!({
        "contract": "baylens.declaration/1", "reference": "26KE-TABLET-1",
        "declarant": {"name": "Acme Textiles Ltd", "id": "P051234567X"}, "office": "KEMBA", "bay": "BAY01",
        "container_code": code.as_str(), "expected_arrival": chrono::Utc::now().to_rfc3339(), "gross_mass_kg": 9000.0,
        "items": [{"hs_code": "520812", "description": "Cotton fabric, woven", "packages": 200, "package_type": "CT", "gross_mass_kg": 9000.0}]
    });
    let d = Declaration::from_json(&declaration.to_string(), chrono::Utc::now()).unwrap();
    server.store.lodge_declaration("test", &d).await.unwrap();

    let cam = IpCamera::new(1280, 720);
    cam.show(Some((&code, scan.truth.container, 3)));
    let cam_port = free_port();
    let _camera = start_sim_camera(&cam, cam_port);
    let tablet_port = free_port();
    let (tablet_section, officer_code) = tablet_config(tablet_port);
    let mut config = agent_config(root.path(), &server.url, &token_file);
    config.camera = Some(sim_camera_config(cam_port));
    config.tablet = Some(tablet_section);
    config.declaration_sync_secs = 1;
    let drop = config.drop_dir.clone();
    std::fs::create_dir_all(&drop).unwrap();
    let status_config = config.clone();
    let (stop_agent, agent_stopped) = oneshot::channel::<()>();
    let agent = tokio::spawn(edge_agent::run(config, async {
        let _ = agent_stopped.await;
    }));

    // The agent syncs the declaration, then the truck is scanned.
    let client = reqwest::Client::new();
    let tablet = format!("http://127.0.0.1:{tablet_port}");
    for _ in 0..100 {
        let cached = edge_agent::status::collect(&status_config)
            .await
            .ok()
            .and_then(|s| s["declarations_cached"].as_i64());
        if cached == Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    scanner_sim::write_scan(&drop, &scan.scan, &scan.meta, false).unwrap();
    let scan_id = scan.meta.scan_id.to_string();
    for _ in 0..300 {
        let b: serde_json::Value = client
            .get(format!("{tablet}/api/v1/bay"))
            .bearer_auth(&officer_code)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if b["scan"]["scan_id"] == scan_id.as_str() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_for_cases(&server.store, 1).await;

    // The bay loses the server.
    let addr = server.url.trim_start_matches("http://").to_owned();
    let _ = server.stop.take().map(|s| s.send(()));
    let _ = (&mut server.task).await;

    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    let mut node = std::process::Command::new("node");
    node.arg("tablet.mjs")
        .current_dir(&browser_dir)
        .env("TABLET_URL", &tablet)
        .env("OFFICER_CODE", &officer_code)
        .env("CONTAINER_CODE", code.as_str())
        .env("SCREENSHOT_DIR", &shots);
    let out = tokio::task::spawn_blocking(move || node.output())
        .await
        .unwrap()
        .expect("node is installed (./baylens test installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tablet browser test failed:\n{stdout}\n{stderr}"
    );
    eprintln!("{stdout}");

    // The server comes back; what the officer recorded reaches the case, as theirs.
    let server = start_server_at(&server_dir, &addr).await;
    let case_id = server
        .store
        .case_of_scan(&scan_id)
        .await
        .unwrap()
        .unwrap()
        .0;
    let mut events = Vec::new();
    for _ in 0..150 {
        let detail = server.store.case_detail(case_id).await.unwrap().unwrap();
        events = detail.events;
        if events.iter().any(|e| e.kind == "seal") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seal = events
        .iter()
        .find(|e| e.kind == "seal")
        .expect("the seal annotation reached the case");
    assert_eq!(seal.value.as_deref(), Some("broken"));
    assert_eq!(seal.username, "off1");
    assert!(seal.note.as_deref().unwrap_or("").contains("Seal 4711 cut"));
    let _ = stop_agent.send(());
    let _ = agent.await;
}
