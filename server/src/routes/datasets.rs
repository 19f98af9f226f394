//! Raw scans from the bays and dataset exports (`crate::dataset`).
//!
//! - `GET /api/v1/agents/raw-wanted` (agents): the scans of the agent's bay whose raw scan the
//!   server asked for.
//! - `PUT /api/v1/scans/{scan_id}/raw` (agents): one raw scan as a tar of its sidecar and the
//!   images it names, checked against the scan contract, written once.
//! - `POST /api/v1/dataset-exports` (supervisors, admins): starts an export in the background;
//!   `GET /api/v1/dataset-exports[/{id}]` shows progress, `…/{id}/download` gives the tar.

use std::io::Read;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use baylens_protocol::{ScanId, ScanSidecar};
use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{PutPayload, WriteMultipart};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::agents::{content_type_is, declared_within, json_body, own_case};
use crate::auth::{Principal, Role};
use crate::dataset::{Params, TarSink, export, params};
use crate::error::{ApiError, Result};
use crate::extract::P;
use crate::{AppState, MAX_SMALL_BODY_BYTES};

/// Largest raw scan accepted: two 16-bit images of the contract's largest area, and the
/// sidecar.
pub const MAX_RAW_BYTES: usize = 2 * 64 * 1024 * 1024 * 2 + 1024 * 1024;
/// Raw uploads checked at once: each is held in memory (up to [`MAX_RAW_BYTES`]) while its
/// tar is checked, so a burst of bays answering one export cannot exhaust the server.
static RAW_UPLOADS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
/// Export jobs run one at a time: each reads and hashes every raw scan of its period.
static EXPORT_JOBS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Most scan ids one `raw-wanted` answer lists.
const RAW_WANTED_BATCH: i64 = 16;

/// Small requests.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/agents/raw-wanted", get(raw_wanted))
        .route("/api/v1/agents/raw-missing", post(raw_missing))
        .route(
            "/api/v1/dataset-exports",
            get(list_exports).post(start_export),
        )
        .route("/api/v1/dataset-exports/{id}", get(show_export))
        .route("/api/v1/dataset-exports/{id}/download", get(download))
        .layer(DefaultBodyLimit::max(MAX_SMALL_BODY_BYTES))
}

/// The raw scan upload (streamed; it gets the uploads' longer timeout).
pub fn uploads() -> Router<AppState> {
    Router::new().route(
        "/api/v1/scans/{scan_id}/raw",
        put(upload_raw).layer(DefaultBodyLimit::disable()),
    )
}

async fn raw_wanted(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<serde_json::Value>> {
    let agent = principal.agent()?;
    let ids = state.store.raw_wanted(&agent.bay, RAW_WANTED_BATCH).await?;
    Ok(Json(serde_json::json!({ "scan_ids": ids })))
}

/// A bay's word that it cannot provide a raw scan.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMissing {
    scan_id: String,
    reason: String,
}

async fn raw_missing(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode> {
    let agent = principal.agent()?;
    let m: RawMissing = json_body(&headers, &body)?;
    let scan_id = ScanId::parse(&m.scan_id).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let case_id = own_case(&state, &agent, &scan_id).await?;
    let reason: String = m.reason.chars().take(500).collect();
    state
        .store
        .raw_missing(&format!("agent:{}", agent.name), case_id, &reason)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn upload_raw(
    State(state): State<AppState>,
    principal: Principal,
    P(scan_id): P<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode> {
    let agent = principal.agent()?;
    let scan_id = ScanId::parse(&scan_id).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    content_type_is(&headers, "application/x-tar")?;
    declared_within(&headers, MAX_RAW_BYTES)?;
    let case_id = own_case(&state, &agent, &scan_id).await?;
    let _turn = RAW_UPLOADS
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    // Read whole (bounded), checked before anything is stored.
    let mut bytes = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::Unprocessable(format!("body: {e}")))?;
        if bytes.len() + chunk.len() > MAX_RAW_BYTES {
            return Err(ApiError::TooLarge(MAX_RAW_BYTES));
        }
        bytes.extend_from_slice(&chunk);
    }
    let bytes = Bytes::from(bytes);
    let checked = bytes.clone();
    let id = scan_id.as_str().to_owned();
    tokio::task::spawn_blocking(move || check_raw(&checked, &id))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Unprocessable(format!("raw scan {scan_id}: {e}")))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let nonce: u64 = rand::random();
    let key = ObjectPath::from(format!("scans/{scan_id}/raw-{nonce:016x}.tar"));
    state
        .store
        .images
        .put(&key, PutPayload::from_bytes(bytes))
        .await
        .map_err(|e| ApiError::Internal(format!("image store: {e}")))?;
    let actor = format!("agent:{}", agent.name);
    let written = state
        .store
        .record_raw(&actor, case_id, key.as_ref(), &sha256)
        .await;
    super::evidence::settle(&state, &key, written).await
}

/// Checks a raw scan tar: regular files with bare names, one sidecar of scan `scan_id` that
/// passes the scan contract, and exactly the PNG or TIFF images it names.
pub fn check_raw(tar_bytes: &[u8], scan_id: &str) -> std::result::Result<(), String> {
    let mut sidecar: Option<Vec<u8>> = None;
    let mut images: Vec<(String, [u8; 4])> = Vec::new();
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive
        .entries()
        .map_err(|e| format!("not a tar file: {e}"))?
    {
        let mut entry = entry.map_err(|e| format!("not a tar file: {e}"))?;
        let name = entry
            .path()
            .map_err(|e| format!("entry name: {e}"))?
            .to_string_lossy()
            .into_owned();
        if !entry.header().entry_type().is_file() {
            return Err(format!("{name:?} is not a regular file"));
        }
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(format!("{name:?} is not a bare file name"));
        }
        if name.ends_with(".json") {
            if sidecar.is_some() {
                return Err("more than one sidecar (.json)".into());
            }
            let mut text = Vec::new();
            entry
                .by_ref()
                .take(64 * 1024)
                .read_to_end(&mut text)
                .map_err(|e| format!("{name}: {e}"))?;
            sidecar = Some(text);
        } else {
            let mut magic = [0u8; 4];
            entry
                .read_exact(&mut magic)
                .map_err(|_| format!("{name}: too short for an image"))?;
            images.push((name, magic));
        }
    }
    let sidecar = sidecar.ok_or("no sidecar (.json) in the tar")?;
    let sidecar = ScanSidecar::from_json(&sidecar, chrono::Utc::now())
        .map_err(|e| format!("sidecar: {e}"))?;
    if sidecar.scan_id.as_str() != scan_id {
        return Err(format!(
            "the sidecar is of scan {}, not {scan_id}",
            sidecar.scan_id
        ));
    }
    let named: Vec<&str> = sidecar.images.iter().map(|i| i.file.as_str()).collect();
    for (name, magic) in &images {
        if !named.contains(&name.as_str()) {
            return Err(format!("{name} is not named by the sidecar"));
        }
        let png = magic == b"\x89PNG";
        let tiff = magic == b"II*\0" || magic == b"MM\0*";
        if !png && !tiff {
            return Err(format!("{name} is neither a PNG nor a TIFF file"));
        }
    }
    for file in named {
        if !images.iter().any(|(n, _)| n == file) {
            return Err(format!("the sidecar names {file}, which is not in the tar"));
        }
    }
    Ok(())
}

/// What to export (the UI's form sends dates; the API takes RFC 3339 too).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportRequest {
    /// Scans captured on or after (`YYYY-MM-DD` or RFC 3339).
    from: String,
    /// Scans captured before (RFC 3339), or up to and including this day (`YYYY-MM-DD`).
    to: String,
    /// Only this bay (empty: every bay).
    #[serde(default)]
    bay: Option<String>,
    /// Keep declarant names and ids (a checkbox sends "on").
    #[serde(default)]
    keep_names: Option<serde_json::Value>,
}

async fn start_export(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>)> {
    let user = principal.user_with(&[Role::Supervisor, Role::Admin])?;
    let r: ExportRequest = json_body(&headers, &body)?;
    let keep_names = match &r.keep_names {
        None | Some(serde_json::Value::Bool(false)) => false,
        Some(serde_json::Value::Bool(true)) => true,
        Some(serde_json::Value::String(s)) if s == "on" || s == "true" => true,
        Some(other) => {
            return Err(ApiError::Unprocessable(format!(
                "keep_names must be true or false, got {other}"
            )));
        }
    };
    let p =
        params(&r.from, &r.to, r.bay.as_deref(), keep_names).map_err(ApiError::Unprocessable)?;
    let id = state
        .store
        .create_export(&user, &serde_json::to_value(&p).unwrap_or_default())
        .await?;
    tokio::spawn(run_job(state.clone(), id, p));
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "id": id, "url": format!("/api/v1/dataset-exports/{id}") })),
    ))
}

/// Runs an export into a temporary tar, then keeps the tar in the object store.
async fn run_job(state: AppState, id: i64, p: Params) {
    let Ok(_turn) = EXPORT_JOBS.acquire().await else {
        return;
    };
    let tmp = std::env::temp_dir().join(format!(
        "baylens-export-{id}-{:016x}.tar",
        rand::random::<u64>()
    ));
    let outcome = async {
        let file = std::fs::File::create(&tmp).map_err(|e| format!("temporary file: {e}"))?;
        let mut sink = TarSink(tar::Builder::new(std::io::BufWriter::new(file)));
        let (tx, mut rx) = tokio::sync::watch::channel((0u64, 0u64));
        let store = state.store.clone();
        let progress = tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let (done, total) = *rx.borrow_and_update();
                let _ = store.export_progress(id, done as i64, total as i64).await;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        });
        let summary = export(&state.store, &p, &mut sink, |done, total| {
            let _ = tx.send((done, total));
        })
        .await;
        drop(tx);
        let _ = progress.await;
        let summary = summary?;
        sink.0
            .into_inner()
            .and_then(|mut w| std::io::Write::flush(&mut w))
            .map_err(|e| format!("temporary file: {e}"))?;
        let key = ObjectPath::from(format!("exports/{id}-{:016x}.tar", rand::random::<u64>()));
        let sha256 = store_file(&state, &tmp, &key).await?;
        Ok::<_, String>((summary, key, sha256))
    }
    .await;
    let _ = std::fs::remove_file(&tmp);
    let recorded = match outcome {
        Ok((summary, key, sha)) => {
            state
                .store
                .finish_export(
                    id,
                    Some((key.as_ref(), &sha)),
                    &serde_json::to_value(summary).unwrap_or_default(),
                )
                .await
        }
        Err(why) => {
            tracing::warn!(export = id, "dataset export failed: {why}");
            state
                .store
                .finish_export(id, None, &serde_json::json!({ "error": why }))
                .await
        }
    };
    if let Err(e) = recorded {
        tracing::error!(export = id, "dataset export not recorded: {e}");
    }
}

/// Copies a file into the object store in parts; returns its sha256.
async fn store_file(
    state: &AppState,
    path: &std::path::Path,
    key: &ObjectPath,
) -> std::result::Result<String, String> {
    let upload = state
        .store
        .images
        .put_multipart(key)
        .await
        .map_err(|e| format!("image store: {e}"))?;
    let mut writer = WriteMultipart::new(upload);
    let mut file = std::fs::File::open(path).map_err(|e| format!("temporary file: {e}"))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| format!("temporary file: {e}"))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        writer
            .wait_for_capacity(4)
            .await
            .map_err(|e| format!("image store: {e}"))?;
        writer.write(&buf[..n]);
    }
    writer
        .finish()
        .await
        .map_err(|e| format!("image store: {e}"))?;
    Ok(hex::encode(hash.finalize()))
}

async fn list_exports(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<serde_json::Value>> {
    principal.user_with(&[Role::Supervisor, Role::Admin])?;
    let jobs = state.store.exports(100).await?;
    Ok(Json(serde_json::json!({ "exports": jobs })))
}

async fn show_export(
    State(state): State<AppState>,
    principal: Principal,
    P(id): P<i64>,
) -> Result<Json<crate::store::datasets::ExportJob>> {
    principal.user_with(&[Role::Supervisor, Role::Admin])?;
    let job = state
        .store
        .export_job(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(job))
}

async fn download(
    State(state): State<AppState>,
    principal: Principal,
    P(id): P<i64>,
) -> Result<Response> {
    let user = principal.user_with(&[Role::Supervisor, Role::Admin])?;
    let job = state
        .store
        .export_job(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let (Some(key), Some(sha)) = (&job.object_key, &job.sha256) else {
        return Err(ApiError::Conflict(format!(
            "export {id} is {}; nothing to download yet",
            job.state
        )));
    };
    let got = state
        .store
        .images
        .get(&ObjectPath::from(key.as_str()))
        .await
        .map_err(|e| ApiError::Internal(format!("image store: {e}")))?;
    state
        .store
        .audit(
            &user.username,
            "dataset.download",
            &format!("export:{id}"),
            &serde_json::json!({ "sha256": sha }),
        )
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-tar".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"baylens-dataset-{id}.tar\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (
                header::HeaderName::from_static("x-content-sha256"),
                sha.clone(),
            ),
        ],
        Body::from_stream(got.into_stream()),
    )
        .into_response())
}
