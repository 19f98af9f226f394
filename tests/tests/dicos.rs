//! DICOS end to end: pydicom writes a concealment scan as a DICOS DX pair, it is dropped into
//! a running agent, and it becomes a case on the server with the model's findings; the case's
//! DICOS Threat Detection Report then downloads and references the scan.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use baylens_server::auth::Role;
use scanner_sim::Scenario;
use support::*;
use tokio::sync::oneshot;

/// pydicom (pinned in scripts/test-requirements.txt) writes the scan at `sidecar` as a DICOS
/// DX pair into `out`; the two files.
fn to_dicos(sidecar: &Path, out: &Path) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let run = std::process::Command::new(root.join(".tools/venv/bin/python"))
        .arg(root.join("edge-agent/tests/fixtures/dicos_dx_pydicom.py"))
        .arg(sidecar)
        .arg(out)
        .args(["--syntax", "rle"])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| PathBuf::from(f.as_str().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dicos_dx_scan_dropped_into_the_agent_becomes_a_case_with_findings() {
    let root = tempfile::tempdir().unwrap();
    let server = start_server(&root.path().join("server")).await;
    let token_file = register_agent(&server, root.path()).await;
    server
        .store
        .add_user("test", "sup", PASSWORD, Role::Supervisor, None)
        .await
        .unwrap();
    let config = agent_config(root.path(), &server.url, &token_file);
    let drop = config.drop_dir.clone();
    std::fs::create_dir_all(&drop).unwrap();

    // The scanner side: a concealment load written as DICOS by pydicom, outside the folder.
    let staged = root.path().join("scanner");
    let hidden = drop_scan(&staged, Scenario::Concealment, 1);
    let sidecar = staged.join(format!("{}.json", hidden.meta.scan_id));
    let files = to_dicos(&sidecar, &staged);

    let (stop_agent, agent_stopped) = oneshot::channel::<()>();
    let agent = tokio::spawn(edge_agent::run(config.clone(), async {
        let _ = agent_stopped.await;
    }));
    for f in &files {
        // As a scanner should: a hidden name, then a rename.
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = drop.join(format!(".{name}.part"));
        std::fs::copy(f, &tmp).unwrap();
        std::fs::rename(&tmp, drop.join(&name)).unwrap();
    }

    let client = reqwest::Client::new();
    let bearer = session_token(&client, &server.url, "sup").await;
    let mut cases = Vec::new();
    for _ in 0..600 {
        cases = get_json(&client, &format!("{}/api/v1/cases", server.url), &bearer)
            .await
            .as_array()
            .cloned()
            .unwrap_or_default();
        if cases.len() == 1 && cases[0]["has_image"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        cases.len(),
        1,
        "drop: {:?}; rejected: {:?}",
        files_in(drop.clone()),
        files_in(drop.join("rejected"))
    );
    let case = get_json(
        &client,
        &format!("{}/api/v1/cases/{}", server.url, cases[0]["id"]),
        &bearer,
    )
    .await;
    let scan_id = case["scan_id"].as_str().unwrap().to_owned();
    assert!(scan_id.starts_with("BAY01-DX-"), "{scan_id}");
    assert_eq!(
        case["container_code"],
        hidden.meta.container_code.as_ref().unwrap().as_str(),
        "the OOI ID"
    );
    let findings = case["report"]["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["kind"] == "concealed_object"),
        "{case:#}"
    );
    // The DICOS originals are kept with the scan's files in done/.
    let done = files_in(drop.join("done"));
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(done.contains(&name), "{name} in {done:?}");
    }
    assert!(done.contains(&format!("{scan_id}.json")), "{done:?}");

    // The case's threat report comes back as DICOS, for the same scan.
    let tdr = client
        .get(format!(
            "{}/api/v1/cases/{}/tdr",
            server.url, cases[0]["id"]
        ))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(tdr.status(), 200);
    let bytes = tdr.bytes().await.unwrap();
    assert_eq!(&bytes[128..132], b"DICM");

    let _ = stop_agent.send(());
    agent.await.unwrap().unwrap();
}
