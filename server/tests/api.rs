//! The server's API through `app()` with `tower::ServiceExt::oneshot`: no socket, a freshly
//! migrated SQLite database per test.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use baylens_server::store::Store;
use baylens_server::{AppState, MAX_REPORT_BYTES, app};
use tower::ServiceExt;

fn report(report_id: &str, scan_id: &str, bay: &str) -> serde_json::Value {
    serde_json::json!({
        "contract": "baylens.report/1", "report_id": report_id, "scan_id": scan_id, "bay": bay,
        "captured_at": "2026-11-25T10:00:00Z", "analysed_at": "2026-11-25T10:00:02Z",
        "container_code": "CSQU3054383", "width": 416, "height": 208,
        "model": {"name": "concealment-v1", "sha256": "ab", "max_probability": 0.9, "flagged_fraction": 0.01, "inference_ms": 20.0},
        "findings": [{"kind": "concealed_object", "score": 0.9, "region": {"x": 10, "y": 10, "width": 20, "height": 20}, "message": "dense object"}],
        "risk": 0.9, "lane": "red"
    })
}

async fn setup() -> (tempfile::TempDir, AppState, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let (_, token) = store.add_agent("test", "a1", "BAY01").await.unwrap();
    (dir, AppState::new(store), token)
}

async fn post(
    state: &AppState,
    token: &str,
    content_type: &str,
    body: impl Into<Body>,
) -> (StatusCode, serde_json::Value) {
    let request = Request::post("/api/v1/reports")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, content_type)
        .body(body.into())
        .unwrap();
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn the_same_report_sent_twice_makes_one_case() {
    let (_dir, state, token) = setup().await;
    let body = report("r-1", "BAY01-1", "BAY01").to_string();
    let (first, a) = post(&state, &token, "application/json", body.clone()).await;
    let (second, b) = post(&state, &token, "application/json", body).await;
    assert_eq!((first, second), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(a["case_id"], b["case_id"]);
    assert_eq!(b["duplicate"], true);
    assert_eq!(state.store.count_cases().await.unwrap(), 1);
    // A different report for the same scan is a conflict, not a second case.
    let (status, _) = post(
        &state,
        &token,
        "application/json",
        report("r-2", "BAY01-1", "BAY01").to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn another_bay_cannot_file_a_report_under_this_bays_scan_id() {
    let (_dir, state, bay01) = setup().await;
    let (_, bay02) = state.store.add_agent("test", "a2", "BAY02").await.unwrap();
    let (_, bay01a) = state
        .store
        .add_agent("test", "a3", "BAY01-A")
        .await
        .unwrap();
    // BAY02 tries to take BAY01's next id first, under its own bay or BAY01's.
    for bay in ["BAY02", "BAY01"] {
        let squat = report("r-squat", "BAY01-000777", bay).to_string();
        let (status, body) = post(&state, &bay02, "application/json", squat).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let (status, body) = post(
        &state,
        &bay02,
        "application/json",
        report("r-squat", "BAY01-000777", "BAY02").to_string(),
    )
    .await;
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("not a scan of bay BAY02"),
        "{status} {body}"
    );
    // The rightful report goes through.
    let own = report("r-777", "BAY01-000777", "BAY01").to_string();
    let (status, _) = post(&state, &bay01, "application/json", own).await;
    assert_eq!(status, StatusCode::CREATED);
    // Where one bay's name extends another's, the longer one owns its ids.
    let theirs = report("r-a1", "BAY01-A-1", "BAY01").to_string();
    let (status, _) = post(&state, &bay01, "application/json", theirs).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let own = report("r-a1", "BAY01-A-1", "BAY01-A").to_string();
    let (status, _) = post(&state, &bay01a, "application/json", own).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(state.store.count_cases().await.unwrap(), 2);
}

#[tokio::test]
async fn bad_reports_get_precise_errors_and_store_nothing() {
    let (_dir, state, token) = setup().await;
    let (status, body) = post(&state, &token, "application/json", "{\"contract\":").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"].as_str().unwrap().contains("malformed report"),
        "{body}"
    );
    let mut unknown = report("r", "s", "BAY01");
    unknown["extra"] = serde_json::json!(1);
    let (status, body) = post(&state, &token, "application/json", unknown.to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `extra`")
    );
    let (status, _) = post(
        &state,
        &token,
        "text/plain",
        report("r", "s", "BAY01").to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _) = post(
        &state,
        &token,
        "application/json",
        vec![b' '; MAX_REPORT_BYTES + 1],
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, body) = post(
        &state,
        &token,
        "application/json",
        report("r", "s", "BAY02").to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(state.store.count_cases().await.unwrap(), 0);
}

#[tokio::test]
async fn pages_send_anonymous_visitors_to_the_login() {
    let (_dir, state, _) = setup().await;
    for page in ["/queue", "/cases/1", "/audit", "/dashboard"] {
        let response = app(state.clone())
            .oneshot(Request::get(page).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{page}");
        assert_eq!(response.headers()[header::LOCATION], "/login", "{page}");
    }
}
