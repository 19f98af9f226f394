//! The scanners' HTTP push API over real HTTP: a scan is answered 202 only once its files sit
//! complete in the drop folder; every bad request gets its precise status and leaves nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use baylens_protocol::{BayId, ScanId};
use edge_agent::push::{PushState, new_token, serve};
use futures_util::StreamExt;
use reqwest::multipart::{Form, Part};
use scanner_sim::write::write_scan;
use scanner_sim::{Scenario, SimOptions, generate};

struct Api {
    url: String,
    token: String,
    drop: PathBuf,
    full: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

async fn start(max_image_bytes: u64) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let drop = dir.path().join("drop");
    std::fs::create_dir_all(&drop).unwrap();
    let (token, hash) = new_token();
    let full = Arc::new(AtomicBool::new(false));
    let flag = full.clone();
    let state = PushState {
        drop_dir: drop.clone(),
        bay: BayId::parse("BAY01").unwrap(),
        max_image_bytes,
        token_hashes: Arc::new(vec![hash]),
        upload_timeout: Duration::from_secs(30),
        full: Arc::new(move || {
            let full = flag.load(Ordering::SeqCst);
            Box::pin(async move { full.then(|| "store quota reached".to_owned()) })
        }),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, state, std::future::pending()));
    Api {
        url,
        token,
        drop,
        full,
        _dir: dir,
    }
}

/// A simulated scan on disk: (sidecar bytes, [(file name, bytes)]).
fn scan(dir: &Path, index: u64) -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
    let g = generate(
        SimOptions::small(Scenario::Honest),
        81,
        index,
        ScanId::parse(&format!("BAY01-push-{index}")).unwrap(),
        BayId::parse("BAY01").unwrap(),
        chrono::Utc::now(),
    );
    let files = write_scan(dir, &g.scan, &g.meta, false).unwrap();
    let sidecar = std::fs::read(&files.sidecar).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&sidecar).unwrap();
    let images = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let name = i["file"].as_str().unwrap().to_owned();
            let bytes = std::fs::read(dir.join(&name)).unwrap();
            (name, bytes)
        })
        .collect();
    (sidecar, images)
}

fn form(sidecar: &[u8], images: &[(String, Vec<u8>)]) -> Form {
    let mut form = Form::new().part(
        "sidecar",
        Part::bytes(sidecar.to_vec()).file_name("sidecar.json"),
    );
    for (name, bytes) in images {
        form = form.part(
            name.clone(),
            Part::bytes(bytes.clone()).file_name(name.clone()),
        );
    }
    form
}

async fn push(api: &Api, token: Option<&str>, form: Form) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/api/v1/scans", api.url))
        .multipart(form);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

fn drop_files(api: &Api) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(&api.drop)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_pushed_scan_is_answered_202_only_once_it_is_complete_in_the_drop_folder() {
    let api = start(64 * 1024 * 1024).await;
    let src = tempfile::tempdir().unwrap();
    let (sidecar, images) = scan(src.path(), 0);
    let (status, body) = push(&api, Some(&api.token), form(&sidecar, &images)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["scan_id"], "BAY01-push-0");
    assert_eq!(
        drop_files(&api),
        [
            "BAY01-push-0.high.png",
            "BAY01-push-0.json",
            "BAY01-push-0.low.png"
        ]
    );
    // Byte for byte what the scanner sent.
    assert_eq!(
        std::fs::read(api.drop.join("BAY01-push-0.json")).unwrap(),
        sidecar
    );
    assert_eq!(
        std::fs::read(api.drop.join(&images[0].0)).unwrap(),
        images[0].1
    );
    // Sent again before the agent took it: a conflict, nothing overwritten.
    let (status, body) = push(&api, Some(&api.token), form(&sidecar, &images)).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("already waiting"));
}

#[tokio::test]
async fn bad_pushes_get_their_own_status_and_leave_nothing_behind() {
    let api = start(64 * 1024 * 1024).await;
    let src = tempfile::tempdir().unwrap();
    let (sidecar, images) = scan(src.path(), 1);

    let (status, _) = push(&api, None, form(&sidecar, &images)).await;
    assert_eq!(status, 401);
    let (status, _) = push(&api, Some("bls_wrong"), form(&sidecar, &images)).await;
    assert_eq!(status, 401);

    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/scans", api.url))
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .body(sidecar.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);

    // An image the sidecar names is missing; a part it does not name; a path in a file name.
    let (status, body) = push(&api, Some(&api.token), form(&sidecar, &images[..1])).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no part carried it"),
        "{body}"
    );
    let mut extra = images.clone();
    extra.push(("other.png".into(), images[0].1.clone()));
    let (status, body) = push(&api, Some(&api.token), form(&sidecar, &extra)).await;
    assert_eq!(status, 400, "{body}");
    let evil = Form::new()
        .part("sidecar", Part::bytes(sidecar.clone()))
        .part("x", Part::bytes(vec![1, 2, 3]).file_name("../../etc/x.png"));
    let (status, body) = push(&api, Some(&api.token), evil).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("bare"), "{body}");

    // An 8-bit image where 16-bit is required.
    let mut eight = images.clone();
    let img = image::load_from_memory(&images[0].1).unwrap().into_luma8();
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    eight[0].1 = png;
    let (status, body) = push(&api, Some(&api.token), form(&sidecar, &eight)).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"].as_str().unwrap().contains("16"), "{body}");

    // A scan id that is not this bay's.
    let mut foreign: serde_json::Value = serde_json::from_slice(&sidecar).unwrap();
    foreign["scan_id"] = format!("X{}", foreign["scan_id"].as_str().unwrap()).into();
    let foreign = serde_json::to_vec(&foreign).unwrap();
    let (status, body) = push(&api, Some(&api.token), form(&foreign, &images)).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("must start with"),
        "{body}"
    );

    // A malformed sidecar.
    let (status, body) = push(&api, Some(&api.token), form(b"{\"contract\": 1", &images)).await;
    assert_eq!(status, 422, "{body}");

    // The store is full: refused with a clear reason, nothing taken.
    api.full.store(true, Ordering::SeqCst);
    let (status, body) = push(&api, Some(&api.token), form(&sidecar, &images)).await;
    assert_eq!(status, 507, "{body}");
    assert!(body["error"].as_str().unwrap().contains("quota"), "{body}");
    assert!(drop_files(&api).is_empty(), "{:?}", drop_files(&api));
}

#[tokio::test]
async fn an_image_over_the_limit_is_413() {
    let api = start(10_000).await;
    let src = tempfile::tempdir().unwrap();
    let (sidecar, images) = scan(src.path(), 2);
    let (status, body) = push(&api, Some(&api.token), form(&sidecar, &images)).await;
    assert_eq!(status, 413, "{body}");
    assert!(drop_files(&api).is_empty());
}

#[tokio::test]
async fn a_scanner_that_stalls_mid_upload_is_cut_off_with_408_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let drop = dir.path().join("drop");
    std::fs::create_dir_all(&drop).unwrap();
    let (token, hash) = new_token();
    let state = PushState {
        drop_dir: drop.clone(),
        bay: BayId::parse("BAY01").unwrap(),
        max_image_bytes: 1 << 20,
        token_hashes: Arc::new(vec![hash]),
        upload_timeout: Duration::from_secs(1),
        full: Arc::new(|| Box::pin(async { None })),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/v1/scans", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, state, std::future::pending()));
    // The first bytes of a multipart body, then nothing more.
    let start = "--b\r\ncontent-disposition: form-data; name=\"x.png\"; filename=\"x.png\"\r\n\r\n";
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(start.as_bytes().to_vec())])
        .chain(futures_util::stream::pending());
    let r = reqwest::Client::new()
        .post(url)
        .bearer_auth(&token)
        .header("content-type", "multipart/form-data; boundary=b")
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 408);
    let left: Vec<_> = std::fs::read_dir(&drop).unwrap().flatten().collect();
    assert!(left.is_empty(), "{left:?}");
}
