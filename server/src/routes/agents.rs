//! Agents and scanners: report ingest (idempotent by report id), streamed preview upload,
//! heartbeats and the per-bay declaration sync; and, for admins, agent registration and
//! revocation.

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use baylens_protocol::{BayId, ScanId, ScanReport};
use futures_util::StreamExt;
use object_store::WriteMultipart;
use serde::Deserialize;

use crate::auth::{Principal, Role};
use crate::error::{ApiError, Result};
use crate::extract::{P, Q};
use crate::store::{AgentInfo, DeclarationRow, Heartbeat, Ingested, now_ms};
use crate::{AppState, MAX_PREVIEW_BYTES, MAX_REPORT_BYTES, MAX_SMALL_BODY_BYTES};

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

/// Routes other than [`uploads`].
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/reports",
            post(ingest_report).layer(DefaultBodyLimit::max(MAX_REPORT_BYTES)),
        )
        .route(
            "/api/v1/agents/heartbeat",
            post(heartbeat).layer(DefaultBodyLimit::max(MAX_SMALL_BODY_BYTES)),
        )
        .route("/api/v1/declarations/sync", get(sync_declarations))
        .route(
            "/api/v1/agents",
            get(list_agents)
                .post(add_agent)
                .layer(DefaultBodyLimit::max(MAX_SMALL_BODY_BYTES)),
        )
        .route("/api/v1/agents/{name}", delete(revoke_agent))
}

/// Refuses a body whose content type is not `expected`.
pub fn content_type_is(headers: &HeaderMap, expected: &str) -> Result<()> {
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

/// Parses a JSON body with a precise error (serde's message names the field and position).
pub fn json_body<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T> {
    content_type_is(headers, "application/json")?;
    serde_json::from_slice(body).map_err(|e| ApiError::Unprocessable(format!("body: {e}")))
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
    let report = ScanReport::from_json(body.as_ref()).map_err(|e| {
        state.metrics.ingest("rejected");
        ApiError::Unprocessable(e.to_string())
    })?;
    if report.bay.as_str() != agent.bay {
        state.metrics.ingest("rejected");
        return Err(ApiError::Forbidden(format!(
            "agent {} reports for bay {}, not {}",
            agent.name, agent.bay, report.bay
        )));
    }
    let ingested = state.store.ingest_report(&agent, &report, raw).await?;
    let (status, case_id, duplicate) = match ingested {
        Ingested::Created(summary) => {
            state.metrics.ingest("created");
            let id = summary.id;
            match state.store.backend {
                // Every replica, this one included, hears it through LISTEN/NOTIFY.
                crate::store::Backend::Postgres => {
                    if let Err(e) = state.store.announce_case(id).await {
                        tracing::warn!(case_id = id, "announcing the new case failed: {e}");
                    }
                }
                // Nobody listening is fine.
                crate::store::Backend::Sqlite => {
                    let _ = state.events.send(*summary);
                }
            }
            (StatusCode::CREATED, id, false)
        }
        Ingested::Duplicate(id) => {
            state.metrics.ingest("duplicate");
            (StatusCode::OK, id, true)
        }
        Ingested::ScanConflict(_) => {
            state.metrics.ingest("conflict");
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

/// Object key of a scan's preview.
pub fn preview_key(scan_id: &ScanId) -> object_store::path::Path {
    object_store::path::Path::from(format!("scans/{scan_id}/preview.png"))
}

async fn upload_preview(
    State(state): State<AppState>,
    principal: Principal,
    P(scan_id): P<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode> {
    let agent = principal.agent()?;
    let scan_id = ScanId::parse(&scan_id).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let key = preview_key(&scan_id);
    let case_id = store_png(&state, &agent, &scan_id, &key, &headers, body).await?;
    state.store.set_preview(case_id, key.as_ref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn upload_layer(
    State(state): State<AppState>,
    principal: Principal,
    P((scan_id, layer)): P<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode> {
    let agent = principal.agent()?;
    let scan_id = ScanId::parse(&scan_id).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    if !crate::store::cases::LAYERS.contains(&layer.as_str()) {
        return Err(ApiError::Unprocessable(format!(
            "unknown layer {:?}; layers are {}",
            layer.chars().take(40).collect::<String>(),
            crate::store::cases::LAYERS.join(", ")
        )));
    }
    let key = object_store::path::Path::from(format!("scans/{scan_id}/{layer}.png"));
    let case_id = store_png(&state, &agent, &scan_id, &key, &headers, body).await?;
    state.store.set_layer(case_id, &layer, key.as_ref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Streams a PNG body into the object store at `key`, for a scan of the agent's own bay;
/// returns the scan's case id.
async fn store_png(
    state: &AppState,
    agent: &crate::store::Agent,
    scan_id: &ScanId,
    key: &object_store::path::Path,
    headers: &HeaderMap,
    body: Body,
) -> Result<i64> {
    content_type_is(headers, "image/png")?;
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        && len > MAX_PREVIEW_BYTES
    {
        return Err(ApiError::TooLarge(MAX_PREVIEW_BYTES));
    }
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
    // Streamed into the object store, size-checked as it arrives; the object appears only
    // when the upload completes, so a cut connection leaves no half image behind.
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
    let outcome: Result<()> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ApiError::Unprocessable(format!("body: {e}")))?;
            total += chunk.len();
            if total > MAX_PREVIEW_BYTES {
                return Err(ApiError::TooLarge(MAX_PREVIEW_BYTES));
            }
            if head.len() < 8 {
                head.extend_from_slice(&chunk[..chunk.len().min(8 - head.len())]);
                if head.len() == 8 && head != b"\x89PNG\r\n\x1a\n" {
                    return Err(ApiError::Unprocessable("preview is not a PNG file".into()));
                }
            }
            writer
                .wait_for_capacity(4)
                .await
                .map_err(|e| ApiError::Internal(format!("image store: {e}")))?;
            writer.write(&chunk);
        }
        if head != b"\x89PNG\r\n\x1a\n" {
            return Err(ApiError::Unprocessable("preview is not a PNG file".into()));
        }
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        let _ = writer.abort().await;
        return Err(e);
    }
    writer
        .finish()
        .await
        .map_err(|e| ApiError::Internal(format!("image store: {e}")))?;
    Ok(case_id)
}

async fn heartbeat(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode> {
    let agent = principal.agent()?;
    let hb: Heartbeat = json_body(&headers, &body)?;
    if hb.version.len() > 64 || hb.models.len() > 32 {
        return Err(ApiError::Unprocessable(
            "heartbeat: version is at most 64 characters and models at most 32 entries".into(),
        ));
    }
    state.store.heartbeat(&agent, &hb).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of the declaration sync.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncQuery {
    /// Only declarations lodged after this time (RFC 3339); for incremental sync.
    since: Option<chrono::DateTime<chrono::Utc>>,
}

async fn sync_declarations(
    State(state): State<AppState>,
    principal: Principal,
    Q(q): Q<SyncQuery>,
) -> Result<Json<serde_json::Value>> {
    let agent = principal.agent()?;
    let now = now_ms();
    let day = 86_400_000;
    let rows: Vec<DeclarationRow> = state
        .store
        .declarations_for_bay(
            Some(&agent.bay),
            now - 2 * day,
            now + 7 * day,
            q.since.map_or(i64::MIN, |t| t.timestamp_millis()),
            5000,
        )
        .await?;
    Ok(Json(serde_json::json!({
        "bay": agent.bay,
        "synced_at": crate::store::ms_to_rfc3339(now),
        "declarations": rows,
    })))
}

async fn list_agents(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<AgentInfo>>> {
    principal.user_with(&[Role::Admin])?;
    Ok(Json(state.store.list_agents().await?))
}

/// Body of `POST /api/v1/agents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAgent {
    name: String,
    bay: String,
}

async fn add_agent(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>)> {
    let admin = principal.user_with(&[Role::Admin])?;
    let new: NewAgent = json_body(&headers, &body)?;
    BayId::parse(&new.name).map_err(|e| ApiError::Unprocessable(format!("name: {e}")))?;
    BayId::parse(&new.bay).map_err(|e| ApiError::Unprocessable(format!("bay: {e}")))?;
    let (id, token) = state
        .store
        .add_agent(&format!("user:{}", admin.username), &new.name, &new.bay)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                ApiError::Conflict(format!("agent {} exists", new.name))
            }
            e => e.into(),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "id": id, "name": new.name, "bay": new.bay, "token": token,
            "note": "the token is shown once; only its hash is stored"
        })),
    ))
}

async fn revoke_agent(
    State(state): State<AppState>,
    principal: Principal,
    P(name): P<String>,
) -> Result<StatusCode> {
    let admin = principal.user_with(&[Role::Admin])?;
    if state
        .store
        .revoke_agent(&format!("user:{}", admin.username), &name)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}
