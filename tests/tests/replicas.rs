//! Scale-out: two `server` processes on one PostgreSQL and one S3-compatible store (moto's
//! server, PyPI, pinned in `scripts/test-requirements.txt`), as behind a load balancer. Agents
//! report through either; a supervisor on the other replica sees the case arrive live, opens
//! its image (written to S3 by the first) and decides; the login limit holds across both.
//! Needs `BAYLENS_TEST_POSTGRES_URL` (`.ci/run` sets it); skipped without.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use scanner_sim::Scenario;
use sqlx::Connection;
use support::*;
use tokio::sync::oneshot;

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// moto's S3 server on a free port, with bucket `baylens` made; returns it and its URL.
async fn start_s3(root: &Path) -> (Running, String) {
    let moto = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/moto_server");
    assert!(
        moto.exists(),
        "{} is missing: ./baylens test installs it (scripts/test-requirements.txt)",
        moto.display()
    );
    let port = free_port();
    let child = Command::new(moto)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting moto_server");
    let url = format!("http://127.0.0.1:{port}");
    wait_until_answers(&url).await;
    let made = reqwest::Client::new()
        .put(format!("{url}/baylens"))
        .send()
        .await
        .unwrap();
    assert!(
        made.status().is_success(),
        "creating the bucket: {}",
        made.status()
    );
    (Running(child), url)
}

/// A replica: the real `server` binary on PostgreSQL `db` with images in S3 at `s3`.
async fn start_replica(root: &Path, name: &str, db: &str, s3: &str) -> (Running, String) {
    let port = free_port();
    let data = root.join(name);
    let child = Command::new(workspace_binary("server", "baylens-server"))
        .arg("--data-dir")
        .arg(&data)
        .args(["--database-url", db, "--images-url", "s3://baylens/scans"])
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--demo"])
        .env("AWS_ENDPOINT", s3)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("starting a server replica");
    let url = format!("http://127.0.0.1:{port}");
    wait_until_answers(&format!("{url}/healthz")).await;
    (Running(child), url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_cases_images_live_events_and_login_limits() {
    let Ok(pg) = std::env::var("BAYLENS_TEST_POSTGRES_URL") else {
        eprintln!("BAYLENS_TEST_POSTGRES_URL is not set: the two-replica test needs PostgreSQL");
        return;
    };
    let root = tempfile::tempdir().unwrap();
    // A schema of its own on the shared PostgreSQL, set up (migrations, users, agents) once.
    sqlx::any::install_default_drivers();
    let schema = format!("t_{}", &baylens_server::auth::new_token("")[..16]);
    let mut conn = sqlx::AnyConnection::connect(&pg).await.unwrap();
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let sep = if pg.contains('?') { '&' } else { '?' };
    let db = format!("{pg}{sep}options=-c%20search_path%3D{schema}");
    let store = baylens_server::store::Store::open_url(&db, &root.path().join("setup"))
        .await
        .unwrap();
    let (_, token_a) = store
        .add_agent("test", "bay01-agent", "BAY01")
        .await
        .unwrap();
    let (_, token_b) = store
        .add_agent("test", "bay02-agent", "BAY02")
        .await
        .unwrap();
    store
        .add_user(
            "test",
            "sup",
            PASSWORD,
            baylens_server::auth::Role::Supervisor,
            None,
        )
        .await
        .unwrap();

    let (_s3, s3) = start_s3(root.path()).await;
    let (_a, url_a) = start_replica(root.path(), "replica-a", &db, &s3).await;
    let (_b, url_b) = start_replica(root.path(), "replica-b", &db, &s3).await;

    // The supervisor works on replica B and watches its live queue.
    let client = reqwest::Client::new();
    let sup = session_token(&client, &url_b, "sup").await;
    let mut live = client
        .get(format!("{url_b}/api/v1/events"))
        .bearer_auth(&sup)
        .send()
        .await
        .unwrap()
        .bytes_stream();

    // Bay 1 reports through replica A, bay 2 through replica B.
    let mut agents = Vec::new();
    for (bay, url, token, index) in [
        ("BAY01", &url_a, &token_a, 1),
        ("BAY02", &url_b, &token_b, 2),
    ] {
        let dir = root.path().join(bay);
        std::fs::create_dir_all(&dir).unwrap();
        let token_file = dir.join("agent.token");
        std::fs::write(&token_file, token).unwrap();
        let mut config = agent_config(&dir, url, &token_file);
        config.bay = baylens_protocol::BayId::parse(bay).unwrap();
        std::fs::create_dir_all(&config.drop_dir).unwrap();
        let g = sim_scan(Scenario::Concealment, index);
        let id = baylens_protocol::ScanId::parse(&format!("{bay}-e2e-{index}")).unwrap();
        let mut meta = g.meta.clone();
        meta.scan_id = id;
        meta.bay = config.bay.clone();
        scanner_sim::write::write_scan(&config.drop_dir, &g.scan, &meta, false).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(edge_agent::run(config, async {
            let _ = stopped.await;
        }));
        agents.push((stop, task));
    }

    // Both cases reach B's live queue, the one taken by A through PostgreSQL.
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !(text.contains("\"bay\":\"BAY01\"") && text.contains("\"bay\":\"BAY02\"")) {
        let chunk = tokio::time::timeout_at(deadline, live.next())
            .await
            .unwrap_or_else(|_| panic!("live events on B so far: {text}"))
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let cases = get_json(&client, &format!("{url_b}/api/v1/cases?bay=BAY01"), &sup).await;
    let id = cases[0]["id"].as_i64().unwrap();

    // Its image, uploaded by the agent to A, is in S3 and opens on B.
    let mut preview = None;
    for _ in 0..300 {
        let r = client
            .get(format!("{url_b}/api/v1/cases/{id}/preview"))
            .bearer_auth(&sup)
            .send()
            .await
            .unwrap();
        if r.status().is_success() {
            preview = Some(r.bytes().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let preview = preview.expect("the preview reached S3 through A and opens on B");
    image::load_from_memory(&preview).expect("a real image");
    let listing = client
        .get(format!("{s3}/baylens?list-type=2&prefix=scans/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(listing.contains("<Key>scans/"), "nothing in S3: {listing}");

    // B decides; A sees the decision.
    let decided = client
        .post(format!("{url_b}/api/v1/cases/{id}/decisions"))
        .bearer_auth(&sup)
        .json(&serde_json::json!({"decision": "hold", "note": "seal number differs"}))
        .send()
        .await
        .unwrap();
    assert!(
        decided.status().is_success(),
        "{}",
        decided.text().await.unwrap()
    );
    let on_a = session_token(&client, &url_a, "sup").await;
    let case = get_json(&client, &format!("{url_a}/api/v1/cases/{id}"), &on_a).await;
    assert_eq!(case["status"], "held", "{case}");

    // Guessing a password on both replicas gets no more tries than on one.
    let login = |url: String, password: &'static str| {
        let client = client.clone();
        async move {
            client
                .post(format!("{url}/api/v1/session"))
                .json(&serde_json::json!({"username": "sup", "password": password}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let mut answers_seen = Vec::new();
    for i in 0..6 {
        let url = if i % 2 == 0 { &url_a } else { &url_b };
        answers_seen.push(login(url.clone(), "wrong password!").await);
    }
    assert_eq!(
        answers_seen,
        [401, 401, 401, 401, 401, 429],
        "{answers_seen:?}"
    );
    assert_eq!(login(url_a.clone(), PASSWORD).await, 429, "locked on A too");

    for (stop, task) in agents {
        let _ = stop.send(());
        task.await.unwrap().unwrap();
    }
}
