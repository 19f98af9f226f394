//! The review UI in real headless Chromium (Debian's `chromium`, driven by `playwright-core`
//! from `tests/browser/`). This test builds the world (server, a real agent running the real
//! model on a simulated concealment scan, a lodged declaration, users of two bays) and then
//! runs `tests/browser/review.mjs` against it. Screenshots land in `target/screenshots/`.
//!
//! Runs when `BAYLENS_BROWSER_TESTS=1` (set by `./baylens test`, which installs Chromium and
//! the npm package first); otherwise it says so and passes, so a bare `cargo test` works on a
//! machine without a browser.

mod support;

use std::path::Path;
use std::time::Duration;

use baylens_protocol::Declaration;
use baylens_server::auth::Role;
use scanner_sim::Scenario;
use support::*;
use tokio::sync::oneshot;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_reviews_a_case_in_chromium() {
    if std::env::var("BAYLENS_BROWSER_TESTS").as_deref() != Ok("1") {
        eprintln!("BAYLENS_BROWSER_TESTS is not 1: browser test skipped (./baylens test runs it)");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let mut server = start_server(&root.path().join("server")).await;
    let (_, token) = server
        .store
        .add_agent("test", "bay01-agent", "BAY01")
        .await
        .unwrap();
    // A second bay's agent that never reports: red on the fleet page.
    server
        .store
        .add_agent("test", "bay02-agent", "BAY02")
        .await
        .unwrap();
    for (name, role, bay) in [
        ("sup", Role::Supervisor, None),
        ("off1", Role::Officer, Some("BAY01")),
        ("off2", Role::Officer, Some("BAY02")),
    ] {
        server
            .store
            .add_user("test", name, PASSWORD, role, bay)
            .await
            .unwrap();
    }
    let token_file = root.path().join("agent.token");
    std::fs::write(&token_file, &token).unwrap();
    let config = agent_config(root.path(), &server.url, &token_file);
    let drop = config.drop_dir.clone();
    std::fs::create_dir_all(&drop).unwrap();

    // The trader declared textiles and shoes for the container the scanner will see.
    let hidden = drop_scan(&drop, Scenario::Concealment, 1);
    let code = hidden
        .meta
        .container_code
        .as_ref()
        .unwrap()
        .as_str()
        .to_owned();
    let mut declaration = serde_json::json!({
        "contract": "baylens.declaration/1", "reference": "26KE-BROWSER-1",
        "declarant": {"name": "Acme Textiles Ltd", "id": "P051234567X"}, "office": "KEMBA", "bay": "BAY01",
        "container_code": code, "expected_arrival": chrono::Utc::now().to_rfc3339(), "gross_mass_kg": 12000.0,
        "items": [
            {"hs_code": "520812", "description": "Cotton fabric, woven", "packages": 200, "package_type": "CT", "gross_mass_kg": 8000.0},
            {"hs_code": "640299", "description": "Sports shoes", "packages": 100, "package_type": "CT", "gross_mass_kg": 4000.0}
        ]
    });
    declaration["expected_arrival"] = chrono::Utc::now().to_rfc3339().into();
    let d = Declaration::from_json(&declaration.to_string(), chrono::Utc::now()).unwrap();
    server.store.lodge_declaration("test", &d).await.unwrap();

    let (stop_agent, agent_stopped) = oneshot::channel::<()>();
    let agent = tokio::spawn(edge_agent::run(config, async {
        let _ = agent_stopped.await;
    }));
    let client = reqwest::Client::new();
    let bearer = session_token(&client, &server.url, "sup").await;
    let mut case_id = None;
    for _ in 0..600 {
        let cases: Vec<serde_json::Value> = client
            .get(format!("{}/api/v1/cases", server.url))
            .bearer_auth(&bearer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(c) = cases.iter().find(|c| c["has_image"] == true) {
            case_id = c["id"].as_i64();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let case_id = case_id.expect("the agent's case with its image");

    seed_outcomes(&client, &server.url, &token, &bearer).await;

    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    let mut node = std::process::Command::new("node");
    node.arg("review.mjs")
        .current_dir(&browser_dir)
        .env("BASE_URL", &server.url)
        .env("CASE_ID", case_id.to_string())
        .env("PASSWORD", PASSWORD)
        .env("AGENT_TOKEN", &token)
        .env("SCREENSHOT_DIR", &shots);
    let out = tokio::task::spawn_blocking(move || node.output())
        .await
        .unwrap()
        .expect("node is installed (./baylens test installs it)");
    let _ = stop_agent.send(());
    let _ = agent.await;
    let _ = server.stop.take().map(|s| s.send(()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser test failed:\n{stdout}\n{stderr}"
    );
    eprintln!("{stdout}");

    // What the browser did is in the store and the audit log.
    let detail = server.store.case_detail(case_id).await.unwrap().unwrap();
    assert_eq!(detail.summary.status, "physical_examination");
    assert_eq!(
        detail.declaration.unwrap().declaration.reference,
        "26KE-BROWSER-1"
    );
    assert!(matches!(
        server.store.verify_audit().await.unwrap(),
        baylens_server::store::AuditVerdict::Intact { .. }
    ));
}

/// Earlier weeks of BAY01 for the outcomes panel: cases examined and decided under two earlier
/// model releases (sha256 `ab…`, then `cd…`), so the chart has a trend and release markers.
async fn seed_outcomes(client: &reqwest::Client, url: &str, agent: &str, sup: &str) {
    // (days ago, model, scan risk, examination, decision)
    let seeds = [
        (20, "ab", 0.95, Some("discrepancy"), Some("seize")),
        (20, "ab", 0.9, Some("consistent"), Some("release")),
        (19, "ab", 0.9, Some("consistent"), Some("release")),
        (13, "ab", 0.9, Some("consistent"), Some("release")),
        (13, "ab", 0.95, Some("discrepancy"), Some("seize")),
        (6, "cd", 0.95, Some("discrepancy"), Some("seize")),
        (6, "cd", 0.9, Some("discrepancy"), Some("seize")),
        (5, "cd", 0.9, Some("consistent"), Some("release")),
        (5, "cd", 0.1, Some("discrepancy"), None),
    ];
    for (n, (days, sha, risk, exam, decision)) in seeds.into_iter().enumerate() {
        let at = (chrono::Utc::now() - chrono::Duration::days(days)).to_rfc3339();
        let report = serde_json::json!({
            "contract": "baylens.report/1", "report_id": format!("seed-{n}"), "scan_id": format!("BAY01-seed-{n}"),
            "bay": "BAY01", "captured_at": at, "analysed_at": at, "container_code": "CSQU3054383",
            "width": 416, "height": 208,
            "model": {"name": "concealment-v1", "sha256": format!("{sha}{}", "0".repeat(62)), "max_probability": risk, "flagged_fraction": 0.01, "inference_ms": 20.0},
            "findings": [{"kind": "concealed_object", "score": risk, "region": {"x": 10, "y": 10, "width": 20, "height": 20}, "message": "dense object"}],
            "risk": risk, "lane": if risk >= 0.7 { "red" } else { "green" }
        });
        let r: serde_json::Value = client
            .post(format!("{url}/api/v1/reports"))
            .bearer_auth(agent)
            .json(&report)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = r["case_id"].as_i64().unwrap();
        let post = |what: &str, body: serde_json::Value| {
            client
                .post(format!("{url}/api/v1/cases/{id}/{what}"))
                .bearer_auth(sup)
                .json(&body)
                .send()
        };
        if let Some(result) = exam {
            let r = post(
                "examinations",
                serde_json::json!({"result": result, "note": "examined at bay 1"}),
            )
            .await
            .unwrap();
            assert!(r.status().is_success(), "{}", r.status());
        }
        if let Some(decision) = decision {
            let r = post(
                "decisions",
                serde_json::json!({"decision": decision, "note": "seeded outcome"}),
            )
            .await
            .unwrap();
            assert!(r.status().is_success(), "{}", r.status());
        }
    }
}
