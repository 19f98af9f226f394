//! Signed model releases for the bays: `GET /api/v1/models/{model}/release` (the current
//! release, `baylens.model-release/2`) and `GET /api/v1/models/{model}/{sha256}` (the file).
//! Agents only; each bay verifies what it gets against its own copy of the public key.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, Result};
use crate::extract::P;
use crate::store::models::{model_key, release_key, valid_model_name};

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/models/{model}/release", get(release))
        .route("/api/v1/models/{model}/{sha256}", get(file))
}

async fn object(
    state: &AppState,
    key: object_store::path::Path,
) -> Result<object_store::GetResult> {
    state.store.images.get(&key).await.map_err(|e| match e {
        object_store::Error::NotFound { .. } => ApiError::NotFound,
        e => ApiError::Internal(format!("model store: {e}")),
    })
}

async fn release(
    State(state): State<AppState>,
    principal: Principal,
    P(model): P<String>,
) -> Result<Response> {
    principal.agent()?;
    if !valid_model_name(&model) {
        return Err(ApiError::NotFound);
    }
    let bytes = object(&state, release_key(&model))
        .await?
        .bytes()
        .await
        .map_err(|e| ApiError::Internal(format!("model store: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

async fn file(
    State(state): State<AppState>,
    principal: Principal,
    P((model, sha256)): P<(String, String)>,
) -> Result<Response> {
    principal.agent()?;
    let hex = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid_model_name(&model) || !hex {
        return Err(ApiError::NotFound);
    }
    let found = object(&state, model_key(&model, &sha256)).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Body::from_stream(found.into_stream()),
    )
        .into_response())
}
