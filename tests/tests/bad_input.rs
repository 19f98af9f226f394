//! Hostile and broken scans dropped into a running agent: each is moved aside to `rejected/`
//! with all its files and a `.reason` that says exactly what is wrong; the agent neither panics
//! nor stops, and takes the next good scan.

mod support;

use std::path::Path;
use std::time::Duration;

use scanner_sim::Scenario;
use support::*;
use tokio::sync::oneshot;

fn png_header_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[16, 0, 0, 0, 0]);
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend_from_slice(&13u32.to_be_bytes());
    bytes.extend_from_slice(&ihdr);
    bytes.extend_from_slice(&crc32fast::hash(&ihdr).to_be_bytes());
    bytes
}

fn edit_sidecar(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, v.to_string()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_bad_scan_is_moved_aside_with_a_precise_reason() {
    let root = tempfile::tempdir().unwrap();
    let server = start_server(&root.path().join("server")).await;
    let (_, token) = server.store.add_agent("test", "a", "BAY01").await.unwrap();
    let token_file = root.path().join("agent.token");
    std::fs::write(&token_file, &token).unwrap();
    let config = agent_config(root.path(), &server.url, &token_file);
    let drop = config.drop_dir.clone();
    // Built in a staging folder and moved in whole, as a scanner would.
    let staging = root.path().join("staging");
    std::fs::create_dir_all(&drop).unwrap();
    std::fs::create_dir_all(&staging).unwrap();

    let name = |i: u64, part: &str| format!("BAY01-e2e-{i}.{part}");
    let mut expected: Vec<(u64, &str)> = Vec::new();
    let (w, h) = {
        let g = drop_scan(&staging, Scenario::Honest, 100);
        (g.scan.width, g.scan.height)
    };
    for f in std::fs::read_dir(&staging).unwrap().flatten() {
        std::fs::remove_file(f.path()).unwrap();
    }
    let mut case = |i: u64, reason: &'static str, mutate: &dyn Fn(&Path)| {
        drop_scan(&staging, Scenario::Honest, i);
        mutate(&staging);
        expected.push((i, reason));
    };
    case(1, "8-bit grayscale", &|d| {
        image::GrayImage::from_raw(w, h, vec![128; (w * h) as usize])
            .unwrap()
            .save(d.join(name(1, "high.png")))
            .unwrap();
    });
    case(2, "Rgb", &|d| {
        image::RgbImage::from_raw(w, h, vec![128; (w * h * 3) as usize])
            .unwrap()
            .save(d.join(name(2, "high.png")))
            .unwrap();
    });
    case(3, "BAY01-e2e-3.high.png", &|d| {
        let p = d.join(name(3, "high.png"));
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    });
    case(4, "limit", &|d| {
        std::fs::write(
            d.join(name(4, "high.png")),
            png_header_claiming(100_000, 100_000),
        )
        .unwrap();
    });
    case(5, "dual-energy images differ in size", &|d| {
        let small =
            image::ImageBuffer::<image::Luma<u16>, _>::from_raw(8, 4, vec![1000u16; 32]).unwrap();
        small.save(d.join(name(5, "low.png"))).unwrap();
    });
    case(6, "unknown field `operator_note`", &|d| {
        edit_sidecar(&d.join(name(6, "json")), |v| {
            v["operator_note"] = "hi".into()
        });
    });
    case(7, "bare .png/.tif/.tiff file name", &|d| {
        edit_sidecar(&d.join(name(7, "json")), |v| {
            v["images"][0]["file"] = "../../etc/passwd.png".into()
        });
    });
    case(8, "empty", &|d| {
        std::fs::write(d.join(name(8, "high.png")), b"").unwrap();
    });
    case(9, "malformed sidecar", &|d| {
        std::fs::write(
            d.join(name(9, "json")),
            b"{\"contract\": \"baylens.scan/1\", ",
        )
        .unwrap();
    });
    case(10, "scan is for bay BAY02", &|d| {
        edit_sidecar(&d.join(name(10, "json")), |v| v["bay"] = "BAY02".into());
    });
    case(11, "invalid", &|d| {
        edit_sidecar(&d.join(name(11, "json")), |v| {
            v["scan_id"] = "x".repeat(100_000).into()
        });
    });
    // Everything appears in the drop folder at once, images first, sidecars last.
    let mut entries: Vec<_> = std::fs::read_dir(&staging)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort_by_key(|p| p.extension().is_some_and(|e| e == "json"));
    for p in entries {
        std::fs::rename(&p, drop.join(p.file_name().unwrap())).unwrap();
    }

    let (stop, stopped) = oneshot::channel::<()>();
    let agent = tokio::spawn(edge_agent::run(config, async {
        let _ = stopped.await;
    }));
    let reason_of = |i: u64| drop.join("rejected").join(format!("BAY01-e2e-{i}.reason"));
    for _ in 0..300 {
        if expected.iter().all(|(i, _)| reason_of(*i).exists()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut failures = Vec::new();
    for (i, want) in &expected {
        let got =
            std::fs::read_to_string(reason_of(*i)).unwrap_or_else(|_| "<no reason file>".into());
        if !got.contains(want) {
            failures.push(format!("scan {i}: wanted {want:?} in {got:?}"));
        }
        // Nothing is deleted: the sidecar is kept beside its reason.
        if !drop.join("rejected").join(name(*i, "json")).exists() {
            failures.push(format!("scan {i}: sidecar not kept in rejected/"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(server.store.count_cases().await.unwrap(), 0);

    // The agent is alive and takes the next good scan.
    drop_scan(&drop, Scenario::Honest, 12);
    assert_eq!(wait_for_cases(&server.store, 1).await, 1);
    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();
    println!(
        "bad input: {} broken scans refused with precise reasons; the agent went on",
        expected.len()
    );
}
