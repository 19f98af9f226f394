//! The container code a bay's camera read over a truck pass (`baylens_protocol::camera_code`),
//! relayed by the bay's agent to the scan's case. The server compares it with the scanner's code
//! and the declaration's: a difference becomes a `container_code_mismatch` finding of the case,
//! with both readings in its message and the camera's frames kept as evidence
//! (`crate::store::camera_codes`).

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use baylens_protocol::camera_code::CameraCode;

use super::agents::{MAX_ANNOTATION_AGE_DAYS, MAX_CLOCK_SKEW_MINUTES, json_body, own_case};
use crate::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, Result};
use crate::extract::P;
use crate::store::camera_codes::{CAMERA_PREFIX, CameraRecorded};

/// Largest frame of a reading (a JPEG).
pub const MAX_FRAME_BYTES: usize = 2 * 1024 * 1024;
/// Largest body: three frames as base64, and the rest.
pub const MAX_CAMERA_CODE_BYTES: usize = 9 * 1024 * 1024;

/// The camera's readings, relayed by the bays (frames over a weak bay link get the upload
/// timeout).
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/scans/{scan_id}/camera-code",
        post(camera_code).layer(DefaultBodyLimit::max(MAX_CAMERA_CODE_BYTES)),
    )
}

/// Records the camera's reading of the container of a scan of the agent's own bay: 201 with
/// the mismatch finding's message (or null), 200 for a repeated delivery, 404 while the server
/// has no case for the scan, 409 when the case already has another reading.
async fn camera_code(
    State(state): State<AppState>,
    principal: Principal,
    P(scan_id): P<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>)> {
    use base64::Engine as _;
    let agent = principal.agent()?;
    let r: CameraCode = json_body(&headers, &body)?;
    let bad = |m: String| Err(ApiError::Unprocessable(m));
    if r.scan_id.as_str() != scan_id {
        return bad("scan_id in the body differs from the path".into());
    }
    if let Some(problem) = r.problem() {
        return bad(problem);
    }
    // A repeated delivery writes nothing, its frames included.
    if state.store.camera_code_recorded(&r.reading_id).await? {
        return Ok((
            StatusCode::OK,
            Json(serde_json::json!({ "reading_id": r.reading_id, "duplicate": true })),
        ));
    }
    let received = chrono::Utc::now();
    if r.read_at > received + chrono::Duration::minutes(MAX_CLOCK_SKEW_MINUTES) {
        return bad(format!(
            "read_at {} is later than the server's receipt time {} (bay clock wrong?)",
            r.read_at.to_rfc3339(),
            received.to_rfc3339()
        ));
    }
    if r.read_at < received - chrono::Duration::days(MAX_ANNOTATION_AGE_DAYS) {
        return bad(format!(
            "read_at {} is more than {MAX_ANNOTATION_AGE_DAYS} days before its receipt",
            r.read_at.to_rfc3339()
        ));
    }
    let mut frames = Vec::with_capacity(r.frames_jpeg_base64.len());
    for (i, f) in r.frames_jpeg_base64.iter().enumerate() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(f.trim())
            .map_err(|e| ApiError::Unprocessable(format!("frames_jpeg_base64[{i}]: {e}")))?;
        if bytes.len() > MAX_FRAME_BYTES {
            return Err(ApiError::TooLarge(MAX_FRAME_BYTES));
        }
        if super::evidence::photo_ext(&bytes) != Some("jpg") {
            return bad(format!("frames_jpeg_base64[{i}] is not a JPEG"));
        }
        frames.push(bytes);
    }
    let case_id = own_case(&state, &agent, &r.scan_id).await?;
    if let Some(other) = state.store.camera_code(case_id).await? {
        return Err(ApiError::Conflict(format!(
            "case {case_id} already has the camera's reading {}; a case keeps its first",
            other.reading_id
        )));
    }
    // The frames first, each in a slot of this reading: a failure before the reading is
    // recorded leaves a retry that finds the same frames there.
    let mut names = Vec::with_capacity(frames.len());
    for (i, bytes) in frames.into_iter().enumerate() {
        let name = format!(
            "{CAMERA_PREFIX}{}-{}",
            r.reading_id.to_ascii_lowercase(),
            i + 1
        );
        super::evidence::store_bay_image(&state, &agent, case_id, &r.scan_id, &name, bytes, "jpg")
            .await?;
        names.push(name);
    }
    match state
        .store
        .record_camera_code(&agent, case_id, &r, &names)
        .await?
    {
        CameraRecorded::New(mismatch) => {
            if let Some(m) = &mismatch {
                tracing::info!(case_id, scan_id = %r.scan_id, code = r.code.as_str(), "camera code disagrees: {m}");
            }
            Ok((
                StatusCode::CREATED,
                Json(serde_json::json!({
                    "reading_id": r.reading_id, "case_id": case_id, "mismatch": mismatch,
                })),
            ))
        }
        CameraRecorded::Same => Ok((
            StatusCode::OK,
            Json(serde_json::json!({ "reading_id": r.reading_id, "duplicate": true })),
        )),
        CameraRecorded::Refused(why) => Err(ApiError::Conflict(why)),
    }
}
