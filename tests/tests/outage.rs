//! Outages between a bay and the server, through a fault-injecting TCP proxy: the server
//! refusing connections, connections that stall, answers cut off after the server has stored
//! the report (so the agent must resend and the server must not count it twice), and a server
//! restart. Every report arrives exactly once, with its images, when the link comes back.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use scanner_sim::Scenario;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, oneshot};

const PASS: u8 = 0;
/// Accept, then close at once (a server that is down behind a load balancer).
const REFUSE: u8 = 1;
/// Accept and never answer (a dead link).
const STALL: u8 = 2;
/// Forward the request, but cut the answer after a few bytes (lost acknowledgements).
const CUT: u8 = 3;

struct Proxy {
    url: String,
    mode: Arc<AtomicU8>,
    target: Arc<Mutex<SocketAddr>>,
    cut: Arc<AtomicU64>,
}

async fn proxy(target: SocketAddr) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mode = Arc::new(AtomicU8::new(PASS));
    let target = Arc::new(Mutex::new(target));
    let cut = Arc::new(AtomicU64::new(0));
    let (m, t, c) = (mode.clone(), target.clone(), cut.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let mode = m.load(Ordering::SeqCst);
            let target = *t.lock().await;
            let cut = c.clone();
            tokio::spawn(async move {
                match mode {
                    REFUSE => drop(client),
                    STALL => {
                        let mut sink = [0u8; 4096];
                        let _ = tokio::time::timeout(Duration::from_secs(30), async {
                            while client.read(&mut sink).await.is_ok_and(|n| n > 0) {}
                        })
                        .await;
                    }
                    _ => {
                        let Ok(mut server) = TcpStream::connect(target).await else {
                            return;
                        };
                        if mode == PASS {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            return;
                        }
                        // CUT: the request goes through in full; only 12 bytes of the answer
                        // come back ("HTTP/1.1 201"), then both sides are closed.
                        let (mut cr, mut cw) = client.split();
                        let (mut sr, mut sw) = server.split();
                        let upstream = async {
                            let _ = tokio::io::copy(&mut cr, &mut sw).await;
                        };
                        let downstream = async {
                            let mut head = [0u8; 12];
                            if sr.read_exact(&mut head).await.is_ok() {
                                let _ = cw.write_all(&head).await;
                                cut.fetch_add(1, Ordering::SeqCst);
                            }
                        };
                        tokio::select! {
                            () = upstream => {}
                            () = downstream => {}
                        }
                    }
                }
            });
        }
    });
    Proxy {
        url,
        mode,
        target,
        cut,
    }
}

async fn cases_with_images(server: &Server) -> (i64, i64) {
    let all = server.store.count_cases().await.unwrap();
    let with: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cases WHERE preview_key IS NOT NULL")
        .fetch_one(&server.store.pool)
        .await
        .unwrap();
    (all, with)
}

async fn wait_for(server: &Server, n: i64) -> (i64, i64) {
    let mut seen = (0, 0);
    for _ in 0..400 {
        seen = cases_with_images(server).await;
        if seen.1 >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen
}

async fn wait_taken(drop: &std::path::Path, n: usize) {
    for _ in 0..400 {
        let taken = std::fs::read_dir(drop.join("done"))
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
                })
                .count()
            })
            .unwrap_or(0);
        if taken >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the agent did not take {n} scans");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_made_during_outages_arrive_exactly_once() {
    let root = tempfile::tempdir().unwrap();
    let server_dir = root.path().join("server");
    let mut server = start_server(&server_dir).await;
    let token_file = register_agent(&server, root.path()).await;
    let target: SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    let proxy = proxy(target).await;

    let mut config = agent_config(root.path(), &proxy.url, &token_file);
    config.server.max_backoff_secs = 1;
    config.server.request_timeout_secs = 2;
    let drop = config.drop_dir.clone();
    std::fs::create_dir_all(&drop).unwrap();
    let (stop_agent, agent_stopped) = oneshot::channel::<()>();
    let agent = tokio::spawn(edge_agent::run(config, async {
        let _ = agent_stopped.await;
    }));

    // 1. The server is unreachable: scans are still taken and kept.
    proxy.mode.store(REFUSE, Ordering::SeqCst);
    for i in 1..=3 {
        drop_scan(
            &drop,
            if i == 2 {
                Scenario::Concealment
            } else {
                Scenario::Honest
            },
            i,
        );
    }
    wait_taken(&drop, 3).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        cases_with_images(&server).await,
        (0, 0),
        "nothing got through a refusing link"
    );

    // 2. The link stalls: requests time out and are retried.
    proxy.mode.store(STALL, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(cases_with_images(&server).await.0, 0);

    // 3. Answers are lost after the server stored the report: the agent must resend, and the
    //    server must keep one case per report.
    proxy.mode.store(CUT, Ordering::SeqCst);
    for _ in 0..300 {
        if proxy.cut.load(Ordering::SeqCst) >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(proxy.cut.load(Ordering::SeqCst) >= 1, "no answer was cut");
    assert!(
        server.store.count_cases().await.unwrap() >= 1,
        "the server stored reports whose answers were lost"
    );

    // 4. The link comes back: everything arrives, once.
    proxy.mode.store(PASS, Ordering::SeqCst);
    let seen = wait_for(&server, 3).await;
    assert_eq!(seen, (3, 3), "three cases, each with its image");

    // 5. The server restarts while scans keep coming.
    let _ = server.stop.take().map(|s| s.send(()));
    let _ = (&mut server.task).await;
    drop_scan(&drop, Scenario::Honest, 4);
    drop_scan(&drop, Scenario::Concealment, 5);
    wait_taken(&drop, 5).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let server = start_server(&server_dir).await;
    *proxy.target.lock().await = server.url.trim_start_matches("http://").parse().unwrap();
    let seen = wait_for(&server, 5).await;
    assert_eq!(
        seen,
        (5, 5),
        "five cases after the restart, each once, each with its image"
    );

    let _ = stop_agent.send(());
    agent.await.unwrap().unwrap();
    println!(
        "outage test: 5 scans through refusal, stall, {} cut answers and a server restart; 5 cases, no duplicates",
        proxy.cut.load(Ordering::SeqCst)
    );
}
