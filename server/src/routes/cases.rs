//! Cases API: `GET /api/v1/cases` (risk-ranked, filtered by the caller's role),
//! `GET /api/v1/cases/{id}/preview`, and `POST /api/v1/session` (log in for a bearer token).

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{Principal, Role, verify_password};
use crate::error::{ApiError, Result};
use crate::store::CaseSummary;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/session", post(login))
        .route("/api/v1/cases", get(list))
        .route("/api/v1/cases/{id}/preview", get(preview))
}

/// Credentials.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// Checks credentials; the same answer for an unknown user and a wrong password.
pub async fn check_credentials(state: &AppState, creds: &Credentials) -> Result<i64> {
    let Some((user, hash)) = state.store.user_by_name(&creds.username).await? else {
        return Err(ApiError::Unauthorized);
    };
    let password = creds.password.clone();
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if ok {
        Ok(user.id)
    } else {
        Err(ApiError::Unauthorized)
    }
}

async fn login(
    State(state): State<AppState>,
    Json(creds): Json<Credentials>,
) -> Result<Json<serde_json::Value>> {
    let user_id = check_credentials(&state, &creds).await?;
    let token = state.store.new_session(user_id).await?;
    Ok(Json(serde_json::json!({ "token": token })))
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<CaseSummary>>> {
    let user = principal.user()?;
    Ok(Json(state.store.list_cases(&user, 500).await?))
}

async fn preview(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<i64>,
) -> Result<Response> {
    let user = principal.user()?;
    let (bay, path) = state
        .store
        .case_preview(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let allowed = match user.role {
        Role::Supervisor | Role::Admin => true,
        Role::Officer => user.bay.as_deref() == Some(bay.as_str()),
        Role::Agency => false,
    };
    if !allowed {
        return Err(ApiError::NotFound); // do not reveal that the case exists
    }
    let path = path.ok_or(ApiError::NotFound)?;
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| ApiError::Internal(format!("{path}: {e}")))?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        bytes,
    )
        .into_response())
}
