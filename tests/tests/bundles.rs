//! Signed case bundles between two administrations: two real `server` processes, each with its
//! own database. Administration A makes its key (`server keys generate`), B trusts it
//! (`server keys trust`); a case examined and seized at A travels to B as one signed file, is
//! checked offline (`server bundle verify`), imported read-only with its origin, and a bundle
//! altered on the way (an image, the manifest, an extra file) or signed by an unknown key is
//! refused with what changed named, and audited.

mod support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use baylens_server::bundle::{BundleSigner, CaseHeader, MEDIA_TYPE};
use support::*;

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `server --data-dir DATA ARGS…`, with the test password in `BAYLENS_TEST_PASSWORD`.
fn cli(data: &Path, args: &[&str]) -> Output {
    Command::new(workspace_binary("server", "baylens-server"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("BAYLENS_TEST_PASSWORD", PASSWORD)
        .env("RUST_LOG", "warn")
        .output()
        .expect("running server")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn add_user(data: &Path, name: &str, role: &str, bay: Option<&str>) {
    let mut args = vec!["user", "add", "--username", name, "--role", role];
    if let Some(bay) = bay {
        args.extend(["--bay", bay]);
    }
    args.extend(["--password-env", "BAYLENS_TEST_PASSWORD"]);
    ok(cli(data, &args));
}

async fn serve(data: &Path) -> (Running, String) {
    let port = free_port();
    let child = Command::new(workspace_binary("server", "baylens-server"))
        .arg("--data-dir")
        .arg(data)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--demo"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("starting a server");
    let url = format!("http://127.0.0.1:{port}");
    wait_until_answers(&format!("{url}/healthz")).await;
    (Running(child), url)
}

/// A small real PNG, as a bay's preview.
fn png() -> Vec<u8> {
    let img =
        image::GrayImage::from_fn(64, 32, |x, y| image::Luma([((x * 7 + y * 3) % 251) as u8]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// Replaces the first occurrence of `from` in `bytes` by `to` (same length: the tar stays valid).
fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern in the bundle");
    let mut out = bytes.to_vec();
    out[at..at + to.len()].copy_from_slice(to);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_bundle_travels_between_administrations_and_tampering_is_named() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("admin-a"), root.path().join("admin-b"));

    // A makes its key; B trusts the published public key under its own name for A.
    let public = ok(cli(
        &a,
        &["keys", "generate", "--issuer", "Customs Administration A"],
    ));
    let key_file = a.join("bundle-signing.key");
    let pub_file = a.join("bundle-signing.key.pub");
    assert!(public.contains("baylens.bundle-public-key/1"), "{public}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the secret key is the owner's only");
    }
    let again = cli(&a, &["keys", "generate", "--issuer", "Someone else"]);
    assert!(!again.status.success(), "a signing key is never replaced");
    ok(cli(
        &b,
        &[
            "keys",
            "trust",
            "--name",
            "Partner A",
            "--public-key",
            pub_file.to_str().unwrap(),
        ],
    ));
    assert!(ok(cli(&b, &["keys", "trusted"])).contains("Partner A"));

    add_user(&a, "sup-a", "supervisor", None);
    add_user(&a, "off-a", "officer", Some("BAY01"));
    add_user(&a, "agency-a", "agency", None);
    add_user(&b, "sup-b", "supervisor", None);
    add_user(&b, "off-b", "officer", Some("BAY01"));
    let token_file = root.path().join("agent.token");
    ok(cli(
        &a,
        &[
            "agent",
            "add",
            "--name",
            "bay01-agent",
            "--bay",
            "BAY01",
            "--token-file",
            token_file.to_str().unwrap(),
        ],
    ));
    let agent_token = std::fs::read_to_string(&token_file).unwrap();

    let (_server_a, url_a) = serve(&a).await;
    let (_server_b, url_b) = serve(&b).await;
    let client = reqwest::Client::new();

    // A bay of A reports a scan with its preview; a supervisor examines and seizes.
    let scan_id = "BAY01-20261205-000042";
    let report = serde_json::json!({
        "contract": "baylens.report/1", "report_id": "r-42", "scan_id": scan_id, "bay": "BAY01",
        "captured_at": chrono::Utc::now().to_rfc3339(), "analysed_at": chrono::Utc::now().to_rfc3339(),
        "container_code": "CSQU3054383", "width": 64, "height": 32,
        "model": {"name": "concealment-v1", "sha256": "ab", "max_probability": 0.9, "flagged_fraction": 0.01, "inference_ms": 20.0},
        "findings": [{"kind": "concealed_object", "score": 0.9, "region": {"x": 10, "y": 10, "width": 20, "height": 10}, "message": "dense object inside textiles"}],
        "risk": 0.9, "lane": "red"
    });
    let created: serde_json::Value = client
        .post(format!("{url_a}/api/v1/reports"))
        .bearer_auth(agent_token.trim())
        .json(&report)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let case_id = created["case_id"].as_i64().expect("case id");
    let preview = png();
    let put = client
        .put(format!("{url_a}/api/v1/scans/{scan_id}/preview"))
        .bearer_auth(agent_token.trim())
        .header("content-type", "image/png")
        .body(preview.clone())
        .send()
        .await
        .unwrap();
    assert!(
        put.status().is_success(),
        "preview upload: {}",
        put.status()
    );

    let sup_a = session_token(&client, &url_a, "sup-a").await;
    let post = |path: String, token: &str, body: serde_json::Value| {
        client
            .post(format!("{url_a}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let r = post(
        format!("/api/v1/cases/{case_id}/examinations"),
        &sup_a,
        serde_json::json!({"result": "discrepancy", "note": "240 cartons of cigarettes behind the textiles"}),
    )
    .await
    .unwrap();
    assert!(r.status().is_success(), "examination: {}", r.status());
    let r = post(
        format!("/api/v1/cases/{case_id}/decisions"),
        &sup_a,
        serde_json::json!({"decision": "seize", "note": "undeclared cigarettes"}),
    )
    .await
    .unwrap();
    assert!(r.status().is_success(), "decision: {}", r.status());

    // Who may take the bundle: not the bay's officer; the agency once the case is shared.
    let bundle_url = format!("{url_a}/api/v1/cases/{case_id}/bundle");
    let get = |token: String| client.get(&bundle_url).bearer_auth(token).send();
    let officer = session_token(&client, &url_a, "off-a").await;
    assert_eq!(get(officer).await.unwrap().status(), 403);
    let agency = session_token(&client, &url_a, "agency-a").await;
    assert_eq!(get(agency.clone()).await.unwrap().status(), 403);
    let r = post(
        format!("/api/v1/cases/{case_id}/shares"),
        &sup_a,
        serde_json::json!({"username": "agency-a"}),
    )
    .await
    .unwrap();
    assert!(r.status().is_success(), "share: {}", r.status());
    assert_eq!(get(agency).await.unwrap().status(), 200);

    let r = get(sup_a.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], MEDIA_TYPE);
    let bundle = r.bytes().await.unwrap().to_vec();
    let bundle_file = root.path().join("case.baylens-bundle.tar");
    std::fs::write(&bundle_file, &bundle).unwrap();

    // Offline check with the published key.
    let verify = |file: &Path| {
        cli(
            &b,
            &[
                "bundle",
                "verify",
                file.to_str().unwrap(),
                "--key",
                pub_file.to_str().unwrap(),
            ],
        )
    };
    let out = ok(verify(&bundle_file));
    assert!(out.contains("intact"), "{out}");
    for member in [
        "case.json",
        "report.json",
        "history.json",
        "examinations.json",
        "audit.json",
        "images/preview.png",
    ] {
        assert!(out.contains(member), "{member} missing from {out}");
    }

    let missing = verify(&root.path().join("missing.tar"));
    assert_eq!(
        missing.status.code(),
        Some(2),
        "an unreadable file is not a refusal"
    );

    // B imports it: read-only, marked with its origin, with the examination and the image.
    let sup_b = session_token(&client, &url_b, "sup-b").await;
    let import = |bytes: Vec<u8>, token: String| {
        client
            .post(format!("{url_b}/api/v1/bundles"))
            .bearer_auth(token)
            .header("content-type", MEDIA_TYPE)
            .body(bytes)
            .send()
    };
    let off_b = session_token(&client, &url_b, "off-b").await;
    assert_eq!(import(bundle.clone(), off_b).await.unwrap().status(), 403);
    let r = import(bundle.clone(), sup_b.clone()).await.unwrap();
    assert_eq!(r.status(), 201);
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(answer["origin"], "Partner A");
    assert_eq!(answer["origin_case_id"], case_id);
    let imported_id = answer["id"].as_i64().unwrap();
    let r = import(bundle.clone(), sup_b.clone()).await.unwrap();
    assert_eq!(r.status(), 200, "the same bundle again changes nothing");
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["id"],
        imported_id
    );

    let detail = get_json(
        &client,
        &format!("{url_b}/api/v1/imports/{imported_id}"),
        &sup_b,
    )
    .await;
    assert_eq!(detail["read_only"], true);
    assert_eq!(detail["origin"], "Partner A");
    assert_eq!(detail["manifest"]["issuer"], "Customs Administration A");
    assert_eq!(detail["case"]["case"]["status"], "seized");
    let history = detail["history"].as_array().unwrap();
    assert!(
        history
            .iter()
            .any(|e| e["kind"] == "examination" && e["value"] == "discrepancy"),
        "{history:?}"
    );
    assert!(
        history
            .iter()
            .any(|e| e["kind"] == "decision" && e["value"] == "seize"),
        "{history:?}"
    );
    let audit = detail["audit"].as_array().unwrap();
    assert!(
        audit.iter().any(|e| e["action"] == "case.decision"),
        "{audit:?}"
    );
    let image = client
        .get(format!(
            "{url_b}/api/v1/imports/{imported_id}/files/images/preview.png"
        ))
        .bearer_auth(&sup_b)
        .send()
        .await
        .unwrap();
    assert_eq!(image.headers()["content-type"], "image/png");
    assert_eq!(image.bytes().await.unwrap().to_vec(), preview);
    let list = get_json(&client, &format!("{url_b}/api/v1/imports"), &sup_b).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    // Imported cases are not in B's own queue, and nothing writes them.
    let cases = get_json(&client, &format!("{url_b}/api/v1/cases"), &sup_b).await;
    assert_eq!(cases.as_array().unwrap().len(), 0);

    // The pages: the case at A offers its bundle; B shows the import read-only with its origin.
    let page = |url: String, token: String| {
        let cookie = format!(
            "{}={token}",
            baylens_server::auth::session_cookie_name(false)
        );
        client.get(url).header("cookie", cookie).send()
    };
    let html = page(format!("{url_a}/cases/{case_id}"), sup_a.clone())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!("href=\"/api/v1/cases/{case_id}/bundle\"")),
        "{html}"
    );
    let html = page(format!("{url_b}/imports"), sup_b.clone())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!("href=\"/imports/{imported_id}\"")) && html.contains("Partner A"),
        "{html}"
    );
    let html = page(format!("{url_b}/imports/{imported_id}"), sup_b.clone())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Read-only. From <strong>Partner A</strong>"),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "src=\"/api/v1/imports/{imported_id}/files/images/preview.png\""
        )),
        "{html}"
    );
    assert!(
        html.contains("240 cartons of cigarettes"),
        "the history at the origin: {html}"
    );

    // Tampering on the way, each refused with what changed named.
    let refused = |bytes: Vec<u8>| {
        let token = sup_b.clone();
        let import = &import;
        async move {
            let r = import(bytes, token).await.unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }
    };
    // 1. An image: a byte of the PNG's pixel data.
    let idat = preview.windows(4).position(|w| w == b"IDAT").unwrap();
    let original = &preview[idat + 8..idat + 12];
    let mut altered_bytes = original.to_vec();
    altered_bytes[0] ^= 0x55;
    let altered = replace(&bundle, original, &altered_bytes);
    let (status, text) = refused(altered.clone()).await;
    assert_eq!(status, 422, "{text}");
    assert!(
        text.contains("images/preview.png") && text.contains("altered"),
        "{text}"
    );
    let altered_file = root.path().join("altered.tar");
    std::fs::write(&altered_file, &altered).unwrap();
    let out = verify(&altered_file);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("images/preview.png"));
    // 2. The manifest: the case's status rewritten.
    let (status, text) = refused(replace(
        &bundle,
        b"\"status\": \"seized\"",
        b"\"status\": \"opened\"",
    ))
    .await;
    assert_eq!(status, 422, "{text}");
    assert!(
        text.contains("manifest.json") && text.contains("signature"),
        "{text}"
    );
    // 3. An extra file appended, and one member dropped, in a bundle rebuilt around the
    //    genuine manifest and signature.
    let mut archive = tar::Archive::new(bundle.as_slice());
    let mut members = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        members.push((path, data));
    }
    let mut rebuilt = tar::Builder::new(Vec::new());
    for (path, data) in members.iter().filter(|(p, _)| p != "audit.json") {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        rebuilt
            .append_data(&mut header, path, data.as_slice())
            .unwrap();
    }
    let mut header = tar::Header::new_ustar();
    header.set_size(5);
    header.set_mode(0o644);
    rebuilt
        .append_data(&mut header, "images/extra.png", &b"extra"[..])
        .unwrap();
    let (status, text) = refused(rebuilt.into_inner().unwrap()).await;
    assert_eq!(status, 422, "{text}");
    assert!(
        text.contains("audit.json") && text.contains("removed"),
        "{text}"
    );
    assert!(
        text.contains("images/extra.png") && text.contains("added"),
        "{text}"
    );
    // 4. Signed by a key B does not trust.
    let stranger = BundleSigner::generate("Unknown administration").unwrap();
    let header = CaseHeader {
        id: 1,
        scan_id: "BAY09-1".into(),
        bay: "BAY09".into(),
        captured_at: chrono::Utc::now().to_rfc3339(),
        container_code: None,
        declaration_ref: None,
        lane: "green".into(),
        status: "released".into(),
    };
    let foreign = stranger
        .pack(
            header,
            &[(
                "case.json".into(),
                "application/json".into(),
                b"{}".to_vec(),
            )],
            "2026-12-05T10:00:00Z",
        )
        .unwrap();
    let (status, text) = refused(foreign).await;
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("not a key trusted here"), "{text}");
    // 5. Not a bundle at all, and the wrong media type.
    let (status, text) = refused(b"not a tar file".to_vec()).await;
    assert_eq!(status, 422, "{text}");
    let r = client
        .post(format!("{url_b}/api/v1/bundles"))
        .bearer_auth(&sup_b)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);

    // Both audit logs tell the story, and both chains are intact.
    let admin_b = {
        add_user(&b, "admin-b", "admin", None);
        session_token(&client, &url_b, "admin-b").await
    };
    let entries = get_json(
        &client,
        &format!("{url_b}/api/v1/audit?limit=200"),
        &admin_b,
    )
    .await;
    let actions: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"bundle.import"), "{actions:?}");
    assert!(actions.contains(&"key.trust"), "{actions:?}");
    assert!(
        actions.iter().filter(|a| **a == "bundle.refused").count() >= 5,
        "{actions:?}"
    );
    drop(_server_a);
    let a_log = ok(cli(&a, &["audit", "verify"]));
    assert!(a_log.contains("intact"), "{a_log}");
    let b_log = ok(cli(&b, &["audit", "verify"]));
    assert!(b_log.contains("intact"), "{b_log}");
}
