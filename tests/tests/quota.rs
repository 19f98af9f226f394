//! The agent's store quota: while the server is away and the store is full, new scans wait in
//! the drop folder (not rejected, not deleted); once the server has the stored ones, their
//! files are pruned to make room and the waiting scans go through. Nothing is lost.

mod support;

use std::time::Duration;

use scanner_sim::Scenario;
use support::*;
use tokio::sync::oneshot;

fn count(dir: &std::path::Path, suffix: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_makes_scans_wait_and_loses_none() {
    let root = tempfile::tempdir().unwrap();
    // The server's address is reserved now; the server itself starts later.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let token_file = root.path().join("agent.token");
    // Register the agent in the server's store before the server runs.
    let server_dir = root.path().join("server");
    let store = baylens_server::store::Store::open(&server_dir)
        .await
        .unwrap();
    let (_, token) = store
        .add_agent("test", "bay01-agent", "BAY01")
        .await
        .unwrap();
    std::fs::write(&token_file, &token).unwrap();

    let mut config = agent_config(root.path(), &url, &token_file);
    config.store_quota_mb = 1;
    config.min_free_disk_mb = 0;
    config.server.max_backoff_secs = 1;
    let drop = config.drop_dir.clone();
    std::fs::create_dir_all(&drop).unwrap();
    let (stop_agent, agent_stopped) = oneshot::channel::<()>();
    let agent = tokio::spawn(edge_agent::run(config, async {
        let _ = agent_stopped.await;
    }));

    let total = 8;
    for i in 1..=total {
        drop_scan(
            &drop,
            if i % 3 == 0 {
                Scenario::Concealment
            } else {
                Scenario::Honest
            },
            i,
        );
    }
    // The agent takes what fits in 1 MiB and stops there: wait until the count holds still.
    let (mut taken, mut still) = (0, 0);
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = count(&drop.join("done"), ".json");
        still = if now == taken && now > 0 {
            still + 1
        } else {
            0
        };
        taken = now;
        if still >= 20 {
            break;
        }
    }
    assert!(
        taken >= 1 && taken < total as usize,
        "took {taken} of {total} into a 1 MiB store"
    );
    assert_eq!(
        count(&drop, ".json"),
        total as usize - taken,
        "the rest wait in the drop folder"
    );
    assert_eq!(
        count(&drop.join("rejected"), ".json"),
        0,
        "nothing rejected for lack of room"
    );

    // The server comes; delivered scans are pruned, the waiting ones go through.
    let server = start_server_at(&server_dir, &format!("127.0.0.1:{port}")).await;
    let mut cases = 0;
    for _ in 0..600 {
        cases = server.store.count_cases().await.unwrap();
        if cases == total as i64 && count(&drop, ".json") == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(cases, total as i64, "every scan reached the server");
    assert_eq!(count(&drop.join("done"), ".json"), total as usize);
    let _ = stop_agent.send(());
    agent.await.unwrap().unwrap();
    println!(
        "quota test: {taken} of {total} scans fit before the server came; all {total} arrived"
    );
}
