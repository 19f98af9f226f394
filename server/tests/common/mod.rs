//! Test fixtures shared by the server's integration tests: a store per backend, users with
//! sessions, and a one-call HTTP helper over `app()`.
//!
//! PostgreSQL: set `BAYLENS_TEST_POSTGRES_URL` (CI sets it, see `scripts/test.sh`). Each store
//! then lives in its own fresh schema, so tests run in parallel. When the variable is set
//! and the server cannot be reached, the tests fail rather than skip.

#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use baylens_server::auth::Role;
use baylens_server::store::Store;
use baylens_server::{AppState, app};
use sqlx::{Connection, Executor};
use tower::ServiceExt;

/// Environment variable naming the PostgreSQL server for tests.
pub const PG_ENV: &str = "BAYLENS_TEST_POSTGRES_URL";

/// The backends to test: SQLite always, PostgreSQL when configured.
pub fn backends() -> Vec<&'static str> {
    let mut b = vec!["sqlite"];
    if std::env::var(PG_ENV).is_ok_and(|v| !v.is_empty()) {
        b.push("postgres");
    } else {
        eprintln!("{PG_ENV} is not set: PostgreSQL tests skipped on this machine");
    }
    b
}

/// A fresh, migrated store on `backend`, with its image folder in the returned temp dir.
pub async fn open(backend: &str) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = match backend {
        "sqlite" => Store::open(dir.path()).await.unwrap(),
        "postgres" => {
            let url = std::env::var(PG_ENV).unwrap();
            sqlx::any::install_default_drivers();
            let schema = format!("t_{}", &baylens_server::auth::new_token("")[..16]);
            let mut conn = sqlx::AnyConnection::connect(&url)
                .await
                .unwrap_or_else(|e| panic!("{PG_ENV}={url} is set but unreachable: {e}"));
            conn.execute(format!("CREATE SCHEMA {schema}").as_str())
                .await
                .unwrap();
            conn.close().await.unwrap();
            let sep = if url.contains('?') { '&' } else { '?' };
            let url = format!("{url}{sep}options=-c%20search_path%3D{schema}");
            Store::open_url(&url, dir.path()).await.unwrap()
        }
        other => panic!("unknown backend {other}"),
    };
    (dir, store)
}

/// Adds a user and returns a session token for them.
pub async fn user(store: &Store, name: &str, role: Role, bay: Option<&str>) -> String {
    store
        .add_user("test", name, "correct horse battery", role, bay)
        .await
        .unwrap();
    let (user, _) = store.user_by_name(name).await.unwrap().unwrap();
    store.new_session(&user).await.unwrap()
}

/// A report of bay `bay` for scan `scan_id`.
pub fn report(report_id: &str, scan_id: &str, bay: &str, risk: f32) -> serde_json::Value {
    let lane = if risk >= 0.7 {
        "red"
    } else if risk >= 0.35 {
        "yellow"
    } else {
        "green"
    };
    serde_json::json!({
        "contract": "baylens.report/1", "report_id": report_id, "scan_id": scan_id, "bay": bay,
        "captured_at": chrono::Utc::now().to_rfc3339(), "analysed_at": chrono::Utc::now().to_rfc3339(),
        "container_code": "CSQU3054383", "width": 416, "height": 208,
        "model": {"name": "concealment-v1", "sha256": "ab", "max_probability": risk, "flagged_fraction": 0.01, "inference_ms": 20.0},
        "findings": [{"kind": "concealed_object", "score": risk, "region": {"x": 10, "y": 10, "width": 20, "height": 20}, "message": "dense object inside textiles"}],
        "risk": risk, "lane": lane
    })
}

/// A valid declaration for `reference`, container CSQU3054383, expected tomorrow at `bay`.
pub fn declaration(reference: &str, bay: &str) -> serde_json::Value {
    serde_json::json!({
        "contract": "baylens.declaration/1",
        "reference": reference,
        "declarant": {"name": "Acme Textiles Ltd", "id": "P051234567X"},
        "office": "KEMBA",
        "bay": bay,
        "container_code": "CSQU3054383",
        "expected_arrival": (chrono::Utc::now() + chrono::Duration::hours(20)).to_rfc3339(),
        "gross_mass_kg": 12000.0,
        "items": [
            {"hs_code": "5208.12", "description": "Cotton fabric, woven", "packages": 200, "package_type": "CT", "gross_mass_kg": 8000.0},
            {"hs_code": "640299", "description": "Sports shoes", "packages": 100, "gross_mass_kg": 4000.0}
        ]
    })
}

/// What a request got back.
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: axum::http::HeaderMap,
    /// Body as JSON (Null when not JSON).
    pub json: serde_json::Value,
    /// Body as text.
    pub text: String,
    /// Body as sent.
    pub bytes: Vec<u8>,
}

/// Sends one request through the app. `body` is JSON unless `content_type` says otherwise.
pub async fn call(
    state: &AppState,
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    let response = app(state.clone())
        .oneshot(req.body(body.into()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    if headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/event-stream"))
    {
        return Reply {
            status,
            headers,
            json: serde_json::Value::Null,
            text: String::new(),
            bytes: Vec::new(),
        };
    }
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Reply {
        status,
        headers,
        json: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        text,
        bytes: bytes.to_vec(),
    }
}

/// `call` with a JSON body.
pub async fn json(
    state: &AppState,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &serde_json::Value,
) -> Reply {
    call(
        state,
        method,
        path,
        token,
        Some("application/json"),
        body.to_string(),
    )
    .await
}

/// An independent reader's view of `bytes` (written to a file named `name`): the JSON that
/// `tests/fixtures/<script>` prints, run by the test tools' Python (`./baylens setup`).
pub fn python_reading(script: &str, name: &str, bytes: &[u8]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, bytes).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("../.tools/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: ./baylens setup installs the test tools",
        python.display()
    );
    let out = std::process::Command::new(python)
        .arg(root.join("tests/fixtures").join(script))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
