//! Agent ingest: `POST /api/v1/reports` (idempotent by report id) and
//! `PUT /api/v1/scans/{scan_id}/preview`.

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{post, put};
use axum::{Json, Router};
use baylens_protocol::{ScanId, ScanReport};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::auth::Principal;
use crate::error::{ApiError, Result};
use crate::store::Ingested;
use crate::{AppState, MAX_PREVIEW_BYTES, MAX_REPORT_BYTES};

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/reports",
            post(ingest_report).layer(DefaultBodyLimit::max(MAX_REPORT_BYTES)),
        )
        .route(
            "/api/v1/scans/{scan_id}/preview",
            put(upload_preview).layer(DefaultBodyLimit::disable()),
        )
}

fn content_type_is(headers: &HeaderMap, expected: &str) -> Result<()> {
    let found = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if found
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case(expected)
    {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMedia(format!(
            "expected {expected}, got {found:?}"
        )))
    }
}

async fn ingest_report(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>)> {
    let agent = principal.agent()?;
    content_type_is(&headers, "application/json")?;
    let raw = std::str::from_utf8(&body)
        .map_err(|_| ApiError::Unprocessable("body is not UTF-8".into()))?;
    let report =
        ScanReport::from_json(body.as_ref()).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    if report.bay.as_str() != agent.bay {
        return Err(ApiError::Forbidden(format!(
            "agent {} reports for bay {}, not {}",
            agent.name, agent.bay, report.bay
        )));
    }
    let ingested = state.store.ingest_report(&agent, &report, raw).await?;
    let (status, case_id, duplicate) = match ingested {
        Ingested::Created(id) => (StatusCode::CREATED, id, false),
        Ingested::Duplicate(id) => (StatusCode::OK, id, true),
        Ingested::ScanConflict(_) => {
            return Err(ApiError::Conflict(format!(
                "scan {} already has a different report",
                report.scan_id
            )));
        }
    };
    tracing::info!(case_id, scan_id = %report.scan_id, bay = %report.bay, duplicate, "report ingested");
    Ok((
        status,
        Json(
            serde_json::json!({ "case_id": case_id, "report_id": report.report_id, "duplicate": duplicate }),
        ),
    ))
}

async fn upload_preview(
    State(state): State<AppState>,
    principal: Principal,
    Path(scan_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode> {
    let agent = principal.agent()?;
    let scan_id = ScanId::parse(&scan_id).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    content_type_is(&headers, "image/png")?;
    let (case_id, bay) = state
        .store
        .case_of_scan(scan_id.as_str())
        .await?
        .ok_or(ApiError::NotFound)?;
    if bay != agent.bay {
        return Err(ApiError::Forbidden(format!(
            "scan {scan_id} belongs to bay {bay}"
        )));
    }
    // Streamed to a temporary file, size-checked as it arrives, then renamed into place.
    let dest = state
        .store
        .images_dir
        .join(format!("{scan_id}.preview.png"));
    let tmp = state
        .store
        .images_dir
        .join(format!(".{scan_id}.{}.tmp", rand::random::<u64>()));
    let write = async {
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let mut stream = body.into_data_stream();
        let mut total = 0usize;
        let mut head = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ApiError::Unprocessable(format!("body: {e}")))?;
            total += chunk.len();
            if total > MAX_PREVIEW_BYTES {
                return Err(ApiError::TooLarge(MAX_PREVIEW_BYTES));
            }
            if head.len() < 8 {
                head.extend_from_slice(&chunk[..chunk.len().min(8 - head.len())]);
            }
            file.write_all(&chunk)
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
        }
        if head != b"\x89PNG\r\n\x1a\n" {
            return Err(ApiError::Unprocessable("preview is not a PNG file".into()));
        }
        file.sync_all()
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        tokio::fs::rename(&tmp, &dest)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))
    };
    if let Err(e) = write.await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    state.store.set_preview(case_id, &dest).await?;
    Ok(StatusCode::NO_CONTENT)
}
