//! Scanner -> drop folder -> edge agent (real ONNX model) -> HTTP -> server (SQLite) -> case API.

mod support;

use baylens_protocol::ScanId;
use baylens_server::auth::Role;
use scanner_sim::Scenario;
use std::time::Duration;
use support::*;
use tokio::sync::oneshot;

/// A case's detail (summary and the bay's report) through the API.
async fn case_detail(
    client: &reqwest::Client,
    url: &str,
    bearer: &str,
    id: &serde_json::Value,
) -> serde_json::Value {
    get_json(client, &format!("{url}/api/v1/cases/{id}"), bearer).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_scan_becomes_a_case_with_the_models_findings() {
    let root = tempfile::tempdir().unwrap();
    let mut server = start_server(&root.path().join("server")).await;
    let (_, token) = server
        .store
        .add_agent("test", "bay01-agent", "BAY01")
        .await
        .unwrap();
    server
        .store
        .add_user("test", "sup", PASSWORD, Role::Supervisor, None)
        .await
        .unwrap();
    server
        .store
        .add_user("test", "officer2", PASSWORD, Role::Officer, Some("BAY02"))
        .await
        .unwrap();
    let token_file = root.path().join("agent.token");
    std::fs::write(&token_file, &token).unwrap();

    // The honest load's advance declaration is lodged before it arrives; the concealment
    // scan has none.
    let honest = sim_scan(Scenario::Honest, 2);
    server
        .store
        .lodge_declaration("trader", &honest.declaration)
        .await
        .unwrap();

    let config = agent_config(root.path(), &server.url, &token_file);
    let drop = config.drop_dir.clone();
    std::fs::create_dir_all(&drop).unwrap();
    let (stop_agent, agent_stopped) = oneshot::channel::<()>();
    let agent = tokio::spawn(edge_agent::run(config.clone(), async {
        let _ = agent_stopped.await;
    }));
    // The agent syncs the bay's declarations over HTTP into its own store.
    let mut status = serde_json::Value::Null;
    for _ in 0..300 {
        if let Ok(s) = edge_agent::status::collect(&config).await {
            status = s;
            if status["declarations_cached"] == 1 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status["declarations_cached"], 1, "{status:#}");

    let hidden = drop_scan(&drop, Scenario::Concealment, 1);
    scanner_sim::write::write_scan(&drop, &honest.scan, &honest.meta, false).unwrap();

    let client = reqwest::Client::new();
    let bearer = session_token(&client, &server.url, "sup").await;
    let mut cases = Vec::new();
    for _ in 0..600 {
        cases = client
            .get(format!("{}/api/v1/cases", server.url))
            .bearer_auth(&bearer)
            .send()
            .await
            .unwrap()
            .json::<Vec<serde_json::Value>>()
            .await
            .unwrap();
        if cases.len() == 2 && cases.iter().all(|c| c["has_image"] == true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        cases.len(),
        2,
        "cases: {cases:#?}; drop: {:?}; rejected: {:?}",
        files_in(drop.clone()),
        files_in(drop.join("rejected"))
    );

    let case_of = |id: &ScanId| {
        cases
            .iter()
            .find(|c| c["scan_id"] == id.as_str())
            .unwrap()
            .clone()
    };
    let flagged = case_of(&hidden.meta.scan_id);
    // The list holds summaries; the detail holds the bay's report.
    let flagged = case_detail(&client, &server.url, &bearer, &flagged["id"]).await;
    assert_eq!(
        flagged["report"]["model"]["sha256"],
        baylens_models::concealment::SHA256
    );
    assert_eq!(
        flagged["container_code"],
        hidden.meta.container_code.as_ref().unwrap().as_str()
    );
    assert!(flagged["risk"].as_f64().unwrap() >= 0.5, "{flagged:#}");
    let [x, y, w, h] = hidden
        .truth
        .items
        .iter()
        .find(|i| i.concealed)
        .and_then(|i| i.box_px)
        .unwrap();
    let regions = flagged["report"]["findings"].as_array().unwrap();
    let hit = regions.iter().any(|f| {
        let r = &f["region"];
        let (rx, ry, rw, rh) = (
            r["x"].as_u64().unwrap() as u32,
            r["y"].as_u64().unwrap() as u32,
            r["width"].as_u64().unwrap() as u32,
            r["height"].as_u64().unwrap() as u32,
        );
        rx < x + w && x < rx + rw && ry < y + h && y < ry + rh
    });
    assert!(
        hit,
        "no finding overlaps the hidden package at {:?}: {regions:#?}",
        [x, y, w, h]
    );
    let clean = case_of(&honest.meta.scan_id);
    assert!(clean["risk"].as_f64().unwrap() < flagged["risk"].as_f64().unwrap());
    // The bay found each scan's declaration, or said there was none, and explained its risk.
    let kinds = |case: &serde_json::Value| -> Vec<String> {
        case["report"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["kind"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(
        kinds(&flagged).contains(&"no_declaration".to_owned()),
        "{flagged:#}"
    );
    let clean = case_detail(&client, &server.url, &bearer, &clean["id"]).await;
    assert_eq!(kinds(&clean), Vec::<String>::new(), "{clean:#}");
    assert_eq!(
        clean["report"]["declaration_ref"],
        honest.declaration.reference.as_str()
    );
    assert_eq!(clean["lane"], "green");
    let breakdown = &flagged["report"]["breakdown"];
    assert!(
        breakdown["contributions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["source"] == "concealed_object"),
        "{breakdown:#}"
    );
    // Ranked by risk.
    assert_eq!(cases[0]["scan_id"], hidden.meta.scan_id.as_str());

    // The preview is a real PNG of the scan's size.
    let png = client
        .get(format!(
            "{}/api/v1/cases/{}/preview",
            server.url, flagged["id"]
        ))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(png.status(), 200);
    let img = image::load_from_memory(&png.bytes().await.unwrap()).unwrap();
    assert_eq!(
        (img.width(), img.height()),
        (hidden.scan.width, hidden.scan.height)
    );

    // The supervisor's page lists the case; an officer of another bay sees nothing.
    let page = client
        .get(format!("{}/cases", server.url))
        .header("cookie", format!("baylens_session={bearer}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(hidden.meta.container_code.as_ref().unwrap().as_str()),
        "{page}"
    );
    let other = session_token(&client, &server.url, "officer2").await;
    let seen: Vec<serde_json::Value> = client
        .get(format!("{}/api/v1/cases", server.url))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(seen.is_empty());

    // The agent's heartbeat told the server its version and model.
    let agents = server.store.list_agents().await.unwrap();
    assert_eq!(
        agents[0].version.as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        agents[0].models[baylens_models::concealment::NAME],
        baylens_models::concealment::SHA256
    );
    // The cleared scan went out as report and thumbnail first; its full resolution follows
    // when the uplink is idle.
    let mut status = serde_json::Value::Null;
    for _ in 0..300 {
        status = edge_agent::status::collect(&config).await.unwrap();
        if status["uplink"]["cleared_scans_full_resolution_sent"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("uplink: {status:#}");
    let first = status["uplink"]["mean_bytes_per_cleared_scan"]
        .as_f64()
        .unwrap();
    let full = status["uplink"]["mean_full_resolution_bytes_per_cleared_scan"]
        .as_f64()
        .unwrap();
    assert!(first > 1000.0 && full > first, "{status:#}");
    // The overlay layers arrived; the expected cargo only where there is a declaration.
    let detail = server
        .store
        .case_detail(flagged["id"].as_i64().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.layers, ["material", "heat", "findings"]);
    let detail = server
        .store
        .case_detail(clean["id"].as_i64().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.layers, ["material", "heat", "expected", "findings"]);
    // The bay's status shows an empty queue, the server contact and what a scan cost to send.
    let status = edge_agent::status::collect(&config).await.unwrap();
    assert_eq!(status["queue_depth"], 0, "{status:#}");
    assert!(status["last_server_contact"].is_string(), "{status:#}");
    let cleared = status["uplink"]["mean_bytes_per_cleared_scan"]
        .as_f64()
        .unwrap();
    println!("uplink: {status:#}");
    assert!(cleared > 1000.0, "{status:#}");

    // Originals left the drop folder only after being stored.
    assert!(files_in(drop.join("done")).contains(&"BAY01-e2e-1.high.png".to_owned()));
    assert!(!drop.join("BAY01-e2e-1.json").exists());

    stop_agent.send(()).unwrap();
    agent.await.unwrap().unwrap();
    server.stop.take().unwrap().send(()).unwrap();
    server.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_without_a_valid_agent_token_are_refused_and_stored_nowhere() {
    let root = tempfile::tempdir().unwrap();
    let server = start_server(root.path()).await;
    server
        .store
        .add_user("test", "sup", PASSWORD, Role::Supervisor, None)
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let report = serde_json::json!({"contract": "baylens.report/1"});
    let url = format!("{}/api/v1/reports", server.url);

    let none = client.post(&url).json(&report).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let forged = client
        .post(&url)
        .bearer_auth("bla_0000")
        .json(&report)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    // A user's session is not an agent token.
    let user = session_token(&client, &server.url, "sup").await;
    let as_user = client
        .post(&url)
        .bearer_auth(&user)
        .json(&report)
        .send()
        .await
        .unwrap();
    assert_eq!(as_user.status(), 403);
    let preview = client
        .put(format!("{}/api/v1/scans/x/preview", server.url))
        .body("png")
        .send()
        .await
        .unwrap();
    assert_eq!(preview.status(), 401);
    let cases = client
        .get(format!("{}/api/v1/cases", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(cases.status(), 401);
    assert_eq!(server.store.count_cases().await.unwrap(), 0);
    // Health stays open for load balancers.
    assert_eq!(
        client
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eight_bit_scan_is_moved_aside_with_its_reason_and_the_agent_goes_on() {
    let root = tempfile::tempdir().unwrap();
    let server = start_server(&root.path().join("server")).await;
    let (_, token) = server.store.add_agent("test", "a", "BAY01").await.unwrap();
    let token_file = root.path().join("agent.token");
    std::fs::write(&token_file, &token).unwrap();
    let config = agent_config(root.path(), &server.url, &token_file);
    let drop = config.drop_dir.clone();
    std::fs::create_dir_all(&drop).unwrap();

    let g = drop_scan(&drop, Scenario::Honest, 7);
    // Overwrite the high image with an 8-bit one.
    let gray8 = image::GrayImage::from_raw(
        g.scan.width,
        g.scan.height,
        vec![128u8; (g.scan.width * g.scan.height) as usize],
    )
    .unwrap();
    gray8.save(drop.join("BAY01-e2e-7.high.png")).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let agent = tokio::spawn(edge_agent::run(config, async {
        let _ = stopped.await;
    }));
    let reason = drop.join("rejected/BAY01-e2e-7.reason");
    for _ in 0..300 {
        if reason.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = std::fs::read_to_string(&reason).unwrap();
    assert!(
        text.contains("BAY01-e2e-7.high.png: 8-bit grayscale"),
        "{text}"
    );
    assert!(drop.join("rejected/BAY01-e2e-7.low.png").exists());
    // The agent is still running and takes the next scan.
    drop_scan(&drop, Scenario::Honest, 8);
    assert_eq!(wait_for_cases(&server.store, 1).await, 1);
    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_pushed_over_http_becomes_a_case() {
    let root = tempfile::tempdir().unwrap();
    let mut server = start_server(&root.path().join("server")).await;
    let token_file = register_agent(&server, root.path()).await;
    let mut config = agent_config(root.path(), &server.url, &token_file);
    std::fs::create_dir_all(&config.drop_dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (scanner_token, hash) = edge_agent::push::new_token();
    config.push = Some(edge_agent::push::PushConfig {
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        scanner_token_sha256: vec![hash],
        upload_timeout_secs: 60,
    });
    let (stop_agent, agent_stopped) = oneshot::channel::<()>();
    let agent = tokio::spawn(edge_agent::run(config.clone(), async {
        let _ = agent_stopped.await;
    }));

    // The scanner writes nothing locally: it posts the sidecar and images.
    let g = sim_scan(Scenario::Honest, 7);
    let staging = root.path().join("scanner");
    let files = scanner_sim::write::write_scan(&staging, &g.scan, &g.meta, false).unwrap();
    let form = || {
        let mut form = reqwest::multipart::Form::new().part(
            "sidecar",
            reqwest::multipart::Part::bytes(std::fs::read(&files.sidecar).unwrap()),
        );
        for path in [&files.high, &files.low] {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            form = form.part(
                name.clone(),
                reqwest::multipart::Part::bytes(std::fs::read(path).unwrap()).file_name(name),
            );
        }
        form
    };
    let client = reqwest::Client::new();
    let mut answer = None;
    for _ in 0..300 {
        // The agent binds its push port once its model has loaded.
        if let Ok(r) = client
            .post(format!("http://127.0.0.1:{port}/api/v1/scans"))
            .bearer_auth(&scanner_token)
            .multipart(form())
            .send()
            .await
        {
            answer = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = answer.expect("the push API came up");
    assert_eq!(answer.status().as_u16(), 202);
    let id = wait_for_cases(&server.store, 1).await;
    assert_eq!(id, 1);

    stop_agent.send(()).unwrap();
    agent.await.unwrap().unwrap();
    server.stop.take().unwrap().send(()).unwrap();
    server.task.await.unwrap().unwrap();
}
