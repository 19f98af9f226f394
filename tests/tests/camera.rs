//! The bay camera end to end: scanner-sim's simulated IP camera (MJPEG over HTTP) → the agent's
//! OpenCV source → AR registration, overlay and container-code OCR → the tablet API, the overlay
//! stream (WebSocket), an officer's annotation and the camera's code reading delivered to the
//! server's case. The camera is then pulled out from under the running agent, which goes on
//! taking scans and picks the camera up again when it comes back; still showing the first
//! container, it makes the second truck's case a code-mismatch finding.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use futures_util::StreamExt;
use scanner_sim::Scenario;
use scanner_sim::ipcam::IpCamera;
use support::*;
use tokio::sync::oneshot;

async fn bay(client: &reqwest::Client, url: &str, code: &str) -> serde_json::Value {
    client
        .get(format!("{url}/api/v1/bay"))
        .bearer_auth(code)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls the tablet API until `ok` holds (up to `secs`); returns the last answer.
async fn wait_bay(
    client: &reqwest::Client,
    url: &str,
    code: &str,
    secs: u64,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    for _ in 0..secs * 5 {
        last = bay(client, url, code).await;
        if ok(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    last
}

/// Polls a case on the server as `token` until `ok` holds (up to 30 s); returns the last answer.
async fn wait_case(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    case_id: i64,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut case = serde_json::Value::Null;
    for _ in 0..150 {
        case = get_json(client, &format!("{url}/api/v1/cases/{case_id}"), token).await;
        if ok(&case) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    case
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_view_reads_the_code_anchors_the_scan_and_survives_the_camera_going_away() {
    let root = tempfile::tempdir().unwrap();
    let (server, token_file) =
        start_server_with_officer(&root.path().join("server"), root.path()).await;

    // The camera sees the container the scanner scans: a 20' box with the scan's code.
    let first = sim_scan(Scenario::Concealment, 1);
    let code = first.meta.container_code.clone().unwrap();
    let cam = IpCamera::new(1280, 720);
    cam.show(Some((&code, first.truth.container, 3)));
    let cam_port = free_port();
    let cam_stop = start_sim_camera(&cam, cam_port);

    let tablet_port = free_port();
    let tablet = format!("http://127.0.0.1:{tablet_port}");
    let (tablet_section, officer_code) = tablet_config(tablet_port);
    let mut config = agent_config(root.path(), &server.url, &token_file);
    config.camera = Some(sim_camera_config(cam_port));
    config.tablet = Some(tablet_section);
    let drop = config.drop_dir.clone();
    std::fs::create_dir_all(&drop).unwrap();
    scanner_sim::write_scan(&drop, &first.scan, &first.meta, false).unwrap();
    let (stop_agent, agent_stopped) = oneshot::channel::<()>();
    let agent = tokio::spawn(edge_agent::run(config, async {
        let _ = agent_stopped.await;
    }));
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client.get(format!("{tablet}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every tablet route but health wants an officer.
    for path in ["/api/v1/bay", "/api/v1/live.jpg", "/api/v1/overlay/stream"] {
        let r = client.get(format!("{tablet}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let r = client
            .get(format!("{tablet}{path}"))
            .bearer_auth("blo_not-a-code")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }

    // The scan arrives, the camera finds the container and the overlay is drawn on it, and the
    // code painted on the container is read and matches the scanner's.
    let scan_id = first.meta.scan_id.to_string();
    let b = wait_bay(&client, &tablet, &officer_code, 120, |b| {
        b["scan"]["scan_id"] == scan_id.as_str()
            && b["live"]["overlay"] == true
            && b["code"]["reading"]["code"].is_string()
    })
    .await;
    assert_eq!(b["camera"]["state"], "live", "{b:#}");
    assert_eq!(b["scan"]["scan_id"], scan_id.as_str(), "{b:#}");
    assert_eq!(b["live"]["overlay"], true, "{b:#}");
    assert_eq!(b["code"]["reading"]["code"], code.as_str(), "{b:#}");
    assert_eq!(b["code"]["matches_scan"], true, "{b:#}");
    assert!(
        !b["scan"]["findings"].as_array().unwrap().is_empty(),
        "{b:#}"
    );

    let jpg = client
        .get(format!("{tablet}/api/v1/live.jpg"))
        .bearer_auth(&officer_code)
        .send()
        .await
        .unwrap();
    assert_eq!(jpg.status(), 200);
    assert_eq!(jpg.headers()["content-type"], "image/jpeg");
    let jpg = jpg.bytes().await.unwrap();
    let frame = image::load_from_memory(&jpg).unwrap();
    assert_eq!((frame.width(), frame.height()), (1280, 720));
    let layer = client
        .get(format!(
            "{tablet}/api/v1/scans/{scan_id}/layers/findings.png"
        ))
        .bearer_auth(&officer_code)
        .send()
        .await
        .unwrap();
    assert_eq!(layer.status(), 200);

    // The overlay stream, as a headset reads it: every field the schema requires, the
    // homography maps the scan's cargo space into the frame, primitives in scan pixels.
    let schema: serde_json::Value =
        serde_json::from_str(edge_agent::tablet::STREAM_SCHEMA).unwrap();
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://127.0.0.1:{tablet_port}/api/v1/overlay/stream"
        ))
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {officer_code}").parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut message = serde_json::Value::Null;
    for _ in 0..20 {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        message = serde_json::from_str(m.to_text().unwrap()).unwrap();
        if message["homography"].is_array() {
            break;
        }
    }
    for key in schema["required"].as_array().unwrap() {
        assert!(
            message.get(key.as_str().unwrap()).is_some(),
            "missing {key}: {message:#}"
        );
    }
    assert_eq!(message["contract"], "baylens.overlay-stream/1");
    assert_eq!(message["scan"]["scan_id"], scan_id.as_str());
    let h: Vec<f64> = message["homography"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(h.len(), 9);
    let cs = &message["primitives"]["cargo_space"];
    let (x, y) = (cs["x"].as_f64().unwrap(), cs["y"].as_f64().unwrap());
    let (u, v, w) = (
        h[0] * x + h[1] * y + h[2],
        h[3] * x + h[4] * y + h[5],
        h[6] * x + h[7] * y + h[8],
    );
    let corners = message["face_corners"].as_array().unwrap();
    let tl = (
        corners[0][0].as_f64().unwrap(),
        corners[0][1].as_f64().unwrap(),
    );
    // The cargo space's top-left corner lands just inside the face's top-left corner.
    assert!(
        (u / w - tl.0).abs() < 40.0 && (v / w - tl.1).abs() < 40.0,
        "{:?} vs {tl:?}",
        (u / w, v / w)
    );
    assert!(message["primitives"]["findings"].is_array());
    std::mem::drop(ws);

    // Streams opened with a tablet session end when the officer signs out.
    let signed_in = client
        .post(format!("{tablet}/api/v1/session"))
        .json(&serde_json::json!({ "code": officer_code }))
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://127.0.0.1:{tablet_port}/api/v1/overlay/stream"
        ))
        .unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut mjpg = client
        .get(format!("{tablet}/api/v1/live.mjpg"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(mjpg.status(), 200);
    assert!(ws.next().await.unwrap().unwrap().is_text());
    assert!(!mjpg.chunk().await.unwrap().unwrap().is_empty());
    let out = client
        .delete(format!("{tablet}/api/v1/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => {
                    return frame.map(|f| u16::from(f.code));
                }
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("the overlay stream ends after sign-out");
    assert_eq!(closed, Some(4401));
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = mjpg.chunk().await {}
    })
    .await
    .expect("the MJPEG stream ends after sign-out");

    // The officer records a broken seal with a photo; it reaches the case on the server,
    // attributed to the officer.
    let photo = base64::engine::general_purpose::STANDARD.encode(&jpg);
    let r = client
        .post(format!("{tablet}/api/v1/scans/{scan_id}/annotations"))
        .bearer_auth(&officer_code)
        .json(
            &serde_json::json!({"seal": "broken", "examination": "discrepancy",
            "note": "seal cut; cartons behind the false wall", "photo_base64": photo}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let bad = client
        .post(format!("{tablet}/api/v1/scans/{scan_id}/annotations"))
        .bearer_auth(&officer_code)
        .json(&serde_json::json!({"seal": "broken"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    // The case as the officer sees it on the server.
    let officer = session_token(&client, &server.url, "off1").await;
    assert_eq!(wait_for_cases(&server.store, 1).await, 1);
    let (case_id, _) = server.store.case_of_scan(&scan_id).await.unwrap().unwrap();
    let case = wait_case(&client, &server.url, &officer, case_id, |c| {
        c.to_string().contains("\"seal\"") && c["camera_code"]["code"].is_string()
    })
    .await;
    let text = case.to_string();
    assert!(
        text.contains("\"seal\"") && text.contains("broken"),
        "{case:#}"
    );
    assert!(text.contains("off1"), "{case:#}");
    assert!(text.contains("photo-"), "{case:#}");
    // The camera's reading went to the case too, and agrees with the scanner's.
    assert_eq!(case["camera_code"]["code"], code.as_str(), "{case:#}");
    assert!(case["camera_code"]["mismatch"].is_null(), "{case:#}");

    // The camera goes away: the tablet says so, scans are still taken, and the camera is
    // picked up again when it is back.
    cam_stop.store(true, Ordering::Relaxed);
    let b = wait_bay(&client, &tablet, &officer_code, 60, |b| {
        b["camera"]["state"] != "live"
    })
    .await;
    assert_ne!(b["camera"]["state"], "live", "{b:#}");
    let second = drop_scan(&drop, Scenario::Honest, 2);
    let second_id = second.meta.scan_id.to_string();
    let b = wait_bay(&client, &tablet, &officer_code, 60, |b| {
        b["scan"]["scan_id"] == second_id.as_str()
    })
    .await;
    assert_eq!(b["scan"]["scan_id"], second_id.as_str(), "{b:#}");
    assert_ne!(b["camera"]["state"], "live", "{b:#}");
    let _cam_back = start_sim_camera(&cam, cam_port);
    let b = wait_bay(&client, &tablet, &officer_code, 60, |b| {
        b["camera"]["state"] == "live" && b["camera"]["reconnects"].as_u64() >= Some(1)
    })
    .await;
    assert_eq!(b["camera"]["state"], "live", "{b:#}");
    assert!(b["camera"]["reconnects"].as_u64() >= Some(1), "{b:#}");

    // The camera still sees the first container while the second truck's scan is the bay's
    // latest: the tablet says the codes differ, and the second case gets a finding naming both
    // codes, with the frames that read it.
    let second_code = second.meta.container_code.clone().unwrap();
    assert_ne!(second_code, code);
    let b = wait_bay(&client, &tablet, &officer_code, 120, |b| {
        b["code"]["scan_id"] == second_id.as_str() && b["code"]["matches_scan"] == false
    })
    .await;
    assert_eq!(b["code"]["reading"]["code"], code.as_str(), "{b:#}");
    assert_eq!(b["code"]["matches_scan"], false, "{b:#}");
    assert_eq!(wait_for_cases(&server.store, 2).await, 2);
    let (second_case, _) = server
        .store
        .case_of_scan(&second_id)
        .await
        .unwrap()
        .unwrap();
    // The case page reads the case and its camera reading one after the other, so a poll can
    // land between them while the reading commits: wait until the page shows both.
    let has_finding = |c: &serde_json::Value| {
        c["report"]["findings"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["kind"] == "container_code_mismatch"))
    };
    let case = wait_case(&client, &server.url, &officer, second_case, |c| {
        c["camera_code"]["code"].is_string() && has_finding(c)
    })
    .await;
    let message = case["camera_code"]["mismatch"].as_str().unwrap_or_default();
    assert!(
        message.contains(code.as_str()) && message.contains(second_code.as_str()),
        "{case:#}"
    );
    assert!(
        case["report"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "container_code_mismatch" && f["message"] == message),
        "{case:#}"
    );
    let frames = case["camera_code"]["frames_evidence"].as_array().unwrap();
    assert!(!frames.is_empty(), "{case:#}");
    let frame = client
        .get(format!(
            "{}/api/v1/cases/{second_case}/layers/{}",
            server.url,
            frames[0].as_str().unwrap()
        ))
        .bearer_auth(&officer)
        .send()
        .await
        .unwrap();
    assert_eq!(frame.status(), 200);
    let frame = image::load_from_memory(&frame.bytes().await.unwrap()).unwrap();
    assert_eq!((frame.width(), frame.height()), (1280, 720));

    let _ = stop_agent.send(());
    agent.await.unwrap().unwrap();
}
