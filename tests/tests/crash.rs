//! Crash test: scans flow from the simulator into a real `edge-agent` process, which is killed
//! with SIGKILL at random moments and restarted. Afterwards every scan the agent took from the
//! drop folder is on the server exactly once, and the image the server holds is byte for byte
//! the one the agent stored.
//!
//! CI runs 5 kill cycles; `BAYLENS_CRASH_CYCLES=30 cargo test -p baylens-e2e --test crash --
//! --nocapture` runs a longer loop. The test prints its counts.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use baylens_protocol::{BayId, ScanId};
use rand::{Rng, SeedableRng};
use scanner_sim::write::write_scan;
use scanner_sim::{Scenario, SimOptions, generate};
use support::*;

fn start_agent(bin: &Path, config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(bin)
        .args(["run", "--config", config.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_scan_is_lost_or_duplicated_when_the_agent_is_killed() {
    let cycles: u32 = std::env::var("BAYLENS_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let root = tempfile::tempdir().unwrap();
    let mut server = start_server(&root.path().join("server")).await;
    let token_file = register_agent(&server, root.path()).await;
    let drop = root.path().join("drop");
    let agent_data = root.path().join("agent");
    std::fs::create_dir_all(&drop).unwrap();
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/onnx");
    let config = root.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "bay = \"BAY01\"\ndrop_dir = {drop:?}\ndata_dir = {agent_data:?}\nmodels_dir = {models:?}\npoll_interval_ms = 50\n[server]\nurl = {:?}\ntoken_file = {token_file:?}\nmax_backoff_secs = 1\n",
            server.url
        ),
    )
    .unwrap();
    let bin = workspace_binary("edge-agent", "edge-agent");
    let log = root.path().join("agent.log");

    // The scanner: a scan every 120 ms until told to stop.
    let stop_feed = Arc::new(AtomicBool::new(false));
    let fed = Arc::new(AtomicU64::new(0));
    let feeder = {
        let (drop, stop_feed, fed) = (drop.clone(), stop_feed.clone(), fed.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop_feed.load(Ordering::Relaxed) {
                let id = ScanId::parse(&format!("BAY01-crash-{i:05}")).unwrap();
                let scenario = [Scenario::Honest, Scenario::Concealment][i as usize % 2];
                let g = generate(
                    SimOptions::small(scenario),
                    99,
                    i,
                    id,
                    BayId::parse("BAY01").unwrap(),
                    chrono::Utc::now(),
                );
                write_scan(&drop, &g.scan, &g.meta, false).unwrap();
                i += 1;
                fed.store(i, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(120));
            }
        })
    };

    let started = std::time::Instant::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(6346);
    for _ in 0..cycles {
        let mut child = start_agent(&bin, &config, &log);
        let alive = rng.random_range(300..1500);
        tokio::time::sleep(Duration::from_millis(alive)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    stop_feed.store(true, Ordering::Relaxed);
    feeder.join().unwrap();
    let scans = fed.load(Ordering::Relaxed);

    // One last, undisturbed run drains the drop folder and the outbox.
    let kills_done = started.elapsed();
    let mut child = start_agent(&bin, &config, &log);
    let expected: BTreeSet<String> = (0..scans).map(|i| format!("BAY01-crash-{i:05}")).collect();
    let mut on_server = BTreeSet::new();
    for _ in 0..1200 {
        let cases = server.store.count_cases().await.unwrap();
        if cases as u64 >= scans {
            on_server = sqlx::query_scalar::<_, String>(
                "SELECT scan_id FROM cases WHERE preview_key IS NOT NULL",
            )
            .fetch_all(&server.store.pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
            if on_server.len() as u64 == scans {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    if std::env::var("BAYLENS_CRASH_LOG").is_ok() {
        println!("{log_text}");
    }
    assert_eq!(
        on_server, expected,
        "cases with images on the server; agent log:\n{log_text}"
    );
    assert_eq!(
        server.store.count_cases().await.unwrap() as u64,
        scans,
        "exactly once"
    );
    let rejected = std::fs::read_dir(drop.join("rejected"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(rejected, 0, "no scan was rejected; agent log:\n{log_text}");

    // The image the server holds is the one the agent stored.
    let mut checked = 0;
    for scan_id in &expected {
        let local =
            std::fs::read(agent_data.join("scans").join(scan_id).join("preview.png")).unwrap();
        let (case_id, _) = server.store.case_of_scan(scan_id).await.unwrap().unwrap();
        let (_, key) = server.store.case_preview(case_id).await.unwrap().unwrap();
        let key = object_store::path::Path::from(key.unwrap());
        let remote = server
            .store
            .images
            .get(&key)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(sha256(&local), sha256(&remote), "{scan_id}");
        checked += 1;
    }
    println!(
        "crash test: kill loop {kills_done:?}, drained after {:?}",
        started.elapsed()
    );
    println!(
        "crash test: {cycles} SIGKILL cycles survived, {scans} scans fed, {} cases on the server (each once), {checked} image checksums match",
        on_server.len()
    );
    let _ = server.stop.take().map(|s| s.send(()));
}
