//! The bay camera's container-code reading on the server's case: compared with the scanner's
//! code and the declaration's, a disagreement becomes a `container_code_mismatch` finding that
//! raises the case's risk and lane, with both readings in its message and the camera's frames as
//! evidence; recorded once, audited, and every bad reading refused with a reason. On SQLite and
//! PostgreSQL.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use baylens_server::auth::Role;
use baylens_server::{AppState, app};
use common::json;
use tower::ServiceExt;

/// A small real JPEG (the server checks the magic, the page shows it).
const JPEG: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00, 0x00, 0x01,
    0x00, 0x01, 0x00, 0x00, 0xFF, 0xD9,
];

fn reading(n: u32, scan: &str, code: &str, frames: &[&[u8]]) -> serde_json::Value {
    use base64::Engine as _;
    serde_json::json!({
        "reading_id": format!("00000000-0000-4000-9000-{n:012}"), "scan_id": scan,
        "read_at": chrono::Utc::now().to_rfc3339(), "code": code, "confidence": 0.96,
        "frames": 8, "agreeing": 6, "size_type": "22G1",
        "frames_jpeg_base64": frames.iter().map(|f| base64::engine::general_purpose::STANDARD.encode(f)).collect::<Vec<_>>(),
    })
}

async fn post(state: &AppState, agent: &str, body: &serde_json::Value) -> common::Reply {
    let scan = body["scan_id"].as_str().unwrap_or("bay-1-1");
    let path = format!("/api/v1/scans/{scan}/camera-code");
    json(state, "POST", &path, Some(agent), body).await
}

#[tokio::test]
async fn a_camera_code_that_disagrees_becomes_a_finding_with_its_frames() {
    for backend in common::backends() {
        let (_d, store) = common::open(backend).await;
        let state = AppState::new(store);
        let (_, agent) = state
            .store
            .add_agent("test", "agent-1", "bay-1")
            .await
            .unwrap();
        let (_, other_bay) = state
            .store
            .add_agent("test", "agent-2", "bay-2")
            .await
            .unwrap();
        let sup = common::user(&state.store, "sup", Role::Supervisor, None).await;
        let r = json(
            &state,
            "POST",
            "/api/v1/declarations",
            Some(&sup),
            &common::declaration("D-1", "bay-1"),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        // Two honest-looking scans of the declared container CSQU3054383.
        for (r, scan) in [("r1", "bay-1-1"), ("r2", "bay-1-2")] {
            let mut report = common::report(r, scan, "bay-1", 0.1);
            report["findings"] = serde_json::json!([]);
            let r = json(&state, "POST", "/api/v1/reports", Some(&agent), &report).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        }
        let case = |id: i64| {
            let (state, sup) = (state.clone(), sup.clone());
            async move {
                let path = format!("/api/v1/cases/{id}");
                json(&state, "GET", &path, Some(&sup), &serde_json::Value::Null)
                    .await
                    .json
            }
        };
        let before = case(2).await;
        assert_eq!(before["lane"], "green", "{before:#}");
        assert_eq!(before["camera_code"], serde_json::Value::Null);

        // The camera agrees: recorded, no finding, once.
        let agrees = reading(1, "bay-1-1", "CSQU3054383", &[JPEG]);
        let r = post(&state, &agent, &agrees).await;
        assert_eq!(r.status, StatusCode::CREATED, "{backend}: {}", r.text);
        assert_eq!(r.json["mismatch"], serde_json::Value::Null, "{}", r.text);
        let r = post(&state, &agent, &agrees).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json["duplicate"], true);
        let c = case(1).await;
        assert_eq!(c["camera_code"]["code"], "CSQU3054383", "{c:#}");
        assert_eq!(c["camera_code"]["mismatch"], serde_json::Value::Null);
        assert_eq!(c["findings_count"], 0, "{c:#}");
        assert_eq!(c["lane"], "green");

        // The camera saw another container: a finding naming both readings and the
        // declaration, the case raised to red, the frames kept with the case.
        let other = reading(2, "bay-1-2", "MSKU0000006", &[JPEG, JPEG]);
        let r = post(&state, &agent, &other).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let message = r.json["mismatch"].as_str().unwrap().to_owned();
        for part in [
            "MSKU0000006",
            "the scanner gave CSQU3054383",
            "D-1",
            "6 of 8",
        ] {
            assert!(message.contains(part), "{part}: {message}");
        }
        let c = case(2).await;
        assert_eq!(c["findings_count"], 1, "{c:#}");
        assert_eq!(c["lane"], "red", "{c:#}");
        assert!(c["scan_risk"].as_f64().unwrap() > 0.8, "{c:#}");
        let finding = &c["report"]["findings"][0];
        assert_eq!(finding["kind"], "container_code_mismatch", "{c:#}");
        assert_eq!(finding["message"], message.as_str());
        assert_eq!(c["camera_code"]["mismatch"], message.as_str());
        let frames = c["camera_code"]["frames_evidence"].as_array().unwrap();
        assert_eq!(frames.len(), 2, "{c:#}");
        for f in frames {
            let path = format!("/api/v1/cases/2/layers/{}", f.as_str().unwrap());
            let r = common::call(&state, "GET", &path, Some(&sup), None, Body::empty()).await;
            assert_eq!(r.status, StatusCode::OK, "{path}");
            assert_eq!(r.bytes, JPEG, "{path}");
        }
        // The supervisor's case page shows it.
        let page = app(state.clone())
            .oneshot(
                Request::get("/cases/2")
                    .header(header::COOKIE, format!("__Host-baylens_session={sup}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let html = axum::body::to_bytes(page.into_body(), usize::MAX)
            .await
            .unwrap();
        let html = String::from_utf8_lossy(&html);
        assert!(html.contains("id=\"camera-mismatch\""), "{html}");
        assert!(html.contains("camera-00000000-0000-4000-9000-000000000002-1"));
        // Audited, by the agent.
        let audit = json(
            &state,
            "GET",
            "/api/v1/audit?subject=case:2",
            Some(&sup),
            &serde_json::Value::Null,
        )
        .await;
        assert!(audit.text.contains("case.camera_code"), "{}", audit.text);
        assert!(audit.text.contains("agent:agent-1"), "{}", audit.text);

        // A case keeps its first reading.
        let r = post(&state, &agent, &reading(3, "bay-1-2", "CSQU3054383", &[])).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
        assert!(
            r.text.contains("already has the camera's reading"),
            "{}",
            r.text
        );

        // Refused, each with its reason.
        let mut wrong_digit = reading(4, "bay-1-1", "CSQU3054383", &[]);
        wrong_digit["code"] = "CSQU3054384".into();
        let r = post(&state, &agent, &wrong_digit).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        assert!(r.text.contains("check digit"), "{}", r.text);
        let r = post(
            &state,
            &agent,
            &reading(5, "bay-1-1", "CSQU3054383", &[b"GIF89a"]),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        assert!(r.text.contains("not a JPEG"), "{}", r.text);
        let mut too_many = reading(6, "bay-1-1", "CSQU3054383", &[]);
        too_many["agreeing"] = 9.into();
        let r = post(&state, &agent, &too_many).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        assert!(r.text.contains("agreeing"), "{}", r.text);
        let mut future = reading(7, "bay-1-1", "CSQU3054383", &[]);
        future["read_at"] = (chrono::Utc::now() + chrono::Duration::hours(1))
            .to_rfc3339()
            .into();
        let r = post(&state, &agent, &future).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        let mut unknown = reading(8, "bay-1-1", "CSQU3054383", &[]);
        unknown["colour"] = "red".into();
        let r = post(&state, &agent, &unknown).await;
        assert!(r.status.is_client_error(), "{}", r.text);
        assert!(r.text.contains("colour"), "{}", r.text);
        // Another bay's agent, and a scan the server has no case for (the bay retries).
        let r = post(
            &state,
            &other_bay,
            &reading(9, "bay-1-1", "CSQU3054383", &[]),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
        let r = post(&state, &agent, &reading(10, "bay-1-9", "CSQU3054383", &[])).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
        // No credentials, or a person's: refused.
        let path = "/api/v1/scans/bay-1-1/camera-code";
        let r = json(&state, "POST", path, None, &agrees).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = json(&state, "POST", path, Some(&sup), &agrees).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        // Nothing refused changed the first case.
        let c = case(1).await;
        assert_eq!(c["findings_count"], 0, "{c:#}");
        assert_eq!(
            c["camera_code"]["reading_id"],
            "00000000-0000-4000-9000-000000000001"
        );
    }
}
