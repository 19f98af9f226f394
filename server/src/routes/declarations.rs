//! Advance declarations (TFA Art. 7.1): lodging one, importing many, listing and reading.
//! Lodging validates every rule (422 lists them all) and scores the pre-arrival risk.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use baylens_protocol::Declaration;
use chrono::Utc;
use serde::Deserialize;

use super::agents::content_type_is;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, Result};
use crate::extract::{P, Q};
use crate::interop::{Format, read};
use crate::store::{DeclarationRow, Lodged, now_ms};
use crate::{AppState, MAX_DECLARATION_BYTES};

/// Most declarations in one import.
pub const MAX_IMPORT: usize = 1000;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/declarations",
            get(list)
                .post(lodge)
                .layer(DefaultBodyLimit::max(MAX_DECLARATION_BYTES)),
        )
        .route(
            "/api/v1/declarations/import",
            post(import).layer(DefaultBodyLimit::max(MAX_DECLARATION_BYTES)),
        )
        .route("/api/v1/declarations/{reference}", get(one))
}

fn problems(errors: Vec<baylens_protocol::ProtocolError>) -> Vec<String> {
    errors.into_iter().map(|e| e.to_string()).collect()
}

async fn lodge(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<DeclarationRow>)> {
    let user = principal.user_with(&[Role::Supervisor, Role::Admin])?;
    content_type_is(&headers, "application/json")?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::Unprocessable("body is not UTF-8".into()))?;
    let d = Declaration::from_json(text, Utc::now()).map_err(|e| ApiError::Invalid(problems(e)))?;
    match state
        .store
        .lodge_declaration(&format!("user:{}", user.username), &d)
        .await?
    {
        Lodged::Created(row) => Ok((StatusCode::CREATED, Json(row))),
        Lodged::Unchanged(row) => Ok((StatusCode::OK, Json(row))),
        Lodged::Conflict => Err(ApiError::Conflict(format!(
            "declaration {} was lodged before with different content; amendments need a new reference",
            d.reference
        ))),
    }
}

async fn import(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>> {
    let user = principal.user_with(&[Role::Supervisor, Role::Admin])?;
    let media = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let format = Format::of_media_type(&media).ok_or_else(|| {
        ApiError::UnsupportedMedia(format!(
            "expected {}, got {:?}",
            Format::ACCEPTED,
            media.chars().take(60).collect::<String>()
        ))
    })?;
    // All or nothing: every document is mapped and checked before any is lodged.
    let valid = tokio::task::spawn_blocking(move || read(format, &body, Utc::now(), MAX_IMPORT))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::Invalid)?;
    let actor = format!("user:{}", user.username);
    let outcomes = state
        .store
        .lodge_declarations(&actor, &valid)
        .await?
        .map_err(|reference| {
            ApiError::Conflict(format!(
                "declaration {reference} was lodged before with different content; nothing was imported"
            ))
        })?;
    let created = outcomes
        .iter()
        .filter(|o| matches!(o, Lodged::Created(_)))
        .count();
    Ok(Json(serde_json::json!({
        "lodged": created,
        "unchanged": outcomes.len() - created
    })))
}

/// Query of the declaration list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only this bay (officers always see only their own).
    bay: Option<String>,
    /// Expected arrival at or after (default: two days ago).
    from: Option<chrono::DateTime<Utc>>,
    /// Expected arrival before (default: in seven days).
    to: Option<chrono::DateTime<Utc>>,
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Q(q): Q<ListQuery>,
) -> Result<Json<Vec<DeclarationRow>>> {
    let user = principal.user_with(&[Role::Officer, Role::Supervisor, Role::Admin])?;
    let bay = if user.role == Role::Officer {
        user.bay.clone()
    } else {
        q.bay
    };
    let now = now_ms();
    let day = 86_400_000;
    Ok(Json(
        state
            .store
            .declarations_for_bay(
                bay.as_deref(),
                q.from.map_or(now - 2 * day, |t| t.timestamp_millis()),
                q.to.map_or(now + 7 * day, |t| t.timestamp_millis()),
                i64::MIN,
                1000,
            )
            .await?,
    ))
}

async fn one(
    State(state): State<AppState>,
    principal: Principal,
    P(reference): P<String>,
) -> Result<Json<DeclarationRow>> {
    let user = principal.user_with(&[Role::Officer, Role::Supervisor, Role::Admin])?;
    let row = state
        .store
        .declaration(&reference)
        .await?
        .ok_or(ApiError::NotFound)?;
    if user.role == Role::Officer
        && row.declaration.bay.is_some()
        && row.declaration.bay != user.bay
    {
        return Err(ApiError::Forbidden(
            "this declaration is for another bay".into(),
        ));
    }
    Ok(Json(row))
}
