//! Cases API: log in and out, the risk-ranked list with filters, detail, the preview image,
//! decisions, examination results, notes, assignment, sharing with agencies, and a live
//! stream of new cases (server-sent events).

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use serde::Deserialize;

use super::agents::json_body;
use crate::AppState;
use crate::MAX_SMALL_BODY_BYTES;
use crate::auth::{Principal, Role, csrf_token, request_token, verify_password};
use crate::error::{ApiError, Result};
use crate::extract::{ClientAddr, P, Q};
use crate::store::{CaseDetail, CaseFilter, CaseSummary, Decision, User, cases::can_see};

/// Longest note accepted.
pub const MAX_NOTE_CHARS: usize = 4000;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/session", post(login).delete(logout))
        .route("/api/v1/cases", get(list))
        .route("/api/v1/cases/{id}", get(detail))
        .route("/api/v1/cases/{id}/preview", get(preview))
        .route("/api/v1/cases/{id}/layers/{layer}", get(layer))
        .route("/api/v1/cases/{id}/decisions", post(decide))
        .route("/api/v1/cases/{id}/examinations", post(examine))
        .route("/api/v1/cases/{id}/notes", post(note))
        .route("/api/v1/cases/{id}/assignment", post(assign))
        .route("/api/v1/cases/{id}/shares", post(share))
        .route("/api/v1/events", get(events))
        .layer(DefaultBodyLimit::max(MAX_SMALL_BODY_BYTES))
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

/// Checks credentials, rate-limited per user name and per source address (counted in the
/// database before the check, so parallel guesses get no more tries than serial ones), with a
/// bounded number of password checks at once; the same answer for an unknown user and a wrong
/// password.
pub async fn check_credentials(
    state: &AppState,
    creds: &Credentials,
    from: ClientAddr,
) -> Result<User> {
    use sha2::Digest;
    if creds.username.len() > 128 || creds.password.len() > 1024 {
        return Err(ApiError::Unauthorized);
    }
    let window = state.settings.login_window.as_millis() as i64;
    // Hashed: a password typed into the user name field is not stored.
    let user_key = format!(
        "user:{}",
        hex::encode(sha2::Sha256::digest(creds.username.as_bytes()))
    );
    let store = &state.store;
    if let Some(wait) = store
        .take_login_attempt(&user_key, state.settings.login_attempts, window)
        .await?
    {
        return Err(ApiError::TooManyRequests(wait));
    }
    let addr_key = from.0.map(|ip| format!("addr:{ip}"));
    if let Some(key) = &addr_key {
        let limit = state.settings.login_attempts_per_address;
        if let Some(wait) = store.take_login_attempt(key, limit, window).await? {
            return Err(ApiError::TooManyRequests(wait));
        }
    }
    let turn = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        state.password_checks.clone().acquire_owned(),
    )
    .await;
    let Ok(Ok(_turn)) = turn else {
        return Err(ApiError::Unavailable(
            "too many sign-ins at once; try again in a few seconds".into(),
        ));
    };
    let found = store.user_by_name(&creds.username).await?;
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), hash),
        // Hash anyway, so timing does not tell which user names exist.
        None => (None, crate::auth::dummy_hash().to_owned()),
    };
    let password = creds.password.clone();
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    match user {
        Some(user) if ok => {
            store.clear_login_attempts(&user_key).await?;
            if let Some(key) = &addr_key {
                store.return_login_attempt(key).await?;
            }
            Ok(user)
        }
        _ => {
            // People type passwords into the user name field: name only users that exist.
            match &user {
                Some(u) => tracing::warn!(user = %u.username, "failed login: wrong password"),
                None => tracing::warn!("failed login: unknown user name"),
            }
            Err(ApiError::Unauthorized)
        }
    }
}

async fn login(
    State(state): State<AppState>,
    from: ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>> {
    let creds: Credentials = json_body(&headers, &body)?;
    let user = check_credentials(&state, &creds, from).await?;
    let token = state.store.new_session(&user).await?;
    Ok(Json(serde_json::json!({
        "token": token,
        "csrf_token": csrf_token(&token),
        "role": user.role,
        "expires_in_hours": crate::store::users::SESSION_HOURS,
    })))
}

async fn logout(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
) -> Result<StatusCode> {
    principal.any_user()?;
    if let Some(token) = request_token(&headers, state.settings.secure_cookies) {
        state.store.end_session(&token).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Q(filter): Q<CaseFilter>,
) -> Result<Json<Vec<CaseSummary>>> {
    let user = principal.user()?;
    Ok(Json(state.store.list_cases(&user, &filter).await?))
}

/// The user, if they may see case `id` (403 if not, 404 if there is no such case).
pub async fn visible_case(state: &AppState, principal: Principal, id: i64) -> Result<User> {
    let user = principal.user()?;
    match state.store.case_access(&user, id).await? {
        None => Err(ApiError::NotFound),
        Some(false) => Err(ApiError::Forbidden(format!(
            "case {id} is not visible to {} {}",
            user.role.as_str(),
            user.username
        ))),
        Some(true) => Ok(user),
    }
}

/// The user, if they may see case `id` and work on it (officers of its bay, supervisors).
async fn case_worker(state: &AppState, principal: Principal, id: i64, what: &str) -> Result<User> {
    let user = visible_case(state, principal, id).await?;
    if matches!(user.role, Role::Officer | Role::Supervisor) {
        Ok(user)
    } else {
        Err(ApiError::Forbidden(format!(
            "only officers and supervisors {what}"
        )))
    }
}

async fn detail(
    State(state): State<AppState>,
    principal: Principal,
    P(id): P<i64>,
) -> Result<Json<CaseDetail>> {
    visible_case(&state, principal, id).await?;
    Ok(Json(
        state
            .store
            .case_detail(id)
            .await?
            .ok_or(ApiError::NotFound)?,
    ))
}

async fn preview(
    State(state): State<AppState>,
    principal: Principal,
    P(id): P<i64>,
) -> Result<Response> {
    visible_case(&state, principal, id).await?;
    let (_, key) = state
        .store
        .case_preview(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    png_response(&state, key.ok_or(ApiError::NotFound)?).await
}

async fn layer(
    State(state): State<AppState>,
    principal: Principal,
    P((id, layer)): P<(i64, String)>,
) -> Result<Response> {
    visible_case(&state, principal, id).await?;
    let key = state
        .store
        .layer_key(id, &layer)
        .await?
        .ok_or(ApiError::NotFound)?;
    png_response(&state, key).await
}

async fn png_response(state: &AppState, key: String) -> Result<Response> {
    // Officers' photos may be JPEG; every other image is PNG.
    let content_type = if key.ends_with(".jpg") {
        "image/jpeg"
    } else {
        "image/png"
    };
    let object = state
        .store
        .images
        .get(&object_store::path::Path::from(key))
        .await
        .map_err(|e| match e {
            object_store::Error::NotFound { .. } => ApiError::NotFound,
            e => ApiError::Internal(format!("image store: {e}")),
        })?;
    let stream = object.into_stream();
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

fn check_note(note: Option<&str>, required: bool, what: &str) -> Result<Option<String>> {
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    match note {
        None if required => Err(ApiError::Unprocessable(format!("{what} needs a note"))),
        Some(n) if n.chars().count() > MAX_NOTE_CHARS => Err(ApiError::Unprocessable(format!(
            "note is longer than {MAX_NOTE_CHARS} characters"
        ))),
        n => Ok(n.map(str::to_owned)),
    }
}

/// Body of a decision.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: Decision,
    note: Option<String>,
}

async fn decide(
    State(state): State<AppState>,
    principal: Principal,
    P(id): P<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>> {
    let user = principal.user_with(&[Role::Supervisor])?;
    let d: DecisionBody = json_body(&headers, &body)?;
    let Some(before) = state.store.case_summary(id).await? else {
        return Err(ApiError::NotFound);
    };
    let note = check_note(
        d.note.as_deref(),
        d.decision.needs_note(),
        &format!("decision {:?}", d.decision.as_str()),
    )?;
    match state
        .store
        .decide(&user, id, d.decision, note.as_deref())
        .await?
    {
        Ok(status) => {
            if let Some(mqtt) = &state.mqtt {
                let event = serde_json::json!({
                    "case_id": id,
                    "scan_id": before.scan_id,
                    "container_code": before.container_code,
                    "decision": d.decision.as_str(),
                    "by": user.username,
                    "before": {"status": before.status},
                    "after": {"status": status},
                });
                mqtt.publish(&before.bay, "decision", &event, false);
            }
            Ok(Json(serde_json::json!({"case_id": id, "status": status})))
        }
        Err(status) => Err(ApiError::Conflict(format!(
            "case {id} is already {status}; no further decisions"
        ))),
    }
}

/// Body of an examination result.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExaminationBody {
    /// consistent (cargo matches the declaration) or discrepancy.
    result: String,
    note: Option<String>,
}

async fn examine(
    State(state): State<AppState>,
    principal: Principal,
    P(id): P<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode> {
    let user = case_worker(&state, principal, id, "record examination results").await?;
    let e: ExaminationBody = json_body(&headers, &body)?;
    if !matches!(e.result.as_str(), "consistent" | "discrepancy") {
        return Err(ApiError::Unprocessable(format!(
            "result must be consistent or discrepancy, got {:?}",
            e.result.chars().take(40).collect::<String>()
        )));
    }
    let note = check_note(
        e.note.as_deref(),
        e.result == "discrepancy",
        "a discrepancy",
    )?;
    state
        .store
        .add_event(&user, id, "examination", Some(&e.result), note.as_deref())
        .await?;
    Ok(StatusCode::CREATED)
}

/// Body of a note.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    note: String,
}

async fn note(
    State(state): State<AppState>,
    principal: Principal,
    P(id): P<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode> {
    let user = case_worker(&state, principal, id, "add notes").await?;
    let n: NoteBody = json_body(&headers, &body)?;
    let note = check_note(Some(&n.note), true, "a note")?;
    state
        .store
        .add_event(&user, id, "note", None, note.as_deref())
        .await?;
    Ok(StatusCode::CREATED)
}

/// Body naming a user.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserRef {
    username: String,
}

/// For a supervisor's action on case `id` naming another user: the supervisor, the case, and
/// the user the body names.
async fn supervisor_names_user(
    state: &AppState,
    principal: Principal,
    id: i64,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(User, CaseSummary, User)> {
    let user = principal.user_with(&[Role::Supervisor])?;
    let target: UserRef = json_body(headers, body)?;
    let case = state
        .store
        .case_summary(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let (named, _) = state
        .store
        .user_by_name(&target.username)
        .await?
        .ok_or_else(|| ApiError::Unprocessable(format!("no user {:?}", target.username)))?;
    Ok((user, case, named))
}

async fn assign(
    State(state): State<AppState>,
    principal: Principal,
    P(id): P<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode> {
    let (user, case, assignee) =
        supervisor_names_user(&state, principal, id, &headers, &body).await?;
    if !matches!(assignee.role, Role::Officer | Role::Supervisor)
        || !can_see(&assignee, &case.bay, false)
    {
        return Err(ApiError::Unprocessable(format!(
            "{} cannot work on a case of bay {}",
            assignee.username, case.bay
        )));
    }
    state
        .store
        .add_event(&user, id, "assignment", Some(&assignee.username), None)
        .await?;
    Ok(StatusCode::CREATED)
}

async fn share(
    State(state): State<AppState>,
    principal: Principal,
    P(id): P<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode> {
    let (user, _, agency) = supervisor_names_user(&state, principal, id, &headers, &body).await?;
    if agency.role != Role::Agency {
        return Err(ApiError::Unprocessable(format!(
            "{} is not an agency account",
            agency.username
        )));
    }
    state
        .store
        .add_event(&user, id, "share", Some(&agency.username), None)
        .await?;
    Ok(StatusCode::CREATED)
}

/// How often an open event stream re-checks its session.
pub const EVENTS_RECHECK: std::time::Duration = std::time::Duration::from_secs(30);

/// New cases the user may see, as server-sent events named `case` with a case summary. The
/// stream re-checks its session every [`EVENTS_RECHECK`] and ends when the session has ended
/// or the user's role or bay has changed.
async fn events(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>> {
    let user = principal.user()?;
    let token =
        request_token(&headers, state.settings.secure_cookies).ok_or(ApiError::Unauthorized)?;
    let rx = state.events.subscribe();
    let mut recheck = tokio::time::interval(EVENTS_RECHECK);
    recheck.reset();
    let store = state.store.clone();
    let stream = futures_util::stream::unfold(
        (rx, user, token, store, recheck),
        |(mut rx, user, token, store, mut recheck)| async move {
            loop {
                tokio::select! {
                    _ = recheck.tick() => {
                        match store.user_by_session(&token).await {
                            Ok(Some(now)) if now == user => continue,
                            _ => return None,
                        }
                    }
                    received = rx.recv() => match received {
                        Ok(case) => {
                            if can_see(&user, &case.bay, false) {
                                let event = Event::default()
                                    .event("case")
                                    .json_data(&case)
                                    .unwrap_or_else(|_| Event::default().comment("unserialisable"));
                                return Some((Ok(event), (rx, user, token, store, recheck)));
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            let event = Event::default().event("lagged").data(n.to_string());
                            return Some((Ok(event), (rx, user, token, store, recheck)));
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
