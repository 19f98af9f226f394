//! A weak bay link, through a throttling TCP proxy: a model file that takes longer than the
//! request timeout to arrive at a trickle still arrives (timeouts go by phase: connect, idle
//! between bytes, and a floor of bytes per second), while a link that carries nothing at all is
//! given up on instead of hanging.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use baylens_protocol::release::{Terms, new_key, sign};
use edge_agent::uplink::Uplink;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A proxy to `target` that passes requests at full speed and answers at `rate` bytes per
/// second; with `rate` 0 it passes nothing back at all.
async fn throttle(target: SocketAddr, rate: u64) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(target).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                });
                let mut chunk = vec![0u8; 1024];
                loop {
                    if rate == 0 {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        break;
                    }
                    let Ok(n) = sr.read(&mut chunk).await else {
                        break;
                    };
                    if n == 0 || cw.write_all(&chunk[..n]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64)).await;
                }
                up.abort();
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_download_over_a_slow_link_arrives_and_a_dead_one_is_given_up() {
    let root = tempfile::tempdir().unwrap();
    let server = start_server(&root.path().join("server")).await;
    let token_file = register_agent(&server, root.path()).await;
    let token = std::fs::read_to_string(&token_file).unwrap();
    // 160 KiB at 40 KiB/s: about four seconds, twice the request timeout below.
    let file: Vec<u8> = (0..160 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let (secret, _) = new_key([21; 32]);
    let terms = Terms {
        serial: 1,
        expires_at: None,
    };
    let release = sign("xray-concealment", &file, &terms, &secret).unwrap();
    server
        .store
        .publish_model("owner", &release, file.clone())
        .await
        .unwrap();
    let target: SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    let timeout = Duration::from_secs(2);

    let slow = Uplink::new(&throttle(target, 40 * 1024).await, token.clone(), timeout).unwrap();
    let got = slow.model_file("xray-concealment", &release).await;
    let whole = got.as_ref().is_ok_and(|g| *g == file);
    assert!(
        whole,
        "the slow download arrived whole: {:?}",
        got.map(|g| g.len())
    );

    let dead = Uplink::new(&throttle(target, 0).await, token, timeout).unwrap();
    let gave_up = tokio::time::timeout(
        Duration::from_secs(30),
        dead.model_release("xray-concealment"),
    )
    .await
    .expect("a dead link is given up, not waited on for ever");
    assert!(gave_up.is_err(), "{gave_up:?}");
}
