//! HTTP push from scanners: `POST /api/v1/scans`, `multipart/form-data` with one part named
//! `sidecar` (the `baylens.scan/1` JSON) and one part per image, each carrying the file name
//! the sidecar gives it. Authenticated by the scanner's token (`Authorization: Bearer`; the
//! agent's config holds only its sha256).
//!
//! Parts are streamed to a staging folder inside the drop folder (`.incoming-<uuid>/`, which
//! the drop-folder scan ignores), each within `max_image_bytes`. The scan is then validated
//! exactly as a dropped one would be (sidecar contract, 16-bit grayscale, size caps before
//! decoding, equal dual-energy sizes, this bay), its files fsynced and renamed into the drop
//! folder, images first and sidecar last, and the folder fsynced. Only then does the agent
//! answer `202 Accepted` with the scan id: from that moment the scan survives a crash, and the
//! drop-folder pipeline takes it like any other.
//!
//! A DICOS DX scan (see [`crate::ingest::dicos`]) is sent as its `.dcs`/`.dcm` file(s) alone,
//! one part each and no sidecar part; it is converted, then checked and stored the same way,
//! and the DICOS files are kept in the drop folder's `done/`.
//!
//! | answer | when |
//! |---|---|
//! | 202 `{"scan_id": ...}` | stored durably |
//! | 400 | malformed multipart, a part without a name, a missing or extra file |
//! | 401 | no token or a wrong one |
//! | 409 | a different scan with this id or file name is already waiting |
//! | 413 | an image over `max_image_bytes`, or a sidecar over 1 MiB |
//! | 415 | not `multipart/form-data` |
//! | 422 | the sidecar or an image breaks the scan contract, or a DICOS file is unusable (the message says which rule or attribute) |
//! | 507 | the store quota or the disk is full: the scan was not taken, send it later |
//! | 408 | the upload took longer than `push.upload_timeout_secs` |

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use baylens_protocol::sidecar::is_bare_file_name;
use baylens_protocol::{BayId, ScanSidecar};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::ingest::Rejection;
use crate::ingest::dicos::{convert_files, is_dicos_name};
use crate::ingest::scan::load_scan;

/// Largest sidecar accepted, bytes.
pub const MAX_SIDECAR_BYTES: usize = 1024 * 1024;

/// The `[push]` section of the agent's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushConfig {
    /// Address to listen on, e.g. `0.0.0.0:8090` (the bay's scanner network).
    pub listen: std::net::SocketAddr,
    /// sha256 (hex) of each scanner's token; `edge-agent scanner-token` makes one.
    pub scanner_token_sha256: Vec<String>,
    /// Longest an upload may take, seconds (slow or stalled scanners are cut off).
    #[serde(default = "default_upload_timeout_secs")]
    pub upload_timeout_secs: u64,
}

fn default_upload_timeout_secs() -> u64 {
    300
}

impl PushConfig {
    /// Checks the token hashes' form.
    pub fn validate(&self) -> Result<(), String> {
        if self.scanner_token_sha256.is_empty() {
            return Err("push.scanner_token_sha256 is empty: no scanner could push".into());
        }
        for h in &self.scanner_token_sha256 {
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "push.scanner_token_sha256: {h:?} is not a sha256 in hex (64 characters)"
                ));
            }
        }
        Ok(())
    }
}

/// A new scanner token and the line that registers its hash.
pub fn new_token() -> (String, String) {
    let bytes: [u8; 32] = rand::random();
    let token = format!("bls_{}", hex::encode(bytes));
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    (token, hash)
}

/// What the handler needs; `full` says why new scans cannot be taken now, if so.
#[derive(Clone)]
pub struct PushState {
    /// The drop folder.
    pub drop_dir: PathBuf,
    /// This bay.
    pub bay: BayId,
    /// Largest image accepted, bytes.
    pub max_image_bytes: u64,
    /// Accepted token hashes (lower-case hex).
    pub token_hashes: Arc<Vec<String>>,
    /// Upload time limit.
    pub upload_timeout: Duration,
    /// Why the store cannot take scans now (quota or disk), if so.
    #[allow(clippy::type_complexity)]
    pub full: Arc<
        dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<String>> + Send>>
            + Send
            + Sync,
    >,
}

impl std::fmt::Debug for PushState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushState")
            .field("drop_dir", &self.drop_dir)
            .field("bay", &self.bay)
            .field("max_image_bytes", &self.max_image_bytes)
            .field("tokens", &self.token_hashes.len())
            .finish_non_exhaustive()
    }
}

/// An error answer: status and a JSON `{"error": ...}`.
#[derive(Debug)]
pub struct PushError(StatusCode, String);

impl IntoResponse for PushError {
    fn into_response(self) -> Response {
        let mut r = (self.0, Json(serde_json::json!({"error": self.1}))).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

fn err(status: StatusCode, message: impl Into<String>) -> PushError {
    PushError(status, message.into())
}

/// The push API's routes.
pub fn router(state: PushState) -> Router {
    // Two images and a sidecar, plus multipart framing.
    let limit = usize::try_from(state.max_image_bytes.saturating_mul(2))
        .unwrap_or(usize::MAX)
        .saturating_add(MAX_SIDECAR_BYTES + 64 * 1024);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/api/v1/scans",
            post(push_scan).layer(DefaultBodyLimit::max(limit)),
        )
        .with_state(state)
}

/// Serves the push API until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: PushState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    clean_staging(&state.drop_dir);
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Removes staging folders left by uploads a crash interrupted (never acknowledged).
pub fn clean_staging(drop_dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(drop_dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(".incoming-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

fn authorised(headers: &HeaderMap, hashes: &[String]) -> bool {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let hash = hex::encode(Sha256::digest(token.trim().as_bytes()));
    // Every hash is compared in full, so timing says nothing about which one is close.
    hashes.iter().fold(false, |ok, h| {
        let same = h
            .to_ascii_lowercase()
            .bytes()
            .zip(hash.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        ok | same
    })
}

async fn push_scan(
    State(state): State<PushState>,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), PushError> {
    if !authorised(&headers, &state.token_hashes) {
        return Err(err(
            StatusCode::UNAUTHORIZED,
            "a scanner token is required (Authorization: Bearer ...)",
        ));
    }
    let multipart = multipart.map_err(|e| {
        err(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("expected multipart/form-data with a sidecar part and the images: {e}"),
        )
    })?;
    if let Some(why) = (state.full)().await {
        return Err(err(
            StatusCode::INSUFFICIENT_STORAGE,
            format!("the bay cannot take scans now ({why}); keep the scan and send it later"),
        ));
    }
    let staging = state
        .drop_dir
        .join(format!(".incoming-{}", uuid::Uuid::new_v4()));
    tokio::fs::create_dir_all(&staging).await.map_err(|e| {
        err(
            StatusCode::INSUFFICIENT_STORAGE,
            format!("cannot stage the upload: {e}"),
        )
    })?;
    let result = tokio::time::timeout(state.upload_timeout, receive(&state, &staging, multipart))
        .await
        .unwrap_or_else(|_| {
            Err(err(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the upload took longer than {} s",
                    state.upload_timeout.as_secs()
                ),
            ))
        });
    let _ = tokio::fs::remove_dir_all(&staging).await;
    result.map(|scan_id| {
        (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"scan_id": scan_id, "status": "stored"})),
        )
    })
}

/// Receives, validates and commits one scan; returns its id.
async fn receive(
    state: &PushState,
    staging: &Path,
    mut multipart: Multipart,
) -> Result<String, PushError> {
    let bad = |m: String| err(StatusCode::BAD_REQUEST, m);
    let mut sidecar_bytes: Option<Vec<u8>> = None;
    let mut files: Vec<String> = Vec::new();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| bad(format!("malformed multipart body: {e}")))?
    {
        let name = field.name().unwrap_or("").to_owned();
        if name == "sidecar" {
            if sidecar_bytes.is_some() {
                return Err(bad("two sidecar parts".into()));
            }
            let mut buf = Vec::new();
            while let Some(chunk) = field
                .chunk()
                .await
                .map_err(|e| bad(format!("malformed multipart body: {e}")))?
            {
                if buf.len() + chunk.len() > MAX_SIDECAR_BYTES {
                    return Err(err(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("the sidecar exceeds {MAX_SIDECAR_BYTES} bytes"),
                    ));
                }
                buf.extend_from_slice(&chunk);
            }
            sidecar_bytes = Some(buf);
            continue;
        }
        let file = field
            .file_name()
            .map(str::to_owned)
            .unwrap_or_else(|| name.clone());
        if !is_bare_file_name(&file) && !is_bare_dicos_name(&file) {
            return Err(bad(format!(
                "part {:?}: file name {:?} must be a bare .png/.tif/.tiff name, or .dcs/.dcm for DICOS",
                name.chars().take(64).collect::<String>(),
                file.chars().take(64).collect::<String>()
            )));
        }
        if files.contains(&file) {
            return Err(bad(format!("{file} sent twice")));
        }
        let path = staging.join(&file);
        let mut out = tokio::fs::File::create(&path).await.map_err(|e| {
            err(
                StatusCode::INSUFFICIENT_STORAGE,
                format!("cannot stage {file}: {e}"),
            )
        })?;
        let mut written = 0u64;
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| bad(format!("malformed multipart body in {file}: {e}")))?
        {
            written += chunk.len() as u64;
            if written > state.max_image_bytes {
                return Err(err(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("{file} exceeds {} bytes", state.max_image_bytes),
                ));
            }
            out.write_all(&chunk).await.map_err(|e| {
                err(
                    StatusCode::INSUFFICIENT_STORAGE,
                    format!("cannot stage {file}: {e}"),
                )
            })?;
        }
        out.sync_all().await.map_err(|e| {
            err(
                StatusCode::INSUFFICIENT_STORAGE,
                format!("cannot stage {file}: {e}"),
            )
        })?;
        files.push(file);
    }
    let dicos: Vec<String> = files.iter().filter(|f| is_dicos_name(f)).cloned().collect();
    let (sidecar_bytes, files) = if dicos.is_empty() {
        let sidecar = sidecar_bytes.ok_or_else(|| bad("no part named \"sidecar\"".into()))?;
        (sidecar, files)
    } else {
        if sidecar_bytes.is_some() || dicos.len() != files.len() {
            return Err(bad(
                "a DICOS scan is sent as its .dcs/.dcm files alone, without a sidecar or other images"
                    .into(),
            ));
        }
        from_dicos(state, staging, &files).await?
    };
    let sidecar = ScanSidecar::from_json(&sidecar_bytes, chrono::Utc::now())
        .map_err(|e| err(StatusCode::UNPROCESSABLE_ENTITY, format!("sidecar: {e}")))?;
    let named: Vec<String> = sidecar.images.iter().map(|i| i.file.clone()).collect();
    if let Some(missing) = named.iter().find(|n| !files.contains(n)) {
        return Err(bad(format!(
            "the sidecar names {missing}, but no part carried it"
        )));
    }
    if let Some(extra) = files.iter().find(|f| !named.contains(f)) {
        return Err(bad(format!(
            "{extra} was sent, but the sidecar does not name it"
        )));
    }
    if sidecar.bay != state.bay {
        return Err(err(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "the scan is for bay {}, this agent serves bay {}",
                sidecar.bay, state.bay
            ),
        ));
    }
    if !sidecar.scan_id.is_of_bay(state.bay.as_str()) {
        return Err(err(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "scan_id {} must start with this bay, \"{}-\" (protocol/SCAN_FORMAT.md)",
                sidecar.scan_id, state.bay
            ),
        ));
    }
    let scan_id = sidecar.scan_id.as_str().to_owned();
    let sidecar_name = format!("{scan_id}.json");
    tokio::fs::write(staging.join(&sidecar_name), &sidecar_bytes)
        .await
        .map_err(|e| {
            err(
                StatusCode::INSUFFICIENT_STORAGE,
                format!("cannot stage the sidecar: {e}"),
            )
        })?;
    // The same checks as the drop folder: decoding with every limit.
    let staged = staging.join(&sidecar_name);
    let max = state.max_image_bytes;
    tokio::task::spawn_blocking(move || load_scan(&staged, max).map(|_| ()))
        .await
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|r| err(StatusCode::UNPROCESSABLE_ENTITY, r.0))?;
    commit(&state.drop_dir, staging, &files, &sidecar_name)?;
    // The DICOS originals are kept beside the taken scans, as the drop folder keeps dropped
    // ones. The scan is stored already: a failure here is logged, not answered.
    let done = state.drop_dir.join("done");
    for name in &dicos {
        let kept = std::fs::create_dir_all(&done)
            .and_then(|()| crate::ingest::dicos_drop::keep_in(&staging.join(name), &done));
        if let Err(e) = kept {
            tracing::warn!(scan_id, "DICOS original {name} not kept: {e}");
        }
    }
    Ok(scan_id)
}

fn is_bare_dicos_name(name: &str) -> bool {
    is_dicos_name(name)
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Converts the staged DICOS files into a `baylens.scan/1` scan in the staging folder; returns
/// its sidecar and image names. The DICOS files stay behind in staging (removed with it).
async fn from_dicos(
    state: &PushState,
    staging: &Path,
    files: &[String],
) -> Result<(Vec<u8>, Vec<String>), PushError> {
    let paths: Vec<PathBuf> = files.iter().map(|f| staging.join(f)).collect();
    let (bay, max, dir) = (state.bay.clone(), state.max_image_bytes, staging.to_owned());
    let converted = tokio::task::spawn_blocking(move || {
        let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        let converted = convert_files(&refs, &bay, max)?;
        let (images, _) = converted.files.split_at(converted.files.len() - 1);
        for (name, bytes) in images {
            std::fs::write(dir.join(name), bytes)
                .map_err(|e| Rejection(format!("cannot stage {name}: {e}")))?;
        }
        Ok::<_, Rejection>(converted)
    })
    .await
    .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|r| err(StatusCode::UNPROCESSABLE_ENTITY, r.0))?;
    for note in &converted.notes {
        tracing::warn!(scan_id = converted.scan_id, "DICOS: {note}");
    }
    let mut names: Vec<String> = converted.files.iter().map(|f| f.0.clone()).collect();
    names.pop();
    let sidecar = converted
        .files
        .last()
        .map(|f| f.1.clone())
        .unwrap_or_default();
    Ok((sidecar, names))
}

/// Moves a validated scan into the drop folder: images first, sidecar last (the drop folder
/// takes a scan only once its sidecar is there), every file and the folder fsynced.
fn commit(
    drop_dir: &Path,
    staging: &Path,
    images: &[String],
    sidecar: &str,
) -> Result<(), PushError> {
    let io = |what: &str, e: std::io::Error| {
        err(
            StatusCode::INSUFFICIENT_STORAGE,
            format!("cannot store {what}: {e}"),
        )
    };
    for name in images.iter().map(String::as_str).chain([sidecar]) {
        if drop_dir.join(name).exists() {
            return Err(err(
                StatusCode::CONFLICT,
                format!("{name} is already waiting in the drop folder"),
            ));
        }
    }
    std::fs::File::open(staging.join(sidecar))
        .and_then(|f| f.sync_all())
        .map_err(|e| io(sidecar, e))?;
    for name in images {
        std::fs::rename(staging.join(name), drop_dir.join(name)).map_err(|e| io(name, e))?;
    }
    std::fs::File::open(drop_dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("the drop folder", e))?;
    std::fs::rename(staging.join(sidecar), drop_dir.join(sidecar)).map_err(|e| io(sidecar, e))?;
    std::fs::File::open(drop_dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("the drop folder", e))?;
    Ok(())
}
