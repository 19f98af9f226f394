//! Server crash test: agents keep posting reports while the `server` process is killed with
//! SIGKILL and restarted. Every report the server answered with 2xx is in the database
//! afterwards, on SQLite and (when `BAYLENS_TEST_POSTGRES_URL` is set) on PostgreSQL.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::*;

fn serve(bin: &Path, args: &[String], port: u16, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(bin)
        .args(args)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn report(n: u64) -> serde_json::Value {
    let now = chrono::Utc::now().to_rfc3339();
    serde_json::json!({
        "contract": "baylens.report/1", "report_id": format!("crash-{n}"), "scan_id": format!("BAY01-srv-{n}"),
        "bay": "BAY01", "captured_at": now, "analysed_at": now, "container_code": "CSQU3054383",
        "width": 416, "height": 208,
        "model": {"name": "concealment-v1", "sha256": "ab", "max_probability": 0.5, "flagged_fraction": 0.0, "inference_ms": 20.0},
        "findings": [], "risk": 0.1, "lane": "green"
    })
}

async fn crash_loop(backend: &str) {
    let root = tempfile::tempdir().unwrap();
    let bin = workspace_binary("server", "baylens-server");
    let mut args = vec![
        "--data-dir".to_owned(),
        root.path().join("data").to_string_lossy().into_owned(),
    ];
    if backend == "postgres" {
        let url = std::env::var("BAYLENS_TEST_POSTGRES_URL").unwrap();
        let schema = format!("t_crash_{}", std::process::id());
        let status = Command::new("psql")
            .args([
                &url,
                "-q",
                "-c",
                &format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"),
            ])
            .env("PGOPTIONS", "-c client_min_messages=warning")
            .status()
            .expect("psql is installed beside PostgreSQL");
        assert!(status.success());
        let sep = if url.contains('?') { '&' } else { '?' };
        args.extend([
            "--database-url".to_owned(),
            format!("{url}{sep}options=-c%20search_path%3D{schema}"),
        ]);
    }
    let token_file = root.path().join("agent.token");
    let out = Command::new(&bin)
        .args(&args)
        .args([
            "agent",
            "add",
            "--name",
            "a1",
            "--bay",
            "BAY01",
            "--token-file",
            token_file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = std::fs::read_to_string(&token_file).unwrap();
    let log = root.path().join("server.log");

    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let cycles = 3;
    for _ in 0..cycles {
        let port = free_port();
        let mut child = serve(&bin, &args, port, &log);
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        for _ in 0..100 {
            if client.get(format!("{url}/healthz")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Four agents post as fast as the server answers, then the server is killed.
        let mut posters = Vec::new();
        for _ in 0..4 {
            let (client, url, token, acked, next) = (
                client.clone(),
                url.clone(),
                token.clone(),
                acked.clone(),
                next.clone(),
            );
            posters.push(tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    match client
                        .post(format!("{url}/api/v1/reports"))
                        .bearer_auth(&token)
                        .json(&report(n))
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => {
                            acked.lock().unwrap().insert(format!("crash-{n}"));
                        }
                        Ok(r) => panic!("unexpected answer {}", r.status()),
                        Err(_) => return, // the server is gone
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for p in posters {
            p.await.unwrap();
        }
    }

    // Restart once more and count what survived.
    let port = free_port();
    let mut child = serve(&bin, &args, port, &log);
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client
            .get(format!("{url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 10,
        "{backend}: too few reports acknowledged to mean anything: {}",
        acked.len()
    );
    // Re-sending an acknowledged report must find it: 200 "duplicate", never 201.
    let mut missing = Vec::new();
    for id in &acked {
        let n: u64 = id.trim_start_matches("crash-").parse().unwrap();
        let r = client
            .post(format!("{url}/api/v1/reports"))
            .bearer_auth(&token)
            .json(&report(n))
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = r.json().await.unwrap();
        if body["duplicate"] != true {
            missing.push(id.clone());
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        missing.is_empty(),
        "{backend}: acknowledged but lost after SIGKILL: {missing:?}"
    );
    println!(
        "server crash test ({backend}): {cycles} SIGKILLs during ingest, {} reports acknowledged, all {} found after restart",
        acked.len(),
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_reports_survive_a_server_sigkill() {
    crash_loop("sqlite").await;
    if std::env::var("BAYLENS_TEST_POSTGRES_URL").is_ok_and(|v| !v.is_empty()) {
        crash_loop("postgres").await;
    } else {
        eprintln!("BAYLENS_TEST_POSTGRES_URL is not set: PostgreSQL crash loop skipped");
    }
}
