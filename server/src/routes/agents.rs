//! Agents and scanners: report ingest (idempotent by report id), officers' annotations,
//! heartbeats and the per-bay declaration sync; and, for admins, agent registration and
//! revocation.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use baylens_protocol::{BayId, ScanId, ScanReport};
use serde::Deserialize;

use crate::auth::{Principal, Role};
use crate::error::{ApiError, Result};
use crate::extract::{P, Q};
use crate::store::{AgentInfo, DeclarationRow, Heartbeat, Ingested, now_ms};
use crate::{AppState, MAX_REPORT_BYTES, MAX_SMALL_BODY_BYTES};

/// Officers' annotations relayed by the bays: a photo of up to 8 MiB over a weak bay link gets
/// the upload timeout, not the short one of other requests.
pub fn annotations() -> Router<AppState> {
    Router::new().route(
        "/api/v1/scans/{scan_id}/annotations",
        post(annotate).layer(DefaultBodyLimit::max(MAX_ANNOTATION_BYTES)),
    )
}

/// Agents' routes other than the image uploads (`super::evidence`) and [`annotations`].
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
        .route("/api/v1/fleet", get(fleet))
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

/// Refuses a body whose declared length is over `max` (413) before any of it is read.
pub fn declared_within(headers: &HeaderMap, max: usize) -> Result<()> {
    match headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
    {
        Some(len) if len > max => Err(ApiError::TooLarge(max)),
        _ => Ok(()),
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
    // A scan is its bay's: another bay's agent cannot file a report under its id first.
    let bays = state.store.bays().await?;
    if report.scan_id.owner(bays.iter().map(String::as_str)) != Some(agent.bay.as_str()) {
        state.metrics.ingest("rejected");
        return Err(ApiError::Forbidden(format!(
            "scan {} is not a scan of bay {}: scan ids start with their bay and '-' \
             (protocol/SCAN_FORMAT.md)",
            report.scan_id, agent.bay
        )));
    }
    let ingested = state.store.ingest_report(&agent, &report, raw).await?;
    let (status, case_id, duplicate) = match ingested {
        Ingested::Created(summary) => {
            state.metrics.ingest("created");
            let id = summary.id;
            // Published by the replica that took the report, once.
            if let Some(mqtt) = &state.mqtt {
                let event = serde_json::to_value(&*summary).unwrap_or_default();
                mqtt.publish(&summary.bay, "case", &event, false);
            }
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

/// How far a bay's clock may run ahead of the server's, minutes.
pub const MAX_CLOCK_SKEW_MINUTES: i64 = 5;
/// Oldest annotation accepted, days after it was recorded (a bay cut off for longer has its
/// annotations refused with a reason, kept at the bay).
pub const MAX_ANNOTATION_AGE_DAYS: i64 = 30;

/// Largest annotation body (a photo of up to 8 MiB, as base64, and the rest).
pub const MAX_ANNOTATION_BYTES: usize = 12 * 1024 * 1024;
/// Largest photo in an annotation.
pub const MAX_PHOTO_BYTES: usize = 8 * 1024 * 1024;

/// An officer's annotation from the bay tablet, relayed by the bay's agent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnnotationBody {
    annotation_id: String,
    scan_id: String,
    officer: String,
    recorded_at: chrono::DateTime<chrono::Utc>,
    seal: Option<String>,
    examination: Option<String>,
    note: Option<String>,
    photo_base64: Option<String>,
}

/// Records an officer's annotation (seal, examination result, note, photo) on the case of a
/// scan of the agent's own bay, attributed to the officer, who must be an officer of that bay.
/// Idempotent by annotation id: a repeated delivery is answered 200 before any other check.
async fn annotate(
    State(state): State<AppState>,
    principal: Principal,
    P(scan_id): P<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode> {
    use base64::Engine as _;
    let agent = principal.agent()?;
    let a: AnnotationBody = json_body(&headers, &body)?;
    let bad = |m: String| Err(ApiError::Unprocessable(m));
    if a.scan_id != scan_id {
        return bad("scan_id in the body differs from the path".into());
    }
    if !(8..=64).contains(&a.annotation_id.len())
        || !a
            .annotation_id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-')
    {
        return bad("annotation_id must be 8 to 64 hex digits and dashes (a UUID)".into());
    }
    // A repeated delivery writes nothing, the photo included, and is not judged again.
    if state.store.annotation_recorded(&a.annotation_id).await? {
        return Ok(StatusCode::OK);
    }
    if let Some(s) = &a.seal
        && !matches!(s.as_str(), "intact" | "broken")
    {
        return bad("seal must be intact or broken".into());
    }
    if let Some(e) = &a.examination
        && !matches!(e.as_str(), "consistent" | "discrepancy")
    {
        return bad("examination must be consistent or discrepancy".into());
    }
    // Recorded at the bay, delivered now or after an outage: never in the future, never older
    // than a bay keeps annotations waiting. The server's receipt time is stored beside it.
    let received = chrono::Utc::now();
    if a.recorded_at > received + chrono::Duration::minutes(MAX_CLOCK_SKEW_MINUTES) {
        return bad(format!(
            "recorded_at {} is later than the server's receipt time {} (bay clock wrong?)",
            a.recorded_at.to_rfc3339(),
            received.to_rfc3339()
        ));
    }
    if a.recorded_at < received - chrono::Duration::days(MAX_ANNOTATION_AGE_DAYS) {
        return bad(format!(
            "recorded_at {} is more than {MAX_ANNOTATION_AGE_DAYS} days before its receipt",
            a.recorded_at.to_rfc3339()
        ));
    }
    let note = a.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
    if note.is_some_and(|n| n.chars().count() > crate::routes::cases::MAX_NOTE_CHARS) {
        return bad(format!(
            "note is longer than {} characters",
            crate::routes::cases::MAX_NOTE_CHARS
        ));
    }
    if (a.seal.as_deref() == Some("broken") || a.examination.as_deref() == Some("discrepancy"))
        && note.is_none()
    {
        return bad("a broken seal or a discrepancy needs a note".into());
    }
    let photo = match &a.photo_base64 {
        None => None,
        Some(p) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(p.trim())
                .map_err(|e| ApiError::Unprocessable(format!("photo_base64: {e}")))?;
            if bytes.len() > MAX_PHOTO_BYTES {
                return Err(ApiError::TooLarge(MAX_PHOTO_BYTES));
            }
            let Some(ext) = super::evidence::photo_ext(&bytes) else {
                return bad("the photo must be a JPEG or PNG".into());
            };
            Some((bytes, ext))
        }
    };
    if a.seal.is_none() && a.examination.is_none() && note.is_none() && photo.is_none() {
        return bad("nothing to record".into());
    }
    let scan_id = ScanId::parse(&scan_id).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let case_id = own_case(&state, &agent, &scan_id).await?;
    let officer = match state.store.user_by_name(&a.officer).await? {
        Some((u, _)) if u.role == Role::Officer && u.bay.as_deref() == Some(agent.bay.as_str()) => {
            u
        }
        _ => {
            return bad(format!(
                "{:?} is not an officer of bay {} on this server",
                a.officer.chars().take(40).collect::<String>(),
                agent.bay
            ));
        }
    };
    // The photo first, in a slot of its own annotation under a key of its own, recorded and
    // audited before the annotation: a failure in between leaves a retry that finds the same
    // photo (204-like `Same`), never an annotation whose photo is missing.
    let mut photo_layer = None;
    if let Some((bytes, ext)) = photo {
        let name = format!("photo-{}", a.annotation_id.to_ascii_lowercase());
        super::evidence::store_bay_image(&state, &agent, case_id, &scan_id, &name, bytes, ext)
            .await?;
        photo_layer = Some(name);
    }
    let mut events: Vec<(&str, Option<&str>, Option<&str>)> = Vec::new();
    if let Some(s) = &a.seal {
        events.push(("seal", Some(s.as_str()), None));
    }
    if let Some(e) = &a.examination {
        events.push(("examination", Some(e.as_str()), None));
    }
    match events.first_mut() {
        Some(first) => first.2 = note,
        None if note.is_some() => events.push(("note", None, note)),
        None => {}
    }
    if let Some(name) = &photo_layer {
        events.push(("photo", Some(name.as_str()), None));
    }
    let new = state
        .store
        .record_annotation(
            &a.annotation_id,
            &officer,
            case_id,
            &events,
            a.recorded_at.timestamp_millis(),
        )
        .await?;
    Ok(if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    })
}

/// The case of a scan of the agent's own bay: 404 while the server has none, 403 for another
/// bay's scan.
pub(crate) async fn own_case(
    state: &AppState,
    agent: &crate::store::Agent,
    scan_id: &ScanId,
) -> Result<i64> {
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
    if hb.version.len() > 64
        || hb.models.len() > 32
        || hb.camera.as_ref().is_some_and(|c| c.len() > 32)
    {
        return Err(ApiError::Unprocessable(
            "heartbeat: version is at most 64 characters, models at most 32 entries and camera at most 32 characters".into(),
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

/// Every agent not revoked, with its health and what needs an operator (the fleet page's data).
async fn fleet(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<crate::store::fleet::FleetAgent>>> {
    principal.user_with(&[Role::Supervisor, Role::Admin])?;
    Ok(Json(state.store.fleet().await?))
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
