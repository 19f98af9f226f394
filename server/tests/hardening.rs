//! The security hardening through the API: evidence written once, login throttling that holds
//! under parallel guesses and across replicas, and annotations attributed to officers of the
//! bay at plausible times.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use baylens_server::auth::Role;
use baylens_server::{AppState, Settings, app};
use common::{call, json};
use tower::ServiceExt;

async fn state() -> (tempfile::TempDir, AppState) {
    let (dir, store) = common::open("sqlite").await;
    (dir, AppState::new(store))
}

#[tokio::test]
async fn evidence_is_written_once_hashed_audited_and_closed_by_a_decision() {
    use sha2::Digest;
    let (_d, state) = state().await;
    let (_, agent) = state
        .store
        .add_agent("test", "agent-1", "bay-1")
        .await
        .unwrap();
    for (r, scan) in [("r1", "bay-1-1"), ("r2", "bay-1-2")] {
        let report = common::report(r, scan, "bay-1", 0.9);
        json(&state, "POST", "/api/v1/reports", Some(&agent), &report).await;
    }
    let png = |w: u32| {
        let mut png = Vec::new();
        image::GrayImage::new(w, w / 2)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        png
    };
    let put = |path: &'static str, body: Vec<u8>| {
        let (state, agent) = (state.clone(), agent.clone());
        async move { call(&state, "PUT", path, Some(&agent), Some("image/png"), body).await }
    };
    let heat = "/api/v1/scans/bay-1-1/layers/heat";
    let first = put(heat, png(4)).await;
    assert_eq!(first.status, StatusCode::NO_CONTENT, "{}", first.text);
    // The agent's retry of the same image is fine; another image is refused.
    assert_eq!(put(heat, png(4)).await.status, StatusCode::NO_CONTENT);
    let other = put(heat, png(5)).await;
    assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.text);
    assert!(other.text.contains("never replaced"), "{}", other.text);
    let key = state.store.layer_key(1, "heat").await.unwrap().unwrap();
    let held = state.store.images.get(&key.as_str().into()).await.unwrap();
    assert_eq!(
        held.bytes().await.unwrap().to_vec(),
        png(4),
        "the first image stays"
    );
    // Every write is in the audit chain, with its hash.
    let sha = hex::encode(sha2::Sha256::digest(png(4)));
    let audit = state.store.audit_entries(None, 100).await.unwrap();
    let writes: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "evidence.store")
        .collect();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].detail["sha256"], sha.as_str());

    // A cleared scan's thumbnail is superseded once by its full resolution; then no more.
    let preview = "/api/v1/scans/bay-1-1/preview";
    assert_eq!(put(preview, png(4)).await.status, StatusCode::NO_CONTENT);
    let full = put(preview, png(12)).await;
    assert_eq!(full.status, StatusCode::NO_CONTENT, "{}", full.text);
    assert_eq!(put(preview, png(12)).await.status, StatusCode::NO_CONTENT);
    assert_eq!(put(preview, png(16)).await.status, StatusCode::CONFLICT);
    assert_eq!(put(preview, png(2)).await.status, StatusCode::CONFLICT);

    // Once a case is decided, its evidence is closed, even a first preview.
    common::user(&state.store, "sup", Role::Supervisor, None).await;
    let (sup, _) = state.store.user_by_name("sup").await.unwrap().unwrap();
    let hold = baylens_server::store::Decision::Hold;
    let decided = state.store.decide(&sup, 2, hold, Some("seal broken")).await;
    assert!(decided.unwrap().is_ok());
    let late = put("/api/v1/scans/bay-1-2/preview", png(4)).await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.text);
    assert!(late.text.contains("decided"), "{}", late.text);
}

/// Sends `n` wrong-password logins at once (user `user(i)`, from `addr` if given); returns how
/// many were checked (401) and how many refused unchecked (429 or 503).
async fn parallel_guesses(
    state: &AppState,
    n: usize,
    user: impl Fn(usize) -> String,
    addr: Option<std::net::SocketAddr>,
) -> (usize, usize) {
    let mut tasks = Vec::new();
    for i in 0..n {
        let body = serde_json::json!({"username": user(i), "password": "guess"}).to_string();
        let mut request = Request::post("/api/v1/session")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        if let Some(a) = addr {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(a));
        }
        let app = app(state.clone());
        tasks.push(tokio::spawn(async move {
            app.oneshot(request).await.unwrap().status()
        }));
    }
    let (mut checked, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    (checked, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_guesses_get_no_more_tries_than_serial_ones() {
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
    let state = AppState::new(store.clone());
    // 300 guesses at one user, at once: at most the allowed 5 are checked.
    let (checked, refused) = parallel_guesses(&state, 300, |_| "sup".into(), None).await;
    assert!(checked <= 5, "{checked} guesses were checked");
    assert_eq!(checked + refused, 300);
    // Another replica on the same database sees the lock-out.
    let replica = AppState::new(store);
    let r = json(
        &replica,
        "POST",
        "/api/v1/session",
        None,
        &serde_json::json!({"username": "sup", "password": "correct horse battery"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    // 300 guesses at 300 user names from one address: at most that address's allowance.
    let from = "203.0.113.9:5000".parse().unwrap();
    let spray = |i| format!("user{i}");
    let (checked, refused) = parallel_guesses(&replica, 300, spray, Some(from)).await;
    let allowed = Settings::default().login_attempts_per_address as usize;
    assert!(checked <= allowed, "{checked} guesses were checked");
    assert_eq!(checked + refused, 300);
}

#[tokio::test]
async fn an_annotation_names_an_officer_of_the_bay_and_a_plausible_time() {
    let (_d, state) = state().await;
    let (_, agent) = state
        .store
        .add_agent("test", "agent-1", "bay-1")
        .await
        .unwrap();
    common::user(&state.store, "off1", Role::Officer, Some("bay-1")).await;
    common::user(&state.store, "off2", Role::Officer, Some("bay-2")).await;
    common::user(&state.store, "sup", Role::Supervisor, None).await;
    let report = common::report("r1", "bay-1-1", "bay-1", 0.9);
    json(&state, "POST", "/api/v1/reports", Some(&agent), &report).await;
    let post = |n: u32, officer: &str, at: chrono::DateTime<chrono::Utc>| {
        let body = serde_json::json!({
            "annotation_id": format!("00000000-0000-4000-8000-{n:012}"), "scan_id": "bay-1-1",
            "officer": officer, "recorded_at": at.to_rfc3339(), "seal": "intact",
        });
        let (state, agent) = (state.clone(), agent.clone());
        async move {
            let path = "/api/v1/scans/bay-1-1/annotations";
            json(&state, "POST", path, Some(&agent), &body).await
        }
    };
    let now = chrono::Utc::now();
    // A supervisor or another bay's officer cannot be named by this bay's agent.
    for (n, who) in [(1, "sup"), (2, "off2")] {
        let r = post(n, who, now).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{who}: {}",
            r.text
        );
        assert!(r.text.contains("not an officer of bay bay-1"), "{}", r.text);
    }
    // Times from the future or from long ago are refused.
    let r = post(3, "off1", now + chrono::Duration::hours(2)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(
        r.text.contains("later than the server's receipt"),
        "{}",
        r.text
    );
    let r = post(4, "off1", now - chrono::Duration::days(60)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    // After an outage of a few hours: accepted, at the time it was recorded.
    let r = post(5, "off1", now - chrono::Duration::hours(3)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // A photo taken at the physical examination, which is itself a decision, is kept.
    let (sup, _) = state.store.user_by_name("sup").await.unwrap().unwrap();
    let exam = baylens_server::store::Decision::PhysicalExamination;
    let decided = state.store.decide(&sup, 1, exam, Some("open it")).await;
    assert!(decided.unwrap().is_ok());
    let mut png = Vec::new();
    image::GrayImage::new(8, 4)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    use base64::Engine;
    let photo = base64::engine::general_purpose::STANDARD.encode(&png);
    let id = "00000000-0000-4000-8000-000000000006";
    let body = serde_json::json!({
        "annotation_id": id, "scan_id": "bay-1-1", "officer": "off1",
        "recorded_at": now.to_rfc3339(), "examination": "discrepancy",
        "note": "cartons of cigarettes behind the wall", "photo_base64": photo,
    });
    let path = "/api/v1/scans/bay-1-1/annotations";
    let r = json(&state, "POST", path, Some(&agent), &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let key = state
        .store
        .layer_key(1, &format!("photo-{id}"))
        .await
        .unwrap();
    assert!(key.is_some(), "the photo is on the case");
    // Delivered again: recorded once, answered 200 before anything else is judged.
    let r = json(&state, "POST", path, Some(&agent), &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn logins_and_logouts_are_audited_and_expired_sessions_purged() {
    let (_d, state) = state().await;
    common::user(&state.store, "sup", Role::Supervisor, None).await;
    // An API token that has already expired.
    state
        .store
        .new_api_token("test", "sup", 0)
        .await
        .unwrap()
        .unwrap();
    let creds = serde_json::json!({"username": "sup", "password": "correct horse battery"});
    let r = json(&state, "POST", "/api/v1/session", None, &creds).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let token = r.json["token"].as_str().unwrap().to_owned();
    let r = call(
        &state,
        "DELETE",
        "/api/v1/session",
        Some(&token),
        None,
        Body::empty(),
    )
    .await;
    assert!(r.status.is_success(), "{}", r.text);
    let audit = state.store.audit_entries(None, 100).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    for action in ["session.login", "session.logout"] {
        assert!(actions.contains(&action), "{action} missing: {actions:?}");
    }
    // The expired token went with the login; the fixture's session and the ended one too.
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE expires_at <= $1")
        .bind(chrono::Utc::now().timestamp_millis())
        .fetch_one(&state.store.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn admins_disable_users_and_reset_passwords_and_users_change_their_own() {
    let (_d, state) = state().await;
    let admin = common::user(&state.store, "adm", Role::Admin, None).await;
    let sup = common::user(&state.store, "sup", Role::Supervisor, None).await;
    let login = |password: &str| {
        let creds = serde_json::json!({"username": "sup", "password": password});
        let state = state.clone();
        async move {
            json(&state, "POST", "/api/v1/session", None, &creds)
                .await
                .status
        }
    };
    let put = |path: &'static str, token: String, body: serde_json::Value| {
        let state = state.clone();
        async move { json(&state, "PUT", path, Some(&token), &body).await }
    };
    // Disabled: the open session ends and signing in fails; enabled again, it works.
    let off = serde_json::json!({"disabled": true});
    let r = put("/api/v1/users/sup/disabled", admin.clone(), off).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let cases = call(
        &state,
        "GET",
        "/api/v1/cases",
        Some(&sup),
        None,
        Body::empty(),
    )
    .await;
    assert_eq!(cases.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        login("correct horse battery").await,
        StatusCode::UNAUTHORIZED
    );
    let on = serde_json::json!({"disabled": false});
    let r = put("/api/v1/users/sup/disabled", admin.clone(), on).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(login("correct horse battery").await, StatusCode::OK);
    let own = serde_json::json!({"disabled": true});
    let r = put("/api/v1/users/adm/disabled", admin.clone(), own).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);

    // Reset by an admin: the old password stops working.
    let reset = serde_json::json!({"password": "reset by the admin 1"});
    let r = put("/api/v1/users/sup/password", admin.clone(), reset).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        login("correct horse battery").await,
        StatusCode::UNAUTHORIZED
    );
    let creds = serde_json::json!({"username": "sup", "password": "reset by the admin 1"});
    let r = json(&state, "POST", "/api/v1/session", None, &creds).await;
    let token = r.json["token"].as_str().unwrap().to_owned();

    // The user's own change needs the current password.
    let wrong = serde_json::json!({"current": "guess", "new": "chosen by the user 2"});
    let r = put("/api/v1/session/password", token.clone(), wrong).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let right =
        serde_json::json!({"current": "reset by the admin 1", "new": "chosen by the user 2"});
    let r = put("/api/v1/session/password", token, right).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(login("chosen by the user 2").await, StatusCode::OK);
    let audit = state.store.audit_entries(None, 100).await.unwrap();
    for action in [
        "user.disable",
        "user.enable",
        "user.password.reset",
        "user.password.change",
    ] {
        assert!(
            audit.iter().any(|e| e.action == action),
            "{action} not audited"
        );
    }
}

#[tokio::test]
async fn the_audit_page_check_hashes_only_what_is_new_and_still_catches_edits() {
    use baylens_server::store::AuditVerdict;
    let (_d, state) = state().await;
    let store = &state.store;
    let append = |range: std::ops::Range<i32>| async move {
        for i in range {
            let subject = format!("n:{i}");
            let detail = serde_json::json!({});
            store
                .audit("test", "test.entry", &subject, &detail)
                .await
                .unwrap();
        }
    };
    append(0..20).await;
    // The first check walks the whole chain; the next ones only what was appended.
    let first = store.verify_audit_recent().await.unwrap();
    assert!(first.full && first.checked == 20, "{first:?}");
    append(20..23).await;
    let next = store.verify_audit_recent().await.unwrap();
    assert!(!next.full, "{next:?}");
    assert_eq!(
        next.checked, 4,
        "the last checked row and the three new ones"
    );
    assert!(matches!(
        next.verdict,
        AuditVerdict::Intact { rows: 23, .. }
    ));

    // A new row edited before anyone looked is caught...
    store
        .audit("test", "test.entry", "n:23", &serde_json::json!({}))
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET subject = 'n:forged' WHERE seq = 24")
        .execute(&store.pool)
        .await
        .unwrap();
    let edited = store.verify_audit_recent().await.unwrap();
    assert!(
        matches!(edited.verdict, AuditVerdict::Broken { seq: 24, .. }),
        "{edited:?}"
    );
    sqlx::query("UPDATE audit_log SET subject = 'n:23' WHERE seq = 24")
        .execute(&store.pool)
        .await
        .unwrap();
    assert!(matches!(
        store.verify_audit_recent().await.unwrap().verdict,
        AuditVerdict::Intact { rows: 24, .. }
    ));
    // ...and so is an edit of the row the check resumes from.
    sqlx::query("UPDATE audit_log SET detail = '{\"x\":1}' WHERE seq = 24")
        .execute(&store.pool)
        .await
        .unwrap();
    let resumed = store.verify_audit_recent().await.unwrap();
    assert!(
        matches!(resumed.verdict, AuditVerdict::Broken { seq: 24, .. }),
        "{resumed:?}"
    );
    // The full walk (CLI, API) sees it too.
    assert!(matches!(
        store.verify_audit().await.unwrap(),
        AuditVerdict::Broken { seq: 24, .. }
    ));
}

#[tokio::test]
async fn admins_list_and_revoke_tokens_one_by_one_and_scrapers_read_only_metrics() {
    let (_d, state) = state().await;
    let store = &state.store;
    let admin = common::user(store, "root", Role::Admin, None).await;
    let scraper_session = common::user(store, "prometheus", Role::Metrics, None).await;
    let scraper = store
        .new_api_token("test", "prometheus", 30)
        .await
        .unwrap()
        .unwrap();
    let get = |path: &'static str, token: String| {
        let state = state.clone();
        async move { call(&state, "GET", path, Some(&token), None, Body::empty()).await }
    };

    // The scraper's role reads /metrics and nothing else.
    assert_eq!(
        get("/metrics", scraper.clone()).await.status,
        StatusCode::OK
    );
    let cases = get("/api/v1/cases", scraper.clone()).await;
    assert_eq!(cases.status, StatusCode::FORBIDDEN, "{}", cases.text);
    assert!(cases.text.contains("metrics role"), "{}", cases.text);
    assert_eq!(
        get("/api/v1/tokens", scraper.clone()).await.status,
        StatusCode::FORBIDDEN
    );

    // An admin sees both of the scraper's tokens, by id, never the tokens themselves.
    let listed = get("/api/v1/tokens?user=prometheus", admin.clone()).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert!(!listed.text.contains(&scraper) && !listed.text.contains(&scraper_session));
    let tokens: Vec<serde_json::Value> = serde_json::from_str(&listed.text).unwrap();
    assert_eq!(tokens.len(), 2, "{tokens:?}");
    let id = baylens_server::auth::hash_token(&scraper)[..12].to_owned();
    let api = tokens.iter().find(|t| t["id"] == id.as_str()).unwrap();
    assert_eq!(api["kind"], "api");
    assert_eq!(api["username"], "prometheus");

    // Revoking one stops it at once and leaves the other; it is audited.
    let revoke = |id: String| {
        let (state, admin) = (state.clone(), admin.clone());
        async move {
            let path = format!("/api/v1/tokens/{id}");
            call(&state, "DELETE", &path, Some(&admin), None, Body::empty()).await
        }
    };
    assert_eq!(revoke(id.clone()).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        get("/metrics", scraper).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get("/metrics", scraper_session).await.status,
        StatusCode::OK
    );
    assert_eq!(revoke(id.clone()).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        revoke("not-an-id".into()).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let audit = store.audit_entries(None, 10).await.unwrap();
    let entry = audit.iter().find(|e| e.action == "token.revoke").unwrap();
    assert_eq!(entry.actor, "user:root");
    assert_eq!(entry.subject, "user:prometheus");
    assert_eq!(entry.detail["token_sha256_prefix"], id.as_str());
}
