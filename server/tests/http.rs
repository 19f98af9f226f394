//! HTTP behaviour beyond the role matrix: the OpenAPI document matches the routes, declarations
//! get every problem listed, cookies and CSRF, login rate limiting, security headers, the live
//! event stream, metrics, and limits on bodies.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use baylens_server::auth::{Role, csrf_token};
use baylens_server::{AppState, ROUTES, Settings, app};
use common::{call, json};
use tower::ServiceExt;

async fn state() -> (tempfile::TempDir, AppState) {
    let (dir, store) = common::open("sqlite").await;
    (dir, AppState::new(store))
}

#[test]
fn the_openapi_document_describes_exactly_the_routes() {
    let doc: serde_json::Value =
        serde_json::from_str(baylens_server::routes::admin::OPENAPI).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            documented.push((method.to_uppercase(), path.clone()));
            let public = op
                .get("security")
                .is_some_and(|s| s.as_array().unwrap().is_empty());
            if !public {
                assert!(
                    op["responses"]["401"].is_object(),
                    "{method} {path} lacks 401"
                );
                assert!(
                    op["responses"]["403"].is_object(),
                    "{method} {path} lacks 403"
                );
            }
        }
    }
    documented.sort();
    let mut routes: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    routes.sort();
    assert_eq!(documented, routes);
    // Every reference resolves.
    let text = baylens_server::routes::admin::OPENAPI;
    for part in text.split("\"$ref\": \"#/components/schemas/").skip(1) {
        let name = &part[..part.find('"').unwrap()];
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }
}

#[tokio::test]
async fn a_bad_declaration_gets_every_problem_listed() {
    let (_d, state) = state().await;
    let sup = common::user(&state.store, "sup", Role::Supervisor, None).await;
    let mut d = common::declaration("R-9", "bay-1");
    d["container_code"] = "CSQU3054384".into();
    d["items"][0]["hs_code"] = "12".into();
    d["gross_mass_kg"] = (-1.0).into();
    let r = json(&state, "POST", "/api/v1/declarations", Some(&sup), &d).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let problems: Vec<&str> = r.json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("container_code") && p.contains("check digit")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("items[0].hs_code")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("gross_mass_kg")),
        "{problems:?}"
    );

    let mut d = common::declaration("R-9", "bay-1");
    d["smuggler_note"] = "none".into();
    let r = json(&state, "POST", "/api/v1/declarations", Some(&sup), &d).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text.contains("unknown field `smuggler_note`"),
        "{}",
        r.text
    );

    // Deep nesting is refused by the parser's recursion limit, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let r = call(
        &state,
        "POST",
        "/api/v1/declarations/import",
        Some(&sup),
        Some("application/json"),
        deep,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);

    // Oversized.
    let big = format!("{{\"x\": \"{}\"}}", "a".repeat(3 * 1024 * 1024));
    let r = call(
        &state,
        "POST",
        "/api/v1/declarations",
        Some(&sup),
        Some("application/json"),
        big,
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Import is all or nothing.
    let good = common::declaration("R-10", "bay-1");
    let mut bad = common::declaration("R-11", "bay-1");
    bad["office"] = "?".into();
    let r = json(
        &state,
        "POST",
        "/api/v1/declarations/import",
        Some(&sup),
        &serde_json::json!([good, bad]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("[1] invalid office"), "{}", r.text);
    assert!(state.store.declaration("R-10").await.unwrap().is_none());
    let r = json(
        &state,
        "POST",
        "/api/v1/declarations/import",
        Some(&sup),
        &serde_json::json!([good]),
    )
    .await;
    assert_eq!(r.json["lodged"], 1, "{}", r.text);
}

fn with_cookie(method: &str, path: &str, token: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::COOKIE, format!("__Host-baylens_session={token}"))
}

#[tokio::test]
async fn cookie_requests_that_change_state_need_the_csrf_token() {
    let (_d, state) = state().await;
    let sup = common::user(&state.store, "sup", Role::Supervisor, None).await;
    let body = common::declaration("R-1", "bay-1").to_string();
    let send = |req: Request<Body>| {
        let app = app(state.clone());
        async move { app.oneshot(req).await.unwrap().status() }
    };
    let no_csrf = with_cookie("POST", "/api/v1/declarations", &sup)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.clone()))
        .unwrap();
    assert_eq!(send(no_csrf).await, StatusCode::FORBIDDEN);
    let wrong = with_cookie("POST", "/api/v1/declarations", &sup)
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-csrf-token", csrf_token("bls_other"))
        .body(Body::from(body.clone()))
        .unwrap();
    assert_eq!(send(wrong).await, StatusCode::FORBIDDEN);
    let right = with_cookie("POST", "/api/v1/declarations", &sup)
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-csrf-token", csrf_token(&sup))
        .body(Body::from(body))
        .unwrap();
    assert_eq!(send(right).await, StatusCode::CREATED);
    // Reading needs no token.
    let read = with_cookie("GET", "/api/v1/cases", &sup)
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(read).await, StatusCode::OK);
    // The logout form checks its own token.
    let logout = with_cookie("POST", "/logout", &sup)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("csrf=nope"))
        .unwrap();
    assert_eq!(send(logout).await, StatusCode::FORBIDDEN);
    assert!(state.store.user_by_session(&sup).await.unwrap().is_some());
}

#[tokio::test]
async fn login_sets_a_hardened_cookie_and_is_rate_limited() {
    let (_d, store) = common::open("sqlite").await;
    store
        .add_user(
            "test",
            "sup",
            "correct horse battery",
            Role::Supervisor,
            None,
        )
        .await
        .unwrap();
    let state = AppState::new(store);
    let form = |password: &str| {
        Request::post("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::HOST, "localhost")
            .body(Body::from(format!("username=sup&password={password}")))
            .unwrap()
    };
    let ok = app(state.clone())
        .oneshot(form("correct+horse+battery"))
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let cookie = ok.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("__Host-baylens_session="), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    // A cross-site form post is refused.
    let mut cross = form("correct+horse+battery");
    cross
        .headers_mut()
        .insert(header::ORIGIN, "https://evil.example".parse().unwrap());
    assert_eq!(
        app(state.clone()).oneshot(cross).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );

    for _ in 0..5 {
        let r = app(state.clone()).oneshot(form("guess")).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // Now even the right password waits.
    let r = app(state.clone())
        .oneshot(form("correct+horse+battery"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let api = json(
        &state,
        "POST",
        "/api/v1/session",
        None,
        &serde_json::json!({"username": "sup", "password": "x"}),
    )
    .await;
    assert_eq!(api.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(api.headers.contains_key(header::RETRY_AFTER));

    // Demo mode drops only the Secure flag.
    let (_d2, store) = common::open("sqlite").await;
    store
        .add_user(
            "test",
            "sup",
            "correct horse battery",
            Role::Supervisor,
            None,
        )
        .await
        .unwrap();
    let demo = AppState::with_settings(
        store,
        Settings {
            secure_cookies: false,
            ..Settings::default()
        },
    );
    let r = app(demo)
        .oneshot(form("correct+horse+battery"))
        .await
        .unwrap();
    let cookie = r.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(!cookie.contains("Secure") && cookie.contains("HttpOnly"));
}

#[tokio::test]
async fn every_response_carries_security_headers() {
    let (_d, state) = state().await;
    for path in ["/healthz", "/login", "/api/v1/cases", "/nope"] {
        let r = call(&state, "GET", path, None, None, Body::empty()).await;
        for h in [
            "content-security-policy",
            "x-content-type-options",
            "x-frame-options",
            "referrer-policy",
        ] {
            assert!(r.headers.contains_key(h), "{path} lacks {h}");
        }
    }
}

#[tokio::test]
async fn new_cases_stream_live_to_those_who_may_see_them() {
    use futures_util::StreamExt;
    let (_d, state) = state().await;
    let off1 = common::user(&state.store, "off1", Role::Officer, Some("bay-1")).await;
    let off2 = common::user(&state.store, "off2", Role::Officer, Some("bay-2")).await;
    let (_, agent) = state
        .store
        .add_agent("test", "agent-1", "bay-1")
        .await
        .unwrap();
    let open = |token: String| {
        let app = app(state.clone());
        async move {
            let r = app
                .oneshot(
                    Request::get("/api/v1/events")
                        .header(header::AUTHORIZATION, format!("Bearer {token}"))
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(r.headers()[header::CONTENT_TYPE], "text/event-stream");
            r.into_body().into_data_stream()
        }
    };
    let mut mine = open(off1).await;
    let mut theirs = open(off2).await;
    let r = json(
        &state,
        "POST",
        "/api/v1/reports",
        Some(&agent),
        &common::report("r1", "bay-1-1", "bay-1", 0.9),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), mine.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&chunk);
    assert!(
        text.contains("event: case") && text.contains("\"scan_id\":\"bay-1-1\""),
        "{text}"
    );
    // The other bay's officer gets nothing (only keep-alives, which come after 15 s).
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), theirs.next())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn metrics_count_ingests_and_cases() {
    let (_d, state) = state().await;
    let admin = common::user(&state.store, "adm", Role::Admin, None).await;
    let (_, agent) = state
        .store
        .add_agent("test", "agent-1", "bay-1")
        .await
        .unwrap();
    let body = common::report("r1", "bay-1-1", "bay-1", 0.9);
    json(&state, "POST", "/api/v1/reports", Some(&agent), &body).await;
    json(&state, "POST", "/api/v1/reports", Some(&agent), &body).await;
    json(
        &state,
        "POST",
        "/api/v1/agents/heartbeat",
        Some(&agent),
        &serde_json::json!({"version": "1", "models": {}, "queue_depth": 7}),
    )
    .await;
    let m = call(&state, "GET", "/metrics", Some(&admin), None, Body::empty()).await;
    assert_eq!(m.status, StatusCode::OK);
    for line in [
        "baylens_reports_ingested_total{outcome=\"created\"} 1",
        "baylens_reports_ingested_total{outcome=\"duplicate\"} 1",
        "baylens_cases{lane=\"red\",status=\"open\"} 1",
        "baylens_agent_queue_depth{agent=\"agent-1\",bay=\"bay-1\"} 7",
        "baylens_http_requests_total{method=\"POST\",route=\"/api/v1/reports\",status=\"201\"} 1",
    ] {
        assert!(m.text.contains(line), "missing {line} in\n{}", m.text);
    }
}

#[tokio::test]
async fn readiness_reflects_the_database() {
    let (_d, state) = state().await;
    assert_eq!(
        call(&state, "GET", "/readyz", None, None, Body::empty())
            .await
            .status,
        StatusCode::OK
    );
    // A signed-in admin gets every check, as JSON.
    state
        .store
        .add_user("test", "root", "a-long-admin-password", Role::Admin, None)
        .await
        .unwrap();
    let admin = state
        .store
        .new_api_token("test", "root", 1)
        .await
        .unwrap()
        .unwrap();
    let detail = call(&state, "GET", "/readyz", Some(&admin), None, Body::empty()).await;
    assert_eq!(detail.status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&detail.text).unwrap();
    assert_eq!(v["ready"], true, "{v}");
    assert_eq!(v["checks"]["database"]["ok"], true, "{v}");
    assert_eq!(v["checks"]["images"]["ok"], true, "{v}");
    state.store.pool.close().await;
    let down = call(&state, "GET", "/readyz", None, None, Body::empty()).await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    // Anyone may ask: the answer names no host, user or driver error (those go to the log).
    assert!(down.text.contains("database unavailable"), "{}", down.text);
    assert!(!down.text.to_lowercase().contains("pool"), "{}", down.text);
}

#[tokio::test]
async fn images_can_live_at_a_configured_url() {
    let (_d, store) = common::open("sqlite").await;
    let elsewhere = tempfile::tempdir().unwrap();
    let url = format!("file://{}/scans-store", elsewhere.path().display());
    let store = store.with_images_url(&url).unwrap();
    let state = AppState::new(store);
    let (_, agent) = state
        .store
        .add_agent("test", "agent-1", "bay-1")
        .await
        .unwrap();
    json(
        &state,
        "POST",
        "/api/v1/reports",
        Some(&agent),
        &common::report("r1", "bay-1-1", "bay-1", 0.9),
    )
    .await;
    let mut png = Vec::new();
    image::GrayImage::new(4, 2)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let r = call(
        &state,
        "PUT",
        "/api/v1/scans/bay-1-1/preview",
        Some(&agent),
        Some("image/png"),
        png.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let (_, key) = state.store.case_preview(1).await.unwrap().unwrap();
    let stored = elsewhere.path().join("scans-store").join(key.unwrap());
    assert_eq!(std::fs::read(&stored).unwrap(), png);
    // A scheme no build serves is a clear configuration error.
    let (_d2, other) = common::open("sqlite").await;
    let err = other
        .with_images_url("gs://bucket/prefix")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("images URL \"gs://bucket/prefix\""), "{err}");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_body_is_cut_off() {
    use futures_util::StreamExt;
    let (_d, state) = state().await;
    let sup = common::user(&state.store, "sup", Role::Supervisor, None).await;
    // One byte of JSON, then nothing, for ever.
    let stalled = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(
        bytes::Bytes::from_static(b"{"),
    )])
    .chain(futures_util::stream::pending());
    let app = baylens_server::with_timeout(
        baylens_server::routes::declarations::router(),
        std::time::Duration::from_millis(300),
    )
    .with_state(state);
    let r = app
        .oneshot(
            Request::post("/api/v1/declarations")
                .header(header::AUTHORIZATION, format!("Bearer {sup}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(stalled))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_TIMEOUT);
}

#[tokio::test]
async fn on_postgresql_new_cases_reach_the_live_queue_of_every_replica() {
    use futures_util::StreamExt;
    if !common::backends().contains(&"postgres") {
        return;
    }
    let (_d, store) = common::open("postgres").await;
    // Two replicas over one database: ingest on A, watch on B.
    let a = AppState::new(store.clone());
    let b = AppState::new(store);
    let sup = common::user(&a.store, "sup", Role::Supervisor, None).await;
    let (_, agent) = a.store.add_agent("test", "agent-1", "bay-1").await.unwrap();
    let r = app(b.clone())
        .oneshot(
            Request::get("/api/v1/events")
                .header(header::AUTHORIZATION, format!("Bearer {sup}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut stream = r.into_body().into_data_stream();
    // Give B's listener time to connect and LISTEN before A notifies.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let posted = json(
        &a,
        "POST",
        "/api/v1/reports",
        Some(&agent),
        &common::report("r1", "bay-1-1", "bay-1", 0.9),
    )
    .await;
    assert_eq!(posted.status, StatusCode::CREATED);
    let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
        .await
        .expect("replica B heard of the case")
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&chunk);
    assert!(text.contains("\"scan_id\":\"bay-1-1\""), "{text}");
}
