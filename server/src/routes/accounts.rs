//! Accounts: an admin disables (or enables) a user and resets a password; every user changes
//! their own. Each ends the user's sessions and API tokens and is audited. An admin also lists
//! live sessions and API tokens and revokes them one by one.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use serde::Deserialize;

use super::agents::json_body;
use crate::auth::{Principal, Role, verify_password};
use crate::error::{ApiError, Result};
use crate::extract::{P, Q};
use crate::store::tokens::{Revoked, TokenInfo, valid_token_id};
use crate::{AppState, MAX_SMALL_BODY_BYTES};

/// The account routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users/{username}/disabled", put(set_disabled))
        .route("/api/v1/users/{username}/password", put(reset_password))
        .route("/api/v1/session/password", put(change_password))
        .route("/api/v1/tokens", get(list_tokens))
        .route("/api/v1/tokens/{token_id}", delete(revoke_token))
        .layer(DefaultBodyLimit::max(MAX_SMALL_BODY_BYTES))
}

/// Checks a new password as `POST /api/v1/users` does.
pub fn valid_password(password: &str) -> Result<()> {
    if password.chars().count() < 12 || password.len() > 1024 {
        return Err(ApiError::Unprocessable(
            "password must be 12 to 1024 characters".into(),
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Disabled {
    disabled: bool,
}

async fn set_disabled(
    State(state): State<AppState>,
    principal: Principal,
    P(username): P<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode> {
    let admin = principal.user_with(&[Role::Admin])?;
    let d: Disabled = json_body(&headers, &body)?;
    if d.disabled && admin.username == username {
        return Err(ApiError::Unprocessable(
            "an admin cannot disable their own account".into(),
        ));
    }
    let actor = format!("user:{}", admin.username);
    if !state
        .store
        .set_disabled(&actor, &username, d.disabled)
        .await?
    {
        return Err(ApiError::NotFound);
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
}

async fn reset_password(
    State(state): State<AppState>,
    principal: Principal,
    P(username): P<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode> {
    let admin = principal.user_with(&[Role::Admin])?;
    let p: NewPassword = json_body(&headers, &body)?;
    valid_password(&p.password)?;
    let actor = format!("user:{}", admin.username);
    let store = &state.store;
    if !store
        .set_password(&actor, &username, &p.password, "user.password.reset")
        .await?
    {
        return Err(ApiError::NotFound);
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current: String,
    new: String,
}

async fn change_password(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode> {
    let user = principal.any_user()?;
    let c: PasswordChange = json_body(&headers, &body)?;
    valid_password(&c.new)?;
    let Some((_, hash)) = state.store.user_by_name(&user.username).await? else {
        return Err(ApiError::Unauthorized);
    };
    let current = c.current.clone();
    let ok = tokio::task::spawn_blocking(move || verify_password(&current, &hash))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if !ok {
        return Err(ApiError::Forbidden("the current password is wrong".into()));
    }
    let actor = format!("user:{}", user.username);
    state
        .store
        .set_password(&actor, &user.username, &c.new, "user.password.change")
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenQuery {
    /// Only this user's.
    user: Option<String>,
}

async fn list_tokens(
    State(state): State<AppState>,
    principal: Principal,
    Q(q): Q<TokenQuery>,
) -> Result<Json<Vec<TokenInfo>>> {
    principal.user_with(&[Role::Admin])?;
    Ok(Json(state.store.list_tokens(q.user.as_deref()).await?))
}

async fn revoke_token(
    State(state): State<AppState>,
    principal: Principal,
    P(token_id): P<String>,
) -> Result<StatusCode> {
    let admin = principal.user_with(&[Role::Admin])?;
    if !valid_token_id(&token_id) {
        return Err(ApiError::Unprocessable(
            "a token id is the first 12 hex digits (lower case) of its sha256, as GET /api/v1/tokens lists it".into(),
        ));
    }
    let actor = format!("user:{}", admin.username);
    match state.store.revoke_token(&actor, &token_id).await? {
        Revoked::Done { .. } => Ok(StatusCode::NO_CONTENT),
        Revoked::NotFound => Err(ApiError::NotFound),
        Revoked::Ambiguous => Err(ApiError::Conflict(
            "several live tokens share this id; revoke them through their user (disable, then enable)".into(),
        )),
    }
}
