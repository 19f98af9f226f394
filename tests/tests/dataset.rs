//! Decisions become data (issue "feedback loop", item 2): cases decided on the server ask the
//! bay for their raw scans, the real agent uploads them, and the export (the `server` binary's
//! `dataset export`, and the UI's background job) is read back by `edge-agent calibrate
//! --cleared`: the scans are whole, names are pseudonyms, every file is in the manifest.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use baylens_server::auth::Role;
use scanner_sim::Scenario;
use sha2::{Digest, Sha256};
use support::*;
use tokio::sync::oneshot;

async fn post(
    client: &reqwest::Client,
    url: &str,
    bearer: &str,
    body: serde_json::Value,
) -> reqwest::Response {
    client
        .post(url)
        .bearer_auth(bearer)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Every file under `dir`, relative, `/`-separated.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decided_cases_become_a_dataset_that_calibration_reads() {
    let root = tempfile::tempdir().unwrap();
    let server_dir = root.path().join("server");
    let (mut server, token_file) = start_server_with_officer(&server_dir, root.path()).await;
    server
        .store
        .add_user("test", "sup", PASSWORD, Role::Supervisor, None)
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let sup = session_token(&client, &server.url, "sup").await;
    let agent_token = std::fs::read_to_string(&token_file).unwrap();

    // Four honest loads and one with goods hidden, each lodged in advance.
    let mut loads: Vec<_> = (0..4).map(|i| sim_scan(Scenario::Honest, 10 + i)).collect();
    loads.push(sim_scan(Scenario::Concealment, 14));
    // One declaration without a truck (a container that came by rail).
    loads[1].declaration.vehicle = None;
    for g in &loads {
        server
            .store
            .lodge_declaration("trader", &g.declaration)
            .await
            .unwrap();
    }
    // What pseudonyms must hide: every party, plate and reference.
    let private: Vec<String> = loads
        .iter()
        .flat_map(|g| {
            let d = &g.declaration;
            [
                Some(d.reference.clone()),
                Some(d.declarant.name.clone()),
                Some(d.declarant.id.clone()),
                d.vehicle.as_ref().map(|v| v.registration.clone()),
            ]
        })
        .flatten()
        .collect();

    let mut config = agent_config(root.path(), &server.url, &token_file);
    config.declaration_sync_secs = 1;
    let drop = config.drop_dir.clone();
    std::fs::create_dir_all(&drop).unwrap();
    let (stop_agent, agent_stopped) = oneshot::channel::<()>();
    let agent = tokio::spawn(edge_agent::run(config.clone(), async {
        let _ = agent_stopped.await;
    }));
    for g in &loads {
        scanner_sim::write::write_scan(&drop, &g.scan, &g.meta, false).unwrap();
    }
    assert_eq!(wait_for_cases(&server.store, 5).await, 5);

    // Supervisors decide: the honest loads are released, the hidden goods found and seized.
    let cases = get_json(&client, &format!("{}/api/v1/cases", server.url), &sup).await;
    let cases = cases.as_array().unwrap();
    let hidden_scan = loads[4].meta.scan_id.to_string();
    let mut with_findings = 0;
    for c in cases {
        let id = c["id"].as_i64().unwrap();
        let base = format!("{}/api/v1/cases/{id}", server.url);
        if c["findings_count"].as_i64().unwrap_or(0) > 0 {
            with_findings += 1;
        }
        let (result, decision) = if c["scan_id"] == hidden_scan.as_str() {
            ("discrepancy", "seize")
        } else {
            ("consistent", "release")
        };
        let r = post(
            &client,
            &format!("{base}/examinations"),
            &sup,
            serde_json::json!({"result": result, "note": "examined at the bay"}),
        )
        .await;
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        let r = post(
            &client,
            &format!("{base}/decisions"),
            &sup,
            serde_json::json!({"decision": decision, "note": "after examination"}),
        )
        .await;
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }

    // The first export (the UI's background job) finds no raw scans on the server yet: it asks
    // the bay for them and says so.
    let exports = format!("{}/api/v1/dataset-exports", server.url);
    let today = chrono::Utc::now().date_naive().to_string();
    let job = |body: serde_json::Value| {
        let (client, exports, sup) = (client.clone(), exports.clone(), sup.clone());
        async move {
            let r = post(&client, &exports, &sup, body).await;
            assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
            let id = r.json::<serde_json::Value>().await.unwrap()["id"].clone();
            for _ in 0..300 {
                let j = get_json(&client, &format!("{exports}/{id}"), &sup).await;
                if j["state"] != "running" {
                    return j;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("export {id} never finished");
        }
    };
    let first = job(serde_json::json!({"from": today, "to": today})).await;
    assert_eq!(first["state"], "done", "{first:#}");
    assert_eq!(first["summary"]["awaiting_raw"], 5, "{first:#}");
    assert_eq!(first["summary"]["raw_requested"], 5, "{first:#}");
    assert_eq!(first["summary"]["cleared"], 0, "{first:#}");

    // The agent answers within a few declaration syncs.
    let mut uploaded = 0;
    for _ in 0..300 {
        uploaded = server
            .store
            .dataset_cases(0, i64::MAX, None)
            .await
            .unwrap()
            .iter()
            .filter(|c| c.raw.is_some())
            .count();
        if uploaded == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(uploaded, 5, "the bay uploaded every raw scan asked for");
    let audit = server.store.audit_entries(None, 200).await.unwrap();
    assert_eq!(
        audit.iter().filter(|e| e.action == "evidence.raw").count(),
        5
    );

    // A raw scan is written once: another one for the same scan is refused, and so is one of
    // another scan's sidecar.
    let put_raw = |scan: String, tar: Vec<u8>| {
        let (client, url, token) = (client.clone(), server.url.clone(), agent_token.clone());
        async move {
            client
                .put(format!("{url}/api/v1/scans/{scan}/raw"))
                .bearer_auth(token)
                .header("content-type", "application/x-tar")
                .body(tar)
                .send()
                .await
                .unwrap()
        }
    };
    let done = drop.join("done");
    let other = loads[1].meta.scan_id.to_string();
    let tar_of = |scan: &str, sidecar_scan: &str| {
        let mut b = tar::Builder::new(Vec::new());
        let sidecar = std::fs::read(done.join(format!("{sidecar_scan}.json"))).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&sidecar).unwrap();
        let mut add = |name: &str, bytes: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, bytes).unwrap();
        };
        add(&format!("{scan}.json"), &sidecar);
        for i in v["images"].as_array().unwrap() {
            let f = i["file"].as_str().unwrap();
            add(f, &std::fs::read(done.join(f)).unwrap());
        }
        b.into_inner().unwrap()
    };
    let first_scan = loads[0].meta.scan_id.to_string();
    let r = put_raw(first_scan.clone(), tar_of(&first_scan, &other)).await;
    assert_eq!(r.status(), 422, "another scan's sidecar is refused");
    assert!(
        r.text().await.unwrap().contains("not"),
        "names the mismatch"
    );
    let r = put_raw(first_scan.clone(), tar_of(&first_scan, &first_scan)).await;
    assert_eq!(
        r.status(),
        204,
        "the same raw scan again is a harmless retry"
    );

    // The CLI export, read back by the commissioning command.
    let out = root.path().join("dataset");
    let server_bin = workspace_binary("server", "baylens-server");
    let run = std::process::Command::new(&server_bin)
        .args([
            "dataset", "export", "--from", &today, "--to", &today, "--out",
        ])
        .arg(&out)
        .env("BAYLENS_DATA_DIR", &server_dir)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&run.stdout).into_owned() + &String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{said}");
    assert!(said.contains("4 cleared scans"), "{said}");

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "baylens.dataset/1");
    assert_eq!(manifest["anonymised"], true);
    assert_eq!(manifest["summary"]["cleared"], 4);
    assert_eq!(manifest["summary"]["awaiting_raw"], 0);
    let listed: HashMap<String, String> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["sha256"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let files = tree(&out);
    for f in &files {
        let bytes = std::fs::read(out.join(f)).unwrap();
        if f == "manifest.json" || f == "SHA256SUMS" {
            continue;
        }
        assert_eq!(
            listed.get(f),
            Some(&hex::encode(Sha256::digest(&bytes))),
            "{f} is in the manifest with its sha256"
        );
        if f.ends_with(".json") {
            let text = String::from_utf8(bytes).unwrap();
            for secret in &private {
                assert!(!text.contains(secret.as_str()), "{f} holds {secret:?}");
            }
        }
    }
    assert_eq!(
        listed.len() + 2,
        files.len(),
        "the manifest lists every file"
    );
    let cleared_sidecars = files
        .iter()
        .filter(|f| {
            f.starts_with("cleared/") && f.matches('/').count() == 1 && f.ends_with(".json")
        })
        .count();
    assert_eq!(cleared_sidecars, 4);

    // The labelled cases: every case with findings (the hidden goods' at least), the seized
    // one's confirmed.
    assert!(with_findings > 0, "the concealment scan has findings");
    {
        let coco: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("labelled/annotations.json")).unwrap())
                .unwrap();
        let images = coco["images"].as_array().unwrap();
        assert_eq!(images.len(), with_findings);
        for image in images {
            let expected = if image["scan_id"] == hidden_scan.as_str() {
                "confirmed"
            } else {
                "refuted"
            };
            assert_eq!(image["outcome"], expected, "{image:#}");
            assert!(
                out.join("labelled")
                    .join(image["file_name"].as_str().unwrap())
                    .is_file()
            );
        }
        for a in coco["annotations"].as_array().unwrap() {
            assert_eq!(a["bbox"].as_array().unwrap().len(), 4);
        }
    }

    let calibrate = std::process::Command::new(workspace_binary("edge-agent", "edge-agent"))
        .args(["calibrate", "--cleared"])
        .arg(out.join("cleared"))
        .arg("--out")
        .arg(root.path().join("site.toml"))
        .env(
            "BAYLENS_MODELS_DIR",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/onnx"),
        )
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&calibrate.stdout).into_owned()
        + &String::from_utf8_lossy(&calibrate.stderr);
    assert!(calibrate.status.success(), "{said}");
    assert!(said.contains("4 cleared loads"), "{said}");
    assert!(root.path().join("site.toml").is_file());

    // The UI's job, now that the raw scans are in: the same dataset, as one tar to download.
    let second = job(serde_json::json!({"from": today, "to": today, "bay": "BAY01"})).await;
    assert_eq!(second["summary"]["cleared"], 4, "{second:#}");
    let tar = client
        .get(format!("{exports}/{}/download", second["id"]))
        .bearer_auth(&sup)
        .send()
        .await
        .unwrap();
    assert_eq!(tar.status(), 200);
    let bytes = tar.bytes().await.unwrap();
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        second["sha256"].as_str().unwrap()
    );
    let mut names: Vec<String> = tar::Archive::new(&bytes[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.contains(&"manifest.json".to_owned()));
    assert_eq!(
        names
            .iter()
            .filter(|n| n.starts_with("cleared/declarations/"))
            .count(),
        4
    );
    // Officers may not export.
    let officer = session_token(&client, &server.url, "off1").await;
    let r = post(
        &client,
        &exports,
        &officer,
        serde_json::json!({"from": today, "to": today}),
    )
    .await;
    assert_eq!(r.status(), 403);

    let _ = stop_agent.send(());
    let _ = agent.await;
    let _ = server.stop.take().map(|s| s.send(()));
}
