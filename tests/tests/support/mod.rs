//! Helpers shared by the end-to-end tests: a server on a loopback port, agent configs and
//! simulated scans in a drop folder.

#![allow(dead_code)]

use baylens_protocol::{BayId, ScanId};
use baylens_server::AppState;
use baylens_server::store::Store;
use edge_agent::AgentConfig;
use scanner_sim::write::write_scan;
use scanner_sim::{Scenario, SimOptions, generate};
use std::path::{Path, PathBuf};
use tokio::sync::oneshot;

pub const PASSWORD: &str = "a-long-test-password";

pub struct Server {
    pub url: String,
    pub store: Store,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub async fn start_server(dir: &Path) -> Server {
    start_server_at(dir, "127.0.0.1:0").await
}

/// A server on `addr` (e.g. a port an agent was configured with before the server existed).
pub async fn start_server_at(dir: &Path, addr: &str) -> Server {
    start_server_with(dir, addr, None, None).await
}

/// A server on `addr`, over TLS when `tls` is given (its URL is then `https://localhost:…`),
/// publishing MQTT events when `mqtt` is given.
pub async fn start_server_with(
    dir: &Path,
    addr: &str,
    tls: Option<std::sync::Arc<baylens_tls::rustls::ServerConfig>>,
    mqtt: Option<baylens_mqtt::MqttConfig>,
) -> Server {
    let store = Store::open(dir).await.unwrap();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = match tls {
        Some(_) => format!("https://localhost:{port}"),
        None => format!("http://{}", listener.local_addr().unwrap()),
    };
    let secure_cookies = tls.is_some();
    let (stop, stopped) = oneshot::channel::<()>();
    // Plain HTTP on loopback, as in the demo: cookies without the Secure flag.
    let mut state = AppState::with_settings(
        store.clone(),
        baylens_server::Settings {
            secure_cookies,
            ..Default::default()
        },
    );
    state.mqtt =
        mqtt.map(|m| baylens_mqtt::Publisher::start(&m, "baylens-test-server", None).unwrap());
    let task = tokio::spawn(baylens_server::run(listener, tls, state, async {
        let _ = stopped.await;
    }));
    Server {
        url,
        store,
        stop: Some(stop),
        task,
    }
}

/// Registers agent `bay01-agent` of BAY01 on the server and writes its token to
/// `root/agent.token`; returns that path.
pub async fn register_agent(server: &Server, root: &Path) -> PathBuf {
    let (_, token) = server
        .store
        .add_agent("test", "bay01-agent", "BAY01")
        .await
        .unwrap();
    let token_file = root.join("agent.token");
    std::fs::write(&token_file, &token).unwrap();
    token_file
}

/// A server in `dir` with agent `bay01-agent` (token in `root/agent.token`) and officer `off1`
/// of BAY01 (password [`PASSWORD`]).
pub async fn start_server_with_officer(dir: &Path, root: &Path) -> (Server, PathBuf) {
    let server = start_server(dir).await;
    let token_file = register_agent(&server, root).await;
    server
        .store
        .add_user(
            "test",
            "off1",
            PASSWORD,
            baylens_server::auth::Role::Officer,
            Some("BAY01"),
        )
        .await
        .unwrap();
    (server, token_file)
}

pub fn agent_config(root: &Path, server_url: &str, token_file: &Path) -> AgentConfig {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/onnx");
    AgentConfig::from_toml(&format!(
        "bay = \"BAY01\"\ndrop_dir = {:?}\ndata_dir = {:?}\nmodels_dir = {:?}\npoll_interval_ms = 100\n[server]\nurl = {:?}\ntoken_file = {:?}\nmax_backoff_secs = 2\n",
        root.join("drop"),
        root.join("agent"),
        models,
        server_url,
        token_file,
    ))
    .unwrap()
}

pub async fn session_token(client: &reqwest::Client, url: &str, user: &str) -> String {
    let r: serde_json::Value = client
        .post(format!("{url}/api/v1/session"))
        .json(&serde_json::json!({ "username": user, "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    r["token"].as_str().unwrap().to_owned()
}

/// Waits (up to 30 s) until `url` answers at all (a server or page coming up); the answer.
pub async fn wait_until_answers(url: &str) -> reqwest::Response {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = client.get(url).send().await {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{url} never answered");
}

/// GET `url` with a bearer token; the answer as JSON.
pub async fn get_json(client: &reqwest::Client, url: &str, bearer: &str) -> serde_json::Value {
    client
        .get(url)
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub fn drop_scan(drop: &Path, scenario: Scenario, index: u64) -> scanner_sim::Generated {
    let g = sim_scan(scenario, index);
    write_scan(drop, &g.scan, &g.meta, false).unwrap();
    g
}

/// A simulated scan (and its declaration), not yet dropped.
pub fn sim_scan(scenario: Scenario, index: u64) -> scanner_sim::Generated {
    let id = ScanId::parse(&format!("BAY01-e2e-{index}")).unwrap();
    generate(
        SimOptions::small(scenario),
        4242,
        index,
        id,
        BayId::parse("BAY01").unwrap(),
        chrono::Utc::now(),
    )
}

pub fn files_in(dir: PathBuf) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A binary of the workspace (`name`, from package `package`) next to this test's executable,
/// built on demand when `cargo test` did not build it already.
pub fn workspace_binary(name: &str, package: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join(name);
    if !bin.exists() {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", package, "--bin", name])
            .status()
            .unwrap();
        assert!(status.success(), "building {name}");
    }
    bin
}

/// Waits (up to 30 s) until the server holds `n` cases; returns how many it holds then.
pub async fn wait_for_cases(store: &Store, n: i64) -> i64 {
    for _ in 0..300 {
        if store.count_cases().await.unwrap() == n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    store.count_cases().await.unwrap()
}

/// A free loopback port (bound and released; the race with other tests is harmless here).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts scanner-sim's simulated IP camera on `port`; setting the flag takes it down.
pub fn start_sim_camera(
    cam: &std::sync::Arc<scanner_sim::ipcam::IpCamera>,
    port: u16,
) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (cam, flag) = (cam.clone(), stop.clone());
    std::thread::spawn(move || scanner_sim::ipcam::serve_until(listener, cam, 8.0, &flag));
    stop
}

/// The `[camera]` section for a simulated camera on `port`, with the committed tiny OCR models.
pub fn sim_camera_config(port: u16) -> edge_agent::config::CameraConfig {
    edge_agent::config::CameraConfig {
        source: format!("http://127.0.0.1:{port}/stream.mjpg"),
        max_backoff_secs: 2,
        mirror: false,
        ocr: true,
        ocr_models_dir: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/onnx/ocr")),
        ocr_models: "tiny".into(),
        ocr_every_frames: 2,
        jpeg_quality: 80,
        max_fps: None,
    }
}

/// The `[tablet]` section on `port` for officer `off1`; returns it and the access code.
pub fn tablet_config(port: u16) -> (edge_agent::tablet::TabletConfig, String) {
    let (code, hash) = edge_agent::tablet::new_code();
    (
        edge_agent::tablet::TabletConfig {
            listen: format!("127.0.0.1:{port}").parse().unwrap(),
            officers: vec![edge_agent::tablet::Officer {
                username: "off1".into(),
                code_sha256: hash,
            }],
            session_hours: 1,
            idle_minutes: 15,
            tls_cert: None,
            tls_key: None,
        },
        code,
    )
}
