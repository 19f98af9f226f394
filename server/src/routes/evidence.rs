//! Evidence uploads from the bays: a scan's preview and its image layers, streamed into the
//! object store under a key of their own (nothing is ever overwritten), hashed as they arrive,
//! and recorded with the case only if the case has no other image in that slot and is not
//! decided (`crate::store::evidence`). The same image again (an agent's retry) is accepted and
//! changes nothing; a different one is 409.

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::put;
use baylens_protocol::ScanId;
use futures_util::StreamExt;
use object_store::WriteMultipart;
use object_store::path::Path as ObjectPath;
use sha2::{Digest, Sha256};

use super::agents::{content_type_is, declared_within, own_case};
use crate::auth::Principal;
use crate::error::{ApiError, Result};
use crate::extract::P;
use crate::store::evidence::{EvidenceWrite, PREVIEW};
use crate::{AppState, MAX_PREVIEW_BYTES};

/// Image uploads (streamed; they get a longer timeout than other requests).
pub fn uploads() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/scans/{scan_id}/preview",
            put(upload_preview).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/api/v1/scans/{scan_id}/layers/{layer}",
            put(upload_layer).layer(DefaultBodyLimit::disable()),
        )
}

async fn upload_preview(
    State(state): State<AppState>,
    principal: Principal,
    P(scan_id): P<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode> {
    upload(&state, principal, &scan_id, PREVIEW, &headers, body).await
}

async fn upload_layer(
    State(state): State<AppState>,
    principal: Principal,
    P((scan_id, layer)): P<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode> {
    if !crate::store::cases::LAYERS.contains(&layer.as_str()) {
        return Err(ApiError::Unprocessable(format!(
            "unknown layer {:?}; layers are {}",
            layer.chars().take(40).collect::<String>(),
            crate::store::cases::LAYERS.join(", ")
        )));
    }
    upload(&state, principal, &scan_id, &layer, &headers, body).await
}

/// Stores image `name` of a scan of the agent's own bay and records it with the case.
async fn upload(
    state: &AppState,
    principal: Principal,
    scan_id: &str,
    name: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<StatusCode> {
    let agent = principal.agent()?;
    let scan_id = ScanId::parse(scan_id).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    content_type_is(headers, "image/png")?;
    declared_within(headers, MAX_PREVIEW_BYTES)?;
    let case_id = own_case(state, &agent, &scan_id).await?;
    let nonce: u64 = rand::random();
    let key = ObjectPath::from(format!("scans/{scan_id}/{name}-{nonce:016x}.png"));
    let (sha256, size) = stream_png(state, &key, body).await?;
    let supersedes = match name {
        PREVIEW => thumbnail_under(state, case_id, size).await,
        _ => None,
    };
    let actor = format!("agent:{}", agent.name);
    let written = state
        .store
        .store_evidence(
            &actor,
            case_id,
            name,
            key.as_ref(),
            &sha256,
            supersedes.as_deref(),
        )
        .await;
    settle(state, &key, written).await
}

/// The answer to an evidence upload whose object was put under `key` before `written` was
/// recorded: the object stays only if it was stored as evidence; a retry of what is there is
/// 204 too, a refusal 409.
pub(crate) async fn settle(
    state: &AppState,
    key: &ObjectPath,
    written: std::result::Result<EvidenceWrite, sqlx::Error>,
) -> Result<StatusCode> {
    if !matches!(written, Ok(EvidenceWrite::Stored)) {
        // Refused, a retry of what is there, or not recorded: the new object is not evidence.
        let _ = state.store.images.delete(key).await;
    }
    match written? {
        EvidenceWrite::Stored | EvidenceWrite::Same => Ok(StatusCode::NO_CONTENT),
        EvidenceWrite::Refused(why) => Err(ApiError::Conflict(why)),
    }
}

/// `jpg` or `png` by an image's first bytes; `None` for anything else.
pub(crate) fn photo_ext(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("jpg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("png")
    } else {
        None
    }
}

/// Stores an image the bay took (an officer's photo, a frame of the camera) as the evidence
/// slot `name` of case `case_id`, under a key of its own, recorded and audited. The same image
/// again changes nothing; a different one in the same slot is 409.
pub(crate) async fn store_bay_image(
    state: &AppState,
    agent: &crate::store::Agent,
    case_id: i64,
    scan_id: &ScanId,
    name: &str,
    bytes: Vec<u8>,
    ext: &str,
) -> Result<()> {
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let nonce: u64 = rand::random();
    let key = ObjectPath::from(format!("scans/{scan_id}/{name}-{nonce:016x}.{ext}"));
    state
        .store
        .images
        .put(&key, bytes.into())
        .await
        .map_err(|e| ApiError::Internal(format!("image store: {e}")))?;
    let actor = format!("agent:{}", agent.name);
    let written = state
        .store
        .store_evidence(&actor, case_id, name, key.as_ref(), &sha256, None)
        .await;
    settle(state, &key, written).await.map(|_| ())
}

/// The sha256 of the case's stored preview if it is a thumbnail of an image of `size` (smaller
/// in both directions): the full resolution a bay sends after a green scan's thumbnail.
async fn thumbnail_under(state: &AppState, case_id: i64, size: [u32; 2]) -> Option<String> {
    let (key, sha) = state.store.preview_record(case_id).await.ok()??;
    let head = state
        .store
        .images
        .get_range(&ObjectPath::from(key), 0..24)
        .await
        .ok()?;
    let old = png_size(&head)?;
    if old[0] >= size[0] || old[1] >= size[1] {
        return None;
    }
    Some(sha.unwrap_or_default())
}

/// Width and height from a PNG's IHDR chunk (its first 24 bytes).
fn png_size(head: &[u8]) -> Option<[u32; 2]> {
    let be = |r: std::ops::Range<usize>| Some(u32::from_be_bytes(head.get(r)?.try_into().ok()?));
    (head.get(12..16)? == b"IHDR").then_some(())?;
    Some([be(16..20)?, be(20..24)?])
}

/// Streams a PNG body into the object store at `key`, size-checked as it arrives; returns its
/// sha256 and its width and height. The object appears only when the upload completes, so a cut connection leaves no half
/// image behind.
async fn stream_png(state: &AppState, key: &ObjectPath, body: Body) -> Result<(String, [u32; 2])> {
    let upload = state
        .store
        .images
        .put_multipart(key)
        .await
        .map_err(|e| ApiError::Internal(format!("image store: {e}")))?;
    let mut writer = WriteMultipart::new(upload);
    let mut stream = body.into_data_stream();
    let mut total = 0usize;
    let mut head = Vec::new();
    let mut hash = Sha256::new();
    let outcome: Result<[u32; 2]> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ApiError::Unprocessable(format!("body: {e}")))?;
            total += chunk.len();
            if total > MAX_PREVIEW_BYTES {
                return Err(ApiError::TooLarge(MAX_PREVIEW_BYTES));
            }
            if head.len() < 24 {
                head.extend_from_slice(&chunk[..chunk.len().min(24 - head.len())]);
                if head.len() >= 8 && head[..8] != *b"\x89PNG\r\n\x1a\n" {
                    return Err(ApiError::Unprocessable("image is not a PNG file".into()));
                }
            }
            writer
                .wait_for_capacity(4)
                .await
                .map_err(|e| ApiError::Internal(format!("image store: {e}")))?;
            hash.update(&chunk);
            writer.write(&chunk);
        }
        if head.len() < 8 || head[..8] != *b"\x89PNG\r\n\x1a\n" {
            return Err(ApiError::Unprocessable("image is not a PNG file".into()));
        }
        png_size(&head).ok_or_else(|| {
            ApiError::Unprocessable("image is not a PNG file (no IHDR chunk)".into())
        })
    }
    .await;
    let size = match outcome {
        Ok(size) => size,
        Err(e) => {
            let _ = writer.abort().await;
            return Err(e);
        }
    };
    writer
        .finish()
        .await
        .map_err(|e| ApiError::Internal(format!("image store: {e}")))?;
    Ok((hex::encode(hash.finalize()), size))
}
