//! The role matrix: every endpoint in `ROUTES` × every kind of caller gets the expected
//! status. Allowed callers must succeed (2xx) with a valid request; everyone else gets 401
//! (no, unknown, expired or revoked credentials) or 403 (known, but not allowed).

mod common;

use axum::http::StatusCode;
use baylens_server::auth::Role;
use baylens_server::{AppState, ROUTES};
use common::{call, json};

/// The callers of the matrix.
const CALLERS: &[&str] = &[
    "none",
    "unknown-token",
    "expired-session",
    "revoked-agent",
    "agent",
    "agent-other-bay",
    "officer",
    "officer-other-bay",
    "supervisor",
    "admin",
    "agency-shared",
    "agency-not-shared",
    "metrics",
];

/// Who may call each route (everyone else: 401 or 403).
fn allowed(method: &str, path: &str) -> &'static [&'static str] {
    const USERS: &[&str] = &[
        "officer",
        "officer-other-bay",
        "supervisor",
        "admin",
        "agency-shared",
        "agency-not-shared",
    ];
    // Every signed-in user, the scrapers' read-only role included (their own session only).
    const SIGNED_IN: &[&str] = &[
        "officer",
        "officer-other-bay",
        "supervisor",
        "admin",
        "agency-shared",
        "agency-not-shared",
        "metrics",
    ];
    const CUSTOMS: &[&str] = &["officer", "officer-other-bay", "supervisor", "admin"];
    const CASE_READERS: &[&str] = &["officer", "supervisor", "admin", "agency-shared"];
    match (method, path) {
        ("GET", "/healthz") | ("GET", "/readyz") | ("POST", "/api/v1/session") => CALLERS,
        ("GET", "/metrics") => &["admin", "metrics"],
        ("GET", "/api/v1/openapi.json")
        | ("DELETE", "/api/v1/session")
        | ("PUT", "/api/v1/session/password") => SIGNED_IN,
        ("GET", "/api/v1/tokens") | ("DELETE", "/api/v1/tokens/{token_id}") => &["admin"],
        ("GET", "/api/v1/fleet") => &["supervisor", "admin"],
        ("POST", "/api/v1/reports")
        | ("PUT", "/api/v1/scans/{scan_id}/preview")
        | ("PUT", "/api/v1/scans/{scan_id}/layers/{layer}")
        | ("POST", "/api/v1/scans/{scan_id}/annotations")
        | ("POST", "/api/v1/scans/{scan_id}/camera-code") => &["agent"],
        ("POST", "/api/v1/agents/heartbeat")
        | ("GET", "/api/v1/declarations/sync")
        | ("GET", "/api/v1/models/{model}/release")
        | ("GET", "/api/v1/models/{model}/{sha256}") => &["agent", "agent-other-bay"],
        (_, "/api/v1/agents") | (_, "/api/v1/agents/{name}") => &["admin"],
        ("GET", "/api/v1/declarations") | ("GET", "/api/v1/release-times") => CUSTOMS,
        ("GET", "/api/v1/declarations/{reference}") => &["officer", "supervisor", "admin"],
        ("POST", "/api/v1/declarations") | ("POST", "/api/v1/declarations/import") => {
            &["supervisor", "admin"]
        }
        ("GET", "/api/v1/cases") | ("GET", "/api/v1/events") => USERS,
        ("GET", "/api/v1/cases/{id}")
        | ("GET", "/api/v1/cases/{id}/tdr")
        | ("GET", "/api/v1/cases/{id}/preview")
        | ("GET", "/api/v1/cases/{id}/layers/{layer}") => CASE_READERS,
        ("POST", "/api/v1/cases/{id}/examinations") | ("POST", "/api/v1/cases/{id}/notes") => {
            &["officer", "supervisor"]
        }
        ("POST", "/api/v1/cases/{id}/decisions")
        | ("POST", "/api/v1/cases/{id}/assignment")
        | ("POST", "/api/v1/cases/{id}/shares") => &["supervisor"],
        (_, "/api/v1/users")
        | (_, "/api/v1/users/{username}/role")
        | (_, "/api/v1/users/{username}/disabled")
        | (_, "/api/v1/users/{username}/password") => &["admin"],
        ("GET", "/api/v1/audit") | ("GET", "/api/v1/audit/verify") => &["supervisor", "admin"],
        ("GET", "/api/v1/cases/{id}/bundle") => &["supervisor", "admin", "agency-shared"],
        ("GET", "/api/v1/bundle-key") => USERS,
        ("POST", "/api/v1/bundles")
        | ("GET", "/api/v1/imports")
        | ("GET", "/api/v1/imports/{id}")
        | ("GET", "/api/v1/imports/{id}/files/{path}")
        | ("GET", "/api/v1/outcomes")
        | (_, "/api/v1/dataset-exports")
        | ("GET", "/api/v1/dataset-exports/{id}")
        | ("GET", "/api/v1/dataset-exports/{id}/download") => &["supervisor", "admin"],
        ("GET", "/api/v1/agents/raw-wanted") => &["agent", "agent-other-bay"],
        ("POST", "/api/v1/agents/raw-missing") | ("PUT", "/api/v1/scans/{scan_id}/raw") => {
            &["agent"]
        }
        other => panic!("route {other:?} has no row in the role matrix"),
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    state: AppState,
    tokens: std::collections::HashMap<&'static str, String>,
    case_id: i64,
    /// A live API token's id (for `DELETE /api/v1/tokens/{token_id}`).
    token_id: String,
    /// A signed bundle of the case (for `POST /api/v1/bundles`).
    bundle: Vec<u8>,
    /// The id of that bundle once imported (for `/api/v1/imports/{id}`).
    import_id: i64,
    /// A finished dataset export (for `/api/v1/dataset-exports/{id}`).
    export_id: i64,
}

/// The model file the fixture publishes.
const MODEL_FILE: &[u8] = b"rbac model bytes";

fn model_sha() -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(MODEL_FILE))
}

async fn fixture() -> Fixture {
    let (dir, store) = common::open("sqlite").await;
    let (secret, _) = baylens_protocol::release::new_key([3; 32]);
    let terms = baylens_protocol::release::Terms {
        serial: 1,
        expires_at: None,
    };
    let release =
        baylens_protocol::release::sign("xray-concealment", MODEL_FILE, &terms, &secret).unwrap();
    store
        .publish_model("test", &release, MODEL_FILE.to_vec())
        .await
        .unwrap();
    let mut tokens = std::collections::HashMap::new();
    tokens.insert("unknown-token", "bls_0000".to_owned());
    let (_, t) = store.add_agent("test", "agent-1", "bay-1").await.unwrap();
    tokens.insert("agent", t.clone());
    let (_, t2) = store.add_agent("test", "agent-2", "bay-2").await.unwrap();
    tokens.insert("agent-other-bay", t2);
    let (_, revoked) = store.add_agent("test", "agent-old", "bay-1").await.unwrap();
    store.revoke_agent("test", "agent-old").await.unwrap();
    tokens.insert("revoked-agent", revoked);
    for (name, role, bay) in [
        ("officer", Role::Officer, Some("bay-1")),
        ("officer-other-bay", Role::Officer, Some("bay-2")),
        ("supervisor", Role::Supervisor, None),
        ("admin", Role::Admin, None),
        ("agency-shared", Role::Agency, None),
        ("agency-not-shared", Role::Agency, None),
        ("metrics", Role::Metrics, None),
    ] {
        tokens.insert(name, common::user(&store, name, role, bay).await);
    }
    // An expired session: valid token, expiry in the past.
    let expired = common::user(&store, "expired", Role::Supervisor, None).await;
    sqlx::query("UPDATE sessions SET expires_at = 0 WHERE user_id = (SELECT id FROM users WHERE username = 'expired')")
        .execute(&store.pool)
        .await
        .unwrap();
    tokens.insert("expired-session", expired);
    let scraper = store
        .new_api_token("test", "agency-not-shared", 1)
        .await
        .unwrap()
        .unwrap();
    let token_id = baylens_server::auth::hash_token(&scraper)[..12].to_owned();
    store
        .lodge_declaration(
            "test",
            &serde_json::from_value(common::declaration("R-1", "bay-1")).unwrap(),
        )
        .await
        .unwrap();
    // The administration's key, trusted by itself so that its own bundle can be imported.
    let signer = baylens_server::bundle::BundleSigner::generate("RBAC customs").unwrap();
    store
        .trust_key("test", "self", &signer.public())
        .await
        .unwrap();
    let state = AppState::with_settings(
        store,
        baylens_server::Settings {
            bundle_signer: Some(std::sync::Arc::new(signer)),
            ..Default::default()
        },
    );
    let r = json(
        &state,
        "POST",
        "/api/v1/reports",
        Some(&t),
        &common::report("r-1", "bay-1-1", "bay-1", 0.8),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let case_id = r.json["case_id"].as_i64().unwrap();
    let r = call(
        &state,
        "PUT",
        "/api/v1/scans/bay-1-1/preview",
        Some(&t),
        Some("image/png"),
        png(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = call(
        &state,
        "PUT",
        "/api/v1/scans/bay-1-1/layers/heat",
        Some(&t),
        Some("image/png"),
        png(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let sup = tokens["supervisor"].clone();
    let r = json(
        &state,
        "POST",
        &format!("/api/v1/cases/{case_id}/shares"),
        Some(&sup),
        &serde_json::json!({"username": "agency-shared"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = call(
        &state,
        "GET",
        &format!("/api/v1/cases/{case_id}/bundle"),
        Some(&sup),
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let bundle = r.bytes.clone();
    let r = call(
        &state,
        "POST",
        "/api/v1/bundles",
        Some(&sup),
        Some(baylens_server::bundle::MEDIA_TYPE),
        bundle.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let import_id = r.json["id"].as_i64().unwrap();
    let r = json(
        &state,
        "POST",
        "/api/v1/dataset-exports",
        Some(&sup),
        &serde_json::json!({"from": "2020-01-01", "to": "2099-12-31"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let export_id = r.json["id"].as_i64().unwrap();
    for _ in 0..500 {
        let job = state.store.export_job(export_id).await.unwrap().unwrap();
        if job.state != "running" {
            assert_eq!(job.state, "done", "{job:?}");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Fixture {
        _dir: dir,
        state,
        tokens,
        case_id,
        token_id,
        bundle,
        import_id,
        export_id,
    }
}

fn png() -> Vec<u8> {
    let mut out = Vec::new();
    image::RgbImage::new(4, 2)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// The raw scan of `bay-1-1`: its sidecar and one 16-bit image, as a tar.
fn raw_scan() -> Vec<u8> {
    let mut image = Vec::new();
    image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::new(4, 2)
        .write_to(
            &mut std::io::Cursor::new(&mut image),
            image::ImageFormat::Png,
        )
        .unwrap();
    let sidecar = serde_json::json!({
        "contract": "baylens.scan/1", "scan_id": "bay-1-1", "bay": "bay-1",
        "captured_at": chrono::Utc::now().to_rfc3339(), "pixel_pitch_mm": 5.0,
        "images": [{"file": "bay-1-1.high.png", "energy": "high", "energy_mev": 6.0, "air": 60000, "dark": 100}],
    });
    let mut b = tar::Builder::new(Vec::new());
    for (name, bytes) in [
        ("bay-1-1.json", sidecar.to_string().into_bytes()),
        ("bay-1-1.high.png", image),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, bytes.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

/// A valid request for the route, from `caller` (the n-th allowed call of this route).
fn request(
    method: &str,
    path: &str,
    f: &Fixture,
    n: usize,
) -> (String, Option<&'static str>, Vec<u8>) {
    let id = if path.starts_with("/api/v1/imports/") {
        f.import_id
    } else if path.starts_with("/api/v1/dataset-exports/") {
        f.export_id
    } else {
        f.case_id
    };
    let path = path
        .replace("{id}", &id.to_string())
        .replace("{path}", "images/heat.png")
        .replace("{token_id}", &f.token_id)
        .replace("{scan_id}", "bay-1-1")
        .replace("{reference}", "R-1")
        .replace("{layer}", "heat")
        .replace("{name}", "agent-2")
        .replace("{username}", "officer-other-bay")
        .replace("{model}", "xray-concealment")
        .replace("{sha256}", &model_sha());
    let body = match (method, path.as_str()) {
        ("POST", "/api/v1/session") => {
            serde_json::json!({"username": "supervisor", "password": "correct horse battery"})
        }
        ("POST", "/api/v1/reports") => {
            common::report(&format!("r-x{n}"), &format!("bay-1-x{n}"), "bay-1", 0.3)
        }
        ("POST", "/api/v1/agents/heartbeat") => {
            serde_json::json!({"version": "0.1.0", "models": {"concealment-v1": "ab"}, "queue_depth": 3})
        }
        ("POST", "/api/v1/agents") => {
            serde_json::json!({"name": format!("agent-n{n}"), "bay": "bay-3"})
        }
        ("POST", "/api/v1/declarations") => common::declaration(&format!("R-N{n}"), "bay-1"),
        ("POST", "/api/v1/declarations/import") => {
            serde_json::json!([common::declaration(&format!("R-I{n}"), "bay-2")])
        }
        ("POST", "/api/v1/users") => {
            serde_json::json!({"username": format!("new-user-{n}"), "password": "a long enough password", "role": "supervisor"})
        }
        ("PUT", "/api/v1/session/password") => {
            serde_json::json!({"current": "correct horse battery", "new": "a new and long password"})
        }
        ("PUT", _) if path.ends_with("/disabled") => serde_json::json!({"disabled": true}),
        ("PUT", _) if path.ends_with("/password") => {
            serde_json::json!({"password": "a long enough password"})
        }
        ("PUT", _) if path.ends_with("/role") => {
            serde_json::json!({"role": "officer", "bay": "bay-3"})
        }
        ("POST", p) if p.ends_with("/decisions") => {
            serde_json::json!({"decision": "hold", "note": "seal broken"})
        }
        ("POST", p) if p.ends_with("/examinations") => serde_json::json!({"result": "consistent"}),
        ("POST", p) if p.ends_with("/notes") => serde_json::json!({"note": "driver waiting"}),
        ("POST", p) if p.ends_with("/annotations") => serde_json::json!({
            "annotation_id": format!("00000000-0000-4000-8000-{n:012}"), "scan_id": "bay-1-1",
            "officer": "officer", "recorded_at": chrono::Utc::now().to_rfc3339(),
            "seal": "intact", "examination": null, "note": null, "photo_base64": null
        }),
        ("POST", p) if p.ends_with("/camera-code") => serde_json::json!({
            "reading_id": format!("00000000-0000-4000-9000-{n:012}"), "scan_id": "bay-1-1",
            "read_at": chrono::Utc::now().to_rfc3339(), "code": "CSQU3054383",
            "confidence": 0.95, "frames": 4, "agreeing": 3
        }),
        ("POST", p) if p.ends_with("/assignment") => serde_json::json!({"username": "officer"}),
        ("POST", p) if p.ends_with("/shares") => {
            serde_json::json!({"username": "agency-not-shared"})
        }
        ("PUT", p) if p.ends_with("/raw") => return (path, Some("application/x-tar"), raw_scan()),
        ("PUT", _) => return (path, Some("image/png"), png()),
        ("POST", "/api/v1/agents/raw-missing") => {
            serde_json::json!({"scan_id": "bay-1-1", "reason": "removed from done/"})
        }
        ("POST", "/api/v1/dataset-exports") => {
            serde_json::json!({"from": "2020-01-01", "to": "2099-12-31", "bay": "bay-1"})
        }
        ("POST", "/api/v1/bundles") => {
            return (
                path,
                Some(baylens_server::bundle::MEDIA_TYPE),
                f.bundle.clone(),
            );
        }
        _ => return (path, None, Vec::new()),
    };
    (
        path,
        Some("application/json"),
        body.to_string().into_bytes(),
    )
}

#[tokio::test]
async fn every_route_answers_every_caller_as_the_matrix_says() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for &(method, route) in ROUTES {
        let allow = allowed(method, route);
        let f = fixture().await;
        // Refused callers first, so that allowed calls (which change state) cannot hide a refusal.
        let (refused, ok): (Vec<&str>, Vec<&str>) =
            CALLERS.iter().partition(|c| !allow.contains(c));
        for (n, caller) in refused.iter().chain(ok.iter()).enumerate() {
            let (path, ct, body) = request(method, route, &f, n);
            let token = f.tokens.get(caller).map(String::as_str);
            let r = call(&f.state, method, &path, token, ct, body).await;
            let expected_ok = allow.contains(caller);
            let good = if expected_ok {
                r.status.is_success()
            } else if matches!(
                *caller,
                "none" | "unknown-token" | "expired-session" | "revoked-agent"
            ) {
                r.status == StatusCode::UNAUTHORIZED
            } else {
                r.status == StatusCode::FORBIDDEN
            };
            checked += 1;
            if !good {
                failures.push(format!(
                    "{method} {route} as {caller}: got {} (expected {}) {}",
                    r.status,
                    if expected_ok { "2xx" } else { "401/403" },
                    r.text.chars().take(200).collect::<String>()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, ROUTES.len() * CALLERS.len());
}
